//! ward-sign: Ward's signature library. **It does no network I/O**: everything
//! it verifies or produces is bytes handed in or handed back.
//!
//! What it provides:
//! - Keys ([`keys`]): ECDSA P-256/P-384, Ed25519 and RSA public and private
//!   keys; cosign's encrypted private-key PEM read and written (both labels), so
//!   cosign uses Ward's keys and Ward uses cosign's; key ids.
//! - Formats, one module each behind one interface ([`verify::Evidence::verify`]):
//!   cosign simple signing ([`cosign`]), sigstore bundles v0.1-v0.3 with a
//!   message signature or a DSSE envelope ([`bundle`], [`dsse`]), OpenSSF model
//!   signing v1.0 as the `model_signing` tool writes it ([`model`]) and the
//!   mission's RSA-PSS model scheme ([`pss`]).
//! - Trust ([`x509`], [`trust_root`], [`tlog`]): certificate chains to
//!   configured roots at the signing time, Fulcio identities, and Rekor
//!   evidence (SET, inclusion proof, signed checkpoint) checked offline against
//!   log keys from a sigstore `trusted_root.json`.
//! - Policy ([`policy`]): per repository pattern, which keys and identities
//!   count and how many distinct signers are needed; [`policy::Verdict`] lists
//!   every signer that counted and why everything else did not.
//! - Signing: cosign signature artifacts in both storage forms (tag
//!   `sha256-<hex>.sig` and OCI 1.1 referrer, [`cosign::sign`], [`oci`]), model
//!   bundles in key and certificate mode ([`model::sign_directory`]).
//!
//! The design decision a reader must know: **verification and trust are
//! separate steps.** A format module only establishes what a signature says and
//! who made it ([`verify::Verified`]) against everything the policy knows,
//! revoked keys included; [`policy::CompiledPolicy::evaluate`] then decides
//! whether that signer counts for this repository. So a revoked key is reported
//! as "revoked", not as "unknown", and every refusal carries a
//! [`verify::Rejection`] a person can act on.
//!
//! ```
//! use ward_sign::cosign;
//! use ward_sign::keys::{KeyAlgorithm, PrivateKey};
//! use ward_sign::oci::{Descriptor, OCI_MANIFEST_MEDIA_TYPE, signature_layers};
//! use ward_sign::policy::{Candidate, Rule, TrustPolicy, TrustedKey};
//! use ward_sign::verify::{Context, Subject};
//!
//! let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
//! let manifest = br#"{"schemaVersion":2}"#;
//! let image = Descriptor {
//!     media_type: OCI_MANIFEST_MEDIA_TYPE.into(),
//!     digest: ward_core::Digest::of(manifest),
//!     size: manifest.len() as u64,
//!     annotations: Default::default(),
//!     artifact_type: None,
//! };
//! let signed = cosign::sign(&image, "registry.example/team/app", &key)?;
//!
//! let policy = TrustPolicy {
//!     keys: vec![TrustedKey { name: "release".into(), public_key: key.public_key().to_pem(), owner: None, revoked: false }],
//!     trust_roots: vec![],
//!     rules: vec![Rule {
//!         name: "prod".into(),
//!         repositories: vec!["team/**".into()],
//!         artifact_types: vec![],
//!         keys: vec!["release".into()],
//!         identities: vec![],
//!         threshold: 1,
//!         docker_reference: Default::default(),
//!         require_tlog_for_keys: false,
//!         promote_tags: vec![],
//!     }],
//! }
//! .compile()?;
//!
//! // What a registry would do: read the signature manifest, fetch each layer's blob.
//! let layer = &signature_layers(&signed.tag_manifest.bytes)?.layers[0];
//! let evidence = layer.evidence(signed.payload.bytes.clone())?;
//! let subject = Subject { repository: "team/app", digest: Some(image.digest), ..Subject::default() };
//! let verdict = policy.evaluate(&subject, &[Candidate { source: signed.tag.clone(), evidence }], &Context::now());
//! assert!(verdict.satisfied, "{}", verdict.summary());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod bundle;
pub mod cosign;
pub mod dsse;
pub mod encoding;
pub mod keys;
pub mod model;
pub mod oci;
pub mod password;
pub mod policy;
pub mod pss;
pub mod time;
pub mod tlog;
pub mod trust_root;
pub mod verify;
pub mod x509;
