//! The storage port: what `ward-store` implements over SQLite and PostgreSQL.
//!
//! **This crate writes no SQL.** It defines [`AuditStore`]; `ward-store` implements it.
//! Chaining happens inside the store's transaction, under a lock on a one-row head
//! table, so several `ward serve` processes sharing one PostgreSQL keep one chain:
//!
//! ```text
//! BEGIN                                   -- SQLite: BEGIN IMMEDIATE (takes the write lock)
//! SELECT size, head_hash FROM audit_head WHERE id = 1 FOR UPDATE   -- SQLite: without FOR UPDATE
//! linked = batch.link(&ChainHead { size, hash: head_hash })
//! INSERT INTO audit_events (...) VALUES (...), (...)              -- every linked.events[i]
//! UPDATE audit_head SET size = linked.head_after.size, head_hash = linked.head_after.hash WHERE id = 1
//! COMMIT                                  -- then return the records
//! ```
//!
//! # Schema the store must create
//!
//! `event_json` is stored as `TEXT`, never PostgreSQL `JSONB`: the chain hash covers
//! its exact bytes, and `JSONB` reorders keys and drops whitespace. The columns
//! `occurred_at` … `repository` are copies of event fields for filtering
//! ([`EventFilter`]); events returned to callers are always rebuilt from `event_json`.
//! Hashes are raw 32-byte blobs. Sequence numbers start at 0.
//!
//! ## SQLite
//!
//! ```sql
//! CREATE TABLE audit_events (
//!     seq         INTEGER PRIMARY KEY CHECK (seq >= 0),
//!     prev_hash   BLOB    NOT NULL CHECK (length(prev_hash) = 32),
//!     hash        BLOB    NOT NULL CHECK (length(hash) = 32),
//!     occurred_at TEXT    NOT NULL,   -- event.timestamp, "YYYY-MM-DDTHH:MM:SS.ffffffZ"
//!     event_type  TEXT    NOT NULL,
//!     action      TEXT    NOT NULL,
//!     outcome     TEXT    NOT NULL,
//!     user_name   TEXT,
//!     repository  TEXT,
//!     event_json  TEXT    NOT NULL
//! ) STRICT;
//! CREATE INDEX audit_events_user        ON audit_events (user_name, seq);
//! CREATE INDEX audit_events_repository  ON audit_events (repository, seq);
//! CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at, seq);
//!
//! -- Rows are appended at the end of the chain and never changed.
//! CREATE TRIGGER audit_events_extend_chain BEFORE INSERT ON audit_events
//! WHEN NEW.seq IS NOT (SELECT coalesce(max(seq) + 1, 0) FROM audit_events)
//!   OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM audit_events WHERE seq = NEW.seq - 1), zeroblob(32))
//! BEGIN SELECT RAISE(ABORT, 'audit_events: a new event must extend the chain'); END;
//! CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
//! BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END;
//! CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
//! BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END;
//!
//! CREATE TABLE audit_head (
//!     id        INTEGER PRIMARY KEY CHECK (id = 1),
//!     size      INTEGER NOT NULL CHECK (size >= 0),
//!     head_hash BLOB    NOT NULL CHECK (length(head_hash) = 32)
//! ) STRICT;
//! INSERT INTO audit_head (id, size, head_hash) VALUES (1, 0, zeroblob(32));
//! CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
//! WHEN NEW.size < OLD.size OR NEW.id IS NOT OLD.id
//! BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
//! CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
//! BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END;
//!
//! CREATE TABLE audit_checkpoints (
//!     tree_size  INTEGER PRIMARY KEY CHECK (tree_size >= 0),
//!     created_at TEXT    NOT NULL,
//!     note       TEXT    NOT NULL,    -- the signed note, verbatim
//!     frontier   BLOB    NOT NULL     -- StoredCheckpoint::frontier_bytes()
//! ) STRICT;
//! CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
//! BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END;
//! CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
//! BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END;
//!
//! CREATE TABLE audit_sink_cursors (
//!     sink       TEXT    PRIMARY KEY,
//!     next_seq   INTEGER NOT NULL CHECK (next_seq >= 0),
//!     updated_at TEXT    NOT NULL
//! ) STRICT;
//! ```
//!
//! ## PostgreSQL
//!
//! ```sql
//! CREATE TABLE audit_events (
//!     seq         BIGINT      PRIMARY KEY CHECK (seq >= 0),
//!     prev_hash   BYTEA       NOT NULL CHECK (octet_length(prev_hash) = 32),
//!     hash        BYTEA       NOT NULL CHECK (octet_length(hash) = 32),
//!     occurred_at TIMESTAMPTZ NOT NULL,
//!     event_type  TEXT        NOT NULL,
//!     action      TEXT        NOT NULL,
//!     outcome     TEXT        NOT NULL,
//!     user_name   TEXT,
//!     repository  TEXT,
//!     event_json  TEXT        NOT NULL   -- TEXT, not JSONB: the hash covers these bytes
//! );
//! CREATE INDEX audit_events_user        ON audit_events (user_name, seq);
//! CREATE INDEX audit_events_repository  ON audit_events (repository, seq);
//! CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at, seq);
//!
//! CREATE FUNCTION ward_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
//! BEGIN
//!     RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
//! END $$;
//!
//! CREATE FUNCTION ward_audit_extend_chain() RETURNS trigger LANGUAGE plpgsql AS $$
//! DECLARE
//!     want_seq  BIGINT := 0;
//!     want_prev BYTEA  := decode(repeat('00', 32), 'hex');
//! BEGIN
//!     SELECT seq + 1, hash INTO want_seq, want_prev FROM audit_events ORDER BY seq DESC LIMIT 1;
//!     IF NOT FOUND THEN
//!         want_seq := 0;
//!         want_prev := decode(repeat('00', 32), 'hex');
//!     END IF;
//!     IF NEW.seq <> want_seq OR NEW.prev_hash <> want_prev THEN
//!         RAISE EXCEPTION 'audit_events: event % does not extend the chain (next is %)', NEW.seq, want_seq;
//!     END IF;
//!     RETURN NEW;
//! END $$;
//!
//! CREATE TRIGGER audit_events_extend_chain BEFORE INSERT ON audit_events
//!     FOR EACH ROW EXECUTE FUNCTION ward_audit_extend_chain();
//! CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
//!     FOR EACH ROW EXECUTE FUNCTION ward_audit_refuse_change();
//! CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
//!     FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_refuse_change();
//!
//! CREATE TABLE audit_head (
//!     id        SMALLINT PRIMARY KEY CHECK (id = 1),
//!     size      BIGINT   NOT NULL CHECK (size >= 0),
//!     head_hash BYTEA    NOT NULL CHECK (octet_length(head_hash) = 32)
//! );
//! INSERT INTO audit_head (id, size, head_hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
//!
//! CREATE FUNCTION ward_audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
//! BEGIN
//!     IF NEW.size < OLD.size OR NEW.id <> OLD.id THEN
//!         RAISE EXCEPTION 'audit_head only moves forward';
//!     END IF;
//!     RETURN NEW;
//! END $$;
//! CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
//!     FOR EACH ROW EXECUTE FUNCTION ward_audit_head_forward_only();
//! CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
//!     FOR EACH ROW EXECUTE FUNCTION ward_audit_refuse_change();
//! CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
//!     FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_refuse_change();
//!
//! CREATE TABLE audit_checkpoints (
//!     tree_size  BIGINT      PRIMARY KEY CHECK (tree_size >= 0),
//!     created_at TIMESTAMPTZ NOT NULL,
//!     note       TEXT        NOT NULL,
//!     frontier   BYTEA       NOT NULL
//! );
//! CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
//!     FOR EACH ROW EXECUTE FUNCTION ward_audit_refuse_change();
//! CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
//!     FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_refuse_change();
//!
//! CREATE TABLE audit_sink_cursors (
//!     sink       TEXT        PRIMARY KEY,
//!     next_seq   BIGINT      NOT NULL CHECK (next_seq >= 0),
//!     updated_at TIMESTAMPTZ NOT NULL
//! );
//! ```
//!
//! A DBA can still disable triggers (`ALTER TABLE … DISABLE TRIGGER`, or SQLite
//! `PRAGMA writable_schema`); that is what the hash chain and signed checkpoints
//! catch. Checkpoint inserts use `ON CONFLICT (tree_size) DO NOTHING`: two processes
//! may sign the same size, and both notes are valid.

use std::future::Future;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::{AuditEvent, EventType, Outcome, timestamp};
use crate::hash::Hash;
use crate::merkle::{Frontier, ProofError};
use crate::record::{AuditRecord, ChainHead, EventBatch};

/// The most records one [`AuditStore::read`] or [`AuditStore::query`] may be asked for.
pub const READ_RECORDS_MAX: usize = 10_000;

/// The audit log's storage port. Every method is one short transaction.
pub trait AuditStore: Send + Sync + 'static {
    /// The store's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Appends `batch` atomically at the end of the chain: lock the head, call
    /// [`EventBatch::link`] with it, insert every linked record, move the head to
    /// `head_after`, commit. Returns the stored records only once they are durable.
    /// On any error nothing is stored.
    fn append(
        &self,
        batch: &EventBatch,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, Self::Error>> + Send;

    /// [`append`](AuditStore::append), except that it may return once the batch is
    /// committed and before it is durable: it is durable once a call of
    /// [`sync`](AuditStore::sync) made after this one returns. A store whose commits
    /// are durable keeps this default. The log's writer uses it so that one batch
    /// commits while the batch before it is being flushed.
    fn append_unsynced(
        &self,
        batch: &EventBatch,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, Self::Error>> + Send {
        self.append(batch)
    }

    /// The largest batch this store appends without extra cost per batch, if it
    /// has one; the log's writer takes no more than this per commit. (SQLite
    /// keeps a prepared statement per batch size up to a limit and parses larger
    /// ones afresh every time.)
    fn batch_events_max(&self) -> Option<usize> {
        None
    }

    /// Makes every batch [`append_unsynced`](AuditStore::append_unsynced) returned
    /// before this call durable. Anything that hands records beyond the store (a
    /// sink's delivery, a signed checkpoint) calls it first.
    fn sync(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        std::future::ready(Ok(()))
    }

    /// [`sync`](AuditStore::sync) as a blocking call, for a store whose flush is
    /// a system call anyway: the log's syncer flushes on a thread of its own and
    /// answers the callers from there, rather than handing every flush to a
    /// blocking thread and waking a task when it returns. `None` (the default):
    /// the syncer runs `sync` instead, with `Handle::block_on` on its thread,
    /// so a store whose `sync` needs the runtime's timers or I/O should
    /// implement this method rather than rely on that.
    fn sync_blocking(&self) -> Option<Result<(), Self::Error>> {
        None
    }

    /// The current head (from the head table).
    fn head(&self) -> impl Future<Output = Result<ChainHead, Self::Error>> + Send;

    /// Records with `seq >= from_seq`, ascending, at most `limit` (≤ [`READ_RECORDS_MAX`]).
    /// Returns what is stored even if rows are missing: gaps are for the verifier to find.
    fn read(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, Self::Error>> + Send;

    /// Records matching `filter`, ascending by `seq`, at most `filter.limit`.
    /// [`EventFilter::matches`] is the reference semantics.
    fn query(
        &self,
        filter: &EventFilter,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, Self::Error>> + Send;

    /// Stores a checkpoint; a second checkpoint of the same size is ignored.
    fn put_checkpoint(
        &self,
        checkpoint: &StoredCheckpoint,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The checkpoint with the largest `tree_size`.
    fn latest_checkpoint(
        &self,
    ) -> impl Future<Output = Result<Option<StoredCheckpoint>, Self::Error>> + Send;

    /// Checkpoints with `tree_size >= from_size`, ascending, at most `limit`.
    fn read_checkpoints(
        &self,
        from_size: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredCheckpoint>, Self::Error>> + Send;

    /// The next `seq` sink `sink` must deliver (0 for a sink never seen).
    fn cursor(&self, sink: &str) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Records that sink `sink` has delivered everything below `next_seq` (upsert).
    fn set_cursor(
        &self,
        sink: &str,
        next_seq: u64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A signed checkpoint as stored, with the Merkle frontier that lets a restarted
/// server extend the tree without rereading the whole log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    /// The size signed.
    pub tree_size: u64,
    /// When it was signed.
    #[serde(with = "timestamp")]
    pub created_at: OffsetDateTime,
    /// The signed note, verbatim.
    pub note: String,
    /// The perfect-subtree roots of the tree at `tree_size`, largest first.
    pub frontier: Vec<Hash>,
}

impl StoredCheckpoint {
    /// The `frontier` column: the hashes concatenated.
    pub fn frontier_bytes(&self) -> Vec<u8> {
        self.frontier.iter().flat_map(|h| h.0).collect()
    }

    /// Rebuilds a row read from the store.
    pub fn from_row(
        tree_size: u64,
        created_at: OffsetDateTime,
        note: String,
        frontier_bytes: &[u8],
    ) -> Result<StoredCheckpoint, ProofError> {
        let frontier = Frontier::from_bytes(tree_size, frontier_bytes)?;
        Ok(StoredCheckpoint {
            tree_size,
            created_at,
            note,
            frontier: frontier.nodes().to_vec(),
        })
    }
}

/// The most records one query page may hold.
pub const QUERY_PAGE_RECORDS_MAX: usize = 1000;

/// Which events a query returns. Every set field must match; the page holds records
/// with `seq > after_seq`, ascending, at most `limit` (clamped to
/// [`QUERY_PAGE_RECORDS_MAX`]). For the next page pass the last `seq` as `after_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventFilter {
    /// Exactly this principal.
    pub user: Option<String>,
    /// Exactly this repository.
    pub repository: Option<String>,
    /// Exactly this action.
    pub action: Option<String>,
    /// This outcome.
    pub outcome: Option<Outcome>,
    /// This event type.
    pub event_type: Option<EventType>,
    /// At or after this time.
    #[serde(with = "optional_timestamp")]
    pub since: Option<OffsetDateTime>,
    /// Strictly before this time.
    #[serde(with = "optional_timestamp")]
    pub until: Option<OffsetDateTime>,
    /// Only records after this `seq` (pagination).
    pub after_seq: Option<u64>,
    /// Page size; 0 means [`QUERY_PAGE_RECORDS_MAX`].
    pub limit: usize,
}

impl EventFilter {
    /// The page size actually used.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => QUERY_PAGE_RECORDS_MAX,
            n => n.min(QUERY_PAGE_RECORDS_MAX),
        }
    }

    /// The reference semantics of the filter, for one record and its parsed event.
    pub fn matches(&self, record: &AuditRecord, event: &AuditEvent) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        self.after_seq.is_none_or(|after| record.seq > after)
            && eq(&self.user, &event.user)
            && eq(&self.repository, &event.repository)
            && self.action.as_ref().is_none_or(|a| *a == event.action)
            && self.outcome.is_none_or(|o| o == event.outcome)
            && self.event_type.is_none_or(|t| t == event.event_type)
            && self.since.is_none_or(|s| event.timestamp >= s)
            && self.until.is_none_or(|u| event.timestamp < u)
    }
}

mod optional_timestamp {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(
        when: &Option<OffsetDateTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match when {
            Some(t) => s.serialize_str(&super::timestamp::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| super::timestamp::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::EventBatch;
    use time::macros::datetime;

    fn record_of(event: AuditEvent, seq: u64) -> (AuditRecord, AuditEvent) {
        let batch = EventBatch::new(vec![event.clone()]).unwrap();
        let head = ChainHead {
            size: seq,
            hash: Hash::ZERO,
        };
        (batch.link(&head).events[0].record.clone(), event)
    }

    #[test]
    fn filter_semantics() {
        let (rec, ev) = record_of(
            AuditEvent::new(EventType::Push)
                .at(datetime!(2026-05-01 12:00 UTC))
                .user("alice")
                .repository("lib/a"),
            10,
        );
        let yes = [
            EventFilter::default(),
            EventFilter {
                user: Some("alice".into()),
                ..Default::default()
            },
            EventFilter {
                repository: Some("lib/a".into()),
                action: Some("push".into()),
                ..Default::default()
            },
            EventFilter {
                outcome: Some(Outcome::Success),
                event_type: Some(EventType::Push),
                ..Default::default()
            },
            EventFilter {
                since: Some(datetime!(2026-05-01 12:00 UTC)),
                ..Default::default()
            },
            EventFilter {
                until: Some(datetime!(2026-05-01 12:00:01 UTC)),
                after_seq: Some(9),
                ..Default::default()
            },
        ];
        let no = [
            EventFilter {
                user: Some("bob".into()),
                ..Default::default()
            },
            EventFilter {
                repository: Some("lib/b".into()),
                ..Default::default()
            },
            EventFilter {
                action: Some("pull".into()),
                ..Default::default()
            },
            EventFilter {
                outcome: Some(Outcome::Denied),
                ..Default::default()
            },
            EventFilter {
                event_type: Some(EventType::Pull),
                ..Default::default()
            },
            EventFilter {
                since: Some(datetime!(2026-05-01 12:00:00.000001 UTC)),
                ..Default::default()
            },
            EventFilter {
                until: Some(datetime!(2026-05-01 12:00 UTC)),
                ..Default::default()
            },
            EventFilter {
                after_seq: Some(10),
                ..Default::default()
            },
        ];
        for f in &yes {
            assert!(f.matches(&rec, &ev), "{f:?}");
        }
        for f in &no {
            assert!(!f.matches(&rec, &ev), "{f:?}");
        }
    }

    #[test]
    fn filter_deserialises_from_query_like_json() {
        let f: EventFilter = serde_json::from_str(
            r#"{"user":"a","outcome":"denied","event_type":"deny.scan","since":"2026-01-01T00:00:00Z","limit":5000}"#,
        )
        .unwrap();
        assert_eq!(f.outcome, Some(Outcome::Denied));
        assert_eq!(f.event_type, Some(EventType::ScanDenied));
        assert_eq!(f.since, Some(datetime!(2026-01-01 0:00 UTC)));
        assert_eq!(f.page_size(), QUERY_PAGE_RECORDS_MAX);
    }

    #[test]
    fn stored_checkpoint_frontier_round_trips() {
        let mut frontier = Frontier::new();
        for i in 0u8..5 {
            frontier.push(Hash::of_parts(&[&[i]]));
        }
        let cp = StoredCheckpoint {
            tree_size: 5,
            created_at: datetime!(2026-05-01 12:00 UTC),
            note: "n".into(),
            frontier: frontier.nodes().to_vec(),
        };
        let back =
            StoredCheckpoint::from_row(5, cp.created_at, "n".into(), &cp.frontier_bytes()).unwrap();
        assert_eq!(back, cp);
        assert!(
            StoredCheckpoint::from_row(7, cp.created_at, "n".into(), &cp.frontier_bytes()).is_err()
        );
    }
}
