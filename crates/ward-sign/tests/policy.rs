#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Trust-policy documents: validation, coverage, storage, identities.

mod common;

use std::collections::BTreeMap;

use common::{TestCa, cosign_fixture, identity, rule, trusted_key};
use serde_json::json;
use ward_core::Digest;
use ward_sign::cosign::{self, CERTIFICATE_ANNOTATION, SIGNATURE_ANNOTATION};
use ward_sign::encoding::b64_encode;
use ward_sign::keys::PrivateKey;
use ward_sign::policy::{Candidate, Match, NamedTrustedRoot, PolicyError, TrustPolicy, Verdict};
use ward_sign::verify::{Context, Evidence, Rejection, Subject};

fn base() -> TrustPolicy {
    TrustPolicy {
        keys: vec![trusted_key("release", &cosign_fixture("cosign.pub"))],
        trust_roots: Vec::new(),
        rules: vec![rule("prod", &["release"], Vec::new(), 1)],
    }
}

#[test]
fn inconsistent_policies_are_refused_with_the_culprit_named() {
    type Edit = fn(&mut TrustPolicy);
    let cases: [(&str, Edit, &str); 7] = [
        (
            "duplicate key",
            |p| p.keys.push(p.keys[0].clone()),
            "duplicate key name \"release\"",
        ),
        (
            "unknown key",
            |p| p.rules[0].keys.push("ghost".into()),
            "unknown key \"ghost\"",
        ),
        (
            "threshold 0",
            |p| p.rules[0].threshold = 0,
            "threshold must be at least 1",
        ),
        (
            "no signers",
            |p| p.rules[0].keys.clear(),
            "nothing could ever satisfy it",
        ),
        (
            "no repositories",
            |p| p.rules[0].repositories.clear(),
            "no repository patterns",
        ),
        (
            "bad key",
            |p| p.keys[0].public_key = "not a key".into(),
            "key \"release\"",
        ),
        (
            "unknown trust root",
            |p| {
                p.rules[0]
                    .identities
                    .push(identity("nowhere", "a@b", None, true))
            },
            "unknown trust root \"nowhere\"",
        ),
    ];
    for (what, edit, needle) in cases {
        let mut policy = base();
        edit(&mut policy);
        let err = policy.compile().unwrap_err().to_string();
        assert!(err.contains(needle), "{what}: {err}");
    }
    let mut bad_regex = base();
    bad_regex.rules[0]
        .identities
        .push(ward_sign::policy::IdentityRule {
            trust_root: "x".into(),
            subject: Match::Regex("(".into()),
            issuer: None,
            require_tlog: true,
        });
    bad_regex.trust_roots.push(NamedTrustedRoot {
        name: "x".into(),
        trusted_root: ward_sign::trust_root::TrustedRoot::from_ca_chains(&[]),
    });
    assert!(matches!(bad_regex.compile(), Err(PolicyError::Rule { .. })));
}

#[test]
fn stored_policies_round_trip_and_misspelt_fields_are_refused() {
    let policy = base();
    let text = serde_json::to_string_pretty(&policy).unwrap();
    let back: TrustPolicy = serde_json::from_str(&text).unwrap();
    assert_eq!(back, policy);
    assert_eq!(back.revision(), policy.revision());

    let mut doc: serde_json::Value = serde_json::to_value(&policy).unwrap();
    doc["rules"][0]["threshhold"] = json!(2);
    let err = serde_json::from_value::<TrustPolicy>(doc)
        .unwrap_err()
        .to_string();
    assert!(err.contains("threshhold"), "{err}");
    let minimal: TrustPolicy = serde_json::from_value(json!({
        "keys": [{"name": "k", "public_key": cosign_fixture("cosign.pub")}],
        "rules": [{"name": "r", "repositories": ["**"], "keys": ["k"]}]
    }))
    .unwrap();
    assert_eq!(
        minimal.rules[0].threshold, 1,
        "the threshold defaults to one signer"
    );
    minimal.compile().unwrap();
}

fn fixture_candidates() -> Vec<Candidate> {
    let annotations = BTreeMap::from([(
        SIGNATURE_ANNOTATION.to_owned(),
        cosign_fixture("signature.b64").trim().to_owned(),
    )]);
    vec![Candidate {
        source: "fixture".into(),
        evidence: Evidence::CosignLayer {
            payload: cosign_fixture("signature-payload.json").into_bytes(),
            annotations,
        },
    }]
}

fn fixture_subject<'a>(repository: &'a str, artifact_type: Option<&'a str>) -> Subject<'a> {
    Subject {
        repository,
        digest: Some(
            "sha256:41026929aa6dcde6f6ef57c683b2834d64e87fd03b8cf74c89bba3ff57851892"
                .parse()
                .unwrap(),
        ),
        artifact_type,
        model: None,
    }
}

#[test]
fn rules_cover_repository_patterns_and_artifact_types() {
    let mut policy = base();
    policy.rules[0].repositories = vec!["prod/**".into(), "models/*".into()];
    policy.rules[0].artifact_types = vec!["application/vnd.oci.image.*".into()];
    let compiled = policy.compile().unwrap();
    let image = Some("application/vnd.oci.image.config.v1+json");
    let cases = [
        ("prod/api", image, true),
        ("prod/team/api", image, true),
        ("models/llm", image, true),
        ("models/team/llm", image, false),
        ("staging/api", image, false),
        (
            "prod/api",
            Some("application/vnd.cncf.helm.config.v1+json"),
            false,
        ),
        ("prod/api", None, false),
    ];
    for (repo, artifact_type, covered) in cases {
        assert_eq!(
            compiled.covers(repo, artifact_type),
            covered,
            "{repo} {artifact_type:?}"
        );
        let verdict =
            compiled.evaluate(&fixture_subject(repo, artifact_type), &[], &Context::now());
        assert_eq!(verdict.covered, covered, "{repo}");
        // Uncovered subjects pass (with a reason saying so); covered ones need signatures.
        assert_eq!(verdict.satisfied, !covered, "{repo}");
        assert!(!verdict.reasons.is_empty());
    }
}

#[test]
fn every_covering_rule_must_be_satisfied() {
    let mut policy = base();
    policy
        .keys
        .push(trusted_key("security", &cosign_fixture("other-key.pub")));
    policy
        .rules
        .push(rule("security sign-off", &["security"], Vec::new(), 1));
    let verdict = policy.compile().unwrap().evaluate(
        &fixture_subject("prod/api", None),
        &fixture_candidates(),
        &Context::now(),
    );
    assert!(!verdict.satisfied);
    let satisfied: Vec<(&str, bool)> = verdict
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r.satisfied))
        .collect();
    assert_eq!(satisfied, [("prod", true), ("security sign-off", false)]);
    assert!(matches!(
        verdict.reasons.iter().find_map(|r| r.rejection.clone()),
        Some(Rejection::KeyNotAccepted { ref name, .. }) if name == "release"
    ));
    let json: Verdict = serde_json::from_str(&serde_json::to_string(&verdict).unwrap()).unwrap();
    assert_eq!(json, verdict, "verdicts survive storage for caching");
}

#[test]
fn identity_patterns_match_whole_names_only() {
    let ca = TestCa::new();
    let (key_path, cert_path) = ca.leaf(
        "alice",
        "alice@example.com.evil.test",
        "https://issuer.example",
        30,
    );
    let key = PrivateKey::from_pem(&std::fs::read_to_string(key_path).unwrap(), None).unwrap();
    let digest = Digest::of(b"image");
    let payload = cosign::payload(&digest, "prod/api");
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
            ward_sign::cosign::CHAIN_ANNOTATION.to_owned(),
            ca.read("intermediate.pem"),
        ),
    ]);
    let candidates = [Candidate {
        source: "sig".into(),
        evidence: Evidence::CosignLayer {
            payload,
            annotations,
        },
    }];
    let subject = Subject {
        repository: "prod/api",
        digest: Some(digest),
        ..Subject::default()
    };
    let verdict_for = |pattern: &str, issuer: Option<Match>| {
        let mut id = identity("corp", "", None, false);
        id.subject = Match::Regex(pattern.into());
        id.issuer = issuer;
        TrustPolicy {
            keys: Vec::new(),
            trust_roots: vec![NamedTrustedRoot {
                name: "corp".into(),
                trusted_root: ca.trusted_root(),
            }],
            rules: vec![rule("corp", &[], vec![id], 1)],
        }
        .compile()
        .unwrap()
        .evaluate(&subject, &candidates, &Context::now())
    };
    assert!(
        !verdict_for(r".*@example\.com", None).satisfied,
        "the pattern is anchored at the end"
    );
    assert!(
        !verdict_for(r"example\.com", None).satisfied,
        "and at the start"
    );
    assert!(verdict_for(r"[a-z]+@example\.com\.evil\.test", None).satisfied);
    assert!(verdict_for(r".*", Some(Match::Exact("https://issuer.example".into()))).satisfied);
    assert!(!verdict_for(r".*", Some(Match::Exact("https://issuer.example/".into()))).satisfied);
}
