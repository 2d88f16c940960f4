#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The group-committing front end: durability before the answer, batching, failures.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{MemoryStore, within};
use ward_audit::{AuditError, AuditEvent, AuditLog, EventType, LogConfig, verify};

fn config(batch_events_max: usize) -> LogConfig {
    LogConfig {
        queue_events_max: 64,
        batch_events_max,
        ..LogConfig::default()
    }
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(EventType::Pull)
        .user(format!("user{i}"))
        .repository("lib/a")
}

/// Waits until `n` events sit in the log's queue.
async fn until_queued(log: &AuditLog, n: u64) {
    within("events to queue", async {
        while log.stats().queued_events < n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn concurrent_records_share_one_commit_and_answer_only_after_it() {
    let store = MemoryStore::new();
    store.close_gate();
    let (log, _writer) = AuditLog::start(store.clone(), config(100)).await.unwrap();

    let first = tokio::spawn({
        let log = log.clone();
        async move { log.record(event(0)).await }
    });
    within("the first append", store.entered.notified()).await;
    let rest: Vec<_> = (1..=10)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.record(event(i)).await })
        })
        .collect();
    until_queued(&log, 10).await;
    assert!(
        !first.is_finished(),
        "record must not return before the store commits"
    );
    assert!(store.records().is_empty());

    store.open_gate();
    let receipt = within("the first record", first).await.unwrap().unwrap();
    assert_eq!(receipt.seq, 0);
    let mut seqs = Vec::new();
    for handle in rest {
        seqs.push(within("a record", handle).await.unwrap().unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
    assert_eq!(
        store.batch_sizes(),
        vec![1, 10],
        "the ten waiting events are one commit"
    );
    let stats = log.stats();
    assert_eq!((stats.events_recorded_total, stats.batches_total), (11, 2));
    assert_eq!(stats.head.unwrap().size, 11);
}

#[tokio::test]
async fn batches_are_capped_at_batch_events_max() {
    let store = MemoryStore::new();
    assert_eq!(capped_batches(store, config(4)).await, vec![1, 4, 4, 2]);
}

#[tokio::test]
async fn batches_are_capped_where_the_store_asks() {
    let store = MemoryStore::new();
    store.batch_hint.store(4, Ordering::SeqCst);
    assert_eq!(capped_batches(store, config(100)).await, vec![1, 4, 4, 2]);
}

/// The batch sizes of one event recorded alone and ten queued behind it.
async fn capped_batches(store: Arc<MemoryStore>, config: LogConfig) -> Vec<usize> {
    store.close_gate();
    let (log, _writer) = AuditLog::start(store.clone(), config).await.unwrap();
    let first = tokio::spawn({
        let log = log.clone();
        async move { log.record(event(0)).await }
    });
    within("the first append", store.entered.notified()).await;
    let rest: Vec<_> = (1..=10)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.record(event(i)).await })
        })
        .collect();
    until_queued(&log, 10).await;
    store.open_gate();
    within("the first record", first).await.unwrap().unwrap();
    for handle in rest {
        within("a record", handle).await.unwrap().unwrap();
    }
    store.batch_sizes()
}

#[tokio::test]
async fn a_store_failure_fails_every_caller_of_the_batch_and_stores_nothing() {
    let store = MemoryStore::new();
    store.close_gate();
    let (log, _writer) = AuditLog::start(store.clone(), config(100)).await.unwrap();
    let first = tokio::spawn({
        let log = log.clone();
        async move { log.record(event(0)).await }
    });
    within("the first append", store.entered.notified()).await;
    let rest: Vec<_> = (1..=5)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.record(event(i)).await })
        })
        .collect();
    until_queued(&log, 5).await;
    store.fail_appends.store(true, Ordering::SeqCst);
    store.open_gate();
    for handle in std::iter::once(first).chain(rest) {
        let result = within("a record", handle).await.unwrap();
        let error = result.expect_err("a failed append must fail the caller");
        assert!(matches!(error, AuditError::Store(_)));
        assert!(error.to_string().contains("disk full"), "{error}");
    }
    assert!(store.records().is_empty());
    let stats = log.stats();
    assert_eq!(stats.events_failed_total, 6);
    assert!(stats.last_error.unwrap().contains("disk full"));

    // The log recovers: the next event takes seq 0, with no gap left by the failure.
    store.fail_appends.store(false, Ordering::SeqCst);
    let receipt = log.record(event(9)).await.unwrap();
    assert_eq!(receipt.seq, 0);
}

#[tokio::test]
async fn every_answer_waits_for_the_flush_that_makes_its_event_durable() {
    answers_wait_for_their_flush(false).await;
}

#[tokio::test]
async fn every_answer_waits_for_the_blocking_flush_that_makes_its_event_durable() {
    answers_wait_for_their_flush(true).await;
}

async fn answers_wait_for_their_flush(blocking: bool) {
    let store = MemoryStore::new();
    store.blocking_syncs.store(blocking, Ordering::SeqCst);
    let (log, _writer) = AuditLog::start(store.clone(), config(8)).await.unwrap();
    let callers: Vec<_> = (0..16)
        .map(|task| {
            let (log, store) = (log.clone(), store.clone());
            tokio::spawn(async move {
                for i in 0..25 {
                    let receipt = log.record(event(task * 100 + i)).await.unwrap();
                    let durable = store.durable() as u64;
                    assert!(
                        receipt.seq < durable,
                        "seq {} answered with only {durable} records durable",
                        receipt.seq
                    );
                }
            })
        })
        .collect();
    for caller in callers {
        within("a caller", caller).await.unwrap();
    }
    assert_eq!(store.durable(), 400);
    assert_eq!(log.stats().head.unwrap().size, 400);
    let blocking_syncs = store.blocking_syncs_done.load(Ordering::SeqCst);
    assert_eq!(
        blocking_syncs > 0,
        blocking,
        "{blocking_syncs} blocking syncs"
    );
}

#[tokio::test]
async fn a_failed_flush_fails_its_callers_and_every_later_one() {
    a_failed_flush_is_final(false).await;
}

#[tokio::test]
async fn a_failed_blocking_flush_fails_its_callers_and_every_later_one() {
    a_failed_flush_is_final(true).await;
}

async fn a_failed_flush_is_final(blocking: bool) {
    let store = MemoryStore::new();
    store.blocking_syncs.store(blocking, Ordering::SeqCst);
    let (log, _writer) = AuditLog::start(store.clone(), config(8)).await.unwrap();
    log.record(event(0)).await.unwrap();

    store.fail_syncs.store(true, Ordering::SeqCst);
    let error = log
        .record(event(1))
        .await
        .expect_err("an unflushed event must fail");
    assert!(error.to_string().contains("fsync failed"), "{error}");
    // The kernel may have dropped what it failed to write while a later flush
    // succeeds: nothing is promised durable again until the server restarts.
    store.fail_syncs.store(false, Ordering::SeqCst);
    let error = log
        .record(event(2))
        .await
        .expect_err("the log stays failed");
    assert!(error.to_string().contains("fsync failed"), "{error}");
    assert_eq!(store.durable(), 1);
    assert_eq!(
        log.stats().head.unwrap().size,
        1,
        "the head moves only on a flush"
    );
    let stats = log.stats();
    assert_eq!(stats.events_failed_total, 2);
    assert!(stats.broken.unwrap().contains("fsync failed"));
}

#[tokio::test]
async fn a_stopped_writer_is_an_error_not_a_silent_drop() {
    let store = MemoryStore::new();
    let (log, writer) = AuditLog::start(store.clone(), config(10)).await.unwrap();
    writer.abort();
    let _ = writer.await;
    assert!(matches!(
        log.record(event(0)).await,
        Err(AuditError::Closed)
    ));
}

#[tokio::test]
async fn two_logs_over_one_store_keep_one_chain() {
    // As two `ward serve` processes sharing one PostgreSQL: chaining happens in the store.
    let store = MemoryStore::new();
    let (a, _wa) = AuditLog::start(store.clone(), config(16)).await.unwrap();
    let (b, _wb) = AuditLog::start(store.clone(), config(16)).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let log = if writer % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                log.record(event(writer * 100 + i)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        within("writers", task).await.unwrap();
    }
    let records = store.records();
    assert_eq!(records.len(), 400);
    let report = verify::verify(records, &[], &[], None);
    assert!(report.is_intact(), "{report}");
}

#[tokio::test]
async fn over_long_fields_are_clamped_before_recording() {
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let huge = "A".repeat(100_000);
    log.record(AuditEvent::new(EventType::AuthFailure).user_agent(huge))
        .await
        .unwrap();
    let stored = store.records()[0].event().unwrap();
    assert_eq!(stored.user_agent.unwrap().len(), 1024);
    assert_eq!(
        stored.details.get("truncated").map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn sustained_append_measures_the_store() {
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(Arc::clone(&store), LogConfig::default())
        .await
        .unwrap();
    let result = ward_audit::bench::sustained_append(&log, 8, 50)
        .await
        .unwrap();
    assert_eq!(result.events, 400);
    assert_eq!(store.records().len(), 400);
    assert!(result.batches >= 1 && result.batches <= 400);
    assert!(result.events_per_sec > 0.0);
    assert!(result.to_string().contains("400 events by 8 writers"));
}
