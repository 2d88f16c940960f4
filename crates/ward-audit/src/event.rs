//! What happened: the [`AuditEvent`] every security-relevant act produces.
//!
//! Recording is one builder chain and one call:
//!
//! ```
//! use ward_audit::{AuditEvent, EventType};
//! let event = AuditEvent::new(EventType::Push)
//!     .user("alice")
//!     .repository("library/alpine")
//!     .digest("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
//!     .tag("3.19")
//!     .ip("192.0.2.7".parse().unwrap());
//! assert_eq!(event.action, "push");
//! assert_eq!(event.artifact.name.as_deref(), Some("library/alpine"));
//! // then, in the server: `audit_log.record(event).await?`
//! ```
//!
//! The JSON field names are the mission's (`timestamp`, `event_type`, `user`,
//! `artifact {id, name, version}`, `action`, `ip_address`) plus Ward's own.
//! `artifact` is the mission's view of the object acted on; the builder fills it
//! from [`AuditEvent::repository`] (name), [`AuditEvent::digest`] (id) and
//! [`AuditEvent::tag`] (version) unless set explicitly.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The kind of act an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A client proved who it is.
    #[serde(rename = "auth.success")]
    AuthSuccess,
    /// A client failed to prove who it is (wrong password, bad or expired token).
    #[serde(rename = "auth.failure")]
    AuthFailure,
    /// A bearer token was issued.
    #[serde(rename = "token.issue")]
    TokenIssued,
    /// A manifest or blob was pushed.
    #[serde(rename = "artifact.push")]
    Push,
    /// A manifest or blob was pulled.
    #[serde(rename = "artifact.pull")]
    Pull,
    /// A manifest, tag or blob was deleted.
    #[serde(rename = "artifact.delete")]
    Delete,
    /// A tag now points at a different digest.
    #[serde(rename = "tag.move")]
    TagMove,
    /// Access refused: the principal lacks the permission.
    #[serde(rename = "deny.authorization")]
    AuthorizationDenied,
    /// Refused: the tag or repository is immutable.
    #[serde(rename = "deny.immutability")]
    ImmutabilityDenied,
    /// Refused: the artifact lacks a signature the trust policy requires.
    #[serde(rename = "deny.signature")]
    SignatureDenied,
    /// Refused: scan findings violate the policy.
    #[serde(rename = "deny.scan")]
    ScanDenied,
    /// Refused: the artifact is quarantined.
    #[serde(rename = "deny.quarantine")]
    QuarantineDenied,
    /// A user was created, changed or removed.
    #[serde(rename = "admin.user")]
    UserChanged,
    /// A robot account or its token was created, changed or removed.
    #[serde(rename = "admin.robot")]
    RobotChanged,
    /// A role or role binding was created, changed or removed.
    #[serde(rename = "admin.role")]
    RoleChanged,
    /// A policy document was created, changed or removed.
    #[serde(rename = "admin.policy")]
    PolicyChanged,
    /// A trust policy or trusted key was created, changed or removed.
    #[serde(rename = "admin.trust_policy")]
    TrustPolicyChanged,
    /// A server setting was changed.
    #[serde(rename = "admin.setting")]
    SettingChanged,
    /// A scan finished and its result was stored.
    #[serde(rename = "scan.result")]
    ScanResult,
    /// An artifact was quarantined or released.
    #[serde(rename = "quarantine.decision")]
    QuarantineDecision,
    /// A registered model version moved between stages.
    #[serde(rename = "model.stage")]
    ModelStageChanged,
}

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [EventType; 21] = [
        EventType::AuthSuccess,
        EventType::AuthFailure,
        EventType::TokenIssued,
        EventType::Push,
        EventType::Pull,
        EventType::Delete,
        EventType::TagMove,
        EventType::AuthorizationDenied,
        EventType::ImmutabilityDenied,
        EventType::SignatureDenied,
        EventType::ScanDenied,
        EventType::QuarantineDenied,
        EventType::UserChanged,
        EventType::RobotChanged,
        EventType::RoleChanged,
        EventType::PolicyChanged,
        EventType::TrustPolicyChanged,
        EventType::SettingChanged,
        EventType::ScanResult,
        EventType::QuarantineDecision,
        EventType::ModelStageChanged,
    ];

    /// The wire name, e.g. `artifact.push`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::AuthSuccess => "auth.success",
            EventType::AuthFailure => "auth.failure",
            EventType::TokenIssued => "token.issue",
            EventType::Push => "artifact.push",
            EventType::Pull => "artifact.pull",
            EventType::Delete => "artifact.delete",
            EventType::TagMove => "tag.move",
            EventType::AuthorizationDenied => "deny.authorization",
            EventType::ImmutabilityDenied => "deny.immutability",
            EventType::SignatureDenied => "deny.signature",
            EventType::ScanDenied => "deny.scan",
            EventType::QuarantineDenied => "deny.quarantine",
            EventType::UserChanged => "admin.user",
            EventType::RobotChanged => "admin.robot",
            EventType::RoleChanged => "admin.role",
            EventType::PolicyChanged => "admin.policy",
            EventType::TrustPolicyChanged => "admin.trust_policy",
            EventType::SettingChanged => "admin.setting",
            EventType::ScanResult => "scan.result",
            EventType::QuarantineDecision => "quarantine.decision",
            EventType::ModelStageChanged => "model.stage",
        }
    }

    /// The event type with wire name `name`.
    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// True for the refusals (`deny.*`).
    pub fn is_denial(self) -> bool {
        matches!(
            self,
            EventType::AuthorizationDenied
                | EventType::ImmutabilityDenied
                | EventType::SignatureDenied
                | EventType::ScanDenied
                | EventType::QuarantineDenied
        )
    }

    /// The `action` an event of this type gets unless the caller names one.
    pub fn default_action(self) -> &'static str {
        match self {
            EventType::AuthSuccess | EventType::AuthFailure => "login",
            EventType::TokenIssued => "issue_token",
            EventType::Push => "push",
            EventType::Pull => "pull",
            EventType::Delete => "delete",
            EventType::TagMove => "move_tag",
            EventType::ImmutabilityDenied => "overwrite",
            EventType::AuthorizationDenied
            | EventType::SignatureDenied
            | EventType::ScanDenied
            | EventType::QuarantineDenied => "access",
            EventType::UserChanged
            | EventType::RobotChanged
            | EventType::RoleChanged
            | EventType::PolicyChanged
            | EventType::TrustPolicyChanged
            | EventType::SettingChanged => "update",
            EventType::ScanResult => "scan",
            EventType::QuarantineDecision => "quarantine",
            EventType::ModelStageChanged => "transition",
        }
    }

    /// The outcome an event of this type gets unless the caller names one.
    pub fn default_outcome(self) -> Outcome {
        match self {
            EventType::AuthFailure => Outcome::Failure,
            t if t.is_denial() => Outcome::Denied,
            _ => Outcome::Success,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the act ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was attempted and failed (e.g. wrong credentials).
    Failure,
    /// A control refused it.
    Denied,
}

impl Outcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    /// The outcome with wire name `name`.
    pub fn from_name(name: &str) -> Option<Outcome> {
        [Outcome::Success, Outcome::Failure, Outcome::Denied]
            .into_iter()
            .find(|o| o.as_str() == name)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The mission's view of the object acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// A stable identifier: the digest for OCI content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The name: the repository, or the registered model's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The version: the tag, or the model version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Artifact {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.name.is_none() && self.version.is_none()
    }
}

/// One security-relevant act. See the [module docs](self) for the builder.
///
/// The fields are declared in the byte order of their names, so serde writes
/// them in canonical order and [`crate::canonical::event_json`] needs no
/// intermediate tree (`event_json_equals_the_generic_encoding` pins this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The verb: `push`, `pull`, `delete`, `login`, `create`, `update`, ….
    pub action: String,
    /// The mission's `artifact {id, name, version}`.
    #[serde(default, skip_serializing_if = "Artifact::is_empty")]
    pub artifact: Artifact,
    /// How the principal authenticated: `basic`, `bearer`, `robot_token`, `anonymous`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// A few more facts, e.g. `previous_digest` of a tag move or `from_stage`/`to_stage`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// The content digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The repository's environment label when it happened (e.g. `production`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// What kind of act.
    pub event_type: EventType,
    /// The client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddr>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why: the reason of a denial or failure, or the justification of a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The request that caused it, to join with access logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The object an administrative change applies to (user name, role, policy id, setting key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When it happened, UTC, microsecond precision.
    #[serde(with = "timestamp")]
    pub timestamp: OffsetDateTime,
    /// The principal (user or robot name); for failed logins, the name attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The client's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// Size limits applied to an event before it is recorded, so that no client-controlled
/// header can bloat the log. Longer values are cut at a character boundary and the
/// event gets the detail `truncated=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventLimits {
    /// Longest string field other than `reason`, in bytes.
    pub field_bytes_max: usize,
    /// Longest `reason`, in bytes.
    pub reason_bytes_max: usize,
    /// Most entries in `details`; further entries are dropped.
    pub details_entries_max: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            field_bytes_max: 1024,
            reason_bytes_max: 4096,
            details_entries_max: 32,
        }
    }
}

macro_rules! optional_setters {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<String>) -> Self {
            self.$name = Some(value.into());
            self
        }
    )*};
}

impl AuditEvent {
    /// A new event of type `event_type`, timestamped now, with the type's default action
    /// and outcome.
    pub fn new(event_type: EventType) -> Self {
        AuditEvent {
            timestamp: timestamp::now(),
            event_type,
            action: event_type.default_action().to_owned(),
            outcome: event_type.default_outcome(),
            user: None,
            auth_method: None,
            ip_address: None,
            user_agent: None,
            request_id: None,
            repository: None,
            digest: None,
            artifact: Artifact::default(),
            environment: None,
            target: None,
            reason: None,
            details: BTreeMap::new(),
        }
    }

    optional_setters! {
        /// Sets the principal.
        user;
        /// Sets how the principal authenticated.
        auth_method;
        /// Sets the client's `User-Agent`.
        user_agent;
        /// Sets the request id.
        request_id;
        /// Sets the repository's environment label.
        environment;
        /// Sets the object an administrative change applies to.
        target;
        /// Sets the reason of a denial or failure.
        reason;
    }

    /// Sets the repository, and `artifact.name` unless already set.
    pub fn repository(mut self, repository: impl Into<String>) -> Self {
        let repository = repository.into();
        self.artifact.name.get_or_insert_with(|| repository.clone());
        self.repository = Some(repository);
        self
    }

    /// Sets the digest, and `artifact.id` unless already set.
    pub fn digest(mut self, digest: impl ToString) -> Self {
        let digest = digest.to_string();
        self.artifact.id.get_or_insert_with(|| digest.clone());
        self.digest = Some(digest);
        self
    }

    /// Sets the tag as `artifact.version`.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.artifact.version = Some(tag.into());
        self
    }

    /// Sets the whole `artifact` (for things that are not OCI content, e.g. a model version).
    pub fn artifact(mut self, artifact: Artifact) -> Self {
        self.artifact = artifact;
        self
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip_address = Some(ip);
        self
    }

    /// Overrides the action.
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }

    /// Overrides the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Adds one entry to `details`.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Overrides the timestamp (truncated to microseconds, converted to UTC).
    pub fn at(mut self, when: OffsetDateTime) -> Self {
        self.timestamp = timestamp::normalize(when);
        self
    }

    /// Cuts over-long fields and surplus details to `limits`. Returns true if anything was cut.
    pub fn clamp(&mut self, limits: &EventLimits) -> bool {
        let field = limits.field_bytes_max;
        let mut cut = false;
        cut |= truncate(&mut self.action, field);
        for value in [
            &mut self.user,
            &mut self.auth_method,
            &mut self.user_agent,
            &mut self.request_id,
            &mut self.repository,
            &mut self.digest,
            &mut self.environment,
            &mut self.target,
            &mut self.artifact.id,
            &mut self.artifact.name,
            &mut self.artifact.version,
        ]
        .into_iter()
        .flatten()
        {
            cut |= truncate(value, field);
        }
        if let Some(reason) = &mut self.reason {
            cut |= truncate(reason, limits.reason_bytes_max);
        }
        cut |= self.clamp_details(limits);
        if cut {
            self.details
                .insert("truncated".to_owned(), "true".to_owned());
        }
        cut
    }

    fn clamp_details(&mut self, limits: &EventLimits) -> bool {
        let mut cut = false;
        // One slot stays free for the `truncated` marker.
        let keep = limits.details_entries_max.saturating_sub(1).max(1);
        while self.details.len() > keep {
            self.details.pop_last();
            cut = true;
        }
        let mut clamped = BTreeMap::new();
        for (mut key, mut value) in std::mem::take(&mut self.details) {
            cut |= truncate(&mut key, limits.field_bytes_max);
            cut |= truncate(&mut value, limits.field_bytes_max);
            clamped.insert(key, value);
        }
        self.details = clamped;
        cut
    }
}

/// Cuts `s` to at most `bytes_max` bytes at a character boundary.
fn truncate(s: &mut String, bytes_max: usize) -> bool {
    if s.len() <= bytes_max {
        return false;
    }
    let mut end = bytes_max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// The timestamp format of events: RFC 3339, UTC, always six fractional digits
/// (`2026-05-01T12:00:00.000000Z`), so that one instant has one spelling.
pub mod timestamp {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, UtcOffset};

    /// Now, normalised.
    pub fn now() -> OffsetDateTime {
        normalize(OffsetDateTime::now_utc())
    }

    /// UTC, truncated to whole microseconds.
    pub fn normalize(when: OffsetDateTime) -> OffsetDateTime {
        let utc = when.to_offset(UtcOffset::UTC);
        let micros = utc.microsecond();
        utc.replace_microsecond(micros).unwrap_or(utc)
    }

    /// The canonical spelling.
    pub fn format(when: OffsetDateTime) -> String {
        let t = normalize(when);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.microsecond()
        )
    }

    /// Parses any RFC 3339 timestamp and normalises it.
    pub fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
        OffsetDateTime::parse(text, &Rfc3339).map(normalize)
    }

    /// Serde `serialize_with`.
    pub fn serialize<S: Serializer>(when: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*when))
    }

    /// Serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_event_type_round_trips_by_name_and_serde() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
        }
    }

    #[test]
    fn defaults_follow_the_event_type() {
        let cases = [
            (EventType::Push, "push", Outcome::Success),
            (EventType::AuthFailure, "login", Outcome::Failure),
            (EventType::ImmutabilityDenied, "overwrite", Outcome::Denied),
            (EventType::QuarantineDenied, "access", Outcome::Denied),
            (EventType::PolicyChanged, "update", Outcome::Success),
        ];
        for (t, action, outcome) in cases {
            let e = AuditEvent::new(t);
            assert_eq!((e.action.as_str(), e.outcome), (action, outcome), "{t}");
        }
    }

    #[test]
    fn builder_fills_the_mission_fields() {
        let e = AuditEvent::new(EventType::Pull)
            .at(datetime!(2026-05-01 12:00:00.123456789 +02:00))
            .user("bob")
            .repository("prod/api")
            .digest("sha256:abc")
            .tag("v1")
            .ip("2001:db8::1".parse().unwrap());
        let json: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(json["timestamp"], "2026-05-01T10:00:00.123456Z");
        assert_eq!(json["event_type"], "artifact.pull");
        assert_eq!(json["user"], "bob");
        assert_eq!(json["action"], "pull");
        assert_eq!(json["ip_address"], "2001:db8::1");
        assert_eq!(
            json["artifact"],
            serde_json::json!({"id": "sha256:abc", "name": "prod/api", "version": "v1"})
        );
        assert!(json.get("reason").is_none(), "absent fields are omitted");
        let back: AuditEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn explicit_artifact_name_is_not_overwritten_by_repository() {
        let e = AuditEvent::new(EventType::ModelStageChanged)
            .artifact(Artifact {
                id: None,
                name: Some("fraud-model".into()),
                version: Some("7".into()),
            })
            .repository("models/fraud");
        assert_eq!(e.artifact.name.as_deref(), Some("fraud-model"));
    }

    #[test]
    fn clamp_cuts_at_char_boundaries_and_marks_the_event() {
        let limits = EventLimits {
            field_bytes_max: 5,
            reason_bytes_max: 7,
            details_entries_max: 3,
        };
        let mut e = AuditEvent::new(EventType::AuthFailure)
            .user_agent("ééééé")
            .reason("0123456789")
            .detail("a", "1")
            .detail("b", "2")
            .detail("c", "3");
        assert!(e.clamp(&limits));
        assert_eq!(e.user_agent.as_deref(), Some("éé"));
        assert_eq!(e.reason.as_deref(), Some("0123456"));
        assert_eq!(e.details.len(), 3);
        assert_eq!(e.details.get("truncated").map(String::as_str), Some("true"));

        let mut small = AuditEvent::new(EventType::Push).user("al");
        assert!(!small.clamp(&limits));
        assert!(small.details.is_empty());
    }

    #[test]
    fn timestamps_have_one_spelling() {
        let t = timestamp::parse("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(timestamp::format(t), "2026-01-02T03:04:05.000000Z");
        let t = timestamp::parse("2026-01-02T05:04:05.1234567+02:00").unwrap();
        assert_eq!(timestamp::format(t), "2026-01-02T03:04:05.123456Z");
    }
}
