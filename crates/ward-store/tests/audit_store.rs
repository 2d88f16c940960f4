#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The audit store contract on SQLite and PostgreSQL: appending and reading the chain,
//! queries and their pages, checkpoints, sink cursors, the triggers that keep the
//! table append-only, and the whole subsystem (`Audit::start`) running on each backend.

#[macro_use]
mod audit_common;

use std::time::Duration;

use audit_common::{Db, Kind, ORIGIN, PgBypass, push, signer, within};
use ward_audit::config::{AuditConfig, SinkConfig, SinkTarget};
use ward_audit::event::timestamp;
use ward_audit::export::{self, ImportLimits};
use ward_audit::store::{EventFilter, QUERY_PAGE_RECORDS_MAX, READ_RECORDS_MAX};
use ward_audit::verify::{self, VerifyLimits};
use ward_audit::{
    Audit, AuditEvent, AuditLog, AuditRecord, AuditStore, ChainHead, Checkpointer, EventBatch,
    EventType, LogConfig, Outcome,
};
use ward_store::StoreError;

fn batch(events: Vec<AuditEvent>) -> EventBatch {
    EventBatch::new(events).unwrap()
}

both_backends!(
    append_links_each_batch_after_the_head,
    |db: Db| async move {
        let store = db.store().await;
        assert_eq!(store.head().await.unwrap(), ChainHead::EMPTY);

        let first = batch((0..3).map(push).collect());
        let stored = store.append(&first).await.unwrap();
        let expected: Vec<AuditRecord> = first
            .link(&ChainHead::EMPTY)
            .events
            .into_iter()
            .map(|l| l.record)
            .collect();
        assert_eq!(
            stored, expected,
            "the store links exactly as EventBatch::link"
        );
        assert_eq!(store.head().await.unwrap(), stored[2].head_after());

        let second = batch((3..5).map(push).collect());
        let more = store.append(&second).await.unwrap();
        assert_eq!(more.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(more[0].prev_hash, stored[2].hash);
        assert_eq!(store.head().await.unwrap(), more[1].head_after());

        let all = store.read(0, 100).await.unwrap();
        assert_eq!(all.len(), 5);
        for (i, record) in all.iter().enumerate() {
            assert!(record.is_self_consistent());
            assert_eq!(
                record.event().unwrap(),
                push(i),
                "events come back as recorded"
            );
        }
        assert_eq!(&all[..3], &stored[..]);
        assert_eq!(store.read(2, 2).await.unwrap(), all[2..4].to_vec());
        assert_eq!(store.read(4, 10).await.unwrap(), all[4..].to_vec());
        assert!(store.read(5, 10).await.unwrap().is_empty());
        assert!(store.read(0, 0).await.unwrap().is_empty());
        assert!(store.read(u64::MAX, 10).await.unwrap().is_empty());

        // An empty batch stores nothing and leaves the head alone.
        assert!(store.append(&batch(Vec::new())).await.unwrap().is_empty());
        assert_eq!(store.head().await.unwrap().size, 5);
    }
);

both_backends!(
    a_large_batch_is_one_append_and_reads_are_capped,
    |db: Db| async move {
        let store = db.store().await;
        let n = READ_RECORDS_MAX + 1;
        let events = (0..n)
            .map(|i| AuditEvent::new(EventType::Pull).user(format!("u{i}")))
            .collect();
        let stored = store.append(&batch(events)).await.unwrap();
        assert_eq!(stored.len(), n);
        assert_eq!(store.head().await.unwrap(), stored[n - 1].head_after());
        let page = store.read(0, usize::MAX).await.unwrap();
        assert_eq!(page.len(), READ_RECORDS_MAX, "read is capped");
        assert_eq!(page[..], stored[..READ_RECORDS_MAX]);
        let report = verify::verify_store(&*store, &[], None, VerifyLimits::default())
            .await
            .unwrap();
        assert_eq!(report.first_problem, None);
        assert_eq!(report.events, n as u64);
    }
);

/// Events with varied fields, so that every filter both keeps and drops some.
fn varied_events() -> Vec<AuditEvent> {
    let start = timestamp::parse("2026-05-01T12:00:00Z").unwrap();
    let users = ["alice", "bob", "carol"];
    let repos = ["prod/api", "dev/web"];
    let types = [
        EventType::Push,
        EventType::Pull,
        EventType::AuthFailure,
        EventType::AuthorizationDenied,
        EventType::Delete,
    ];
    (0..30)
        .map(|i| {
            let mut event =
                AuditEvent::new(types[i % types.len()]).at(start + Duration::from_secs(i as u64));
            if i % 7 != 0 {
                event = event.user(users[i % users.len()]);
            }
            if i % 4 != 0 {
                event = event.repository(repos[i % repos.len()]);
            }
            if i % 6 == 0 {
                event = event.action("mount");
            }
            event
        })
        .collect()
}

both_backends!(
    queries_return_what_the_reference_filter_matches,
    |db: Db| async move {
        let store = db.store().await;
        let records = store.append(&batch(varied_events())).await.unwrap();
        let start = timestamp::parse("2026-05-01T12:00:00Z").unwrap();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let half_micro = Duration::from_nanos(500);
        let filters = [
            EventFilter::default(),
            EventFilter {
                user: Some("alice".into()),
                ..Default::default()
            },
            EventFilter {
                user: Some("nobody".into()),
                ..Default::default()
            },
            EventFilter {
                repository: Some("prod/api".into()),
                ..Default::default()
            },
            EventFilter {
                action: Some("mount".into()),
                ..Default::default()
            },
            EventFilter {
                outcome: Some(Outcome::Denied),
                ..Default::default()
            },
            EventFilter {
                event_type: Some(EventType::AuthFailure),
                ..Default::default()
            },
            EventFilter {
                user: Some("bob".into()),
                repository: Some("dev/web".into()),
                event_type: Some(EventType::Pull),
                ..Default::default()
            },
            EventFilter {
                since: Some(at(10)),
                until: Some(at(20)),
                ..Default::default()
            },
            // Bounds finer than the stored microseconds: [10 s + 0.5 µs, 20 s + 0.5 µs)
            // holds 11 s … 20 s.
            EventFilter {
                since: Some(at(10) + half_micro),
                until: Some(at(20) + half_micro),
                ..Default::default()
            },
            EventFilter {
                until: Some(at(0)),
                ..Default::default()
            },
            EventFilter {
                after_seq: Some(25),
                outcome: Some(Outcome::Success),
                ..Default::default()
            },
            EventFilter {
                after_seq: Some(u64::MAX),
                ..Default::default()
            },
            EventFilter {
                limit: 3,
                repository: Some("dev/web".into()),
                ..Default::default()
            },
        ];
        for filter in &filters {
            let expected: Vec<AuditRecord> = records
                .iter()
                .filter(|r| filter.matches(r, &r.event().unwrap()))
                .take(filter.page_size())
                .cloned()
                .collect();
            assert_eq!(store.query(filter).await.unwrap(), expected, "{filter:?}");
        }
        // The sub-microsecond case really cut at the microsecond.
        let fine = store.query(&filters[9]).await.unwrap();
        assert_eq!(
            fine.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (11..=20).collect::<Vec<_>>()
        );
    }
);

both_backends!(queries_page_by_after_seq, |db: Db| async move {
    let store = db.store().await;
    let records = store.append(&batch(varied_events())).await.unwrap();
    let mut filter = EventFilter {
        repository: Some("prod/api".into()),
        limit: 3,
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = store.query(&filter).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        filter.after_seq = Some(last.seq);
        pages.push(page);
    }
    let paged: Vec<AuditRecord> = pages.concat();
    let expected: Vec<AuditRecord> = records
        .iter()
        .filter(|r| r.event().unwrap().repository.as_deref() == Some("prod/api"))
        .cloned()
        .collect();
    assert_eq!(paged, expected);
    assert_eq!(expected.len(), 7);
    assert_eq!(pages.len(), 3, "pages of 3, 3 and 1");

    // A page never exceeds the maximum, whatever the caller asks.
    let many: Vec<AuditEvent> = (0..QUERY_PAGE_RECORDS_MAX + 5)
        .map(|i| AuditEvent::new(EventType::Pull).user(format!("u{i}")))
        .collect();
    store.append(&batch(many)).await.unwrap();
    let huge = EventFilter {
        limit: usize::MAX,
        ..Default::default()
    };
    assert_eq!(
        store.query(&huge).await.unwrap().len(),
        QUERY_PAGE_RECORDS_MAX
    );
});

both_backends!(
    a_query_refuses_a_row_whose_columns_were_edited,
    |db: Db| async move {
        let store = db.store().await;
        store
            .append(&batch((0..4).map(push).collect()))
            .await
            .unwrap();
        let mut raw = db.raw().await;
        raw.bypass_triggers(PgBypass::ReplicationRole).await;
        raw.exec("UPDATE audit_events SET user_name = 'mallory' WHERE seq = 2")
            .await
            .unwrap();
        raw.restore_triggers(PgBypass::ReplicationRole).await;

        let by_mallory = EventFilter {
            user: Some("mallory".into()),
            ..Default::default()
        };
        let err = store.query(&by_mallory).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("seq 2"), "{err}");
        // Unfiltered queries still work: the row's hashed content is intact.
        assert_eq!(store.query(&EventFilter::default()).await.unwrap().len(), 4);
    }
);

both_backends!(checkpoints_round_trip, |db: Db| async move {
    let store = db.store().await;
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    assert!(store.read_checkpoints(0, 10).await.unwrap().is_empty());

    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let mut checkpointer = Checkpointer::resume(store.clone(), signer()).await.unwrap();
    let mut signed = Vec::new();
    for round in 0..3 {
        for i in 0..(round * 2 + 3) {
            log.record(push(i)).await.unwrap();
        }
        signed.push(checkpointer.checkpoint_now().await.unwrap().unwrap());
    }
    assert_eq!(
        signed.iter().map(|c| c.tree_size).collect::<Vec<_>>(),
        vec![3, 8, 15]
    );
    assert_eq!(
        store.latest_checkpoint().await.unwrap().as_ref(),
        signed.last()
    );
    assert_eq!(store.read_checkpoints(0, 10).await.unwrap(), signed);
    assert_eq!(store.read_checkpoints(4, 1).await.unwrap(), signed[1..2]);
    assert_eq!(store.read_checkpoints(9, 10).await.unwrap(), signed[2..]);
    assert!(store.read_checkpoints(16, 10).await.unwrap().is_empty());
    assert!(
        store
            .read_checkpoints(u64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A second checkpoint of the same size (another process's) is ignored.
    let mut rival = signed[1].clone();
    rival.note = "another note".into();
    store.put_checkpoint(&rival).await.unwrap();
    assert_eq!(store.read_checkpoints(8, 1).await.unwrap(), signed[1..2]);

    // A restarted checkpointer resumes from the stored frontier.
    let mut resumed = Checkpointer::resume(store.clone(), signer()).await.unwrap();
    assert_eq!(resumed.checkpoint_now().await.unwrap(), None);
    log.record(push(99)).await.unwrap();
    let next = resumed.checkpoint_now().await.unwrap().unwrap();
    assert_eq!(next.tree_size, 16);
    let report = verify::verify_store(
        &*store,
        &[signer().verifier()],
        Some(ORIGIN),
        VerifyLimits::default(),
    )
    .await
    .unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checkpoints_verified, 4);
    assert_eq!(report.unprotected_tail, 0);
});

both_backends!(
    a_checkpoint_row_with_a_broken_frontier_still_yields_its_note,
    |db: Db| async move {
        let store = db.store().await;
        let mut raw = db.raw().await;
        raw.insert_checkpoint(5, "a note", b"not a frontier").await;
        let read = store.read_checkpoints(0, 10).await.unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].tree_size, read[0].note.as_str()), (5, "a note"));
        assert!(
            read[0].frontier.is_empty(),
            "the unusable frontier is dropped"
        );
    }
);

both_backends!(sink_cursors_start_at_zero_and_move, |db: Db| async move {
    let store = db.store().await;
    assert_eq!(store.cursor("siem").await.unwrap(), 0);
    store.set_cursor("siem", 5).await.unwrap();
    store.set_cursor("archive", 2).await.unwrap();
    assert_eq!(store.cursor("siem").await.unwrap(), 5);
    store.set_cursor("siem", 9).await.unwrap();
    assert_eq!(store.cursor("siem").await.unwrap(), 9);
    assert_eq!(store.cursor("archive").await.unwrap(), 2);
    assert_eq!(store.cursor("other").await.unwrap(), 0);
});

/// A statement a DBA might run with the triggers in place, and what must refuse it.
struct Refused {
    sql: &'static str,
    /// `None`: this backend has no such statement.
    sqlite: Option<&'static str>,
    postgres: Option<&'static str>,
}

const REFUSED: &[Refused] = &[
    Refused {
        sql: "UPDATE audit_events SET event_json = '{}' WHERE seq = 1",
        sqlite: Some("append-only: UPDATE refused"),
        postgres: Some("audit_events is append-only: UPDATE refused"),
    },
    Refused {
        sql: "UPDATE audit_events SET user_name = 'x'",
        sqlite: Some("append-only: UPDATE refused"),
        postgres: Some("audit_events is append-only: UPDATE refused"),
    },
    Refused {
        sql: "DELETE FROM audit_events WHERE seq = 2",
        sqlite: Some("append-only: DELETE refused"),
        postgres: Some("audit_events is append-only: DELETE refused"),
    },
    Refused {
        sql: "DELETE FROM audit_events",
        sqlite: Some("append-only: DELETE refused"),
        postgres: Some("audit_events is append-only: DELETE refused"),
    },
    Refused {
        sql: "TRUNCATE audit_events",
        sqlite: None,
        postgres: Some("audit_events is append-only: TRUNCATE refused"),
    },
    Refused {
        sql: "UPDATE audit_head SET size = 1",
        sqlite: Some("audit_head only moves forward"),
        postgres: Some("audit_head only moves forward"),
    },
    Refused {
        sql: "DELETE FROM audit_head",
        sqlite: Some("audit_head cannot be deleted"),
        postgres: Some("audit_head is append-only: DELETE refused"),
    },
    Refused {
        sql: "TRUNCATE audit_head",
        sqlite: None,
        postgres: Some("audit_head is append-only: TRUNCATE refused"),
    },
    Refused {
        sql: "UPDATE audit_checkpoints SET note = 'forged'",
        sqlite: Some("audit_checkpoints is append-only: UPDATE refused"),
        postgres: Some("audit_checkpoints is append-only: UPDATE refused"),
    },
    Refused {
        sql: "DELETE FROM audit_checkpoints",
        sqlite: Some("audit_checkpoints is append-only: DELETE refused"),
        postgres: Some("audit_checkpoints is append-only: DELETE refused"),
    },
    Refused {
        sql: "TRUNCATE audit_checkpoints",
        sqlite: None,
        postgres: Some("audit_checkpoints is append-only: TRUNCATE refused"),
    },
];

both_backends!(
    the_triggers_refuse_updates_deletes_and_out_of_chain_inserts,
    |db: Db| async move {
        let store = db.store().await;
        let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
            .await
            .unwrap();
        for i in 0..3 {
            log.record(push(i)).await.unwrap();
        }
        Checkpointer::resume(store.clone(), signer())
            .await
            .unwrap()
            .checkpoint_now()
            .await
            .unwrap()
            .unwrap();
        let mut raw = db.raw().await;
        for case in REFUSED {
            let expected = match db.kind {
                Kind::Sqlite => case.sqlite,
                Kind::Postgres => case.postgres,
            };
            let Some(expected) = expected else { continue };
            let err = raw.exec(case.sql).await.unwrap_err();
            assert!(err.contains(expected), "{}: {err}", case.sql);
        }

        // Inserts that do not extend the chain: a gap, a duplicate, a wrong predecessor.
        let records = raw.records().await;
        let next = AuditRecord::link(records[2].hash, 3, records[0].event_json.clone());
        let wrong = [
            AuditRecord::link(records[2].hash, 4, next.event_json.clone()),
            AuditRecord::link(records[0].prev_hash, 1, next.event_json.clone()),
            AuditRecord::link(records[1].hash, 3, next.event_json.clone()),
        ];
        for record in &wrong {
            let err = raw.insert(record).await.unwrap_err();
            assert!(
                err.contains("extend the chain"),
                "seq {}: {err}",
                record.seq
            );
        }

        // Nothing changed: the log verifies and Ward goes on appending.
        log.record(push(3)).await.unwrap();
        let report = verify::verify_store(
            &*store,
            &[signer().verifier()],
            Some(ORIGIN),
            VerifyLimits::default(),
        )
        .await
        .unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!((report.events, report.checkpoints_verified), (4, 1));
    }
);

both_backends!(
    an_event_slipped_in_behind_wards_back_stops_appends_instead_of_forking,
    |db: Db| async move {
        let store = db.store().await;
        let stored = store
            .append(&batch((0..2).map(push).collect()))
            .await
            .unwrap();
        // A correctly chained row, inserted without moving the head: the trigger lets it in.
        let mut raw = db.raw().await;
        let forged = AuditRecord::link(
            stored[1].hash,
            2,
            ward_audit::canonical::to_canonical(&push(7)).unwrap(),
        );
        raw.insert(&forged).await.unwrap();

        let err = store
            .append(&batch(vec![push(2)]))
            .await
            .expect_err("the head no longer ends the chain");
        assert!(err.to_string().contains("chain"), "{err}");
        assert_eq!(
            raw.records().await.len(),
            3,
            "the failed append stored nothing"
        );
        assert_eq!(store.head().await.unwrap(), stored[1].head_after());
    }
);

both_backends!(the_whole_subsystem_runs_on_the_store, |db: Db| async move {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("audit.jsonl");
    let config = AuditConfig {
        origin: ORIGIN.into(),
        checkpoint_interval_secs: 1,
        sinks: vec![SinkConfig {
            name: "archive".into(),
            target: SinkTarget::File {
                path: archive.clone(),
                file_bytes_max: 1 << 20,
                files_kept_max: 2,
            },
            delivery: Default::default(),
        }],
        ..AuditConfig::default()
    };
    let audit = Audit::start(store.clone(), &config, signer())
        .await
        .unwrap();
    let mut receipts = Vec::new();
    for i in 0..25 {
        receipts.push(audit.log().record(push(i)).await.unwrap());
    }
    assert_eq!(
        receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..25).collect::<Vec<_>>()
    );

    let mut checkpoints = audit.checkpoints();
    within(
        "a checkpoint of all 25 events",
        checkpoints.wait_for(|s| s.tree_size == 25),
    )
    .await
    .unwrap();
    let sink = &audit.sink_monitors()[0];
    within(
        "the file sink to deliver all events",
        sink.wait_until(|s| s.cursor == 25),
    )
    .await;
    assert_eq!(
        store.cursor("archive").await.unwrap(),
        25,
        "the cursor is durable"
    );
    let delivered = std::fs::read_to_string(&archive).unwrap();
    assert_eq!(delivered.lines().count(), 25);

    let trusted = [signer().verifier()];
    let report = verify::verify_store(&*store, &trusted, Some(ORIGIN), VerifyLimits::default())
        .await
        .unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.events, report.protected_size), (25, 25));

    let path = dir.path().join("export.jsonl");
    let mut file = tokio::fs::File::create(&path).await.unwrap();
    export::export_store(&*store, ORIGIN, &mut file)
        .await
        .unwrap();
    let offline = export::verify_file(&path, &trusted, ImportLimits::default()).unwrap();
    assert!(offline.is_intact(), "{offline}");
    assert_eq!(offline.root_hash, report.root_hash);
});

/// Two stores on one database append three events each in turn, with `append`
/// or with `append_unsynced` and a `sync`, and must keep one chain.
async fn take_turns(db: Db, unsynced: bool) {
    // Each store remembers the head it last committed; after the other one
    // appended, that memory is stale and must not fork the chain.
    let stores = [db.store().await, db.store().await];
    let mut expected = Vec::new();
    for turn in 0..6 {
        let store = &stores[turn % 2];
        let events = batch((turn * 3..turn * 3 + 3).map(push).collect());
        let stored = if unsynced {
            let stored = store.append_unsynced(&events).await.unwrap();
            store.sync().await.unwrap();
            stored
        } else {
            store.append(&events).await.unwrap()
        };
        assert_eq!(stored[0].seq, expected.len() as u64, "turn {turn}");
        expected.extend(stored);
    }
    assert_eq!(stores[0].read(0, 100).await.unwrap(), expected);
    assert_eq!(
        stores[0].head().await.unwrap(),
        expected.last().unwrap().head_after()
    );
    let report = verify::verify_store(&*stores[1], &[], None, VerifyLimits::default())
        .await
        .unwrap();
    assert_eq!((report.first_problem, report.events), (None, 18));
}

both_backends!(
    stores_taking_turns_on_one_database_keep_one_chain,
    |db: Db| take_turns(db, false)
);

both_backends!(unsynced_appends_taking_turns_keep_one_chain, |db: Db| {
    take_turns(db, true)
});

both_backends!(
    an_abandoned_append_leaves_no_open_transaction,
    |db: Db| async move {
        let store = db.store().await;
        store.append(&batch(vec![push(0)])).await.unwrap();
        // A batch large enough to be still running when its caller gives up: the
        // future is dropped while the connection executes its statements.
        let abandoned = batch((1..2001).map(push).collect());
        let _ = tokio::time::timeout(Duration::from_millis(1), store.append(&abandoned)).await;

        // The next writes through the same store are committed on their own: a
        // separate store (another process) sees them.
        store.set_cursor("after-abandon", 7).await.unwrap();
        let later = store.append(&batch(vec![push(9)])).await.unwrap();
        let other = db.store().await;
        assert_eq!(other.cursor("after-abandon").await.unwrap(), 7);
        let all = other.read(0, 100).await.unwrap();
        assert_eq!(all.last(), later.last(), "the later batch is stored");
        // The abandoned batch is in the chain whole or not at all.
        assert!(all.len() == 2 || all.len() == 2002, "{} records", all.len());
        let report = verify::verify_store(&*other, &[], None, VerifyLimits::default())
            .await
            .unwrap();
        assert_eq!(report.first_problem, None);
    }
);
