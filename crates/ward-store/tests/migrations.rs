//! Upgrades: a database written by an earlier schema version keeps its data,
//! and what a migration derives from it is right. Each case runs on a fresh
//! SQLite file and a fresh PostgreSQL schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_core::Digest;
use ward_store::{MetaStore, MetaStoreOptions, testing};

/// Migration 6 counts the parts that results stored before it left unread
/// past a limit or encrypted; a malformed part is no such hiding place.
async fn scan_results_gain_their_unread_part_count(url: String) {
    testing::migrate_to(&url, 5).await;
    let incomplete = Digest::of(b"incomplete");
    let complete = Digest::of(b"complete");
    let reports = [
        (
            incomplete,
            r#"{"format":"pickle","findings":[],"unreadable":[{"location":{"offset":7},"reason":"memo indexes stored in more than 4096 separate runs (limits.pickle_memo_ranges_max)"},{"location":{},"reason":"pickle is truncated"},{"location":{"members":["a.pt"]},"reason":"entry \"a.pt\" is encrypted"}],"bytes_scanned":9,"ruleset":"r1"}"#,
        ),
        (
            complete,
            r#"{"format":"pickle","findings":[],"unreadable":[],"bytes_scanned":9,"ruleset":"r1"}"#,
        ),
    ];
    for (digest, report) in reports {
        testing::execute(
            &url,
            &format!(
                "INSERT INTO scan_results (digest, ruleset, max_severity, findings, report, scanned_at) \
                 VALUES ('{digest}', 'r1', NULL, 0, '{report}', 1)"
            ),
        )
        .await;
    }
    let store = MetaStore::connect(&url, &MetaStoreOptions::default())
        .await
        .unwrap();
    let got = store.scan_result(&incomplete).await.unwrap().unwrap();
    assert_eq!(
        got.unread_parts, 2,
        "the limit and the encrypted entry: {got:?}"
    );
    assert_eq!(got.report, reports[0].1, "the report itself is kept");
    let got = store.scan_result(&complete).await.unwrap().unwrap();
    assert_eq!(got.unread_parts, 0, "{got:?}");
}

#[tokio::test]
async fn sqlite_scan_results_gain_their_unread_part_count() {
    let dir = tempfile::tempdir().unwrap();
    scan_results_gain_their_unread_part_count(testing::sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_scan_results_gain_their_unread_part_count() {
    scan_results_gain_their_unread_part_count(testing::fresh_postgres_url().await).await;
}
