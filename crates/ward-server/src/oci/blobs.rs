//! Reading and deleting blobs. A blob is served only through the requesting
//! repository's link to it.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use ward_core::{Digest, ErrorCode};
use ward_store::paths;

use super::{Ctx, empty, require_delete_enabled};
use crate::error::{ApiError, ApiResult};
use crate::http::{ByteRange, byte_range, header_str};

fn blob_unknown(digest: &Digest) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUnknown,
        format!("blob {digest} is not in this repository"),
    )
    .with_detail(serde_json::json!({ "digest": digest.to_string() }))
}

/// `GET`/`HEAD /v2/<name>/blobs/<digest>`, with single `Range` requests.
pub(super) async fn get(ctx: &Ctx, name: &str, digest: &str) -> ApiResult<Response> {
    let name = ctx.repository(name)?;
    let digest: Digest = digest.parse()?;
    let size = ctx
        .state
        .meta
        .blob_in_repository(&name, &digest)
        .await?
        .ok_or_else(|| blob_unknown(&digest))?;
    crate::scanning::check_blob(ctx, &name, digest).await?;
    crate::gate::check_blob(ctx, &name, digest).await?;
    let range = byte_range(header_str(&ctx.headers, &header::RANGE), size);
    let common = [
        ("docker-content-digest", digest.to_string()),
        ("etag", format!("\"{digest}\"")),
        ("accept-ranges", "bytes".to_owned()),
        ("content-type", "application/octet-stream".to_owned()),
    ];
    let (status, start, end) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
        ByteRange::Unsatisfiable => {
            return Ok(empty(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &[("content-range", format!("bytes */{size}"))],
            ));
        }
    };
    let mut headers: Vec<(&str, String)> = common.to_vec();
    headers.push(("content-length", (end - start).to_string()));
    if status == StatusCode::PARTIAL_CONTENT {
        headers.push(("content-range", format!("bytes {start}-{}/{size}", end - 1)));
    }
    if ctx.method == axum::http::Method::HEAD {
        return Ok(empty(status, &headers));
    }
    let event = crate::audit::event(ward_audit::EventType::Pull, Some(&ctx.caller), &ctx.headers)
        .action("pull_blob")
        .repository(name.as_str())
        .digest(digest);
    crate::audit::record(&ctx.state, event).await?;
    let key = paths::blob(&digest);
    let stream = if end > start {
        let range = (start, end) != (0, size);
        ctx.state
            .blobs
            .read(&key, range.then_some(start..end))
            .await?
    } else {
        futures::stream::empty().boxed()
    };
    let metrics = ctx.state.metrics.clone();
    let body = Body::from_stream(stream.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            metrics.bytes_out.inc_by(bytes.len() as u64);
        }
        chunk
    }));
    let mut response = (status, body).into_response();
    for (n, v) in headers {
        if let Ok(v) = header::HeaderValue::from_str(&v) {
            response.headers_mut().insert(n, v);
        }
    }
    Ok(response)
}

/// `DELETE /v2/<name>/blobs/<digest>`: removes this repository's link only.
pub(super) async fn delete(ctx: &Ctx, name: &str, digest: &str) -> ApiResult<Response> {
    require_delete_enabled(ctx)?;
    let name = ctx.repository(name)?;
    let digest: Digest = digest.parse()?;
    if ctx.state.meta.unlink_blob(&name, &digest).await? {
        let event = crate::audit::event(
            ward_audit::EventType::Delete,
            Some(&ctx.caller),
            &ctx.headers,
        )
        .repository(name.as_str())
        .digest(digest)
        .detail("object", "blob");
        crate::audit::record(&ctx.state, event).await?;
        Ok(empty(
            StatusCode::ACCEPTED,
            &[("content-length", "0".into())],
        ))
    } else {
        Err(blob_unknown(&digest))
    }
}
