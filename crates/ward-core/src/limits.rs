//! Every bound the registry enforces, by name, with its default.
//!
//! Names put units last (`manifest_size_bytes_max`). Each limit has a config
//! key of the same name under `[limits]` in `ward.toml` and a `WARD_LIMITS__*`
//! environment override.

use serde::{Deserialize, Serialize};

/// The registry's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest manifest accepted; above it a push gets 413.
    pub manifest_size_bytes_max: u64,
    /// Longest repository name accepted.
    pub repository_name_bytes_max: usize,
    /// Largest single blob accepted through an upload session.
    pub blob_size_bytes_max: u64,
    /// Most entries returned in one page of tags, catalog or referrers.
    pub page_entries_max: u32,
    /// Entries in a page when the client does not ask for a number.
    pub page_entries_default: u32,
    /// An upload session not touched for this long expires and its data is removed.
    pub upload_session_ttl_secs: u64,
    /// Most upload sessions open at once in one repository.
    pub upload_sessions_per_repository_max: u32,
    /// Largest total size of request headers.
    pub request_header_bytes_max: usize,
    /// Longest time to receive a request's headers.
    pub request_header_timeout_secs: u64,
    /// Longest time a request other than a blob upload may take to be
    /// answered (the answer itself may stream for longer, as a blob does).
    pub request_timeout_secs: u64,
    /// Longest pause between two reads of a streamed upload body.
    pub body_idle_timeout_secs: u64,
    /// Most tags that one `PUT ...?tag=` request may set.
    pub tags_per_push_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            manifest_size_bytes_max: 4 * 1024 * 1024,
            repository_name_bytes_max: crate::name::REPOSITORY_NAME_BYTES_MAX,
            blob_size_bytes_max: 64 * 1024 * 1024 * 1024,
            page_entries_max: 1000,
            page_entries_default: 100,
            upload_session_ttl_secs: 3600,
            upload_sessions_per_repository_max: 1000,
            request_header_bytes_max: 64 * 1024,
            request_header_timeout_secs: 30,
            request_timeout_secs: 60,
            body_idle_timeout_secs: 60,
            tags_per_push_max: 32,
        }
    }
}
