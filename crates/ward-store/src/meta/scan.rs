//! Scanning: the durable scan queue, results per blob digest, quarantines and
//! per-repository scan policies.
//!
//! The queue is a table, so it survives restarts and is shared by every server
//! on one database: a worker claims jobs by pushing their next attempt past a
//! lease, so a job whose worker died is claimed again once the lease ends.
//! Severities, reports and policies are stored as text and JSON; their meaning
//! belongs to `ward-scan` and the server.

use ward_core::Digest;

use super::auth::change;
use super::{MetaStore, StoreError, now_ms, on_reader, on_writer, parse_digest, to_u64};

/// A blob digest to scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanJob {
    /// The blob.
    pub digest: Digest,
    /// Why it was queued (`push`, `rescan`, `ruleset`, `request`).
    pub reason: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// A stored scan result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredScan {
    /// The blob scanned.
    pub digest: Digest,
    /// The rule set version that produced it.
    pub ruleset: String,
    /// The highest finding severity, if any finding.
    pub max_severity: Option<String>,
    /// How many findings.
    pub findings: u64,
    /// How many parts of the blob the scan left unread that a loader would
    /// read (over a scanner limit, encrypted, an I/O failure); parts that are
    /// malformed for any reader are not counted.
    pub unread_parts: u64,
    /// The whole report (JSON).
    pub report: String,
    /// When (Unix ms).
    pub scanned_at: i64,
}

/// Who quarantined a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuarantineSource {
    /// A scan policy's threshold.
    Policy,
    /// An administrator.
    Admin,
}

impl QuarantineSource {
    fn as_str(self) -> &'static str {
        match self {
            QuarantineSource::Policy => "policy",
            QuarantineSource::Admin => "admin",
        }
    }
}

/// What a blob's scan had found when it was released from quarantine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleasedScan {
    /// The highest finding severity then, if any finding.
    pub max_severity: Option<String>,
    /// How many findings then.
    pub findings: u64,
    /// How many unread parts then.
    pub unread_parts: u64,
    /// When it was released (Unix ms).
    pub released_at: i64,
}

/// A quarantined digest: nothing that is or contains it may be pulled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantine {
    /// The manifest or blob.
    pub digest: Digest,
    /// Why.
    pub reason: String,
    /// `policy` or `admin`.
    pub source: String,
    /// Who (a user name, or `scanner`).
    pub actor: String,
    /// When (Unix ms).
    pub created_at: i64,
}

type ScanRow = (String, String, Option<String>, i64, i64, String, i64);

fn scan_from_row(row: ScanRow) -> Result<StoredScan, StoreError> {
    let (digest, ruleset, max_severity, findings, unread_parts, report, scanned_at) = row;
    Ok(StoredScan {
        digest: parse_digest(&digest)?,
        ruleset,
        max_severity,
        findings: to_u64(findings, "finding count")?,
        unread_parts: to_u64(unread_parts, "unread part count")?,
        report,
        scanned_at,
    })
}

impl MetaStore {
    /// Queues `digest` for a scan (again), due now, even if it waits for a retry.
    /// False if no such blob is stored.
    pub async fn enqueue_scan(&self, digest: &Digest, reason: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        on_writer!(self, |pool| {
            let result = sqlx::query(
                "INSERT INTO scan_queue (digest, reason, enqueued_at, next_attempt_at) \
                 SELECT digest, $2, $3, $3 FROM blobs WHERE digest = $1 \
                 ON CONFLICT (digest) DO UPDATE SET next_attempt_at = excluded.next_attempt_at",
            )
            .bind(digest.to_string())
            .bind(reason)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(result.rows_affected() > 0)
        })
    }

    /// Queues every stored blob whose result was made by another rule set than
    /// `ruleset`, or before `scanned_before_ms`, or that has no result. Returns
    /// how many were queued.
    pub async fn enqueue_rescans(
        &self,
        ruleset: &str,
        scanned_before_ms: i64,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        on_writer!(self, |pool| {
            let result = sqlx::query(
                "INSERT INTO scan_queue (digest, reason, enqueued_at, next_attempt_at) \
                 SELECT b.digest, $3, $4, $4 FROM blobs b LEFT JOIN scan_results r ON r.digest = b.digest \
                 WHERE r.digest IS NULL OR r.ruleset <> $1 OR r.scanned_at < $2 \
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(ruleset)
            .bind(scanned_before_ms)
            .bind(reason)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(result.rows_affected())
        })
    }

    /// Claims up to `limit` due jobs: each is leased for `lease_ms` (claimed
    /// again after that if its worker never finished it).
    pub async fn claim_scan_jobs(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ScanJob>, StoreError> {
        on_writer!(self, |pool| {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "UPDATE scan_queue SET next_attempt_at = $2, attempts = attempts + 1 \
                 WHERE digest IN (SELECT digest FROM scan_queue WHERE next_attempt_at <= $1 \
                                  ORDER BY next_attempt_at, digest LIMIT $3) \
                 RETURNING digest, reason, attempts",
            )
            .bind(now_ms)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(digest, reason, attempts)| {
                    Ok(ScanJob {
                        digest: parse_digest(&digest)?,
                        reason,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    })
                })
                .collect()
        })
    }

    /// Stores a result and removes its job, in one transaction.
    pub async fn finish_scan(&self, scan: &StoredScan) -> Result<(), StoreError> {
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO scan_results (digest, ruleset, max_severity, findings, unread_parts, report, scanned_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (digest) DO UPDATE SET \
                 ruleset = excluded.ruleset, max_severity = excluded.max_severity, \
                 findings = excluded.findings, unread_parts = excluded.unread_parts, \
                 report = excluded.report, scanned_at = excluded.scanned_at",
            )
            .bind(scan.digest.to_string())
            .bind(&scan.ruleset)
            .bind(&scan.max_severity)
            .bind(i64::try_from(scan.findings).unwrap_or(i64::MAX))
            .bind(i64::try_from(scan.unread_parts).unwrap_or(i64::MAX))
            .bind(&scan.report)
            .bind(scan.scanned_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM scan_queue WHERE digest = $1")
                .bind(scan.digest.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a failed attempt; the job is due again at `retry_at_ms`.
    pub async fn fail_scan(
        &self,
        digest: &Digest,
        error: &str,
        retry_at_ms: i64,
    ) -> Result<(), StoreError> {
        on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE scan_queue SET last_error = $2, next_attempt_at = $3 WHERE digest = $1",
            )
            .bind(digest.to_string())
            .bind(error)
            .bind(retry_at_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Drops a job without a result (its blob is gone).
    pub async fn drop_scan_job(&self, digest: &Digest) -> Result<(), StoreError> {
        on_writer!(self, |pool| {
            sqlx::query("DELETE FROM scan_queue WHERE digest = $1")
                .bind(digest.to_string())
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Jobs waiting (due, leased or waiting for a retry).
    pub async fn scan_queue_depth(&self) -> Result<u64, StoreError> {
        on_reader!(self, |pool| {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scan_queue")
                .fetch_one(pool)
                .await?;
            to_u64(n, "queue depth")
        })
    }

    /// Whether `digest` is waiting to be scanned.
    pub async fn scan_queued(&self, digest: &Digest) -> Result<bool, StoreError> {
        on_reader!(self, |pool| {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT attempts FROM scan_queue WHERE digest = $1")
                    .bind(digest.to_string())
                    .fetch_optional(pool)
                    .await?;
            Ok(found.is_some())
        })
    }

    /// The stored result for `digest`.
    pub async fn scan_result(&self, digest: &Digest) -> Result<Option<StoredScan>, StoreError> {
        on_reader!(self, |pool| {
            let row: Option<ScanRow> = sqlx::query_as(
                "SELECT digest, ruleset, max_severity, findings, unread_parts, report, scanned_at \
                 FROM scan_results WHERE digest = $1",
            )
            .bind(digest.to_string())
            .fetch_optional(pool)
            .await?;
            row.map(scan_from_row).transpose()
        })
    }

    /// Repositories that link blob `digest`.
    pub async fn repositories_linking(&self, digest: &Digest) -> Result<Vec<String>, StoreError> {
        on_reader!(self, |pool| {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id \
                 WHERE rb.digest = $1 ORDER BY r.name",
            )
            .bind(digest.to_string())
            .fetch_all(pool)
            .await?;
            Ok(names)
        })
    }

    /// Manifests (repository, digest) that reference blob or manifest `digest`
    /// in any repository, at most `limit`.
    pub async fn manifests_referencing_anywhere(
        &self,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<(String, Digest)>, StoreError> {
        on_reader!(self, |pool| {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT r.name, m.manifest_digest FROM manifest_references m \
                 JOIN repositories r ON r.id = m.repository_id \
                 WHERE m.target_digest = $1 ORDER BY r.name, m.manifest_digest LIMIT $2",
            )
            .bind(digest.to_string())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(repo, d)| Ok((repo, parse_digest(&d)?)))
                .collect()
        })
    }

    /// Quarantines `digest`. False if it already was (the first record stays).
    pub async fn quarantine(
        &self,
        digest: &Digest,
        reason: &str,
        source: QuarantineSource,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let inserted = sqlx::query(
                "INSERT INTO quarantines (digest, reason, source, actor, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING",
            )
            .bind(digest.to_string())
            .bind(reason)
            .bind(source.as_str())
            .bind(actor)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            (inserted > 0, Ok(inserted > 0))
        })
    }

    /// Releases `digest` from quarantine, remembering what its scan had found
    /// (see [`MetaStore::released_scan`]). False if it was not quarantined.
    pub async fn release_quarantine(&self, digest: &Digest) -> Result<bool, StoreError> {
        let now = now_ms();
        change!(self, |tx| {
            let deleted = sqlx::query("DELETE FROM quarantines WHERE digest = $1")
                .bind(digest.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted > 0 {
                sqlx::query(
                    "INSERT INTO quarantine_releases (digest, max_severity, findings, unread_parts, released_at) \
                     SELECT digest, max_severity, findings, unread_parts, $2 FROM scan_results WHERE digest = $1 \
                     ON CONFLICT (digest) DO UPDATE SET max_severity = excluded.max_severity, \
                     findings = excluded.findings, unread_parts = excluded.unread_parts, \
                     released_at = excluded.released_at",
                )
                .bind(digest.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            (deleted > 0, Ok(deleted > 0))
        })
    }

    /// What the scan of `digest` had found when it was last released from
    /// quarantine, if it ever was while it had a result.
    pub async fn released_scan(&self, digest: &Digest) -> Result<Option<ReleasedScan>, StoreError> {
        on_reader!(self, |pool| {
            let row: Option<(Option<String>, i64, i64, i64)> = sqlx::query_as(
                "SELECT max_severity, findings, unread_parts, released_at \
                 FROM quarantine_releases WHERE digest = $1",
            )
            .bind(digest.to_string())
            .fetch_optional(pool)
            .await?;
            row.map(|(max_severity, findings, unread_parts, released_at)| {
                Ok(ReleasedScan {
                    max_severity,
                    findings: to_u64(findings, "finding count")?,
                    unread_parts: to_u64(unread_parts, "unread part count")?,
                    released_at,
                })
            })
            .transpose()
        })
    }

    /// Every quarantine, oldest first.
    pub async fn quarantines(&self) -> Result<Vec<Quarantine>, StoreError> {
        on_reader!(self, |pool| {
            let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
                "SELECT digest, reason, source, actor, created_at FROM quarantines \
                 ORDER BY created_at, digest",
            )
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(digest, reason, source, actor, created_at)| {
                    Ok(Quarantine {
                        digest: parse_digest(&digest)?,
                        reason,
                        source,
                        actor,
                        created_at,
                    })
                })
                .collect()
        })
    }

    /// Sets (or with `None`, removes) the scan policy document of `repository`.
    pub async fn put_scan_policy(
        &self,
        repository: &str,
        document_json: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        change!(self, |tx| {
            match document_json {
                Some(doc) => {
                    sqlx::query(
                        "INSERT INTO scan_policies (repository, document, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (repository) DO UPDATE SET document = excluded.document, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(repository)
                    .bind(doc)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM scan_policies WHERE repository = $1")
                        .bind(repository)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            (true, Ok(()))
        })
    }

    /// Every per-repository scan policy: (repository, document).
    pub async fn scan_policies(&self) -> Result<Vec<(String, String)>, StoreError> {
        on_reader!(self, |pool| {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT repository, document FROM scan_policies ORDER BY repository",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }
}
