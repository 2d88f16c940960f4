//! Media types the registry understands.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list, schema 2.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI empty descriptor's media type (the two bytes `{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the OCI empty blob.
pub const OCI_EMPTY_BYTES: &[u8] = b"{}";
/// Generic layer type for files pushed as artifacts.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The manifest media types Ward stores, in the order it prefers them.
pub const MANIFEST_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// Whether `t` (without parameters) is a manifest type Ward stores.
pub fn is_manifest(t: &str) -> bool {
    MANIFEST_TYPES.contains(&t)
}

/// Whether `t` says nothing about the document (clients that send no real type).
pub fn is_generic(t: &str) -> bool {
    matches!(t, "application/json" | "application/octet-stream" | "*/*")
}

/// Whether a layer of type `t` is, by design, not held by the registry.
pub fn is_non_distributable(t: &str) -> bool {
    t.starts_with("application/vnd.oci.image.layer.nondistributable.")
        || t == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
}

/// Whether a manifest stored as `stored` may be served to a client whose
/// `Accept` header values are `accept`. No header, or any wildcard, accepts all.
pub fn accepts<'a>(accept: impl IntoIterator<Item = &'a str>, stored: &str) -> bool {
    let mut any = false;
    for value in accept {
        for item in value.split(',') {
            let t = item.split(';').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            any = true;
            if t == stored || t == "*/*" || t == "application/*" {
                return true;
            }
        }
    }
    !any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let cases: &[(&[&str], bool)] = &[
            (&[], true),
            (&[""], true),
            (&[OCI_MANIFEST], true),
            (&[OCI_INDEX, OCI_MANIFEST], true),
            (
                &[
                    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json;q=0.5",
                ],
                true,
            ),
            (&["*/*"], true),
            (&[DOCKER_MANIFEST], false),
            (&[OCI_INDEX], false),
        ];
        for (accept, want) in cases {
            assert_eq!(
                accepts(accept.iter().copied(), OCI_MANIFEST),
                *want,
                "{accept:?}"
            );
        }
    }
}
