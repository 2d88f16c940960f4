//! The one interface every signature format implements: evidence about a
//! subject goes in, a [`Verified`] signer or a [`Rejection`] with its reason
//! comes out.
//!
//! Format modules ([`crate::cosign`], [`crate::bundle`], [`crate::pss`]) decide
//! what a signature *says* and what key or certificate made it. What is shared
//! lives here: finding the key among trusted keys, checking transparency-log
//! evidence, establishing the signing time and validating the certificate chain
//! at that time. Whether a verified signer *counts* is the policy's business
//! ([`crate::policy`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ward_core::Digest;

use crate::keys::{KeyId, PublicKey};
use crate::model::ModelSource;
use crate::time::{UnixSeconds, format_rfc3339};
use crate::tlog::{self, Binding, LogEntry, SignedContent, VerifiedEntry};
use crate::trust_root::TrustRoot;
use crate::x509::{Certificate, ChainError, verify_chain};

/// Which format a signature was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureFormat {
    /// cosign "simple signing" (payload JSON + layer annotation).
    CosignSimpleSigning,
    /// A sigstore bundle over an artifact or an in-toto statement about it.
    SigstoreBundle,
    /// An OpenSSF model-signing v1.0 bundle.
    ModelSigning,
    /// The mission's RSA-PSS signature over the model's hex sha256.
    RsaPss,
}

impl std::fmt::Display for SignatureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureFormat::CosignSimpleSigning => "cosign simple signing",
            SignatureFormat::SigstoreBundle => "sigstore bundle",
            SignatureFormat::ModelSigning => "OpenSSF model signing",
            SignatureFormat::RsaPss => "RSA-PSS model signature",
        })
    }
}

/// Who made a verified signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signer {
    /// A configured public key.
    Key {
        /// sha256 of its SPKI.
        key_id: KeyId,
        /// The name it was configured under.
        name: String,
    },
    /// A certificate that chained to a configured trust root.
    Certificate {
        /// Name of the trust root it chained to.
        trust_root: String,
        /// Its subject alternative names.
        subject_alt_names: Vec<String>,
        /// The OIDC issuer recorded by Fulcio, if any.
        issuer: Option<String>,
        /// sha256 of the certificate DER.
        fingerprint: Digest,
    },
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::Key { key_id, name } => write!(f, "key {name:?} ({key_id})"),
            Signer::Certificate {
                subject_alt_names,
                issuer,
                ..
            } => {
                write!(f, "certificate for {}", subject_alt_names.join(", "))?;
                match issuer {
                    Some(issuer) => write!(f, " issued via {issuer}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A signature that verified cryptographically and is bound to the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The format it was in.
    pub format: SignatureFormat,
    /// Who made it.
    pub signer: Signer,
    /// Trusted signing time (from a verified transparency-log SET).
    pub signed_at: Option<UnixSeconds>,
    /// The transparency-log entry that verified, if any.
    pub tlog: Option<VerifiedEntry>,
    /// When the signing certificate expires, if the chain was checked against the
    /// current time (no trusted signing time): a cached verdict must not outlive it.
    pub valid_until: Option<UnixSeconds>,
    /// The `docker-reference` a cosign payload names.
    pub docker_reference: Option<String>,
}

/// Why a signature did not count. Every variant is a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// The signature artifact could not be read.
    #[error("signature could not be read: {detail}")]
    Malformed {
        /// What is wrong with it.
        detail: String,
    },
    /// A format, key type or entry kind Ward does not handle.
    #[error("unsupported: {detail}")]
    Unsupported {
        /// What is unsupported.
        detail: String,
    },
    /// No trusted key verifies the signature ("wrong key").
    #[error("the signature does not verify with any trusted key")]
    UnknownKey,
    /// The signature verified with a key that was revoked.
    #[error("signed by revoked key {name:?} ({key_id})")]
    RevokedKey {
        /// The key.
        key_id: KeyId,
        /// Its configured name.
        name: String,
    },
    /// The signature verified with a trusted key the rule does not accept.
    #[error("signed by key {name:?} ({key_id}), which this rule does not accept")]
    KeyNotAccepted {
        /// The key.
        key_id: KeyId,
        /// Its configured name.
        name: String,
    },
    /// The signature does not verify with the key its certificate carries
    /// (tampered payload or forged signature).
    #[error("the signature does not verify with its certificate's key: {detail}")]
    BadSignature {
        /// What was being verified.
        detail: String,
    },
    /// The signature is genuine but covers other content.
    #[error("the signature covers {found}, not {expected}")]
    DigestMismatch {
        /// What the subject is.
        expected: String,
        /// What the signature covers.
        found: String,
    },
    /// The cosign payload names another repository.
    #[error("the signature names image {found:?}, not repository {expected:?}")]
    ReferenceMismatch {
        /// The subject's repository.
        expected: String,
        /// The payload's docker-reference.
        found: String,
    },
    /// A certificate on the chain was not valid at the signing time.
    #[error(
        "certificate {subject:?} was not valid at the signing time {} ({}): it is valid from {} to {}",
        format_rfc3339(*signed_at),
        if *signing_time_trusted { "from the transparency log" } else { "the current time, no transparency-log time was available" },
        format_rfc3339(*not_before),
        format_rfc3339(*not_after)
    )]
    CertificateExpired {
        /// The certificate's subject.
        subject: String,
        /// Its notBefore.
        not_before: UnixSeconds,
        /// Its notAfter.
        not_after: UnixSeconds,
        /// The time it was checked at.
        signed_at: UnixSeconds,
        /// Whether that time came from a verified transparency log.
        signing_time_trusted: bool,
    },
    /// The certificate does not chain to a configured trust root.
    #[error("the certificate does not chain to a trusted root: {detail}")]
    UntrustedCertificate {
        /// Why.
        detail: String,
    },
    /// The certificate chained, but its identity is not one the rule accepts.
    #[error(
        "certificate identity {} (issuer {}) is not accepted",
        if subject_alt_names.is_empty() { "<none>".to_owned() } else { subject_alt_names.join(", ") },
        issuer.as_deref().unwrap_or("<none>")
    )]
    IdentityMismatch {
        /// The certificate's SANs.
        subject_alt_names: Vec<String>,
        /// Its OIDC issuer.
        issuer: Option<String>,
    },
    /// The rule requires transparency-log evidence and there is none that verifies.
    #[error("no verified transparency-log entry, and this rule requires one")]
    TlogRequired,
    /// Transparency-log evidence from a configured log is present but wrong.
    #[error("transparency-log evidence is invalid: {detail}")]
    TlogInvalid {
        /// Why.
        detail: String,
    },
    /// A model's files do not match what was signed.
    #[error(
        "model contents differ from what was signed: {}",
        model_summary(missing, added, changed, problems)
    )]
    ModelMismatch {
        /// Signed files that are not present.
        missing: Vec<String>,
        /// Present files that were not signed.
        added: Vec<String>,
        /// Files whose sha256 differs.
        changed: Vec<String>,
        /// Files that could not be read or are not regular files.
        problems: Vec<String>,
    },
}

fn model_summary(
    missing: &[String],
    added: &[String],
    changed: &[String],
    problems: &[String],
) -> String {
    let mut parts = Vec::new();
    for (label, list) in [
        ("missing", missing),
        ("added", added),
        ("changed", changed),
        ("unreadable", problems),
    ] {
        if !list.is_empty() {
            parts.push(format!("{label}: {}", list.join(", ")));
        }
    }
    parts.join("; ")
}

/// A public key the verifier knows, under the name it was configured with.
#[derive(Debug, Clone)]
pub struct KnownKey {
    /// Configured name.
    pub name: String,
    /// The key.
    pub key: PublicKey,
}

/// Everything signatures are checked against: keys and trust roots. Revoked keys
/// belong here too, so a signature by one is reported as such rather than as
/// "unknown key".
#[derive(Debug, Clone, Default)]
pub struct TrustMaterial {
    /// Known keys.
    pub keys: Vec<KnownKey>,
    /// Certificate authorities and transparency logs.
    pub roots: Vec<TrustRoot>,
}

/// Limits on hostile input, each with a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest cosign payload read.
    pub payload_bytes_max: usize,
    /// Largest sigstore bundle read (model statements list every file).
    pub bundle_bytes_max: usize,
    /// Most transparency-log entries examined per signature.
    pub tlog_entries_max: usize,
    /// Most files a signed model may list, or a model directory may hold.
    pub model_files_max: usize,
    /// Most certificates accepted in a signature's chain.
    pub chain_certificates_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            payload_bytes_max: 1 << 20,
            bundle_bytes_max: 64 << 20,
            tlog_entries_max: 8,
            model_files_max: 1_000_000,
            chain_certificates_max: 8,
        }
    }
}

/// When and under which limits verification happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The current time: used for certificates when no trusted signing time exists.
    pub now: UnixSeconds,
    /// Input limits.
    pub limits: Limits,
}

impl Context {
    /// Now, with default limits.
    pub fn now() -> Self {
        Context {
            now: crate::time::now(),
            limits: Limits::default(),
        }
    }
}

/// What signatures are checked *about*.
#[derive(Clone, Copy, Default)]
pub struct Subject<'a> {
    /// Repository path (e.g. `team/model`); empty outside a registry.
    pub repository: &'a str,
    /// Digest of the manifest (or file) signed, when there is one.
    pub digest: Option<Digest>,
    /// The artifact type, for rule selection.
    pub artifact_type: Option<&'a str>,
    /// The model's files, for model-signing signatures.
    pub model: Option<&'a dyn ModelSource>,
}

impl std::fmt::Debug for Subject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("repository", &self.repository)
            .field("digest", &self.digest)
            .field("artifact_type", &self.artifact_type)
            .field("model", &self.model.is_some())
            .finish()
    }
}

/// One signature artifact, as bytes fetched from wherever it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// A cosign simple-signing layer: its blob (the payload) and its annotations.
    CosignLayer {
        /// The payload blob.
        payload: Vec<u8>,
        /// The layer's annotations (signature, certificate, chain, bundle).
        annotations: BTreeMap<String, String>,
    },
    /// A sigstore bundle (JSON), including OpenSSF model-signing bundles.
    SigstoreBundle {
        /// The bundle JSON.
        json: Vec<u8>,
    },
    /// A raw RSA-PSS signature in the mission's scheme.
    RsaPss {
        /// The signature bytes.
        signature: Vec<u8>,
    },
}

impl Evidence {
    /// Verifies this signature about `subject` against `trust`.
    pub fn verify(
        &self,
        subject: &Subject<'_>,
        trust: &TrustMaterial,
        ctx: &Context,
    ) -> Result<Verified, Rejection> {
        match self {
            Evidence::CosignLayer {
                payload,
                annotations,
            } => crate::cosign::verify(payload, annotations, subject, trust, ctx),
            Evidence::SigstoreBundle { json } => crate::bundle::verify(json, subject, trust, ctx),
            Evidence::RsaPss { signature } => {
                crate::pss::verify_evidence(signature, subject, trust, ctx)
            }
        }
    }
}

/// What signed, as the signature artifact presents it.
pub(crate) enum Material {
    /// A certificate chain, leaf first.
    Certificates(Vec<Certificate>),
    /// No certificate: the signer must be one of the trusted keys.
    TrustedKeys,
}

/// A signature reduced to what the shared checks need.
pub(crate) struct Claim<'a> {
    pub format: SignatureFormat,
    pub material: Material,
    pub signature: &'a [u8],
    /// Does this key verify the signature over the signed content?
    pub verifies: &'a dyn Fn(&PublicKey) -> bool,
    pub entries: &'a [LogEntry],
    pub content: SignedContent,
    pub docker_reference: Option<String>,
}

/// Finds the signer, checks log evidence and the certificate chain.
pub(crate) fn verify_claim(
    claim: Claim<'_>,
    trust: &TrustMaterial,
    ctx: &Context,
) -> Result<Verified, Rejection> {
    match &claim.material {
        Material::TrustedKeys => {
            let known = trust
                .keys
                .iter()
                .find(|k| (claim.verifies)(&k.key))
                .ok_or(Rejection::UnknownKey)?;
            let tlog = check_entries(&claim, known.key.spki_der(), trust, ctx)?;
            Ok(Verified {
                format: claim.format,
                signer: Signer::Key {
                    key_id: known.key.key_id(),
                    name: known.name.clone(),
                },
                signed_at: tlog.as_ref().and_then(|t| t.integrated_time),
                tlog,
                valid_until: None,
                docker_reference: claim.docker_reference.clone(),
            })
        }
        Material::Certificates(chain) => verify_certificate_claim(&claim, chain, trust, ctx),
    }
}

fn verify_certificate_claim(
    claim: &Claim<'_>,
    chain: &[Certificate],
    trust: &TrustMaterial,
    ctx: &Context,
) -> Result<Verified, Rejection> {
    let (leaf, intermediates) = chain.split_first().ok_or_else(|| Rejection::Malformed {
        detail: "empty certificate chain".into(),
    })?;
    if chain.len() > ctx.limits.chain_certificates_max {
        return Err(Rejection::Malformed {
            detail: format!(
                "more than {} certificates in the chain",
                ctx.limits.chain_certificates_max
            ),
        });
    }
    let key = leaf.public_key().map_err(|e| Rejection::Unsupported {
        detail: format!("certificate key: {e}"),
    })?;
    if !(claim.verifies)(&key) {
        return Err(Rejection::BadSignature {
            detail: format!("certificate {:?}", leaf.describe()),
        });
    }
    let tlog = check_entries(claim, leaf.der(), trust, ctx)?;
    let signed_at = tlog.as_ref().and_then(|t| t.integrated_time);
    let at = signed_at.unwrap_or(ctx.now);
    let trust_root = chain_to_roots(leaf, intermediates, trust, at, signed_at.is_some())?;
    Ok(Verified {
        format: claim.format,
        signer: Signer::Certificate {
            trust_root,
            subject_alt_names: leaf.subject_alt_names(),
            issuer: leaf.oidc_issuer(),
            fingerprint: leaf.fingerprint(),
        },
        signed_at,
        tlog,
        valid_until: signed_at.is_none().then(|| leaf.not_after()),
        docker_reference: claim.docker_reference.clone(),
    })
}

/// Validates the chain against every configured authority; returns the name of
/// the first trust root that accepts it.
fn chain_to_roots(
    leaf: &Certificate,
    intermediates: &[Certificate],
    trust: &TrustMaterial,
    at: UnixSeconds,
    time_trusted: bool,
) -> Result<String, Rejection> {
    let mut expired = None;
    let mut untrusted = Vec::new();
    for root in &trust.roots {
        for authority in &root.authorities {
            if !authority.valid.contains(at) {
                untrusted.push(format!(
                    "CA in {:?} is not valid at {}",
                    root.name,
                    format_rfc3339(at)
                ));
                continue;
            }
            match verify_chain(leaf, intermediates, &authority.chain, at) {
                Ok(()) => return Ok(root.name.clone()),
                Err(ChainError::Expired {
                    subject,
                    not_before,
                    not_after,
                    at,
                }) => {
                    expired = Some(Rejection::CertificateExpired {
                        subject,
                        not_before,
                        not_after,
                        signed_at: at,
                        signing_time_trusted: time_trusted,
                    });
                }
                Err(ChainError::Untrusted(detail)) => untrusted.push(detail),
            }
        }
    }
    if let Some(expired) = expired {
        return Err(expired);
    }
    if untrusted.is_empty() {
        untrusted.push("no certificate authorities are configured".into());
    }
    untrusted.dedup();
    Err(Rejection::UntrustedCertificate {
        detail: untrusted.join("; "),
    })
}

/// The best verified log entry (one with a trusted time wins), or an error if
/// an entry from a configured log is wrong.
fn check_entries(
    claim: &Claim<'_>,
    verifier_der: &[u8],
    trust: &TrustMaterial,
    ctx: &Context,
) -> Result<Option<VerifiedEntry>, Rejection> {
    if claim.entries.len() > ctx.limits.tlog_entries_max {
        return Err(Rejection::Malformed {
            detail: format!(
                "more than {} transparency-log entries",
                ctx.limits.tlog_entries_max
            ),
        });
    }
    let roots: Vec<&TrustRoot> = trust.roots.iter().collect();
    let binding = Binding {
        signature: claim.signature,
        verifier_der,
        content: claim.content,
    };
    let mut best: Option<VerifiedEntry> = None;
    for entry in claim.entries {
        let verified = tlog::verify_entry(entry, &roots, &binding).map_err(|e| match e {
            tlog::EntryError::Invalid(detail) => Rejection::TlogInvalid { detail },
            tlog::EntryError::Unsupported(detail) => Rejection::Unsupported { detail },
        })?;
        if let Some(v) = verified
            && best
                .as_ref()
                .is_none_or(|b| b.integrated_time.is_none() && v.integrated_time.is_some())
        {
            best = Some(v);
        }
    }
    Ok(best)
}
