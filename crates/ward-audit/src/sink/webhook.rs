//! Batches POSTed to an HTTP endpoint, signed with HMAC-SHA256.
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Ward-Origin: ward.example/audit
//! X-Ward-First-Seq: 100
//! X-Ward-Last-Seq: 149
//! X-Ward-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
//!
//! {"origin":"ward.example/audit","items":[{"type":"event","seq":100,…},…]}
//! ```
//!
//! A 2xx answer acknowledges the batch; anything else (or no answer) makes the runner
//! retry it with exponential back-off. A receiver dedupes by `seq`.

use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use super::{Envelope, SinkError};
use crate::config::Secret;

/// The header carrying the body signature.
pub const SIGNATURE_HEADER: &str = "X-Ward-Signature-256";

type HmacSha256 = Hmac<Sha256>;

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn sign_body(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for byte in tag {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Checks a signature header value in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// A webhook destination.
pub struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Secret,
    origin: String,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.url.as_str())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink posting to `url`.
    pub fn new(
        url: &str,
        secret: Secret,
        origin: &str,
        timeout_ms: u64,
    ) -> Result<WebhookSink, SinkError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| SinkError::Config(format!("webhook url {url:?}: {e}")))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(SinkError::Config(format!(
                    "webhook url {url} must use https (plain http only to a loopback receiver)"
                )));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout_ms.max(1)))
            .build()
            .map_err(|e| SinkError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(WebhookSink {
            client,
            url,
            secret,
            origin: origin.to_owned(),
        })
    }

    /// Posts the batch; Ok only on a 2xx answer.
    pub async fn deliver(&mut self, batch: &[Envelope]) -> Result<(), SinkError> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let body = body(&self.origin, batch);
        let signature = sign_body(self.secret.expose(), body.as_bytes());
        let response = self
            .client
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .header("X-Ward-Origin", &self.origin)
            .header("X-Ward-First-Seq", first.seq.to_string())
            .header("X-Ward-Last-Seq", last.seq.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| SinkError::Http(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SinkError::Status(status.as_u16()))
        }
    }
}

/// The request body: the origin and the items, each embedded verbatim.
fn body(origin: &str, batch: &[Envelope]) -> String {
    let origin = serde_json::to_string(origin).unwrap_or_else(|_| "\"\"".into());
    let items: Vec<&str> = batch.iter().map(|e| e.line.as_str()).collect();
    format!("{{\"origin\":{origin},\"items\":[{}]}}", items.join(","))
}

/// reqwest's error with its causes, which hold the useful part ("connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_known_answer_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign_body(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_verify_and_reject_tampering() {
        let header = sign_body(b"k", b"body");
        assert!(verify_signature(b"k", b"body", &header));
        for (key, body, header) in [
            (&b"k"[..], &b"bodY"[..], header.as_str()),
            (b"K", b"body", header.as_str()),
            (b"k", b"body", &header[7..]),
            (b"k", b"body", "sha256=zz"),
            (b"k", b"body", "sha256="),
        ] {
            assert!(!verify_signature(key, body, header), "{header}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let secret = Secret::new("s");
        assert!(WebhookSink::new("http://127.0.0.1:1/x", secret.clone(), "o", 10).is_ok());
        assert!(WebhookSink::new("https://siem.example/x", secret.clone(), "o", 10).is_ok());
        assert!(WebhookSink::new("http://siem.example/x", secret.clone(), "o", 10).is_err());
        assert!(WebhookSink::new("not a url", secret, "o", 10).is_err());
    }
}
