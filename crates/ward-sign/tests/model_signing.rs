#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OpenSSF model signing and the mission's RSA-PSS scheme, Ward against itself
//! and against OpenSSL.

mod common;

use common::{model_dir, rule, run, trusted_key};
use serde_json::json;
use ward_core::Digest;
use ward_sign::keys::{KeyAlgorithm, PrivateKey};
use ward_sign::model::{self, ModelDirectory, ModelFiles, ModelStatement, SignOptions};
use ward_sign::policy::{Candidate, CompiledPolicy, TrustPolicy, Verdict};
use ward_sign::pss;
use ward_sign::verify::{Context, Evidence, Rejection, SignatureFormat, Subject};

const FILES: &[(&str, &[u8])] = &[
    ("config.json", b"{\"layers\": 2}"),
    ("weights/model.safetensors", b"\x00\x01\x02weights"),
    ("weights/extra.bin", b"more"),
    (".git/HEAD", b"ref: refs/heads/main\n"),
];

fn key_policy(key: &PrivateKey) -> CompiledPolicy {
    TrustPolicy {
        keys: vec![trusted_key("model-signer", &key.public_key().to_pem())],
        trust_roots: Vec::new(),
        rules: vec![rule("models", &["model-signer"], Vec::new(), 1)],
    }
    .compile()
    .unwrap()
}

fn evaluate_dir(policy: &CompiledPolicy, model: &ModelDirectory, bundle: &[u8]) -> Verdict {
    let subject = Subject {
        model: Some(model),
        ..Subject::default()
    };
    let candidates = [Candidate {
        source: "model.sig".into(),
        evidence: Evidence::SigstoreBundle {
            json: bundle.to_vec(),
        },
    }];
    policy.evaluate(&subject, &candidates, &Context::now())
}

fn only_rejection(verdict: &Verdict) -> Rejection {
    let found: Vec<Rejection> = verdict
        .reasons
        .iter()
        .filter_map(|r| r.rejection.clone())
        .collect();
    assert_eq!(found.len(), 1, "{:#?}", verdict.reasons);
    found.into_iter().next().unwrap()
}

#[test]
fn a_signed_model_verifies_and_every_change_is_named() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let (_tmp, root) = model_dir("my-model", FILES);
    let model = ModelDirectory::new(&root);
    let bundle = model::sign_directory(&model, &key, &SignOptions::default()).unwrap();
    let policy = key_policy(&key);
    let verdict = evaluate_dir(&policy, &model, &bundle);
    assert!(verdict.satisfied, "{}", verdict.summary());
    assert_eq!(
        verdict.verified_signers[0].format,
        SignatureFormat::ModelSigning
    );

    // Edits to the signed files, each with the reason it must produce.
    type Edit = fn(&std::path::Path);
    let cases: [(&str, Edit, Rejection); 4] = [
        (
            "one byte changed",
            |r| {
                let path = r.join("weights/model.safetensors");
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[1] ^= 0x01;
                std::fs::write(path, bytes).unwrap();
            },
            Rejection::ModelMismatch {
                missing: vec![],
                added: vec![],
                changed: vec!["weights/model.safetensors".into()],
                problems: vec![],
            },
        ),
        (
            "file added",
            |r| std::fs::write(r.join("weights/backdoor.pkl"), b"cos\nsystem\n").unwrap(),
            Rejection::ModelMismatch {
                missing: vec![],
                added: vec!["weights/backdoor.pkl".into()],
                changed: vec![],
                problems: vec![],
            },
        ),
        (
            "file removed",
            |r| std::fs::remove_file(r.join("weights/extra.bin")).unwrap(),
            Rejection::ModelMismatch {
                missing: vec!["weights/extra.bin".into()],
                added: vec![],
                changed: vec![],
                problems: vec![],
            },
        ),
        (
            "file renamed",
            |r| std::fs::rename(r.join("config.json"), r.join("config2.json")).unwrap(),
            Rejection::ModelMismatch {
                missing: vec!["config.json".into()],
                added: vec!["config2.json".into()],
                changed: vec![],
                problems: vec![],
            },
        ),
    ];
    for (what, edit, expected) in cases {
        let (_tmp, root) = model_dir("my-model", FILES);
        edit(&root);
        let verdict = evaluate_dir(&policy, &ModelDirectory::new(&root), &bundle);
        assert!(!verdict.satisfied, "{what}");
        assert_eq!(only_rejection(&verdict), expected, "{what}");
        assert!(
            verdict.summary().contains("model contents differ"),
            "{what}: {}",
            verdict.summary()
        );
    }
}

#[test]
fn git_files_and_the_signature_inside_the_model_are_ignored() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
    let (_tmp, root) = model_dir("m", FILES);
    let signature = root.join("model.sig");
    let model = ModelDirectory::new(&root).ignoring(&signature);
    let bundle = model::sign_directory(&model, &key, &SignOptions::default()).unwrap();
    std::fs::write(&signature, &bundle).unwrap();
    std::fs::write(root.join(".git/HEAD"), b"changed").unwrap();
    let verdict = evaluate_dir(
        &key_policy(&key),
        &ModelDirectory::new(&root).ignoring(&signature),
        &bundle,
    );
    assert!(verdict.satisfied, "{}", verdict.summary());
    // The recorded ignore list is part of what was signed.
    let statement = statement_of(&bundle);
    let ignored = statement["predicate"]["serialization"]["ignore_paths"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        ignored.contains(&json!("model.sig")) && ignored.contains(&json!(".git")),
        "{ignored:?}"
    );
}

fn statement_of(bundle: &[u8]) -> serde_json::Value {
    let bundle: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    let payload =
        ward_sign::encoding::b64_decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

#[test]
fn another_key_or_a_revoked_key_does_not_count() {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let stranger = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let (_tmp, root) = model_dir("m", FILES);
    let model = ModelDirectory::new(&root);
    let bundle = model::sign_directory(&model, &key, &SignOptions::default()).unwrap();
    assert_eq!(
        only_rejection(&evaluate_dir(&key_policy(&stranger), &model, &bundle)),
        Rejection::UnknownKey
    );
    let mut revoked = TrustPolicy {
        keys: vec![trusted_key("model-signer", &key.public_key().to_pem())],
        trust_roots: Vec::new(),
        rules: vec![rule("models", &["model-signer"], Vec::new(), 1)],
    };
    revoked.keys[0].revoked = true;
    let verdict = evaluate_dir(&revoked.compile().unwrap(), &model, &bundle);
    assert!(matches!(
        only_rejection(&verdict),
        Rejection::RevokedKey { .. }
    ));
}

#[test]
fn hostile_statements_are_refused_even_when_validly_signed() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let policy = key_policy(&key);
    let mut files = ModelFiles::default();
    files.files.insert("a.bin".into(), Digest::of(b"a"));
    let good = ModelStatement::new("m", &files, Vec::new());
    let sign = |statement: serde_json::Value| -> Vec<u8> {
        // Signs any statement JSON, so invalid statements carry valid signatures.
        let payload = serde_json::to_vec(&statement).unwrap();
        let sig = key
            .sign(&ward_sign::dsse::pae(
                ward_sign::dsse::IN_TOTO_PAYLOAD_TYPE,
                &payload,
            ))
            .unwrap();
        serde_json::to_vec(&json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": "x"}, "tlogEntries": []},
            "dsseEnvelope": {"payload": ward_sign::encoding::b64_encode(&payload), "payloadType": "application/vnd.in-toto+json",
                             "signatures": [{"sig": ward_sign::encoding::b64_encode(&sig), "keyid": ""}]}
        }))
        .unwrap()
    };
    let mut ignore_everything = good.to_json();
    ignore_everything["predicate"]["serialization"]["ignore_paths"] = json!([".."]);
    let mut no_files = good.to_json();
    no_files["predicate"]["resources"] = json!([]);
    no_files["subject"][0]["digest"]["sha256"] = json!(Digest::of(b"").hex());
    let mut escaping = good.to_json();
    escaping["predicate"]["resources"][0]["name"] = json!("../../etc/passwd");
    let mut wrong_root = good.to_json();
    wrong_root["subject"][0]["digest"]["sha256"] = json!(Digest::of(b"x").hex());
    let mut provenance = good.to_json();
    provenance["predicateType"] = json!("https://slsa.dev/provenance/v1");
    let cases = [
        ("ignore path outside the model", ignore_everything),
        ("no files", no_files),
        ("path escaping the model", escaping),
        ("inconsistent subject digest", wrong_root),
        ("an attestation, not a signature", provenance),
    ];
    for (what, statement) in cases {
        let verdict = policy.evaluate(
            &Subject {
                model: Some(&files),
                ..Subject::default()
            },
            &[Candidate {
                source: what.into(),
                evidence: Evidence::SigstoreBundle {
                    json: sign(statement),
                },
            }],
            &Context::now(),
        );
        assert!(!verdict.satisfied, "{what}");
        assert!(
            matches!(
                only_rejection(&verdict),
                Rejection::Malformed { .. } | Rejection::Unsupported { .. }
            ),
            "{what}: {:?}",
            verdict.reasons
        );
    }
    let verdict = policy.evaluate(
        &Subject {
            model: Some(&files),
            ..Subject::default()
        },
        &[Candidate {
            source: "good".into(),
            evidence: Evidence::SigstoreBundle {
                json: sign(good.to_json()),
            },
        }],
        &Context::now(),
    );
    assert!(verdict.satisfied, "the control case: {}", verdict.summary());
}

#[cfg(unix)]
#[test]
fn symlinks_are_problems_unless_the_signature_allows_them() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let (_tmp, root) = model_dir("m", FILES);
    let model = ModelDirectory::new(&root);
    let bundle = model::sign_directory(&model, &key, &SignOptions::default()).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("link")).unwrap();
    match only_rejection(&evaluate_dir(&key_policy(&key), &model, &bundle)) {
        Rejection::ModelMismatch { problems, .. } => assert!(
            problems[0].starts_with("link: symbolic link"),
            "{problems:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        model::sign_directory(&model, &key, &SignOptions::default()),
        Err(model::ModelSignError::Unreadable(_))
    ));
}

#[test]
fn a_model_can_be_checked_against_an_oci_manifests_layers() {
    // The registry lists a model artifact's files from its layers (title -> digest).
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let (_tmp, root) = model_dir("m", &FILES[..3]);
    let bundle =
        model::sign_directory(&ModelDirectory::new(&root), &key, &SignOptions::default()).unwrap();
    let mut layers = ModelFiles::default();
    for (name, contents) in &FILES[..3] {
        layers
            .files
            .insert((*name).to_owned(), Digest::of(contents));
    }
    let subject = Subject {
        repository: "models/m",
        digest: Some(Digest::of(b"manifest")),
        model: Some(&layers),
        ..Subject::default()
    };
    let candidates = [Candidate {
        source: "referrer".into(),
        evidence: Evidence::SigstoreBundle { json: bundle },
    }];
    assert!(
        key_policy(&key)
            .evaluate(&subject, &candidates, &Context::now())
            .satisfied
    );
}

const MODEL_FILE: &[u8] = b"pretend this is a pickled model";

#[test]
fn rsa_pss_signatures_from_openssl_verify_and_ward_signatures_verify_in_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
        dir,
    );
    run(
        "openssl",
        &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"],
        dir,
    );
    let digest = Digest::of(MODEL_FILE);
    std::fs::write(dir.join("hash.txt"), digest.hex()).unwrap();
    // Exactly the mission's scheme: PSS, MGF1-SHA256, maximum salt, over the hex digest.
    run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:max",
            "-sigopt",
            "rsa_mgf1_md:sha256",
            "-sign",
            "rsa.pem",
            "-out",
            "openssl.sig",
            "hash.txt",
        ],
        dir,
    );
    let public = std::fs::read_to_string(dir.join("rsa.pub")).unwrap();
    let policy = TrustPolicy {
        keys: vec![trusted_key("mission", &public)],
        trust_roots: Vec::new(),
        rules: vec![rule("models", &["mission"], Vec::new(), 1)],
    }
    .compile()
    .unwrap();
    let candidate = |signature: Vec<u8>| {
        [Candidate {
            source: "model.sig".into(),
            evidence: Evidence::RsaPss { signature },
        }]
    };
    let file_subject = Subject {
        digest: Some(digest),
        ..Subject::default()
    };
    let verdict = policy.evaluate(
        &file_subject,
        &candidate(std::fs::read(dir.join("openssl.sig")).unwrap()),
        &Context::now(),
    );
    assert!(verdict.satisfied, "{}", verdict.summary());
    let other_file = Subject {
        digest: Some(Digest::of(b"another model")),
        ..Subject::default()
    };
    assert!(
        !policy
            .evaluate(
                &other_file,
                &candidate(std::fs::read(dir.join("openssl.sig")).unwrap()),
                &Context::now()
            )
            .satisfied
    );

    let key =
        PrivateKey::from_pem(&std::fs::read_to_string(dir.join("rsa.pem")).unwrap(), None).unwrap();
    let ours = pss::sign(&key, &digest).unwrap();
    std::fs::write(dir.join("ward.sig"), &ours).unwrap();
    run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:max",
            "-sigopt",
            "rsa_mgf1_md:sha256",
            "-verify",
            "rsa.pub",
            "-signature",
            "ward.sig",
            "hash.txt",
        ],
        dir,
    );
    // A single-file model is bound through its one file, as the registry sees it.
    let mut single = ModelFiles::default();
    single.files.insert("model.pkl".into(), digest);
    let model_subject = Subject {
        digest: Some(Digest::of(b"manifest")),
        model: Some(&single),
        ..Subject::default()
    };
    assert!(
        policy
            .evaluate(&model_subject, &candidate(ours.clone()), &Context::now())
            .satisfied
    );
    // Not a manifest holding that file and more: an untitled layer beside it
    // is content the signature does not name.
    let mut extended = single.clone();
    extended.problems.push("layer 1 has no title".into());
    let extended_subject = Subject {
        digest: Some(Digest::of(b"extended manifest")),
        model: Some(&extended),
        ..Subject::default()
    };
    assert!(
        !policy
            .evaluate(&extended_subject, &candidate(ours), &Context::now())
            .satisfied
    );
}
