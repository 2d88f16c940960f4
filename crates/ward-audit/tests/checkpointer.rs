#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Signed checkpoints over a store: signing, resuming, proofs, refusing damaged logs.

mod common;

use std::sync::Arc;

use common::MemoryStore;
use ward_audit::checkpoint::{self, CheckpointSigner};
use ward_audit::checkpointer::CheckpointerError;
use ward_audit::merkle;
use ward_audit::verify::{self, VerifyLimits};
use ward_audit::{AuditEvent, AuditLog, Checkpointer, EventType, LogConfig};

const ORIGIN: &str = "ward.test/audit";

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(ORIGIN, &[1; 32]).unwrap()
}

async fn record(log: &AuditLog, n: usize) {
    for i in 0..n {
        let event = AuditEvent::new(EventType::Push)
            .user(format!("u{i}"))
            .repository("lib/a");
        log.record(event).await.unwrap();
    }
}

fn leaves(store: &MemoryStore) -> Vec<ward_audit::Hash> {
    store
        .records()
        .iter()
        .map(|r| merkle::leaf_hash(r.hash.as_bytes()))
        .collect()
}

#[tokio::test]
async fn checkpoints_sign_the_tree_and_prove_inclusion_and_consistency() {
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let mut cp = Checkpointer::resume(store.clone(), signer()).await.unwrap();
    assert_eq!(
        cp.checkpoint_now().await.unwrap(),
        None,
        "an empty log gets no checkpoint"
    );

    record(&log, 10).await;
    let first = cp
        .checkpoint_now()
        .await
        .unwrap()
        .expect("a checkpoint of 10 events");
    assert_eq!(first.tree_size, 10);
    assert_eq!(
        cp.checkpoint_now().await.unwrap(),
        None,
        "nothing new, nothing signed"
    );
    record(&log, 5).await;
    let second = cp
        .checkpoint_now()
        .await
        .unwrap()
        .expect("a checkpoint of 15 events");

    let trusted = [signer().verifier()];
    let a = checkpoint::open(&first.note, &trusted).unwrap();
    let b = checkpoint::open(&second.note, &trusted).unwrap();
    let leaves = leaves(&store);
    assert_eq!(a.root_hash, merkle::root(&leaves[..10]));
    assert_eq!(b.root_hash, merkle::root(&leaves));
    assert_eq!(b.chain_head, store.records()[14].hash);

    let consistency = merkle::consistency_proof(&leaves, 10, 15).unwrap();
    merkle::verify_consistency(10, 15, &a.root_hash, &b.root_hash, &consistency.hashes).unwrap();
    let inclusion = merkle::inclusion_proof(&leaves, 3).unwrap();
    merkle::verify_inclusion(3, 15, &leaves[3], &inclusion.hashes, &b.root_hash).unwrap();

    let status = cp.status().borrow().clone();
    assert_eq!(
        (status.tree_size, status.signed_total, status.failures_total),
        (15, 2, 0)
    );

    let report = verify::verify_store(&*store, &trusted, Some(ORIGIN), VerifyLimits::default())
        .await
        .unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(
        (report.checkpoints_verified, report.unprotected_tail),
        (2, 0)
    );
}

#[tokio::test]
async fn a_restart_resumes_from_the_stored_frontier() {
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    record(&log, 9).await;
    Checkpointer::resume(store.clone(), signer())
        .await
        .unwrap()
        .checkpoint_now()
        .await
        .unwrap();

    // Damage an old, already signed record. A resumed checkpointer reads only what is new,
    // so it does not see this (the verifier does); a rebuilt one would refuse to sign.
    store.tamper(|records| records[0].event_json = records[0].event_json.replace("u0", "x"));
    record(&log, 3).await;
    let mut resumed = Checkpointer::resume(store.clone(), signer()).await.unwrap();
    assert_eq!(resumed.status().borrow().tree_size, 9);
    let next = resumed
        .checkpoint_now()
        .await
        .unwrap()
        .expect("a checkpoint of 12 events");
    assert_eq!(next.tree_size, 12);
    let expected_root = merkle::root(&leaves(&store));
    let signed = checkpoint::open(&next.note, &[signer().verifier()]).unwrap();
    assert_eq!(
        signed.root_hash, expected_root,
        "the resumed frontier extends the same tree"
    );
}

#[tokio::test]
async fn a_new_key_rebuilds_from_the_first_record_and_refuses_a_damaged_log() {
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    record(&log, 5).await;
    Checkpointer::resume(store.clone(), signer())
        .await
        .unwrap()
        .checkpoint_now()
        .await
        .unwrap();
    store.tamper(|records| records[2].event_json = records[2].event_json.replace("u2", "x"));
    record(&log, 1).await;

    let rotated = CheckpointSigner::from_seed(ORIGIN, &[2; 32]).unwrap();
    let mut cp = Checkpointer::resume(store.clone(), rotated).await.unwrap();
    let error = cp.checkpoint_now().await.unwrap_err();
    assert!(
        matches!(error, CheckpointerError::Tampered { seq: 2, .. }),
        "{error}"
    );
    let status = cp.status().borrow().clone();
    assert_eq!(status.failures_total, 1);
    assert!(status.last_error.unwrap().contains("seq 2"));
    assert_eq!(
        store.state.lock().unwrap().checkpoints.len(),
        1,
        "nothing signed over the damage"
    );
}

#[tokio::test]
async fn records_deleted_after_the_last_checkpoint_stop_the_signing() {
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    record(&log, 10).await;
    let mut cp = Checkpointer::resume(Arc::clone(&store), signer())
        .await
        .unwrap();
    cp.checkpoint_now().await.unwrap();
    record(&log, 5).await;
    store.tamper(|records| {
        records.remove(12);
    });
    let error = cp.checkpoint_now().await.unwrap_err();
    assert!(
        matches!(error, CheckpointerError::Tampered { seq: 12, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn only_flushed_records_are_signed() {
    let store = MemoryStore::new();
    store.append_unflushed(3).await;
    let mut cp = Checkpointer::resume(store.clone(), signer()).await.unwrap();

    store
        .fail_syncs
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let error = cp
        .checkpoint_now()
        .await
        .expect_err("an unflushed log is not signed");
    assert!(error.to_string().contains("fsync failed"), "{error}");
    assert!(store.state.lock().unwrap().checkpoints.is_empty());

    store
        .fail_syncs
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let signed = cp
        .checkpoint_now()
        .await
        .unwrap()
        .expect("a checkpoint of 3");
    assert_eq!(signed.tree_size, 3);
    assert_eq!(store.durable(), 3);
}
