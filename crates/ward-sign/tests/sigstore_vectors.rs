#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Real sigstore bundles verified offline against real trusted roots.
//!
//! Vectors (see tests/fixtures/README.md): a keyless model-signing bundle from
//! sigstore/model-transparency (production Fulcio + Rekor, DSSE entry with SET,
//! inclusion proof and checkpoint) and a hashedrekord message-signature bundle
//! from sigstore-python (staging).

mod common;

use common::{fixture, fixture_path, keyless_policy};
use ward_core::Digest;
use ward_sign::model::{ModelDirectory, ModelFiles};
use ward_sign::policy::Candidate;
use ward_sign::verify::{Context, Evidence, Rejection, Signer, Subject};

const MODEL_SAN: &str = "stefanb@us.ibm.com";
const MODEL_ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";
const STAGING_SAN: &str = "william@yossarian.net";
const STAGING_ISSUER: &str = "https://github.com/login/oauth";
/// sha256 of the artifact the staging bundle signs (its messageDigest).
const STAGING_DIGEST: &str =
    "sha256:4191e6b4e2b0260e6e297d4797d2a873584965afef021bf22f2bb7bec41102d0";

fn model_bundle() -> Vec<Candidate> {
    vec![Candidate {
        source: "model.sig".into(),
        evidence: Evidence::SigstoreBundle {
            json: fixture("model-transparency/v1.0.1-sigstore/model.sig"),
        },
    }]
}

fn model_dir() -> ModelDirectory {
    let dir = fixture_path("model-transparency/v1.0.1-sigstore");
    ModelDirectory::new(&dir).ignoring(&dir.join("model.sig"))
}

fn first_rejection(verdict: &ward_sign::policy::Verdict) -> Rejection {
    verdict
        .reasons
        .iter()
        .find_map(|r| r.rejection.clone())
        .unwrap_or_else(|| panic!("no rejection in {:#?}", verdict.reasons))
}

#[test]
fn production_keyless_model_signature_verifies_offline() {
    let policy = keyless_policy(
        "sigstore",
        "sigstore/production_trusted_root.json",
        MODEL_SAN,
        MODEL_ISSUER,
    )
    .compile()
    .unwrap();
    let model = model_dir();
    let subject = Subject {
        model: Some(&model),
        ..Subject::default()
    };
    let verdict = policy.evaluate(&subject, &model_bundle(), &Context::now());
    assert!(verdict.satisfied, "{:#?}", verdict.reasons);
    let signer = &verdict.verified_signers[0];
    assert_eq!(signer.signed_at, Some(1_759_851_228));
    match &signer.signer {
        Signer::Certificate {
            subject_alt_names,
            issuer,
            trust_root,
            ..
        } => {
            assert_eq!(subject_alt_names, &[MODEL_SAN.to_owned()]);
            assert_eq!(issuer.as_deref(), Some(MODEL_ISSUER));
            assert_eq!(trust_root, "sigstore");
        }
        other => panic!("unexpected signer {other:?}"),
    }
    // The SET time is trusted, so the 10-minute certificate does not bound the cache.
    assert_eq!(verdict.valid_until, None);
}

#[test]
fn production_model_signature_fails_when_a_file_changes_or_appears() {
    let policy = keyless_policy(
        "sigstore",
        "sigstore/production_trusted_root.json",
        MODEL_SAN,
        MODEL_ISSUER,
    )
    .compile()
    .unwrap();
    let mut files = ModelFiles::default();
    files
        .files
        .insert("signme-1".into(), Digest::of(b"signme-1"));
    files
        .files
        .insert("signme-2".into(), Digest::of(b"signme-X"));
    files.files.insert("extra".into(), Digest::of(b"extra"));
    let subject = Subject {
        model: Some(&files),
        ..Subject::default()
    };
    let verdict = policy.evaluate(&subject, &model_bundle(), &Context::now());
    assert!(!verdict.satisfied);
    match first_rejection(&verdict) {
        Rejection::ModelMismatch {
            missing,
            added,
            changed,
            ..
        } => {
            assert!(missing.is_empty());
            assert_eq!(added, ["extra"]);
            assert_eq!(changed, ["signme-2"]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn production_model_signature_with_another_identity_does_not_count() {
    let policy = keyless_policy(
        "sigstore",
        "sigstore/production_trusted_root.json",
        "someone@else.example",
        MODEL_ISSUER,
    )
    .compile()
    .unwrap();
    let model = model_dir();
    let subject = Subject {
        model: Some(&model),
        ..Subject::default()
    };
    let verdict = policy.evaluate(&subject, &model_bundle(), &Context::now());
    assert!(!verdict.satisfied);
    assert!(matches!(
        first_rejection(&verdict),
        Rejection::IdentityMismatch { .. }
    ));
}

#[test]
fn a_keyless_signature_under_another_trust_root_is_untrusted() {
    // The staging root knows neither production Fulcio nor production Rekor.
    let policy = keyless_policy(
        "staging",
        "sigstore/staging_trusted_root.json",
        MODEL_SAN,
        MODEL_ISSUER,
    )
    .compile()
    .unwrap();
    let model = model_dir();
    let subject = Subject {
        model: Some(&model),
        ..Subject::default()
    };
    let verdict = policy.evaluate(&subject, &model_bundle(), &Context::now());
    assert!(!verdict.satisfied);
    // Trust is judged before time: the chain leads nowhere it trusts.
    assert!(
        matches!(
            first_rejection(&verdict),
            Rejection::UntrustedCertificate { .. }
        ),
        "{:#?}",
        verdict.reasons
    );
}

#[test]
fn staging_message_signature_bundle_verifies_and_binds_its_digest() {
    let policy = keyless_policy(
        "staging",
        "sigstore/staging_trusted_root.json",
        STAGING_SAN,
        STAGING_ISSUER,
    )
    .compile()
    .unwrap();
    let candidates = vec![Candidate {
        source: "bundle".into(),
        evidence: Evidence::SigstoreBundle {
            json: fixture("sigstore/bundle_v3_alt.txt.sigstore"),
        },
    }];
    let good = Subject {
        digest: Some(STAGING_DIGEST.parse().unwrap()),
        ..Subject::default()
    };
    let verdict = policy.evaluate(&good, &candidates, &Context::now());
    assert!(verdict.satisfied, "{:#?}", verdict.reasons);
    assert_eq!(verdict.verified_signers[0].signed_at, Some(1_712_085_616));

    let other = Subject {
        digest: Some(Digest::of(b"something else")),
        ..Subject::default()
    };
    let verdict = policy.evaluate(&other, &candidates, &Context::now());
    assert!(
        matches!(first_rejection(&verdict), Rejection::DigestMismatch { .. }),
        "{:#?}",
        verdict.reasons
    );
}

type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn tampering_with_any_part_of_the_log_evidence_is_detected() {
    let policy = keyless_policy(
        "staging",
        "sigstore/staging_trusted_root.json",
        STAGING_SAN,
        STAGING_ISSUER,
    )
    .compile()
    .unwrap();
    let original: serde_json::Value =
        serde_json::from_slice(&fixture("sigstore/bundle_v3_alt.txt.sigstore")).unwrap();
    let subject = Subject {
        digest: Some(STAGING_DIGEST.parse().unwrap()),
        ..Subject::default()
    };
    let edits: Vec<(&str, Edit)> = vec![
        (
            "integrated time",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1712085617".into()
            }),
        ),
        (
            "SET",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"] = "MEUCIQCDbNwTMuX7lJt//HauYK0/RZ6UbKbYVR+vEr7rns4/ngIgSwRaRO2ody7uWMtIwe/ZRKwvl7+3Kn3IYKZDEj6CX8s=".into()
            }),
        ),
        (
            "proof hash",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][3] =
                    "NzOg27Ucfb8sHqU9tZnKC5VZFuIsRpDYoqmBAPzB42k=".into()
            }),
        ),
        (
            "checkpoint",
            Box::new(|b| {
                let e = &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
                    ["envelope"];
                *e = e
                    .as_str()
                    .unwrap()
                    .replace("25901179\n", "25901180\n")
                    .into();
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut bundle = original.clone();
        edit(&mut bundle);
        let candidates = vec![Candidate {
            source: what.into(),
            evidence: Evidence::SigstoreBundle {
                json: serde_json::to_vec(&bundle).unwrap(),
            },
        }];
        let verdict = policy.evaluate(&subject, &candidates, &Context::now());
        assert!(!verdict.satisfied, "{what}");
        assert!(
            matches!(first_rejection(&verdict), Rejection::TlogInvalid { .. }),
            "{what}: {:#?}",
            verdict.reasons
        );
    }
}
