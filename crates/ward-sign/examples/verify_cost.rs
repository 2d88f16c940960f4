//! The cold cost of verifying one cosign signature against a trust policy:
//! what the registry's pull gate pays on a verdict-cache miss.
//!
//! ```sh
//! cargo run --release -p ward-sign --example verify_cost [iterations]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use ward_core::Digest;
use ward_sign::cosign;
use ward_sign::keys::{KeyAlgorithm, PrivateKey};
use ward_sign::oci::{Descriptor, signature_layers};
use ward_sign::policy::{Candidate, Rule, TrustPolicy, TrustedKey};
use ward_sign::verify::{Context, Subject};

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa3072,
    ] {
        let key = PrivateKey::generate(algorithm).unwrap();
        let image = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: Digest::of(b"an image manifest"),
            size: 17,
            annotations: Default::default(),
            artifact_type: None,
        };
        let signed = cosign::sign(&image, "registry.example/prod/app", &key).unwrap();
        let policy = TrustPolicy {
            keys: vec![TrustedKey {
                name: "release".into(),
                public_key: key.public_key().to_pem(),
                owner: None,
                revoked: false,
            }],
            trust_roots: vec![],
            rules: vec![Rule {
                name: "prod".into(),
                repositories: vec!["prod/**".into()],
                artifact_types: vec![],
                keys: vec!["release".into()],
                identities: vec![],
                threshold: 1,
                docker_reference: Default::default(),
                require_tlog_for_keys: false,
                promote_tags: vec![],
            }],
        }
        .compile()
        .unwrap();
        let layer = &signature_layers(&signed.tag_manifest.bytes).unwrap().layers[0];
        let subject = Subject {
            repository: "prod/app",
            digest: Some(image.digest),
            ..Subject::default()
        };
        let start = Instant::now();
        for _ in 0..iterations {
            let evidence = layer.evidence(signed.payload.bytes.clone()).unwrap();
            let candidates = [Candidate {
                source: signed.tag.clone(),
                evidence,
            }];
            let verdict = policy.evaluate(&subject, &candidates, &Context::now());
            assert!(verdict.satisfied);
        }
        let per = start.elapsed() / iterations;
        println!(
            "{algorithm:?}: {iterations} verifications, {:.1} µs each ({:.0}/s on one core)",
            per.as_secs_f64() * 1e6,
            1.0 / per.as_secs_f64()
        );
    }
}
