//! One suite, two backends: every scenario runs on a fresh SQLite file and on a
//! fresh PostgreSQL schema (the server named by WARD_TEST_POSTGRES_URL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ward_core::Digest;
use ward_core::manifest::{self, ParsedManifest};
use ward_core::media;
use ward_core::name::{Reference, RepositoryName, Tag};
use ward_store::meta::{
    DeleteManifestOutcome, NewManifest, NewUpload, PutManifestOutcome, TagProtection, UploadChunk,
};
use ward_store::{MetaStore, MetaStoreOptions, testing};

/// Generates `mod $name { sqlite(); postgres(); }` running `$body(store)`.
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = testing::sqlite_store(dir.path()).await;
                ($body)(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let store = testing::postgres_store().await;
                ($body)(store).await;
            }
        }
    };
}

fn repo(s: &str) -> RepositoryName {
    RepositoryName::parse(s, 255).unwrap()
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).unwrap()
}

fn blob(n: u32) -> Digest {
    Digest::of(format!("blob-{n}").as_bytes())
}

fn image_manifest(config: Digest, layers: &[Digest], extra: &str) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|d| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":6}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":6}},"layers":[{}]{extra}}}"#,
        media::OCI_MANIFEST,
        media::OCI_CONFIG,
        layers.join(",")
    )
    .into_bytes()
}

async fn put(
    store: &MetaStore,
    r: &RepositoryName,
    bytes: &[u8],
    tags: &[Tag],
    protection: &dyn TagProtection,
) -> (Digest, PutManifestOutcome) {
    let parsed: ParsedManifest = manifest::parse(bytes, Some(media::OCI_MANIFEST)).unwrap();
    let digest = Digest::of(bytes);
    let outcome = store
        .put_manifest(
            NewManifest {
                repository: r,
                digest,
                parsed: &parsed,
                content: bytes,
                tags,
            },
            protection,
        )
        .await
        .unwrap();
    (digest, outcome)
}

async fn link(store: &MetaStore, r: &RepositoryName, ds: &[Digest]) {
    for d in ds {
        store.link_blob(r, d, 6).await.unwrap();
    }
}

both_backends!(
    blobs_are_visible_only_where_linked,
    |store: MetaStore| async move {
        let (a, b) = (repo("team-a/x"), repo("team-b/y"));
        store.link_blob(&a, &blob(1), 6).await.unwrap();
        assert_eq!(
            store.blob_in_repository(&a, &blob(1)).await.unwrap(),
            Some(6)
        );
        assert_eq!(store.blob_in_repository(&b, &blob(1)).await.unwrap(), None);
        assert_eq!(store.blob_anywhere(&blob(1)).await.unwrap(), Some(6));

        // Mounting needs the source to link the blob.
        assert_eq!(store.mount_blob(&b, &a, &blob(1)).await.unwrap(), None);
        assert_eq!(store.mount_blob(&a, &b, &blob(1)).await.unwrap(), Some(6));
        assert_eq!(
            store.blob_in_repository(&b, &blob(1)).await.unwrap(),
            Some(6)
        );

        // Unlinking in one repository leaves the other untouched.
        assert!(store.unlink_blob(&a, &blob(1)).await.unwrap());
        assert!(!store.unlink_blob(&a, &blob(1)).await.unwrap());
        assert_eq!(store.blob_in_repository(&a, &blob(1)).await.unwrap(), None);
        assert_eq!(
            store.blob_in_repository(&b, &blob(1)).await.unwrap(),
            Some(6)
        );
    }
);

both_backends!(
    manifests_require_their_blobs,
    |store: MetaStore| async move {
        let r = repo("app");
        let bytes = image_manifest(blob(1), &[blob(2), blob(3)], "");
        let (_, outcome) = put(&store, &r, &bytes, &[tag("v1")], &()).await;
        assert_eq!(
            outcome,
            PutManifestOutcome::MissingReferences(vec![blob(1), blob(2), blob(3)])
        );
        assert_eq!(
            store
                .resolve_manifest(&r, &Reference::Tag(tag("v1")))
                .await
                .unwrap(),
            None
        );

        link(&store, &r, &[blob(1), blob(2)]).await;
        let (_, outcome) = put(&store, &r, &bytes, &[tag("v1")], &()).await;
        assert_eq!(
            outcome,
            PutManifestOutcome::MissingReferences(vec![blob(3)])
        );

        // A descriptor must declare the size of what it names.
        store.link_blob(&r, &blob(4), 7).await.unwrap();
        let wrong = image_manifest(blob(1), &[blob(4)], "");
        let (_, outcome) = put(&store, &r, &wrong, &[tag("v1")], &()).await;
        assert_eq!(
            outcome,
            PutManifestOutcome::SizeMismatch {
                digest: blob(4),
                declared: 6,
                stored: 7
            }
        );

        link(&store, &r, &[blob(3)]).await;
        let (digest, outcome) = put(&store, &r, &bytes, &[tag("v1"), tag("latest")], &()).await;
        assert!(matches!(outcome, PutManifestOutcome::Stored { .. }));
        for reference in [
            Reference::Tag(tag("v1")),
            Reference::Tag(tag("latest")),
            Reference::Digest(digest),
        ] {
            let meta = store
                .resolve_manifest(&r, &reference)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(meta.digest, digest);
            assert_eq!(meta.media_type, media::OCI_MANIFEST);
            assert_eq!(meta.size, bytes.len() as u64);
        }
        let content = store.manifest_content(&r, &digest).await.unwrap().unwrap();
        assert_eq!(&content[..], &bytes[..], "manifests are stored byte-exact");
        // Not visible from another repository.
        assert_eq!(
            store
                .resolve_manifest(&repo("other"), &Reference::Digest(digest))
                .await
                .unwrap(),
            None
        );
    }
);

both_backends!(
    resolutions_follow_every_change_at_once,
    |store: MetaStore| async move {
        // SQLite remembers resolutions in memory: each read below comes twice,
        // the second from memory where there is one, and every change must be
        // seen at once through any clone of the store (the server clones it).
        let r = repo("app");
        let other = store.clone();
        let resolve = |reference: Reference| {
            let store = store.clone();
            let r = r.clone();
            async move {
                let first = store.resolve_manifest(&r, &reference).await.unwrap();
                let again = store.resolve_manifest(&r, &reference).await.unwrap();
                assert_eq!(first, again);
                first.map(|m| m.digest)
            }
        };
        let v1 = || Reference::Tag(tag("v1"));
        let push_v1 = |config: Digest| {
            let (other, r) = (other.clone(), r.clone());
            async move {
                let m = image_manifest(config, &[], "");
                put(&other, &r, &m, &[tag("v1")], &()).await
            }
        };
        link(&store, &r, &[blob(1), blob(2)]).await;
        let (d1, _) = push_v1(blob(1)).await;
        assert_eq!(resolve(v1()).await, Some(d1));

        let (d2, outcome) = push_v1(blob(2)).await;
        assert!(matches!(outcome, PutManifestOutcome::Stored { .. }));
        assert_eq!(
            resolve(v1()).await,
            Some(d2),
            "the moved tag is seen at once"
        );
        assert_eq!(resolve(Reference::Digest(d2)).await, Some(d2));

        // A refused push changes nothing.
        let (_, outcome) = push_v1(blob(9)).await;
        assert!(matches!(outcome, PutManifestOutcome::MissingReferences(_)));
        assert_eq!(resolve(v1()).await, Some(d2));

        assert!(other.delete_tag(&r, &tag("v1")).await.unwrap());
        assert_eq!(resolve(v1()).await, None, "a deleted tag is gone at once");
        assert_eq!(
            other.delete_manifest(&r, &d2, &()).await.unwrap(),
            DeleteManifestOutcome::Deleted
        );
        assert_eq!(resolve(Reference::Digest(d2)).await, None);
        assert_eq!(resolve(Reference::Digest(d1)).await, Some(d1));
    }
);

/// Takes SQLite's write lock on a second connection, starts deleting tag
/// `t` and drops that future while it waits for the lock; returns the
/// connection holding the lock (still in its transaction).
async fn abandon_untag_behind_a_lock(
    store: &MetaStore,
    url: &str,
    r: &RepositoryName,
    t: &str,
) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;
    let mut locker = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    let untag = tag(t);
    let mut delete = Box::pin(store.delete_tag(r, &untag));
    for _ in 0..64 {
        assert!(
            futures::poll!(&mut delete).is_pending(),
            "the write lock is held"
        );
        tokio::task::yield_now().await;
    }
    drop(delete);
    locker
}

/// A change whose future is dropped part-way (a client gone, a timeout) may
/// still commit: its statement is already on SQLite's writer thread. Here a
/// second connection holds the write lock, so a tag deletion waits there; its
/// future is dropped; the lock is released and the deletion lands. The tag
/// must then be gone for the store's remembered resolutions too.
#[tokio::test]
async fn a_change_that_lands_after_its_future_is_dropped_leaves_nothing_stale() {
    let dir = tempfile::tempdir().unwrap();
    let url = testing::sqlite_url(dir.path());
    let store = testing::sqlite_store(dir.path()).await;
    let r = repo("app");
    let v1 = Reference::Tag(tag("v1"));
    link(&store, &r, &[blob(1)]).await;
    let (d1, _) = put(
        &store,
        &r,
        &image_manifest(blob(1), &[], ""),
        &[tag("v1")],
        &(),
    )
    .await;
    let remembered = store.resolve_manifest(&r, &v1).await.unwrap();
    assert_eq!(remembered.map(|m| m.digest), Some(d1));

    let mut locker = abandon_untag_behind_a_lock(&store, &url, &r, "v1").await;
    // Still stored, while the abandoned deletion waits for the lock.
    let meanwhile = store.resolve_manifest(&r, &v1).await.unwrap();
    assert_eq!(meanwhile.map(|m| m.digest), Some(d1));
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    // Any later write waits for the abandoned one on the writer connection;
    // this one touches no tag, so it drops no resolution itself.
    store.link_blob(&r, &blob(2), 6).await.unwrap();
    // On a loaded machine the future may be dropped before its statement
    // reached the writer thread, and then the tag stays: either way the
    // remembered resolution must agree with the database.
    let tagged: i64 = sqlx::query_scalar("SELECT count(*) FROM tags WHERE name = 'v1'")
        .fetch_one(&mut locker)
        .await
        .unwrap();
    let stored = (tagged > 0).then_some(d1);
    for _ in 0..2 {
        let resolved = store.resolve_manifest(&r, &v1).await.unwrap();
        assert_eq!(resolved.map(|m| m.digest), stored);
    }
}

/// The abandoned change's settling waits for the writer connection, and may
/// wait longer than a pool allows (other writes queued ahead, a lock held by
/// another process). It must keep waiting: a cache that gave up would stay
/// off until a restart. Here the test holds the writer connection itself.
#[tokio::test]
async fn an_abandoned_change_settles_even_after_the_writer_wait_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetaStore::connect(
        &testing::sqlite_url(dir.path()),
        &MetaStoreOptions {
            pool_wait_max: std::time::Duration::from_millis(300),
            ..MetaStoreOptions::default()
        },
    )
    .await
    .unwrap();
    let r = repo("app");
    let v1 = Reference::Tag(tag("v1"));
    link(&store, &r, &[blob(1)]).await;
    put(
        &store,
        &r,
        &image_manifest(blob(1), &[], ""),
        &[tag("v1")],
        &(),
    )
    .await;

    let held = store.hold_sqlite_writer().await.unwrap().unwrap();
    let untag = tag("v1");
    let mut delete = Box::pin(store.delete_tag(&r, &untag));
    assert!(
        futures::poll!(&mut delete).is_pending(),
        "waits for the writer"
    );
    drop(delete);
    assert_eq!(store.resolutions_unsettled(), 1);
    // Two writes that give up waiting for the writer: the settling task
    // started waiting before the first, so its own wait timed out too.
    for _ in 0..2 {
        assert!(store.link_blob(&r, &blob(2), 6).await.is_err());
    }
    assert_eq!(store.resolutions_unsettled(), 1);
    drop(held);
    // Each write below takes its turn on the writer behind the settling task.
    let mut writes = 0;
    while store.resolutions_unsettled() > 0 && writes < 50 {
        store.link_blob(&r, &blob(2), 6).await.unwrap();
        writes += 1;
    }
    assert_eq!(
        store.resolutions_unsettled(),
        0,
        "settled after {writes} writes"
    );
    // The deletion never ran; the cache answers again, and truly.
    for _ in 0..2 {
        let resolved = store.resolve_manifest(&r, &v1).await.unwrap();
        assert!(resolved.is_some());
    }
}

both_backends!(
    deleting_a_manifest_removes_its_tags,
    |store: MetaStore| async move {
        let r = repo("app");
        link(&store, &r, &[blob(1)]).await;
        let (d1, _) = put(
            &store,
            &r,
            &image_manifest(blob(1), &[], ""),
            &[tag("a"), tag("b")],
            &(),
        )
        .await;
        assert!(store.delete_tag(&r, &tag("a")).await.unwrap());
        assert!(!store.delete_tag(&r, &tag("a")).await.unwrap());
        assert!(
            store
                .resolve_manifest(&r, &Reference::Digest(d1))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store.delete_manifest(&r, &d1, &()).await.unwrap(),
            DeleteManifestOutcome::Deleted
        );
        assert_eq!(
            store.delete_manifest(&r, &d1, &()).await.unwrap(),
            DeleteManifestOutcome::Unknown
        );
        assert_eq!(
            store
                .resolve_manifest(&r, &Reference::Tag(tag("b")))
                .await
                .unwrap(),
            None
        );
        let page = store.tags(&r, None, 10).await.unwrap().unwrap();
        assert!(page.names.is_empty());
    }
);

both_backends!(
    tags_and_repositories_page_in_byte_order,
    |store: MetaStore| async move {
        let r = repo("app");
        link(&store, &r, &[blob(1)]).await;
        let names = ["b", "B", "a", "A", "_x", "1", "a.b", "a-b"];
        let tags: Vec<Tag> = names.iter().map(|n| tag(n)).collect();
        put(&store, &r, &image_manifest(blob(1), &[], ""), &tags, &()).await;
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort(); // byte order
        let all = store.tags(&r, None, 100).await.unwrap().unwrap();
        assert_eq!(all.names, want);
        assert!(!all.more);

        let mut seen = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = store.tags(&r, last.as_deref(), 3).await.unwrap().unwrap();
            assert!(page.names.len() <= 3);
            seen.extend(page.names.clone());
            if !page.more {
                break;
            }
            last = page.names.last().cloned();
        }
        assert_eq!(seen, want);
        assert!(
            store
                .tags(&repo("missing"), None, 10)
                .await
                .unwrap()
                .is_none()
        );

        for n in ["z/z", "a/b", "m"] {
            link(&store, &repo(n), &[blob(1)]).await;
        }
        let page = store.repositories(None, 2).await.unwrap();
        assert_eq!(page.names, vec!["a/b", "app"]);
        assert!(page.more);
        let page = store.repositories(Some("app"), 10).await.unwrap();
        assert_eq!(page.names, vec!["m", "z/z"]);
        assert!(!page.more);
    }
);

both_backends!(
    referrers_are_indexed_by_subject,
    |store: MetaStore| async move {
        let r = repo("app");
        link(&store, &r, &[blob(1)]).await;
        let subject = Digest::of(b"not pushed yet");
        let mut digests = Vec::new();
        for (i, kind) in [
            "application/vnd.example.sig",
            "application/vnd.example.sbom",
            "application/vnd.example.sig",
        ]
        .iter()
        .enumerate()
        {
            let extra = format!(
                r#","artifactType":"{kind}","subject":{{"mediaType":"{}","digest":"{subject}","size":1}},"annotations":{{"n":"{i}"}}"#,
                media::OCI_MANIFEST
            );
            let (d, outcome) =
                put(&store, &r, &image_manifest(blob(1), &[], &extra), &[], &()).await;
            assert!(
                matches!(outcome, PutManifestOutcome::Stored { .. }),
                "a dangling subject is accepted"
            );
            digests.push(d);
        }
        digests.sort();
        let (all, more) = store.referrers(&r, &subject, None, None, 10).await.unwrap();
        assert!(!more);
        assert_eq!(all.iter().map(|x| x.digest).collect::<Vec<_>>(), digests);
        assert!(all.iter().all(|x| x.annotations.contains_key("n")));

        let (sigs, _) = store
            .referrers(&r, &subject, Some("application/vnd.example.sig"), None, 10)
            .await
            .unwrap();
        assert_eq!(sigs.len(), 2);
        assert!(
            sigs.iter()
                .all(|x| x.artifact_type.as_deref() == Some("application/vnd.example.sig"))
        );

        let (first, more) = store.referrers(&r, &subject, None, None, 2).await.unwrap();
        assert!(more);
        let (rest, more) = store
            .referrers(&r, &subject, None, Some(&first[1].digest), 2)
            .await
            .unwrap();
        assert!(!more);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].digest, digests[2]);
        let (none, _) = store
            .referrers(&r, &Digest::of(b"other"), None, None, 10)
            .await
            .unwrap();
        assert!(none.is_empty());
    }
);

struct ProtectProd;
impl TagProtection for ProtectProd {
    fn protecting_rule(&self, _: &RepositoryName, tag: &Tag) -> Option<String> {
        tag.as_str()
            .starts_with("prod-")
            .then(|| "prefix prod-".to_owned())
    }
}

both_backends!(
    protected_tags_stay_bound_to_their_first_content,
    |store: MetaStore| async move {
        let r = repo("app");
        link(&store, &r, &[blob(1), blob(2)]).await;
        let one = image_manifest(blob(1), &[], "");
        let two = image_manifest(blob(2), &[], "");
        let (d1, o) = put(&store, &r, &one, &[tag("prod-1"), tag("dev")], &ProtectProd).await;
        let stored = PutManifestOutcome::Stored { moved: vec![] };
        assert_eq!(o, stored);
        // Re-pushing the same content is fine.
        let again = put(&store, &r, &one, &[tag("prod-1")], &ProtectProd)
            .await
            .1;
        assert_eq!(again, stored);
        // Moving it is not, and nothing is stored.
        let (d2, o) = put(&store, &r, &two, &[tag("dev"), tag("prod-1")], &ProtectProd).await;
        assert_eq!(
            o,
            PutManifestOutcome::TagProtected {
                tag: tag("prod-1"),
                rule: "prefix prod-".into(),
                bound_to: d1
            }
        );
        assert_eq!(
            store
                .resolve_manifest(&r, &Reference::Digest(d2))
                .await
                .unwrap(),
            None
        );
        let dev = store
            .resolve_manifest(&r, &Reference::Tag(tag("dev")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(dev.digest, d1, "the refused push moved no tag");
        // A manifest a protected tag points at is not deleted, nor its tags.
        let refused = store.delete_manifest(&r, &d1, &ProtectProd).await.unwrap();
        assert!(
            matches!(&refused, DeleteManifestOutcome::TagProtected { tag, .. } if tag.as_str() == "prod-1"),
            "{refused:?}"
        );
        assert_eq!(
            store.tags_of(&r, &d1).await.unwrap().len(),
            2,
            "both tags stay"
        );
        // Deleting the tag and the manifest does not free the binding.
        assert_eq!(
            store.delete_manifest(&r, &d1, &()).await.unwrap(),
            DeleteManifestOutcome::Deleted
        );
        let (_, o) = put(&store, &r, &two, &[tag("prod-1")], &ProtectProd).await;
        assert!(matches!(o, PutManifestOutcome::TagProtected { .. }));
        // The original content can come back.
        let back = put(&store, &r, &one, &[tag("prod-1"), tag("dev")], &ProtectProd)
            .await
            .1;
        assert_eq!(back, stored);
        // Unprotected tags move freely, and the move is reported.
        let (d2, o) = put(&store, &r, &two, &[tag("dev")], &ProtectProd).await;
        assert_eq!(
            o,
            PutManifestOutcome::Stored {
                moved: vec![(tag("dev"), d1)]
            }
        );
        assert_eq!(
            store.tags_of(&r, &d2).await.unwrap(),
            vec!["dev".to_owned()]
        );
    }
);

both_backends!(
    concurrent_pushes_to_a_new_protected_tag_have_one_winner,
    |store: MetaStore| async move {
        let r = repo("race");
        let configs: Vec<Digest> = (0..50).map(blob).collect();
        link(&store, &r, &configs).await;
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for c in configs {
            let store = store.clone();
            let r = r.clone();
            tasks.push(tokio::spawn(async move {
                put(
                    &store,
                    &r,
                    &image_manifest(c, &[], ""),
                    &[tag("prod-race")],
                    &ProtectProd,
                )
                .await
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (d, o) = t.await.unwrap();
            if matches!(o, PutManifestOutcome::Stored { .. }) {
                winners.push(d);
            }
        }
        assert_eq!(winners.len(), 1, "exactly one push wins");
        let now = store
            .resolve_manifest(&r, &Reference::Tag(tag("prod-race")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.digest, winners[0]);
    }
);

both_backends!(
    racing_session_starts_stay_within_the_limit,
    |store: MetaStore| async move {
        let (r, other) = (repo("busy"), repo("calm"));
        let start = |repository| {
            let store = store.clone();
            async move {
                store
                    .create_upload(NewUpload {
                        id: uuid::Uuid::new_v4(),
                        repository,
                        hash_state: b"",
                        now_ms: 1,
                        open_max: 3,
                    })
                    .await
                    .unwrap()
            }
        };
        let created = futures::future::join_all((0..24).map(|_| start(&r))).await;
        assert_eq!(created.iter().filter(|c| **c).count(), 3, "{created:?}");
        assert_eq!(store.open_uploads(&r).await.unwrap(), 3);
        // Another repository's sessions do not count.
        assert!(start(&other).await);
    }
);

both_backends!(
    upload_sessions_advance_only_from_where_they_are,
    |store: MetaStore| async move {
        let r = repo("up");
        let id = uuid::Uuid::new_v4();
        store
            .create_upload(NewUpload {
                id,
                repository: &r,
                hash_state: b"h0",
                now_ms: 1_000,
                open_max: 10,
            })
            .await
            .unwrap();
        assert_eq!(store.open_uploads(&r).await.unwrap(), 1);
        let chunk = |k: &str, size| UploadChunk {
            object_key: k.into(),
            size,
        };
        assert!(
            store
                .append_upload_chunk(id, 0, &chunk("k1", 10), b"h1", 2_000)
                .await
                .unwrap()
        );
        // A writer that started from offset 0 lost the race: nothing changes.
        assert!(
            !store
                .append_upload_chunk(id, 0, &chunk("k-stale", 5), b"hx", 2_100)
                .await
                .unwrap()
        );
        assert!(
            store
                .append_upload_chunk(id, 10, &chunk("k2", 4), b"h2", 3_000)
                .await
                .unwrap()
        );
        let u = store.upload(id).await.unwrap().unwrap();
        assert_eq!(u.size, 14);
        assert_eq!(u.hash_state, b"h2");
        assert_eq!(u.updated_at_ms, 3_000);
        assert_eq!(u.chunks, vec![chunk("k1", 10), chunk("k2", 4)]);

        assert_eq!(
            store.stale_uploads(3_000, 10).await.unwrap(),
            Vec::<uuid::Uuid>::new()
        );
        assert_eq!(store.stale_uploads(3_001, 10).await.unwrap(), vec![id]);

        assert!(
            store
                .complete_upload(id, &r, &blob(9), 14, 4_000)
                .await
                .unwrap()
        );
        assert!(
            !store
                .complete_upload(id, &r, &blob(9), 14, 4_000)
                .await
                .unwrap()
        );
        assert_eq!(store.upload(id).await.unwrap(), None);
        assert_eq!(
            store.blob_in_repository(&r, &blob(9)).await.unwrap(),
            Some(14)
        );

        let gone = uuid::Uuid::new_v4();
        store
            .create_upload(NewUpload {
                id: gone,
                repository: &r,
                hash_state: b"",
                now_ms: 1,
                open_max: 10,
            })
            .await
            .unwrap();
        assert!(store.delete_upload(gone).await.unwrap());
        assert!(!store.upload_exists(gone).await.unwrap());
        assert!(
            !store
                .append_upload_chunk(gone, 0, &chunk("k", 1), b"", 2)
                .await
                .unwrap()
        );
        assert_eq!(store.open_uploads_total().await.unwrap(), 0);
    }
);

both_backends!(
    index_children_must_be_manifests_in_the_repository,
    |store: MetaStore| async move {
        let r = repo("idx");
        link(&store, &r, &[blob(1)]).await;
        let child = image_manifest(blob(1), &[], "");
        let child_digest = Digest::of(&child);
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{child_digest}","size":{}}}]}}"#,
            media::OCI_INDEX,
            media::OCI_MANIFEST,
            child.len()
        );
        let parsed = manifest::parse(index.as_bytes(), Some(media::OCI_INDEX)).unwrap();
        let new = |tags| NewManifest {
            repository: &r,
            digest: Digest::of(index.as_bytes()),
            parsed: &parsed,
            content: index.as_bytes(),
            tags,
        };
        assert_eq!(
            store.put_manifest(new(&[]), &()).await.unwrap(),
            PutManifestOutcome::MissingReferences(vec![child_digest])
        );
        put(&store, &r, &child, &[], &()).await;
        assert!(matches!(
            store.put_manifest(new(&[]), &()).await.unwrap(),
            PutManifestOutcome::Stored { .. }
        ));
    }
);

both_backends!(
    manifests_referencing_a_digest_are_found_per_repository,
    |store: MetaStore| async move {
        let (a, b) = (repo("team/a"), repo("team/b"));
        for r in [&a, &b] {
            link(&store, r, &[blob(1), blob(2), blob(3)]).await;
        }
        let (m1, _) = put(
            &store,
            &a,
            &image_manifest(blob(1), &[blob(2)], ""),
            &[],
            &(),
        )
        .await;
        let (m2, _) = put(
            &store,
            &a,
            &image_manifest(blob(1), &[blob(3)], ""),
            &[],
            &(),
        )
        .await;
        put(
            &store,
            &b,
            &image_manifest(blob(1), &[blob(2)], ""),
            &[],
            &(),
        )
        .await;
        let mut both = vec![m1, m2];
        both.sort();
        // The config of both; a layer of one; nothing across repositories.
        assert_eq!(
            store.referencing_manifests(&a, &blob(1), 10).await.unwrap(),
            both
        );
        assert_eq!(
            store.referencing_manifests(&a, &blob(3), 10).await.unwrap(),
            vec![m2]
        );
        assert_eq!(
            store
                .referencing_manifests(&a, &blob(1), 1)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .referencing_manifests(&b, &blob(3), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

both_backends!(
    the_trust_policy_is_one_document_and_changing_it_bumps_the_revision,
    |store: MetaStore| async move {
        assert_eq!(store.trust_policy().await.unwrap(), None);
        let before = store.auth_revision().await.unwrap();
        store.put_trust_policy(r#"{"rules":[]}"#).await.unwrap();
        store.put_trust_policy(r#"{"keys":[]}"#).await.unwrap();
        let (document, _) = store.trust_policy().await.unwrap().unwrap();
        assert_eq!(document, r#"{"keys":[]}"#);
        assert_eq!(store.auth_revision().await.unwrap(), before + 2);
    }
);

both_backends!(
    the_scan_queue_claims_leases_retries_and_rescans,
    |store: MetaStore| async move {
        use ward_store::meta::{QuarantineSource, StoredScan};
        let r = repo("models/scan");
        store.link_blob(&r, &blob(1), 6).await.unwrap();
        store.link_blob(&r, &blob(2), 6).await.unwrap();
        // Linking again (or from another repository) queues nothing new.
        store
            .link_blob(&repo("other/scan"), &blob(1), 6)
            .await
            .unwrap();
        assert_eq!(store.scan_queue_depth().await.unwrap(), 2);

        // A claim leases its jobs: a second claim before the lease ends gets nothing.
        let now = ward_store::now_ms();
        let jobs = store.claim_scan_jobs(now, 60_000, 10).await.unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(jobs.iter().all(|j| j.attempts == 1 && j.reason == "push"));
        assert!(
            store
                .claim_scan_jobs(now, 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // ...and after it, the job of a worker that died is claimed again.
        let again = store
            .claim_scan_jobs(now + 60_001, 60_000, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|j| j.attempts == 2));

        // A failure is retried at the time given; a result removes the job.
        store
            .fail_scan(&blob(2), "blob store unreachable", now + 5_000)
            .await
            .unwrap();
        let result = |d: Digest, ruleset: &str, at: i64| StoredScan {
            digest: d,
            ruleset: ruleset.to_owned(),
            max_severity: Some("CRITICAL".to_owned()),
            findings: 1,
            unread_parts: 3,
            report: "{}".to_owned(),
            scanned_at: at,
        };
        store
            .finish_scan(&result(blob(1), "v1", now))
            .await
            .unwrap();
        assert_eq!(
            store.scan_result(&blob(1)).await.unwrap(),
            Some(result(blob(1), "v1", now))
        );
        assert!(!store.scan_queued(&blob(1)).await.unwrap());
        assert!(
            store
                .claim_scan_jobs(now + 4_000, 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let retried = store
            .claim_scan_jobs(now + 5_000, 60_000, 10)
            .await
            .unwrap();
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].digest, blob(2));
        store
            .finish_scan(&result(blob(2), "v1", now))
            .await
            .unwrap();
        assert_eq!(store.scan_queue_depth().await.unwrap(), 0);

        // Rescans: nothing under the same rule set while results are fresh...
        assert_eq!(
            store
                .enqueue_rescans("v1", now - 1, "rescan")
                .await
                .unwrap(),
            0
        );
        // ...everything when the rule set changes or results are old.
        assert_eq!(
            store
                .enqueue_rescans("v2", now - 1, "ruleset")
                .await
                .unwrap(),
            2
        );
        assert_eq!(store.scan_queue_depth().await.unwrap(), 2);
        let jobs = store
            .claim_scan_jobs(now + 100_000, 60_000, 10)
            .await
            .unwrap();
        assert!(jobs.iter().all(|j| j.reason == "ruleset"));
        for j in &jobs {
            store
                .finish_scan(&result(j.digest, "v2", now + 1))
                .await
                .unwrap();
        }
        assert_eq!(
            store
                .enqueue_rescans("v2", now + 2, "rescan")
                .await
                .unwrap(),
            2
        );
        // A request queues one blob now; an unknown digest is refused.
        assert!(store.enqueue_scan(&blob(1), "request").await.unwrap());
        assert!(!store.enqueue_scan(&blob(99), "request").await.unwrap());

        // Quarantines: the first record stays; release removes it; each bumps the revision.
        let before = store.auth_revision().await.unwrap();
        assert!(
            store
                .quarantine(
                    &blob(1),
                    "CRITICAL finding",
                    QuarantineSource::Policy,
                    "scanner"
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .quarantine(&blob(1), "again", QuarantineSource::Admin, "admin")
                .await
                .unwrap()
        );
        let listed = store.quarantines().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].reason, "CRITICAL finding");
        assert_eq!(listed[0].source, "policy");
        assert!(store.auth_revision().await.unwrap() > before);
        assert!(store.release_quarantine(&blob(1)).await.unwrap());
        assert!(!store.release_quarantine(&blob(1)).await.unwrap());
        assert!(store.quarantines().await.unwrap().is_empty());

        // Scan policies are stored per repository and removed with None.
        store
            .put_scan_policy("models/scan", Some(r#"{"block_unscanned":true}"#))
            .await
            .unwrap();
        assert_eq!(
            store.scan_policies().await.unwrap(),
            vec![(
                "models/scan".to_owned(),
                r#"{"block_unscanned":true}"#.to_owned()
            )]
        );
        store.put_scan_policy("models/scan", None).await.unwrap();
        assert!(store.scan_policies().await.unwrap().is_empty());
        assert_eq!(
            store.repositories_linking(&blob(1)).await.unwrap(),
            vec!["models/scan".to_owned(), "other/scan".to_owned()]
        );
    }
);
