//! Sigstore bundles (v0.1, v0.2, v0.3): a message signature over an artifact's
//! sha256, or a DSSE envelope around an in-toto statement, plus the
//! verification material (certificate, chain or key hint) and log entries.
//!
//! A DSSE bundle counts as a *signature* only for the statement types that mean
//! "I sign this": OpenSSF model signing v1.0 and cosign's own signing predicate.
//! Other attestations (provenance, SBOMs...) say something else and are refused.

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest as _, Sha256};

use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, pae};
use crate::encoding::b64_decode;
use crate::model;
use crate::tlog::{InclusionProof, LogEntry, SignedContent};
use crate::verify::{
    Claim, Context, Material, Rejection, SignatureFormat, Subject, TrustMaterial, Verified,
    verify_claim,
};
use crate::x509::Certificate;

/// Bundle media types Ward reads.
pub const BUNDLE_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
];
/// in-toto statement types accepted.
pub const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];
/// cosign's predicate for a plain signature expressed as a statement.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The bundle document, in protobuf-JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// One of [`BUNDLE_MEDIA_TYPES`].
    pub media_type: String,
    /// Who signed and what the logs say.
    pub verification_material: VerificationMaterial,
    /// A signature over an artifact digest...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_signature: Option<MessageSignature>,
    /// ...or a DSSE envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<Envelope>,
}

/// `verificationMaterial`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// The leaf certificate (v0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<RawBytes>,
    /// Leaf first, then the rest of the chain (v0.1, v0.2; model_signing writes it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<CertificateChain>,
    /// A key known out of band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyIdentifier>,
    /// Transparency-log entries.
    #[serde(default)]
    pub tlog_entries: Vec<TlogEntry>,
}

/// `{"rawBytes": base64}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBytes {
    /// Base64 DER.
    pub raw_bytes: String,
}

/// `x509CertificateChain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateChain {
    /// Leaf first.
    pub certificates: Vec<RawBytes>,
}

/// `publicKey`: a hint naming the key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublicKeyIdentifier {
    /// model_signing writes the sha256 hex of the PEM; Ward tries every trusted key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `messageSignature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSignature {
    /// The artifact digest.
    pub message_digest: MessageDigest,
    /// Base64 signature.
    pub signature: String,
}

/// `messageDigest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDigest {
    /// `SHA2_256`.
    pub algorithm: String,
    /// Base64 digest.
    pub digest: String,
}

/// One `tlogEntries` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlogEntry {
    /// Global log index.
    #[serde(deserialize_with = "int_or_string")]
    pub log_index: i64,
    /// `{"keyId": base64}`.
    pub log_id: LogId,
    /// Informative kind and version (the signed body is authoritative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_version: Option<serde_json::Value>,
    /// Integration time.
    #[serde(deserialize_with = "int_or_string")]
    pub integrated_time: i64,
    /// The SET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_promise: Option<InclusionPromise>,
    /// The Merkle inclusion proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<InclusionProofJson>,
    /// Base64 canonicalized body.
    pub canonicalized_body: String,
}

/// `logId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    /// Base64 log id.
    pub key_id: String,
}

/// `inclusionPromise`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionPromise {
    /// Base64 SET.
    pub signed_entry_timestamp: String,
}

/// `inclusionProof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProofJson {
    /// Index in the (sharded) tree.
    #[serde(deserialize_with = "int_or_string")]
    pub log_index: i64,
    /// Base64 root hash.
    pub root_hash: String,
    /// Tree size.
    #[serde(deserialize_with = "int_or_string")]
    pub tree_size: i64,
    /// Base64 sibling hashes.
    #[serde(default)]
    pub hashes: Vec<String>,
    /// The signed checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

/// `checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The signed note text.
    pub envelope: String,
}

/// protobuf-JSON writes int64 as strings; accept numbers too.
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Str(String),
    }
    match IntOrString::deserialize(d)? {
        IntOrString::Int(i) => Ok(i),
        IntOrString::Str(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

impl Bundle {
    /// Parses bundle JSON and checks its media type.
    pub fn from_json(json: &[u8]) -> Result<Self, Rejection> {
        let bundle: Bundle = serde_json::from_slice(json).map_err(|e| Rejection::Malformed {
            detail: format!("sigstore bundle: {e}"),
        })?;
        if !BUNDLE_MEDIA_TYPES.contains(&bundle.media_type.as_str()) {
            return Err(Rejection::Unsupported {
                detail: format!("bundle media type {:?}", bundle.media_type),
            });
        }
        Ok(bundle)
    }

    fn material(&self) -> Result<Material, Rejection> {
        let vm = &self.verification_material;
        let raw: Vec<&RawBytes> = match (&vm.certificate, &vm.x509_certificate_chain) {
            (Some(cert), None) => vec![cert],
            (None, Some(chain)) => chain.certificates.iter().collect(),
            (None, None) => return Ok(Material::TrustedKeys),
            (Some(_), Some(_)) => {
                return Err(malformed(
                    "bundle has both a certificate and a certificate chain",
                ));
            }
        };
        let chain = raw
            .iter()
            .map(|r| {
                let der =
                    b64_decode(&r.raw_bytes).map_err(|_| malformed("certificate is not base64"))?;
                Certificate::from_der(&der).map_err(|e| malformed(&e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if chain.is_empty() {
            return Err(malformed("bundle certificate chain is empty"));
        }
        Ok(Material::Certificates(chain))
    }

    fn log_entries(&self) -> Result<Vec<LogEntry>, Rejection> {
        self.verification_material
            .tlog_entries
            .iter()
            .map(log_entry)
            .collect()
    }
}

fn malformed(detail: &str) -> Rejection {
    Rejection::Malformed {
        detail: detail.to_owned(),
    }
}

fn log_entry(entry: &TlogEntry) -> Result<LogEntry, Rejection> {
    let b64 = |text: &str, what: &str| {
        b64_decode(text).map_err(|_| malformed(&format!("log entry {what} is not base64")))
    };
    let proof = match &entry.inclusion_proof {
        None => None,
        Some(p) => Some(InclusionProof {
            log_index: u64::try_from(p.log_index)
                .map_err(|_| malformed("negative inclusion proof index"))?,
            tree_size: u64::try_from(p.tree_size).map_err(|_| malformed("negative tree size"))?,
            root_hash: b64(&p.root_hash, "root hash")?,
            hashes: p
                .hashes
                .iter()
                .map(|h| b64(h, "proof hash"))
                .collect::<Result<_, _>>()?,
            checkpoint: p.checkpoint.as_ref().map(|c| c.envelope.clone()),
        }),
    };
    Ok(LogEntry {
        log_id: b64(&entry.log_id.key_id, "log id")?,
        log_index: entry.log_index,
        integrated_time: entry.integrated_time,
        body: b64(&entry.canonicalized_body, "body")?,
        signed_entry_timestamp: entry
            .inclusion_promise
            .as_ref()
            .map(|p| b64(&p.signed_entry_timestamp, "SET"))
            .transpose()?,
        inclusion_proof: proof,
    })
}

/// Verifies a bundle about `subject`.
pub(crate) fn verify(
    json: &[u8],
    subject: &Subject<'_>,
    trust: &TrustMaterial,
    ctx: &Context,
) -> Result<Verified, Rejection> {
    if json.len() > ctx.limits.bundle_bytes_max {
        return Err(malformed(&format!(
            "bundle larger than {} bytes",
            ctx.limits.bundle_bytes_max
        )));
    }
    let bundle = Bundle::from_json(json)?;
    let material = bundle.material()?;
    let entries = bundle.log_entries()?;
    match (&bundle.message_signature, &bundle.dsse_envelope) {
        (Some(message), None) => verify_message(message, material, &entries, subject, trust, ctx),
        (None, Some(envelope)) => verify_dsse(envelope, material, &entries, subject, trust, ctx),
        _ => Err(malformed(
            "bundle must hold exactly one of messageSignature and dsseEnvelope",
        )),
    }
}

fn verify_message(
    message: &MessageSignature,
    material: Material,
    entries: &[LogEntry],
    subject: &Subject<'_>,
    trust: &TrustMaterial,
    ctx: &Context,
) -> Result<Verified, Rejection> {
    if message.message_digest.algorithm != "SHA2_256" {
        return Err(Rejection::Unsupported {
            detail: format!(
                "message digest algorithm {:?}",
                message.message_digest.algorithm
            ),
        });
    }
    let digest: [u8; 32] = b64_decode(&message.message_digest.digest)
        .ok()
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| malformed("message digest is not 32 base64 bytes"))?;
    let signature =
        b64_decode(&message.signature).map_err(|_| malformed("signature is not base64"))?;
    let verified = verify_claim(
        Claim {
            format: SignatureFormat::SigstoreBundle,
            material,
            signature: &signature,
            verifies: &|key| key.verify_sha256_prehash(&digest, &signature).is_ok(),
            entries,
            content: SignedContent::Artifact(digest),
            docker_reference: None,
        },
        trust,
        ctx,
    )?;
    let signed = ward_core::Digest::from_bytes(digest);
    match subject.digest {
        Some(expected) if expected == signed => Ok(verified),
        Some(expected) => Err(Rejection::DigestMismatch {
            expected: expected.to_string(),
            found: signed.to_string(),
        }),
        None => Err(Rejection::DigestMismatch {
            expected: "a model directory".into(),
            found: format!("a single artifact {signed}"),
        }),
    }
}

fn verify_dsse(
    envelope: &Envelope,
    material: Material,
    entries: &[LogEntry],
    subject: &Subject<'_>,
    trust: &TrustMaterial,
    ctx: &Context,
) -> Result<Verified, Rejection> {
    let [signature] = envelope.signatures.as_slice() else {
        return Err(malformed(
            "a bundle's DSSE envelope must carry exactly one signature",
        ));
    };
    let payload =
        b64_decode(&envelope.payload).map_err(|_| malformed("DSSE payload is not base64"))?;
    let signature =
        b64_decode(&signature.sig).map_err(|_| malformed("DSSE signature is not base64"))?;
    let signed = pae(&envelope.payload_type, &payload);
    let mut verified = verify_claim(
        Claim {
            format: SignatureFormat::SigstoreBundle,
            material,
            signature: &signature,
            verifies: &|key| key.verify(&signed, &signature).is_ok(),
            entries,
            content: SignedContent::DssePayload(Sha256::digest(&payload).into()),
            docker_reference: None,
        },
        trust,
        ctx,
    )?;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Rejection::Unsupported {
            detail: format!("DSSE payload type {:?}", envelope.payload_type),
        });
    }
    let statement: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| malformed(&format!("in-toto statement: {e}")))?;
    let statement_type = statement["_type"].as_str().unwrap_or_default();
    if !STATEMENT_TYPES.contains(&statement_type) {
        return Err(Rejection::Unsupported {
            detail: format!("in-toto statement type {statement_type:?}"),
        });
    }
    match statement["predicateType"].as_str().unwrap_or_default() {
        model::PREDICATE_TYPE => {
            let parsed = model::ModelStatement::from_json(&statement, &ctx.limits)?;
            parsed.check(subject, &ctx.limits)?;
            verified.format = SignatureFormat::ModelSigning;
            Ok(verified)
        }
        COSIGN_SIGN_PREDICATE => {
            check_statement_subject(&statement, subject)?;
            Ok(verified)
        }
        other => Err(Rejection::Unsupported {
            detail: format!("in-toto predicate {other:?} is an attestation, not a signature"),
        }),
    }
}

/// For statements about an artifact: one of its subjects must carry our digest.
fn check_statement_subject(
    statement: &serde_json::Value,
    subject: &Subject<'_>,
) -> Result<(), Rejection> {
    let expected = subject.digest.ok_or_else(|| Rejection::Unsupported {
        detail: "this statement is about an artifact digest, and no digest was given".into(),
    })?;
    let subjects = statement["subject"].as_array().cloned().unwrap_or_default();
    let listed: Vec<String> = subjects
        .iter()
        .filter_map(|s| s["digest"]["sha256"].as_str().map(str::to_owned))
        .collect();
    if listed.iter().any(|hex| *hex == expected.hex()) {
        return Ok(());
    }
    Err(Rejection::DigestMismatch {
        expected: expected.to_string(),
        found: if listed.is_empty() {
            "no sha256 subject".into()
        } else {
            listed
                .iter()
                .map(|h| format!("sha256:{h}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}
