#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Tamper evidence: each way of editing a log, and the first bad seq the verifier must name.
//!
//! The log has 20 events and signed checkpoints at sizes 4, 8 and 16. Every case runs
//! three ways: over the rows in memory, over an export file, and (where the rows could
//! exist in a database, i.e. ordered by unique seq) over a store.

mod common;

use std::sync::Arc;

use common::MemoryStore;
use time::macros::datetime;
use ward_audit::checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use ward_audit::export::{self, Header, ImportLimits};
use ward_audit::hash::Hash;
use ward_audit::store::{AuditStore, StoredCheckpoint};
use ward_audit::verify::{self, CheckpointProblemKind, ProblemKind, Row, Unreadable, VerifyLimits};
use ward_audit::{AuditEvent, AuditRecord, ChainHead, EventBatch, EventType, Report};

const ORIGIN: &str = "ward.test/audit";
const SIZES: [usize; 3] = [4, 8, 16];

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(ORIGIN, &[7; 32]).unwrap()
}

fn honest_log() -> Vec<AuditRecord> {
    let events = (0..20)
        .map(|i| {
            AuditEvent::new(EventType::Push)
                .at(datetime!(2026-05-01 12:00 UTC) + time::Duration::seconds(i))
                .user(format!("user{i}"))
                .repository("prod/api")
                .tag(format!("v{i}"))
        })
        .collect();
    let batch = EventBatch::new(events).unwrap();
    batch
        .link(&ChainHead::EMPTY)
        .events
        .into_iter()
        .map(|l| l.record)
        .collect()
}

fn notes(records: &[AuditRecord]) -> Vec<String> {
    let signer = signer();
    SIZES
        .iter()
        .map(|&k| {
            signer
                .sign(&Checkpoint::over(
                    ORIGIN,
                    &records[..k],
                    datetime!(2026-05-01 13:00 UTC),
                ))
                .unwrap()
        })
        .collect()
}

fn record(rows: &mut [Row], i: usize) -> &mut AuditRecord {
    match &mut rows[i] {
        Row::Record(r) => r,
        Row::Unreadable(_) => panic!("row {i} is unreadable"),
    }
}

fn forged(prev: Hash, seq: u64) -> AuditRecord {
    let event = AuditEvent::new(EventType::Pull)
        .user("mallory")
        .repository("prod/api");
    let json = ward_audit::canonical::to_canonical(&event).unwrap();
    AuditRecord::link(prev, seq, json)
}

/// Recomputes `prev_hash` and `hash` of every row from `from` on, as an attacker who
/// understands the chain would.
fn relink(rows: &mut [Row], from: usize) {
    let mut prev = if from == 0 {
        Hash::ZERO
    } else {
        record(rows, from - 1).hash
    };
    for (i, row) in rows.iter_mut().enumerate().skip(from) {
        let Row::Record(r) = row else { continue };
        *r = AuditRecord::link(prev, i as u64, r.event_json.clone());
        prev = r.hash;
    }
}

fn edit(rows: &mut [Row], i: usize) {
    let r = record(rows, i);
    r.event_json = r.event_json.replace(&format!("\"user{i}\""), "\"root\"");
}

fn renumber(rows: &mut [Row], from: usize, delta: i64) {
    for i in from..rows.len() {
        let r = record(rows, i);
        r.seq = (r.seq as i64 + delta) as u64;
    }
}

type Tamper = fn(&mut Vec<Row>, &mut Vec<String>);

enum Expect {
    /// No event problem; so many events are unprotected.
    Intact { tail: u64 },
    /// The first bad event.
    Bad { seq: u64, kind: ProblemKind },
}

struct Case {
    name: &'static str,
    tamper: Tamper,
    expect: Expect,
    checkpoint_problems: &'static [CheckpointProblemKind],
}

fn cases() -> Vec<Case> {
    use CheckpointProblemKind::*;
    use Expect::*;
    use ProblemKind::*;
    vec![
        Case {
            name: "untouched",
            tamper: |_, _| {},
            expect: Intact { tail: 4 },
            checkpoint_problems: &[],
        },
        Case {
            name: "edit a field",
            tamper: |r, _| edit(r, 6),
            expect: Bad {
                seq: 6,
                kind: Altered,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "edit a field and recompute that row's hash",
            tamper: |r, _| {
                edit(r, 6);
                let x = record(r, 6);
                x.hash = AuditRecord::entry_hash(&x.prev_hash, 6, &x.event_json);
            },
            expect: Bad {
                seq: 6,
                kind: Altered,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "overwrite only the stored hash",
            tamper: |r, _| record(r, 6).hash = Hash::of_parts(&[b"x"]),
            expect: Bad {
                seq: 6,
                kind: Altered,
            },
            checkpoint_problems: &[],
        },
        Case {
            name: "delete an event",
            tamper: |r, _| {
                r.remove(6);
            },
            expect: Bad {
                seq: 6,
                kind: Removed,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "delete the first event",
            tamper: |r, _| {
                r.remove(0);
            },
            expect: Bad {
                seq: 0,
                kind: Removed,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch, RootMismatch],
        },
        Case {
            name: "delete an event and renumber the rest",
            tamper: |r, _| {
                r.remove(6);
                renumber(r, 6, -1);
            },
            expect: Bad {
                seq: 6,
                kind: Removed,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "swap two lines",
            tamper: |r, _| r.swap(6, 7),
            expect: Bad {
                seq: 6,
                kind: Reordered,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "swap two events' seq numbers",
            tamper: |r, _| {
                r.swap(6, 7);
                record(r, 6).seq = 6;
                record(r, 7).seq = 7;
            },
            expect: Bad {
                seq: 6,
                kind: Reordered,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "insert a forged event with a recomputed hash and renumber the rest",
            tamper: |r, _| {
                let prev = record(r, 5).hash;
                r.insert(6, Row::Record(forged(prev, 6)));
                renumber(r, 7, 1);
            },
            expect: Bad {
                seq: 6,
                kind: Inserted,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "insert a forged event with a duplicate seq before the original",
            tamper: |r, _| {
                let prev = record(r, 5).hash;
                r.insert(6, Row::Record(forged(prev, 6)));
            },
            expect: Bad {
                seq: 6,
                kind: Inserted,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "insert a forged event with a duplicate seq after the original",
            tamper: |r, _| {
                let prev = record(r, 5).hash;
                r.insert(7, Row::Record(forged(prev, 6)));
            },
            expect: Bad {
                seq: 6,
                kind: Inserted,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "insert a forged event and recompute the whole chain after it",
            tamper: |r, _| {
                r.insert(6, Row::Record(forged(Hash::ZERO, 0)));
                relink(r, 6);
            },
            expect: Bad {
                seq: 4,
                kind: Rewritten,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "edit a field and recompute the whole chain after it",
            tamper: |r, _| {
                edit(r, 6);
                relink(r, 6);
            },
            expect: Bad {
                seq: 4,
                kind: Rewritten,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        Case {
            name: "delete an event and recompute the whole chain after it",
            tamper: |r, _| {
                r.remove(10);
                relink(r, 10);
            },
            expect: Bad {
                seq: 8,
                kind: Rewritten,
            },
            checkpoint_problems: &[RootMismatch],
        },
        Case {
            name: "truncate below a signed checkpoint",
            tamper: |r, _| r.truncate(12),
            expect: Bad {
                seq: 12,
                kind: Truncated,
            },
            checkpoint_problems: &[BeyondLog],
        },
        Case {
            name: "a line that is not a record",
            tamper: |r, _| {
                r[6] = Row::Unreadable(Unreadable {
                    line: 8,
                    message: "garbage".into(),
                })
            },
            expect: Bad {
                seq: 6,
                kind: Altered,
            },
            checkpoint_problems: &[RootMismatch, RootMismatch],
        },
        // What no signature covers yet cannot be proven: these show up only as the tail.
        Case {
            name: "truncate after the last checkpoint",
            tamper: |r, _| r.truncate(17),
            expect: Intact { tail: 1 },
            checkpoint_problems: &[],
        },
        Case {
            name: "rewrite an event after the last checkpoint",
            tamper: |r, _| {
                edit(r, 18);
                relink(r, 18);
            },
            expect: Intact { tail: 4 },
            checkpoint_problems: &[],
        },
        Case {
            name: "append a forged event after the last checkpoint",
            tamper: |r, _| {
                let prev = record(r, 19).hash;
                r.push(Row::Record(forged(prev, 20)));
            },
            expect: Intact { tail: 5 },
            checkpoint_problems: &[],
        },
        // Forged checkpoints.
        Case {
            name: "alter a checkpoint's size",
            tamper: |_, n| n[1] = n[1].replacen("\n8\n", "\n9\n", 1),
            expect: Intact { tail: 4 },
            checkpoint_problems: &[BadSignature],
        },
        Case {
            name: "a checkpoint signed by an unknown key",
            tamper: |r, n| {
                let other = CheckpointSigner::from_seed(ORIGIN, &[9; 32]).unwrap();
                let rows: Vec<AuditRecord> = r
                    .iter()
                    .take(12)
                    .map(|row| match row {
                        Row::Record(x) => x.clone(),
                        Row::Unreadable(_) => unreachable!(),
                    })
                    .collect();
                n.push(
                    other
                        .sign(&Checkpoint::over(
                            ORIGIN,
                            &rows,
                            datetime!(2026-05-01 13:00 UTC),
                        ))
                        .unwrap(),
                );
            },
            expect: Intact { tail: 4 },
            checkpoint_problems: &[UntrustedKey],
        },
        Case {
            name: "a checkpoint for another log",
            tamper: |r, n| {
                let rows: Vec<AuditRecord> = r
                    .iter()
                    .take(12)
                    .map(|row| match row {
                        Row::Record(x) => x.clone(),
                        Row::Unreadable(_) => unreachable!(),
                    })
                    .collect();
                n.push(signer().sign_text(
                    &Checkpoint::over("elsewhere", &rows, datetime!(2026-05-01 13:00 UTC)).body(),
                ));
            },
            expect: Intact { tail: 4 },
            checkpoint_problems: &[OriginMismatch],
        },
        Case {
            name: "a correctly signed checkpoint of a different tree (split view)",
            tamper: |_, n| {
                let mut rows: Vec<Row> = honest_log().into_iter().map(Row::Record).collect();
                edit(&mut rows, 2);
                relink(&mut rows, 2);
                let other: Vec<AuditRecord> =
                    (0..8).map(|i| record(&mut rows, i).clone()).collect();
                n[1] = signer()
                    .sign(&Checkpoint::over(
                        ORIGIN,
                        &other,
                        datetime!(2026-05-01 13:00 UTC),
                    ))
                    .unwrap();
            },
            expect: Bad {
                seq: 4,
                kind: Rewritten,
            },
            checkpoint_problems: &[RootMismatch],
        },
    ]
}

fn check(case: &Case, report: &Report, how: &str) {
    let context = format!("{} ({how}):\n{report}", case.name);
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
    let intact =
        matches!(case.expect, Expect::Intact { .. }) && case.checkpoint_problems.is_empty();
    assert_eq!(report.is_intact(), intact, "{context}");
}

fn trusted() -> Vec<CheckpointVerifier> {
    vec![signer().verifier()]
}

#[test]
fn every_tampering_is_named_in_memory_and_in_an_export_file() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let honest = honest_log();
        let mut rows: Vec<Row> = honest.iter().cloned().map(Row::Record).collect();
        let mut notes = notes(&honest);
        (case.tamper)(&mut rows, &mut notes);

        let report = verify::verify(rows.clone(), &notes, &trusted(), Some(ORIGIN));
        check(&case, &report, "in memory");

        let path = dir.path().join("export.jsonl");
        write_export(&path, &rows, &notes);
        let from_file = export::verify_file(&path, &trusted(), ImportLimits::default()).unwrap();
        check(&case, &from_file, "export file");
    }
}

/// Unreadable rows become a garbage line.
fn write_export(path: &std::path::Path, rows: &[Row], notes: &[String]) {
    let header = Header {
        format: export::EXPORT_FORMAT.into(),
        version: export::EXPORT_VERSION,
        origin: ORIGIN.into(),
        exported_at: datetime!(2026-05-02 0:00 UTC),
        tree_size: rows.len() as u64,
    };
    let mut text = export::header_line(&header) + "\n";
    for (i, note) in notes.iter().enumerate() {
        text += &export::checkpoint_line(i as u64, note);
        text.push('\n');
    }
    for row in rows {
        match row {
            Row::Record(r) => text += &export::event_line(r),
            Row::Unreadable(_) => text += "{\"type\":\"event\",\"seq\":\"garbage",
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn tampering_in_the_database_is_named_by_verify_store() {
    for case in cases() {
        let honest = honest_log();
        let mut rows: Vec<Row> = honest.iter().cloned().map(Row::Record).collect();
        let mut notes = notes(&honest);
        (case.tamper)(&mut rows, &mut notes);
        // Only states a table keyed by seq can hold.
        let Some(records) = rows
            .iter()
            .map(|r| match r {
                Row::Record(r) => Some(r.clone()),
                Row::Unreadable(_) => None,
            })
            .collect::<Option<Vec<AuditRecord>>>()
        else {
            continue;
        };
        if records.windows(2).any(|w| w[0].seq >= w[1].seq) {
            continue;
        }
        let store = MemoryStore::new();
        store.tamper(|stored| *stored = records);
        for note in &notes {
            put_note(&store, note).await;
        }
        let report =
            verify::verify_store(&*store, &trusted(), Some(ORIGIN), VerifyLimits::default())
                .await
                .unwrap();
        check(&case, &report, "store");
    }
}

async fn put_note(store: &Arc<MemoryStore>, note: &str) {
    // Stored keyed by a unique size, whatever the (possibly forged) note claims.
    let size = store.state.lock().unwrap().checkpoints.len() as u64 * 1000 + 1000;
    let stored = StoredCheckpoint {
        tree_size: size,
        created_at: datetime!(2026-05-01 13:00 UTC),
        note: note.to_owned(),
        frontier: Vec::new(),
    };
    store.put_checkpoint(&stored).await.unwrap();
}

#[test]
fn reports_render_for_people_and_machines() {
    let honest = honest_log();
    let mut rows: Vec<Row> = honest.iter().cloned().map(Row::Record).collect();
    edit(&mut rows, 6);
    let report = verify::verify(rows, &notes(&honest), &trusted(), Some(ORIGIN));
    let text = report.to_string();
    assert!(
        text.contains("TAMPERED: first bad event: seq 6 altered"),
        "{text}"
    );
    assert!(text.contains("BAD CHECKPOINT #1 (size 8)"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["first_problem"]["seq"], 6);
    assert_eq!(json["first_problem"]["kind"], "altered");
    assert_eq!(json["checkpoint_problems"][0]["kind"], "root_mismatch");
}
