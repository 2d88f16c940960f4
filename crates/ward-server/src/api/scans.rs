//! Scan results, on-demand rescans, quarantines and the scan status of an
//! artifact (what `ward gate` reports beside signatures).

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use ward_audit::{EventType, Outcome};
use ward_core::name::{Reference, RepositoryName};
use ward_core::{Digest, ErrorCode};
use ward_store::meta::{QuarantineSource, StoredScan};

use super::{changed, json};
use crate::access::Caller;
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Longest quarantine or release reason kept.
pub const REASON_BYTES_MAX: usize = 1024;

fn digest(text: &str) -> ApiResult<Digest> {
    Ok(text.parse()?)
}

fn result_json(stored: &StoredScan) -> Value {
    json!({
        "digest": stored.digest.to_string(),
        "ruleset": stored.ruleset,
        "max_severity": stored.max_severity,
        "findings": stored.findings,
        "unread_parts": stored.unread_parts,
        "scanned_at_ms": stored.scanned_at,
        "report": serde_json::from_str::<Value>(&stored.report).unwrap_or(Value::Null),
    })
}

/// `GET /api/v1/scans/{digest}`: the stored result, or whether it is queued.
pub(super) async fn get_scan(
    State(state): State<AppState>,
    Path(text): Path<String>,
) -> ApiResult<Response> {
    let digest = digest(&text)?;
    let result = state.meta.scan_result(&digest).await?;
    let queued = state.meta.scan_queued(&digest).await?;
    if result.is_none() && !queued {
        return Err(ApiError::new(
            ErrorCode::BlobUnknown,
            format!("{digest} has no scan result and is not queued"),
        ));
    }
    Ok(json(
        StatusCode::OK,
        json!({"digest": digest.to_string(), "queued": queued, "result": result.as_ref().map(result_json)}),
    ))
}

/// `POST /api/v1/scans/{digest}`: queues a rescan now.
pub(super) async fn rescan(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(text): Path<String>,
) -> ApiResult<Response> {
    let digest = digest(&text)?;
    if !state.meta.enqueue_scan(&digest, "request").await? {
        return Err(ApiError::new(
            ErrorCode::BlobUnknown,
            format!("{digest} is not stored in this registry"),
        ));
    }
    state.scan_wake.notify();
    let event = audit::event(EventType::SettingChanged, Some(&caller), &HeaderMap::new())
        .action("rescan")
        .digest(digest);
    audit::record(&state, event).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        json!({"digest": digest.to_string(), "queued": true}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    reason: String,
}

fn reason(body: &ReasonBody) -> ApiResult<&str> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.len() > REASON_BYTES_MAX {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("give a reason (1 to {REASON_BYTES_MAX} bytes): it is kept in the audit log"),
        ));
    }
    Ok(reason)
}

/// `GET /api/v1/quarantines`.
pub(super) async fn list_quarantines(State(state): State<AppState>) -> ApiResult<Response> {
    let items: Vec<Value> = state
        .meta
        .quarantines()
        .await?
        .into_iter()
        .map(|q| {
            json!({"digest": q.digest.to_string(), "reason": q.reason, "source": q.source,
                   "actor": q.actor, "created_at_ms": q.created_at})
        })
        .collect();
    Ok(json(StatusCode::OK, json!({"quarantines": items})))
}

/// `PUT /api/v1/quarantines/{digest}` with `{"reason": "..."}`.
pub(super) async fn quarantine(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(text): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let digest = digest(&text)?;
    let body: ReasonBody = super::json_body_limited(body).await?;
    let reason = reason(&body)?;
    let added = state
        .meta
        .quarantine(&digest, reason, QuarantineSource::Admin, caller.name())
        .await?;
    record_decision(&state, &caller, "quarantine", digest, reason).await?;
    changed(&state).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(
        status,
        json!({"digest": digest.to_string(), "quarantined": true, "already": !added}),
    ))
}

/// `POST /api/v1/quarantines/{digest}/release` with `{"reason": "..."}`.
pub(super) async fn release(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(text): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let digest = digest(&text)?;
    let body: ReasonBody = super::json_body_limited(body).await?;
    let reason = reason(&body)?;
    if !state.meta.release_quarantine(&digest).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{digest} is not quarantined"),
        ));
    }
    record_decision(&state, &caller, "release", digest, reason).await?;
    changed(&state).await?;
    Ok(json(
        StatusCode::OK,
        json!({"digest": digest.to_string(), "quarantined": false}),
    ))
}

async fn record_decision(
    state: &AppState,
    caller: &Caller,
    action: &str,
    digest: Digest,
    reason: &str,
) -> ApiResult<()> {
    let event = audit::event(
        EventType::QuarantineDecision,
        Some(caller),
        &HeaderMap::new(),
    )
    .action(action)
    .outcome(Outcome::Success)
    .digest(digest)
    .reason(reason);
    audit::record(state, event).await
}

#[derive(Deserialize)]
pub(super) struct StatusQuery {
    reference: String,
}

/// `GET /api/v1/scan-status/{name}?reference=<tag or digest>`: quarantine and
/// scan state of an artifact and of every blob it references, with the
/// repository's policy and the decision it leads to.
pub(super) async fn status(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<StatusQuery>,
) -> ApiResult<Response> {
    let repo = RepositoryName::parse(&name, state.config.limits.repository_name_bytes_max)?;
    let reference = Reference::parse(&query.reference)?;
    let Some(meta) = state.meta.resolve_manifest(&repo, &reference).await? else {
        return Err(ApiError::new(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} is not in repository {repo}"),
        ));
    };
    let content = state
        .meta
        .manifest_content(&repo, &meta.digest)
        .await?
        .unwrap_or_default();
    let snapshot = state.access.snapshot();
    let policy = crate::scanning::policy_for(&snapshot, &state.config.scan, repo.as_str()).clone();
    let decision = crate::scanning::decide(
        &state,
        &snapshot,
        &policy,
        meta.digest,
        &meta.media_type,
        &content,
        true,
    )
    .await?;
    Ok(json(
        StatusCode::OK,
        json!({
            "repository": repo.as_str(),
            "digest": meta.digest.to_string(),
            "policy": policy,
            "allowed": decision.refusal.is_none(),
            "reason": decision.refusal,
            "quarantined": decision.quarantined,
            "blobs": decision.blobs,
        }),
    ))
}
