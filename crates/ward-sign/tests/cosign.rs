#![allow(clippy::unwrap_used, clippy::expect_used)]
//! cosign simple signing: the shared sigstore-rs fixtures, the skopeo-copied
//! manifest, Ward's own signing, Rekor SET annotations and certificates, all
//! evaluated through trust policies.

mod common;

use std::collections::BTreeMap;

use common::{TestCa, cosign_fixture, identity, rule, trusted_key};
use ward_core::Digest;
use ward_sign::cosign::{
    self, BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, SIGNATURE_ANNOTATION,
};
use ward_sign::encoding::{b64_encode, hex};
use ward_sign::keys::{KeyAlgorithm, PrivateKey};
use ward_sign::oci::{
    COSIGN_SIGNATURE_ARTIFACT_TYPE, Descriptor, ImageManifest, OCI_MANIFEST_MEDIA_TYPE,
    signature_layers,
};
use ward_sign::policy::{Candidate, NamedTrustedRoot, ReferenceCheck, TrustPolicy, Verdict};
use ward_sign::tlog::{LogEntry, set_payload};
use ward_sign::trust_root::TrustedRoot;
use ward_sign::verify::{Context, Evidence, Rejection, Subject};

const IMAGE_DIGEST: &str =
    "sha256:41026929aa6dcde6f6ef57c683b2834d64e87fd03b8cf74c89bba3ff57851892";
const REPOSITORY: &str = "test/fixture";

fn image_digest() -> Digest {
    IMAGE_DIGEST.parse().unwrap()
}

fn subject() -> Subject<'static> {
    Subject {
        repository: REPOSITORY,
        digest: Some(image_digest()),
        ..Subject::default()
    }
}

/// The evidence in a fetched signature manifest, blobs read from the fixture dir.
fn manifest_candidates(manifest_file: &str) -> Vec<Candidate> {
    let manifest = cosign_fixture(manifest_file);
    let found = signature_layers(manifest.as_bytes()).unwrap();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    found
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| Candidate {
            source: format!("{manifest_file} layer {i}"),
            evidence: layer
                .evidence(cosign_fixture("signature-payload.json").into_bytes())
                .unwrap(),
        })
        .collect()
}

fn key_policy(keys: &[(&str, &str)], accepted: &[&str], threshold: u32) -> TrustPolicy {
    TrustPolicy {
        keys: keys
            .iter()
            .map(|(name, pem)| trusted_key(name, pem))
            .collect(),
        trust_roots: Vec::new(),
        rules: vec![rule("signed", accepted, Vec::new(), threshold)],
    }
}

fn evaluate(policy: &TrustPolicy, subject: &Subject<'_>, candidates: &[Candidate]) -> Verdict {
    policy
        .compile()
        .unwrap()
        .evaluate(subject, candidates, &Context::now())
}

fn rejections(verdict: &Verdict) -> Vec<Rejection> {
    verdict
        .reasons
        .iter()
        .filter_map(|r| r.rejection.clone())
        .collect()
}

#[test]
fn the_fixture_signature_verifies_with_cosign_pub_and_not_with_other_key() {
    let cosign_pub = cosign_fixture("cosign.pub");
    let other_pub = cosign_fixture("other-key.pub");
    let candidates = manifest_candidates("signature-manifest.json");

    let verdict = evaluate(
        &key_policy(&[("release", &cosign_pub)], &["release"], 1),
        &subject(),
        &candidates,
    );
    assert!(verdict.satisfied, "{}", verdict.summary());
    assert_eq!(verdict.verified_signers.len(), 1);

    let verdict = evaluate(
        &key_policy(&[("other", &other_pub)], &["other"], 1),
        &subject(),
        &candidates,
    );
    assert!(!verdict.satisfied);
    assert_eq!(rejections(&verdict), [Rejection::UnknownKey]);
}

#[test]
fn the_skopeo_copied_signature_still_verifies() {
    let candidates = manifest_candidates("skopeo-copied-signature-manifest.json");
    let verdict = evaluate(
        &key_policy(
            &[("release", &cosign_fixture("cosign.pub"))],
            &["release"],
            1,
        ),
        &subject(),
        &candidates,
    );
    assert!(verdict.satisfied, "{}", verdict.summary());
}

/// (what, policy, subject, signatures, the rejection expected)
type Case<'a> = (
    &'a str,
    TrustPolicy,
    Subject<'a>,
    Vec<Candidate>,
    fn(&Rejection) -> bool,
);

#[test]
fn negative_cases_each_give_their_reason() {
    let cosign_pub = cosign_fixture("cosign.pub");
    let payload = cosign_fixture("signature-payload.json").into_bytes();
    let annotations = BTreeMap::from([(
        SIGNATURE_ANNOTATION.to_owned(),
        cosign_fixture("signature.b64").trim().to_owned(),
    )]);
    let layer = |payload: Vec<u8>| {
        vec![Candidate {
            source: "layer".into(),
            evidence: Evidence::CosignLayer {
                payload,
                annotations: annotations.clone(),
            },
        }]
    };
    let mut tampered = payload.clone();
    let at = String::from_utf8_lossy(&payload)
        .find("fixture:v1")
        .unwrap()
        + "fixture:v".len();
    tampered[at] = b'2';
    let other_digest = Subject {
        digest: Some(Digest::of(b"another image")),
        ..subject()
    };
    let mut revoked = key_policy(&[("release", &cosign_pub)], &["release"], 1);
    revoked.keys[0].revoked = true;
    let not_in_rule = key_policy(
        &[
            ("release", &cosign_pub),
            ("ci", &cosign_fixture("other-key.pub")),
        ],
        &["ci"],
        1,
    );
    let accepted = key_policy(&[("release", &cosign_pub)], &["release"], 1);

    let cases: Vec<Case<'_>> = vec![
        (
            "tampered payload",
            accepted.clone(),
            subject(),
            layer(tampered),
            |r| *r == Rejection::UnknownKey,
        ),
        (
            "payload naming another digest",
            accepted.clone(),
            other_digest,
            layer(payload.clone()),
            |r| matches!(r, Rejection::DigestMismatch { found, .. } if found == IMAGE_DIGEST),
        ),
        (
            "revoked key",
            revoked,
            subject(),
            layer(payload.clone()),
            |r| matches!(r, Rejection::RevokedKey { name, .. } if name == "release"),
        ),
        (
            "key not in the rule",
            not_in_rule,
            subject(),
            layer(payload.clone()),
            |r| matches!(r, Rejection::KeyNotAccepted { name, .. } if name == "release"),
        ),
        (
            "not JSON",
            accepted.clone(),
            subject(),
            layer(b"not json".to_vec()),
            |r| matches!(r, Rejection::Malformed { .. }),
        ),
        ("no signatures", accepted, subject(), Vec::new(), |_| false),
    ];
    for (what, policy, subject, candidates, expected) in cases {
        let verdict = evaluate(&policy, &subject, &candidates);
        assert!(!verdict.satisfied, "{what}");
        assert!(
            !verdict.reasons.is_empty(),
            "{what}: a refusal must say why"
        );
        let found = rejections(&verdict);
        assert!(
            found.is_empty() || found.iter().any(expected),
            "{what}: {found:?}"
        );
        if candidates.is_empty() {
            assert!(
                verdict.summary().contains("no signatures were found"),
                "{}",
                verdict.summary()
            );
        }
    }
}

#[test]
fn the_docker_reference_check_is_a_policy_option() {
    let candidates = manifest_candidates("signature-manifest.json");
    let mut policy = key_policy(
        &[("release", &cosign_fixture("cosign.pub"))],
        &["release"],
        1,
    );
    let elsewhere = Subject {
        repository: "other/repo",
        ..subject()
    };
    assert!(
        evaluate(&policy, &elsewhere, &candidates).satisfied,
        "ignored by default"
    );
    policy.rules[0].docker_reference = ReferenceCheck::Repository;
    assert!(
        evaluate(&policy, &subject(), &candidates).satisfied,
        "host and tag are not part of the repository"
    );
    let verdict = evaluate(&policy, &elsewhere, &candidates);
    assert!(
        matches!(
            rejections(&verdict)[..],
            [Rejection::ReferenceMismatch { .. }]
        ),
        "{:?}",
        verdict.reasons
    );
}

#[test]
fn reference_repository_strips_host_tag_and_digest() {
    let cases = [
        ("127.0.0.1:5000/test/fixture:v1", "test/fixture"),
        ("registry.example/team/app", "team/app"),
        ("localhost/app@sha256:abcd", "app"),
        ("localhost:5000/app", "app"),
        ("team/app:latest", "team/app"),
    ];
    for (reference, want) in cases {
        assert_eq!(cosign::reference_repository(reference), want, "{reference}");
    }
}

fn image_descriptor() -> Descriptor {
    let manifest = cosign_fixture("image-manifest.json").into_bytes();
    Descriptor {
        media_type: OCI_MANIFEST_MEDIA_TYPE.into(),
        digest: Digest::of(&manifest),
        size: manifest.len() as u64,
        annotations: BTreeMap::new(),
        artifact_type: None,
    }
}

#[test]
fn ward_signatures_verify_in_both_storage_forms() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let signed = cosign::sign(&image_descriptor(), "registry.example/test/fixture", &key).unwrap();
    assert_eq!(signed.tag, format!("sha256-{}.sig", image_digest().hex()));
    let policy = key_policy(&[("ward", &key.public_key().to_pem())], &["ward"], 1);

    for manifest in [&signed.tag_manifest, &signed.referrer_manifest] {
        let layers = signature_layers(&manifest.bytes).unwrap().layers;
        let candidates: Vec<Candidate> = layers
            .iter()
            .map(|l| Candidate {
                source: "ward".into(),
                evidence: l.evidence(signed.payload.bytes.clone()).unwrap(),
            })
            .collect();
        let verdict = evaluate(&policy, &subject(), &candidates);
        assert!(verdict.satisfied, "{}", verdict.summary());
    }
    let referrer: ImageManifest = serde_json::from_slice(&signed.referrer_manifest.bytes).unwrap();
    assert_eq!(
        referrer.artifact_type.as_deref(),
        Some(COSIGN_SIGNATURE_ARTIFACT_TYPE)
    );
    assert_eq!(referrer.subject.unwrap().digest, image_digest());
    assert_eq!(
        signed.referrer_manifest.descriptor.artifact_type.as_deref(),
        Some(COSIGN_SIGNATURE_ARTIFACT_TYPE)
    );
    assert_eq!(signed.referrer_config.descriptor.digest, Digest::of(b"{}"));
}

#[test]
fn signatures_accumulate_under_one_tag_and_thresholds_count_distinct_signers() {
    let alice = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let bob = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let alice_again = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
    let sign = |key: &PrivateKey| cosign::sign(&image_descriptor(), "test/fixture", key).unwrap();
    let (a, b, a2) = (sign(&alice), sign(&bob), sign(&alice_again));

    let existing = cosign::tag_manifest_with(None, &a.layer).unwrap();
    let existing = cosign::tag_manifest_with(Some(&existing.bytes), &b.layer).unwrap();
    let merged = cosign::tag_manifest_with(Some(&existing.bytes), &b.layer).unwrap();
    let layers = signature_layers(&merged.bytes).unwrap().layers;
    assert_eq!(layers.len(), 2, "adding the same signature twice keeps one");

    let payloads = [&a, &b, &a2];
    let candidates = |sigs: &[&cosign::CosignSignature]| -> Vec<Candidate> {
        sigs.iter()
            .enumerate()
            .map(|(i, s)| {
                let layer = signature_layers(&s.tag_manifest.bytes)
                    .unwrap()
                    .layers
                    .remove(0);
                Candidate {
                    source: format!("sig {i}"),
                    evidence: layer.evidence(payloads[i].payload.bytes.clone()).unwrap(),
                }
            })
            .collect()
    };
    let keys = [
        ("alice", alice.public_key().to_pem()),
        ("bob", bob.public_key().to_pem()),
        ("alice-2024", alice_again.public_key().to_pem()),
    ];
    let key_refs: Vec<(&str, &str)> = keys.iter().map(|(n, p)| (*n, p.as_str())).collect();
    let mut policy = key_policy(&key_refs, &["alice", "bob", "alice-2024"], 2);

    let verdict = evaluate(&policy, &subject(), &candidates(&[&a]));
    assert!(!verdict.satisfied);
    assert!(
        verdict
            .summary()
            .contains("requires 2 distinct trusted signer(s), 1 verified"),
        "{}",
        verdict.summary()
    );
    assert!(evaluate(&policy, &subject(), &candidates(&[&a, &b])).satisfied);
    let verdict = evaluate(&policy, &subject(), &candidates(&[&a, &a]));
    assert!(!verdict.satisfied, "the same key twice is one signer");

    // Two keys held by one person count once.
    policy.keys[0].owner = Some("alice".into());
    policy.keys[2].owner = Some("alice".into());
    let payloads_a_a2 = candidates(&[&a, &b, &a2]);
    let verdict = evaluate(
        &policy,
        &subject(),
        &[payloads_a_a2[0].clone(), payloads_a_a2[2].clone()],
    );
    assert!(!verdict.satisfied, "{}", verdict.summary());

    // Revoking bob takes effect at once and changes the revision.
    let before = policy.revision();
    policy.keys[1].revoked = true;
    assert_ne!(policy.revision(), before);
    assert!(!evaluate(&policy, &subject(), &candidates(&[&a, &b])).satisfied);
}

/// A hashedrekord entry for `payload` signed by `log_key` (a stand-in Rekor).
fn rekor_annotation(
    log_key: &PrivateKey,
    payload: &[u8],
    signature: &[u8],
    verifier_pem: &str,
    time: i64,
) -> String {
    let body = serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": Digest::of(payload).hex()}},
            "signature": {"content": b64_encode(signature), "publicKey": {"content": b64_encode(verifier_pem.as_bytes())}}
        }
    });
    let entry = LogEntry {
        log_id: log_key.public_key().key_id().0.as_bytes().to_vec(),
        log_index: 42,
        integrated_time: time,
        body: serde_json::to_vec(&body).unwrap(),
        signed_entry_timestamp: None,
        inclusion_proof: None,
    };
    let set = log_key.sign(&set_payload(&entry)).unwrap();
    serde_json::json!({
        "SignedEntryTimestamp": b64_encode(&set),
        "Payload": {"body": b64_encode(&entry.body), "integratedTime": time, "logIndex": 42, "logID": hex(&entry.log_id)}
    })
    .to_string()
}

fn log_root(log_key: &PrivateKey, extra: Option<TrustedRoot>) -> TrustedRoot {
    let mut root = extra.unwrap_or_else(|| TrustedRoot::from_ca_chains(&[]));
    root.add_log("https://rekor.test", log_key.public_key(), 1_600_000_000);
    root
}

#[test]
fn a_rekor_set_annotation_gives_a_trusted_time_and_is_checked() {
    let log = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let signer = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let payload = cosign::payload(&image_digest(), "test/fixture");
    let signature = signer.sign(&payload).unwrap();
    let time = 1_700_000_000;
    let annotation = rekor_annotation(
        &log,
        &payload,
        &signature,
        &signer.public_key().to_pem(),
        time,
    );
    let layer = |bundle: String| {
        let annotations = BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_owned(), b64_encode(&signature)),
            (BUNDLE_ANNOTATION.to_owned(), bundle),
        ]);
        vec![Candidate {
            source: "layer".into(),
            evidence: Evidence::CosignLayer {
                payload: payload.clone(),
                annotations,
            },
        }]
    };
    let mut policy = key_policy(&[("signer", &signer.public_key().to_pem())], &["signer"], 1);
    policy.rules[0].require_tlog_for_keys = true;
    assert_eq!(
        rejections(&evaluate(&policy, &subject(), &layer(annotation.clone()))),
        [Rejection::TlogRequired],
        "log not configured"
    );

    policy.trust_roots.push(NamedTrustedRoot {
        name: "rekor".into(),
        trusted_root: log_root(&log, None),
    });
    let verdict = evaluate(&policy, &subject(), &layer(annotation.clone()));
    assert!(verdict.satisfied, "{}", verdict.summary());
    assert_eq!(verdict.verified_signers[0].signed_at, Some(time));

    let forged = annotation.replace(
        &format!("\"integratedTime\":{time}"),
        &format!("\"integratedTime\":{}", time + 1),
    );
    assert_ne!(forged, annotation);
    let verdict = evaluate(&policy, &subject(), &layer(forged));
    assert!(
        matches!(rejections(&verdict)[..], [Rejection::TlogInvalid { .. }]),
        "{:?}",
        verdict.reasons
    );

    let other_sig = rekor_annotation(
        &log,
        &payload,
        b"another signature",
        &signer.public_key().to_pem(),
        time,
    );
    let verdict = evaluate(&policy, &subject(), &layer(other_sig));
    assert!(
        matches!(rejections(&verdict)[..], [Rejection::TlogInvalid { .. }]),
        "entry for another signature: {:?}",
        verdict.reasons
    );
}

#[test]
fn certificate_signatures_check_chain_identity_and_time() {
    let ca = TestCa::new();
    let (key_path, cert_path) = ca.leaf("alice", "alice@example.com", "https://issuer.example", 30);
    let key = PrivateKey::from_pem(&std::fs::read_to_string(key_path).unwrap(), None).unwrap();
    let payload = cosign::payload(&image_digest(), "test/fixture");
    let annotations = BTreeMap::from([
        (
            SIGNATURE_ANNOTATION.to_owned(),
            b64_encode(&key.sign(&payload).unwrap()),
        ),
        (
            CERTIFICATE_ANNOTATION.to_owned(),
            std::fs::read_to_string(cert_path).unwrap(),
        ),
        (
            CHAIN_ANNOTATION.to_owned(),
            ca.read("intermediate.pem") + &ca.read("root.pem"),
        ),
    ]);
    let candidates = vec![Candidate {
        source: "layer".into(),
        evidence: Evidence::CosignLayer {
            payload: payload.clone(),
            annotations,
        },
    }];
    let policy = |san: &str, root: TrustedRoot| TrustPolicy {
        keys: Vec::new(),
        trust_roots: vec![NamedTrustedRoot {
            name: "corp".into(),
            trusted_root: root,
        }],
        rules: vec![rule(
            "corp",
            &[],
            vec![identity("corp", san, Some("https://issuer.example"), false)],
            1,
        )],
    };
    let good = policy("alice@example.com", ca.trusted_root());
    let verdict = evaluate(&good, &subject(), &candidates);
    assert!(verdict.satisfied, "{}", verdict.summary());
    assert!(
        verdict.valid_until.is_some(),
        "checked at the current time, so the verdict expires with the certificate"
    );

    let verdict = evaluate(
        &policy("bob@example.com", ca.trusted_root()),
        &subject(),
        &candidates,
    );
    assert!(
        matches!(
            rejections(&verdict)[..],
            [Rejection::IdentityMismatch { .. }]
        ),
        "{:?}",
        verdict.reasons
    );

    let stranger = TestCa::new();
    let verdict = evaluate(
        &policy("alice@example.com", stranger.trusted_root()),
        &subject(),
        &candidates,
    );
    assert!(
        matches!(
            rejections(&verdict)[..],
            [Rejection::UntrustedCertificate { .. }]
        ),
        "{:?}",
        verdict.reasons
    );

    let later = Context {
        now: ward_sign::time::now() + 60 * 86_400,
        ..Context::now()
    };
    let verdict = good
        .compile()
        .unwrap()
        .evaluate(&subject(), &candidates, &later);
    assert!(
        matches!(
            rejections(&verdict)[..],
            [Rejection::CertificateExpired {
                signing_time_trusted: false,
                ..
            }]
        ),
        "{:?}",
        verdict.reasons
    );

    let mut needs_log = good.clone();
    needs_log.rules[0].identities[0].require_tlog = true;
    let verdict = evaluate(&needs_log, &subject(), &candidates);
    assert_eq!(rejections(&verdict), [Rejection::TlogRequired]);
}
