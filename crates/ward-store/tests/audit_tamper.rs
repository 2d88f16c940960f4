#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 3's tamper tests on real databases: rows are edited, deleted, reordered and
//! inserted directly in the SQLite file and in PostgreSQL, past the triggers as a DBA
//! could (SQLite: drop the triggers, tamper, recreate them; PostgreSQL: a session with
//! `session_replication_role = replica`, or `ALTER TABLE … DISABLE TRIGGER USER`,
//! alternating between cases). Then both `verify_store` and the export + offline
//! verification must name the first bad event and what happened to it.
//!
//! Every log is written by the real front end (`AuditLog::record`): 20 events with
//! checkpoints signed by the real `Checkpointer` at sizes 4, 8 and 16.

#[macro_use]
mod audit_common;

use audit_common::{Db, Kind, ORIGIN, PgBypass, Raw, push, signer};
use ward_audit::checkpoint::{Checkpoint, CheckpointSigner};
use ward_audit::event::timestamp;
use ward_audit::export::{self, ImportLimits};
use ward_audit::merkle::{self, Frontier};
use ward_audit::verify::{self, CheckpointProblemKind, ProblemKind, VerifyLimits};
use ward_audit::{AuditEvent, AuditLog, AuditRecord, Checkpointer, EventType, LogConfig, Report};

const EVENTS: usize = 20;
const CHECKPOINT_SIZES: [usize; 3] = [4, 8, 16];

/// What is done to the database.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    /// `UPDATE` one event's JSON in place.
    EditField,
    /// Edit one event and recompute its own hash.
    EditAndRehash,
    /// `DELETE` one event.
    Delete,
    /// Delete one event and renumber the later ones to close the gap.
    DeleteAndRenumber,
    /// Swap the seq numbers of two neighbours.
    SwapSeqs,
    /// Insert a forged event, correctly hashed after its predecessor, renumbering the rest.
    InsertAndRenumber,
    /// Edit one event and recompute the whole chain after it.
    EditAndRelink,
    /// Delete every event from 12 on, below the checkpoint of 16.
    TruncateBelowCheckpoint,
    /// Change the size a stored checkpoint note claims.
    AlterCheckpointNote,
    /// Insert a checkpoint row signed by a key that is not the server's.
    ForgeCheckpointRow,
}

enum Expect {
    /// No event problem; so many events are not covered by a signature.
    Intact { tail: u64 },
    /// The first bad event.
    Bad { seq: u64, kind: ProblemKind },
}

struct Case {
    tamper: Tamper,
    expect: Expect,
    checkpoint_problems: &'static [CheckpointProblemKind],
}

fn cases() -> Vec<Case> {
    use CheckpointProblemKind::*;
    use Expect::*;
    use ProblemKind::*;
    let case = |tamper, expect, checkpoint_problems| Case {
        tamper,
        expect,
        checkpoint_problems,
    };
    vec![
        case(
            Tamper::EditField,
            Bad {
                seq: 6,
                kind: Altered,
            },
            &[RootMismatch, RootMismatch],
        ),
        case(
            Tamper::EditAndRehash,
            Bad {
                seq: 6,
                kind: Altered,
            },
            &[RootMismatch, RootMismatch],
        ),
        case(
            Tamper::Delete,
            Bad {
                seq: 6,
                kind: Removed,
            },
            &[RootMismatch, RootMismatch],
        ),
        case(
            Tamper::DeleteAndRenumber,
            Bad {
                seq: 6,
                kind: Removed,
            },
            &[RootMismatch, RootMismatch],
        ),
        case(
            Tamper::SwapSeqs,
            Bad {
                seq: 6,
                kind: Reordered,
            },
            &[RootMismatch, RootMismatch],
        ),
        case(
            Tamper::InsertAndRenumber,
            Bad {
                seq: 6,
                kind: Inserted,
            },
            &[RootMismatch, RootMismatch],
        ),
        // Only the signed checkpoints show a consistently recomputed chain: the damage
        // lies after the last checkpoint that still matches (4).
        case(
            Tamper::EditAndRelink,
            Bad {
                seq: 4,
                kind: Rewritten,
            },
            &[RootMismatch, RootMismatch],
        ),
        case(
            Tamper::TruncateBelowCheckpoint,
            Bad {
                seq: 12,
                kind: Truncated,
            },
            &[BeyondLog],
        ),
        case(
            Tamper::AlterCheckpointNote,
            Intact { tail: 4 },
            &[BadSignature],
        ),
        case(
            Tamper::ForgeCheckpointRow,
            Intact { tail: 4 },
            &[UntrustedKey],
        ),
    ]
}

/// Writes the honest log through the real front end and checkpointer.
async fn honest_log(db: &Db) -> std::sync::Arc<ward_store::MetaStore> {
    let store = db.store().await;
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let mut checkpointer = Checkpointer::resume(store.clone(), signer()).await.unwrap();
    for i in 0..EVENTS {
        log.record(push(i)).await.unwrap();
        if CHECKPOINT_SIZES.contains(&(i + 1)) {
            let signed = checkpointer.checkpoint_now().await.unwrap().unwrap();
            assert_eq!(signed.tree_size, i as u64 + 1);
        }
    }
    store
}

/// Moves every seq `>= from` by `delta`, in two steps so that no intermediate row
/// collides with another on the primary key.
async fn renumber(raw: &mut Raw, from: u64, delta: i64) {
    raw.exec(&format!(
        "UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= {from}"
    ))
    .await
    .unwrap();
    raw.exec(&format!(
        "UPDATE audit_events SET seq = seq - 1000000 + ({delta}) WHERE seq >= 1000000"
    ))
    .await
    .unwrap();
}

fn forged_event() -> String {
    let event = AuditEvent::new(EventType::Pull)
        .user("mallory")
        .repository("prod/api");
    ward_audit::canonical::to_canonical(&event).unwrap()
}

fn edited(record: &AuditRecord) -> String {
    let was = format!("\"user{}\"", record.seq);
    assert!(record.event_json.contains(&was));
    record.event_json.replace(&was, "\"root\"")
}

async fn apply(tamper: Tamper, raw: &mut Raw) {
    let records = raw.records().await;
    match tamper {
        Tamper::EditField => {
            let done = raw
                .exec(r#"UPDATE audit_events SET event_json = replace(event_json, '"user6"', '"root"') WHERE seq = 6"#)
                .await
                .unwrap();
            assert_eq!(done, 1);
        }
        Tamper::EditAndRehash => {
            let r = &records[6];
            raw.set_chain(6, &AuditRecord::link(r.prev_hash, 6, edited(r)))
                .await;
        }
        Tamper::Delete => {
            raw.exec("DELETE FROM audit_events WHERE seq = 6")
                .await
                .unwrap();
        }
        Tamper::DeleteAndRenumber => {
            raw.exec("DELETE FROM audit_events WHERE seq = 6")
                .await
                .unwrap();
            renumber(raw, 7, -1).await;
        }
        Tamper::SwapSeqs => {
            raw.exec("UPDATE audit_events SET seq = 1000006 WHERE seq = 6")
                .await
                .unwrap();
            raw.exec("UPDATE audit_events SET seq = 6 WHERE seq = 7")
                .await
                .unwrap();
            raw.exec("UPDATE audit_events SET seq = 7 WHERE seq = 1000006")
                .await
                .unwrap();
        }
        Tamper::InsertAndRenumber => {
            renumber(raw, 6, 1).await;
            let forged = AuditRecord::link(records[5].hash, 6, forged_event());
            raw.insert(&forged).await.unwrap();
        }
        Tamper::EditAndRelink => {
            let mut prev = records[5].hash;
            for r in &records[6..] {
                let json = if r.seq == 6 {
                    edited(r)
                } else {
                    r.event_json.clone()
                };
                let relinked = AuditRecord::link(prev, r.seq, json);
                prev = relinked.hash;
                raw.set_chain(r.seq, &relinked).await;
            }
        }
        Tamper::TruncateBelowCheckpoint => {
            raw.exec("DELETE FROM audit_events WHERE seq >= 12")
                .await
                .unwrap();
        }
        Tamper::AlterCheckpointNote => {
            let note = raw.note(8).await;
            let altered = note.replacen("\n8\n", "\n9\n", 1);
            assert_ne!(altered, note);
            raw.set_note(8, &altered).await;
        }
        Tamper::ForgeCheckpointRow => {
            let impostor = CheckpointSigner::from_seed(ORIGIN, &[9; 32]).unwrap();
            let covered = &records[..12];
            let note = impostor
                .sign(&Checkpoint::over(ORIGIN, covered, timestamp::now()))
                .unwrap();
            let mut frontier = Frontier::new();
            for r in covered {
                frontier.push(merkle::leaf_hash(r.hash.as_bytes()));
            }
            raw.insert_checkpoint(12, &note, &frontier.to_bytes()).await;
        }
    }
}

fn check(case: &Case, report: &Report, how: &str) {
    let context = format!("{:?} ({how}):\n{report}", case.tamper);
    match case.expect {
        Expect::Intact { tail } => {
            assert_eq!(report.first_problem, None, "{context}");
            assert_eq!(report.unprotected_tail, tail, "{context}");
        }
        Expect::Bad { seq, kind } => {
            let problem = report
                .first_problem
                .as_ref()
                .unwrap_or_else(|| panic!("no problem found: {context}"));
            assert_eq!((problem.seq, problem.kind), (seq, kind), "{context}");
        }
    }
    let kinds: Vec<CheckpointProblemKind> =
        report.checkpoint_problems.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, case.checkpoint_problems, "{context}");
    assert!(!report.is_intact(), "{context}");
}

async fn every_tampering_is_named(kind: Kind) {
    let trusted = [signer().verifier()];
    for (i, case) in cases().into_iter().enumerate() {
        let db = Db::new(kind).await;
        let store = honest_log(&db).await;
        let before = verify::verify_store(&*store, &trusted, Some(ORIGIN), VerifyLimits::default())
            .await
            .unwrap();
        assert!(before.is_intact(), "{before}");

        let bypass = if i % 2 == 0 {
            PgBypass::ReplicationRole
        } else {
            PgBypass::DisableTriggers
        };
        let mut raw = db.raw().await;
        raw.bypass_triggers(bypass).await;
        apply(case.tamper, &mut raw).await;
        raw.restore_triggers(bypass).await;

        let report = verify::verify_store(&*store, &trusted, Some(ORIGIN), VerifyLimits::default())
            .await
            .unwrap();
        check(&case, &report, &format!("{kind:?}, verify_store"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.jsonl");
        let mut file = tokio::fs::File::create(&path).await.unwrap();
        export::export_store(&*store, ORIGIN, &mut file)
            .await
            .unwrap();
        let offline = export::verify_file(&path, &trusted, ImportLimits::default()).unwrap();
        check(
            &case,
            &offline,
            &format!("{kind:?}, export + offline verify"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_of_the_sqlite_file_is_named() {
    every_tampering_is_named(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_in_postgres_is_named() {
    every_tampering_is_named(Kind::Postgres).await;
}

both_backends!(the_triggers_are_back_after_tampering, |db: Db| async move {
    honest_log(&db).await;
    let mut raw = db.raw().await;
    raw.bypass_triggers(PgBypass::DisableTriggers).await;
    raw.exec("DELETE FROM audit_events WHERE seq = 19")
        .await
        .unwrap();
    raw.restore_triggers(PgBypass::DisableTriggers).await;
    let err = raw
        .exec("DELETE FROM audit_events WHERE seq = 18")
        .await
        .unwrap_err();
    assert!(err.contains("append-only"), "{err}");
});

both_backends!(
    appends_stop_after_the_last_event_was_edited,
    |db: Db| async move {
        // The head still names the honest hash of the last event, so the next append
        // no longer extends the stored chain: the triggers refuse it and the request
        // that wanted to record an event fails, rather than chaining onto forged data.
        let store = honest_log(&db).await;
        let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
            .await
            .unwrap();
        let mut raw = db.raw().await;
        raw.bypass_triggers(PgBypass::ReplicationRole).await;
        let last = raw.records().await.pop().unwrap();
        raw.set_chain(
            last.seq,
            &AuditRecord::link(last.prev_hash, last.seq, edited(&last)),
        )
        .await;
        raw.restore_triggers(PgBypass::ReplicationRole).await;

        let err = log.record(push(20)).await.unwrap_err();
        assert!(err.to_string().contains("chain"), "{err}");
        assert_eq!(raw.records().await.len(), EVENTS);
    }
);
