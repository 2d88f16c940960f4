//! The one error type of the tool; each variant says what to check.

use std::fmt::Display;

/// Why a benchmark could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A command-line value that cannot be used.
    #[error("invalid option: {0}")]
    Invalid(String),
    /// A local file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The registry could not be reached or the connection broke.
    #[error("{what}: {message} (is the registry running at that address?)")]
    Transport {
        /// The request, as `METHOD url`.
        what: String,
        /// The client's error chain.
        message: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{what}: expected HTTP {expected}, got {status}; body: {body}")]
    Status {
        /// The request, as `METHOD url`.
        what: String,
        /// The status the protocol calls for.
        expected: u16,
        /// The status received.
        status: u16,
        /// The start of the response body (registries put an OCI error there).
        body: String,
    },
    /// The registry asked for credentials the tool does not have, or refused them.
    #[error("authentication: {0}")]
    Auth(String),
    /// Bytes came back different from what was pushed.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The digest of the bytes pushed.
        expected: String,
        /// The digest of the bytes received or announced.
        actual: String,
    },
    /// The external load generator failed or printed something unreadable.
    #[error("wrk: {0}")]
    Wrk(String),
}

impl BenchError {
    /// An I/O error with the action that failed.
    pub fn io(context: impl Display, source: std::io::Error) -> Self {
        Self::Io {
            context: context.to_string(),
            source,
        }
    }

    /// A transport error, with the whole source chain (hyper hides the cause otherwise).
    pub fn transport(what: impl Display, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Transport {
            what: what.to_string(),
            message,
        }
    }
}
