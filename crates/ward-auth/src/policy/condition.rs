//! Condition operators and keys, compiled once and evaluated per request.
//!
//! Semantics follow AWS IAM:
//!
//! - Several values for one key: the condition holds if **any** value matches.
//!   For negated operators (`StringNotEquals`, `StringNotLike`, `NotIpAddress`,
//!   `DateNotEquals`, `StringNotEqualsIgnoreCase`) it holds if **no** value matches.
//! - Several keys under one operator, and several operators: **all** must hold.
//! - A key absent from the request (no tag when pulling by digest, a label
//!   the repository does not have, no source address): the condition is
//!   **false**, except for negated operators, where it is **true**;
//!   `...IfExists` operators are true; `Null` tests exactly this absence.
//! - A key that is not known yet ([`super::TagContext::Unknown`], when a token
//!   is issued before the tag is known) makes the condition *unknown*.

use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::compile::ProblemKind;
use super::document::ConditionValue;
use super::{Request, TagContext};
use crate::identity::{LabelLimits, is_valid_label_key};
use crate::pattern::glob_match;

/// Three-valued truth: conditions on keys not known yet are `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    /// Conjunction: any false is false, then any unknown is unknown.
    pub(crate) fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::Unknown, _) | (_, Truth::Unknown) => Truth::Unknown,
            _ => Truth::True,
        }
    }
}

impl From<bool> for Truth {
    fn from(b: bool) -> Self {
        if b { Truth::True } else { Truth::False }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    IpAddress,
    NotIpAddress,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    Null,
}

const OPERATORS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringNotEquals", Op::StringNotEquals),
    ("StringEqualsIgnoreCase", Op::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Op::StringNotEqualsIgnoreCase),
    ("StringLike", Op::StringLike),
    ("StringNotLike", Op::StringNotLike),
    ("IpAddress", Op::IpAddress),
    ("NotIpAddress", Op::NotIpAddress),
    ("DateEquals", Op::DateEquals),
    ("DateNotEquals", Op::DateNotEquals),
    ("DateLessThan", Op::DateLessThan),
    ("DateLessThanEquals", Op::DateLessThanEquals),
    ("DateGreaterThan", Op::DateGreaterThan),
    ("DateGreaterThanEquals", Op::DateGreaterThanEquals),
    ("Bool", Op::Bool),
    ("Null", Op::Null),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    String,
    Ip,
    Date,
    Bool,
}

impl Op {
    fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(name, _)| name)
    }

    fn is_negated(self) -> bool {
        matches!(
            self,
            Op::StringNotEquals
                | Op::StringNotEqualsIgnoreCase
                | Op::StringNotLike
                | Op::NotIpAddress
                | Op::DateNotEquals
        )
    }

    /// Key types the operator can be used with.
    fn accepts(self, key: KeyType) -> bool {
        match self {
            Op::StringEquals
            | Op::StringNotEquals
            | Op::StringEqualsIgnoreCase
            | Op::StringNotEqualsIgnoreCase
            | Op::StringLike
            | Op::StringNotLike => key == KeyType::String,
            Op::IpAddress | Op::NotIpAddress => key == KeyType::Ip,
            Op::DateEquals
            | Op::DateNotEquals
            | Op::DateLessThan
            | Op::DateLessThanEquals
            | Op::DateGreaterThan
            | Op::DateGreaterThanEquals => key == KeyType::Date,
            Op::Bool => matches!(key, KeyType::Bool | KeyType::String),
            Op::Null => true,
        }
    }

    fn expected_keys(self) -> &'static str {
        match self {
            Op::IpAddress | Op::NotIpAddress => "ward:SourceIp",
            Op::DateEquals
            | Op::DateNotEquals
            | Op::DateLessThan
            | Op::DateLessThanEquals
            | Op::DateGreaterThan
            | Op::DateGreaterThanEquals => "ward:CurrentTime",
            Op::Bool => "ward:SecureTransport or a string key",
            _ => {
                "ward:ResourceTag/<label>, ward:Tag, ward:Repository, ward:PrincipalType or ward:Username"
            }
        }
    }
}

/// Which request attribute a condition looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConditionKey {
    /// `ward:ResourceTag/<label>`: a repository label, looked up case-insensitively.
    ResourceTag(Box<str>),
    /// `ward:Tag`: the tag pushed, pulled or deleted; absent for digest references.
    Tag,
    /// `ward:Repository`: the repository name; absent for registry-wide requests.
    Repository,
    /// `ward:SourceIp`: the client address.
    SourceIp,
    /// `ward:CurrentTime`: the request time.
    CurrentTime,
    /// `ward:PrincipalType`: `User`, `Robot` or `Anonymous`.
    PrincipalType,
    /// `ward:Username`: the user or robot name; absent for anonymous callers.
    Username,
    /// `ward:SecureTransport`: whether the request came over TLS.
    SecureTransport,
}

/// Which kinds of request input a set of conditions reads, so a decision
/// cache can leave the others out of its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputsUsed {
    /// `ward:Tag`.
    pub tag: bool,
    /// `ward:ResourceTag/...`.
    pub labels: bool,
    /// `ward:SourceIp`.
    pub source_ip: bool,
    /// `ward:CurrentTime`.
    pub time: bool,
    /// `ward:SecureTransport`.
    pub secure_transport: bool,
}

impl InputsUsed {
    pub(crate) fn union(self, o: InputsUsed) -> InputsUsed {
        InputsUsed {
            tag: self.tag || o.tag,
            labels: self.labels || o.labels,
            source_ip: self.source_ip || o.source_ip,
            time: self.time || o.time,
            secure_transport: self.secure_transport || o.secure_transport,
        }
    }
}

impl ConditionKey {
    fn parse(name: &str) -> Result<Self, ProblemKind> {
        const TAG_PREFIX: &str = "ward:resourcetag/";
        let lower = name.to_ascii_lowercase();
        if lower.starts_with(TAG_PREFIX) {
            // Keep the label as written (lookups are case-insensitive anyway).
            // The prefix is ASCII, so its length is a character boundary of `name` too.
            let label = name.get(TAG_PREFIX.len()..).unwrap_or_default();
            if !is_valid_label_key(label, LabelLimits::default().key_bytes_max) {
                return Err(ProblemKind::UnknownConditionKey(name.to_owned()));
            }
            return Ok(ConditionKey::ResourceTag(label.into()));
        }
        // Condition key names are case-insensitive, as in IAM.
        match lower.as_str() {
            "ward:tag" => Ok(ConditionKey::Tag),
            "ward:repository" => Ok(ConditionKey::Repository),
            "ward:sourceip" => Ok(ConditionKey::SourceIp),
            "ward:currenttime" => Ok(ConditionKey::CurrentTime),
            "ward:principaltype" => Ok(ConditionKey::PrincipalType),
            "ward:username" => Ok(ConditionKey::Username),
            "ward:securetransport" => Ok(ConditionKey::SecureTransport),
            _ => Err(ProblemKind::UnknownConditionKey(name.to_owned())),
        }
    }

    fn key_type(&self) -> KeyType {
        match self {
            ConditionKey::SourceIp => KeyType::Ip,
            ConditionKey::CurrentTime => KeyType::Date,
            ConditionKey::SecureTransport => KeyType::Bool,
            _ => KeyType::String,
        }
    }

    fn inputs(&self) -> InputsUsed {
        let mut used = InputsUsed::default();
        match self {
            ConditionKey::ResourceTag(_) => used.labels = true,
            ConditionKey::Tag => used.tag = true,
            ConditionKey::SourceIp => used.source_ip = true,
            ConditionKey::CurrentTime => used.time = true,
            ConditionKey::SecureTransport => used.secure_transport = true,
            // Repository, principal type and name are part of every cache key anyway.
            ConditionKey::Repository | ConditionKey::PrincipalType | ConditionKey::Username => {}
        }
        used
    }
}

/// What a request says for a key.
enum Found<'a> {
    Str(&'a str),
    Ip(IpAddr),
    Time(i128),
    Bool(bool),
    Absent,
    Unknown,
}

fn lookup<'a>(key: &ConditionKey, req: &Request<'a>) -> Found<'a> {
    let present = |v: Option<&'a str>| v.map_or(Found::Absent, Found::Str);
    match key {
        ConditionKey::ResourceTag(label) => present(req.labels.get(label)),
        ConditionKey::Tag => match req.tag {
            TagContext::Tag(t) => Found::Str(t),
            TagContext::Absent => Found::Absent,
            TagContext::Unknown => Found::Unknown,
        },
        ConditionKey::Repository => present(req.repository),
        ConditionKey::SourceIp => req
            .source_ip
            .map_or(Found::Absent, |ip| Found::Ip(ip.to_canonical())),
        ConditionKey::CurrentTime => Found::Time(unix_nanos(req.now)),
        ConditionKey::PrincipalType => Found::Str(req.principal.kind.as_str()),
        ConditionKey::Username => match req.principal.kind {
            crate::identity::PrincipalKind::Anonymous => Found::Absent,
            _ => Found::Str(&req.principal.name),
        },
        ConditionKey::SecureTransport => Found::Bool(req.secure_transport),
    }
}

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// An IPv4 or IPv6 network in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host).
    /// Host bits must be zero: `10.1.2.3/8` is almost always a typo.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 or IPv6 address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max && !p.starts_with('+'))
                .ok_or_else(|| format!("prefix length {p:?} is not a number from 0 to {max}"))?,
        };
        let cidr = Cidr {
            network,
            prefix_len,
        };
        if !cidr.contains(network) || cidr.masked(network) != network {
            return Err(format!(
                "host bits are set; the network is {}/{prefix_len}",
                cidr.masked(network)
            ));
        }
        Ok(cidr)
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// Whether `ip` (already canonical: IPv4-mapped IPv6 turned into IPv4) is inside.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.network.is_ipv4() == ip.is_ipv4() && self.masked(ip) == self.network
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Values {
    Strings(Box<[Box<str>]>),
    Cidrs(Box<[Cidr]>),
    Dates(Box<[i128]>),
    Bools(Box<[bool]>),
}

/// One compiled `operator: {key: values}` entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Condition {
    op: Op,
    if_exists: bool,
    key: ConditionKey,
    values: Values,
}

impl Condition {
    /// Compiles one operator/key/values triple.
    pub(crate) fn compile(
        operator: &str,
        key: &str,
        values: &[ConditionValue],
    ) -> Result<Self, ProblemKind> {
        let (op, if_exists) = parse_operator(operator)?;
        let key = ConditionKey::parse(key)?;
        if !op.accepts(key.key_type()) {
            return Err(ProblemKind::OperatorNotForKey {
                operator: operator.to_owned(),
                key: key_name(&key),
                expected: op.expected_keys(),
            });
        }
        if values.is_empty() {
            return Err(ProblemKind::EmptyList(format!(
                "values of {operator} {}",
                key_name(&key)
            )));
        }
        let bad = |v: &ConditionValue, expected: &'static str| ProblemKind::BadConditionValue {
            operator: operator.to_owned(),
            value: v.to_string(),
            expected,
        };
        let values = match (op, key.key_type()) {
            (Op::Bool | Op::Null, _) | (_, KeyType::Bool) => Values::Bools(collect(values, |v| {
                parse_bool(v).ok_or_else(|| bad(v, "true or false"))
            })?),
            (_, KeyType::String) => Values::Strings(collect(values, |v| match v {
                ConditionValue::String(s) => Ok(s.as_str().into()),
                _ => Err(bad(v, "a string")),
            })?),
            (_, KeyType::Ip) => Values::Cidrs(collect(values, |v| match v {
                ConditionValue::String(s) => {
                    Cidr::parse(s).map_err(|reason| ProblemKind::BadCidr {
                        value: s.clone(),
                        reason,
                    })
                }
                _ => Err(bad(v, "a CIDR string like \"10.0.0.0/8\"")),
            })?),
            (_, KeyType::Date) => Values::Dates(collect(values, parse_date)?),
        };
        Ok(Condition {
            op,
            if_exists,
            key,
            values,
        })
    }

    /// What request inputs this condition reads.
    pub(crate) fn inputs(&self) -> InputsUsed {
        self.key.inputs()
    }

    /// Evaluates against a request.
    pub(crate) fn evaluate(&self, req: &Request<'_>) -> Truth {
        match lookup(&self.key, req) {
            Found::Unknown => Truth::Unknown,
            Found::Absent => Truth::from(self.when_absent()),
            found => Truth::from(self.when_present(&found)),
        }
    }

    fn when_absent(&self) -> bool {
        match (&self.op, &self.values) {
            // `"Null": {"k": "true"}` holds when k is absent.
            (Op::Null, Values::Bools(b)) => b.iter().any(|&want_absent| want_absent),
            _ => self.if_exists || self.op.is_negated(),
        }
    }

    fn when_present(&self, found: &Found<'_>) -> bool {
        if self.op == Op::Null {
            return matches!(&self.values, Values::Bools(b) if b.iter().any(|&want_absent| !want_absent));
        }
        let any = self.any_value_matches(found);
        if self.op.is_negated() { !any } else { any }
    }

    fn any_value_matches(&self, found: &Found<'_>) -> bool {
        match (&self.values, found) {
            (Values::Strings(vs), Found::Str(s)) => vs.iter().any(|v| string_match(self.op, v, s)),
            (Values::Cidrs(cs), Found::Ip(ip)) => cs.iter().any(|c| c.contains(*ip)),
            (Values::Dates(ds), Found::Time(now)) => {
                ds.iter().any(|d| date_match(self.op, *now, *d))
            }
            (Values::Bools(bs), Found::Bool(b)) => bs.contains(b),
            (Values::Bools(bs), Found::Str(s)) => {
                let as_bool = if s.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if s.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                };
                as_bool.is_some_and(|b| bs.contains(&b))
            }
            // Compilation pairs operators with key types, so nothing else occurs.
            _ => false,
        }
    }
}

fn collect<T>(
    values: &[ConditionValue],
    f: impl FnMut(&ConditionValue) -> Result<T, ProblemKind>,
) -> Result<Box<[T]>, ProblemKind> {
    values.iter().map(f).collect()
}

fn string_match(op: Op, value: &str, actual: &str) -> bool {
    match op {
        Op::StringEquals | Op::StringNotEquals => actual == value,
        Op::StringEqualsIgnoreCase | Op::StringNotEqualsIgnoreCase => actual
            .chars()
            .flat_map(char::to_lowercase)
            .eq(value.chars().flat_map(char::to_lowercase)),
        Op::StringLike | Op::StringNotLike => glob_match(value, actual),
        _ => false,
    }
}

fn date_match(op: Op, now: i128, value: i128) -> bool {
    match op {
        Op::DateEquals | Op::DateNotEquals => now == value,
        Op::DateLessThan => now < value,
        Op::DateLessThanEquals => now <= value,
        Op::DateGreaterThan => now > value,
        Op::DateGreaterThanEquals => now >= value,
        _ => false,
    }
}

fn parse_operator(name: &str) -> Result<(Op, bool), ProblemKind> {
    if name.starts_with("ForAnyValue:") || name.starts_with("ForAllValues:") {
        return Err(ProblemKind::SetOperator(name.to_owned()));
    }
    let (base, if_exists) = match name.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let op = OPERATORS
        .iter()
        .find(|(n, _)| *n == base)
        .map(|(_, op)| *op)
        .ok_or_else(|| ProblemKind::UnknownOperator(name.to_owned()))?;
    if op == Op::Null && if_exists {
        return Err(ProblemKind::UnknownOperator(name.to_owned()));
    }
    Ok((op, if_exists))
}

fn parse_bool(v: &ConditionValue) -> Option<bool> {
    match v {
        ConditionValue::Bool(b) => Some(*b),
        ConditionValue::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        ConditionValue::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// RFC 3339 (`2026-01-01T00:00:00Z`) or Unix seconds (integer or digit string).
fn parse_date(v: &ConditionValue) -> Result<i128, ProblemKind> {
    let bad = || ProblemKind::BadDate(v.to_string());
    let seconds = |s: i64| i128::from(s) * 1_000_000_000;
    match v {
        ConditionValue::Integer(s) => Ok(seconds(*s)),
        ConditionValue::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().map(seconds).map_err(|_| bad())
        }
        ConditionValue::String(s) => OffsetDateTime::parse(s, &Rfc3339)
            .map(OffsetDateTime::unix_timestamp_nanos)
            .map_err(|_| bad()),
        ConditionValue::Bool(_) => Err(bad()),
    }
}

fn key_name(key: &ConditionKey) -> String {
    match key {
        ConditionKey::ResourceTag(l) => format!("ward:ResourceTag/{l}"),
        ConditionKey::Tag => "ward:Tag".into(),
        ConditionKey::Repository => "ward:Repository".into(),
        ConditionKey::SourceIp => "ward:SourceIp".into(),
        ConditionKey::CurrentTime => "ward:CurrentTime".into(),
        ConditionKey::PrincipalType => "ward:PrincipalType".into(),
        ConditionKey::Username => "ward:Username".into(),
        ConditionKey::SecureTransport => "ward:SecureTransport".into(),
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = if self.if_exists { "IfExists" } else { "" };
        write!(f, "{}{suffix} {}", self.op.name(), key_name(&self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Labels, Principal};
    use crate::policy::action::Action;
    use std::time::Duration;

    fn s(v: &str) -> ConditionValue {
        ConditionValue::String(v.to_owned())
    }

    #[test]
    fn cidr_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.9.9.9", true),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("192.168.1.7/32", "192.168.1.7", true),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("2001:db8::/32", "10.0.0.1", false),
            ("::/0", "2001:db8::1", true),
            ("::1", "::1", true),
        ];
        for (cidr, ip, want) in cases {
            let c = Cidr::parse(cidr).unwrap();
            let ip: IpAddr = ip.parse::<IpAddr>().unwrap().to_canonical();
            assert_eq!(c.contains(ip), *want, "{cidr} ∋ {ip}");
        }
    }

    #[test]
    fn bad_cidrs() {
        let cases = [
            ("10.0.0.0/33", "prefix length"),
            ("10.0.0.0/-1", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.0/", "prefix length"),
            ("2001:db8::/129", "prefix length"),
            ("10.1.2.3/8", "network is 10.0.0.0/8"),
            ("2001:db8::1/32", "network is 2001:db8::/32"),
            ("10.0.0", "not an IPv4 or IPv6 address"),
            ("", "not an IPv4 or IPv6 address"),
            ("example.com/8", "not an IPv4 or IPv6 address"),
        ];
        for (text, want) in cases {
            let err = Cidr::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn compile_errors_table() {
        type Case<'a> = (&'a str, &'a str, Vec<ConditionValue>, &'a str);
        let cases: Vec<Case> = vec![
            ("StringEqual", "ward:Tag", vec![s("x")], "UnknownOperator"),
            (
                "NullIfExists",
                "ward:Tag",
                vec![s("true")],
                "UnknownOperator",
            ),
            (
                "ForAnyValue:StringEquals",
                "ward:Tag",
                vec![s("x")],
                "SetOperator",
            ),
            (
                "StringEquals",
                "ward:Tags",
                vec![s("x")],
                "UnknownConditionKey",
            ),
            (
                "StringEquals",
                "aws:SourceIp",
                vec![s("x")],
                "UnknownConditionKey",
            ),
            (
                "StringEquals",
                "ward:ResourceTag/",
                vec![s("x")],
                "UnknownConditionKey",
            ),
            (
                "StringEquals",
                "ward:ResourceTag/a b",
                vec![s("x")],
                "UnknownConditionKey",
            ),
            (
                "IpAddress",
                "ward:Tag",
                vec![s("10.0.0.0/8")],
                "OperatorNotForKey",
            ),
            (
                "StringEquals",
                "ward:SourceIp",
                vec![s("10.0.0.1")],
                "OperatorNotForKey",
            ),
            (
                "DateLessThan",
                "ward:Tag",
                vec![s("2020-01-01T00:00:00Z")],
                "OperatorNotForKey",
            ),
            (
                "StringLike",
                "ward:CurrentTime",
                vec![s("*")],
                "OperatorNotForKey",
            ),
            (
                "IpAddress",
                "ward:SourceIp",
                vec![s("10.0.0.1/40")],
                "BadCidr",
            ),
            (
                "IpAddress",
                "ward:SourceIp",
                vec![ConditionValue::Integer(10)],
                "BadConditionValue",
            ),
            (
                "DateLessThan",
                "ward:CurrentTime",
                vec![s("next tuesday")],
                "BadDate",
            ),
            (
                "DateLessThan",
                "ward:CurrentTime",
                vec![s("2026-13-01T00:00:00Z")],
                "BadDate",
            ),
            (
                "DateLessThan",
                "ward:CurrentTime",
                vec![ConditionValue::Bool(true)],
                "BadDate",
            ),
            (
                "Bool",
                "ward:SecureTransport",
                vec![s("yes")],
                "BadConditionValue",
            ),
            (
                "StringEquals",
                "ward:Tag",
                vec![ConditionValue::Integer(1)],
                "BadConditionValue",
            ),
            ("StringEquals", "ward:Tag", vec![], "EmptyList"),
        ];
        for (op, key, values, want) in cases {
            let err = Condition::compile(op, key, &values).unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{op} {key}: {err:?}");
        }
    }

    #[test]
    fn keys_are_case_insensitive() {
        for key in ["ward:tag", "WARD:TAG", "Ward:Tag"] {
            assert!(
                Condition::compile("StringEquals", key, &[s("x")]).is_ok(),
                "{key}"
            );
        }
        let c =
            Condition::compile("StringEquals", "WARD:RESOURCETAG/Environment", &[s("x")]).unwrap();
        assert_eq!(c.to_string(), "StringEquals ward:ResourceTag/Environment");
    }

    #[test]
    fn dates_accept_rfc3339_and_epoch() {
        let cases = [
            (s("2026-01-01T00:00:00Z"), 1_767_225_600),
            (s("2026-01-01T01:00:00+01:00"), 1_767_225_600),
            (s("1767225600"), 1_767_225_600),
            (ConditionValue::Integer(1_767_225_600), 1_767_225_600),
        ];
        for (v, secs) in cases {
            assert_eq!(
                parse_date(&v).unwrap(),
                i128::from(secs) * 1_000_000_000,
                "{v}"
            );
        }
    }

    /// Every operator, positive and negative, and with the key absent.
    #[test]
    fn operator_truth_table() {
        let alice = Principal::user("alice", vec![]);
        let labels = Labels::new([("Environment", "production"), ("signed", "TRUE")]).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
        let full = Request::new(&alice, Action::Push, Some("ml/fraud"), t0)
            .with_tag("v1.2")
            .with_labels(&labels)
            .with_source_ip("10.1.2.3".parse().unwrap())
            .with_secure_transport(true);
        let bare = Request::new(&alice, Action::Push, Some("ml/fraud"), t0);

        // (operator, key, values, expected with `full`, expected with `bare` where the key is absent)
        type Case<'a> = (&'a str, &'a str, Vec<ConditionValue>, bool, bool);
        let cases: Vec<Case> = vec![
            (
                "StringEquals",
                "ward:ResourceTag/environment",
                vec![s("production")],
                true,
                false,
            ),
            (
                "StringEquals",
                "ward:ResourceTag/Environment",
                vec![s("Production")],
                false,
                false,
            ),
            (
                "StringEquals",
                "ward:ResourceTag/Environment",
                vec![s("dev"), s("production")],
                true,
                false,
            ),
            (
                "StringNotEquals",
                "ward:ResourceTag/Environment",
                vec![s("production")],
                false,
                true,
            ),
            (
                "StringNotEquals",
                "ward:ResourceTag/Environment",
                vec![s("dev"), s("test")],
                true,
                true,
            ),
            (
                "StringNotEquals",
                "ward:ResourceTag/Environment",
                vec![s("dev"), s("production")],
                false,
                true,
            ),
            (
                "StringEqualsIgnoreCase",
                "ward:ResourceTag/Environment",
                vec![s("PRODUCTION")],
                true,
                false,
            ),
            (
                "StringNotEqualsIgnoreCase",
                "ward:ResourceTag/Environment",
                vec![s("PRODUCTION")],
                false,
                true,
            ),
            ("StringLike", "ward:Tag", vec![s("v1.*")], true, false),
            (
                "StringLike",
                "ward:Tag",
                vec![s("v2.*"), s("v?.2")],
                true,
                false,
            ),
            ("StringLike", "ward:Tag", vec![s("prod-*")], false, false),
            ("StringNotLike", "ward:Tag", vec![s("v1.*")], false, true),
            ("StringNotLike", "ward:Tag", vec![s("prod-*")], true, true),
            (
                "StringEqualsIfExists",
                "ward:Tag",
                vec![s("v1.2")],
                true,
                true,
            ),
            (
                "StringEqualsIfExists",
                "ward:Tag",
                vec![s("v9")],
                false,
                true,
            ),
            (
                "StringEquals",
                "ward:Repository",
                vec![s("ml/fraud")],
                true,
                true,
            ),
            (
                "StringEquals",
                "ward:PrincipalType",
                vec![s("User")],
                true,
                true,
            ),
            (
                "StringEquals",
                "ward:PrincipalType",
                vec![s("Robot")],
                false,
                false,
            ),
            (
                "StringEquals",
                "ward:Username",
                vec![s("alice")],
                true,
                true,
            ),
            (
                "IpAddress",
                "ward:SourceIp",
                vec![s("10.0.0.0/8")],
                true,
                false,
            ),
            (
                "IpAddress",
                "ward:SourceIp",
                vec![s("192.168.0.0/16"), s("10.1.2.3")],
                true,
                false,
            ),
            (
                "IpAddress",
                "ward:SourceIp",
                vec![s("192.168.0.0/16")],
                false,
                false,
            ),
            (
                "NotIpAddress",
                "ward:SourceIp",
                vec![s("10.0.0.0/8")],
                false,
                true,
            ),
            (
                "NotIpAddress",
                "ward:SourceIp",
                vec![s("192.168.0.0/16")],
                true,
                true,
            ),
            (
                "DateLessThan",
                "ward:CurrentTime",
                vec![s("2026-01-01T00:00:01Z")],
                true,
                true,
            ),
            (
                "DateLessThan",
                "ward:CurrentTime",
                vec![s("2026-01-01T00:00:00Z")],
                false,
                false,
            ),
            (
                "DateLessThanEquals",
                "ward:CurrentTime",
                vec![s("2026-01-01T00:00:00Z")],
                true,
                true,
            ),
            (
                "DateGreaterThan",
                "ward:CurrentTime",
                vec![s("2025-12-31T23:59:59Z")],
                true,
                true,
            ),
            (
                "DateGreaterThan",
                "ward:CurrentTime",
                vec![s("2026-01-01T00:00:00Z")],
                false,
                false,
            ),
            (
                "DateGreaterThanEquals",
                "ward:CurrentTime",
                vec![s("2026-01-01T00:00:00Z")],
                true,
                true,
            ),
            (
                "DateEquals",
                "ward:CurrentTime",
                vec![ConditionValue::Integer(1_767_225_600)],
                true,
                true,
            ),
            (
                "DateNotEquals",
                "ward:CurrentTime",
                vec![ConditionValue::Integer(1_767_225_600)],
                false,
                false,
            ),
            (
                "Bool",
                "ward:SecureTransport",
                vec![ConditionValue::Bool(true)],
                true,
                false,
            ),
            (
                "Bool",
                "ward:SecureTransport",
                vec![s("false")],
                false,
                true,
            ),
            (
                "Bool",
                "ward:ResourceTag/signed",
                vec![s("true")],
                true,
                false,
            ),
            (
                "Bool",
                "ward:ResourceTag/Environment",
                vec![s("true")],
                false,
                false,
            ),
            ("Null", "ward:Tag", vec![s("true")], false, true),
            (
                "Null",
                "ward:Tag",
                vec![ConditionValue::Bool(false)],
                true,
                false,
            ),
            (
                "Null",
                "ward:ResourceTag/Environment",
                vec![s("true")],
                false,
                true,
            ),
        ];
        for (op, key, values, want_full, want_bare) in cases {
            let c = Condition::compile(op, key, &values).unwrap();
            let vals: Vec<String> = values.iter().map(ToString::to_string).collect();
            assert_eq!(
                c.evaluate(&full),
                Truth::from(want_full),
                "{op} {key} {vals:?} (full)"
            );
            assert_eq!(
                c.evaluate(&bare),
                Truth::from(want_bare),
                "{op} {key} {vals:?} (absent)"
            );
        }
    }

    #[test]
    fn unknown_tag_is_unknown_for_every_operator() {
        let alice = Principal::user("alice", vec![]);
        let req = Request::new(&alice, Action::Push, Some("ml/fraud"), UNIX_EPOCH)
            .with_tag_context(TagContext::Unknown);
        for op in [
            "StringEquals",
            "StringNotEquals",
            "StringLike",
            "StringNotLike",
            "StringEqualsIfExists",
            "Null",
        ] {
            let value = if op == "Null" { s("true") } else { s("x") };
            let c = Condition::compile(op, "ward:Tag", &[value]).unwrap();
            assert_eq!(c.evaluate(&req), Truth::Unknown, "{op}");
        }
    }

    #[test]
    fn truth_and() {
        use Truth::*;
        let cases = [
            (True, True, True),
            (True, False, False),
            (False, Unknown, False),
            (Unknown, True, Unknown),
            (Unknown, Unknown, Unknown),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.and(b), want);
            assert_eq!(b.and(a), want);
        }
    }

    #[test]
    fn anonymous_has_no_username() {
        let anon = Principal::anonymous();
        let req = Request::new(&anon, Action::Pull, Some("x"), UNIX_EPOCH);
        let c = Condition::compile("Null", "ward:Username", &[s("true")]).unwrap();
        assert_eq!(c.evaluate(&req), Truth::True);
        let c =
            Condition::compile("StringEquals", "ward:PrincipalType", &[s("Anonymous")]).unwrap();
        assert_eq!(c.evaluate(&req), Truth::True);
    }
}
