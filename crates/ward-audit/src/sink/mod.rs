//! Sinks: delivery of events (and alerts) to SIEMs and files, at least once.
//!
//! A sink never sees the write path. Each configured sink has a durable cursor in
//! the store (the next `seq` to deliver) and a task ([`spawn_sink`]) that reads records
//! after the cursor, delivers them, and only then advances the cursor. An outage or
//! a restart therefore delays delivery but never drops an event; a batch that failed
//! half-way is delivered again, so receivers dedupe by the `seq` every line carries.
//!
//! Each delivered item is one JSON line: the export format's `event` line
//! (see [`crate::export`]) or an alert line (see [`crate::alert::Alert::to_line`]).
//!
//! Delivery guarantees per kind: `file` (fsync before the cursor moves) and `webhook`
//! (a 2xx answer before the cursor moves; the HMAC covers the body, and a replayed
//! body only repeats seqs the receiver already has) are at-least-once. `tcp` syslog
//! survives collector outages and restarts, but RFC 6587 has no acknowledgement: what
//! the kernel accepted just before a collector crash can be lost. `udp` syslog and
//! `stdout` are best effort by nature. Use the webhook or a file for a SIEM of record.
//!
//! Every process runs its configured sinks. Several processes sharing one store
//! deliver the same events more than once (never fewer); run sinks on one of them.

mod file;
mod runner;
mod stdout;
mod syslog;
mod webhook;

use time::OffsetDateTime;

pub use file::FileSink;
pub use runner::{SinkMonitor, SinkStatus, spawn_alert_sink, spawn_sink};
pub use stdout::StdoutSink;
pub use syslog::{Fields as SyslogFields, SyslogSink, format_rfc5424};
pub use webhook::{SIGNATURE_HEADER, WebhookSink, sign_body, verify_signature};

use crate::alert::Alert;
use crate::config::{SinkConfig, SinkTarget};
use crate::event::{Outcome, timestamp};
use crate::export;
use crate::record::AuditRecord;

/// One item to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The seq of the event (for an alert, of the event that triggered it).
    pub seq: u64,
    /// One JSON object, no newline.
    pub line: String,
    /// RFC 5424 severity (0 emergency … 7 debug).
    pub severity: u8,
    /// Short type name for syslog's MSGID (`artifact.push`, `alert.delete`).
    pub msgid: String,
    /// When the event happened.
    pub timestamp: OffsetDateTime,
}

impl Envelope {
    /// The envelope of a stored record. A record whose event cannot be parsed is still
    /// delivered (its line is the raw record), with neutral metadata.
    pub fn of_record(record: &AuditRecord) -> Envelope {
        let line = export::event_line(record);
        match record.event() {
            Ok(event) => Envelope {
                seq: record.seq,
                line,
                severity: match event.outcome {
                    Outcome::Success => 6,
                    Outcome::Failure => 5,
                    Outcome::Denied => 4,
                },
                msgid: event.event_type.as_str().to_owned(),
                timestamp: event.timestamp,
            },
            Err(_) => Envelope {
                seq: record.seq,
                line,
                severity: 5,
                msgid: "unparsed".into(),
                timestamp: timestamp::now(),
            },
        }
    }

    /// The envelope of an alert about `record`.
    pub fn of_alert(alert: &Alert, record: &AuditRecord) -> Envelope {
        Envelope {
            seq: alert.seq,
            line: alert.to_line(&record.event_json),
            severity: alert.severity.syslog(),
            msgid: format!("alert.{}", alert.rule),
            timestamp: alert.occurred_at,
        }
    }
}

/// Why a delivery failed. It will be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// A file or socket operation failed.
    #[error("{0}")]
    Io(String),
    /// The HTTP request failed.
    #[error("webhook request failed: {0}")]
    Http(String),
    /// The receiver answered with a non-2xx status.
    #[error("webhook receiver answered HTTP {0}")]
    Status(u16),
    /// The sink is misconfigured.
    #[error("sink misconfigured: {0}")]
    Config(String),
}

/// A configured destination.
#[derive(Debug)]
pub enum Sink {
    /// Rotating JSON-lines file.
    File(FileSink),
    /// Standard output.
    Stdout(StdoutSink),
    /// RFC 5424 syslog.
    Syslog(SyslogSink),
    /// Signed HTTP webhook.
    Webhook(WebhookSink),
}

impl Sink {
    /// Builds the sink `config` describes. `origin` names the log in webhook bodies.
    pub fn from_config(config: &SinkConfig, origin: &str) -> Result<Sink, SinkError> {
        Ok(match &config.target {
            SinkTarget::File {
                path,
                file_bytes_max,
                files_kept_max,
            } => Sink::File(FileSink::new(
                path.clone(),
                *file_bytes_max,
                *files_kept_max,
            )),
            SinkTarget::Stdout => Sink::Stdout(StdoutSink::new()),
            SinkTarget::Syslog {
                address,
                transport,
                facility,
                app_name,
                hostname,
                sd_id,
                message_bytes_max,
            } => Sink::Syslog(SyslogSink::new(
                address.clone(),
                *transport,
                syslog::Fields {
                    facility: *facility,
                    app_name: app_name.clone(),
                    hostname: hostname.clone(),
                    sd_id: sd_id.clone(),
                    message_bytes_max: *message_bytes_max,
                },
            )?),
            SinkTarget::Webhook {
                url,
                secret,
                timeout_ms,
            } => Sink::Webhook(WebhookSink::new(url, secret.clone(), origin, *timeout_ms)?),
        })
    }

    /// A short name of the kind, for status output.
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::File(_) => "file",
            Sink::Stdout(_) => "stdout",
            Sink::Syslog(_) => "syslog",
            Sink::Webhook(_) => "webhook",
        }
    }

    /// Delivers `batch` in order; on error nothing may be assumed delivered.
    pub async fn deliver(&mut self, batch: &[Envelope]) -> Result<(), SinkError> {
        match self {
            Sink::File(s) => s.deliver(batch).await,
            Sink::Stdout(s) => s.deliver(batch).await,
            Sink::Syslog(s) => s.deliver(batch).await,
            Sink::Webhook(s) => s.deliver(batch).await,
        }
    }
}
