//! Shared by the `audit_*` tests: fresh databases of either backend, several stores
//! over one database (as several server processes would open it), and a raw
//! connection that edits rows the way a DBA could, bypassing the triggers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use ward_audit::checkpoint::CheckpointSigner;
use ward_audit::event::timestamp;
use ward_audit::{AuditEvent, AuditRecord, EventType};
use ward_store::{MetaStore, MetaStoreOptions, testing};

/// The log's origin in every test.
pub const ORIGIN: &str = "ward.test/audit";

/// The server's checkpoint key.
pub fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(ORIGIN, &[7; 32]).unwrap()
}

/// Generates `mod $name { sqlite(); postgres(); }` running `$body(db: Db)`.
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = audit_common::Db::new(audit_common::Kind::Sqlite).await;
                ($body)(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = audit_common::Db::new(audit_common::Kind::Postgres).await;
                ($body)(db).await;
            }
        }
    };
}

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One fresh database: a SQLite file in a temporary folder or a new PostgreSQL schema.
pub struct Db {
    pub kind: Kind,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    pub async fn new(kind: Kind) -> Db {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                Db {
                    kind,
                    url: testing::sqlite_url(dir.path()),
                    _dir: Some(dir),
                }
            }
            Kind::Postgres => Db {
                kind,
                url: testing::fresh_postgres_url().await,
                _dir: None,
            },
        }
    }

    /// A new store (its own pools) over this database, migrated.
    pub async fn store(&self) -> Arc<MetaStore> {
        Arc::new(
            MetaStore::connect(&self.url, &MetaStoreOptions::default())
                .await
                .unwrap(),
        )
    }

    /// A raw connection of the kind a DBA would open.
    pub async fn raw(&self) -> Raw {
        match self.kind {
            Kind::Sqlite => Raw::Sqlite {
                conn: SqliteConnection::connect(&self.url).await.unwrap(),
                dropped_triggers: Vec::new(),
            },
            Kind::Postgres => Raw::Postgres(PgConnection::connect(&self.url).await.unwrap()),
        }
    }
}

/// A direct connection to the database, outside Ward.
pub enum Raw {
    Sqlite {
        conn: SqliteConnection,
        /// `CREATE TRIGGER` statements of the triggers dropped by `bypass_triggers`.
        dropped_triggers: Vec<String>,
    },
    Postgres(PgConnection),
}

/// How a PostgreSQL superuser gets past the triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgBypass {
    /// `SET session_replication_role = replica`: user triggers do not fire in this session.
    ReplicationRole,
    /// `ALTER TABLE … DISABLE TRIGGER USER`, for every session until re-enabled.
    DisableTriggers,
}

const AUDIT_TABLES: [&str; 3] = ["audit_events", "audit_head", "audit_checkpoints"];

macro_rules! on_raw {
    ($raw:expr, |$conn:ident| $body:expr) => {
        match $raw {
            Raw::Sqlite { conn: $conn, .. } => $body,
            Raw::Postgres($conn) => $body,
        }
    };
}

impl Raw {
    /// Runs one statement; the error text is what the database said.
    pub async fn exec(&mut self, sql: &str) -> Result<u64, String> {
        on_raw!(self, |conn| {
            sqlx::query(AssertSqlSafe(sql.to_owned()))
                .execute(&mut *conn)
                .await
                .map(|done| done.rows_affected())
                .map_err(|e| e.to_string())
        })
    }

    /// Turns the audit triggers off. SQLite: drops them, remembering their SQL.
    pub async fn bypass_triggers(&mut self, how: PgBypass) {
        match self {
            Raw::Sqlite {
                conn,
                dropped_triggers,
            } => {
                let triggers: Vec<(String, String)> = sqlx::query_as(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%'",
                )
                .fetch_all(&mut *conn)
                .await
                .unwrap();
                assert!(!triggers.is_empty(), "the audit triggers exist");
                for (name, sql) in triggers {
                    sqlx::query(AssertSqlSafe(format!("DROP TRIGGER {name}")))
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    dropped_triggers.push(sql);
                }
            }
            Raw::Postgres(conn) => match how {
                PgBypass::ReplicationRole => {
                    sqlx::query("SET session_replication_role = replica")
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
                PgBypass::DisableTriggers => {
                    for table in AUDIT_TABLES {
                        sqlx::query(AssertSqlSafe(format!(
                            "ALTER TABLE {table} DISABLE TRIGGER USER"
                        )))
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    }
                }
            },
        }
    }

    /// Turns the triggers back on, as a careful DBA would after tampering.
    pub async fn restore_triggers(&mut self, how: PgBypass) {
        match self {
            Raw::Sqlite {
                conn,
                dropped_triggers,
            } => {
                for sql in dropped_triggers.drain(..) {
                    sqlx::query(AssertSqlSafe(sql))
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
            }
            Raw::Postgres(conn) => match how {
                PgBypass::ReplicationRole => {
                    sqlx::query("RESET session_replication_role")
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
                PgBypass::DisableTriggers => {
                    for table in AUDIT_TABLES {
                        sqlx::query(AssertSqlSafe(format!(
                            "ALTER TABLE {table} ENABLE TRIGGER USER"
                        )))
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    }
                }
            },
        }
    }

    /// Every stored record, in `seq` order.
    pub async fn records(&mut self) -> Vec<AuditRecord> {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>, String)> = on_raw!(self, |conn| {
            sqlx::query_as("SELECT seq, prev_hash, hash, event_json FROM audit_events ORDER BY seq")
                .fetch_all(&mut *conn)
                .await
                .unwrap()
        });
        rows.into_iter()
            .map(|(seq, prev, hash, event_json)| AuditRecord {
                seq: seq as u64,
                prev_hash: ward_audit::Hash::from_slice(&prev).unwrap(),
                hash: ward_audit::Hash::from_slice(&hash).unwrap(),
                event_json,
            })
            .collect()
    }

    /// Inserts `record` with query columns taken from its event.
    pub async fn insert(&mut self, record: &AuditRecord) -> Result<(), String> {
        let event = record.event().unwrap();
        let sql = match self {
            Raw::Sqlite { .. } => {
                "INSERT INTO audit_events (seq, prev_hash, hash, occurred_at, event_type, action, \
                 outcome, user_name, repository, event_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            }
            Raw::Postgres(_) => {
                "INSERT INTO audit_events (seq, prev_hash, hash, occurred_at, event_type, action, \
                 outcome, user_name, repository, event_json) VALUES ($1, $2, $3, $4::timestamptz, $5, $6, $7, $8, $9, $10)"
            }
        };
        on_raw!(self, |conn| {
            sqlx::query(sql)
                .bind(record.seq as i64)
                .bind(record.prev_hash.as_bytes().to_vec())
                .bind(record.hash.as_bytes().to_vec())
                .bind(timestamp::format(event.timestamp))
                .bind(event.event_type.as_str())
                .bind(event.action.as_str())
                .bind(event.outcome.as_str())
                .bind(event.user.as_deref())
                .bind(event.repository.as_deref())
                .bind(record.event_json.as_str())
                .execute(&mut *conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    /// Overwrites the chain fields of the row at `seq`.
    pub async fn set_chain(&mut self, seq: u64, record: &AuditRecord) {
        on_raw!(self, |conn| {
            let done = sqlx::query(
                "UPDATE audit_events SET prev_hash = $1, hash = $2, event_json = $3 WHERE seq = $4",
            )
            .bind(record.prev_hash.as_bytes().to_vec())
            .bind(record.hash.as_bytes().to_vec())
            .bind(record.event_json.as_str())
            .bind(seq as i64)
            .execute(&mut *conn)
            .await
            .unwrap();
            assert_eq!(done.rows_affected(), 1, "row {seq} exists");
        })
    }

    /// Inserts a checkpoint row directly.
    pub async fn insert_checkpoint(&mut self, tree_size: u64, note: &str, frontier: &[u8]) {
        let sql = match self {
            Raw::Sqlite { .. } => {
                "INSERT INTO audit_checkpoints (tree_size, created_at, note, frontier) VALUES ($1, $2, $3, $4)"
            }
            Raw::Postgres(_) => {
                "INSERT INTO audit_checkpoints (tree_size, created_at, note, frontier) VALUES ($1, $2::timestamptz, $3, $4)"
            }
        };
        on_raw!(self, |conn| {
            sqlx::query(sql)
                .bind(tree_size as i64)
                .bind(timestamp::format(timestamp::now()))
                .bind(note)
                .bind(frontier.to_vec())
                .execute(&mut *conn)
                .await
                .unwrap();
        })
    }

    /// Overwrites a checkpoint's note.
    pub async fn set_note(&mut self, tree_size: u64, note: &str) {
        on_raw!(self, |conn| {
            let done = sqlx::query("UPDATE audit_checkpoints SET note = $1 WHERE tree_size = $2")
                .bind(note)
                .bind(tree_size as i64)
                .execute(&mut *conn)
                .await
                .unwrap();
            assert_eq!(done.rows_affected(), 1, "checkpoint {tree_size} exists");
        })
    }

    /// The note of the checkpoint of size `tree_size`.
    pub async fn note(&mut self, tree_size: u64) -> String {
        on_raw!(self, |conn| {
            sqlx::query_scalar("SELECT note FROM audit_checkpoints WHERE tree_size = $1")
                .bind(tree_size as i64)
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        })
    }
}

/// Event `i` of the test logs: a push by `user{i}`, one second apart.
pub fn push(i: usize) -> AuditEvent {
    let start = timestamp::parse("2026-05-01T12:00:00Z").unwrap();
    AuditEvent::new(EventType::Push)
        .at(start + Duration::from_secs(i as u64))
        .user(format!("user{i}"))
        .repository("prod/api")
        .tag(format!("v{i}"))
}

/// A deadline for awaiting progress: a hung test fails instead of hanging.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
