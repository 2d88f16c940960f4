//! Repository names, tags and references, by the OCI distribution grammar.

use std::fmt;

use crate::digest::{Digest, DigestError};

/// Default upper bound on a repository name, in bytes. Many clients cap
/// `host/name` at 255, so Ward refuses longer names up front.
pub const REPOSITORY_NAME_BYTES_MAX: usize = 255;
/// Upper bound on a tag, in bytes, fixed by the spec's grammar.
pub const TAG_BYTES_MAX: usize = 128;

/// A validated repository name such as `ml/fraud-detection`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

/// A validated tag such as `v1.2` or `prod-2024`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

/// What a manifest URL names: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A mutable pointer.
    Tag(Tag),
    /// Immutable content.
    Digest(Digest),
}

/// Why a name, tag or reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The repository name breaks the grammar.
    #[error(
        "invalid repository name {0:?}: use lowercase letters and digits, path components \
         separated by '/', and '.', '_', '__' or '-' only between letters and digits"
    )]
    InvalidRepository(String),
    /// The repository name is longer than the configured limit.
    #[error("repository name is {len} bytes, above the limit of {max} bytes")]
    RepositoryTooLong {
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The tag breaks the grammar.
    #[error(
        "invalid tag {0:?}: a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', \
         and must not start with '.' or '-'"
    )]
    InvalidTag(String),
    /// The reference looks like a digest but is not a valid one.
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
}

impl RepositoryName {
    /// Validates `s` against the OCI name grammar and `bytes_max`.
    pub fn parse(s: &str, bytes_max: usize) -> Result<Self, NameError> {
        if s.len() > bytes_max {
            return Err(NameError::RepositoryTooLong {
                len: s.len(),
                max: bytes_max,
            });
        }
        if s.is_empty() || !s.split('/').all(valid_path_component) {
            return Err(NameError::InvalidRepository(s.to_owned()));
        }
        Ok(RepositoryName(s.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let dashes = sep.bytes().all(|x| x == b'-');
        if !(sep == "." || sep == "_" || sep == "__" || dashes) {
            return false;
        }
    }
    true
}

impl Tag {
    /// Validates `s` against `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let head_ok = b
            .first()
            .is_some_and(|&x| x.is_ascii_alphanumeric() || x == b'_');
        let rest_ok = b
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'));
        if !head_ok || !rest_ok || b.len() > TAG_BYTES_MAX {
            return Err(NameError::InvalidTag(s.to_owned()));
        }
        Ok(Tag(s.to_owned()))
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Reference {
    /// A reference containing ':' is offered as a digest and must parse as one;
    /// anything else must be a valid tag.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(Tag::parse(s)?))
        }
    }
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}
string_newtype_impls!(RepositoryName);
string_newtype_impls!(Tag);

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// A full image reference as people type it: `host[:port]/name[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReference {
    /// Registry host and optional port.
    pub registry: String,
    /// Repository within the registry.
    pub repository: RepositoryName,
    /// Tag, when one was given.
    pub tag: Option<Tag>,
    /// Digest, when one was given; it wins over the tag for resolution.
    pub digest: Option<Digest>,
}

/// Why an image reference could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageReferenceError {
    /// No registry host in front of the repository.
    #[error(
        "reference {0:?} names no registry: write it as host[:port]/repository[:tag][@digest], \
         for example 127.0.0.1:5000/models/fraud:v5"
    )]
    MissingRegistry(String),
    /// A part of the reference is invalid.
    #[error("reference {reference:?}: {source}")]
    Invalid {
        /// The whole reference.
        reference: String,
        /// What is wrong with it.
        source: NameError,
    },
}

impl ImageReference {
    /// Parses `host[:port]/name[:tag][@digest]`; the host part is required.
    pub fn parse(s: &str) -> Result<Self, ImageReferenceError> {
        let invalid = |source| ImageReferenceError::Invalid {
            reference: s.to_owned(),
            source,
        };
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(d.parse().map_err(|e| invalid(NameError::from(e)))?),
            ),
            None => (s, None),
        };
        let Some((registry, path)) = rest.split_once('/') else {
            return Err(ImageReferenceError::MissingRegistry(s.to_owned()));
        };
        let looks_like_host =
            registry.contains('.') || registry.contains(':') || registry == "localhost";
        if !looks_like_host {
            return Err(ImageReferenceError::MissingRegistry(s.to_owned()));
        }
        // A ':' after the last '/' separates the tag.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match path[last_slash..].find(':') {
            Some(i) => {
                let split = last_slash + i;
                (
                    &path[..split],
                    Some(Tag::parse(&path[split + 1..]).map_err(invalid)?),
                )
            }
            None => (path, None),
        };
        let repository = RepositoryName::parse(name, REPOSITORY_NAME_BYTES_MAX).map_err(invalid)?;
        Ok(ImageReference {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// The reference pinned to `digest`: `host/name@digest`.
    pub fn pinned(&self, digest: &Digest) -> String {
        format!("{}/{}@{}", self.registry, self.repository, digest)
    }

    /// What to ask the registry for: the digest if given, else the tag, else `latest`.
    pub fn reference(&self) -> Reference {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Reference::Digest(*d),
            (None, Some(t)) => Reference::Tag(t.clone()),
            (None, None) => Reference::Tag(Tag("latest".to_owned())),
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name(input: &str, ok: bool) {
        let got = RepositoryName::parse(input, REPOSITORY_NAME_BYTES_MAX);
        assert_eq!(got.is_ok(), ok, "name {input:?}: {got:?}");
    }

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "foo",
            "foo.bar",
            "foo_bar",
            "foo__bar",
            "foo---bar",
            "a/b/c",
            "ml/fraud-v2",
            "0",
            "a1/b2",
        ] {
            check_name(ok, true);
        }
        for bad in [
            "",
            "Foo",
            "-foo",
            "foo-",
            "foo..bar",
            "foo/",
            "/foo",
            "foo//bar",
            "../x",
            "a/../b",
            "foo___bar",
            "foo._bar",
            "a b",
            "ä",
            "foo:bar",
            "x/.y",
        ] {
            check_name(bad, false);
        }
    }

    #[test]
    fn repository_name_length_limit() {
        let long = "a".repeat(256);
        assert_eq!(
            RepositoryName::parse(&long, REPOSITORY_NAME_BYTES_MAX),
            Err(NameError::RepositoryTooLong { len: 256, max: 255 })
        );
        assert!(RepositoryName::parse(&long[..255], REPOSITORY_NAME_BYTES_MAX).is_ok());
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(Tag::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", &"a".repeat(129), "ü"] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_with_a_colon_are_digests() {
        assert!(matches!(
            Reference::parse("sha256:baddigeststring"),
            Err(NameError::InvalidDigest(_))
        ));
        assert!(matches!(Reference::parse("v1"), Ok(Reference::Tag(_))));
    }

    type ImageCase = (
        String,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<Digest>,
    );

    #[test]
    fn image_references() {
        let d = Digest::of(b"x");
        let cases: Vec<ImageCase> = vec![
            (
                "127.0.0.1:5000/models/fraud:v5".into(),
                "127.0.0.1:5000",
                "models/fraud",
                Some("v5"),
                None,
            ),
            ("localhost/a".into(), "localhost", "a", None, None),
            (
                format!("reg.example.com/a/b@{d}"),
                "reg.example.com",
                "a/b",
                None,
                Some(d),
            ),
            (format!("h:1/a:t@{d}"), "h:1", "a", Some("t"), Some(d)),
        ];
        for (input, registry, repo, tag, digest) in cases {
            let r = ImageReference::parse(&input).unwrap();
            assert_eq!(r.registry, registry);
            assert_eq!(r.repository.as_str(), repo);
            assert_eq!(r.tag.as_ref().map(Tag::as_str), tag);
            assert_eq!(r.digest, digest);
            assert_eq!(r.to_string(), input);
        }
        assert!(matches!(
            ImageReference::parse("models/fraud:v5"),
            Err(ImageReferenceError::MissingRegistry(_))
        ));
        assert!(ImageReference::parse("h:1/Bad").is_err());
    }
}
