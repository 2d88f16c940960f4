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

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ManifestMeta;

/// What a reader must hand back to [`ResolutionCache::insert`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Generation(u64);

#[derive(Debug)]
pub(crate) struct ResolutionCache {
    entries: quick_cache::sync::Cache<String, ManifestMeta>,
    generation: AtomicU64,
    /// Serialises "check the generation, then insert" against "bump, then clear".
    writes: Mutex<()>,
}

impl ResolutionCache {
    pub(crate) fn new(entries_max: usize) -> Self {
        ResolutionCache {
            entries: quick_cache::sync::Cache::new(entries_max.max(1)),
            generation: AtomicU64::new(0),
            writes: Mutex::new(()),
        }
    }

    /// The cache key: a repository name has no `@` and a reference has no `/`.
    pub(crate) fn key(repository: &str, reference: &str) -> String {
        format!("{repository}@{reference}")
    }

    pub(crate) fn get(&self, key: &str) -> Option<ManifestMeta> {
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
        if self.generation.load(Ordering::Acquire) == seen.0 {
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
}
