//! Background work: expiring upload sessions and removing their data.

use std::time::Duration;

use uuid::Uuid;
use ward_store::{ObjectKey, now_ms, paths};

use crate::state::AppState;

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Sessions expired for inactivity.
    pub expired: usize,
    /// Session folders with no session (left by a crash or a finished upload).
    pub orphans: usize,
}

/// How often the sweeper runs for a given session lifetime.
pub fn sweep_interval(ttl_secs: u64) -> Duration {
    Duration::from_secs((ttl_secs / 4).clamp(1, 300))
}

/// Expires sessions idle longer than `upload_session_ttl_secs` and removes
/// session folders that no session owns. Every in-flight upload has a session
/// row before it writes to its folder, so a folder without one is garbage.
pub async fn sweep_uploads(state: &AppState) -> Result<SweepReport, crate::error::ApiError> {
    sweep_uploads_at(state, now_ms()).await
}

/// [`sweep_uploads`] as if the time were `now_ms`.
pub async fn sweep_uploads_at(
    state: &AppState,
    now_ms: i64,
) -> Result<SweepReport, crate::error::ApiError> {
    let ttl_ms = i64::try_from(
        state
            .config
            .limits
            .upload_session_ttl_secs
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    let mut report = SweepReport::default();
    loop {
        let stale = state
            .meta
            .stale_uploads(now_ms.saturating_sub(ttl_ms), 500)
            .await?;
        // Sessions a request is streaming into stay, however long ago they
        // started; once only those are left, the sweep is done.
        let idle: Vec<Uuid> = stale
            .into_iter()
            .filter(|&id| !state.streaming_uploads.contains(id))
            .collect();
        if idle.is_empty() {
            break;
        }
        for id in idle {
            if state.meta.delete_upload(id).await? {
                state.blobs.delete_prefix(&paths::upload_dir(id)).await?;
                report.expired += 1;
            }
        }
    }
    for folder in state
        .blobs
        .folders(&ObjectKey::from(paths::UPLOADS_PREFIX))
        .await?
    {
        let Some(id) = folder.filename().and_then(|f| Uuid::parse_str(f).ok()) else {
            continue;
        };
        if !state.meta.upload_exists(id).await? {
            state.blobs.delete_prefix(&folder).await?;
            report.orphans += 1;
        }
    }
    Ok(report)
}

/// Runs [`sweep_uploads`] forever at [`sweep_interval`].
pub async fn run_upload_sweeper(state: AppState) {
    let interval = sweep_interval(state.config.limits.upload_session_ttl_secs);
    loop {
        match sweep_uploads(&state).await {
            Ok(r) if r != SweepReport::default() => {
                tracing::info!(expired = r.expired, orphans = r.orphans, "upload sweep");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "upload sweep failed"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// Reloads the authorization snapshot whenever the store's revision moves,
/// so changes made through another server take effect here too.
pub async fn run_access_refresher(state: AppState) {
    let interval = Duration::from_millis(state.config.auth.revision_poll_millis.max(50));
    loop {
        tokio::time::sleep(interval).await;
        if let Err(e) = state.access.refresh(&state.meta).await {
            tracing::warn!(error = %e, "reloading access control failed; keeping the previous snapshot");
        }
    }
}
