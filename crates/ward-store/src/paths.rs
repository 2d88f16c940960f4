//! The blob store's key layout, written down in one place.
//!
//! ```text
//! blobs/<algorithm>/<first two hex>/<hex>    content, by digest, shared by all repositories
//! uploads/<session id>/<chunk id>            one object per accepted chunk of an upload
//! ```
//!
//! Keys never contain client-chosen text: digests are validated hex and ids are
//! server-generated UUIDs, so no request can address outside these prefixes.
//! Whether a blob is readable in a repository is decided by the metadata store
//! (a repository's link to the digest), never by the presence of a key here.

use object_store::path::Path;
use uuid::Uuid;
use ward_core::Digest;

/// Prefix under which all blob content lives.
pub const BLOBS_PREFIX: &str = "blobs";
/// Prefix under which upload sessions keep their chunks.
pub const UPLOADS_PREFIX: &str = "uploads";

/// Where the content of `digest` is stored.
pub fn blob(digest: &Digest) -> Path {
    let hex = digest.hex();
    Path::from(format!(
        "{BLOBS_PREFIX}/{}/{}/{hex}",
        digest.algorithm(),
        &hex[..2]
    ))
}

/// The folder of one upload session's chunks.
pub fn upload_dir(session: Uuid) -> Path {
    Path::from(format!("{UPLOADS_PREFIX}/{session}"))
}

/// A new, unique key for a chunk of `session`.
pub fn upload_chunk(session: Uuid) -> Path {
    Path::from(format!("{UPLOADS_PREFIX}/{session}/{}", Uuid::new_v4()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_are_sharded_by_algorithm_and_prefix() {
        let d = Digest::of(b"");
        assert_eq!(
            blob(&d).as_ref(),
            "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn chunk_keys_are_unique_and_inside_their_session() {
        let s = Uuid::new_v4();
        let (a, b) = (upload_chunk(s), upload_chunk(s));
        assert_ne!(a, b);
        assert!(a.as_ref().starts_with(upload_dir(s).as_ref()));
    }
}
