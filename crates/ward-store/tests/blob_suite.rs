//! The blob port's suite. Each test ends by checking the store is empty, so a
//! code path that leaves stray objects (or unfinished writes) fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use ward_store::{BlobStore, BlobStoreError, BlobStoreOptions};

struct Fixture {
    dir: tempfile::TempDir,
    store: BlobStore,
}

fn fixture() -> Fixture {
    fixture_writing(true)
}

/// A store writing with `O_DIRECT` where the filesystem allows it, or through
/// the page cache.
fn fixture_writing(direct_io: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let options = BlobStoreOptions {
        part_size_bytes: 64 * 1024,
        parts_in_flight_max: 2,
        read_chunk_bytes: 10_000,
        // Small, so multi-part writes flush while they stream.
        sync_interval_bytes: 100_000,
        direct_io,
    };
    let store = BlobStore::local(dir.path().join("blobs"), true, options).unwrap();
    Fixture { dir, store }
}

impl Fixture {
    /// Fails if any file is left anywhere under the store's root.
    fn assert_empty(&self) {
        let mut left = Vec::new();
        let mut stack = vec![self.dir.path().join("blobs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    left.push(p);
                }
            }
        }
        assert!(left.is_empty(), "leftover objects: {left:?}");
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

async fn read_all(store: &BlobStore, key: &Path, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let chunks: Vec<Bytes> = store
        .read(key, range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

#[tokio::test]
async fn multipart_write_is_invisible_until_finished() {
    for direct_io in [true, false] {
        write_is_invisible_until_finished(fixture_writing(direct_io)).await;
    }
}

async fn write_is_invisible_until_finished(f: Fixture) {
    let key = Path::from("uploads/s/one");
    let bytes = data(300_000);
    let mut w = f.store.writer(&key).await.unwrap();
    for piece in bytes.chunks(7_000) {
        w.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert_eq!(w.written_bytes(), bytes.len() as u64);
    assert_eq!(
        f.store.size(&key).await.unwrap(),
        None,
        "not visible before finish"
    );
    assert_eq!(w.finish().await.unwrap(), bytes.len() as u64);
    assert_eq!(f.store.size(&key).await.unwrap(), Some(bytes.len() as u64));
    assert_eq!(read_all(&f.store, &key, None).await, bytes);
    assert_eq!(
        read_all(&f.store, &key, Some(1000..1500)).await,
        &bytes[1000..1500]
    );
    f.store.delete(&key).await.unwrap();
    f.store.delete(&key).await.unwrap(); // deleting twice is fine
    f.assert_empty();
}

#[tokio::test]
async fn aborted_and_dropped_writes_leave_nothing() {
    for direct_io in [true, false] {
        aborted_and_dropped_leave_nothing(fixture_writing(direct_io)).await;
    }
}

async fn aborted_and_dropped_leave_nothing(f: Fixture) {
    let key = Path::from("uploads/s/aborted");
    let mut w = f.store.writer(&key).await.unwrap();
    w.write(Bytes::from(data(200_000))).await.unwrap();
    w.abort().await.unwrap();
    assert_eq!(f.store.size(&key).await.unwrap(), None);

    let mut w = f.store.writer(&key).await.unwrap();
    w.write(Bytes::from(data(10))).await.unwrap();
    drop(w);
    // Drop cleans up on a blocking task; deleting the folder covers a crash too.
    f.store
        .delete_prefix(&Path::from("uploads/s"))
        .await
        .unwrap();
    f.assert_empty();
}

#[tokio::test]
async fn rename_moves_content_and_replaces_atomically() {
    let f = fixture();
    let (a, b) = (Path::from("uploads/s/a"), Path::from("blobs/sha256/aa/x"));
    f.store.put(&a, Bytes::from_static(b"first")).await.unwrap();
    f.store.rename(&a, &b).await.unwrap();
    assert_eq!(f.store.size(&a).await.unwrap(), None);
    assert_eq!(read_all(&f.store, &b, None).await, b"first");
    f.store
        .put(&a, Bytes::from_static(b"second"))
        .await
        .unwrap();
    f.store.rename(&a, &b).await.unwrap();
    assert_eq!(read_all(&f.store, &b, None).await, b"second");
    assert!(matches!(
        f.store.rename(&a, &b).await,
        Err(BlobStoreError::NotFound(_))
    ));
    f.store.delete(&b).await.unwrap();
    f.assert_empty();
}

#[tokio::test]
async fn folders_lists_one_level_and_delete_prefix_removes_it() {
    let f = fixture();
    for k in ["uploads/s1/a", "uploads/s1/b", "uploads/s2/a"] {
        f.store
            .put(&Path::from(k), Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    let mut folders = f.store.folders(&Path::from("uploads")).await.unwrap();
    folders.sort();
    assert_eq!(
        folders,
        vec![Path::from("uploads/s1"), Path::from("uploads/s2")]
    );
    f.store
        .delete_prefix(&Path::from("uploads/s1"))
        .await
        .unwrap();
    f.store
        .delete_prefix(&Path::from("uploads/s1"))
        .await
        .unwrap();
    assert_eq!(
        f.store.folders(&Path::from("uploads")).await.unwrap(),
        vec![Path::from("uploads/s2")]
    );
    f.store
        .delete_prefix(&Path::from("uploads/s2"))
        .await
        .unwrap();
    f.assert_empty();
}

#[tokio::test]
async fn missing_objects_are_reported_as_such() {
    let f = fixture();
    assert!(matches!(
        f.store.read(&Path::from("blobs/none"), None).await,
        Err(BlobStoreError::NotFound(_))
    ));
    assert_eq!(f.store.size(&Path::from("blobs/none")).await.unwrap(), None);
    f.assert_empty();
}
