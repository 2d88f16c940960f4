#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sigstore bundles built here (key material, no log): message signatures,
//! DSSE statements, malformed and oversized bundles, OCI layer plumbing.

mod common;

use common::{rule, trusted_key};
use serde_json::json;
use ward_core::Digest;
use ward_sign::dsse::{IN_TOTO_PAYLOAD_TYPE, pae};
use ward_sign::encoding::b64_encode;
use ward_sign::keys::{KeyAlgorithm, PrivateKey};
use ward_sign::oci::{
    Descriptor, LayerKind, SIGSTORE_BUNDLE_MEDIA_TYPE, SignatureLayer, model_files,
};
use ward_sign::policy::{Candidate, CompiledPolicy, TrustPolicy, Verdict};
use ward_sign::verify::{Context, Evidence, Limits, Rejection, Subject};

const ARTIFACT: &[u8] = b"an artifact";

fn policy(key: &PrivateKey) -> CompiledPolicy {
    TrustPolicy {
        keys: vec![trusted_key("k", &key.public_key().to_pem())],
        trust_roots: Vec::new(),
        rules: vec![rule("r", &["k"], Vec::new(), 1)],
    }
    .compile()
    .unwrap()
}

fn message_bundle(key: &PrivateKey, artifact: &[u8]) -> serde_json::Value {
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "anything"}, "tlogEntries": []},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64_encode(Digest::of(artifact).as_bytes())},
            "signature": b64_encode(&key.sign(artifact).unwrap())
        }
    })
}

fn dsse_bundle(
    key: &PrivateKey,
    statement: &serde_json::Value,
    signatures: usize,
) -> serde_json::Value {
    let payload = serde_json::to_vec(statement).unwrap();
    let sig = b64_encode(&key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload)).unwrap());
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "verificationMaterial": {"publicKey": {}},
        "dsseEnvelope": {"payload": b64_encode(&payload), "payloadType": IN_TOTO_PAYLOAD_TYPE,
                         "signatures": vec![json!({"sig": sig}); signatures]}
    })
}

fn evaluate_with(
    policy: &CompiledPolicy,
    digest: Digest,
    bundle: &serde_json::Value,
    limits: Limits,
) -> Verdict {
    let subject = Subject {
        digest: Some(digest),
        ..Subject::default()
    };
    let candidates = [Candidate {
        source: "b".into(),
        evidence: Evidence::SigstoreBundle {
            json: serde_json::to_vec(bundle).unwrap(),
        },
    }];
    policy.evaluate(
        &subject,
        &candidates,
        &Context {
            limits,
            ..Context::now()
        },
    )
}

fn rejection(verdict: &Verdict) -> Rejection {
    verdict
        .reasons
        .iter()
        .find_map(|r| r.rejection.clone())
        .unwrap_or_else(|| panic!("{:?}", verdict.reasons))
}

#[test]
fn bundles_bind_the_digest_they_sign() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let policy = policy(&key);
    let digest = Digest::of(ARTIFACT);
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "img", "digest": {"sha256": digest.hex()}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {}
    });
    for bundle in [
        message_bundle(&key, ARTIFACT),
        dsse_bundle(&key, &statement, 1),
    ] {
        assert!(evaluate_with(&policy, digest, &bundle, Limits::default()).satisfied);
        let other = evaluate_with(&policy, Digest::of(b"other"), &bundle, Limits::default());
        assert!(
            matches!(rejection(&other), Rejection::DigestMismatch { .. }),
            "{:?}",
            other.reasons
        );
    }
}

#[test]
fn malformed_bundles_are_reported_not_trusted() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let policy = policy(&key);
    let digest = Digest::of(ARTIFACT);
    let statement = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {}});
    let mut both = message_bundle(&key, ARTIFACT);
    both["dsseEnvelope"] = dsse_bundle(&key, &statement, 1)["dsseEnvelope"].clone();
    let mut unknown_type = message_bundle(&key, ARTIFACT);
    unknown_type["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=9");
    let mut tampered_digest = message_bundle(&key, ARTIFACT);
    tampered_digest["messageSignature"]["messageDigest"]["digest"] =
        json!(b64_encode(Digest::of(b"x").as_bytes()));
    let cases = [
        (
            "two DSSE signatures",
            dsse_bundle(&key, &statement, 2),
            "exactly one signature",
        ),
        ("both contents", both, "exactly one of"),
        ("unknown media type", unknown_type, "bundle media type"),
        (
            "tampered digest",
            tampered_digest,
            "does not verify with any trusted key",
        ),
        ("not a bundle", json!({"hello": 1}), "sigstore bundle"),
    ];
    for (what, bundle, needle) in cases {
        let verdict = evaluate_with(&policy, digest, &bundle, Limits::default());
        assert!(!verdict.satisfied, "{what}");
        assert!(
            verdict.summary().contains(needle),
            "{what}: {}",
            verdict.summary()
        );
    }
    let small = Limits {
        bundle_bytes_max: 64,
        ..Limits::default()
    };
    let verdict = evaluate_with(&policy, digest, &message_bundle(&key, ARTIFACT), small);
    assert!(
        verdict.summary().contains("bundle larger than 64 bytes"),
        "{}",
        verdict.summary()
    );
}

#[test]
fn oci_layers_are_checked_against_their_descriptors() {
    let blob = b"{\"mediaType\":\"x\"}".to_vec();
    let layer = SignatureLayer {
        descriptor: Descriptor {
            media_type: SIGSTORE_BUNDLE_MEDIA_TYPE.into(),
            digest: Digest::of(&blob),
            size: blob.len() as u64,
            annotations: Default::default(),
            artifact_type: None,
        },
        kind: LayerKind::SigstoreBundle,
    };
    assert!(layer.evidence(blob.clone()).is_ok());
    assert!(matches!(
        layer.evidence(b"other bytes".to_vec()),
        Err(Rejection::Malformed { .. })
    ));
}

#[test]
fn model_files_come_from_layer_titles() {
    let a = Digest::of(b"a");
    let manifest = json!({
        "schemaVersion": 2,
        "layers": [
            {"mediaType": "application/octet-stream", "digest": a.to_string(), "size": 1, "annotations": {"org.opencontainers.image.title": "weights/a.bin"}},
            {"mediaType": "application/octet-stream", "digest": a.to_string(), "size": 1},
        ]
    });
    let files = model_files(&serde_json::to_vec(&manifest).unwrap(), 100).unwrap();
    assert_eq!(files.files.get("weights/a.bin"), Some(&a));
    assert_eq!(files.problems.len(), 1, "{:?}", files.problems);
}
