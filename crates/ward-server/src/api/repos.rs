//! Repository settings: labels (read by policy conditions and rules) and
//! whether anyone may pull without signing in.

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use ward_audit::EventType;
use ward_core::name::RepositoryName;

use super::{changed, json};
use crate::access::Caller;
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingsBody {
    /// The full set of labels; keys not listed are removed.
    labels: Option<BTreeMap<String, String>>,
    /// Whether anyone may pull without signing in.
    public: Option<bool>,
    /// The repository's scan policy; `null` returns it to the registry default.
    #[serde(default, deserialize_with = "present")]
    scan_policy: Option<Option<crate::scanning::ScanPolicy>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<crate::scanning::ScanPolicy>>, D::Error> {
    Option::<crate::scanning::ScanPolicy>::deserialize(d).map(Some)
}

fn repository(state: &AppState, name: &str) -> ApiResult<RepositoryName> {
    Ok(RepositoryName::parse(
        name,
        state.config.limits.repository_name_bytes_max,
    )?)
}

/// `GET /api/v1/repositories/{name}`.
pub(super) async fn get_settings(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let repo = repository(&state, &name)?;
    let labels: BTreeMap<String, String> = state
        .meta
        .repository_labels(&repo)
        .await?
        .into_iter()
        .collect();
    let public = state.meta.public_pull(&repo).await?;
    let snapshot = state.access.snapshot();
    let own = snapshot.scan_policies.get(repo.as_str()).cloned();
    let effective = crate::scanning::policy_for(&snapshot, &state.config.scan, repo.as_str());
    Ok(json(
        StatusCode::OK,
        json!({"repository": repo.as_str(), "labels": labels, "public": public,
               "scan_policy": own, "effective_scan_policy": effective}),
    ))
}

/// `PUT /api/v1/repositories/{name}`: replaces labels and/or the public flag.
pub(super) async fn put_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    request_headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let repo = repository(&state, &name)?;
    let body: SettingsBody = super::json_body_limited(body).await?;
    // A scan policy decides what is blocked and quarantined: the route's
    // ManageRepositories is not enough, as the action list says.
    if let Some(policy) = &body.scan_policy {
        super::authorize(
            &state,
            &caller,
            &request_headers,
            ward_auth::policy::Action::ManageScans,
            Some(repo.as_str()),
        )
        .await?;
        // A quarantine holds in every repository that links the content, so a
        // policy quarantining more than the registry's default reaches beyond
        // this repository: only who manages scans registry-wide may set it.
        if policy
            .as_ref()
            .is_some_and(|p| p.quarantines_more_than(&state.config.scan.default_policy))
        {
            super::authorize(
                &state,
                &caller,
                &request_headers,
                ward_auth::policy::Action::ManageScans,
                None,
            )
            .await?;
        }
    }
    if let Some(labels) = &body.labels {
        ward_auth::Labels::new(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| ApiError::new(ward_core::ErrorCode::InvalidRequest, e.to_string()))?;
        for (key, _) in state.meta.repository_labels(&repo).await? {
            if !labels.contains_key(&key) {
                state.meta.remove_repository_label(&repo, &key).await?;
            }
        }
        for (key, value) in labels {
            state.meta.set_repository_label(&repo, key, value).await?;
        }
    }
    if let Some(public) = body.public {
        state.meta.set_public_pull(&repo, public).await?;
    }
    if let Some(policy) = &body.scan_policy {
        let document = policy
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| ApiError::internal("encoding a scan policy", &e))?;
        state
            .meta
            .put_scan_policy(repo.as_str(), document.as_deref())
            .await?;
    }
    let headers = axum::http::HeaderMap::new();
    let event = audit::event(EventType::SettingChanged, Some(&caller), &headers)
        .action("put_repository_settings")
        .repository(repo.as_str())
        .target(repo.as_str());
    audit::record(&state, event).await?;
    changed(&state).await?;
    get_settings(State(state), Path(name)).await
}
