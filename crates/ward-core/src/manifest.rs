//! Manifest parsing and validation.
//!
//! Ward stores manifests byte-exact and never re-serialises them; this module
//! only reads the fields the registry needs (what the manifest references, its
//! subject, its artifact type) and refuses documents that are not manifests.
//! Unknown fields are ignored so custom fields round-trip untouched.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::media;

/// A content descriptor as it appears in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Artifact type, for descriptors of artifacts.
    #[serde(rename = "artifactType", skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations copied from the referenced manifest.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The broad shape of a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image (or artifact) manifest: a config and layers.
    Image,
    /// An index (or Docker manifest list): child manifests.
    Index,
}

/// What a stored manifest points at, and how strictly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestRef {
    /// The referenced digest.
    pub digest: Digest,
    /// Whether it names a blob or another manifest.
    pub target: RefTarget,
    /// The size the descriptor declares (the stored content must match it).
    pub size: u64,
}

/// The kind of thing a manifest reference names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefTarget {
    /// A blob that must be present in the repository.
    Blob,
    /// A manifest that must be present in the repository.
    Manifest,
    /// A layer that by design is not in the registry (non-distributable,
    /// foreign): recorded, never required.
    External,
}

/// The registry's view of a parsed manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedManifest {
    /// The media type the manifest is stored and served as.
    pub media_type: String,
    /// Image or index.
    pub kind: ManifestKind,
    /// The artifact type as the referrers API reports it: `artifactType`, else
    /// for image manifests the config's media type, else none.
    pub artifact_type: Option<String>,
    /// The manifest this one refers to, if any.
    pub subject: Option<Descriptor>,
    /// Top-level annotations.
    pub annotations: BTreeMap<String, String>,
    /// Every blob and manifest referenced (config, layers, children).
    pub references: Vec<ManifestRef>,
}

/// Why bytes were refused as a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not valid JSON, or the wrong JSON shape.
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Json(String),
    /// A media type Ward does not accept as a manifest.
    #[error(
        "unsupported manifest media type {0:?}: Ward accepts OCI image manifests and indexes and \
         Docker schema 2 manifests and manifest lists"
    )]
    UnsupportedMediaType(String),
    /// The document's `mediaType` contradicts the request's Content-Type.
    #[error("manifest mediaType {field:?} does not match the Content-Type {header:?}")]
    MediaTypeMismatch {
        /// The field in the document.
        field: String,
        /// The request header.
        header: String,
    },
    /// `schemaVersion` is missing or not 2.
    #[error("manifest schemaVersion must be 2")]
    SchemaVersion,
    /// A required field is missing.
    #[error("manifest is missing the required field {0:?}")]
    Missing(&'static str),
    /// A descriptor is malformed.
    #[error("descriptor {path} is invalid: {reason}")]
    Descriptor {
        /// Where in the manifest, e.g. `layers[2]`.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Strips parameters (`; charset=...`) and whitespace from a Content-Type value.
pub fn bare_media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Parses and validates `bytes` pushed with `content_type` (which may be absent
/// or generic, in which case the document's `mediaType` or shape decides).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, ManifestError> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let media_type = effective_media_type(&raw, content_type)?;
    if raw.schema_version != Some(2) {
        return Err(ManifestError::SchemaVersion);
    }
    let kind = match media_type.as_str() {
        media::OCI_MANIFEST | media::DOCKER_MANIFEST => ManifestKind::Image,
        media::OCI_INDEX | media::DOCKER_MANIFEST_LIST => ManifestKind::Index,
        other => return Err(ManifestError::UnsupportedMediaType(other.to_owned())),
    };
    if let Some(t) = &raw.artifact_type {
        check_media_type("artifactType", t)?;
    }
    let subject = raw
        .subject
        .as_ref()
        .map(|d| descriptor("subject", d))
        .transpose()?;
    let (references, artifact_type) = match kind {
        ManifestKind::Image => image_references(&raw)?,
        ManifestKind::Index => (index_references(&raw)?, raw.artifact_type.clone()),
    };
    Ok(ParsedManifest {
        media_type,
        kind,
        artifact_type,
        subject,
        annotations: raw.annotations,
        references,
    })
}

fn effective_media_type(
    raw: &RawManifest,
    content_type: Option<&str>,
) -> Result<String, ManifestError> {
    // A specific Content-Type must name a manifest type and agree with the
    // document; a generic or missing one defers to the document.
    let header = content_type
        .map(bare_media_type)
        .filter(|t| !t.is_empty() && !media::is_generic(t));
    match (header, &raw.media_type) {
        (Some(h), Some(f)) if h != f => Err(ManifestError::MediaTypeMismatch {
            field: f.clone(),
            header: h.to_owned(),
        }),
        (Some(h), _) if !media::is_manifest(h) => {
            Err(ManifestError::UnsupportedMediaType(h.to_owned()))
        }
        (Some(h), _) => Ok(h.to_owned()),
        (None, Some(f)) => Ok(f.clone()),
        (None, None) if raw.manifests.is_some() => Ok(media::OCI_INDEX.to_owned()),
        (None, None) => Ok(media::OCI_MANIFEST.to_owned()),
    }
}

fn image_references(
    raw: &RawManifest,
) -> Result<(Vec<ManifestRef>, Option<String>), ManifestError> {
    let config = raw
        .config
        .as_ref()
        .ok_or(ManifestError::Missing("config"))?;
    let layers = raw
        .layers
        .as_ref()
        .ok_or(ManifestError::Missing("layers"))?;
    let config = descriptor("config", config)?;
    let mut refs = vec![ManifestRef {
        digest: config.digest,
        target: RefTarget::Blob,
        size: config.size,
    }];
    for (i, layer) in layers.iter().enumerate() {
        let d = descriptor(&format!("layers[{i}]"), layer)?;
        let external = media::is_non_distributable(&d.media_type);
        refs.push(ManifestRef {
            digest: d.digest,
            target: if external {
                RefTarget::External
            } else {
                RefTarget::Blob
            },
            size: d.size,
        });
    }
    let artifact_type = raw.artifact_type.clone().or(Some(config.media_type));
    Ok((refs, artifact_type))
}

fn index_references(raw: &RawManifest) -> Result<Vec<ManifestRef>, ManifestError> {
    let children = raw
        .manifests
        .as_ref()
        .ok_or(ManifestError::Missing("manifests"))?;
    children
        .iter()
        .enumerate()
        .map(|(i, child)| {
            let d = descriptor(&format!("manifests[{i}]"), child)?;
            Ok(ManifestRef {
                digest: d.digest,
                target: RefTarget::Manifest,
                size: d.size,
            })
        })
        .collect()
}

fn descriptor(path: &str, raw: &RawDescriptor) -> Result<Descriptor, ManifestError> {
    let bad = |reason: String| ManifestError::Descriptor {
        path: path.to_owned(),
        reason,
    };
    let media_type = raw
        .media_type
        .clone()
        .ok_or_else(|| bad("mediaType is missing".into()))?;
    check_media_type(path, &media_type)?;
    let digest = raw
        .digest
        .as_deref()
        .ok_or_else(|| bad("digest is missing".into()))?
        .parse::<Digest>()
        .map_err(|e| bad(e.to_string()))?;
    let size = raw.size.ok_or_else(|| bad("size is missing".into()))?;
    let size = u64::try_from(size).map_err(|_| bad(format!("size {size} is negative")))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type: raw.artifact_type.clone(),
        annotations: raw.annotations.clone(),
    })
}

/// RFC 6838 `type/subtype`, loosely: two non-empty halves of printable ASCII.
fn check_media_type(path: &str, t: &str) -> Result<(), ManifestError> {
    let ok = t.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b',')
    });
    if ok {
        Ok(())
    } else {
        Err(ManifestError::Descriptor {
            path: path.to_owned(),
            reason: format!("media type {t:?} is not of the form type/subtype"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":5}}]{extra}}}"#,
            d(1),
            d(2)
        )
    }

    #[test]
    fn image_manifest_references_config_and_layers() {
        let m = parse(image("").as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(
            m.references.iter().map(|r| r.digest).collect::<Vec<_>>(),
            vec![d(1), d(2)]
        );
        assert_eq!(m.artifact_type.as_deref(), Some(media::OCI_CONFIG));
        assert!(m.subject.is_none());
    }

    #[test]
    fn artifact_with_subject_and_custom_fields() {
        let extra = format!(
            r#","artifactType":"application/vnd.example.sig","subject":{{"mediaType":"{}","digest":"{}","size":9}},"custom":{{"x":1}},"annotations":{{"a":"b"}}"#,
            media::OCI_MANIFEST,
            d(3)
        );
        let m = parse(image(&extra).as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.example.sig")
        );
        assert_eq!(m.subject.unwrap().digest, d(3));
        assert_eq!(m.annotations.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn index_references_children_and_has_no_default_artifact_type() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{}","size":3}}]}}"#,
            media::OCI_INDEX,
            media::OCI_MANIFEST,
            d(4)
        );
        let m = parse(body.as_bytes(), None).unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(m.references[0].target, RefTarget::Manifest);
        assert_eq!(m.artifact_type, None);
    }

    #[test]
    fn non_distributable_layers_are_external() {
        let body = image("").replace(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        );
        let m = parse(body.as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(m.references[1].target, RefTarget::External);
    }

    #[test]
    fn refuses_what_is_not_a_manifest() {
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            ("not json".into(), None, "Json"),
            (image("").replace("\"schemaVersion\":2", "\"schemaVersion\":1"), None, "SchemaVersion"),
            (image(""), Some(media::OCI_INDEX), "MediaTypeMismatch"),
            (image("").replace("\"config\"", "\"konfig\""), None, "Missing"),
            (image("").replace("\"size\":5", "\"size\":-5"), None, "Descriptor"),
            (image("").replace(&d(2).to_string(), "sha256:xyz"), None, "Descriptor"),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}"#.into(),
                None,
                "UnsupportedMediaType",
            ),
            (r#"{"schemaVersion":2,"config":{}}"#.into(), Some("text/plain"), "UnsupportedMediaType"),
            (
                image(""),
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
                "MediaTypeMismatch",
            ),
        ];
        for (body, ct, want) in cases {
            let err = parse(body.as_bytes(), ct).unwrap_err();
            assert!(
                format!("{err:?}").starts_with(want),
                "{body}: got {err:?}, want {want}"
            );
        }
    }

    #[test]
    fn generic_content_type_falls_back_to_document() {
        let m = parse(image("").as_bytes(), Some("application/json")).unwrap();
        assert_eq!(m.media_type, media::OCI_MANIFEST);
        let no_field = image("").replace(
            r#""mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            "",
        );
        let m = parse(no_field.as_bytes(), None).unwrap();
        assert_eq!(m.media_type, media::OCI_MANIFEST);
    }
}
