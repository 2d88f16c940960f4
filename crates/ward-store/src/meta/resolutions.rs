//! Manifest resolutions kept in memory: `(repository, tag or digest)` to the
//! manifest it names, so a pull by tag does not wait on a database round trip.
//!
//! Only for SQLite, where this process is the only writer (the server holds a
//! lock on the database, see `ward-server`): every change to tags and manifests
//! goes through [`super::MetaStore`], which calls [`ResolutionCache::invalidate`]
//! once the change is committed and before it returns. PostgreSQL is shared by
//! several servers, whose changes this process would not see, so it has none.
//!
//! The race this guards against is a reader that queried the database before
//! a change committed and inserts its (stale) answer after the change dropped
//! the cache. Readers note the generation before they query and insert only if
//! it has not moved; both sides take one lock for that, so a stale answer is
//! either refused or removed. Hits take no lock.
//!
//! A change whose future is dropped half-way (a client gone, a timeout) may
//! still commit afterwards: its statements are already queued on the writer
//! connection's thread. Until that connection is known idle again the change
//! is *unsettled*, and the cache neither answers nor remembers anything.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{Backend, ManifestMeta, MetaStore};

/// What a reader must hand back to [`ResolutionCache::insert`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Generation(u64);

#[derive(Debug)]
pub(crate) struct ResolutionCache {
    entries: quick_cache::sync::Cache<String, ManifestMeta>,
    generation: AtomicU64,
    /// Changes abandoned mid-way whose effect may still land.
    unsettled: AtomicUsize,
    /// Serialises "check the generation, then insert" against "bump, then clear".
    writes: Mutex<()>,
}

impl ResolutionCache {
    pub(crate) fn new(entries_max: usize) -> Self {
        ResolutionCache {
            entries: quick_cache::sync::Cache::new(entries_max.max(1)),
            generation: AtomicU64::new(0),
            unsettled: AtomicUsize::new(0),
            writes: Mutex::new(()),
        }
    }

    /// The cache key: a repository name has no `@` and a reference has no `/`.
    pub(crate) fn key(repository: &str, reference: &str) -> String {
        format!("{repository}@{reference}")
    }

    pub(crate) fn get(&self, key: &str) -> Option<ManifestMeta> {
        if self.unsettled.load(Ordering::Acquire) > 0 {
            return None;
        }
        self.entries.get(key)
    }

    /// To call before reading the database.
    pub(crate) fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::Acquire))
    }

    /// Keeps what a reader found, unless a change committed since it noted `seen`.
    pub(crate) fn insert(&self, seen: Generation, key: String, meta: ManifestMeta) {
        let Ok(_guard) = self.writes.lock() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) == seen.0
            && self.unsettled.load(Ordering::Acquire) == 0
        {
            self.entries.insert(key, meta);
        }
    }

    /// Forgets everything: a tag or manifest changed. Pushes are rare next to
    /// pulls, so dropping all of it is simpler than tracking what a change touched.
    pub(crate) fn invalidate(&self) {
        // A poisoned lock only means another thread panicked while holding it;
        // the bump and the clear below are still what must happen.
        let _guard = self
            .writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }

    /// A change was dropped before it finished: stop answering until
    /// [`ResolutionCache::settled`].
    pub(crate) fn abandoned(&self) {
        self.unsettled.fetch_add(1, Ordering::AcqRel);
        self.invalidate();
    }

    /// The writer connection has finished whatever an abandoned change queued.
    pub(crate) fn settled(&self) {
        self.invalidate();
        self.unsettled.fetch_sub(1, Ordering::AcqRel);
    }

    /// Abandoned changes not settled yet.
    pub(crate) fn unsettled(&self) -> usize {
        self.unsettled.load(Ordering::Acquire)
    }
}

/// How long a settling cache waits before asking the writer pool again
/// after an error other than a timeout.
const SETTLE_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// A change to tags or manifests in progress. [`ResolutionChange::finish`]
/// drops the cache once the change is done; dropped unfinished, the change
/// counts as abandoned until the writer connection is handed back (its pool
/// pings it first, after whatever the change had queued), then settles.
pub(crate) struct ResolutionChange<'a> {
    store: &'a MetaStore,
    finished: bool,
}

impl<'a> ResolutionChange<'a> {
    pub(crate) fn begin(store: &'a MetaStore) -> Self {
        ResolutionChange {
            store,
            finished: false,
        }
    }

    pub(crate) fn finish(mut self) {
        self.finished = true;
        if let Some(cache) = &self.store.resolutions {
            cache.invalidate();
        }
    }
}

impl Drop for ResolutionChange<'_> {
    fn drop(&mut self) {
        let (false, Some(cache), Backend::Sqlite { writer, .. }) =
            (self.finished, &self.store.resolutions, &self.store.backend)
        else {
            return;
        };
        cache.abandoned();
        let (cache, writer) = (cache.clone(), writer.clone());
        // Without a runtime the cache stays unsettled: slower, never stale.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                loop {
                    match writer.acquire().await {
                        Ok(_) => return cache.settled(),
                        // Shutting down: nothing will answer from the cache again.
                        Err(_) if writer.is_closed() => return,
                        // Still queued behind other writes: a cache that gave
                        // up here would stay off until a restart.
                        Err(sqlx::Error::PoolTimedOut) => {}
                        // Reconnecting failed; try again without spinning.
                        Err(_) => tokio::time::sleep(SETTLE_RETRY_PAUSE).await,
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_core::Digest;

    fn meta(content: &[u8]) -> ManifestMeta {
        ManifestMeta {
            digest: Digest::of(content),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: content.len() as u64,
            subject: None,
        }
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_kept() {
        let cache = ResolutionCache::new(16);
        let key = ResolutionCache::key("app", "v1");
        let seen = cache.generation();
        cache.invalidate(); // a push committed while the reader queried
        cache.insert(seen, key.clone(), meta(b"old"));
        assert_eq!(cache.get(&key), None);

        let seen = cache.generation();
        cache.insert(seen, key.clone(), meta(b"new"));
        assert_eq!(cache.get(&key), Some(meta(b"new")));
        cache.invalidate();
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn nothing_is_answered_or_kept_while_an_abandoned_change_may_land() {
        let cache = ResolutionCache::new(16);
        let key = ResolutionCache::key("app", "v1");
        cache.insert(cache.generation(), key.clone(), meta(b"old"));
        cache.abandoned();
        assert_eq!(cache.get(&key), None);
        cache.insert(cache.generation(), key.clone(), meta(b"old"));
        assert_eq!(cache.get(&key), None, "nothing is kept either");
        cache.settled();
        assert_eq!(
            cache.get(&key),
            None,
            "what was read before settling is gone"
        );
        cache.insert(cache.generation(), key.clone(), meta(b"new"));
        assert_eq!(cache.get(&key), Some(meta(b"new")));
    }
}
