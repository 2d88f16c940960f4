//! JSON lines on standard output, for container platforms that collect stdout.

use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::{Envelope, SinkError};

/// Writes one line per item to standard output.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl StdoutSink {
    /// The sink.
    pub fn new() -> StdoutSink {
        StdoutSink
    }

    /// Writes and flushes the batch.
    pub async fn deliver(&mut self, batch: &[Envelope]) -> Result<(), SinkError> {
        write_lines(&mut tokio::io::stdout(), batch).await
    }
}

/// Writes each envelope's line and a newline, then flushes.
pub(crate) async fn write_lines<W: AsyncWrite + Unpin>(
    out: &mut W,
    batch: &[Envelope],
) -> Result<(), SinkError> {
    let mut buffer = Vec::new();
    for envelope in batch {
        buffer.extend_from_slice(envelope.line.as_bytes());
        buffer.push(b'\n');
    }
    let io = |e: std::io::Error| SinkError::Io(format!("writing to standard output: {e}"));
    out.write_all(&buffer).await.map_err(io)?;
    out.flush().await.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[tokio::test]
    async fn lines_are_newline_terminated_in_order() {
        let envelope = |seq: u64| Envelope {
            seq,
            line: format!("{{\"seq\":{seq}}}"),
            severity: 6,
            msgid: "m".into(),
            timestamp: datetime!(2026-05-01 12:00 UTC),
        };
        let mut out = Vec::new();
        write_lines(&mut out, &[envelope(1), envelope(2)])
            .await
            .unwrap();
        assert_eq!(out, b"{\"seq\":1}\n{\"seq\":2}\n");
    }
}
