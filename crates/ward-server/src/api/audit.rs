//! The audit log over HTTP: filtered queries, a full export an auditor can
//! verify offline, the log's status, and Merkle inclusion and consistency
//! proofs.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ward_audit::{AuditStore, EventFilter, EventType, Outcome, merkle};
use ward_core::ErrorCode;

use super::json;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Most leaves a proof is computed over; proofs read every leaf hash up to the
/// tree size, so this bounds their memory (32 bytes per leaf).
pub const PROOF_TREE_SIZE_MAX: u64 = 1_000_000;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueryParams {
    user: Option<String>,
    repository: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    event_type: Option<String>,
    /// RFC 3339; at or after.
    since: Option<String>,
    /// RFC 3339; strictly before.
    until: Option<String>,
    /// Continue after this sequence number.
    after: Option<u64>,
    limit: Option<usize>,
}

fn time(value: Option<&str>, name: &str) -> ApiResult<Option<OffsetDateTime>> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map_err(|e| invalid(format!("{name}={v:?} is not RFC 3339: {e}")))
        })
        .transpose()
}

fn parse_json_enum<T: serde::de::DeserializeOwned>(
    value: Option<&str>,
    name: &str,
) -> ApiResult<Option<T>> {
    value
        .map(|v| {
            serde_json::from_value(Value::String(v.to_owned()))
                .map_err(|_| invalid(format!("unknown {name} {v:?}")))
        })
        .transpose()
}

/// `GET /api/v1/audit`: events matching every given filter, oldest first.
pub(super) async fn query(
    State(state): State<AppState>,
    Query(q): Query<QueryParams>,
) -> ApiResult<Response> {
    let filter = EventFilter {
        user: q.user,
        repository: q.repository,
        action: q.action,
        outcome: parse_json_enum::<Outcome>(q.outcome.as_deref(), "outcome")?,
        event_type: parse_json_enum::<EventType>(q.event_type.as_deref(), "event_type")?,
        since: time(q.since.as_deref(), "since")?,
        until: time(q.until.as_deref(), "until")?,
        after_seq: q.after,
        limit: q.limit.unwrap_or(100),
    };
    let page = filter.page_size();
    let records = state
        .meta
        .query(&filter)
        .await
        .map_err(|e| ApiError::internal("querying the audit log", &e))?;
    let next = (records.len() == page)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    let events: Vec<Value> = records
        .iter()
        .map(|r| {
            let event: Value = serde_json::from_str(&r.event_json).unwrap_or(Value::Null);
            json!({"seq": r.seq, "hash": r.hash.to_string(), "event": event})
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({"events": events, "next_after": next}),
    ))
}

/// `GET /api/v1/audit/export`: the whole log as JSON lines (header,
/// checkpoints, events), streamed; `ward audit verify --file` checks it.
pub(super) async fn export(State(state): State<AppState>) -> ApiResult<Response> {
    let (writer, reader) = tokio::io::duplex(64 * 1024);
    let origin = state.config.audit.origin.clone();
    tokio::spawn(async move {
        let mut writer = writer;
        if let Err(e) = ward_audit::export::export_store(&state.meta, &origin, &mut writer).await {
            tracing::warn!(error = %e, "audit export stopped");
        }
    });
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(reader)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// `GET /api/v1/audit/status`: the log, checkpointer and sinks, plus the
/// checkpoint public key auditors verify with.
pub(super) async fn status(State(state): State<AppState>) -> ApiResult<Response> {
    let status = state.audit.status();
    Ok(json(
        StatusCode::OK,
        json!({"status": status, "origin": state.config.audit.origin, "checkpoint_public_key": state.audit_public_key.as_str()}),
    ))
}

/// Leaf hashes of the first `size` records.
async fn leaves(state: &AppState, size: u64) -> ApiResult<Vec<ward_audit::Hash>> {
    if size > PROOF_TREE_SIZE_MAX {
        return Err(invalid(format!(
            "proofs are computed over at most {PROOF_TREE_SIZE_MAX} events (PROOF_TREE_SIZE_MAX)"
        )));
    }
    let head = state
        .meta
        .head()
        .await
        .map_err(|e| ApiError::internal("reading the audit head", &e))?;
    if size > head.size {
        return Err(invalid(format!(
            "the log holds {} events, fewer than {size}",
            head.size
        )));
    }
    let mut out = Vec::with_capacity(size as usize);
    while (out.len() as u64) < size {
        let batch = state
            .meta
            .read(
                out.len() as u64,
                10_000.min((size - out.len() as u64) as usize),
            )
            .await
            .map_err(|e| ApiError::internal("reading the audit log", &e))?;
        if batch.is_empty() {
            return Err(ApiError::internal(
                "reading the audit log",
                &"the log ended early",
            ));
        }
        out.extend(batch.iter().map(|r| merkle::leaf_hash(r.hash.as_bytes())));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InclusionParams {
    seq: u64,
    tree_size: u64,
}

/// `GET /api/v1/audit/proof/inclusion?seq=&tree_size=`.
pub(super) async fn inclusion_proof(
    State(state): State<AppState>,
    Query(q): Query<InclusionParams>,
) -> ApiResult<Response> {
    let leaves = leaves(&state, q.tree_size).await?;
    let proof = merkle::inclusion_proof(&leaves, q.seq).map_err(|e| invalid(e.to_string()))?;
    let leaf = leaves.get(q.seq as usize).map(|h| h.to_string());
    Ok(json(
        StatusCode::OK,
        json!({"proof": proof, "leaf_hash": leaf, "root": merkle::root(&leaves).to_string()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsistencyParams {
    first: u64,
    second: u64,
}

/// `GET /api/v1/audit/proof/consistency?first=&second=`.
pub(super) async fn consistency_proof(
    State(state): State<AppState>,
    Query(q): Query<ConsistencyParams>,
) -> ApiResult<Response> {
    let leaves = leaves(&state, q.second).await?;
    let proof = merkle::consistency_proof(&leaves, q.first, q.second)
        .map_err(|e| invalid(e.to_string()))?;
    let first = leaves
        .get(..q.first as usize)
        .map(merkle::root)
        .map(|h| h.to_string());
    Ok(json(
        StatusCode::OK,
        json!({"proof": proof, "first_root": first, "second_root": merkle::root(&leaves).to_string()}),
    ))
}
