//! Manifests: pushed byte-exact, served with the media type they were pushed as.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::json;
use ward_audit::EventType;
use ward_core::manifest::{self, ParsedManifest};
use ward_core::media;
use ward_core::name::{NameError, Reference, RepositoryName, Tag};
use ward_core::{Digest, ErrorCode};
use ward_store::meta::{
    DeleteManifestOutcome, ManifestMeta, NewManifest, PutManifestOutcome, TagProtection,
};

use crate::access::Verdict;
use crate::access::snapshot::Snapshot;
use crate::audit;
use ward_auth::policy::{Action, TagContext};

use super::{Ctx, empty, require_delete_enabled};
use crate::error::{ApiError, ApiResult};
use crate::http::{header_str, query_values};

async fn unknown(ctx: &Ctx, name: &RepositoryName, reference: &Reference) -> ApiError {
    match ctx.state.meta.repository_exists(name).await {
        Ok(false) => ApiError::new(
            ErrorCode::NameUnknown,
            format!("repository {name} does not exist"),
        )
        .with_detail(json!({ "name": name.as_str() })),
        _ => ApiError::new(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} is not in repository {name}"),
        ),
    }
}

/// The reference of a read or a delete. A name that is no valid tag cannot
/// tag anything, so it is answered like any tag the repository lacks (404
/// `MANIFEST_UNKNOWN`, as the conformance suite and distribution expect); a
/// malformed digest is still `DIGEST_INVALID`. Pushes keep `TAG_INVALID`.
fn existing_reference(name: &RepositoryName, reference: &str) -> ApiResult<Reference> {
    match Reference::parse(reference) {
        Err(NameError::InvalidTag(tag)) => Err(ApiError::new(
            ErrorCode::ManifestUnknown,
            format!(
                "no manifest is tagged {tag:?} in {name}: that is not a valid tag (1 to 128 \
                 letters, digits, '_', '.' and '-', not starting with '.' or '-') nor a digest"
            ),
        )),
        other => Ok(other?),
    }
}

fn etag(digest: &Digest) -> String {
    format!("\"{digest}\"")
}

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`.
pub(super) async fn get(ctx: &Ctx, name: &str, reference: &str) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let reference = existing_reference(&name, reference)?;
    let Some(meta) = ctx.state.meta.resolve_manifest(&name, &reference).await? else {
        return Err(unknown(ctx, &name, &reference).await);
    };
    let accept = ctx
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if !media::accepts(accept, &meta.media_type) {
        return Err(ApiError::new(
            ErrorCode::ManifestUnknown,
            format!(
                "manifest {reference} is {}, which the request's Accept header does not list",
                meta.media_type
            ),
        ));
    }
    let signatures = crate::gate::protects(ctx, &name);
    let scans = crate::scanning::gates(ctx, &name);
    if signatures || scans {
        let bytes = content(ctx, &name, &meta).await?;
        if scans {
            crate::scanning::check_manifest(ctx, &name, &meta, &bytes).await?;
        }
        if signatures {
            crate::gate::check_manifest(ctx, &name, &reference, &meta, &bytes).await?;
        }
    }
    let tag = etag(&meta.digest);
    let headers = [
        ("content-type", meta.media_type.clone()),
        ("docker-content-digest", meta.digest.to_string()),
        ("etag", tag.clone()),
        ("content-length", meta.size.to_string()),
    ];
    let not_modified = header_str(&ctx.headers, &header::IF_NONE_MATCH).is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim() == tag || t.trim() == meta.digest.to_string())
    });
    if not_modified {
        return Ok(empty(StatusCode::NOT_MODIFIED, &headers[1..3]));
    }
    if ctx.method == Method::HEAD {
        return Ok(empty(StatusCode::OK, &headers));
    }
    let content = content(ctx, &name, &meta).await?;
    let mut event = audit::event(EventType::Pull, Some(&ctx.caller), &ctx.headers)
        .repository(name.as_str())
        .digest(meta.digest);
    if let Reference::Tag(t) = &reference {
        event = event.tag(t.as_str());
    }
    audit::record(&ctx.state, event).await?;
    ctx.state.metrics.bytes_out.inc_by(content.len() as u64);
    let mut response = (StatusCode::OK, content).into_response();
    for (n, v) in headers {
        if let Ok(v) = header::HeaderValue::from_str(&v) {
            response.headers_mut().insert(n, v);
        }
    }
    Ok(response)
}

async fn content(ctx: &Ctx, name: &RepositoryName, meta: &ManifestMeta) -> ApiResult<Bytes> {
    if let Some(bytes) = ctx.state.manifests.get(&meta.digest) {
        return Ok(bytes);
    }
    let bytes = ctx
        .state
        .meta
        .manifest_content(name, &meta.digest)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::ManifestUnknown, "manifest was deleted"))?;
    ctx.state.manifests.insert(meta.digest, bytes.clone());
    Ok(bytes)
}

/// Reads a manifest body, refusing it with 413 past `manifest_size_bytes_max`.
async fn read_limited(ctx: &Ctx, body: Body) -> ApiResult<Bytes> {
    let max = ctx.state.config.limits.manifest_size_bytes_max;
    let too_big = |len: u64| {
        ApiError::new(
            ErrorCode::ManifestInvalid,
            format!("manifest is {len} bytes or more, above the limit of {max} bytes (manifest_size_bytes_max)"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    if let Some(len) =
        header_str(&ctx.headers, &header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(too_big(len));
    }
    let mut buf = BytesMut::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::ManifestInvalid,
                format!("the manifest body could not be read: {e}"),
            )
        })?;
        if (buf.len() + chunk.len()) as u64 > max {
            return Err(too_big((buf.len() + chunk.len()) as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The tags a push sets: the reference if it is a tag, plus `?tag=` parameters.
pub(super) fn push_tags(ctx: &Ctx, reference: &Reference) -> ApiResult<Vec<Tag>> {
    let mut tags = Vec::new();
    if let Reference::Tag(t) = reference {
        tags.push(t.clone());
    }
    for t in query_values(&ctx.query, "tag") {
        let t = Tag::parse(t)?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let max = ctx.state.config.limits.tags_per_push_max;
    if tags.len() > max {
        return Err(ApiError::new(
            ErrorCode::TagInvalid,
            format!(
                "{} tags in one push, above the limit of {max} (tags_per_push_max)",
                tags.len()
            ),
        ));
    }
    Ok(tags)
}

/// `PUT /v2/<name>/manifests/<reference>`.
pub(super) async fn put(ctx: &Ctx, name: &str, reference: &str, body: Body) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let reference = Reference::parse(reference)?;
    let tags = push_tags(ctx, &reference)?;
    let bytes = read_limited(ctx, body).await?;
    let parsed = manifest::parse(&bytes, header_str(&ctx.headers, &header::CONTENT_TYPE))?;
    let digest = match &reference {
        Reference::Digest(d) => {
            let actual = Digest::of_with(d.algorithm(), &bytes);
            if actual != *d {
                return Err(ApiError::new(
                    ErrorCode::DigestInvalid,
                    format!("the manifest's digest is {actual}, not {d} as the URL says"),
                )
                .with_detail(json!({ "digest": d.to_string() })));
            }
            actual
        }
        Reference::Tag(_) => Digest::of(&bytes),
    };
    store(ctx, &name, digest, &parsed, &bytes, &tags).await?;
    let mut headers = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
        ("content-length", "0".to_owned()),
    ];
    if let Some(subject) = &parsed.subject {
        headers.push(("oci-subject", subject.digest.to_string()));
    }
    if !query_values(&ctx.query, "tag")
        .collect::<Vec<_>>()
        .is_empty()
    {
        headers.extend(tags.iter().map(|t| ("oci-tag", t.to_string())));
    }
    Ok(empty(StatusCode::CREATED, &headers))
}

/// Immutability rules, consulted inside the storing transaction.
struct Protection<'a>(&'a Snapshot);

impl TagProtection for Protection<'_> {
    fn protecting_rule(&self, repository: &RepositoryName, tag: &Tag) -> Option<String> {
        let repo = repository.as_str();
        self.0
            .immutability
            .matching_rule(repo, self.0.labels(repo), tag.as_str())
            .map(|r| r.to_string())
    }
}

/// What deleting a manifest by digest must respect for each tag that goes
/// with it: immutability, and the caller's right to delete that tag (a policy
/// condition on `ward:Tag`). Both are checked by the store inside the
/// deleting transaction.
struct DeleteGuard<'a> {
    protection: Protection<'a>,
    ctx: &'a Ctx,
    /// The verdict that refused a tag, when it was the policy (not a rule).
    refused: std::sync::Mutex<Option<Verdict>>,
}

impl TagProtection for DeleteGuard<'_> {
    fn protecting_rule(&self, repository: &RepositoryName, tag: &Tag) -> Option<String> {
        if let Some(rule) = self.protection.protecting_rule(repository, tag) {
            return Some(rule);
        }
        let verdict = self.ctx.state.access.authorize(
            &self.ctx.caller,
            Action::Delete,
            Some(repository.as_str()),
            TagContext::Tag(tag.as_str()),
        );
        if matches!(verdict, Verdict::Allow) {
            return None;
        }
        let reason = format!("the policy refuses deleting tag {tag}");
        if let Ok(mut refused) = self.refused.lock() {
            *refused = Some(verdict);
        }
        Some(reason)
    }
}

async fn store(
    ctx: &Ctx,
    name: &RepositoryName,
    digest: Digest,
    parsed: &ParsedManifest,
    bytes: &[u8],
    tags: &[Tag],
) -> ApiResult<()> {
    let snapshot = ctx.state.access.snapshot();
    for tag in tags {
        let labels = snapshot.labels(name.as_str());
        if let Some(rule) =
            snapshot
                .immutability
                .forbidding_rule(name.as_str(), labels, tag.as_str())
        {
            let reason = format!(
                "tag {tag} may not be used in {name} under rule {rule}: deploy by an immutable version tag or by digest"
            );
            return Err(refuse_immutable(ctx, name, &reason).await?);
        }
    }
    crate::scanning::check_tagging(ctx, name, digest, &parsed.media_type, bytes, tags).await?;
    crate::gate::check_promotion(ctx, name, digest, &parsed.media_type, bytes, tags).await?;
    let outcome = ctx
        .state
        .meta
        .put_manifest(
            NewManifest {
                repository: name,
                digest,
                parsed,
                content: bytes,
                tags,
            },
            &Protection(&snapshot),
        )
        .await?;
    match outcome {
        PutManifestOutcome::Stored { moved } => {
            crate::scanning::manifest_stored(&ctx.state, name, digest);
            if crate::gate::may_be_signature(tags, parsed.subject.is_some()) {
                ctx.state.signatures.signatures_changed();
            }
            let mut event = audit::event(EventType::Push, Some(&ctx.caller), &ctx.headers)
                .repository(name.as_str())
                .digest(digest)
                .detail("media_type", parsed.media_type.as_str());
            if let Some(t) = tags.first() {
                event = event.tag(t.as_str());
            }
            if tags.len() > 1 {
                let all: Vec<&str> = tags.iter().map(Tag::as_str).collect();
                event = event.detail("tags", all.join(","));
            }
            audit::record(&ctx.state, event).await?;
            for (tag, previous) in moved {
                let event = audit::event(EventType::TagMove, Some(&ctx.caller), &ctx.headers)
                    .repository(name.as_str())
                    .digest(digest)
                    .tag(tag.as_str())
                    .detail("previous_digest", previous.to_string());
                audit::record(&ctx.state, event).await?;
            }
            Ok(())
        }
        PutManifestOutcome::MissingReferences(missing) => {
            let message = |d: &Digest| {
                format!("manifest references {d}, which is not in repository {name}; push it first")
            };
            let mut err = ApiError::new(ErrorCode::ManifestBlobUnknown, message(&missing[0]))
                .with_detail(json!({ "digest": missing[0].to_string() }));
            for d in &missing[1..] {
                err = err.and(
                    ErrorCode::ManifestBlobUnknown,
                    message(d),
                    json!({ "digest": d.to_string() }),
                );
            }
            Err(err)
        }
        PutManifestOutcome::SizeMismatch {
            digest,
            declared,
            stored,
        } => Err(ApiError::new(
            ErrorCode::ManifestInvalid,
            format!(
                "manifest declares {digest} as {declared} bytes, but it is {stored} bytes in repository {name}; fix the descriptor's size"
            ),
        )
        .with_detail(json!({ "digest": digest.to_string(), "declared": declared, "stored": stored }))),
        PutManifestOutcome::TagProtected {
            tag,
            rule,
            bound_to,
        } => {
            let reason = format!(
                "tag {tag} is immutable under rule {rule} and stays bound to {bound_to}; push under a new tag"
            );
            let err = refuse_immutable(ctx, name, &reason).await?;
            Err(err.with_detail(
                json!({ "tag": tag.as_str(), "rule": rule, "digest": bound_to.to_string() }),
            ))
        }
    }
}

/// Records an immutability refusal and returns the error to answer with.
async fn refuse_immutable(ctx: &Ctx, name: &RepositoryName, reason: &str) -> ApiResult<ApiError> {
    refuse_protected(ctx, name, "push", reason).await
}

async fn refuse_protected(
    ctx: &Ctx,
    name: &RepositoryName,
    action: &str,
    reason: &str,
) -> ApiResult<ApiError> {
    audit::denied(
        &ctx.state,
        EventType::ImmutabilityDenied,
        &ctx.caller,
        &ctx.headers,
        action,
        Some(name.as_str()),
        reason,
    )
    .await?;
    Ok(ApiError::new(ErrorCode::Denied, reason.to_owned()))
}

/// Refuses to delete `tag`, or the manifest it points at, under `rule`.
async fn refuse_delete_protected(
    ctx: &Ctx,
    name: &RepositoryName,
    tag: &Tag,
    rule: &str,
) -> ApiResult<ApiError> {
    let reason = format!(
        "tag {tag} in {name} is immutable under rule {rule}; neither the tag nor the manifest it points at may be deleted"
    );
    refuse_protected(ctx, name, "delete", &reason).await
}

/// `DELETE /v2/<name>/manifests/<reference>`: a tag removes only the tag; a
/// digest removes the manifest and every tag pointing at it.
pub(super) async fn delete(ctx: &Ctx, name: &str, reference: &str) -> ApiResult<Response> {
    require_delete_enabled(ctx)?;
    let name = ctx.repository(name)?;
    let reference = existing_reference(&name, reference)?;
    // An immutable tag may not be deleted, nor the manifest it points at. A
    // tag's protection depends on its name only; a manifest's tags are checked
    // by the store in the deleting transaction, so a tag pushed meanwhile is
    // not deleted unchecked.
    let snapshot = ctx.state.access.snapshot();
    let protection = Protection(&snapshot);
    let deleted = match &reference {
        Reference::Tag(t) => {
            if let Some(rule) = protection.protecting_rule(&name, t) {
                return Err(refuse_delete_protected(ctx, &name, t, &rule).await?);
            }
            ctx.state.meta.delete_tag(&name, t).await?
        }
        Reference::Digest(d) => {
            let guard = DeleteGuard {
                protection,
                ctx,
                refused: std::sync::Mutex::new(None),
            };
            match ctx.state.meta.delete_manifest(&name, d, &guard).await? {
                DeleteManifestOutcome::Deleted => true,
                DeleteManifestOutcome::Unknown => false,
                DeleteManifestOutcome::TagProtected { tag, rule } => {
                    let refused = guard.refused.lock().ok().and_then(|mut r| r.take());
                    return Err(match refused {
                        Some(verdict) => {
                            let scope = format!("repository:{name}:delete");
                            let repo = Some(name.as_str());
                            super::refusal(ctx, verdict, Action::Delete, repo, &scope).await?
                        }
                        None => refuse_delete_protected(ctx, &name, &tag, &rule).await?,
                    });
                }
            }
        }
    };
    if deleted {
        // What went may have been a signature (a referrer, a `.sig` tag):
        // verdicts that counted it must not outlive it.
        ctx.state.signatures.signatures_changed();
        let mut event = audit::event(EventType::Delete, Some(&ctx.caller), &ctx.headers)
            .repository(name.as_str());
        event = match &reference {
            Reference::Tag(t) => event.tag(t.as_str()),
            Reference::Digest(d) => event.digest(*d),
        };
        audit::record(&ctx.state, event).await?;
        Ok(empty(
            StatusCode::ACCEPTED,
            &[("content-length", "0".into())],
        ))
    } else {
        Err(unknown(ctx, &name, &reference).await)
    }
}
