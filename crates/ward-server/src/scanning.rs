//! Scanning in the registry: scan policies, the quarantine and scan gates, the
//! scan worker, rescans and alerts.
//!
//! - **Queue.** Every new blob is queued in the transaction that stores it
//!   (`ward-store`); workers here claim jobs, scan the bytes with `ward-scan`
//!   off the async runtime, and store one result per digest.
//! - **Policy.** A repository's [`ScanPolicy`] (else the registry default in
//!   `[scan]`) says which severities quarantine content, which refuse pulls,
//!   and whether unscanned content may be pulled.
//! - **Quarantine** is per digest and registry-wide: a quarantined manifest or
//!   blob, and every manifest that references one, is refused to everyone, in
//!   every repository that links it, and cannot be tagged. Only a release
//!   (Admin, with a reason) lifts it.
//! - **Rescans** queue every blob whose result came from another rule set
//!   version, or is older than `rescan_interval_secs`.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use ward_audit::{EventType, Outcome};
use ward_core::manifest;
use ward_core::name::{Reference, RepositoryName};
use ward_core::{Digest, ErrorCode};
use ward_scan::{Report, Severity};
use ward_store::meta::{ManifestMeta, QuarantineSource, ScanJob, StoredScan};
use ward_store::{now_ms, paths};

use crate::access::snapshot::Snapshot;
use crate::error::{ApiError, ApiResult};
use crate::oci::Ctx;
use crate::state::AppState;

/// Findings named in a refusal or an alert.
pub const FINDINGS_NAMED_MAX: usize = 5;
/// Jobs one worker claims at a time.
pub const CLAIM_BATCH_MAX: u32 = 4;
/// Manifests given a scan report after one blob's scan.
pub const REPORT_MANIFESTS_MAX: u32 = 256;
/// The artifact type of the scan reports attached to artifacts as referrers.
pub const SCAN_REPORT_ARTIFACT_TYPE: &str = "application/vnd.ward.scan.report.v1+json";

/// What a repository does with scan results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanPolicy {
    /// Refuse pulls of content with a finding at or above this severity.
    pub block_severity: Option<Severity>,
    /// Refuse pulls of content not scanned yet.
    pub block_unscanned: bool,
    /// Quarantine content with a finding at or above this severity.
    pub quarantine_severity: Option<Severity>,
    /// The severity a scan that left part of a blob unread counts as (a part
    /// past a scanner limit, encrypted, or not readable from storage): what
    /// was not read may hold anything. Malformed parts do not count, since a
    /// loader fails on them too. `None` judges such a blob by its findings
    /// alone.
    pub incomplete_severity: Option<Severity>,
}

impl Default for ScanPolicy {
    /// Hardened default: a CRITICAL finding (code runs when the file is
    /// loaded) quarantines the content, and so does a scan that did not read
    /// all of it (a pickle padded past a scanner limit hides its payload from
    /// the scanner, not from `pickle.load`); nothing else blocks.
    fn default() -> Self {
        ScanPolicy {
            block_severity: None,
            block_unscanned: false,
            quarantine_severity: Some(Severity::Critical),
            incomplete_severity: Some(Severity::Critical),
        }
    }
}

impl ScanPolicy {
    fn reads_results(&self) -> bool {
        self.block_severity.is_some() || self.block_unscanned
    }

    /// The severity this policy judges `stored` by: its worst finding, or
    /// `incomplete_severity` if that is worse and the scan left parts unread.
    pub fn judged(&self, stored: &StoredScan) -> Option<Severity> {
        severity(stored).max(self.incompleteness(stored))
    }

    /// Whether some result this policy quarantines is one `default` does not:
    /// a lower quarantine threshold, or incomplete scans counted as worse.
    pub fn quarantines_more_than(&self, default: &ScanPolicy) -> bool {
        let Some(mine) = self.quarantine_severity else {
            return false;
        };
        let lower = default
            .quarantine_severity
            .is_none_or(|theirs| mine < theirs);
        let incomplete_worse = self.incomplete_severity > default.incomplete_severity
            && self.incomplete_severity.is_some_and(|s| s >= mine);
        lower || incomplete_worse
    }

    /// What the unread parts of `stored` count as under this policy.
    fn incompleteness(&self, stored: &StoredScan) -> Option<Severity> {
        self.incomplete_severity.filter(|_| stored.unread_parts > 0)
    }
}

/// `[scan]` in `ward.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Whether the scan workers run (new blobs are queued either way).
    pub enabled: bool,
    /// Concurrent scans.
    pub workers: usize,
    /// How long a claimed job is leased before another worker may take it.
    pub lease_secs: u64,
    /// How often idle workers look for jobs queued by other servers.
    pub poll_millis: u64,
    /// Delay before retrying a failed scan (doubled per attempt).
    pub retry_backoff_secs: u64,
    /// Failed attempts after which a job waits a day between tries.
    pub attempts_max: u32,
    /// Age after which a result is rescanned; 0 rescans only on rule set changes.
    pub rescan_interval_secs: u64,
    /// Policy of repositories without their own.
    pub default_policy: ScanPolicy,
    /// Where alerts on findings at or above `alert_severity` are POSTed (JSON).
    pub alert_webhook_url: Option<String>,
    /// Lowest severity that raises an alert.
    pub alert_severity: Severity,
    /// The scanner's limits (archive sizes, pickle stacks...).
    pub limits: ward_scan::Limits,
    /// Whether each scanned artifact gets its scan report as an OCI referrer
    /// (`SCAN_REPORT_ARTIFACT_TYPE`). Off, results are still stored, enforced
    /// and served by the scan API; the referrers list then holds only what
    /// clients pushed, as the OCI conformance suite expects.
    pub attach_reports: bool,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            enabled: true,
            workers: 1,
            lease_secs: 600,
            poll_millis: 1000,
            retry_backoff_secs: 30,
            attempts_max: 5,
            rescan_interval_secs: 7 * 24 * 3600,
            default_policy: ScanPolicy::default(),
            alert_webhook_url: None,
            alert_severity: Severity::Critical,
            limits: ward_scan::Limits::default(),
            attach_reports: true,
        }
    }
}

/// Wakes idle workers when new content is stored.
#[derive(Default)]
pub struct ScanWake(tokio::sync::Notify);

impl ScanWake {
    /// New blobs were stored.
    pub fn notify(&self) {
        self.0.notify_waiters();
    }
}

/// The policy in force for `repository`.
pub fn policy_for<'a>(
    snapshot: &'a Snapshot,
    config: &'a ScanConfig,
    repository: &str,
) -> &'a ScanPolicy {
    snapshot
        .scan_policies
        .get(repository)
        .unwrap_or(&config.default_policy)
}

/// Whether pulls from `name` need the scan gate at all (cheap; no I/O).
pub(crate) fn gates(ctx: &Ctx, name: &RepositoryName) -> bool {
    let snapshot = ctx.state.access.snapshot();
    !snapshot.quarantined.is_empty()
        || policy_for(&snapshot, &ctx.state.config.scan, name.as_str()).reads_results()
}

/// What the scan policy says of one manifest.
#[derive(Debug, Serialize)]
pub struct ScanDecision {
    /// Why it is refused, if it is.
    pub refusal: Option<String>,
    /// The audit event type of the refusal.
    #[serde(skip)]
    pub kind: Option<EventType>,
    /// Whether it, or something it references, is quarantined.
    pub quarantined: bool,
    /// The scan state of each blob it references (all of them when asked for
    /// a report; otherwise only those the policy needed).
    pub blobs: Vec<BlobScanState>,
}

/// The scan state of one blob.
#[derive(Debug, Serialize)]
pub struct BlobScanState {
    /// The blob.
    pub digest: String,
    /// `scanned`, `queued` or `unscanned`.
    pub state: &'static str,
    /// The worst finding, when scanned.
    pub max_severity: Option<String>,
    /// How many findings, when scanned.
    pub findings: Option<u64>,
    /// How many parts the scan left unread, when scanned.
    pub unread_parts: Option<u64>,
}

/// Decides whether manifest `digest` (with `content`) may be pulled under
/// `policy`. With `report`, every blob's state is looked up.
pub async fn decide(
    state: &AppState,
    snapshot: &Snapshot,
    policy: &ScanPolicy,
    digest: Digest,
    media_type: &str,
    content: &[u8],
    report: bool,
) -> ApiResult<ScanDecision> {
    let references = references(content, media_type);
    let mut decision = ScanDecision {
        refusal: None,
        kind: None,
        quarantined: false,
        blobs: Vec::new(),
    };
    if let Some(reason) = quarantined(snapshot, digest, &references) {
        decision.quarantined = true;
        decision.refusal = Some(reason);
        decision.kind = Some(EventType::QuarantineDenied);
        if !report {
            return Ok(decision);
        }
    }
    if !report && !policy.reads_results() {
        return Ok(decision);
    }
    for blob in references.iter().filter(|(_, blob)| *blob).map(|(d, _)| *d) {
        let stored = state.meta.scan_result(&blob).await?;
        if decision.refusal.is_none()
            && let Some(reason) = result_refusal(policy, blob, stored.as_ref())
        {
            decision.refusal = Some(reason);
            decision.kind = Some(EventType::ScanDenied);
            if !report {
                return Ok(decision);
            }
        }
        let (label, max_severity, findings, unread_parts) = match &stored {
            Some(s) => (
                "scanned",
                s.max_severity.clone(),
                Some(s.findings),
                Some(s.unread_parts),
            ),
            None if state.meta.scan_queued(&blob).await? => ("queued", None, None, None),
            None => ("unscanned", None, None, None),
        };
        decision.blobs.push(BlobScanState {
            digest: blob.to_string(),
            state: label,
            max_severity,
            findings,
            unread_parts,
        });
    }
    Ok(decision)
}

/// The gate for a manifest about to be served.
pub(crate) async fn check_manifest(
    ctx: &Ctx,
    name: &RepositoryName,
    meta: &ManifestMeta,
    content: &Bytes,
) -> ApiResult<()> {
    let snapshot = ctx.state.access.snapshot();
    let policy = policy_for(&snapshot, &ctx.state.config.scan, name.as_str()).clone();
    let decision = decide(
        &ctx.state,
        &snapshot,
        &policy,
        meta.digest,
        &meta.media_type,
        content,
        false,
    )
    .await?;
    match (decision.refusal, decision.kind) {
        (Some(reason), Some(kind)) => {
            let what = format!("{} in {name}", meta.digest);
            Err(refuse(ctx, name, kind, "pull", &what, &reason).await?)
        }
        _ => Ok(()),
    }
}

/// The gate for a blob about to be served.
pub(crate) async fn check_blob(ctx: &Ctx, name: &RepositoryName, digest: Digest) -> ApiResult<()> {
    if !gates(ctx, name) {
        return Ok(());
    }
    let snapshot = ctx.state.access.snapshot();
    let what = format!("blob {digest} in {name}");
    if let Some(reason) = quarantined(&snapshot, digest, &[]) {
        return Err(refuse(
            ctx,
            name,
            EventType::QuarantineDenied,
            "pull_blob",
            &what,
            &reason,
        )
        .await?);
    }
    let policy = policy_for(&snapshot, &ctx.state.config.scan, name.as_str()).clone();
    if !policy.reads_results() {
        return Ok(());
    }
    let stored = ctx.state.meta.scan_result(&digest).await?;
    if let Some(reason) = result_refusal(&policy, digest, stored.as_ref()) {
        return Err(refuse(
            ctx,
            name,
            EventType::ScanDenied,
            "pull_blob",
            &what,
            &reason,
        )
        .await?);
    }
    Ok(())
}

/// A quarantined artifact takes no tag (so it cannot be promoted either).
pub(crate) async fn check_tagging(
    ctx: &Ctx,
    name: &RepositoryName,
    digest: Digest,
    media_type: &str,
    content: &[u8],
    tags: &[ward_core::name::Tag],
) -> ApiResult<()> {
    let snapshot = ctx.state.access.snapshot();
    if tags.is_empty() || snapshot.quarantined.is_empty() {
        return Ok(());
    }
    let references = references(content, media_type);
    if let Some(reason) = quarantined(&snapshot, digest, &references) {
        let tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
        let what = format!("tag {} -> {digest} in {name}", tags.join(", "));
        return Err(refuse(
            ctx,
            name,
            EventType::QuarantineDenied,
            "tag",
            &what,
            &reason,
        )
        .await?);
    }
    Ok(())
}

/// The digests a manifest references: (digest, is a blob).
fn references(content: &[u8], media_type: &str) -> Vec<(Digest, bool)> {
    let Ok(parsed) = manifest::parse(content, Some(media_type)) else {
        return Vec::new();
    };
    parsed
        .references
        .iter()
        .map(|r| (r.digest, matches!(r.target, manifest::RefTarget::Blob)))
        .collect()
}

fn quarantined(
    snapshot: &Snapshot,
    digest: Digest,
    references: &[(Digest, bool)],
) -> Option<String> {
    if let Some(reason) = snapshot.quarantined.get(&digest) {
        return Some(format!("{digest} is quarantined: {reason}"));
    }
    references.iter().find_map(|(d, _)| {
        snapshot
            .quarantined
            .get(d)
            .map(|reason| format!("it contains {d}, which is quarantined: {reason}"))
    })
}

/// Why the policy refuses blob `digest` with result `stored`, if it does.
fn result_refusal(
    policy: &ScanPolicy,
    digest: Digest,
    stored: Option<&StoredScan>,
) -> Option<String> {
    let Some(stored) = stored else {
        return policy.block_unscanned.then(|| {
            format!("{digest} has not been scanned yet and this repository refuses unscanned content; retry once its scan finishes")
        });
    };
    let (Some(threshold), Some(found)) = (policy.block_severity, policy.judged(stored)) else {
        return None;
    };
    if found < threshold {
        return None;
    }
    Some(format!(
        "{digest} is judged {found} (this repository refuses {threshold} and above): {}",
        named_problems(stored, policy, threshold)
    ))
}

fn severity(stored: &StoredScan) -> Option<Severity> {
    stored.max_severity.as_deref().and_then(|s| s.parse().ok())
}

/// The worst findings at or above `threshold`, and the parts the scan could
/// not read when `policy` counts them at or above it, for a person.
fn named_problems(stored: &StoredScan, policy: &ScanPolicy, threshold: Severity) -> String {
    let Ok(report) = serde_json::from_str::<Report>(&stored.report) else {
        return "(stored report unreadable)".to_owned();
    };
    let mut findings: Vec<_> = report.at_or_above(threshold).collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut named: Vec<String> = findings
        .iter()
        .take(FINDINGS_NAMED_MAX)
        .map(|f| format!("{} {} at {}", f.severity, f.message, f.location))
        .collect();
    let mut more = findings.len().saturating_sub(FINDINGS_NAMED_MAX);
    if let Some(counted) = policy.incompleteness(stored).filter(|s| *s >= threshold) {
        let room = FINDINGS_NAMED_MAX.saturating_sub(named.len()).max(1);
        let unread = report.unreadable.iter().filter(|u| u.kind.leaves_unread());
        named.extend(unread.clone().take(room).map(|u| {
            format!(
                "{counted} (incomplete scan) did not read {}: {}",
                u.location, u.reason
            )
        }));
        more += unread.count().saturating_sub(room);
    }
    if more > 0 {
        format!("{}; and {more} more", named.join("; "))
    } else {
        named.join("; ")
    }
}

async fn refuse(
    ctx: &Ctx,
    name: &RepositoryName,
    kind: EventType,
    action: &str,
    what: &str,
    why: &str,
) -> ApiResult<ApiError> {
    let reason = format!("{what} is refused: {why}");
    crate::audit::denied(
        &ctx.state,
        kind,
        &ctx.caller,
        &ctx.headers,
        action,
        Some(name.as_str()),
        &reason,
    )
    .await?;
    Ok(ApiError::new(ErrorCode::Denied, reason))
}

/// Runs the configured number of scan workers and the rescan scheduler.
pub async fn run(state: AppState) {
    let config = &state.config.scan;
    if !config.enabled {
        tracing::warn!(
            "the scan workers are DISABLED (scan.enabled = false): new content is queued but not scanned"
        );
        return;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..config.workers.max(1) {
        tasks.spawn(run_worker(state.clone()));
    }
    tasks.spawn(run_rescans(state.clone()));
    while tasks.join_next().await.is_some() {}
}

async fn run_rescans(state: AppState) {
    let interval_secs = state.config.scan.rescan_interval_secs;
    loop {
        let before = if interval_secs == 0 {
            i64::MIN
        } else {
            now_ms().saturating_sub(
                i64::try_from(interval_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            )
        };
        match state
            .meta
            .enqueue_rescans(ward_scan::RULESET_VERSION, before, "rescan")
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    queued = n,
                    ruleset = ward_scan::RULESET_VERSION,
                    "rescans queued"
                );
                state.scan_wake.notify();
            }
            Err(e) => tracing::warn!(error = %e, "queueing rescans failed"),
        }
        let check = if interval_secs == 0 {
            3600
        } else {
            (interval_secs / 24).clamp(60, 3600)
        };
        tokio::time::sleep(Duration::from_secs(check)).await;
    }
}

async fn run_worker(state: AppState) {
    let config = &state.config.scan;
    let lease_ms = i64::try_from(config.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let poll = Duration::from_millis(config.poll_millis.max(10));
    loop {
        let wake = state.scan_wake.0.notified();
        let jobs = match state
            .meta
            .claim_scan_jobs(now_ms(), lease_ms, CLAIM_BATCH_MAX)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "claiming scan jobs failed");
                Vec::new()
            }
        };
        if jobs.is_empty() {
            let _ = tokio::time::timeout(poll, wake).await;
            continue;
        }
        for job in jobs {
            if let Err(e) = process(&state, &job).await {
                let backoff = config
                    .retry_backoff_secs
                    .saturating_mul(1 << job.attempts.min(10))
                    .min(86_400);
                let backoff = if job.attempts >= config.attempts_max {
                    86_400
                } else {
                    backoff
                };
                tracing::warn!(digest = %job.digest, attempts = job.attempts, error = %e, "scan failed; will retry");
                let retry_at =
                    now_ms().saturating_add(i64::try_from(backoff * 1000).unwrap_or(i64::MAX));
                if let Err(e) = state
                    .meta
                    .fail_scan(&job.digest, &e.to_string(), retry_at)
                    .await
                {
                    tracing::warn!(error = %e, "recording a failed scan failed");
                }
            }
        }
    }
}

/// Why one scan job could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading the blob or storing the result failed.
    #[error("{0}")]
    Io(String),
}

fn io_err(context: &str, e: &dyn std::fmt::Display) -> ScanError {
    ScanError::Io(format!("{context}: {e}"))
}

/// Scans one blob, stores the result and applies every linking repository's policy.
pub async fn process(state: &AppState, job: &ScanJob) -> Result<StoredScan, ScanError> {
    let digest = job.digest;
    if state
        .meta
        .blob_anywhere(&digest)
        .await
        .map_err(|e| io_err("looking up the blob", &e))?
        .is_none()
    {
        state
            .meta
            .drop_scan_job(&digest)
            .await
            .map_err(|e| io_err("dropping the job", &e))?;
        return Err(ScanError::Io(format!("blob {digest} is no longer stored")));
    }
    let previous = state
        .meta
        .scan_result(&digest)
        .await
        .map_err(|e| io_err("reading the previous result", &e))?;
    let file = open_blob(state, digest).await?;
    let scanner = ward_scan::Scanner::new(state.config.scan.limits.clone());
    let report = tokio::task::spawn_blocking(move || {
        let mut file = file;
        scanner.scan(&mut file)
    })
    .await
    .map_err(|e| io_err("the scan task", &e))?;
    let stored = StoredScan {
        digest,
        ruleset: report.ruleset.clone(),
        max_severity: report.max_severity().map(|s| s.as_str().to_owned()),
        findings: report.findings.len() as u64,
        unread_parts: report.unread_parts() as u64,
        report: serde_json::to_string(&report).map_err(|e| io_err("encoding the report", &e))?,
        scanned_at: now_ms(),
    };
    // Judged before it is stored: a server dying in between leaves the job
    // queued, to be judged again, never a stored result nobody judged.
    let linking = || async {
        state
            .meta
            .repositories_linking(&digest)
            .await
            .map_err(|e| io_err("listing repositories", &e))
    };
    let repositories = linking().await?;
    let news = is_news(previous.as_ref(), &stored);
    apply_policies(state, &stored, &report, &repositories, news).await?;
    state
        .meta
        .finish_scan(&stored)
        .await
        .map_err(|e| io_err("storing the result", &e))?;
    // A repository that linked the blob meanwhile read the previous result
    // (`blob_linked`): judge this one by its policy too.
    let late: Vec<String> = linking()
        .await?
        .into_iter()
        .filter(|r| !repositories.contains(r))
        .collect();
    if !late.is_empty() {
        apply_policies(state, &stored, &report, &late, false).await?;
    }
    record_result(state, &stored, &report, &repositories, &job.reason).await?;
    if state.config.scan.attach_reports {
        attach_reports(state, digest).await?;
    }
    Ok(stored)
}

/// Attaches a scan report, as an OCI referrer, to every manifest referencing
/// `digest` whose blobs all have results now. The report carries no time, so
/// the same results give the same referrer; a rescan with other results adds
/// a new one.
async fn attach_reports(state: &AppState, digest: Digest) -> Result<(), ScanError> {
    let manifests = state
        .meta
        .manifests_referencing_anywhere(&digest, REPORT_MANIFESTS_MAX)
        .await
        .map_err(|e| io_err("finding manifests", &e))?;
    for (repository, manifest) in manifests {
        if let Err(e) = attach_report(state, &repository, manifest).await {
            tracing::warn!(%repository, %manifest, error = %e, "attaching a scan report failed");
        }
    }
    Ok(())
}

/// Blob `digest` was linked into `repository` (an upload of content stored
/// before, or a mount): its stored result, scanned while other repositories
/// linked it, is judged by this repository's policy too, off the request.
pub(crate) fn blob_linked(state: &AppState, repository: &RepositoryName, digest: Digest) {
    let state = state.clone();
    let repository = repository.as_str().to_owned();
    tokio::spawn(async move {
        if let Err(e) = judge_linked(&state, repository.clone(), digest).await {
            tracing::warn!(%repository, %digest, error = %e, "applying a scan policy to a linked blob failed");
        }
    });
}

async fn judge_linked(
    state: &AppState,
    repository: String,
    digest: Digest,
) -> Result<(), ScanError> {
    let Some(stored) = state
        .meta
        .scan_result(&digest)
        .await
        .map_err(|e| io_err("reading the result", &e))?
    else {
        return Ok(()); // judged with every linking repository when its scan finishes
    };
    let report: Report = serde_json::from_str(&stored.report)
        .map_err(|e| io_err("reading the stored report", &e))?;
    apply_policies(state, &stored, &report, &[repository], false).await
}

/// A manifest was stored: its blobs may all have been scanned before it
/// existed (they are scanned as soon as they are uploaded, and shared content
/// was scanned long ago), so try to attach its report now, off the request.
pub(crate) fn manifest_stored(state: &AppState, repository: &RepositoryName, digest: Digest) {
    if !state.config.scan.enabled || !state.config.scan.attach_reports {
        return;
    }
    let state = state.clone();
    let repository = repository.as_str().to_owned();
    tokio::spawn(async move {
        if let Err(e) = attach_report(&state, &repository, digest).await {
            tracing::warn!(%repository, %digest, error = %e, "attaching a scan report failed");
        }
    });
}

async fn attach_report(
    state: &AppState,
    repository: &str,
    subject: Digest,
) -> Result<(), ScanError> {
    let store = |e: &dyn std::fmt::Display| io_err("attaching a scan report", e);
    let name = RepositoryName::parse(repository, state.config.limits.repository_name_bytes_max)
        .map_err(|e| store(&e))?;
    let Some(meta) = state
        .meta
        .resolve_manifest(&name, &Reference::Digest(subject))
        .await
        .map_err(|e| store(&e))?
    else {
        return Ok(());
    };
    let Some(content) = state
        .meta
        .manifest_content(&name, &subject)
        .await
        .map_err(|e| store(&e))?
    else {
        return Ok(());
    };
    let Ok(parsed) = manifest::parse(&content, Some(&meta.media_type)) else {
        return Ok(());
    };
    if parsed.artifact_type.as_deref() == Some(SCAN_REPORT_ARTIFACT_TYPE) {
        return Ok(());
    }
    let mut blobs = Vec::new();
    let mut worst: Option<Severity> = None;
    for blob in parsed
        .references
        .iter()
        .filter(|r| matches!(r.target, manifest::RefTarget::Blob))
    {
        let Some(result) = state
            .meta
            .scan_result(&blob.digest)
            .await
            .map_err(|e| store(&e))?
        else {
            return Ok(()); // reported when the last blob's scan finishes
        };
        worst = worst.max(severity(&result));
        blobs.push(json!({
            "digest": blob.digest.to_string(),
            "max_severity": result.max_severity,
            "findings": result.findings,
            "unread_parts": result.unread_parts,
            "report": serde_json::from_str::<serde_json::Value>(&result.report).unwrap_or_default(),
        }));
    }
    let report = json!({
        "subject": subject.to_string(),
        "ruleset": ward_scan::RULESET_VERSION,
        "max_severity": worst,
        "blobs": blobs,
    });
    let report = serde_json::to_vec(&report).map_err(|e| store(&e))?;
    let report_layer = put_blob(state, &name, Bytes::from(report)).await?;
    let config = put_blob(state, &name, Bytes::from_static(b"{}")).await?;
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "dev.ward.scan.ruleset".into(),
        json!(ward_scan::RULESET_VERSION),
    );
    annotations.insert(
        "dev.ward.scan.max-severity".into(),
        json!(worst.map_or("NONE", |s| s.as_str())),
    );
    let referrer = json!({
        "schemaVersion": 2,
        "mediaType": ward_core::media::OCI_MANIFEST,
        "artifactType": SCAN_REPORT_ARTIFACT_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.0.to_string(), "size": config.1},
        "layers": [{"mediaType": SCAN_REPORT_ARTIFACT_TYPE, "digest": report_layer.0.to_string(), "size": report_layer.1}],
        "subject": {"mediaType": meta.media_type, "digest": subject.to_string(), "size": meta.size},
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&referrer).map_err(|e| store(&e))?;
    let parsed =
        manifest::parse(&bytes, Some(ward_core::media::OCI_MANIFEST)).map_err(|e| store(&e))?;
    let digest = Digest::of(&bytes);
    state
        .meta
        .put_manifest(
            ward_store::meta::NewManifest {
                repository: &name,
                digest,
                parsed: &parsed,
                content: &bytes,
                tags: &[],
            },
            &(),
        )
        .await
        .map_err(|e| store(&e))?;
    Ok(())
}

/// Stores small `bytes` as a blob linked into `name`; returns its digest and size.
async fn put_blob(
    state: &AppState,
    name: &RepositoryName,
    bytes: Bytes,
) -> Result<(Digest, u64), ScanError> {
    let digest = Digest::of(&bytes);
    let size = bytes.len() as u64;
    state
        .blobs
        .put(&paths::blob(&digest), bytes)
        .await
        .map_err(|e| io_err("storing a scan report", &e))?;
    state
        .meta
        .link_blob(name, &digest, size)
        .await
        .map_err(|e| io_err("linking a scan report", &e))?;
    Ok((digest, size))
}

/// Opens a blob for random access: the file itself on the local store, else
/// a temporary copy.
async fn open_blob(state: &AppState, digest: Digest) -> Result<std::fs::File, ScanError> {
    let key = paths::blob(&digest);
    if let Some(path) = state.blobs.local_path(&key) {
        return std::fs::File::open(&path).map_err(|e| io_err("opening the blob", &e));
    }
    let mut stream = state
        .blobs
        .read(&key, None)
        .await
        .map_err(|e| io_err("reading the blob", &e))?;
    let mut file = tempfile::tempfile().map_err(|e| io_err("creating a temporary file", &e))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| io_err("reading the blob", &e))?;
        file.write_all(&chunk)
            .map_err(|e| io_err("writing a temporary file", &e))?;
    }
    Ok(file)
}

async fn record_result(
    state: &AppState,
    stored: &StoredScan,
    report: &Report,
    repositories: &[String],
    reason: &str,
) -> Result<(), ScanError> {
    let mut event = crate::audit::event(EventType::ScanResult, None, &axum::http::HeaderMap::new())
        .user("scanner")
        .action("scan")
        .digest(stored.digest)
        .detail("ruleset", stored.ruleset.clone())
        .detail("findings", stored.findings.to_string())
        .detail("unread_parts", stored.unread_parts.to_string())
        .detail("format", report.format.as_str())
        .detail("trigger", reason);
    if let Some(max) = &stored.max_severity {
        event = event.detail("max_severity", max.clone());
    }
    if let Some(first) = repositories.first() {
        event = event.repository(first.clone());
    }
    crate::audit::record(state, event)
        .await
        .map_err(|e| ScanError::Io(format!("recording the scan result: {}", e.message)))
}

/// Whether a result says something the previous one did not (a first scan,
/// a worse severity or more findings): only news raises an alert, so a weekly
/// rescan of known findings does not page anyone again.
fn is_news(previous: Option<&StoredScan>, now: &StoredScan) -> bool {
    previous.is_none_or(|p| worse(tally(p), tally(now)))
}

/// What a result amounts to: worst severity, findings, unread parts.
type Tally = (Option<Severity>, u64, u64);

fn tally(stored: &StoredScan) -> Tally {
    (severity(stored), stored.findings, stored.unread_parts)
}

/// Whether a result is worse than an earlier one in any of the three.
fn worse(before: Tally, now: Tally) -> bool {
    now.0 > before.0 || now.1 > before.1 || now.2 > before.2
}

/// Whether an administrator released `stored`'s blob from quarantine when
/// its scan had found as much as now: a policy does not quarantine it again
/// for the same findings (a rescan, another repository linking it).
async fn released_as_is(state: &AppState, stored: &StoredScan) -> Result<bool, ScanError> {
    let Some(released) = state
        .meta
        .released_scan(&stored.digest)
        .await
        .map_err(|e| io_err("reading the last release", &e))?
    else {
        return Ok(false);
    };
    let then = (
        released
            .max_severity
            .as_deref()
            .and_then(|s| s.parse().ok()),
        released.findings,
        released.unread_parts,
    );
    Ok(!worse(then, tally(stored)))
}

/// Quarantines per the strictest linking repository's policy and, for
/// `news`, raises alerts.
async fn apply_policies(
    state: &AppState,
    stored: &StoredScan,
    report: &Report,
    repositories: &[String],
    news: bool,
) -> Result<(), ScanError> {
    let snapshot = state.access.snapshot();
    let config = &state.config.scan;
    let quarantining = repositories.iter().find_map(|r| {
        let policy = policy_for(&snapshot, config, r);
        let found = policy.judged(stored)?;
        let threshold = policy.quarantine_severity.filter(|t| found >= *t)?;
        Some((r, policy, found, threshold))
    });
    let quarantining = match quarantining {
        Some(q) if released_as_is(state, stored).await? => {
            tracing::info!(digest = %stored.digest, policy_of = %q.0, "not quarantined again: released before with the same findings");
            None
        }
        q => q,
    };
    if let Some((first, policy, found, threshold)) = quarantining {
        let reason = format!(
            "scan judged it {found}: {} (policy of {first})",
            named_problems(stored, policy, threshold)
        );
        let added = state
            .meta
            .quarantine(&stored.digest, &reason, QuarantineSource::Policy, "scanner")
            .await
            .map_err(|e| io_err("quarantining", &e))?;
        if added {
            state
                .access
                .refresh(&state.meta)
                .await
                .map_err(|e| io_err("reloading access control", &e))?;
            let event = crate::audit::event(
                EventType::QuarantineDecision,
                None,
                &axum::http::HeaderMap::new(),
            )
            .user("scanner")
            .action("quarantine")
            .outcome(Outcome::Success)
            .digest(stored.digest)
            .repository(first.clone())
            .reason(reason.clone());
            crate::audit::record(state, event)
                .await
                .map_err(|e| ScanError::Io(format!("recording the quarantine: {}", e.message)))?;
            tracing::warn!(digest = %stored.digest, %reason, "quarantined");
        }
    }
    let alerting = repositories
        .iter()
        .map(|r| policy_for(&snapshot, config, r).judged(stored))
        .max()
        .unwrap_or_else(|| config.default_policy.judged(stored));
    if news
        && alerting.is_some_and(|found| found >= config.alert_severity)
        && let Some(url) = &config.alert_webhook_url
    {
        alert(url, stored, report, repositories).await;
    }
    Ok(())
}

/// POSTs an alert; failures are logged (the audit log holds the result anyway).
async fn alert(url: &str, stored: &StoredScan, report: &Report, repositories: &[String]) {
    let findings: Vec<_> = report
        .findings
        .iter()
        .take(FINDINGS_NAMED_MAX * 4)
        .collect();
    let body = json!({
        "type": "ward.scan.alert",
        "digest": stored.digest.to_string(),
        "repositories": repositories,
        "max_severity": stored.max_severity,
        "ruleset": stored.ruleset,
        "findings": findings,
        "unread": report.unreadable.iter().filter(|u| u.kind.leaves_unread()).take(FINDINGS_NAMED_MAX * 4).collect::<Vec<_>>(),
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build();
    let result = match client {
        Ok(c) => c
            .post(url)
            .json(&body)
            .send()
            .await
            .and_then(|r| r.error_for_status()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(digest = %stored.digest, error = %e, "sending a scan alert failed");
    }
}

/// Parses stored scan policies for the access snapshot.
pub fn parse_policies(rows: Vec<(String, String)>) -> Result<HashMap<String, ScanPolicy>, String> {
    rows.into_iter()
        .map(|(repo, doc)| {
            serde_json::from_str::<ScanPolicy>(&doc)
                .map(|p| (repo.clone(), p))
                .map_err(|e| format!("scan policy of {repo}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(max: Option<&str>, findings: u64) -> StoredScan {
        StoredScan {
            digest: Digest::of(b"x"),
            ruleset: "r".into(),
            max_severity: max.map(str::to_owned),
            findings,
            unread_parts: 0,
            report: "{}".into(),
            scanned_at: 0,
        }
    }

    #[test]
    fn only_new_or_worse_results_are_news() {
        let cases = [
            (None, result(Some("CRITICAL"), 1), true),
            (
                Some(result(Some("CRITICAL"), 1)),
                result(Some("CRITICAL"), 1),
                false,
            ),
            (
                Some(result(Some("HIGH"), 1)),
                result(Some("CRITICAL"), 1),
                true,
            ),
            (
                Some(result(Some("CRITICAL"), 1)),
                result(Some("CRITICAL"), 2),
                true,
            ),
            (Some(result(None, 0)), result(Some("MEDIUM"), 1), true),
            (
                Some(result(Some("CRITICAL"), 2)),
                result(Some("HIGH"), 1),
                false,
            ),
        ];
        for (previous, now, want) in cases {
            assert_eq!(
                is_news(previous.as_ref(), &now),
                want,
                "{previous:?} -> {now:?}"
            );
        }
    }

    #[test]
    fn a_policy_quarantines_more_than_the_default_only_when_some_result_says_so() {
        let policy = |q: Option<Severity>, i: Option<Severity>| ScanPolicy {
            quarantine_severity: q,
            incomplete_severity: i,
            ..ScanPolicy::default()
        };
        let (high, crit) = (Some(Severity::High), Some(Severity::Critical));
        let default = ScanPolicy::default(); // quarantine CRITICAL, incomplete CRITICAL
        let cases = [
            (policy(crit, crit), false),
            (policy(None, crit), false),
            (policy(high, crit), true),
            (policy(crit, None), false),
            (policy(Some(Severity::Info), None), true),
        ];
        for (p, want) in cases {
            assert_eq!(p.quarantines_more_than(&default), want, "{p:?}");
        }
        let lenient = policy(crit, None);
        assert!(policy(crit, crit).quarantines_more_than(&lenient));
        assert!(
            !policy(crit, high).quarantines_more_than(&lenient),
            "HIGH never reaches CRITICAL"
        );
        assert!(policy(crit, crit).quarantines_more_than(&policy(None, crit)));
    }

    #[test]
    fn stored_policies_parse_and_bad_ones_are_named() {
        let ok = parse_policies(vec![(
            "models/a".into(),
            r#"{"block_severity":"HIGH","block_unscanned":true}"#.into(),
        )])
        .unwrap();
        let policy = &ok["models/a"];
        assert_eq!(policy.block_severity, Some(Severity::High));
        assert!(policy.block_unscanned);
        assert_eq!(
            policy.quarantine_severity,
            Some(Severity::Critical),
            "defaults fill the rest"
        );
        let err =
            parse_policies(vec![("models/b".into(), r#"{"block_at":"HIGH"}"#.into())]).unwrap_err();
        assert!(err.contains("models/b"), "{err}");
    }
}
