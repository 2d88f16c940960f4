#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Interop with the PyPI `model_signing` tool (an independent implementation),
//! in key and certificate modes, both directions. Needs the venv described in
//! crates/ward-sign/requirements-test.txt; fails loudly without it.

mod common;

use std::path::Path;

use common::{TestCa, identity, model_dir, model_signing, rule, trusted_key};
use ward_sign::keys::{KeyAlgorithm, PrivateKey};
use ward_sign::model::{self, ModelDirectory, SignOptions};
use ward_sign::policy::{Candidate, NamedTrustedRoot, TrustPolicy, Verdict};
use ward_sign::verify::{Context, Evidence, Rejection, SignatureFormat, Subject};
use ward_sign::x509::Certificate;

const FILES: &[(&str, &[u8])] = &[
    ("config.json", b"{\"hidden_size\": 8}"),
    ("tokenizer/vocab.txt", b"a\nb\nc\n"),
    ("weights/model-00001.safetensors", b"\x89weights part 1"),
    ("weights/model-00002.safetensors", b"\x89weights part 2"),
];

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write_key(dir: &Path, key: &PrivateKey) -> (String, String) {
    let private = dir.join("key.pem");
    let public = dir.join("key.pub");
    std::fs::write(&private, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    std::fs::write(&public, key.public_key().to_pem()).unwrap();
    (path(&private).to_owned(), path(&public).to_owned())
}

fn evaluate(policy: &TrustPolicy, root: &Path, signature: &Path) -> Verdict {
    let model = ModelDirectory::new(root).ignoring(signature);
    let subject = Subject {
        model: Some(&model),
        ..Subject::default()
    };
    let candidates = [Candidate {
        source: signature.display().to_string(),
        evidence: Evidence::SigstoreBundle {
            json: std::fs::read(signature).unwrap(),
        },
    }];
    policy
        .compile()
        .unwrap()
        .evaluate(&subject, &candidates, &Context::now())
}

fn key_policy(key: &PrivateKey) -> TrustPolicy {
    TrustPolicy {
        keys: vec![trusted_key("signer", &key.public_key().to_pem())],
        trust_roots: Vec::new(),
        rules: vec![rule("models", &["signer"], Vec::new(), 1)],
    }
}

#[test]
fn model_signing_key_mode_signatures_verify_in_ward() {
    for algorithm in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
        let key = PrivateKey::generate(algorithm).unwrap();
        let (tmp, root) = model_dir("model", FILES);
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/config"), b"[core]").unwrap();
        let (private, _) = write_key(tmp.path(), &key);
        // The signature lives inside the model, as model_signing's default does.
        let signature = root.join("model.sig");
        let (ok, out) = model_signing(&[
            "sign",
            "key",
            "--private_key",
            &private,
            "--signature",
            path(&signature),
            path(&root),
        ]);
        assert!(ok, "model_signing sign key failed: {out}");

        let verdict = evaluate(&key_policy(&key), &root, &signature);
        assert!(verdict.satisfied, "{algorithm:?}: {}", verdict.summary());
        assert_eq!(
            verdict.verified_signers[0].format,
            SignatureFormat::ModelSigning
        );

        std::fs::write(
            root.join("weights/model-00002.safetensors"),
            b"\x89weights part X",
        )
        .unwrap();
        let verdict = evaluate(&key_policy(&key), &root, &signature);
        assert!(
            matches!(&verdict.reasons[0].rejection, Some(Rejection::ModelMismatch { changed, .. }) if changed == &["weights/model-00002.safetensors"])
        );
    }
}

#[test]
fn ward_key_mode_signatures_verify_in_model_signing() {
    for algorithm in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
        let key = PrivateKey::generate(algorithm).unwrap();
        let (tmp, root) = model_dir("model", FILES);
        let (_, public) = write_key(tmp.path(), &key);
        let signature = tmp.path().join("ward.sig");
        std::fs::write(
            &signature,
            model::sign_directory(&ModelDirectory::new(&root), &key, &SignOptions::default())
                .unwrap(),
        )
        .unwrap();

        let verify = |root: &Path| {
            model_signing(&[
                "verify",
                "key",
                "--signature",
                path(&signature),
                "--public_key",
                &public,
                path(root),
            ])
        };
        let (ok, out) = verify(&root);
        assert!(
            ok,
            "{algorithm:?}: model_signing rejected Ward's signature: {out}"
        );

        // Its verifier is really checking: an added file fails there too.
        std::fs::write(root.join("weights/extra.bin"), b"surprise").unwrap();
        let (ok, out) = verify(&root);
        assert!(
            !ok,
            "model_signing accepted a model with an added file: {out}"
        );
    }
}

fn certificate_policy(ca: &TestCa, email: &str) -> TrustPolicy {
    TrustPolicy {
        keys: Vec::new(),
        trust_roots: vec![NamedTrustedRoot {
            name: "corp-ca".into(),
            trusted_root: ca.trusted_root(),
        }],
        // A private CA has no transparency log: certificates are checked at the current time.
        rules: vec![rule(
            "models",
            &[],
            vec![identity(
                "corp-ca",
                email,
                Some("https://issuer.example"),
                false,
            )],
            1,
        )],
    }
}

#[test]
fn model_signing_certificate_mode_signatures_verify_in_ward() {
    let ca = TestCa::new();
    let (key_path, cert_path) = ca.leaf(
        "signer",
        "ml-team@example.com",
        "https://issuer.example",
        30,
    );
    let (tmp, root) = model_dir("model", FILES);
    let signature = tmp.path().join("model.sig");
    let intermediate = ca.dir.path().join("intermediate.pem");
    let (ok, out) = model_signing(&[
        "sign",
        "certificate",
        "--private_key",
        path(&key_path),
        "--signing_certificate",
        path(&cert_path),
        "--certificate_chain",
        path(&intermediate),
        "--signature",
        path(&signature),
        path(&root),
    ]);
    assert!(ok, "model_signing sign certificate failed: {out}");

    let verdict = evaluate(
        &certificate_policy(&ca, "ml-team@example.com"),
        &root,
        &signature,
    );
    assert!(verdict.satisfied, "{}", verdict.summary());

    let verdict = evaluate(
        &certificate_policy(&ca, "someone-else@example.com"),
        &root,
        &signature,
    );
    assert!(
        matches!(
            verdict.reasons[0].rejection,
            Some(Rejection::IdentityMismatch { .. })
        ),
        "{:?}",
        verdict.reasons
    );
    let verdict = evaluate(
        &certificate_policy(&TestCa::new(), "ml-team@example.com"),
        &root,
        &signature,
    );
    assert!(
        matches!(
            verdict.reasons[0].rejection,
            Some(Rejection::UntrustedCertificate { .. })
        ),
        "{:?}",
        verdict.reasons
    );
}

#[test]
fn ward_certificate_mode_signatures_verify_in_model_signing() {
    let ca = TestCa::new();
    let (key_path, cert_path) = ca.leaf(
        "signer",
        "ml-team@example.com",
        "https://issuer.example",
        30,
    );
    let key = PrivateKey::from_pem(&std::fs::read_to_string(&key_path).unwrap(), None).unwrap();
    let mut chain =
        Certificate::from_pem_chain(&std::fs::read_to_string(&cert_path).unwrap()).unwrap();
    chain.extend(Certificate::from_pem_chain(&ca.read("intermediate.pem")).unwrap());
    let (tmp, root) = model_dir("model", FILES);
    let signature = tmp.path().join("ward.sig");
    let options = SignOptions {
        certificate_chain: chain,
        ..SignOptions::default()
    };
    std::fs::write(
        &signature,
        model::sign_directory(&ModelDirectory::new(&root), &key, &options).unwrap(),
    )
    .unwrap();

    let root_ca = ca.dir.path().join("root.pem");
    let (ok, out) = model_signing(&[
        "verify",
        "certificate",
        "--signature",
        path(&signature),
        "--certificate_chain",
        path(&root_ca),
        path(&root),
    ]);
    assert!(
        ok,
        "model_signing rejected Ward's certificate-mode signature: {out}"
    );
    let verdict = evaluate(
        &certificate_policy(&ca, "ml-team@example.com"),
        &root,
        &signature,
    );
    assert!(verdict.satisfied, "{}", verdict.summary());

    let stranger = TestCa::new();
    let other_root = stranger.dir.path().join("root.pem");
    let (ok, out) = model_signing(&[
        "verify",
        "certificate",
        "--signature",
        path(&signature),
        "--certificate_chain",
        path(&other_root),
        path(&root),
    ]);
    assert!(
        !ok,
        "model_signing accepted a chain to an unrelated root: {out}"
    );
}
