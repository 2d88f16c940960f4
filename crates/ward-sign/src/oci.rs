//! The OCI shapes signatures travel in: descriptors, blobs, and the signature
//! manifests cosign reads (tag scheme `sha256-<hex>.sig` and OCI 1.1 referrers).
//!
//! This module only builds and reads bytes; pushing and fetching them is the
//! registry client's job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ward_core::Digest;

use crate::model::ModelFiles;
use crate::verify::{Evidence, Rejection};

/// OCI image manifest media type.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type (cosign's tag-scheme manifests use it for `{}`).
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// OCI 1.1 empty descriptor media type.
pub const OCI_EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the empty JSON object both configs above carry.
pub const EMPTY_JSON: &[u8] = b"{}";
/// Layer media type of a cosign simple-signing payload.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// `artifactType` of a cosign signature stored as an OCI 1.1 referrer.
pub const COSIGN_SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Media type of a v0.3 sigstore bundle (layer and `artifactType`).
pub const SIGSTORE_BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Most layers read from one signature manifest.
pub const SIGNATURE_LAYERS_MAX: usize = 256;
/// The layer annotation naming the file a layer holds.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// Its sha256.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Annotations (cosign puts the signature here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Artifact type, for descriptors of artifact manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// Bytes together with the descriptor that names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The descriptor (digest and size computed from `bytes`).
    pub descriptor: Descriptor,
    /// The content.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Wraps `bytes` with a descriptor of `media_type`.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        Blob {
            descriptor: Descriptor {
                media_type: media_type.to_owned(),
                digest: Digest::of(&bytes),
                size: bytes.len() as u64,
                annotations: BTreeMap::new(),
                artifact_type: None,
            },
            bytes,
        }
    }
}

/// An OCI image manifest, as written for signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`OCI_MANIFEST_MEDIA_TYPE`].
    pub media_type: String,
    /// Set for OCI 1.1 artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config descriptor.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// What this manifest refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// Serializes to a [`Blob`] of [`OCI_MANIFEST_MEDIA_TYPE`], carrying the
    /// artifact type on the descriptor as the referrers API lists it.
    pub fn to_blob(&self) -> Blob {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let mut blob = Blob::new(OCI_MANIFEST_MEDIA_TYPE, bytes);
        blob.descriptor.artifact_type = self.artifact_type.clone();
        blob
    }
}

/// Whether a referrer of this `artifactType` may hold signatures: cosign's
/// signature type, any sigstore bundle version (`...bundle.v0.3+json`,
/// `...bundle+json;version=0.3`), or Ward's RSA-PSS type.
pub fn is_signature_artifact_type(artifact_type: &str) -> bool {
    artifact_type == COSIGN_SIGNATURE_ARTIFACT_TYPE
        || artifact_type == crate::pss::RSA_PSS_SIGNATURE_MEDIA_TYPE
        || artifact_type.starts_with("application/vnd.dev.sigstore.bundle")
}

/// A signature stored as an OCI 1.1 referrer of `subject`: one layer holding
/// the signature, an empty config, and `artifactType` set to the layer's media
/// type (what `oras attach` and `cosign attach` write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureReferrer {
    /// The signature blob (a sigstore bundle, or a raw RSA-PSS signature).
    pub signature: Blob,
    /// The config blob (the OCI empty descriptor, `{}`).
    pub config: Blob,
    /// The referrer manifest.
    pub manifest: Blob,
}

/// Wraps `signature` (of `media_type`) as a referrer of `subject`.
pub fn signature_referrer(
    media_type: &str,
    signature: Vec<u8>,
    subject: &Descriptor,
) -> SignatureReferrer {
    let signature = Blob::new(media_type, signature);
    let config = Blob::new(OCI_EMPTY_MEDIA_TYPE, EMPTY_JSON.to_vec());
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(media_type.to_owned()),
        config: config.descriptor.clone(),
        layers: vec![signature.descriptor.clone()],
        subject: Some(Descriptor {
            media_type: subject.media_type.clone(),
            digest: subject.digest,
            size: subject.size,
            annotations: BTreeMap::new(),
            artifact_type: None,
        }),
        annotations: BTreeMap::new(),
    }
    .to_blob();
    SignatureReferrer {
        signature,
        config,
        manifest,
    }
}

/// The tag cosign stores signatures of `digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// Which format a signature layer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// A cosign simple-signing payload (signature in the annotations).
    CosignSimpleSigning,
    /// A sigstore bundle.
    SigstoreBundle,
    /// A raw RSA-PSS signature in the mission's scheme.
    RsaPss,
}

/// A layer of a signature manifest that carries a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The layer descriptor (fetch its blob by digest).
    pub descriptor: Descriptor,
    /// What it holds.
    pub kind: LayerKind,
}

impl SignatureLayer {
    /// Turns the fetched blob into evidence, after checking it is the blob the
    /// descriptor names (a mismatch means the store returned the wrong bytes).
    pub fn evidence(&self, blob: Vec<u8>) -> Result<Evidence, Rejection> {
        let digest = Digest::of(&blob);
        if digest != self.descriptor.digest {
            return Err(Rejection::Malformed {
                detail: format!(
                    "blob {digest} is not the layer's {}",
                    self.descriptor.digest
                ),
            });
        }
        Ok(match self.kind {
            LayerKind::CosignSimpleSigning => Evidence::CosignLayer {
                payload: blob,
                annotations: self.descriptor.annotations.clone(),
            },
            LayerKind::SigstoreBundle => Evidence::SigstoreBundle { json: blob },
            LayerKind::RsaPss => Evidence::RsaPss { signature: blob },
        })
    }
}

/// What [`signature_layers`] found: usable layers plus what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureLayers {
    /// Layers that carry a signature.
    pub layers: Vec<SignatureLayer>,
    /// Layers that could not be read, and why.
    pub problems: Vec<String>,
}

/// The signature layers of a signature manifest (tag scheme or referrer).
/// Layers of other media types are skipped; unreadable ones are reported.
pub fn signature_layers(manifest_json: &[u8]) -> Result<SignatureLayers, Rejection> {
    let manifest: Value =
        serde_json::from_slice(manifest_json).map_err(|e| Rejection::Malformed {
            detail: format!("signature manifest is not JSON: {e}"),
        })?;
    let layers = manifest["layers"]
        .as_array()
        .ok_or_else(|| Rejection::Malformed {
            detail: "signature manifest has no layers".into(),
        })?;
    let mut found = SignatureLayers::default();
    for (index, layer) in layers.iter().enumerate() {
        if index == SIGNATURE_LAYERS_MAX {
            found.problems.push(format!(
                "layers after the first {SIGNATURE_LAYERS_MAX} were not read"
            ));
            break;
        }
        match serde_json::from_value::<Descriptor>(layer.clone()) {
            Ok(descriptor) => {
                let kind = match descriptor.media_type.as_str() {
                    SIMPLE_SIGNING_MEDIA_TYPE => LayerKind::CosignSimpleSigning,
                    SIGSTORE_BUNDLE_MEDIA_TYPE => LayerKind::SigstoreBundle,
                    crate::pss::RSA_PSS_SIGNATURE_MEDIA_TYPE => LayerKind::RsaPss,
                    _ => continue,
                };
                found.layers.push(SignatureLayer { descriptor, kind });
            }
            Err(e) => found.problems.push(format!("layer {index}: {e}")),
        }
    }
    Ok(found)
}

/// The files of a model stored one file per layer (as `oras push` and the
/// model-packaging conventions do): the `org.opencontainers.image.title`
/// annotation names the file and the layer digest is its sha256. Only valid for
/// uncompressed file layers; layers without a usable title are reported.
pub fn model_files(manifest_json: &[u8], files_max: usize) -> Result<ModelFiles, Rejection> {
    let manifest: Value =
        serde_json::from_slice(manifest_json).map_err(|e| Rejection::Malformed {
            detail: format!("model manifest is not JSON: {e}"),
        })?;
    let layers = manifest["layers"]
        .as_array()
        .ok_or_else(|| Rejection::Malformed {
            detail: "model manifest has no layers".into(),
        })?;
    let mut files = ModelFiles::default();
    for (index, layer) in layers.iter().enumerate() {
        if index == files_max {
            files
                .problems
                .push(format!("layers after the first {files_max} were not read"));
            break;
        }
        let title = layer["annotations"][TITLE_ANNOTATION].as_str();
        let digest = layer["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok());
        match (title, digest) {
            (Some(title), Some(digest)) => {
                if files.files.insert(title.to_owned(), digest).is_some() {
                    files
                        .problems
                        .push(format!("{title}: more than one layer has this title"));
                }
            }
            (None, _) => files
                .problems
                .push(format!("layer {index}: no {TITLE_ANNOTATION} annotation")),
            (Some(title), None) => files
                .problems
                .push(format!("{title}: layer digest is not sha256")),
        }
    }
    Ok(files)
}
