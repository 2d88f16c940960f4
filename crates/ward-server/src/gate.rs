//! The signature gates: what a trust policy protects is served only when
//! verified.
//!
//! - **Pull.** A manifest in a repository the trust policy covers is served
//!   (`GET` and `HEAD`) only if its signatures satisfy the policy, or if it is
//!   a child of an index whose signatures do (clients pull the index, then the
//!   platform's manifest by digest).
//! - **Blobs.** A blob of a protected repository is served only when a
//!   manifest of that repository that may be pulled references it, so knowing
//!   a layer digest is no way around the gate.
//! - **Promotion.** Tagging a digest with a tag a rule protects (`promote_tags`)
//!   needs the digest to satisfy the policy.
//!
//! The pull and blob gates apply to consumers: a caller the access policy
//! lets push to the repository (a builder or signer, who could replace the
//! content anyway) reads what it produced, so it can sign and promote it.
//!
//! Signature artifacts themselves (cosign's `sha256-<hex>.sig` manifests and
//! signature referrers: every layer a signature, all small) stay readable so
//! clients can verify. Verdicts are cached per (repository, digest, policy
//! revision, signature generation); pushing anything that may be a signature
//! moves the generation, so a new signature counts at once, and a certificate
//! verdict is kept no longer than the certificate is valid.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use ward_core::manifest::{self, ManifestKind};
use ward_core::name::{Reference, RepositoryName, Tag};
use ward_core::{Digest, ErrorCode};
use ward_sign::oci::{self, SIGSTORE_BUNDLE_MEDIA_TYPE};
use ward_sign::policy::{Candidate, CompiledPolicy};
use ward_sign::verify::{Context, Subject};
use ward_store::meta::ManifestMeta;
use ward_store::paths;

use crate::error::{ApiError, ApiResult};
use crate::oci::Ctx;

/// `[signatures]`: what the signature gate reads for one decision, and how
/// long it reuses a decision.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignatureConfig {
    /// Largest signature blob read (payloads and bundles are a few KiB); also
    /// the most a manifest of signature layers may hold to stay readable in a
    /// protected repository.
    pub blob_bytes_max: u64,
    /// Most signature manifests (tag plus referrers) read for one subject.
    pub manifests_max: u32,
    /// Most signature bytes (all blobs together) read for one decision; the
    /// signatures past it are not considered.
    pub evidence_bytes_max: u64,
    /// Most parents looked at to find a verified index or manifest.
    pub parents_max: u32,
    /// Most files read from a model manifest for model-signing verification.
    pub model_files_max: usize,
    /// Verdicts kept in memory.
    pub verdicts_max: usize,
    /// How long an allowance is reused at most, in seconds (a signature push
    /// or a trust-policy change ends it sooner).
    pub verdict_ttl_secs: u64,
    /// How long a refusal is reused at most, in seconds: a signature pushed
    /// through another server sharing the database moves only that server's
    /// generation.
    pub refusal_ttl_secs: u64,
}

impl Default for SignatureConfig {
    fn default() -> Self {
        SignatureConfig {
            blob_bytes_max: 1024 * 1024,
            manifests_max: 64,
            evidence_bytes_max: 16 * 1024 * 1024,
            parents_max: 32,
            model_files_max: 100_000,
            verdicts_max: 100_000,
            verdict_ttl_secs: 300,
            refusal_ttl_secs: 5,
        }
    }
}

impl SignatureConfig {
    /// Refuses values that would disable the gate's reads or its cache.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("blob_bytes_max", self.blob_bytes_max),
            ("manifests_max", u64::from(self.manifests_max)),
            ("evidence_bytes_max", self.evidence_bytes_max),
            ("parents_max", u64::from(self.parents_max)),
            ("model_files_max", self.model_files_max as u64),
            ("verdicts_max", self.verdicts_max as u64),
        ] {
            if value == 0 {
                return Err(format!("signatures.{key} must be at least 1"));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct VerdictKey {
    repository: String,
    digest: Digest,
    policy: Digest,
    generation: u64,
}

/// One gate decision about a digest.
#[derive(Clone, Debug)]
pub struct GateVerdict {
    /// Whether it may be served or promoted.
    pub allowed: bool,
    /// Whether a rule covers it and its signatures satisfy that rule: what an
    /// index must be for the platform manifests it lists to be served through
    /// it (an index no rule covers is allowed, yet vouches for nothing).
    pub verified: bool,
    /// The reason, for error bodies and the audit log.
    pub summary: String,
    until: Instant,
}

/// The gate's limits, the verdict cache and the signature generation.
pub struct SignatureGate {
    config: SignatureConfig,
    verdicts: Cache<VerdictKey, Arc<GateVerdict>>,
    generation: AtomicU64,
}

impl Default for SignatureGate {
    fn default() -> Self {
        SignatureGate::new(SignatureConfig::default())
    }
}

impl SignatureGate {
    /// A gate with these limits and an empty cache.
    pub fn new(config: SignatureConfig) -> Self {
        SignatureGate {
            verdicts: Cache::new(config.verdicts_max.max(1)),
            config,
            generation: AtomicU64::new(0),
        }
    }

    /// Something that may be a signature was pushed or deleted: cached
    /// verdicts stop counting.
    pub fn signatures_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn key(
        &self,
        repository: &RepositoryName,
        digest: Digest,
        policy: &CompiledPolicy,
    ) -> VerdictKey {
        VerdictKey {
            repository: repository.as_str().to_owned(),
            digest,
            policy: policy.revision(),
            generation: self.generation.load(Ordering::SeqCst),
        }
    }
}

/// Whether a pushed manifest may carry signatures (a signature tag or a
/// manifest with a subject): the gate's cached verdicts must not outlive it.
pub fn may_be_signature(tags: &[Tag], has_subject: bool) -> bool {
    has_subject || tags.iter().any(|t| is_signature_tag(t.as_str()))
}

fn is_signature_tag(tag: &str) -> bool {
    tag.starts_with("sha256-")
        && [".sig", ".att", ".sbom"]
            .iter()
            .any(|suffix| tag.ends_with(suffix))
}

/// A manifest that holds only signatures (every layer a signature type, the
/// whole small, sizes checked when it was pushed): readable in protected
/// repositories so clients can verify. Only as what it claims to be, though:
/// see [`check_manifest`] and [`check_blob`].
fn is_signature_artifact(bytes: &[u8], bytes_max: u64) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let Some(layers) = value["layers"].as_array() else {
        return false;
    };
    let signature_type = |t: &str| {
        t == ward_sign::oci::SIMPLE_SIGNING_MEDIA_TYPE
            || t == SIGSTORE_BUNDLE_MEDIA_TYPE
            || t == ward_sign::pss::RSA_PSS_SIGNATURE_MEDIA_TYPE
    };
    let total: u64 = layers.iter().filter_map(|l| l["size"].as_u64()).sum();
    !layers.is_empty()
        && total <= bytes_max
        && layers
            .iter()
            .all(|l| l["mediaType"].as_str().is_some_and(signature_type))
}

/// Whether the trust policy names this repository (so its manifests and
/// blobs go through the gate).
pub(crate) fn protects(ctx: &Ctx, name: &RepositoryName) -> bool {
    ctx.state
        .access
        .snapshot()
        .trust
        .as_ref()
        .is_some_and(|p| p.protects_repository(name.as_str()))
}

/// Whether the caller may push to `name` by role or policy (whatever scope
/// its token carries): producers are not gated on reading their own work.
fn is_producer(ctx: &Ctx, name: &RepositoryName) -> bool {
    let snapshot = ctx.state.access.snapshot();
    ctx.state
        .access
        .decide(
            &snapshot,
            &ctx.caller,
            ward_auth::policy::Action::Push,
            Some(name.as_str()),
            ward_auth::policy::TagContext::Unknown,
        )
        .is_allowed()
}

/// The pull gate for a manifest about to be served, asked for by `reference`.
///
/// A signature artifact is served unverified only when asked for as a
/// signature: by digest (as the referrers API and `cosign` name it) or by a
/// signature tag. A manifest of signature-typed layers under any other tag is
/// something dressed as a signature and goes through the gate like any other.
pub(crate) async fn check_manifest(
    ctx: &Ctx,
    name: &RepositoryName,
    reference: &Reference,
    meta: &ManifestMeta,
    content: &Bytes,
) -> ApiResult<()> {
    let snapshot = ctx.state.access.snapshot();
    let limits = &ctx.state.signatures.config;
    let Some(policy) = snapshot.trust.clone() else {
        return Ok(());
    };
    let asked_as_signature = match reference {
        Reference::Digest(_) => true,
        Reference::Tag(tag) => is_signature_tag(tag.as_str()),
    };
    if !policy.protects_repository(name.as_str())
        || (asked_as_signature && is_signature_artifact(content, limits.blob_bytes_max))
        || is_producer(ctx, name)
    {
        return Ok(());
    }
    let verdict = verdict(ctx, &policy, name, meta.digest, &meta.media_type, content).await?;
    if verdict.allowed {
        return Ok(());
    }
    // A platform manifest is served when an index listing it is verified.
    for parent in ctx
        .state
        .meta
        .referencing_manifests(name, &meta.digest, limits.parents_max)
        .await?
    {
        if let Some(v) = parent_verdict(ctx, &policy, name, parent).await?
            && v.verified
        {
            return Ok(());
        }
    }
    Err(refuse(
        ctx,
        name,
        "pull",
        &format!("{} in {name}", meta.digest),
        &verdict.summary,
    )
    .await?)
}

/// The blob gate: a blob of a protected repository is served only through a
/// manifest of that repository that may be pulled. Signature artifacts vouch
/// for a blob only when nothing else references it: a model layer that an
/// unverified manifest holds stays refused even if a manifest dressed as a
/// signature lists it too.
pub(crate) async fn check_blob(ctx: &Ctx, name: &RepositoryName, digest: Digest) -> ApiResult<()> {
    let snapshot = ctx.state.access.snapshot();
    let limits = &ctx.state.signatures.config;
    let Some(policy) = snapshot.trust.clone() else {
        return Ok(());
    };
    // The OCI empty blob (`{}`, the config of artifacts and referrers) says nothing.
    if !policy.protects_repository(name.as_str())
        || digest == Digest::of(ward_core::media::OCI_EMPTY_BYTES)
        || is_producer(ctx, name)
    {
        return Ok(());
    }
    let parents = ctx
        .state
        .meta
        .referencing_manifests(name, &digest, limits.parents_max)
        .await?;
    // Parents come in digest order, at most `parents_max`: past that, one that
    // is not a signature may be among those not read.
    let mut only_signatures = !parents.is_empty() && parents.len() < limits.parents_max as usize;
    for parent in &parents {
        let Some(bytes) = manifest_bytes(ctx, name, *parent).await? else {
            continue;
        };
        if is_signature_artifact(&bytes, limits.blob_bytes_max) {
            continue;
        }
        only_signatures = false;
        if let Some(v) = parent_verdict(ctx, &policy, name, *parent).await?
            && v.allowed
        {
            return Ok(());
        }
        // A layer of a platform manifest whose index is verified.
        for grandparent in ctx
            .state
            .meta
            .referencing_manifests(name, parent, limits.parents_max)
            .await?
        {
            if let Some(v) = parent_verdict(ctx, &policy, name, grandparent).await?
                && v.verified
            {
                return Ok(());
            }
        }
    }
    if only_signatures {
        return Ok(());
    }
    let reason = if parents.is_empty() {
        "no manifest of this repository references it".to_owned()
    } else {
        "no manifest of this repository that references it is verified".to_owned()
    };
    Err(refuse(
        ctx,
        name,
        "pull_blob",
        &format!("blob {digest} in {name}"),
        &reason,
    )
    .await?)
}

/// The promotion gate: `tags` may be set on `digest` only if every tag a rule
/// protects has a verified target.
pub(crate) async fn check_promotion(
    ctx: &Ctx,
    name: &RepositoryName,
    digest: Digest,
    media_type: &str,
    content: &[u8],
    tags: &[Tag],
) -> ApiResult<()> {
    let snapshot = ctx.state.access.snapshot();
    let Some(policy) = snapshot.trust.clone() else {
        return Ok(());
    };
    let Some(tag) = tags
        .iter()
        .find(|t| policy.promotion_protects(name.as_str(), t.as_str()))
    else {
        return Ok(());
    };
    let content = Bytes::copy_from_slice(content);
    let verdict = verdict(ctx, &policy, name, digest, media_type, &content).await?;
    if verdict.allowed {
        return Ok(());
    }
    Err(refuse(
        ctx,
        name,
        "promote",
        &format!("tag {tag} -> {digest} in {name}"),
        &verdict.summary,
    )
    .await?)
}

async fn refuse(
    ctx: &Ctx,
    name: &RepositoryName,
    action: &str,
    what: &str,
    why: &str,
) -> ApiResult<ApiError> {
    let reason = format!("{what} does not satisfy the trust policy: {why}");
    crate::audit::denied(
        &ctx.state,
        ward_audit::EventType::SignatureDenied,
        &ctx.caller,
        &ctx.headers,
        action,
        Some(name.as_str()),
        &reason,
    )
    .await?;
    Ok(ApiError::new(ErrorCode::Denied, reason))
}

async fn manifest_bytes(
    ctx: &Ctx,
    name: &RepositoryName,
    digest: Digest,
) -> ApiResult<Option<Bytes>> {
    if let Some(bytes) = ctx.state.manifests.get(&digest) {
        return Ok(Some(bytes));
    }
    let bytes = ctx.state.meta.manifest_content(name, &digest).await?;
    if let Some(b) = &bytes {
        ctx.state.manifests.insert(digest, b.clone());
    }
    Ok(bytes)
}

/// The verdict of a stored manifest of `name` (None if it is gone).
async fn parent_verdict(
    ctx: &Ctx,
    policy: &Arc<CompiledPolicy>,
    name: &RepositoryName,
    digest: Digest,
) -> ApiResult<Option<Arc<GateVerdict>>> {
    let Some(meta) = ctx
        .state
        .meta
        .resolve_manifest(name, &Reference::Digest(digest))
        .await?
    else {
        return Ok(None);
    };
    let Some(bytes) = manifest_bytes(ctx, name, digest).await? else {
        return Ok(None);
    };
    verdict(ctx, policy, name, digest, &meta.media_type, &bytes)
        .await
        .map(Some)
}

/// The (cached) verdict of the policy about manifest `digest` of `name`.
async fn verdict(
    ctx: &Ctx,
    policy: &Arc<CompiledPolicy>,
    name: &RepositoryName,
    digest: Digest,
    media_type: &str,
    content: &Bytes,
) -> ApiResult<Arc<GateVerdict>> {
    let gate = &ctx.state.signatures;
    let key = gate.key(name, digest, policy);
    if let Some(v) = gate.verdicts.get(&key)
        && v.until > Instant::now()
    {
        return Ok(v);
    }
    let parsed = manifest::parse(content, Some(media_type)).ok();
    let artifact_type = parsed.as_ref().and_then(|p| p.artifact_type.clone());
    let is_index = parsed
        .as_ref()
        .is_some_and(|p| matches!(p.kind, ManifestKind::Index));
    let candidates = candidates(ctx, name, digest).await?;
    let model = if is_index {
        None
    } else {
        oci::model_files(content, gate.config.model_files_max).ok()
    };
    let subject = Subject {
        repository: name.as_str(),
        digest: Some(digest),
        artifact_type: artifact_type.as_deref(),
        model: model
            .as_ref()
            .map(|m| m as &dyn ward_sign::model::ModelSource),
    };
    let result = policy.evaluate(&subject, &candidates, &Context::now());
    let allowed = !result.covered || result.satisfied;
    let summary = if candidates.is_empty() && !allowed {
        format!(
            "{digest} has no signatures; sign it (ward sign, cosign sign) with a key the trust policy lists"
        )
    } else {
        result.summary()
    };
    let ttl = if allowed {
        gate.config.verdict_ttl_secs
    } else {
        gate.config.refusal_ttl_secs
    };
    let mut until = Instant::now() + Duration::from_secs(ttl);
    if let Some(valid_until) = result.valid_until {
        let now = ward_sign::time::now();
        let left = u64::try_from(valid_until.saturating_sub(now)).unwrap_or(0);
        until = until.min(Instant::now() + Duration::from_secs(left));
    }
    let verdict = Arc::new(GateVerdict {
        allowed,
        verified: result.covered && result.satisfied,
        summary,
        until,
    });
    gate.verdicts.insert(key, verdict.clone());
    Ok(verdict)
}

/// Every signature stored for `digest` in `name`: the layers of the cosign
/// tag-scheme manifest and of each signature referrer.
async fn candidates(ctx: &Ctx, name: &RepositoryName, digest: Digest) -> ApiResult<Vec<Candidate>> {
    let limits = &ctx.state.signatures.config;
    let mut manifests: Vec<(String, Bytes)> = Vec::new();
    if let Ok(tag) = Tag::parse(&oci::signature_tag(&digest))
        && let Some(meta) = ctx
            .state
            .meta
            .resolve_manifest(name, &Reference::Tag(tag.clone()))
            .await?
        && let Some(bytes) = manifest_bytes(ctx, name, meta.digest).await?
    {
        manifests.push((tag.to_string(), bytes));
    }
    let (referrers, _) = ctx
        .state
        .meta
        .referrers(name, &digest, None, None, limits.manifests_max)
        .await?;
    for r in referrers {
        let kind = r.artifact_type.as_deref().unwrap_or_default();
        if !oci::is_signature_artifact_type(kind) {
            continue;
        }
        if let Some(bytes) = manifest_bytes(ctx, name, r.digest).await? {
            manifests.push((format!("referrer {}", r.digest), bytes));
        }
    }
    let mut out = Vec::new();
    let mut budget = limits.evidence_bytes_max;
    for (source, bytes) in manifests {
        let Ok(found) = oci::signature_layers(&bytes) else {
            continue;
        };
        for (i, layer) in found.layers.iter().enumerate() {
            let d = layer.descriptor.digest;
            let Some(size) = ctx.state.meta.blob_in_repository(name, &d).await? else {
                continue;
            };
            if size > limits.blob_bytes_max {
                continue;
            }
            let Some(left) = budget.checked_sub(size) else {
                tracing::warn!(%name, subject = %digest, "signatures past signatures.evidence_bytes_max were not read");
                return Ok(out);
            };
            budget = left;
            let mut stream = ctx.state.blobs.read(&paths::blob(&d), None).await?;
            let mut blob = BytesMut::new();
            while let Some(chunk) = stream.next().await {
                blob.extend_from_slice(&chunk?);
                if blob.len() as u64 > limits.blob_bytes_max {
                    break;
                }
            }
            if let Ok(evidence) = layer.evidence(blob.to_vec()) {
                out.push(Candidate {
                    source: format!("{source} layer {i}"),
                    evidence,
                });
            }
        }
    }
    Ok(out)
}
