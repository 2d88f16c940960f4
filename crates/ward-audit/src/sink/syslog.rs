//! RFC 5424 syslog over UDP (RFC 5426) or TCP with octet counting (RFC 6587 3.4.1).
//!
//! ```text
//! <109>1 2026-05-01T12:00:00.000000Z host ward 4242 artifact.push [ward@32473 seq="17"] BOM{"type":"event",…}
//! ```
//!
//! The priority is `facility * 8 + severity`; severity follows the outcome (success 6,
//! failure 5, denied 4) or the alert's severity. The structured data carries the
//! `seq` so a collector can dedupe redelivered messages.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpStream, UdpSocket};

use super::{Envelope, SinkError};
use crate::config::SyslogTransport;
use crate::event::timestamp;

/// How long a connect or a write may take.
const SYSLOG_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The header fields of every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// Syslog facility (0–23).
    pub facility: u8,
    /// APP-NAME.
    pub app_name: String,
    /// HOSTNAME, `-` when unknown.
    pub hostname: Option<String>,
    /// SD-ID of the element carrying `seq`.
    pub sd_id: String,
    /// Longest message in bytes.
    pub message_bytes_max: usize,
}

/// A syslog destination.
#[derive(Debug)]
pub struct SyslogSink {
    address: String,
    transport: SyslogTransport,
    fields: Fields,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
}

/// Keeps printable US-ASCII (`%d33-126`) minus `forbidden`, at most `max` characters; `-` if empty.
fn header_field(value: &str, max: usize, forbidden: &[char]) -> String {
    let cleaned: String = value
        .chars()
        .filter(|c| ('!'..='~').contains(c) && !forbidden.contains(c))
        .take(max)
        .collect();
    if cleaned.is_empty() {
        "-".into()
    } else {
        cleaned
    }
}

/// Formats one RFC 5424 message of at most `fields.message_bytes_max` bytes.
pub fn format_rfc5424(fields: &Fields, procid: u32, envelope: &Envelope) -> String {
    let pri = u16::from(fields.facility.min(23)) * 8 + u16::from(envelope.severity.min(7));
    let host = header_field(fields.hostname.as_deref().unwrap_or("-"), 255, &[]);
    let app = header_field(&fields.app_name, 48, &[]);
    let msgid = header_field(&envelope.msgid, 32, &[]);
    let sd_id = header_field(&fields.sd_id, 32, &['=', ']', '"']);
    let head = format!(
        "<{pri}>1 {} {host} {app} {procid} {msgid} ",
        timestamp::format(envelope.timestamp)
    );
    let sd = format!("[{sd_id} seq=\"{}\"]", envelope.seq);
    let full = format!("{head}{sd} \u{feff}{}", envelope.line);
    if full.len() <= fields.message_bytes_max {
        return full;
    }
    let marked = format!(
        "{head}[{sd_id} seq=\"{}\" truncated=\"true\"] \u{feff}",
        envelope.seq
    );
    let mut room = fields
        .message_bytes_max
        .saturating_sub(marked.len())
        .min(envelope.line.len());
    while !envelope.line.is_char_boundary(room) {
        room -= 1;
    }
    format!("{marked}{}", &envelope.line[..room])
}

fn io(what: &str, address: &str) -> impl FnOnce(std::io::Error) -> SinkError {
    let context = format!("syslog {what} {address}");
    move |e| SinkError::Io(format!("{context}: {e}"))
}

fn timed_out(what: &str, address: &str) -> SinkError {
    SinkError::Io(format!(
        "syslog {what} {address}: timed out after {SYSLOG_IO_TIMEOUT:?}"
    ))
}

impl SyslogSink {
    /// A sink sending to `address` (`host:port`).
    pub fn new(
        address: String,
        transport: SyslogTransport,
        fields: Fields,
    ) -> Result<SyslogSink, SinkError> {
        if fields.message_bytes_max < 480 {
            return Err(SinkError::Config(
                "syslog message_bytes_max must be at least 480 (RFC 5424)".into(),
            ));
        }
        Ok(SyslogSink {
            address,
            transport,
            fields,
            udp: None,
            tcp: None,
        })
    }

    /// Sends the batch in order.
    pub async fn deliver(&mut self, batch: &[Envelope]) -> Result<(), SinkError> {
        let procid = std::process::id();
        let messages: Vec<String> = batch
            .iter()
            .map(|e| format_rfc5424(&self.fields, procid, e))
            .collect();
        let result = match self.transport {
            SyslogTransport::Udp => self.send_udp(&messages).await,
            SyslogTransport::Tcp => self.send_tcp(&messages).await,
        };
        if result.is_err() {
            self.udp = None;
            self.tcp = None;
        }
        result
    }

    async fn send_udp(&mut self, messages: &[String]) -> Result<(), SinkError> {
        if self.udp.is_none() {
            let target = tokio::net::lookup_host(&self.address)
                .await
                .map_err(io("resolving", &self.address))?
                .next()
                .ok_or_else(|| {
                    SinkError::Config(format!(
                        "syslog address {} resolves to nothing",
                        self.address
                    ))
                })?;
            let local = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(local)
                .await
                .map_err(io("binding for", &self.address))?;
            socket
                .connect(target)
                .await
                .map_err(io("connecting to", &self.address))?;
            self.udp = Some(socket);
        }
        let Some(socket) = &self.udp else {
            return Err(SinkError::Io("syslog socket unavailable".into()));
        };
        for message in messages {
            socket
                .send(message.as_bytes())
                .await
                .map_err(io("sending to", &self.address))?;
        }
        Ok(())
    }

    async fn send_tcp(&mut self, messages: &[String]) -> Result<(), SinkError> {
        if self.tcp.is_none() {
            let connect = TcpStream::connect(&self.address);
            let stream = tokio::time::timeout(SYSLOG_IO_TIMEOUT, connect)
                .await
                .map_err(|_| timed_out("connecting to", &self.address))?
                .map_err(io("connecting to", &self.address))?;
            self.tcp = Some(stream);
        }
        let Some(stream) = &mut self.tcp else {
            return Err(SinkError::Io("syslog connection unavailable".into()));
        };
        let mut frames = Vec::new();
        for message in messages {
            frames.extend_from_slice(format!("{} ", message.len()).as_bytes());
            frames.extend_from_slice(message.as_bytes());
        }
        let write = async {
            stream.write_all(&frames).await?;
            stream.flush().await
        };
        tokio::time::timeout(SYSLOG_IO_TIMEOUT, write)
            .await
            .map_err(|_| timed_out("writing to", &self.address))?
            .map_err(io("writing to", &self.address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn fields(max: usize) -> Fields {
        Fields {
            facility: 13,
            app_name: "ward".into(),
            hostname: Some("reg 1".into()),
            sd_id: "ward@32473".into(),
            message_bytes_max: max,
        }
    }

    fn envelope(line: &str) -> Envelope {
        Envelope {
            seq: 17,
            line: line.into(),
            severity: 4,
            msgid: "deny.scan".into(),
            timestamp: datetime!(2026-05-01 12:00 UTC),
        }
    }

    #[test]
    fn known_answer() {
        let msg = format_rfc5424(&fields(8192), 42, &envelope("{\"a\":1}"));
        assert_eq!(
            msg,
            "<108>1 2026-05-01T12:00:00.000000Z reg1 ward 42 deny.scan [ward@32473 seq=\"17\"] \u{feff}{\"a\":1}"
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary_and_marked() {
        let line = format!("{{\"x\":\"{}\"}}", "é".repeat(400));
        let msg = format_rfc5424(&fields(500), 42, &envelope(&line));
        assert!(msg.len() <= 500, "{}", msg.len());
        assert!(msg.contains("truncated=\"true\""));
        assert!(msg.is_char_boundary(msg.len()));
    }

    #[test]
    fn too_small_a_limit_is_refused() {
        assert!(SyslogSink::new("127.0.0.1:1".into(), SyslogTransport::Udp, fields(100)).is_err());
    }
}
