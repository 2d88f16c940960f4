//! The one place errors become HTTP responses.
//!
//! Handlers return [`ApiError`]; library errors convert into it here, each to
//! its OCI error code, status and a message a person can act on. Internal
//! failures are logged with detail and answered with a generic message, so no
//! storage path, SQL or secret leaks into a response body.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use ward_core::ErrorCode;
use ward_core::digest::DigestError;
use ward_core::manifest::ManifestError;
use ward_core::name::NameError;
use ward_store::{BlobStoreError, StoreError};

/// An error answered in the OCI JSON error body.
#[derive(Debug)]
pub struct ApiError {
    /// The OCI code.
    pub code: ErrorCode,
    /// The status, normally the code's own.
    pub status: StatusCode,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Rarely-used parts, boxed to keep `Result<_, ApiError>` small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    /// Structured detail (e.g. the unknown digest).
    detail: Option<Value>,
    /// Extra response headers (Range on 416, Retry-After on 429...).
    headers: HeaderMap,
    /// Further errors answered in the same body (one per unknown blob, say).
    more: Vec<Value>,
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with the code's usual status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError {
            code,
            status,
            message: message.into(),
            extra: None,
        }
    }

    /// Overrides the status (413 for an oversize manifest, 416 for a bad range...).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Adds structured detail.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.extra().detail = Some(detail);
        self
    }

    /// Adds another error entry to the same response.
    pub fn and(mut self, code: ErrorCode, message: impl Into<String>, detail: Value) -> Self {
        self.extra().more.push(json!({
            "code": code.as_str(),
            "message": message.into(),
            "detail": detail,
        }));
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.extra().headers.insert(name, v);
        }
        self
    }

    /// A server-side failure: logged in full, answered without internals.
    pub fn internal(what: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{what}");
        ApiError::new(
            ErrorCode::Unknown,
            format!("internal error while {what}; the server log has details"),
        )
    }

    /// The upload session is unknown (never existed, cancelled, expired, or another repository's).
    pub fn upload_unknown() -> Self {
        ApiError::new(
            ErrorCode::BlobUploadUnknown,
            "upload session unknown: it was completed, cancelled or expired; start a new upload",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extra = self.extra.map(|b| *b).unwrap_or_default();
        let mut errors = vec![json!({
            "code": self.code.as_str(),
            "message": self.message,
            "detail": extra.detail.unwrap_or(Value::Null),
        })];
        errors.extend(extra.more);
        let body = json!({ "errors": errors });
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().extend(extra.headers);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal("accessing registry metadata", &e)
    }
}

impl From<BlobStoreError> for ApiError {
    fn from(e: BlobStoreError) -> Self {
        ApiError::internal("accessing blob storage", &e)
    }
}

impl From<ward_store::meta::AuthStoreError> for ApiError {
    fn from(e: ward_store::meta::AuthStoreError) -> Self {
        use ward_store::meta::AuthStoreError as E;
        match e {
            E::Conflict(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
            E::NotFound(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
            E::AccessTokenLimit { .. } => ApiError::new(ErrorCode::InvalidRequest, e.to_string()),
            E::Store(inner) => ApiError::from(inner),
        }
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        let code = match e {
            NameError::InvalidRepository(_) | NameError::RepositoryTooLong { .. } => {
                ErrorCode::NameInvalid
            }
            NameError::InvalidTag(_) => ErrorCode::TagInvalid,
            NameError::InvalidDigest(_) => ErrorCode::DigestInvalid,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<DigestError> for ApiError {
    fn from(e: DigestError) -> Self {
        ApiError::new(ErrorCode::DigestInvalid, e.to_string())
    }
}

impl From<ManifestError> for ApiError {
    fn from(e: ManifestError) -> Self {
        ApiError::new(ErrorCode::ManifestInvalid, e.to_string())
    }
}
