//! Base64 and PEM: the two text armours every format in this crate wraps bytes in.

use base64::Engine as _;
use base64::engine::general_purpose::{
    STANDARD, STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT,
};
use zeroize::Zeroizing;

/// Most PEM blocks one text may hold (a certificate chain is a handful).
pub const PEM_BLOCKS_MAX: usize = 64;

/// Standard base64 with padding, as cosign, sigstore and model-signing write it.
pub fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64 with or without padding, falling back to the URL-safe
/// alphabet: protobuf's JSON mapping, which sigstore bundles follow, accepts both.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD_PAD_INDIFFERENT
        .decode(text)
        .or_else(|err| URL_SAFE_PAD_INDIFFERENT.decode(text).map_err(|_| err))
}

/// One `-----BEGIN <label>-----` ... `-----END <label>-----` block, decoded.
pub struct PemBlock {
    /// The label, e.g. `PUBLIC KEY` or `ENCRYPTED SIGSTORE PRIVATE KEY`.
    pub label: String,
    /// The decoded body; wiped on drop because private keys travel this way.
    pub contents: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("contents_bytes", &self.contents.len())
            .finish()
    }
}

/// Why text could not be read as PEM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// No `-----BEGIN ...-----` line was found.
    #[error("no PEM block found (expected a line like -----BEGIN PUBLIC KEY-----)")]
    NoBlock,
    /// A block was opened and never closed, or closed with another label.
    #[error("PEM block {0:?} has no matching END line")]
    Unterminated(String),
    /// The body between the armour lines is not base64.
    #[error("PEM block {0:?} does not contain valid base64")]
    BadBase64(String),
    /// More blocks than [`PEM_BLOCKS_MAX`].
    #[error("more than {PEM_BLOCKS_MAX} PEM blocks")]
    TooManyBlocks,
}

/// Every PEM block in `text`, in order. Text outside blocks and RFC 1421 header
/// lines (`Key: value`) inside them are ignored, as OpenSSL and Go do.
pub fn pem_decode_all(text: &str) -> Result<Vec<PemBlock>, PemError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = armour_label(line.trim(), "BEGIN") else {
            continue;
        };
        if blocks.len() == PEM_BLOCKS_MAX {
            return Err(PemError::TooManyBlocks);
        }
        let mut body = Zeroizing::new(String::new());
        let mut closed = false;
        for line in lines.by_ref() {
            let line = line.trim();
            if let Some(end) = armour_label(line, "END") {
                closed = end == label;
                break;
            }
            if !line.contains(':') {
                body.push_str(line);
            }
        }
        if !closed {
            return Err(PemError::Unterminated(label.to_owned()));
        }
        let contents = b64_decode(&body).map_err(|_| PemError::BadBase64(label.to_owned()))?;
        blocks.push(PemBlock {
            label: label.to_owned(),
            contents: Zeroizing::new(contents),
        });
    }
    if blocks.is_empty() {
        return Err(PemError::NoBlock);
    }
    Ok(blocks)
}

/// The first PEM block in `text`.
pub fn pem_decode(text: &str) -> Result<PemBlock, PemError> {
    pem_decode_all(text)?
        .into_iter()
        .next()
        .ok_or(PemError::NoBlock)
}

/// Encodes one PEM block with 64-character lines and a trailing newline, byte for
/// byte what Go's `pem.Encode` and Python's `cryptography` write.
pub fn pem_encode(label: &str, contents: &[u8]) -> String {
    let body = Zeroizing::new(b64_encode(contents));
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk boundary is a char boundary.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn armour_label<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_prefix(kind)?
        .strip_prefix(' ')?
        .strip_suffix("-----")
}

/// Lowercase hex of arbitrary bytes.
pub fn hex(bytes: &[u8]) -> String {
    ward_core::digest::hex_encode(bytes)
}

/// Decodes lowercase or uppercase hex.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_and_wraps_at_64() {
        let data: Vec<u8> = (0..=200u8).collect();
        let text = pem_encode("PUBLIC KEY", &data);
        assert!(
            text.lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----"))
        );
        let block = pem_decode(&text).unwrap();
        assert_eq!(block.label, "PUBLIC KEY");
        assert_eq!(&block.contents[..], &data[..]);
    }

    #[test]
    fn pem_reads_chains_and_ignores_surrounding_text() {
        let text = format!(
            "subject=CN=x\n{}junk\n{}",
            pem_encode("CERTIFICATE", b"one"),
            pem_encode("CERTIFICATE", b"two")
        );
        let blocks = pem_decode_all(&text).unwrap();
        let bodies: Vec<&[u8]> = blocks.iter().map(|b| &b.contents[..]).collect();
        assert_eq!(bodies, [b"one".as_slice(), b"two".as_slice()]);
    }

    #[test]
    fn pem_errors_name_the_problem() {
        let cases = [
            ("hello", PemError::NoBlock),
            (
                "-----BEGIN A-----\nAAAA\n",
                PemError::Unterminated("A".into()),
            ),
            (
                "-----BEGIN A-----\nAAAA\n-----END B-----\n",
                PemError::Unterminated("A".into()),
            ),
            (
                "-----BEGIN A-----\n!!!!\n-----END A-----\n",
                PemError::BadBase64("A".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(pem_decode(text).unwrap_err(), want, "{text:?}");
        }
    }

    #[test]
    fn base64_accepts_the_protobuf_json_variants() {
        for text in ["+/8=", "+/8", "-_8=", "-_8"] {
            assert_eq!(b64_decode(text).unwrap(), [0xfb, 0xff], "{text}");
        }
    }

    #[test]
    fn hex_decodes_both_cases() {
        assert_eq!(hex_decode("00fFa0").unwrap(), [0, 255, 160]);
        assert!(hex_decode("0").is_none());
        assert!(hex_decode("zz").is_none());
    }
}
