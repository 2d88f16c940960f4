//! One large blob pushed monolithically and pulled back.
//!
//! The push is `POST` then a single streaming `PUT ?digest=` whose body is generated on
//! the fly (the digest comes from an untimed first pass over the same deterministic
//! stream); the pull streams the blob through sha256 and checks length and digest.

use std::time::Instant;

use serde::Serialize;

use super::{Target, Transfer, finish_watch};
use crate::blobgen::{BlobSpec, ReqBody, UPLOAD_CHUNK_BYTES};
use crate::client::AuthMode;
use crate::error::BenchError;
use crate::units::mb_per_s;

/// Figures of one push and pull.
#[derive(Clone, Debug, Serialize)]
pub struct PushPullReport {
    /// Always `push-pull`.
    pub kind: &'static str,
    /// The registry's origin.
    pub registry: String,
    /// The repository pushed to.
    pub repository: String,
    /// How the registry authenticated the client.
    pub auth: AuthMode,
    /// Size of the blob.
    pub size_bytes: u64,
    /// Its digest.
    pub digest: String,
    /// Seconds the client spent computing the digest before the push (not timed).
    pub digest_pass_seconds: f64,
    /// The push: `POST` to `201 Created`.
    pub push: Transfer,
    /// The pull: `GET` to the last byte, digest verified.
    pub pull: Transfer,
}

/// Pushes and pulls one blob of `size_bytes`.
pub async fn run(target: &Target, size_bytes: u64) -> Result<PushPullReport, BenchError> {
    let registry = &target.registry;
    let repository = target.repository("push-pull");
    let auth = registry
        .login(&format!("repository:{repository}:pull,push"))
        .await?;
    let spec = BlobSpec {
        seed: target.seed,
        size_bytes,
    };
    let digest_started = Instant::now();
    let digest = spec.digest();
    let digest_pass_seconds = digest_started.elapsed().as_secs_f64();

    let watch = target.watch_memory();
    let started = Instant::now();
    let body = || ReqBody::Generated(spec.chunks(UPLOAD_CHUNK_BYTES));
    registry
        .push_blob(&repository, &digest, size_bytes, body)
        .await?;
    let push_elapsed = started.elapsed();
    let push = Transfer {
        seconds: push_elapsed.as_secs_f64(),
        mb_per_s: mb_per_s(size_bytes, push_elapsed),
        server_memory: finish_watch(watch).await,
    };

    let watch = target.watch_memory();
    let started = Instant::now();
    let (received_bytes, received) = registry.pull_blob(&repository, &digest).await?;
    let pull_elapsed = started.elapsed();
    let pull = Transfer {
        seconds: pull_elapsed.as_secs_f64(),
        mb_per_s: mb_per_s(received_bytes, pull_elapsed),
        server_memory: finish_watch(watch).await,
    };
    if received != digest || received_bytes != size_bytes {
        return Err(BenchError::DigestMismatch {
            what: format!("pulled blob ({received_bytes} of {size_bytes} bytes)"),
            expected: digest.to_string(),
            actual: received.to_string(),
        });
    }
    Ok(PushPullReport {
        kind: "push-pull",
        registry: registry.origin().to_owned(),
        repository,
        auth,
        size_bytes,
        digest: digest.to_string(),
        digest_pass_seconds,
        push,
        pull,
    })
}
