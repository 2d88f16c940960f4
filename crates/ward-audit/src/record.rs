//! The hash chain: how an event becomes a stored, linked [`AuditRecord`].
//!
//! ```text
//! event_json  = canonical JSON of the AuditEvent            (see crate::canonical)
//! entry bytes = seq as 8-byte big-endian || event_json (UTF-8)
//! hash        = SHA-256(prev_hash (32 bytes) || entry bytes)
//! prev_hash   = hash of record seq-1, or 32 zero bytes for seq 0
//! ```
//!
//! Sequence numbers start at 0 and are dense, so a record's `seq` is also its leaf
//! index in the Merkle tree (whose leaves are the records' `hash` values, see
//! [`crate::merkle`]), and the log's size is the next `seq`.

use serde::{Deserialize, Serialize};

use crate::canonical::{self, CanonicalError};
use crate::event::AuditEvent;
use crate::hash::Hash;

/// One stored, chained event, exactly as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 0, dense.
    pub seq: u64,
    /// The `hash` of record `seq - 1` (zero for seq 0).
    pub prev_hash: Hash,
    /// SHA-256(prev_hash || seq big-endian || event_json).
    pub hash: Hash,
    /// The event's canonical JSON: the bytes that were hashed.
    pub event_json: String,
}

impl AuditRecord {
    /// The chain hash of an entry.
    pub fn entry_hash(prev_hash: &Hash, seq: u64, event_json: &str) -> Hash {
        Hash::of_parts(&[
            prev_hash.as_bytes(),
            &seq.to_be_bytes(),
            event_json.as_bytes(),
        ])
    }

    /// Links `event_json` after `prev_hash` at position `seq`.
    pub fn link(prev_hash: Hash, seq: u64, event_json: String) -> AuditRecord {
        let hash = AuditRecord::entry_hash(&prev_hash, seq, &event_json);
        AuditRecord {
            seq,
            prev_hash,
            hash,
            event_json,
        }
    }

    /// True when `hash` matches the record's own `prev_hash`, `seq` and `event_json`.
    pub fn is_self_consistent(&self) -> bool {
        AuditRecord::entry_hash(&self.prev_hash, self.seq, &self.event_json) == self.hash
    }

    /// True when `hash` would match if the record sat at position `seq`.
    pub fn hashes_at(&self, seq: u64) -> bool {
        AuditRecord::entry_hash(&self.prev_hash, seq, &self.event_json) == self.hash
    }

    /// Parses the event.
    pub fn event(&self) -> Result<AuditEvent, serde_json::Error> {
        serde_json::from_str(&self.event_json)
    }

    /// The head of the chain that ends with this record.
    pub fn head_after(&self) -> ChainHead {
        ChainHead {
            size: self.seq + 1,
            hash: self.hash,
        }
    }
}

/// Where the chain ends: the number of records and the hash of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainHead {
    /// Number of records, which is also the next `seq`.
    pub size: u64,
    /// `hash` of record `size - 1`, or zero when the log is empty.
    pub hash: Hash,
}

impl ChainHead {
    /// The head of an empty log.
    pub const EMPTY: ChainHead = ChainHead {
        size: 0,
        hash: Hash::ZERO,
    };
}

/// Events waiting to be appended, already encoded so that the store's critical
/// section only hashes.
#[derive(Debug, Clone)]
pub struct EventBatch {
    events: Vec<AuditEvent>,
    json: Vec<String>,
}

/// One event of a batch, linked at its final position.
#[derive(Debug, Clone)]
pub struct LinkedEvent<'a> {
    /// What to store.
    pub record: AuditRecord,
    /// The event, for the store's query columns (user, repository, …).
    pub event: &'a AuditEvent,
}

/// A batch linked after a given head.
#[derive(Debug, Clone)]
pub struct Linked<'a> {
    /// The records to insert, in order.
    pub events: Vec<LinkedEvent<'a>>,
    /// The head once they are stored.
    pub head_after: ChainHead,
}

impl EventBatch {
    /// Encodes `events` canonically.
    pub fn new(events: Vec<AuditEvent>) -> Result<EventBatch, CanonicalError> {
        let json = events
            .iter()
            .map(canonical::event_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventBatch { events, json })
    }

    /// A batch of events already encoded, each `json[i]` being
    /// [`canonical::event_json`] of `events[i]` (the log's callers encode their
    /// own events).
    pub(crate) fn encoded(events: Vec<AuditEvent>, json: Vec<String>) -> EventBatch {
        debug_assert_eq!(events.len(), json.len());
        EventBatch { events, json }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events, in order.
    pub fn events(&self) -> &[AuditEvent] {
        &self.events
    }

    /// Links every event after `head`. A store calls this while holding its head lock
    /// and stores exactly the records returned, then `head_after`.
    pub fn link(&self, head: &ChainHead) -> Linked<'_> {
        let mut prev = head.hash;
        let mut events = Vec::with_capacity(self.events.len());
        for (i, (event, json)) in self.events.iter().zip(&self.json).enumerate() {
            let record = AuditRecord::link(prev, head.size + i as u64, json.clone());
            prev = record.hash;
            events.push(LinkedEvent { record, event });
        }
        let head_after = events.last().map_or(*head, |last| last.record.head_after());
        Linked { events, head_after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    #[test]
    fn entry_hash_known_answer() {
        // Expected values computed outside Rust:
        // `(head -c 40 /dev/zero; printf '{}') | sha256sum` and
        // `(head -c 39 /dev/zero; printf '\x07{}') | sha256sum`.
        let cases = [
            (
                0,
                "3a81f2e25f0527f1e175661f90fd4d42e29e1af147d174b7fa552987d6bbd20c",
            ),
            (
                7,
                "d8585a843a5c96a3ecd1059ddf6a7a818bcfc5b2c1144e38b11def197b03e7dd",
            ),
        ];
        for (seq, expected) in cases {
            assert_eq!(
                AuditRecord::entry_hash(&Hash::ZERO, seq, "{}").hex(),
                expected
            );
        }
    }

    #[test]
    fn linking_a_batch_chains_from_the_head() {
        let batch = EventBatch::new(vec![
            AuditEvent::new(EventType::Push).user("a"),
            AuditEvent::new(EventType::Pull).user("b"),
        ])
        .unwrap();
        let first = batch.link(&ChainHead::EMPTY);
        assert_eq!(first.events[0].record.prev_hash, Hash::ZERO);
        assert_eq!(
            first.events[1].record.prev_hash,
            first.events[0].record.hash
        );
        assert_eq!(first.head_after.size, 2);
        assert_eq!(first.head_after.hash, first.events[1].record.hash);
        for linked in &first.events {
            assert!(linked.record.is_self_consistent());
            assert_eq!(&linked.record.event().unwrap(), linked.event);
            assert!(canonical::is_canonical(&linked.record.event_json));
        }

        let second = batch.link(&first.head_after);
        assert_eq!(second.events[0].record.seq, 2);
        assert_eq!(second.events[0].record.prev_hash, first.head_after.hash);
        assert!(!second.events[0].record.hashes_at(0));
    }

    #[test]
    fn an_empty_batch_keeps_the_head() {
        let batch = EventBatch::new(Vec::new()).unwrap();
        let head = ChainHead {
            size: 3,
            hash: Hash::of_parts(&[b"x"]),
        };
        assert_eq!(batch.link(&head).head_after, head);
    }
}
