//! Trust roots in sigstore's `trusted_root.json` shape: certificate authorities
//! (Fulcio or a private CA) and transparency-log keys (Rekor), each with the
//! time window in which it may be used.
//!
//! [`TrustedRoot`] is the document as stored (serde, round-trips unknown-free);
//! [`TrustRoot`] is its checked, parsed form used during verification.

use serde::{Deserialize, Serialize};

use crate::encoding::{b64_decode, b64_encode};
use crate::keys::PublicKey;
use crate::time::{UnixSeconds, format_rfc3339, parse_rfc3339};
use crate::x509::Certificate;

/// Media type of the trusted-root document.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// The `trusted_root.json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedRoot {
    /// `application/vnd.dev.sigstore.trustedroot+json;version=0.1`.
    pub media_type: String,
    /// Transparency logs (Rekor) whose entries count as evidence.
    #[serde(default)]
    pub tlogs: Vec<TransparencyLogInstance>,
    /// Certificate authorities (Fulcio, private CAs).
    #[serde(default)]
    pub certificate_authorities: Vec<CertificateAuthority>,
    /// Certificate-transparency logs (kept for round-tripping; SCTs are not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ctlogs: Vec<TransparencyLogInstance>,
    /// RFC 3161 timestamp authorities (kept for round-tripping; not yet used).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

/// One transparency log and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransparencyLogInstance {
    /// Where the log lives (informative: Ward never contacts it).
    #[serde(default)]
    pub base_url: String,
    /// `SHA2_256`.
    #[serde(default)]
    pub hash_algorithm: String,
    /// The log's signing key.
    pub public_key: PublicKeyDocument,
    /// The log id: sha256 of the key's DER SPKI, base64.
    pub log_id: LogIdDocument,
}

/// A key in a trusted root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyDocument {
    /// Base64 DER SubjectPublicKeyInfo.
    pub raw_bytes: String,
    /// e.g. `PKIX_ECDSA_P256_SHA_256` (informative; the SPKI decides).
    #[serde(default)]
    pub key_details: String,
    /// When the key may be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<TimeRange>,
}

/// A log id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogIdDocument {
    /// Base64 of the 32-byte id.
    pub key_id: String,
}

/// A certificate authority: its chain (intermediates first, root last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthority {
    /// Informative subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<serde_json::Value>,
    /// Informative URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The chain.
    pub cert_chain: CertChainDocument,
    /// When certificates issued by this CA may be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<TimeRange>,
}

/// A list of DER certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertChainDocument {
    /// The certificates.
    pub certificates: Vec<RawBytes>,
}

/// `{"rawBytes": "<base64>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBytes {
    /// Base64 DER.
    pub raw_bytes: String,
}

/// A validity window; an absent end means "still valid".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// RFC 3339 start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// RFC 3339 end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// Why a trusted-root document could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustRootError {
    /// Not JSON of the right shape.
    #[error("trusted root is not valid JSON of the trusted_root.json shape: {0}")]
    Json(String),
    /// A key, certificate, id or time inside is unreadable.
    #[error("trusted root {what} #{index} is invalid: {detail}")]
    Entry {
        /// Which list the entry is in.
        what: &'static str,
        /// Its position.
        index: usize,
        /// What is wrong.
        detail: String,
    },
}

impl TrustedRoot {
    /// Parses a `trusted_root.json` document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustRootError> {
        serde_json::from_slice(bytes).map_err(|e| TrustRootError::Json(e.to_string()))
    }

    /// A trusted root holding private CA chains and no logs, e.g. for
    /// `model_signing`'s certificate mode. Each inner list is one CA's chain.
    pub fn from_ca_chains(chains: &[Vec<Certificate>]) -> Self {
        let certificate_authorities = chains
            .iter()
            .map(|chain| CertificateAuthority {
                subject: None,
                uri: None,
                cert_chain: CertChainDocument {
                    certificates: chain
                        .iter()
                        .map(|c| RawBytes {
                            raw_bytes: b64_encode(c.der()),
                        })
                        .collect(),
                },
                valid_for: None,
            })
            .collect();
        TrustedRoot {
            media_type: TRUSTED_ROOT_MEDIA_TYPE.into(),
            tlogs: Vec::new(),
            certificate_authorities,
            ctlogs: Vec::new(),
            timestamp_authorities: Vec::new(),
        }
    }

    /// Adds a transparency-log key valid from `start`.
    pub fn add_log(&mut self, base_url: &str, key: &PublicKey, start: UnixSeconds) {
        self.tlogs.push(TransparencyLogInstance {
            base_url: base_url.into(),
            hash_algorithm: "SHA2_256".into(),
            public_key: PublicKeyDocument {
                raw_bytes: b64_encode(key.spki_der()),
                key_details: String::new(),
                valid_for: Some(TimeRange {
                    start: Some(format_rfc3339(start)),
                    end: None,
                }),
            },
            log_id: LogIdDocument {
                key_id: b64_encode(key.key_id().0.as_bytes()),
            },
        });
    }
}

/// A validity window in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Earliest valid time, if bounded.
    pub start: Option<UnixSeconds>,
    /// Latest valid time, if bounded.
    pub end: Option<UnixSeconds>,
}

impl Window {
    /// Whether `t` falls inside.
    pub fn contains(&self, t: UnixSeconds) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency log's key, ready to check evidence with.
#[derive(Debug, Clone)]
pub struct LogKey {
    /// The id entries name the log by.
    pub log_id: [u8; 32],
    /// The key.
    pub key: PublicKey,
    /// When it may be used.
    pub valid: Window,
}

/// A certificate authority, ready to validate chains with.
#[derive(Debug, Clone)]
pub struct Authority {
    /// Its certificates (all trusted as anchors).
    pub chain: Vec<Certificate>,
    /// When certificates it issued may be used.
    pub valid: Window,
}

/// A checked trust root with a name policies refer to it by.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    /// The name.
    pub name: String,
    /// Transparency-log keys.
    pub logs: Vec<LogKey>,
    /// Certificate authorities.
    pub authorities: Vec<Authority>,
}

impl TrustRoot {
    /// Checks and parses a document.
    pub fn new(name: &str, doc: &TrustedRoot) -> Result<Self, TrustRootError> {
        let logs = doc
            .tlogs
            .iter()
            .enumerate()
            .map(|(index, log)| {
                parse_log(log).map_err(|detail| TrustRootError::Entry {
                    what: "tlogs",
                    index,
                    detail,
                })
            })
            .collect::<Result<_, _>>()?;
        let authorities = doc
            .certificate_authorities
            .iter()
            .enumerate()
            .map(|(index, ca)| {
                parse_authority(ca).map_err(|detail| TrustRootError::Entry {
                    what: "certificateAuthorities",
                    index,
                    detail,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustRoot {
            name: name.to_owned(),
            logs,
            authorities,
        })
    }

    /// The log with this id, if configured.
    pub fn log(&self, log_id: &[u8]) -> Option<&LogKey> {
        self.logs.iter().find(|l| l.log_id == log_id)
    }
}

fn parse_window(range: Option<&TimeRange>) -> Result<Window, String> {
    let parse = |s: &Option<String>| match s {
        None => Ok(None),
        Some(text) => parse_rfc3339(text)
            .map(Some)
            .ok_or_else(|| format!("bad timestamp {text:?}")),
    };
    match range {
        None => Ok(Window {
            start: None,
            end: None,
        }),
        Some(r) => Ok(Window {
            start: parse(&r.start)?,
            end: parse(&r.end)?,
        }),
    }
}

fn parse_log(log: &TransparencyLogInstance) -> Result<LogKey, String> {
    let spki =
        b64_decode(&log.public_key.raw_bytes).map_err(|_| "public key is not base64".to_owned())?;
    let key = PublicKey::from_spki_der(&spki).map_err(|e| e.to_string())?;
    let log_id: [u8; 32] = b64_decode(&log.log_id.key_id)
        .ok()
        .and_then(|id| id.try_into().ok())
        .ok_or("log id is not 32 base64 bytes")?;
    // Rekor v1 derives the id from the key's SPKI, Rekor v2 from its signed-note
    // name: the id is whatever the trusted root says, and only selects the key.
    Ok(LogKey {
        log_id,
        key,
        valid: parse_window(log.public_key.valid_for.as_ref())?,
    })
}

fn parse_authority(ca: &CertificateAuthority) -> Result<Authority, String> {
    let chain = ca
        .cert_chain
        .certificates
        .iter()
        .map(|raw| {
            let der =
                b64_decode(&raw.raw_bytes).map_err(|_| "certificate is not base64".to_owned())?;
            Certificate::from_der(&der).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err("certificate chain is empty".into());
    }
    Ok(Authority {
        chain,
        valid: parse_window(ca.valid_for.as_ref())?,
    })
}
