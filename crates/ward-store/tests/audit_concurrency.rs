#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Several server processes sharing one database keep ONE chain. Each `Audit` here
//! runs over its own `MetaStore` (its own connection pools), as a separate `ward
//! serve` process would, on the same PostgreSQL schema or the same SQLite file; both
//! record concurrently from many tasks and both checkpointers sign.

#[macro_use]
mod audit_common;

use std::collections::BTreeMap;

use audit_common::{Db, ORIGIN, signer, within};
use tokio::task::JoinSet;
use ward_audit::config::AuditConfig;
use ward_audit::verify::{self, VerifyLimits};
use ward_audit::{Audit, AuditEvent, AuditRecord, AuditStore, EventType, Receipt};

const WRITERS_PER_INSTANCE: usize = 8;
const EVENTS_PER_WRITER: usize = 40;

both_backends!(
    two_instances_on_one_database_keep_one_chain,
    |db: Db| async move {
        let config = AuditConfig {
            origin: ORIGIN.into(),
            checkpoint_interval_secs: 1,
            ..AuditConfig::default()
        };
        let stores = [db.store().await, db.store().await];
        let mut instances = Vec::new();
        for store in &stores {
            instances.push(
                Audit::start(store.clone(), &config, signer())
                    .await
                    .unwrap(),
            );
        }

        let mut tasks = JoinSet::new();
        for (instance, audit) in instances.iter().enumerate() {
            for writer in 0..WRITERS_PER_INSTANCE {
                let log = audit.log().clone();
                tasks.spawn(async move {
                    let user = format!("instance{instance}-writer{writer}");
                    let mut receipts = Vec::new();
                    for i in 0..EVENTS_PER_WRITER {
                        let event = AuditEvent::new(EventType::Pull)
                            .user(&user)
                            .tag(i.to_string());
                        receipts.push((log.record(event).await.unwrap(), user.clone(), i));
                    }
                    receipts
                });
            }
        }
        let mut receipts: Vec<(Receipt, String, usize)> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            receipts.extend(done.unwrap());
        }
        let total = 2 * WRITERS_PER_INSTANCE * EVENTS_PER_WRITER;

        // Every event got its own seq, and together they are exactly 0..total.
        let mut seqs: Vec<u64> = receipts.iter().map(|(r, _, _)| r.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..total as u64).collect::<Vec<_>>());

        // The stored chain is one chain, and each receipt names the record at its seq.
        let records = read_all(&*stores[0]).await;
        assert_eq!(records.len(), total);
        let by_seq: BTreeMap<u64, &AuditRecord> = records.iter().map(|r| (r.seq, r)).collect();
        for (receipt, user, i) in &receipts {
            let record = by_seq[&receipt.seq];
            assert_eq!(record.hash, receipt.hash);
            let event = record.event().unwrap();
            assert_eq!(event.user.as_deref(), Some(user.as_str()));
            assert_eq!(event.artifact.version, Some(i.to_string()));
        }
        for instance in &instances {
            assert_eq!(
                instance.log().stats().events_recorded_total,
                (total / 2) as u64
            );
        }
        assert_eq!(
            stores[1].head().await.unwrap(),
            records[total - 1].head_after()
        );

        // Both checkpointers catch up with the shared log; their notes agree.
        for instance in &instances {
            let mut status = instance.checkpoints();
            within(
                "a checkpoint covering every event",
                status.wait_for(|s| s.tree_size == total as u64),
            )
            .await
            .unwrap();
        }
        let report = verify::verify_store(
            &*stores[1],
            &[signer().verifier()],
            Some(ORIGIN),
            VerifyLimits::default(),
        )
        .await
        .unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!(report.events, total as u64);
        assert_eq!(report.protected_size, total as u64);
    }
);

async fn read_all(store: &impl AuditStore) -> Vec<AuditRecord> {
    let mut all = Vec::new();
    loop {
        let page = store.read(all.len() as u64, 1000).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}
