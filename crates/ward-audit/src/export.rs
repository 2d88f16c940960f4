//! The export format: JSON lines an auditor can verify offline.
//!
//! One JSON object per line, UTF-8, `\n`-terminated, distinguished by `"type"`:
//!
//! ```text
//! {"type":"header","format":"ward-audit-export","version":1,"origin":"ward.example/audit","exported_at":"2026-05-01T12:00:00.000000Z","tree_size":1042}
//! {"type":"checkpoint","tree_size":1024,"note":"ward.example/audit\n1024\n…\n\n— ward.example/audit …\n"}
//! {"type":"event","seq":0,"prev_hash":"<64 hex>","hash":"<64 hex>","event":{…}}
//! ```
//!
//! - `header` comes first and names the log (`origin`) and how many events follow;
//! - `checkpoint` lines carry the signed note verbatim (as a JSON string);
//! - `event` lines carry a record; the value of `"event"` is the record's canonical
//!   `event_json` **byte for byte**, so `hash` can be recomputed from the line alone
//!   (`SHA-256(prev_hash || seq as 8-byte big-endian || event)`).
//!
//! Writers put the header first, then checkpoints, then events in `seq` order; readers
//! accept any order. Sinks emit the same `event` lines, so a SIEM's copy of the log can
//! be verified with the same tool.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::checkpoint::CheckpointVerifier;
use crate::event::timestamp;
use crate::hash::Hash;
use crate::record::AuditRecord;
use crate::store::{AuditStore, READ_RECORDS_MAX};
use crate::verify::{Report, Row, Unreadable, Verifier, VerifyLimits};

/// The `format` value of the header.
pub const EXPORT_FORMAT: &str = "ward-audit-export";
/// The `version` value of the header.
pub const EXPORT_VERSION: u32 = 1;

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// Always [`EXPORT_VERSION`].
    pub version: u32,
    /// The log's origin.
    pub origin: String,
    /// When the export was written.
    #[serde(with = "timestamp")]
    pub exported_at: OffsetDateTime,
    /// Events that follow.
    pub tree_size: u64,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLine {
    /// The header.
    Header(Header),
    /// A signed checkpoint note.
    Checkpoint {
        /// The size it claims (unverified).
        tree_size: u64,
        /// The signed note.
        note: String,
    },
    /// A record.
    Event(AuditRecord),
}

/// Why an export could not be written or read at all.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The store failed.
    #[error("audit store failed: {0}")]
    Store(String),
}

/// Limits on reading an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportLimits {
    /// Longest line, in bytes.
    pub line_bytes_max: usize,
    /// Verifier limits.
    pub verify: VerifyLimits,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            line_bytes_max: 1024 * 1024,
            verify: VerifyLimits::default(),
        }
    }
}

#[derive(Serialize)]
struct HeaderLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    header: &'a Header,
}

#[derive(Serialize, Deserialize)]
struct CheckpointLine<'a> {
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    tree_size: u64,
    note: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
struct EventLine<'a> {
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    seq: u64,
    prev_hash: Hash,
    hash: Hash,
    #[serde(borrow)]
    event: &'a RawValue,
}

#[derive(Deserialize)]
struct Tagged<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// The header line (without newline).
pub fn header_line(header: &Header) -> String {
    let line = HeaderLine {
        kind: "header",
        header,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// A checkpoint line (without newline).
pub fn checkpoint_line(tree_size: u64, note: &str) -> String {
    let line = CheckpointLine {
        kind: Cow::Borrowed("checkpoint"),
        tree_size,
        note: Cow::Borrowed(note),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// An event line (without newline). The event JSON is embedded verbatim.
pub fn event_line(record: &AuditRecord) -> String {
    // Written by hand so the stored bytes are copied, never re-serialised.
    format!(
        "{{\"type\":\"event\",\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"event\":{}}}",
        record.seq, record.prev_hash, record.hash, record.event_json
    )
}

/// Parses one line.
pub fn parse_line(line: &str) -> Result<ExportLine, String> {
    let tagged: Tagged<'_> = serde_json::from_str(line)
        .map_err(|e| format!("not a JSON object with a \"type\": {e}"))?;
    match tagged.kind.as_ref() {
        "header" => serde_json::from_str::<Header>(line)
            .map(ExportLine::Header)
            .map_err(|e| format!("bad header: {e}")),
        "checkpoint" => serde_json::from_str::<CheckpointLine<'_>>(line)
            .map(|c| ExportLine::Checkpoint {
                tree_size: c.tree_size,
                note: c.note.into_owned(),
            })
            .map_err(|e| format!("bad checkpoint line: {e}")),
        "event" => serde_json::from_str::<EventLine<'_>>(line)
            .map(|e| {
                ExportLine::Event(AuditRecord {
                    seq: e.seq,
                    prev_hash: e.prev_hash,
                    hash: e.hash,
                    event_json: e.event.get().to_owned(),
                })
            })
            .map_err(|e| format!("bad event line: {e}")),
        other => Err(format!("unknown line type {other:?}")),
    }
}

/// Reads an export line by line. Lines are numbered from 1; a line that cannot be read
/// is reported with its number, and reading goes on.
pub struct ExportReader<R> {
    input: R,
    line: u64,
    limits: ImportLimits,
    buffer: Vec<u8>,
}

impl<R: BufRead> ExportReader<R> {
    /// Reads from `input`.
    pub fn new(input: R, limits: ImportLimits) -> ExportReader<R> {
        ExportReader {
            input,
            line: 0,
            limits,
            buffer: Vec::new(),
        }
    }

    /// Reads the next raw line, cut at `line_bytes_max`; `None` at the end.
    fn next_raw(&mut self) -> Option<std::io::Result<bool>> {
        self.buffer.clear();
        let cap = self.limits.line_bytes_max as u64 + 1;
        let mut taken = <&mut R as std::io::Read>::take(&mut self.input, cap);
        match taken.read_until(b'\n', &mut self.buffer) {
            Ok(0) => None,
            Ok(_) => {
                self.line += 1;
                let complete = self.buffer.ends_with(b"\n");
                if !complete && self.buffer.len() as u64 >= cap {
                    // Skip the rest of an over-long line so the next read starts fresh.
                    let mut sink = Vec::new();
                    if let Err(e) = self.input.read_until(b'\n', &mut sink) {
                        return Some(Err(e));
                    }
                    return Some(Ok(false));
                }
                Some(Ok(true))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl<R: BufRead> Iterator for ExportReader<R> {
    /// A parsed line, or what could not be read at which line.
    type Item = Result<ExportLine, Unreadable>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let within_limit = match self.next_raw()? {
                Ok(ok) => ok,
                Err(e) => {
                    let message = format!("read error: {e}");
                    return Some(Err(Unreadable {
                        line: self.line,
                        message,
                    }));
                }
            };
            let line = self.line;
            if !within_limit {
                let message = format!(
                    "longer than line_bytes_max ({})",
                    self.limits.line_bytes_max
                );
                return Some(Err(Unreadable { line, message }));
            }
            let text = match std::str::from_utf8(&self.buffer) {
                Ok(t) => t.trim_end_matches(['\n', '\r']),
                Err(e) => {
                    return Some(Err(Unreadable {
                        line,
                        message: format!("not UTF-8: {e}"),
                    }));
                }
            };
            if text.is_empty() {
                continue;
            }
            return Some(parse_line(text).map_err(|message| Unreadable { line, message }));
        }
    }
}

/// Writes a complete export of `store` to `output`: header, checkpoints up to the
/// current head, then every record up to it.
pub async fn export_store<S: AuditStore, W: AsyncWrite + Unpin>(
    store: &S,
    origin: &str,
    output: &mut W,
) -> Result<Header, ExportError> {
    let store_error = |e: S::Error| ExportError::Store(e.to_string());
    let io = |source| ExportError::Io {
        context: "writing export".into(),
        source,
    };
    let head = store.head().await.map_err(store_error)?;
    let header = Header {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        origin: origin.into(),
        exported_at: timestamp::now(),
        tree_size: head.size,
    };
    write_line(output, &header_line(&header))
        .await
        .map_err(io)?;
    let mut from = 0;
    loop {
        let page = store
            .read_checkpoints(from, READ_RECORDS_MAX)
            .await
            .map_err(store_error)?;
        let Some(last) = page.last() else { break };
        from = last.tree_size + 1;
        for cp in page.iter().filter(|cp| cp.tree_size <= head.size) {
            write_line(output, &checkpoint_line(cp.tree_size, &cp.note))
                .await
                .map_err(io)?;
        }
    }
    let mut next = 0;
    while next < head.size {
        let want = usize::try_from(head.size - next)
            .unwrap_or(READ_RECORDS_MAX)
            .min(READ_RECORDS_MAX);
        let page = store.read(next, want).await.map_err(store_error)?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for record in page.iter().filter(|r| r.seq < head.size) {
            write_line(output, &event_line(record)).await.map_err(io)?;
        }
    }
    output.flush().await.map_err(io)?;
    Ok(header)
}

async fn write_line<W: AsyncWrite + Unpin>(output: &mut W, line: &str) -> std::io::Result<()> {
    output.write_all(line.as_bytes()).await?;
    output.write_all(b"\n").await
}

/// Writes an export from records and checkpoints already in memory.
pub fn write_export<W: Write>(
    output: &mut W,
    header: &Header,
    checkpoints: &[(u64, String)],
    records: &[AuditRecord],
) -> std::io::Result<()> {
    writeln!(output, "{}", header_line(header))?;
    for (size, note) in checkpoints {
        writeln!(output, "{}", checkpoint_line(*size, note))?;
    }
    for record in records {
        writeln!(output, "{}", event_line(record))?;
    }
    output.flush()
}

/// Verifies an export file offline against trusted checkpoint keys.
///
/// Reads the file twice: once for the header and checkpoints, once streaming the
/// events, so memory does not grow with the number of events.
pub fn verify_file(
    path: &Path,
    trusted: &[CheckpointVerifier],
    limits: ImportLimits,
) -> Result<Report, ExportError> {
    let open = || {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|source| ExportError::Io {
                context: format!("opening {}", path.display()),
                source,
            })
    };
    let mut origin = None;
    let mut notes = Vec::new();
    for line in ExportReader::new(open()?, limits).flatten() {
        match line {
            ExportLine::Header(h) if origin.is_none() => origin = Some(h.origin),
            ExportLine::Checkpoint { note, .. } => notes.push(note),
            _ => {}
        }
    }
    let mut verifier = Verifier::new(&notes, trusted, origin.as_deref(), limits.verify);
    for line in ExportReader::new(open()?, limits) {
        match line {
            Ok(ExportLine::Event(record)) => verifier.push(Row::Record(record)),
            Ok(ExportLine::Header(_) | ExportLine::Checkpoint { .. }) => {}
            Err(unreadable) => verifier.push(Row::Unreadable(unreadable)),
        }
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AuditEvent, EventType};
    use crate::record::{ChainHead, EventBatch};

    fn records(n: usize) -> Vec<AuditRecord> {
        let events = (0..n)
            .map(|i| AuditEvent::new(EventType::Pull).user(format!("u{i}")))
            .collect();
        let batch = EventBatch::new(events).unwrap();
        batch
            .link(&ChainHead::EMPTY)
            .events
            .into_iter()
            .map(|l| l.record)
            .collect()
    }

    #[test]
    fn lines_round_trip_byte_for_byte() {
        for record in records(3) {
            let line = event_line(&record);
            assert_eq!(parse_line(&line).unwrap(), ExportLine::Event(record));
        }
        let note = "o\n1\nAAAA\n\n\u{2014} o AAAA\n";
        assert_eq!(
            parse_line(&checkpoint_line(1, note)).unwrap(),
            ExportLine::Checkpoint {
                tree_size: 1,
                note: note.into()
            }
        );
    }

    #[test]
    fn the_embedded_event_is_not_normalised() {
        let mut record = records(1).remove(0);
        record.event_json = record.event_json.replacen(':', ": ", 1);
        let ExportLine::Event(back) = parse_line(&event_line(&record)).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(back.event_json, record.event_json);
        assert!(
            !back.is_self_consistent(),
            "whitespace changes the hashed bytes"
        );
    }

    #[test]
    fn the_reader_reports_bad_lines_and_goes_on() {
        let good = event_line(&records(1)[0]);
        let long = format!("{{\"type\":\"event\",\"pad\":\"{}\"}}", "x".repeat(600));
        let input = format!("{good}\nnot json\n\n{long}\n{{\"type\":\"mystery\"}}\n{good}");
        let limits = ImportLimits {
            line_bytes_max: 500,
            ..ImportLimits::default()
        };
        let lines: Vec<_> = ExportReader::new(input.as_bytes(), limits).collect();
        assert!(lines[0].is_ok());
        let bad: Vec<u64> = lines
            .iter()
            .filter_map(|l| l.as_ref().err().map(|u| u.line))
            .collect();
        assert_eq!(bad, vec![2, 4, 5]);
        assert!(
            lines[4].is_ok(),
            "the line after an over-long one is read normally"
        );
        assert_eq!(lines.len(), 5);
    }
}
