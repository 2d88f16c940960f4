//! The registry's error vocabulary: the OCI distribution spec's codes, plus the
//! few Docker-era codes clients still understand.

use std::fmt;

/// An error code as it appears in an OCI error body, with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Blob unknown to registry (404).
    BlobUnknown,
    /// Blob upload invalid (400).
    BlobUploadInvalid,
    /// Blob upload unknown to registry (404).
    BlobUploadUnknown,
    /// Provided digest did not match uploaded content (400).
    DigestInvalid,
    /// Manifest references a manifest or blob unknown to registry (400).
    ManifestBlobUnknown,
    /// Manifest invalid (400).
    ManifestInvalid,
    /// Manifest unknown (404).
    ManifestUnknown,
    /// Invalid repository name (400).
    NameInvalid,
    /// Repository name not known to registry (404).
    NameUnknown,
    /// Provided length did not match content length (400).
    SizeInvalid,
    /// Authentication required (401).
    Unauthorized,
    /// Requested access to the resource is denied (403).
    Denied,
    /// The operation is unsupported (405).
    Unsupported,
    /// Too many requests (429).
    TooManyRequests,
    /// Invalid tag (400); a Docker-era code that clients still report well.
    TagInvalid,
    /// Invalid pagination parameter (400); distribution's code, which clients know.
    PaginationNumberInvalid,
    /// A management API request that is malformed or invalid (400).
    InvalidRequest,
    /// A management API object that does not exist (404).
    NotFound,
    /// A management API object that already exists (409).
    Conflict,
    /// Unexpected server failure (500).
    Unknown,
    /// The service is temporarily unavailable (503).
    Unavailable,
}

impl ErrorCode {
    /// The code string of the error body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Unknown => "UNKNOWN",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status the code is normally sent with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown
            | ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::TagInvalid
            | ErrorCode::PaginationNumberInvalid
            | ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Denied => 403,
            ErrorCode::Unsupported => 405,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Unknown => 500,
            ErrorCode::Unavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
