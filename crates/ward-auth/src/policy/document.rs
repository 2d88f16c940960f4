//! The JSON shape of a policy document, as written by people (IAM style).
//!
//! These types only check syntax: field names (unknown ones are refused),
//! JSON types, duplicate keys. Meaning (known actions, valid CIDRs, dates...)
//! is checked when a [`super::Policy`] is built from a document, which reports
//! every problem at once.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Allow or Deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    /// Grants, unless some Deny applies.
    Allow,
    /// Refuses, whatever grants.
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// A value or a list of values: IAM accepts `"Action": "x"` and `"Action": ["x", "y"]`.
/// Serialises back in the shape it was read in.
#[derive(Clone, Debug, PartialEq)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list (possibly empty, which validation refuses).
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

impl<T: Serialize> Serialize for OneOrMany<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OneOrMany::One(v) => v.serialize(s),
            OneOrMany::Many(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                v.iter().try_for_each(|x| seq.serialize_element(x))?;
                seq.end()
            }
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(OneOrMany::Many(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON object whose keys must be unique, kept in document order.
///
/// `serde_json` silently keeps the last of two equal keys; in a policy that
/// would let `{"StringEquals": {...}, "StringEquals": {...}}` hide a
/// condition from a reviewer, so duplicates are refused.
#[derive(Clone, Debug, PartialEq)]
pub struct UniqueMap<V>(pub Vec<(String, V)>);

impl<V: Serialize> Serialize for UniqueMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        self.0
            .iter()
            .try_for_each(|(k, v)| map.serialize_entry(k, v))?;
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
                    }
                    let value = map.next_value()?;
                    out.push((key, value));
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

/// One value in a condition: a string, a boolean or a number, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum ConditionValue {
    /// `"production"`, `"10.0.0.0/8"`, `"2026-01-01T00:00:00Z"`.
    String(String),
    /// `true` (for `Bool` and `Null`).
    Bool(bool),
    /// An integer (epoch seconds for date operators).
    Integer(i64),
}

impl Serialize for ConditionValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ConditionValue::String(v) => s.serialize_str(v),
            ConditionValue::Bool(v) => s.serialize_bool(*v),
            ConditionValue::Integer(v) => s.serialize_i64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for ConditionValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl Visitor<'_> for Vis {
            type Value = ConditionValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a boolean or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ConditionValue::String(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ConditionValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ConditionValue::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(ConditionValue::Integer)
                    .map_err(|_| E::custom("integer out of range"))
            }
        }
        d.deserialize_any(Vis)
    }
}

impl fmt::Display for ConditionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionValue::String(v) => write!(f, "{v:?}"),
            ConditionValue::Bool(v) => write!(f, "{v}"),
            ConditionValue::Integer(v) => write!(f, "{v}"),
        }
    }
}

/// `Condition`: operator → condition key → value(s).
pub type ConditionBlock = UniqueMap<UniqueMap<OneOrMany<ConditionValue>>>;

/// `Principal`: `"*"` or named principals.
#[derive(Clone, Debug, PartialEq)]
pub enum PrincipalDocument {
    /// `"*"`: in a Deny, every caller including anonymous ones; in an Allow,
    /// every authenticated caller (anonymous access must be named explicitly).
    Everyone,
    /// `{"User": [...], "Group": [...], "Robot": [...], "Anonymous": true}`.
    Named(PrincipalNames),
}

/// Named principals; `"*"` inside a list means every principal of that kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalNames {
    /// Usernames.
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<OneOrMany<String>>,
    /// Group names (members may be users or robots).
    #[serde(rename = "Group", default, skip_serializing_if = "Option::is_none")]
    pub group: Option<OneOrMany<String>>,
    /// Robot account names.
    #[serde(rename = "Robot", default, skip_serializing_if = "Option::is_none")]
    pub robot: Option<OneOrMany<String>>,
    /// `true` to include callers without credentials (read-only actions only in an Allow).
    #[serde(rename = "Anonymous", default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<bool>,
}

impl Serialize for PrincipalDocument {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PrincipalDocument::Everyone => s.serialize_str("*"),
            PrincipalDocument::Named(n) => n.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PrincipalDocument {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = PrincipalDocument;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""*" or an object like {"User": ["alice"], "Robot": ["ci"]}"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "*" {
                    return Ok(PrincipalDocument::Everyone);
                }
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                PrincipalNames::deserialize(MapAccessDeserializer::new(map))
                    .map(PrincipalDocument::Named)
            }
        }
        d.deserialize_any(Vis)
    }
}

/// One statement, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementDocument {
    /// Statement id, unique within the document; shown in decisions.
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Allow or Deny.
    #[serde(rename = "Effect")]
    pub effect: Effect,
    /// Who the statement is about.
    #[serde(rename = "Principal")]
    pub principal: PrincipalDocument,
    /// Actions covered (names or wildcards). Exactly one of `Action`/`NotAction`.
    #[serde(rename = "Action", default, skip_serializing_if = "Option::is_none")]
    pub action: Option<OneOrMany<String>>,
    /// Actions not covered: the statement covers every other action.
    #[serde(rename = "NotAction", default, skip_serializing_if = "Option::is_none")]
    pub not_action: Option<OneOrMany<String>>,
    /// Repository patterns (`ml/*`, `repository:ml/**`); omitted means every
    /// repository and the registry-wide resources.
    #[serde(rename = "Resource", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<OneOrMany<String>>,
    /// Conditions, all of which must hold.
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionBlock>,
}

/// A policy document, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Must be `2012-10-17`, the IAM policy language version whose semantics Ward follows.
    #[serde(rename = "Version")]
    pub version: String,
    /// Optional document id, kept for reference.
    #[serde(rename = "Id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The statements: a list, or a single object.
    #[serde(rename = "Statement")]
    pub statement: OneOrMany<StatementDocument>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_or_list_statements_and_round_trip() {
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"registry:Pull"}}"#;
        let doc: PolicyDocument = serde_json::from_str(one).unwrap();
        assert_eq!(doc.statement.as_slice().len(), 1);
        assert_eq!(serde_json::to_string(&doc).unwrap(), one);

        let many = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Deny","Principal":{"User":["a","b"],"Anonymous":true},"Action":["registry:Pull"],"Resource":"ml/*","Condition":{"StringEquals":{"ward:Tag":["x",true,3]}}}]}"#;
        let doc: PolicyDocument = serde_json::from_str(many).unwrap();
        assert_eq!(serde_json::to_string(&doc).unwrap(), many);
    }

    #[test]
    fn syntax_errors_are_precise() {
        let cases = [
            (
                r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#,
                "unknown field `Extra`",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Actions":"x"}]}"#,
                "unknown field `Actions`",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"allow","Principal":"*","Action":"x"}]}"#,
                "unknown variant `allow`",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"everyone","Action":"x"}]}"#,
                r#"expected "*" or an object"#,
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"x"},"Action":"x"}]}"#,
                "unknown field `AWS`",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Effect":"Deny","Principal":"*","Action":"x"}]}"#,
                "duplicate field `Effect`",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"Bool":{},"Bool":{}}}]}"#,
                r#"duplicate key "Bool""#,
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"Bool":{"k":1,"k":2}}}]}"#,
                r#"duplicate key "k""#,
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"x","Condition":{"Bool":{"k":{"a":1}}}}]}"#,
                "a string, a boolean or an integer",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":5}]}"#,
                "expected a string",
            ),
            (r#"{"Statement":[]}"#, "missing field `Version`"),
        ];
        for (json, want) in cases {
            let err = serde_json::from_str::<PolicyDocument>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{json}\n  got: {err}\n  want: {want}");
            assert!(
                err.contains("line 1 column"),
                "errors carry a position: {err}"
            );
        }
    }
}
