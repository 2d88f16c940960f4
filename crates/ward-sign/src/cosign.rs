//! cosign "simple signing": the payload JSON naming a manifest digest, signed,
//! with the signature (and optionally a certificate, chain and Rekor bundle) in
//! the layer's annotations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use ward_core::Digest;

use crate::encoding::{b64_decode, b64_encode, hex_decode};
use crate::keys::{KeyError, PrivateKey};
use crate::oci::{
    Blob, COSIGN_SIGNATURE_ARTIFACT_TYPE, Descriptor, EMPTY_JSON, ImageManifest,
    OCI_CONFIG_MEDIA_TYPE, OCI_EMPTY_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE, signature_layers, signature_tag,
};
use crate::tlog::{LogEntry, SignedContent};
use crate::verify::{
    Claim, Context, Material, Rejection, SignatureFormat, Subject, TrustMaterial, Verified,
    verify_claim,
};
use crate::x509::Certificate;

/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Layer annotation holding the signing certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Layer annotation holding the rest of the chain (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// Layer annotation holding the Rekor bundle (SET) JSON.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The `critical.type` every simple-signing payload carries.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// The simple-signing payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The signed claims.
    pub critical: Critical,
    /// Free-form annotations (`-a key=value`), or null.
    #[serde(default)]
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The signed claims of a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    /// The image reference the signer named.
    pub identity: Identity,
    /// The manifest digest signed.
    pub image: Image,
    /// [`SIMPLE_SIGNING_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// e.g. `registry.example/team/app` (cosign 2) or with a tag (sigstore-rs).
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>` of the signed manifest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The repository path of a docker reference: registry host, tag and digest
/// removed (`127.0.0.1:5000/test/fixture:v1` -> `test/fixture`).
pub fn reference_repository(reference: &str) -> &str {
    let without_digest = reference.split_once('@').map_or(reference, |(r, _)| r);
    let without_tag = match without_digest.rfind(':') {
        Some(colon) if !without_digest[colon..].contains('/') => &without_digest[..colon],
        _ => without_digest,
    };
    match without_tag.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => without_tag,
    }
}

/// Verifies one simple-signing layer about `subject`.
pub(crate) fn verify(
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
    subject: &Subject<'_>,
    trust: &TrustMaterial,
    ctx: &Context,
) -> Result<Verified, Rejection> {
    let malformed = |detail: String| Rejection::Malformed { detail };
    if payload.len() > ctx.limits.payload_bytes_max {
        return Err(malformed(format!(
            "payload larger than {} bytes",
            ctx.limits.payload_bytes_max
        )));
    }
    let parsed: Payload = serde_json::from_slice(payload)
        .map_err(|e| malformed(format!("simple-signing payload: {e}")))?;
    let signature = annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| malformed(format!("no {SIGNATURE_ANNOTATION} annotation")))?;
    let signature = b64_decode(signature.trim())
        .map_err(|_| malformed("signature annotation is not base64".into()))?;
    let material = match annotations.get(CERTIFICATE_ANNOTATION) {
        Some(pem) => Material::Certificates(certificates(pem, annotations.get(CHAIN_ANNOTATION))?),
        None => Material::TrustedKeys,
    };
    let entries = match annotations.get(BUNDLE_ANNOTATION) {
        Some(json) => vec![rekor_bundle_entry(json)?],
        None => Vec::new(),
    };
    let verified = verify_claim(
        Claim {
            format: SignatureFormat::CosignSimpleSigning,
            material,
            signature: &signature,
            verifies: &|key| key.verify(payload, &signature).is_ok(),
            entries: &entries,
            content: SignedContent::Artifact(Sha256::digest(payload).into()),
            docker_reference: Some(parsed.critical.identity.docker_reference.clone()),
        },
        trust,
        ctx,
    )?;
    // Meaning is checked only once the bytes are known to be genuine.
    if parsed.critical.kind != SIMPLE_SIGNING_TYPE {
        return Err(Rejection::Unsupported {
            detail: format!("payload type {:?}", parsed.critical.kind),
        });
    }
    check_digest(&parsed.critical.image.docker_manifest_digest, subject)?;
    Ok(verified)
}

fn check_digest(signed: &str, subject: &Subject<'_>) -> Result<(), Rejection> {
    let expected = subject.digest.ok_or_else(|| Rejection::Unsupported {
        detail: "a cosign signature covers a manifest digest, and no digest was given".into(),
    })?;
    if signed.parse::<Digest>().ok() != Some(expected) {
        return Err(Rejection::DigestMismatch {
            expected: expected.to_string(),
            found: signed.to_owned(),
        });
    }
    Ok(())
}

fn certificates(leaf_pem: &str, chain_pem: Option<&String>) -> Result<Vec<Certificate>, Rejection> {
    let malformed = |e: crate::x509::CertError| Rejection::Malformed {
        detail: format!("certificate annotation: {e}"),
    };
    let mut chain = Certificate::from_pem_chain(leaf_pem).map_err(malformed)?;
    chain.truncate(1);
    if let Some(rest) = chain_pem {
        chain.extend(Certificate::from_pem_chain(rest).map_err(malformed)?);
    }
    Ok(chain)
}

/// The `dev.sigstore.cosign/bundle` annotation: a Rekor SET and the entry it covers.
#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

fn rekor_bundle_entry(json: &str) -> Result<LogEntry, Rejection> {
    let malformed = |detail: &str| Rejection::Malformed {
        detail: format!("{BUNDLE_ANNOTATION} annotation: {detail}"),
    };
    let bundle: RekorBundle = serde_json::from_str(json).map_err(|e| malformed(&e.to_string()))?;
    Ok(LogEntry {
        log_id: hex_decode(&bundle.payload.log_id).ok_or_else(|| malformed("logID is not hex"))?,
        log_index: bundle.payload.log_index,
        integrated_time: bundle.payload.integrated_time,
        body: b64_decode(&bundle.payload.body).map_err(|_| malformed("body is not base64"))?,
        signed_entry_timestamp: Some(
            b64_decode(&bundle.signed_entry_timestamp)
                .map_err(|_| malformed("SignedEntryTimestamp is not base64"))?,
        ),
        inclusion_proof: None,
    })
}

/// A cosign signature ready to push, in both storage forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignSignature {
    /// The payload blob (push as a blob).
    pub payload: Blob,
    /// The base64 signature (also in `layer`'s annotations).
    pub signature_b64: String,
    /// The payload's layer descriptor, annotations included.
    pub layer: Descriptor,
    /// Tag for the tag scheme: `sha256-<hex>.sig`.
    pub tag: String,
    /// Config blob of the tag-scheme manifest (`{}`).
    pub tag_config: Blob,
    /// The tag-scheme manifest holding just this signature (see [`tag_manifest_with`]
    /// to add it to an existing one).
    pub tag_manifest: Blob,
    /// Config blob of the referrer manifest (the OCI empty descriptor, `{}`).
    pub referrer_config: Blob,
    /// The OCI 1.1 referrer manifest (`subject` + `artifactType`).
    pub referrer_manifest: Blob,
}

/// The payload bytes cosign would sign for `digest` under `docker_reference`.
pub fn payload(digest: &Digest, docker_reference: &str) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_owned(),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: SIMPLE_SIGNING_TYPE.to_owned(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// Signs the manifest `subject` (its descriptor as the registry serves it) as
/// cosign does, producing both the tag-scheme and the referrer form.
pub fn sign(
    subject: &Descriptor,
    docker_reference: &str,
    key: &PrivateKey,
) -> Result<CosignSignature, KeyError> {
    let tag = signature_tag(&subject.digest);
    let payload = Blob::new(
        SIMPLE_SIGNING_MEDIA_TYPE,
        payload(&subject.digest, docker_reference),
    );
    let signature_b64 = b64_encode(&key.sign(&payload.bytes)?);
    let mut layer = payload.descriptor.clone();
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.into(), signature_b64.clone());

    let tag_config = Blob::new(OCI_CONFIG_MEDIA_TYPE, EMPTY_JSON.to_vec());
    let tag_manifest = manifest(&tag_config, vec![layer.clone()], None, None);
    let referrer_config = Blob::new(OCI_EMPTY_MEDIA_TYPE, EMPTY_JSON.to_vec());
    let subject = Descriptor {
        media_type: subject.media_type.clone(),
        digest: subject.digest,
        size: subject.size,
        annotations: BTreeMap::new(),
        artifact_type: None,
    };
    let referrer_manifest = manifest(
        &referrer_config,
        vec![layer.clone()],
        Some(subject),
        Some(COSIGN_SIGNATURE_ARTIFACT_TYPE.into()),
    );
    Ok(CosignSignature {
        tag,
        payload,
        signature_b64,
        layer,
        tag_config,
        tag_manifest,
        referrer_config,
        referrer_manifest,
    })
}

fn manifest(
    config: &Blob,
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
) -> Blob {
    ImageManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST_MEDIA_TYPE.into(),
        artifact_type,
        config: config.descriptor.clone(),
        layers,
        subject,
        annotations: BTreeMap::new(),
    }
    .to_blob()
}

/// The tag-scheme manifest with `layer` added to the signatures already in
/// `existing` (cosign keeps every signature of a digest under one tag). A layer
/// already present is not added twice.
pub fn tag_manifest_with(existing: Option<&[u8]>, layer: &Descriptor) -> Result<Blob, Rejection> {
    let mut layers = match existing {
        Some(bytes) => signature_layers(bytes)?
            .layers
            .into_iter()
            .map(|l| l.descriptor)
            .collect(),
        None => Vec::new(),
    };
    if !layers.contains(layer) {
        layers.push(layer.clone());
    }
    let config = Blob::new(OCI_CONFIG_MEDIA_TYPE, EMPTY_JSON.to_vec());
    Ok(manifest(&config, layers, None, None))
}
