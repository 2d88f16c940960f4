//! Who is asking ([`Principal`]) and what the repository says about itself ([`Labels`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The kind of an authenticated (or not) caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PrincipalKind {
    /// A person with a password (and possibly personal access tokens).
    User,
    /// A robot account used by CI/CD or an inference service.
    Robot,
    /// No credentials presented. Gets nothing unless a binding or statement names `Anonymous`.
    Anonymous,
}

impl PrincipalKind {
    /// The value of the `ward:PrincipalType` condition key: `User`, `Robot` or `Anonymous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Robot => "Robot",
            Self::Anonymous => "Anonymous",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller of a request, as established by authentication.
///
/// Names are compared exactly (case-sensitive); the server normalises
/// usernames before building a `Principal`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// User, robot or anonymous.
    pub kind: PrincipalKind,
    /// Username or robot name; empty for anonymous callers.
    pub name: String,
    /// Groups the principal belongs to (ignored for anonymous callers).
    pub groups: Vec<String>,
}

impl Principal {
    /// A local user with its groups.
    pub fn user(name: impl Into<String>, groups: Vec<String>) -> Self {
        Self {
            kind: PrincipalKind::User,
            name: name.into(),
            groups,
        }
    }

    /// A robot account.
    pub fn robot(name: impl Into<String>) -> Self {
        Self {
            kind: PrincipalKind::Robot,
            name: name.into(),
            groups: Vec::new(),
        }
    }

    /// A caller without credentials.
    pub fn anonymous() -> Self {
        Self {
            kind: PrincipalKind::Anonymous,
            name: String::new(),
            groups: Vec::new(),
        }
    }

    /// Groups that count for authorization: none for anonymous callers, whatever
    /// was put in `groups`.
    pub(crate) fn effective_groups(&self) -> &[String] {
        match self.kind {
            PrincipalKind::Anonymous => &[],
            _ => &self.groups,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PrincipalKind::User => write!(f, "user:{}", self.name),
            PrincipalKind::Robot => write!(f, "robot:{}", self.name),
            PrincipalKind::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// Limits on repository labels.
#[derive(Clone, Debug)]
pub struct LabelLimits {
    /// Most labels on one repository.
    pub labels_max: usize,
    /// Longest label key, in bytes.
    pub key_bytes_max: usize,
    /// Longest label value, in bytes.
    pub value_bytes_max: usize,
}

impl Default for LabelLimits {
    fn default() -> Self {
        Self {
            labels_max: 64,
            key_bytes_max: 128,
            value_bytes_max: 256,
        }
    }
}

/// Why a set of labels was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// More labels than allowed.
    #[error("{count} labels, more than the limit of {max}")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Key empty, too long or with a character outside `[A-Za-z0-9._/:-]`.
    #[error(
        "label key {key:?} is invalid: use 1 to {max} of letters, digits, '.', '_', '-', '/', ':'"
    )]
    BadKey {
        /// The key.
        key: String,
        /// The key length limit.
        max: usize,
    },
    /// Value too long or with control characters.
    #[error("value of label {key:?} is invalid: at most {max} bytes, no control characters")]
    BadValue {
        /// The key whose value is wrong.
        key: String,
        /// The value length limit.
        max: usize,
    },
    /// Two keys that differ only in case (`Environment` and `environment`).
    #[error("labels {first:?} and {second:?} differ only in case; label keys are case-insensitive")]
    DuplicateKey {
        /// One key.
        first: String,
        /// The other.
        second: String,
    },
}

/// A repository's labels (`Environment=production`, `team=fraud`).
///
/// Keys are matched case-insensitively, as AWS does for `aws:ResourceTag/<key>`;
/// values are compared exactly. Keys that differ only in case are refused so
/// that lookups are never ambiguous.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

/// The empty label set, for requests about registry-wide resources.
pub static NO_LABELS: Labels = Labels(BTreeMap::new());

impl Labels {
    /// Validates labels with the default limits.
    pub fn new<K, V>(labels: impl IntoIterator<Item = (K, V)>) -> Result<Self, LabelError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self::with_limits(labels, &LabelLimits::default())
    }

    /// Validates labels against `limits`.
    pub fn with_limits<K, V>(
        labels: impl IntoIterator<Item = (K, V)>,
        limits: &LabelLimits,
    ) -> Result<Self, LabelError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (key, value) in labels {
            let (key, value) = (key.into(), value.into());
            validate_label(&key, &value, limits)?;
            if let Some(existing) = map.keys().find(|k: &&String| k.eq_ignore_ascii_case(&key)) {
                return Err(LabelError::DuplicateKey {
                    first: existing.clone(),
                    second: key,
                });
            }
            map.insert(key, value);
            if map.len() > limits.labels_max {
                return Err(LabelError::TooMany {
                    count: map.len(),
                    max: limits.labels_max,
                });
            }
        }
        Ok(Self(map))
    }

    /// The value of `key`, looked up case-insensitively.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// All labels, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every `(key, value)` in `required` is present here.
    pub fn contains_all<'a>(&self, required: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        required
            .into_iter()
            .all(|(k, v)| self.get(k).is_some_and(|have| have == v))
    }
}

pub(crate) fn is_valid_label_key(key: &str, bytes_max: usize) -> bool {
    !key.is_empty()
        && key.len() <= bytes_max
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':'))
}

fn validate_label(key: &str, value: &str, limits: &LabelLimits) -> Result<(), LabelError> {
    if !is_valid_label_key(key, limits.key_bytes_max) {
        return Err(LabelError::BadKey {
            key: key.to_owned(),
            max: limits.key_bytes_max,
        });
    }
    if value.len() > limits.value_bytes_max || value.chars().any(char::is_control) {
        return Err(LabelError::BadValue {
            key: key.to_owned(),
            max: limits.value_bytes_max,
        });
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Self::new(map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_on_keys_only() {
        let labels = Labels::new([("Environment", "production"), ("team", "fraud")]).unwrap();
        let cases = [
            ("Environment", Some("production")),
            ("environment", Some("production")),
            ("ENVIRONMENT", Some("production")),
            ("TEAM", Some("fraud")),
            ("owner", None),
        ];
        for (key, want) in cases {
            assert_eq!(labels.get(key), want, "{key}");
        }
        assert!(labels.contains_all([("environment", "production")]));
        assert!(!labels.contains_all([("environment", "Production")]));
    }

    #[test]
    fn validation_table() {
        let long_value = "v".repeat(257);
        let cases: Vec<(Vec<(&str, &str)>, LabelError)> = vec![
            (
                vec![("", "x")],
                LabelError::BadKey {
                    key: String::new(),
                    max: 128,
                },
            ),
            (
                vec![("has space", "x")],
                LabelError::BadKey {
                    key: "has space".into(),
                    max: 128,
                },
            ),
            (
                vec![("k", &long_value)],
                LabelError::BadValue {
                    key: "k".into(),
                    max: 256,
                },
            ),
            (
                vec![("k", "line\nbreak")],
                LabelError::BadValue {
                    key: "k".into(),
                    max: 256,
                },
            ),
            (
                vec![("Env", "a"), ("env", "b")],
                LabelError::DuplicateKey {
                    first: "Env".into(),
                    second: "env".into(),
                },
            ),
        ];
        for (labels, want) in cases {
            assert_eq!(Labels::new(labels.clone()).unwrap_err(), want, "{labels:?}");
        }
        let many: Vec<(String, String)> = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(
            Labels::new(many).unwrap_err(),
            LabelError::TooMany { count: 65, max: 64 }
        );
    }

    #[test]
    fn serde_validates() {
        let labels: Labels = serde_json::from_str(r#"{"Environment":"production"}"#).unwrap();
        assert_eq!(labels.get("environment"), Some("production"));
        assert_eq!(
            serde_json::to_string(&labels).unwrap(),
            r#"{"Environment":"production"}"#
        );
        let err = serde_json::from_str::<Labels>(r#"{"a":"1","A":"2"}"#).unwrap_err();
        assert!(err.to_string().contains("differ only in case"), "{err}");
    }

    #[test]
    fn anonymous_has_no_effective_groups() {
        let mut p = Principal::anonymous();
        p.groups.push("admins".into());
        assert!(p.effective_groups().is_empty());
        let u = Principal::user("alice", vec!["ml".into()]);
        assert_eq!(u.effective_groups(), ["ml".to_owned()]);
        assert_eq!(u.to_string(), "user:alice");
        assert_eq!(Principal::robot("ci").to_string(), "robot:ci");
    }
}
