//! Alerts: rules evaluated over recorded events.
//!
//! Rules run over the durable log (an alert pipeline is a sink with its own cursor),
//! so an alert is never lost to a crash and always names the `seq` of the event that
//! triggered it. Rules are pure functions of the events they have seen; the only
//! state is the sliding window of the authentication-failure rule, which a restart
//! empties.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::event::{AuditEvent, EventType, Outcome, timestamp};
use crate::record::AuditRecord;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Investigate soon.
    Medium,
    /// Investigate now.
    High,
    /// Someone may be attacking the registry.
    Critical,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The RFC 5424 severity used when the alert goes to syslog.
    pub fn syslog(self) -> u8 {
        match self {
            Severity::Low => 5,
            Severity::Medium => 4,
            Severity::High => 3,
            Severity::Critical => 2,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleConfig {
    /// Any delete (successful or attempted).
    Delete {
        /// Severity of its alerts.
        #[serde(default = "high")]
        severity: Severity,
    },
    /// An attempt to overwrite an immutable (protected) tag.
    ProtectedTagOverwrite {
        /// Severity of its alerts.
        #[serde(default = "high")]
        severity: Severity,
    },
    /// A quarantine decision.
    Quarantine {
        /// Severity of its alerts.
        #[serde(default = "high")]
        severity: Severity,
    },
    /// `threshold` authentication failures from one source within `window_secs`.
    AuthFailures {
        /// Failures that trigger an alert.
        #[serde(default = "auth_threshold")]
        threshold: u32,
        /// The sliding window.
        #[serde(default = "auth_window_secs")]
        window_secs: u64,
        /// Sources tracked at once; the least recently seen is forgotten beyond it.
        #[serde(default = "auth_sources_max")]
        sources_max: usize,
        /// Severity of its alerts.
        #[serde(default = "medium")]
        severity: Severity,
    },
    /// A change of policies, trust policies or roles.
    PolicyChange {
        /// Severity of its alerts.
        #[serde(default = "high")]
        severity: Severity,
    },
    /// A pull from a repository labelled `environment` by a principal not in `allowed_principals`.
    ProductionPull {
        /// The environment label that marks production repositories.
        #[serde(default = "production")]
        environment: String,
        /// Principals expected to pull production artifacts.
        #[serde(default)]
        allowed_principals: Vec<String>,
        /// Severity of its alerts.
        #[serde(default = "high")]
        severity: Severity,
    },
}

fn high() -> Severity {
    Severity::High
}
fn medium() -> Severity {
    Severity::Medium
}
fn auth_threshold() -> u32 {
    5
}
fn auth_window_secs() -> u64 {
    300
}
fn auth_sources_max() -> usize {
    10_000
}
fn production() -> String {
    "production".into()
}

impl RuleConfig {
    /// The rules on by default: every one that needs no site-specific list.
    pub fn defaults() -> Vec<RuleConfig> {
        vec![
            RuleConfig::Delete { severity: high() },
            RuleConfig::ProtectedTagOverwrite { severity: high() },
            RuleConfig::Quarantine { severity: high() },
            RuleConfig::AuthFailures {
                threshold: auth_threshold(),
                window_secs: auth_window_secs(),
                sources_max: auth_sources_max(),
                severity: medium(),
            },
            RuleConfig::PolicyChange { severity: high() },
        ]
    }

    /// The rule's name, as alerts carry it.
    pub fn name(&self) -> &'static str {
        match self {
            RuleConfig::Delete { .. } => "delete",
            RuleConfig::ProtectedTagOverwrite { .. } => "protected_tag_overwrite",
            RuleConfig::Quarantine { .. } => "quarantine",
            RuleConfig::AuthFailures { .. } => "auth_failures",
            RuleConfig::PolicyChange { .. } => "policy_change",
            RuleConfig::ProductionPull { .. } => "production_pull",
        }
    }
}

/// An alert: which rule fired, how urgent, why, and on which event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// How urgent.
    pub severity: Severity,
    /// What happened, in words.
    pub message: String,
    /// The triggering event's seq.
    pub seq: u64,
    /// The triggering event's type.
    pub event_type: EventType,
    /// When the triggering event happened.
    #[serde(with = "timestamp")]
    pub occurred_at: OffsetDateTime,
}

impl Alert {
    /// The alert as one JSON line, with the triggering event embedded verbatim.
    pub fn to_line(&self, event_json: &str) -> String {
        let head = serde_json::json!({
            "type": "alert",
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "seq": self.seq,
            "event_type": self.event_type,
            "occurred_at": timestamp::format(self.occurred_at),
        })
        .to_string();
        // Splice the raw event in so a receiver sees exactly what was hashed.
        format!("{},\"event\":{event_json}}}", head.trim_end_matches('}'))
    }
}

/// Evaluates rules over events in log order.
#[derive(Debug, Clone)]
pub struct AlertEngine {
    rules: Vec<RuleConfig>,
    failures: HashMap<String, VecDeque<OffsetDateTime>>,
    /// Order in which sources were last seen, for forgetting the oldest.
    clock: u64,
    last_seen: HashMap<String, u64>,
}

impl AlertEngine {
    /// An engine for `rules`.
    pub fn new(rules: Vec<RuleConfig>) -> AlertEngine {
        AlertEngine {
            rules,
            failures: HashMap::new(),
            clock: 0,
            last_seen: HashMap::new(),
        }
    }

    /// The alerts `event` (stored as `record`) triggers.
    pub fn evaluate(&mut self, record: &AuditRecord, event: &AuditEvent) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for i in 0..self.rules.len() {
            let rule = self.rules[i].clone();
            if let Some((severity, message)) = self.check(&rule, event) {
                alerts.push(Alert {
                    rule: rule.name().to_owned(),
                    severity,
                    message,
                    seq: record.seq,
                    event_type: event.event_type,
                    occurred_at: event.timestamp,
                });
            }
        }
        alerts
    }

    fn check(&mut self, rule: &RuleConfig, e: &AuditEvent) -> Option<(Severity, String)> {
        let who = e.user.as_deref().unwrap_or("an unknown principal");
        let what = describe_artifact(e);
        match rule {
            RuleConfig::Delete { severity } => {
                let is_delete = e.event_type == EventType::Delete
                    || (e.action == "delete" && e.event_type.is_denial());
                is_delete.then(|| (*severity, format!("{who} deleted {what} ({})", e.outcome)))
            }
            RuleConfig::ProtectedTagOverwrite { severity } => {
                (e.event_type == EventType::ImmutabilityDenied).then(|| {
                    (
                        *severity,
                        format!("{who} tried to overwrite protected {what}"),
                    )
                })
            }
            RuleConfig::Quarantine { severity } => (e.event_type == EventType::QuarantineDecision)
                .then(|| (*severity, format!("{} {what} by {who}", e.action))),
            RuleConfig::PolicyChange { severity } => matches!(
                e.event_type,
                EventType::PolicyChanged | EventType::TrustPolicyChanged | EventType::RoleChanged
            )
            .then(|| {
                let target = e.target.as_deref().unwrap_or("(unnamed)");
                (
                    *severity,
                    format!("{who} {} {} {target}", e.action, e.event_type),
                )
            }),
            RuleConfig::ProductionPull {
                environment,
                allowed_principals,
                severity,
            } => {
                let unexpected = e.event_type == EventType::Pull
                    && e.outcome == Outcome::Success
                    && e.environment.as_deref() == Some(environment.as_str())
                    && !e
                        .user
                        .as_ref()
                        .is_some_and(|u| allowed_principals.contains(u));
                unexpected.then(|| {
                    (
                        *severity,
                        format!("{who} pulled {environment} {what}, not an allowed principal"),
                    )
                })
            }
            RuleConfig::AuthFailures {
                threshold,
                window_secs,
                sources_max,
                severity,
            } => {
                if e.event_type != EventType::AuthFailure {
                    return None;
                }
                let window = Duration::seconds(i64::try_from(*window_secs).unwrap_or(i64::MAX));
                let source = source_of(e);
                let count =
                    self.count_failure(&source, e.timestamp, window, *threshold, *sources_max)?;
                Some((
                    *severity,
                    format!("{count} authentication failures from {source} within {window_secs}s"),
                ))
            }
        }
    }

    /// Adds a failure; returns the count when it reaches `threshold` (and starts over).
    fn count_failure(
        &mut self,
        source: &str,
        at: OffsetDateTime,
        window: Duration,
        threshold: u32,
        sources_max: usize,
    ) -> Option<usize> {
        self.clock += 1;
        self.last_seen.insert(source.to_owned(), self.clock);
        let times = self.failures.entry(source.to_owned()).or_default();
        times.push_back(at);
        while times.front().is_some_and(|&t| at - t >= window) {
            times.pop_front();
        }
        let count = times.len();
        let fired = count >= threshold.max(1) as usize;
        if fired {
            times.clear();
        }
        self.forget_oldest(sources_max.max(1));
        fired.then_some(count)
    }

    fn forget_oldest(&mut self, sources_max: usize) {
        while self.failures.len() > sources_max {
            let Some(oldest) = self
                .last_seen
                .iter()
                .min_by_key(|entry| *entry.1)
                .map(|(s, _)| s.clone())
            else {
                return;
            };
            self.failures.remove(&oldest);
            self.last_seen.remove(&oldest);
        }
    }
}

/// The "source" of an authentication failure: the client address, else the user name.
fn source_of(e: &AuditEvent) -> String {
    match (&e.ip_address, &e.user) {
        (Some(ip), _) => ip.to_string(),
        (None, Some(user)) => format!("user {user}"),
        (None, None) => "an unknown source".into(),
    }
}

fn describe_artifact(e: &AuditEvent) -> String {
    let name = e
        .repository
        .as_deref()
        .or(e.artifact.name.as_deref())
        .unwrap_or("(unknown artifact)");
    match (&e.artifact.version, &e.digest) {
        (Some(v), _) => format!("{name}:{v}"),
        (None, Some(d)) => format!("{name}@{d}"),
        (None, None) => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ChainHead, EventBatch};
    use time::macros::datetime;

    fn run(rules: Vec<RuleConfig>, events: Vec<AuditEvent>) -> Vec<Alert> {
        let batch = EventBatch::new(events).unwrap();
        let linked = batch.link(&ChainHead::EMPTY);
        let mut engine = AlertEngine::new(rules);
        linked
            .events
            .iter()
            .flat_map(|l| engine.evaluate(&l.record, l.event))
            .collect()
    }

    fn t(secs: i64) -> OffsetDateTime {
        datetime!(2026-05-01 12:00 UTC) + Duration::seconds(secs)
    }

    #[test]
    fn each_default_rule_fires_on_its_event_and_names_it() {
        let cases: Vec<(AuditEvent, &str, Severity)> = vec![
            (
                AuditEvent::new(EventType::Delete)
                    .user("mallory")
                    .repository("prod/api")
                    .digest("sha256:ab"),
                "delete",
                Severity::High,
            ),
            (
                AuditEvent::new(EventType::AuthorizationDenied)
                    .action("delete")
                    .user("eve"),
                "delete",
                Severity::High,
            ),
            (
                AuditEvent::new(EventType::ImmutabilityDenied)
                    .user("ci")
                    .repository("prod/api")
                    .tag("v1"),
                "protected_tag_overwrite",
                Severity::High,
            ),
            (
                AuditEvent::new(EventType::QuarantineDecision).repository("lib/x"),
                "quarantine",
                Severity::High,
            ),
            (
                AuditEvent::new(EventType::TrustPolicyChanged)
                    .user("admin")
                    .target("prod-signers"),
                "policy_change",
                Severity::High,
            ),
            (
                AuditEvent::new(EventType::RoleChanged).user("admin"),
                "policy_change",
                Severity::High,
            ),
        ];
        for (event, rule, severity) in cases {
            let alerts = run(RuleConfig::defaults(), vec![event.clone()]);
            assert_eq!(alerts.len(), 1, "{event:?}");
            assert_eq!(
                (alerts[0].rule.as_str(), alerts[0].severity, alerts[0].seq),
                (rule, severity, 0)
            );
        }
        let quiet = [
            AuditEvent::new(EventType::Push),
            AuditEvent::new(EventType::Pull).environment("production"),
            AuditEvent::new(EventType::AuthorizationDenied).action("push"),
            AuditEvent::new(EventType::AuthFailure),
            AuditEvent::new(EventType::SettingChanged),
        ];
        for event in quiet {
            assert!(
                run(RuleConfig::defaults(), vec![event.clone()]).is_empty(),
                "{event:?}"
            );
        }
    }

    #[test]
    fn auth_failures_fire_per_source_within_the_window() {
        let rule = RuleConfig::AuthFailures {
            threshold: 3,
            window_secs: 60,
            sources_max: 100,
            severity: Severity::Medium,
        };
        let fail = |secs, ip: &str| {
            AuditEvent::new(EventType::AuthFailure)
                .at(t(secs))
                .ip(ip.parse().unwrap())
        };
        let events = vec![
            fail(0, "192.0.2.1"),
            fail(10, "192.0.2.2"),
            fail(20, "192.0.2.1"),
            fail(70, "192.0.2.1"), // the failure at 0 has left the window: 2 in window
            fail(75, "192.0.2.1"), // 3 within 60s -> alert (seq 4)
            fail(76, "192.0.2.1"), // counting starts over
        ];
        let alerts = run(vec![rule], events);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].seq, 4);
        assert!(
            alerts[0].message.contains("192.0.2.1"),
            "{}",
            alerts[0].message
        );
    }

    #[test]
    fn auth_failure_sources_are_bounded() {
        let rule = RuleConfig::AuthFailures {
            threshold: 2,
            window_secs: 600,
            sources_max: 2,
            severity: Severity::Medium,
        };
        let fail = |secs, user: &str| {
            AuditEvent::new(EventType::AuthFailure)
                .at(t(secs))
                .user(user)
        };
        // "a" is forgotten when "c" arrives, so its second failure starts a new count.
        let events = vec![
            fail(0, "a"),
            fail(1, "b"),
            fail(2, "c"),
            fail(3, "a"),
            fail(4, "c"),
        ];
        let alerts = run(vec![rule], events);
        assert_eq!(alerts.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn production_pulls_by_unexpected_principals() {
        let rule = RuleConfig::ProductionPull {
            environment: "production".into(),
            allowed_principals: vec!["deploy-bot".into()],
            severity: Severity::High,
        };
        let pull = |user: &str, env: &str| {
            AuditEvent::new(EventType::Pull)
                .user(user)
                .repository("prod/api")
                .environment(env)
        };
        let events = vec![
            pull("deploy-bot", "production"),
            pull("alice", "production"),
            pull("alice", "staging"),
            AuditEvent::new(EventType::Pull).environment("production"),
            pull("alice", "production").outcome(Outcome::Denied),
        ];
        let alerts = run(vec![rule], events);
        assert_eq!(alerts.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn alert_lines_embed_the_event_verbatim() {
        let event = AuditEvent::new(EventType::Delete).user("m");
        let batch = EventBatch::new(vec![event]).unwrap();
        let linked = batch.link(&ChainHead::EMPTY);
        let record = &linked.events[0].record;
        let alert = AlertEngine::new(RuleConfig::defaults())
            .evaluate(record, linked.events[0].event)
            .remove(0);
        let line = alert.to_line(&record.event_json);
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["type"], "alert");
        assert_eq!(parsed["rule"], "delete");
        assert_eq!(parsed["seq"], 0);
        assert!(line.ends_with(&format!("\"event\":{}}}", record.event_json)));
    }

    #[test]
    fn rule_config_deserialises_with_defaults() {
        let rules: Vec<RuleConfig> = serde_json::from_str(
            r#"[{"kind":"auth_failures","threshold":10},{"kind":"production_pull","allowed_principals":["d"]}]"#,
        )
        .unwrap();
        assert_eq!(
            rules[0],
            RuleConfig::AuthFailures {
                threshold: 10,
                window_secs: 300,
                sources_max: 10_000,
                severity: Severity::Medium
            }
        );
        assert_eq!(
            rules[1],
            RuleConfig::ProductionPull {
                environment: "production".into(),
                allowed_principals: vec!["d".into()],
                severity: Severity::High
            }
        );
    }
}
