//! Blob uploads: monolithic, chunked, streamed, resumable, and cross-repository mounts.
//!
//! Bytes stream from the request into a chunk object under the session's
//! folder while being hashed; the hash state and the chunk list are saved in
//! the metadata store after each chunk, so a session resumes after a restart
//! without re-reading anything. On completion the digest is checked, the bytes
//! are moved to their content address, and only then does one transaction
//! remove the session and link the blob into the repository.

use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;
use ward_core::ErrorCode;
use ward_core::digest::{Algorithm, Digest, Hasher};
use ward_core::name::RepositoryName;
use ward_store::meta::{NewUpload, Upload, UploadChunk};
use ward_store::{BlobWriter, ObjectKey as Path, now_ms, paths};

use super::{Ctx, empty};
use crate::error::{ApiError, ApiResult};
use crate::http::{header_str, query_value, query_values, upload_content_range, upload_range};

fn session_location(name: &RepositoryName, id: Uuid) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn blob_location(name: &RepositoryName, digest: &Digest) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

fn accepted(name: &RepositoryName, id: Uuid, size: u64, status: StatusCode) -> Response {
    empty(
        status,
        &[
            ("location", session_location(name, id)),
            ("range", upload_range(size)),
            ("docker-upload-uuid", id.to_string()),
            ("blob-upload-session-id", id.to_string()),
            ("content-length", "0".into()),
        ],
    )
}

/// Records a blob arriving in a repository (uploaded or mounted).
async fn audit_blob(
    ctx: &Ctx,
    name: &RepositoryName,
    digest: &Digest,
    action: &str,
) -> ApiResult<()> {
    let event = crate::audit::event(ward_audit::EventType::Push, Some(&ctx.caller), &ctx.headers)
        .action(action)
        .repository(name.as_str())
        .digest(digest);
    crate::audit::record(&ctx.state, event).await
}

fn created(name: &RepositoryName, digest: &Digest) -> Response {
    empty(
        StatusCode::CREATED,
        &[
            ("location", blob_location(name, digest)),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".into()),
        ],
    )
}

fn out_of_order(name: &RepositoryName, upload: &Upload, why: &str) -> ApiError {
    ApiError::new(ErrorCode::BlobUploadInvalid, why.to_owned())
        .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
        .with_header(header::LOCATION, session_location(name, upload.id))
        .with_header(header::RANGE, upload_range(upload.size))
        .with_header(
            header::HeaderName::from_static("blob-upload-session-id"),
            upload.id.to_string(),
        )
}

/// `POST /v2/<name>/blobs/uploads/`: mount, single-request upload, or a new session.
pub(super) async fn start(ctx: &Ctx, name: &str, body: Body) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    if let Some(response) = try_mount(ctx, &name).await? {
        return Ok(response);
    }
    let single = query_value(&ctx.query, "digest")
        .map(str::parse::<Digest>)
        .transpose()?;
    let algorithm = match (&single, query_value(&ctx.query, "digest-algorithm")) {
        (Some(d), _) => d.algorithm(),
        (None, None) => Algorithm::Sha256,
        (None, Some(a)) => a.parse::<Algorithm>()?,
    };
    // Every upload, even a single request, has a session row while its bytes
    // are in flight, so a session folder without a row is garbage.
    let id = Uuid::new_v4();
    let max = ctx.state.config.limits.upload_sessions_per_repository_max;
    let opened = ctx
        .state
        .meta
        .create_upload(NewUpload {
            id,
            repository: &name,
            hash_state: &Hasher::new(algorithm).save(),
            now_ms: now_ms(),
            open_max: u64::from(max),
        })
        .await?;
    if !opened {
        return Err(ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "repository {name} has {max} upload sessions open, the limit \
                 (upload_sessions_per_repository_max); finish or cancel some first"
            ),
        )
        .with_header(header::RETRY_AFTER, "60"));
    }
    let Some(digest) = single else {
        return Ok(accepted(&name, id, 0, StatusCode::ACCEPTED));
    };
    // The session was created just now.
    match single_request(ctx, &name, (id, now_ms()), &[digest], body).await {
        Ok(()) => {
            ctx.state
                .blobs
                .delete_prefix(&paths::upload_dir(id))
                .await?;
            audit_blob(ctx, &name, &digest, "push_blob").await?;
            Ok(created(&name, &digest))
        }
        Err(e) => {
            discard(ctx, id).await?;
            Err(e)
        }
    }
}

/// A mount from a repository that links the blob answers 201; anything else
/// (no `from`, unknown digest, a repository without it) falls back to a session.
/// There is no mount by digest alone: it would reveal other repositories' blobs.
async fn try_mount(ctx: &Ctx, name: &RepositoryName) -> ApiResult<Option<Response>> {
    let (Some(mount), Some(from)) = (
        query_value(&ctx.query, "mount"),
        query_value(&ctx.query, "from"),
    ) else {
        return Ok(None);
    };
    let (Ok(digest), Ok(from)) = (
        mount.parse::<Digest>(),
        RepositoryName::parse(from, ctx.state.config.limits.repository_name_bytes_max),
    ) else {
        return Ok(None);
    };
    // Mounting reads the source: without pull rights there, fall back quietly
    // rather than reveal whether the blob exists.
    let may_read = ctx.state.access.authorize(
        &ctx.caller,
        ward_auth::policy::Action::Pull,
        Some(from.as_str()),
        ward_auth::policy::TagContext::Absent,
    );
    if !matches!(may_read, crate::access::Verdict::Allow) {
        return Ok(None);
    }
    // Nor may a mount get around the source's pull gates (scan results,
    // quarantine, signatures): a blob the caller could not GET there is not
    // mounted, since the target's policies may be looser. The gates audit
    // their refusals; the client uploads the bytes instead.
    if ctx
        .state
        .meta
        .blob_in_repository(&from, &digest)
        .await?
        .is_none()
        || crate::scanning::check_blob(ctx, &from, digest)
            .await
            .is_err()
        || crate::gate::check_blob(ctx, &from, digest).await.is_err()
    {
        return Ok(None);
    }
    if ctx
        .state
        .meta
        .mount_blob(&from, name, &digest)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    crate::scanning::blob_linked(&ctx.state, name, digest);
    audit_blob(ctx, name, &digest, "mount_blob").await?;
    Ok(Some(created(name, &digest)))
}

/// `GET` on a session: where it stands.
pub(super) async fn status(ctx: &Ctx, name: &str, id: &str) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let upload = load(ctx, &name, id).await?;
    Ok(accepted(
        &name,
        upload.id,
        upload.size,
        StatusCode::NO_CONTENT,
    ))
}

/// `DELETE` on a session: cancel it and drop its data.
pub(super) async fn cancel(ctx: &Ctx, name: &str, id: &str) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let upload = load(ctx, &name, id).await?;
    if !ctx.state.meta.delete_upload(upload.id).await? {
        return Err(ApiError::upload_unknown());
    }
    ctx.state
        .blobs
        .delete_prefix(&paths::upload_dir(upload.id))
        .await?;
    Ok(empty(
        StatusCode::NO_CONTENT,
        &[("content-length", "0".into())],
    ))
}

/// `PATCH` on a session: append a chunk (checked against its `Content-Range`
/// when one is given), or stream bytes when none is.
pub(super) async fn patch(ctx: &Ctx, name: &str, id: &str, body: Body) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let upload = load(ctx, &name, id).await?;
    let size = append(ctx, &name, &upload, body).await?;
    Ok(accepted(&name, upload.id, size, StatusCode::ACCEPTED))
}

/// `PUT` on a session with `?digest=`: optional last chunk, verification, commit.
pub(super) async fn finish(ctx: &Ctx, name: &str, id: &str, body: Body) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let digests = requested_digests(ctx)?;
    let upload = load(ctx, &name, id).await?;
    let result = if upload.size == 0 && upload.chunks.is_empty() {
        // The whole blob is in this request: no intermediate bookkeeping.
        single_request(
            ctx,
            &name,
            (upload.id, upload.updated_at_ms),
            &digests,
            body,
        )
        .await
    } else {
        append(ctx, &name, &upload, body).await?;
        commit_session(ctx, &name, upload.id, &digests).await
    };
    match result {
        Ok(()) => {
            ctx.state
                .blobs
                .delete_prefix(&paths::upload_dir(upload.id))
                .await?;
            audit_blob(ctx, &name, &digests[0], "push_blob").await?;
            Ok(created(&name, &digests[0]))
        }
        Err(e) => {
            // A refused blob leaves nothing behind: the session ends with it.
            if e.code == ErrorCode::DigestInvalid || e.code == ErrorCode::SizeInvalid {
                discard(ctx, upload.id).await?;
            }
            Err(e)
        }
    }
}

fn requested_digests(ctx: &Ctx) -> ApiResult<Vec<Digest>> {
    let digests = query_values(&ctx.query, "digest")
        .map(str::parse::<Digest>)
        .collect::<Result<Vec<_>, _>>()?;
    if digests.is_empty() {
        return Err(ApiError::new(
            ErrorCode::DigestInvalid,
            "finishing an upload needs the blob's digest: PUT <location>?digest=sha256:<hex>",
        ));
    }
    Ok(digests)
}

async fn discard(ctx: &Ctx, id: Uuid) -> ApiResult<()> {
    ctx.state.meta.delete_upload(id).await?;
    ctx.state
        .blobs
        .delete_prefix(&paths::upload_dir(id))
        .await?;
    Ok(())
}

async fn load(ctx: &Ctx, name: &RepositoryName, id: &str) -> ApiResult<Upload> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::upload_unknown())?;
    match ctx.state.meta.upload(id).await? {
        Some(u) if u.repository == name.as_str() => Ok(u),
        _ => Err(ApiError::upload_unknown()),
    }
}

/// The byte count of the chunk the request's `Content-Range` names, checked
/// against where the upload stands and against any `Content-Length`; `None`
/// when there is no `Content-Range` (the body is a stream).
fn declared_range(ctx: &Ctx, name: &RepositoryName, upload: &Upload) -> ApiResult<Option<u64>> {
    let Some(range) = header_str(&ctx.headers, &header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let Some((start, bytes)) = upload_content_range(range)
        .and_then(|(start, end)| Some((start, (end - start).checked_add(1)?)))
    else {
        return Err(out_of_order(
            name,
            upload,
            &format!(
                "invalid Content-Range {range:?}: use <start>-<end>, inclusive, without a unit"
            ),
        ));
    };
    if start != upload.size {
        return Err(out_of_order(
            name,
            upload,
            &format!(
                "chunk starts at byte {start} but the upload has {} bytes; send the chunk starting there",
                upload.size
            ),
        ));
    }
    if let Some(length) = header_str(&ctx.headers, &header::CONTENT_LENGTH) {
        let length: u64 = length
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::SizeInvalid, "invalid Content-Length"))?;
        if length != bytes {
            return Err(ApiError::new(
                ErrorCode::SizeInvalid,
                format!(
                    "Content-Length {length} does not match Content-Range {range} ({bytes} bytes)"
                ),
            ));
        }
    }
    Ok(Some(bytes))
}

/// Appends the request body to the session as a new chunk; returns the new size.
async fn append(ctx: &Ctx, name: &RepositoryName, upload: &Upload, body: Body) -> ApiResult<u64> {
    let declared = declared_range(ctx, name, upload)?;
    let mut hasher = Hasher::restore(&upload.hash_state)
        .map_err(|e| ApiError::internal("resuming an upload's hash", &e))?;
    let key = paths::upload_chunk(upload.id);
    let _streaming = ctx.state.streaming_uploads.enter(upload.id);
    let mut heartbeat = Heartbeat::new(ctx, upload.id, upload.updated_at_ms);
    let received = receive(ctx, body, &mut hasher, &mut heartbeat, &key, upload.size).await?;
    if let Some(bytes) = declared.filter(|&bytes| bytes != received) {
        // A chunked body can end short of (or run past) the range it named.
        if received > 0 {
            ctx.state.blobs.delete(&key).await?;
        }
        return Err(ApiError::new(
            ErrorCode::SizeInvalid,
            format!(
                "the chunk had {received} bytes but its Content-Range named {bytes}; \
                 nothing was added, resend it from byte {}",
                upload.size
            ),
        ));
    }
    if received == 0 {
        return Ok(upload.size);
    }
    let chunk = UploadChunk {
        object_key: key.to_string(),
        size: received,
    };
    let advanced = ctx
        .state
        .meta
        .append_upload_chunk(upload.id, upload.size, &chunk, &hasher.save(), now_ms())
        .await?;
    if !advanced {
        ctx.state.blobs.delete(&key).await?;
        // The Range to resume from is where the winner left the session.
        let Some(now) = ctx.state.meta.upload(upload.id).await? else {
            return Err(ApiError::upload_unknown());
        };
        return Err(out_of_order(
            name,
            &now,
            "another request extended this upload first; check its status and resume from there",
        ));
    }
    Ok(upload.size + received)
}

/// Streams `body` into a new object at `key`, hashing it; returns the byte
/// count. An empty body creates no object. Any failure leaves no object.
///
/// A transfer can outlast the session TTL (one `PATCH` of a large model), so
/// every quarter of the TTL it marks session `id` as in use; if the session
/// is gone meanwhile (cancelled), it stops with `BLOB_UPLOAD_UNKNOWN`.
async fn receive(
    ctx: &Ctx,
    body: Body,
    hasher: &mut Hasher,
    heartbeat: &mut Heartbeat<'_>,
    key: &Path,
    already: u64,
) -> ApiResult<u64> {
    let id = heartbeat.id;
    let limits = &ctx.state.config.limits;
    let idle = Duration::from_secs(limits.body_idle_timeout_secs);
    let mut stream = body.into_data_stream();
    let mut writer: Option<BlobWriter> = None;
    let mut received = 0u64;
    let result: ApiResult<()> = async {
        loop {
            let frame = tokio::time::timeout(idle, stream.next())
                .await
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::BlobUploadInvalid,
                        format!(
                            "no upload data arrived for {} seconds (body_idle_timeout_secs)",
                            idle.as_secs()
                        ),
                    )
                })?;
            let bytes = match frame {
                None => return Ok(()),
                Some(Err(e)) => {
                    return Err(ApiError::new(
                        ErrorCode::BlobUploadInvalid,
                        format!("the request body could not be read: {e}; resume the upload"),
                    ));
                }
                Some(Ok(b)) if b.is_empty() => continue,
                Some(Ok(b)) => b,
            };
            received += bytes.len() as u64;
            if already + received > limits.blob_size_bytes_max {
                return Err(ApiError::new(
                    ErrorCode::SizeInvalid,
                    format!(
                        "blob exceeds the limit of {} bytes (blob_size_bytes_max)",
                        limits.blob_size_bytes_max
                    ),
                )
                .with_status(StatusCode::PAYLOAD_TOO_LARGE));
            }
            hasher.update(&bytes);
            let w = match writer.as_mut() {
                Some(w) => w,
                None => writer.insert(ctx.state.blobs.writer(key).await?),
            };
            if let Err(e) = w.write(bytes).await {
                return Err(gone_or(ctx, id, e.into()).await);
            }
            heartbeat.beat().await?;
        }
    }
    .await;
    match (result, writer) {
        (Ok(()), Some(w)) => {
            if let Err(e) = w.finish().await {
                return Err(gone_or(ctx, id, e.into()).await);
            }
        }
        (Ok(()), None) => {}
        (Err(e), w) => {
            // The request's own error is the one to report; a staging file the
            // abort could not remove is swept with its session's folder.
            if let Some(w) = w
                && let Err(abort) = w.abort().await
            {
                tracing::warn!(upload = %id, error = %abort, "could not discard an unfinished chunk");
            }
            return Err(e);
        }
    }
    ctx.state.metrics.bytes_in.inc_by(received);
    Ok(received)
}

/// Keeps a session in use visible as such to every server on the database:
/// its `updated_at` moves every quarter of the session TTL while a request
/// streams into it or assembles it, so no server's sweeper takes it for idle.
/// (This server's own sweeper skips it through `streaming_uploads`.)
struct Heartbeat<'a> {
    ctx: &'a Ctx,
    id: Uuid,
    every_ms: i64,
    /// When the session was last marked in use, by this request or before it.
    last_ms: i64,
}

impl<'a> Heartbeat<'a> {
    /// For session `id`, last marked in use at `last_ms` (its `updated_at`):
    /// a session idle for most of its TTL is marked at the first beat.
    fn new(ctx: &'a Ctx, id: Uuid, last_ms: i64) -> Self {
        let ttl_ms = ctx
            .state
            .config
            .limits
            .upload_session_ttl_secs
            .saturating_mul(1000);
        Heartbeat {
            ctx,
            id,
            every_ms: i64::try_from(ttl_ms / 4).unwrap_or(i64::MAX),
            last_ms,
        }
    }

    /// Marks the session in use if a quarter TTL passed; BLOB_UPLOAD_UNKNOWN
    /// if it is gone (cancelled, or swept by a server that missed a beat).
    async fn beat(&mut self) -> ApiResult<()> {
        let now = now_ms();
        if now.saturating_sub(self.last_ms) < self.every_ms {
            return Ok(());
        }
        self.last_ms = now;
        match self.ctx.state.meta.touch_upload(self.id, now).await? {
            true => Ok(()),
            false => Err(ApiError::upload_unknown()),
        }
    }
}

/// `error`, a storage failure while bytes arrive for session `id`, unless the
/// session was cancelled meanwhile and its folder went with it.
async fn gone_or(ctx: &Ctx, id: Uuid, error: ApiError) -> ApiError {
    match ctx.state.meta.upload(id).await {
        Ok(None) => ApiError::upload_unknown(),
        _ => error,
    }
}

/// A blob sent whole in one request: stream it into the session folder,
/// verify, move into place and link.
async fn single_request(
    ctx: &Ctx,
    name: &RepositoryName,
    (id, last_touched_ms): (Uuid, i64),
    digests: &[Digest],
    body: Body,
) -> ApiResult<()> {
    let mut hasher = Hasher::new(digests[0].algorithm());
    let key = paths::upload_chunk(id);
    let _streaming = ctx.state.streaming_uploads.enter(id);
    let mut heartbeat = Heartbeat::new(ctx, id, last_touched_ms);
    let size = receive(ctx, body, &mut hasher, &mut heartbeat, &key, 0).await?;
    let chunks: Vec<String> = if size > 0 {
        vec![key.to_string()]
    } else {
        Vec::new()
    };
    verify(ctx, digests, &hasher, &chunks, &mut heartbeat).await?;
    place(ctx, &digests[0], &chunks, size, &mut heartbeat).await?;
    if ctx
        .state
        .meta
        .complete_upload(id, name, &digests[0], size, now_ms())
        .await?
    {
        ctx.state.scan_wake.notify();
        crate::scanning::blob_linked(&ctx.state, name, digests[0]);
        Ok(())
    } else {
        Err(ApiError::upload_unknown())
    }
}

/// Verifies and commits a session whose bytes are all in its chunks.
async fn commit_session(
    ctx: &Ctx,
    name: &RepositoryName,
    id: Uuid,
    digests: &[Digest],
) -> ApiResult<()> {
    // Assembling re-reads every chunk, which can take a while for a large blob.
    let _streaming = ctx.state.streaming_uploads.enter(id);
    let upload = ctx
        .state
        .meta
        .upload(id)
        .await?
        .ok_or_else(ApiError::upload_unknown)?;
    let hasher = Hasher::restore(&upload.hash_state)
        .map_err(|e| ApiError::internal("resuming an upload's hash", &e))?;
    let chunks: Vec<String> = upload.chunks.iter().map(|c| c.object_key.clone()).collect();
    let mut heartbeat = Heartbeat::new(ctx, id, upload.updated_at_ms);
    verify(ctx, digests, &hasher, &chunks, &mut heartbeat).await?;
    place(ctx, &digests[0], &chunks, upload.size, &mut heartbeat).await?;
    if ctx
        .state
        .meta
        .complete_upload(id, name, &digests[0], upload.size, now_ms())
        .await?
    {
        ctx.state.scan_wake.notify();
        crate::scanning::blob_linked(&ctx.state, name, digests[0]);
        Ok(())
    } else {
        Err(ApiError::upload_unknown())
    }
}

/// Checks every requested digest against the received bytes; digests of
/// another algorithm than the one hashed on the way in are computed by
/// reading the chunks back.
async fn verify(
    ctx: &Ctx,
    digests: &[Digest],
    hasher: &Hasher,
    chunks: &[String],
    heartbeat: &mut Heartbeat<'_>,
) -> ApiResult<()> {
    for wanted in digests {
        let actual = if wanted.algorithm() == hasher.algorithm() {
            hasher.digest()
        } else {
            rehash(ctx, wanted.algorithm(), chunks, heartbeat).await?
        };
        if actual != *wanted {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                format!(
                    "the uploaded bytes have digest {actual}, not {wanted}; nothing was stored"
                ),
            )
            .with_detail(serde_json::json!({ "digest": wanted.to_string() })));
        }
    }
    Ok(())
}

async fn rehash(
    ctx: &Ctx,
    algorithm: Algorithm,
    chunks: &[String],
    heartbeat: &mut Heartbeat<'_>,
) -> ApiResult<Digest> {
    let mut hasher = Hasher::new(algorithm);
    for key in chunks {
        let mut stream = ctx
            .state
            .blobs
            .read(&Path::from(key.as_str()), None)
            .await?;
        while let Some(bytes) = stream.try_next().await? {
            hasher.update(&bytes);
            heartbeat.beat().await?;
        }
    }
    Ok(hasher.digest())
}

/// Puts the verified bytes at the blob's content address: a rename for one
/// chunk, a verified concatenation for several, nothing if already stored.
async fn place(
    ctx: &Ctx,
    digest: &Digest,
    chunks: &[String],
    size: u64,
    heartbeat: &mut Heartbeat<'_>,
) -> ApiResult<()> {
    let id = heartbeat.id;
    let blobs = &ctx.state.blobs;
    let target = paths::blob(digest);
    if ctx.state.meta.blob_anywhere(digest).await?.is_some() {
        return Ok(());
    }
    match chunks {
        [] => blobs.put(&target, Bytes::new()).await?,
        [one] => match blobs.rename(&Path::from(one.as_str()), &target).await {
            Ok(()) => {}
            // An earlier attempt (a crash, a dropped request) moved it there
            // and stopped before linking it. Nothing reaches a content address
            // unverified, so the bytes there are these.
            Err(ward_store::BlobStoreError::NotFound(_))
                if blobs.size(&target).await? == Some(size) => {}
            Err(e) => return Err(e.into()),
        },
        many => {
            // Assemble inside the session folder, checking the bytes read back.
            let assembled = paths::upload_chunk(id);
            let mut writer = blobs.writer(&assembled).await?;
            let mut hasher = Hasher::new(digest.algorithm());
            for key in many {
                let mut stream = blobs.read(&Path::from(key.as_str()), None).await?;
                while let Some(bytes) = stream.try_next().await? {
                    hasher.update(&bytes);
                    writer.write(bytes).await?;
                    heartbeat.beat().await?;
                }
            }
            if hasher.digest() != *digest || writer.written_bytes() != size {
                writer.abort().await?;
                return Err(ApiError::internal(
                    "assembling an upload",
                    &format!("chunks of {id} no longer hash to {digest}"),
                ));
            }
            writer.finish().await?;
            blobs.rename(&assembled, &target).await?;
        }
    }
    Ok(())
}
