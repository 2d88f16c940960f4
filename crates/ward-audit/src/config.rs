//! Configuration of the audit subsystem (the `[audit]` section of `ward.toml`).
//!
//! ```toml
//! [audit]
//! origin = "registry.example.com/audit"
//! checkpoint_interval_secs = 60
//! checkpoint_key_path = "ward-data/audit-checkpoint.pem"
//!
//! [[audit.sinks]]
//! name = "siem"
//! kind = "webhook"
//! url = "https://siem.example.com/ingest/ward"
//! secret = "…"                  # HMAC-SHA256 key; the body signature is in X-Ward-Signature-256
//!
//! [[audit.sinks]]
//! name = "archive"
//! kind = "file"
//! path = "/var/log/ward/audit.jsonl"
//!
//! [[audit.sinks]]
//! name = "syslog"
//! kind = "syslog"
//! transport = "tcp"
//! address = "127.0.0.1:6514"
//!
//! [[audit.alerts.rules]]
//! kind = "auth_failures"
//! threshold = 10
//! window_secs = 60
//!
//! [[audit.alerts.rules]]
//! kind = "production_pull"
//! allowed_principals = ["deploy-bot"]
//!
//! [[audit.alerts.sinks]]
//! name = "security-team"
//! kind = "webhook"
//! url = "https://alerts.example.com/hook"
//! secret = "…"
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::alert::RuleConfig;
use crate::log::LogConfig;

/// The whole audit configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// Record events at all. `false` exists to measure what auditing costs
    /// (BENCHMARKS.md) and for throwaway test registries: the server warns at
    /// start and reports it in `/readyz`. Never turn it off in production.
    pub enabled: bool,
    /// The log's identity in checkpoints (also the checkpoint key's name). No spaces or `+`.
    pub origin: String,
    /// Front-end sizing and event limits.
    pub log: LogConfig,
    /// Seconds between checkpoint rounds.
    pub checkpoint_interval_secs: u64,
    /// Where the Ed25519 checkpoint key lives (PKCS#8 PEM, mode 0600); created if missing.
    pub checkpoint_key_path: PathBuf,
    /// Where every event goes.
    pub sinks: Vec<SinkConfig>,
    /// Rules and where their alerts go.
    pub alerts: AlertsConfig,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            origin: "ward/audit".into(),
            log: LogConfig::default(),
            checkpoint_interval_secs: 60,
            checkpoint_key_path: PathBuf::from("ward-data/audit-checkpoint.pem"),
            sinks: Vec::new(),
            alerts: AlertsConfig::default(),
        }
    }
}

/// Alert rules and sinks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertsConfig {
    /// The rules evaluated over every recorded event.
    pub rules: Vec<RuleConfig>,
    /// Where alerts go (same kinds as event sinks).
    pub sinks: Vec<SinkConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            rules: RuleConfig::defaults(),
            sinks: Vec::new(),
        }
    }
}

/// One destination and how delivery to it is paced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkConfig {
    /// Unique name; also the name of its durable cursor.
    pub name: String,
    /// Where to.
    #[serde(flatten)]
    pub target: SinkTarget,
    /// Batching and retry.
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

/// A sink's destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkTarget {
    /// JSON lines appended to a file, rotated by size.
    File {
        /// The active file; rotated files get `.1`, `.2`, … appended.
        path: PathBuf,
        /// Rotate once the active file would grow past this size.
        #[serde(default = "defaults::file_bytes_max")]
        file_bytes_max: u64,
        /// Rotated files kept (at least 1).
        #[serde(default = "defaults::files_kept_max")]
        files_kept_max: usize,
    },
    /// JSON lines on standard output.
    Stdout,
    /// RFC 5424 syslog messages.
    Syslog {
        /// `host:port` of the collector.
        address: String,
        /// `udp` (RFC 5426; no delivery guarantee) or `tcp` (RFC 6587 octet counting).
        #[serde(default)]
        transport: SyslogTransport,
        /// Syslog facility (default 13, "log audit").
        #[serde(default = "defaults::facility")]
        facility: u8,
        /// APP-NAME field.
        #[serde(default = "defaults::app_name")]
        app_name: String,
        /// HOSTNAME field; `-` (unknown) when unset.
        #[serde(default)]
        hostname: Option<String>,
        /// SD-ID of the structured data element carrying `seq`.
        #[serde(default = "defaults::sd_id")]
        sd_id: String,
        /// Longest message; the JSON part of longer ones is cut.
        #[serde(default = "defaults::message_bytes_max")]
        message_bytes_max: usize,
    },
    /// Batches POSTed as JSON, signed with HMAC-SHA256.
    Webhook {
        /// Endpoint (`https://…`; `http://` only for loopback receivers).
        url: String,
        /// HMAC-SHA256 key.
        secret: Secret,
        /// Per-request timeout.
        #[serde(default = "defaults::timeout_ms")]
        timeout_ms: u64,
    },
}

/// Syslog transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogTransport {
    /// One datagram per message.
    Udp,
    /// Octet-counted frames on one connection.
    #[default]
    Tcp,
}

/// How a sink is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryConfig {
    /// Most events per delivery.
    pub batch_events_max: usize,
    /// How often to look for events written by other processes.
    pub poll_interval_ms: u64,
    /// First retry delay after a failure.
    pub backoff_initial_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            batch_events_max: 100,
            poll_interval_ms: 1000,
            backoff_initial_ms: 200,
            backoff_max_ms: 60_000,
        }
    }
}

/// A secret string: never shown by `Debug` or written back by `Serialize`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret bytes, for keying a MAC.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

mod defaults {
    pub fn file_bytes_max() -> u64 {
        100 * 1024 * 1024
    }
    pub fn files_kept_max() -> usize {
        10
    }
    pub fn facility() -> u8 {
        13
    }
    pub fn app_name() -> String {
        "ward".into()
    }
    /// 32473 is the private enterprise number reserved for documentation (RFC 5612).
    pub fn sd_id() -> String {
        "ward@32473".into()
    }
    pub fn message_bytes_max() -> usize {
        8192
    }
    pub fn timeout_ms() -> u64 {
        10_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_deserialise_with_defaults() {
        let config: AuditConfig = serde_json::from_value(serde_json::json!({
            "origin": "r.example/audit",
            "sinks": [
                {"name": "a", "kind": "file", "path": "/tmp/a.jsonl"},
                {"name": "b", "kind": "stdout", "delivery": {"batch_events_max": 5}},
                {"name": "c", "kind": "syslog", "address": "127.0.0.1:514", "transport": "udp"},
                {"name": "d", "kind": "webhook", "url": "http://127.0.0.1:9/x", "secret": "s3cret"}
            ]
        }))
        .unwrap();
        assert_eq!(config.checkpoint_interval_secs, 60);
        assert_eq!(config.alerts.rules, RuleConfig::defaults());
        let SinkTarget::File {
            file_bytes_max,
            files_kept_max,
            ..
        } = &config.sinks[0].target
        else {
            panic!("not a file sink")
        };
        assert_eq!((*file_bytes_max, *files_kept_max), (100 * 1024 * 1024, 10));
        assert_eq!(config.sinks[1].delivery.batch_events_max, 5);
        assert_eq!(config.sinks[1].delivery.poll_interval_ms, 1000);
        let SinkTarget::Syslog {
            transport,
            facility,
            ..
        } = &config.sinks[2].target
        else {
            panic!("not a syslog sink")
        };
        assert_eq!((*transport, *facility), (SyslogTransport::Udp, 13));
        let SinkTarget::Webhook { secret, .. } = &config.sinks[3].target else {
            panic!("not a webhook sink")
        };
        assert_eq!(secret.expose(), b"s3cret");
    }

    #[test]
    fn secrets_are_never_shown() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&secret).unwrap().contains("hunter2"));
        let target = SinkTarget::Webhook {
            url: "u".into(),
            secret,
            timeout_ms: 1,
        };
        assert!(!format!("{target:?}").contains("hunter2"));
    }
}
