//! X.509 certificates: identities (SANs, Fulcio's OIDC issuer) and chain
//! validation to configured anchors at a given time.
//!
//! Chain rules (RFC 5280, the subset signing certificates need): every
//! certificate on the path is valid at the signing time; every issuer is a CA
//! (basicConstraints cA, keyCertSign when keyUsage is present, path length
//! respected; configured anchors are trusted as given); the leaf may sign
//! (keyUsage digitalSignature and extendedKeyUsage codeSigning when present);
//! an unknown critical extension anywhere rejects the path.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use ward_core::Digest;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use crate::encoding::{PemError, pem_decode_all};
use crate::keys::{KeyError, PublicKey, SignatureScheme};
use crate::time::{UnixSeconds, format_rfc3339};

/// Longest issuer chain followed above a leaf.
pub const CHAIN_DEPTH_MAX: usize = 8;
/// Most issuer signatures checked while looking for one chain. The search
/// backtracks, so intermediates crafted alike (one subject, one key, no path
/// length) would otherwise make it exponential in the chain depth; honest
/// chains need one check per link, a few more with cross-signed roots.
pub const CHAIN_SIGNATURE_CHECKS_MAX: usize = 64;

/// Fulcio's original OIDC issuer extension (raw string value).
pub const OID_FULCIO_ISSUER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's OIDC issuer extension, DER UTF8String value.
pub const OID_FULCIO_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");

const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_EKU_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const OID_EKU_ANY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The PEM armour is broken.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// A PEM block that is not a certificate.
    #[error("expected CERTIFICATE PEM blocks, found {0:?}")]
    NotACertificate(String),
    /// The DER is not an RFC 5280 certificate.
    #[error("malformed certificate: {0}")]
    Malformed(String),
}

/// Why a chain did not validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// A certificate on the path was not valid at the time checked.
    Expired {
        /// Subject of the certificate.
        subject: String,
        /// Its notBefore.
        not_before: UnixSeconds,
        /// Its notAfter.
        not_after: UnixSeconds,
        /// The time checked.
        at: UnixSeconds,
    },
    /// Anything else: no path to an anchor, a non-CA issuer, a bad signature...
    Untrusted(String),
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainError::Expired {
                subject,
                not_before,
                not_after,
                at,
            } => write!(
                f,
                "certificate {subject:?} is valid from {} to {}, not at {}",
                format_rfc3339(*not_before),
                format_rfc3339(*not_after),
                format_rfc3339(*at)
            ),
            ChainError::Untrusted(detail) => f.write_str(detail),
        }
    }
}

/// A parsed certificate with its original DER.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Certificate({:?}, {})",
            self.subject(),
            self.fingerprint()
        )
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl Certificate {
    /// Parses DER.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        Ok(Certificate {
            der: der.to_vec(),
            cert,
        })
    }

    /// Parses every `CERTIFICATE` block of a PEM text, in order.
    pub fn from_pem_chain(text: &str) -> Result<Vec<Self>, CertError> {
        pem_decode_all(text)?
            .iter()
            .map(|block| {
                if block.label != "CERTIFICATE" {
                    return Err(CertError::NotACertificate(block.label.clone()));
                }
                Self::from_der(&block.contents)
            })
            .collect()
    }

    /// The DER encoding, as given.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// sha256 of the DER encoding.
    pub fn fingerprint(&self) -> Digest {
        Digest::of(&self.der)
    }

    /// The subject distinguished name, RFC 4514 style.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// A name for messages: the subject, else the SANs (Fulcio leaves have an
    /// empty subject), else the fingerprint.
    pub fn describe(&self) -> String {
        let subject = self.subject();
        if !subject.is_empty() {
            return subject;
        }
        let sans = self.subject_alt_names();
        if sans.is_empty() {
            self.fingerprint().to_string()
        } else {
            sans.join(", ")
        }
    }

    /// The subject's public key.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        let spki = self.cert.tbs_certificate().subject_public_key_info();
        let der = spki
            .to_der()
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        PublicKey::from_spki_der(&der)
    }

    /// notBefore in Unix seconds.
    pub fn not_before(&self) -> UnixSeconds {
        unix(self.cert.tbs_certificate().validity().not_before)
    }

    /// notAfter in Unix seconds.
    pub fn not_after(&self) -> UnixSeconds {
        unix(self.cert.tbs_certificate().validity().not_after)
    }

    /// Subject alternative names as strings (email, URI, DNS, UTF-8 otherName).
    pub fn subject_alt_names(&self) -> Vec<String> {
        let Ok(Some((_, san))) = self
            .cert
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
        else {
            return Vec::new();
        };
        san.0.iter().filter_map(general_name_text).collect()
    }

    /// The OIDC issuer Fulcio recorded (extension .1.8, else the legacy .1.1).
    pub fn oidc_issuer(&self) -> Option<String> {
        let extensions = self.cert.tbs_certificate().extensions()?;
        let value = |oid| {
            extensions
                .iter()
                .find(|e| e.extn_id == oid)
                .map(|e| e.extn_value.as_bytes())
        };
        if let Some(bytes) = value(OID_FULCIO_ISSUER_V2) {
            return der::asn1::Utf8StringRef::from_der(bytes)
                .ok()
                .map(|s| s.as_str().to_owned());
        }
        value(OID_FULCIO_ISSUER_V1).and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
    }

    fn valid_at(&self, at: UnixSeconds) -> Result<(), ChainError> {
        let (not_before, not_after) = (self.not_before(), self.not_after());
        if at < not_before || at > not_after {
            return Err(ChainError::Expired {
                subject: self.describe(),
                not_before,
                not_after,
                at,
            });
        }
        Ok(())
    }

    fn issuer_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .issuer()
            .to_der()
            .unwrap_or_default()
    }

    fn subject_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap_or_default()
    }

    /// Whether `issuer`'s key signed this certificate.
    fn signed_by(&self, issuer: &Certificate) -> bool {
        let Ok(key) = issuer.public_key() else {
            return false;
        };
        let Ok(tbs) = self.cert.tbs_certificate().to_der() else {
            return false;
        };
        let Some(signature) = self.cert.signature().as_bytes() else {
            return false;
        };
        signature_schemes(self.cert.signature_algorithm().oid)
            .iter()
            .any(|&scheme| key.verify_with(scheme, &tbs, signature).is_ok())
    }

    fn basic_constraints(&self) -> Option<BasicConstraints> {
        self.cert
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
            .ok()
            .flatten()
            .map(|(_, bc)| bc)
    }

    fn key_usage(&self) -> Option<KeyUsage> {
        self.cert
            .tbs_certificate()
            .get_extension::<KeyUsage>()
            .ok()
            .flatten()
            .map(|(_, ku)| ku)
    }

    fn extended_key_usage(&self) -> Option<ExtendedKeyUsage> {
        self.cert
            .tbs_certificate()
            .get_extension::<ExtendedKeyUsage>()
            .ok()
            .flatten()
            .map(|(_, eku)| eku)
    }

    fn unknown_critical_extension(&self) -> Option<ObjectIdentifier> {
        let understood = [OID_KEY_USAGE, OID_SAN, OID_BASIC_CONSTRAINTS, OID_EKU];
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.critical && !understood.contains(&e.extn_id))
            .map(|e| e.extn_id)
    }
}

fn unix(time: x509_cert::time::Time) -> UnixSeconds {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn general_name_text(name: &GeneralName) -> Option<String> {
    match name {
        GeneralName::Rfc822Name(s)
        | GeneralName::DnsName(s)
        | GeneralName::UniformResourceIdentifier(s) => Some(s.as_str().to_owned()),
        GeneralName::OtherName(other) => other
            .value
            .decode_as::<der::asn1::Utf8StringRef<'_>>()
            .ok()
            .map(|s| s.as_str().to_owned()),
        _ => None,
    }
}

fn signature_schemes(oid: ObjectIdentifier) -> &'static [SignatureScheme] {
    use SignatureScheme as S;
    match oid.to_string().as_str() {
        "1.2.840.10045.4.3.2" => &[S::EcdsaSha256],
        "1.2.840.10045.4.3.3" => &[S::EcdsaSha384],
        "1.2.840.10045.4.3.4" => &[S::EcdsaSha512],
        "1.3.101.112" => &[S::Ed25519],
        "1.2.840.113549.1.1.11" => &[S::RsaPkcs1Sha256],
        "1.2.840.113549.1.1.12" => &[S::RsaPkcs1Sha384],
        "1.2.840.113549.1.1.13" => &[S::RsaPkcs1Sha512],
        // RSASSA-PSS names its hash in parameters; each candidate is a sound PSS variant.
        "1.2.840.113549.1.1.10" => &[S::RsaPssSha256, S::RsaPssSha384, S::RsaPssSha512],
        _ => &[],
    }
}

/// Validates `leaf` at time `at` through `intermediates` (untrusted, e.g. from
/// the signature) to one of `anchors` (trusted, from configuration).
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    at: UnixSeconds,
) -> Result<(), ChainError> {
    // Trust first, time second: an untrusted certificate is reported as such
    // even when it has also expired.
    check_leaf(leaf)?;
    let path = if anchors.contains(leaf) {
        Vec::new()
    } else {
        climb(leaf, intermediates, anchors, 0, &mut 0)?
    };
    leaf.valid_at(at)?;
    path.iter().try_for_each(|issuer| issuer.valid_at(at))
}

fn check_leaf(leaf: &Certificate) -> Result<(), ChainError> {
    if let Some(oid) = leaf.unknown_critical_extension() {
        return Err(ChainError::Untrusted(format!(
            "leaf certificate has unknown critical extension {oid}"
        )));
    }
    if leaf.key_usage().is_some_and(|ku| !ku.digital_signature()) {
        return Err(ChainError::Untrusted(
            "leaf certificate's key usage does not allow digital signatures".into(),
        ));
    }
    if let Some(eku) = leaf.extended_key_usage()
        && !eku
            .0
            .iter()
            .any(|oid| *oid == OID_EKU_CODE_SIGNING || *oid == OID_EKU_ANY)
    {
        return Err(ChainError::Untrusted(
            "leaf certificate's extended key usage does not include code signing".into(),
        ));
    }
    Ok(())
}

/// One step up: find who issued `current`, preferring configured anchors;
/// returns the issuers from `current`'s up to the anchor. `checks` counts the
/// issuer signatures verified so far, against [`CHAIN_SIGNATURE_CHECKS_MAX`].
fn climb<'a>(
    current: &Certificate,
    intermediates: &'a [Certificate],
    anchors: &'a [Certificate],
    cas_below: usize,
    checks: &mut usize,
) -> Result<Vec<&'a Certificate>, ChainError> {
    if cas_below > CHAIN_DEPTH_MAX {
        return Err(ChainError::Untrusted(format!(
            "certificate chain longer than {CHAIN_DEPTH_MAX}"
        )));
    }
    let issuer_name = current.issuer_der();
    let issued = |c: &Certificate, checks: &mut usize| {
        if c.subject_der() != issuer_name {
            return Ok(false);
        }
        *checks += 1;
        if *checks > CHAIN_SIGNATURE_CHECKS_MAX {
            return Err(ChainError::Untrusted(format!(
                "gave up looking for a certificate chain after {CHAIN_SIGNATURE_CHECKS_MAX} \
                 issuer signature checks (CHAIN_SIGNATURE_CHECKS_MAX)"
            )));
        }
        Ok(current.signed_by(c))
    };
    for anchor in anchors {
        if issued(anchor, checks)? {
            check_issuer(anchor, cas_below, true)?;
            return Ok(vec![anchor]);
        }
    }
    let mut last_error = None;
    for candidate in intermediates.iter().filter(|c| *c != current) {
        if !issued(candidate, checks)? {
            continue;
        }
        let result = check_issuer(candidate, cas_below, false)
            .and_then(|()| climb(candidate, intermediates, anchors, cas_below + 1, checks));
        match result {
            Ok(mut path) => {
                path.insert(0, candidate);
                return Ok(path);
            }
            // Out of budget: no other branch may search on.
            Err(e) if *checks > CHAIN_SIGNATURE_CHECKS_MAX => return Err(e),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        ChainError::Untrusted(format!(
            "no trusted root issued certificate {:?} (issuer {:?})",
            current.describe(),
            current.cert.tbs_certificate().issuer().to_string()
        ))
    }))
}

fn check_issuer(issuer: &Certificate, cas_below: usize, anchor: bool) -> Result<(), ChainError> {
    let subject = issuer.describe();
    if let Some(oid) = issuer.unknown_critical_extension() {
        return Err(ChainError::Untrusted(format!(
            "CA {subject:?} has unknown critical extension {oid}"
        )));
    }
    match issuer.basic_constraints() {
        Some(bc) if !bc.ca => {
            return Err(ChainError::Untrusted(format!(
                "issuer {subject:?} is not a CA"
            )));
        }
        Some(BasicConstraints {
            path_len_constraint: Some(len),
            ..
        }) if usize::from(len) < cas_below => {
            return Err(ChainError::Untrusted(format!(
                "CA {subject:?} path length constraint {len} exceeded"
            )));
        }
        // Configured anchors may be v1 certificates without basicConstraints.
        None if !anchor => {
            return Err(ChainError::Untrusted(format!(
                "issuer {subject:?} is not marked as a CA"
            )));
        }
        _ => {}
    }
    if issuer.key_usage().is_some_and(|ku| !ku.key_cert_sign()) {
        return Err(ChainError::Untrusted(format!(
            "CA {subject:?} key usage does not allow certificate signing"
        )));
    }
    Ok(())
}
