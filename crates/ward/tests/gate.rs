//! The deployment gate and registry signing against a live Ward: an unsigned
//! artifact is refused, `ward sign` makes it pass, another key does not, a tag
//! moved to other content is refused again (the mission's war story), and a
//! signature written by sigstore-rs (the Sigstore project's Rust cosign) is
//! accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

const KEY_PASSWORD: &str = "gate-test-key-password";

fn ward_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ward"));
    cmd.args(args)
        .env("WARD_USERNAME", "admin")
        .env("WARD_PASSWORD", ADMIN_PASSWORD)
        .env(
            "WARD_CREDENTIALS_FILE",
            "/nonexistent/ward-test-credentials",
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ward")
}

fn generate_key(dir: &Path, name: &str) -> PathBuf {
    let prefix = dir.join(name);
    let out = ward_with(
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
        &[("COSIGN_PASSWORD", KEY_PASSWORD)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    prefix
}

/// Runs `ward gate --json`; returns the exit code and the decision.
fn gate(reference: &str, key: &Path) -> (Option<i32>, Value) {
    let out = ward(&["gate", reference, "--key", key.to_str().unwrap(), "--json"]);
    let decision = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), decision)
}

fn push_file(server: &WardProcess, reference: &str, file: &Path) -> String {
    let out = ward(&[
        "push",
        &format!("{}/{reference}", server.addr),
        file.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed: Value = serde_json::from_slice(&out.stdout).unwrap();
    pushed["digest"].as_str().unwrap().to_owned()
}

#[test]
fn unsigned_is_refused_signed_passes_and_a_moved_tag_is_refused_again() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let trusted = generate_key(work.path(), "trusted");
    let other = generate_key(work.path(), "other");
    let trusted_pub = trusted.with_extension("pub");
    let other_pub = other.with_extension("pub");
    let model = work.path().join("model.safetensors");
    std::fs::write(&model, b"weights v5").unwrap();
    let digest = push_file(&server, "models/fraud:v5", &model);
    let reference = format!("{}/models/fraud:v5", server.addr);

    // Unsigned: refused, exit 1, with the reason.
    let (code, decision) = gate(&reference, &trusted_pub);
    assert_eq!(code, Some(1), "{decision}");
    assert_eq!(decision["decision"], "refuse");
    assert_eq!(decision["digest"], digest.as_str());
    assert!(
        decision["reasons"][0]
            .as_str()
            .unwrap()
            .contains("no signatures"),
        "{decision}"
    );

    // Signed with the trusted key: allowed, pinned by digest.
    let out = ward_with(
        &[
            "sign",
            &reference,
            "--key",
            trusted.with_extension("key").to_str().unwrap(),
            "--json",
        ],
        &[("COSIGN_PASSWORD", KEY_PASSWORD)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(signed["digest"], digest.as_str());
    let (code, decision) = gate(&reference, &trusted_pub);
    assert_eq!(code, Some(0), "{decision}");
    assert_eq!(decision["decision"], "allow");
    assert_eq!(
        decision["pinned"],
        format!("{}/models/fraud@{digest}", server.addr)
    );
    // Both storage forms were written: the tag and the referrer each verify.
    let sources: Vec<String> = decision["signatures"]["verified_signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        sources.iter().any(|s| s.starts_with("sha256-")),
        "{sources:?}"
    );
    assert!(
        sources.iter().any(|s| s.starts_with("referrer ")),
        "{sources:?}"
    );

    // Another key does not count.
    let (code, decision) = gate(&reference, &other_pub);
    assert_eq!(code, Some(1), "{decision}");
    assert_eq!(decision["decision"], "refuse");

    // The tag is moved to other (backdoored) content: refused again, because
    // the gate resolves the tag and checks the digest it points at now.
    std::fs::write(&model, b"weights v5 with a backdoor").unwrap();
    let moved = push_file(&server, "models/fraud:v5", &model);
    assert_ne!(moved, digest);
    let (code, decision) = gate(&reference, &trusted_pub);
    assert_eq!(code, Some(1), "{decision}");
    assert_eq!(decision["digest"], moved.as_str());
    // The signed digest itself still passes.
    let (code, _) = gate(
        &format!("{}/models/fraud@{digest}", server.addr),
        &trusted_pub,
    );
    assert_eq!(code, Some(0));

    // What cannot be read is an error, exit 2, not a refusal.
    let (code, _) = gate(&format!("{}/models/absent:v1", server.addr), &trusted_pub);
    assert_eq!(code, Some(2));
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/cosign-skopeo")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn put_blob(server: &WardProcess, repo: &str, bytes: Vec<u8>) {
    let digest = format!("sha256:{}", sha256_hex(&bytes));
    let r = admin_http()
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED, "{digest}");
}

fn put_manifest(server: &WardProcess, repo: &str, reference: &str, bytes: Vec<u8>) {
    // sigstore-rs omits the optional mediaType field of its manifests.
    let media_type = serde_json::from_slice::<Value>(&bytes).unwrap()["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_owned();
    let r = admin_http()
        .put(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("content-type", media_type)
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED, "{reference}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    ward_core::Digest::of(bytes).hex().to_owned()
}

#[test]
fn a_signature_written_by_sigstore_rs_passes_the_gate() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let repo = "test/fixture";
    put_blob(&server, repo, fixture("image-config.json"));
    put_blob(&server, repo, fixture("image-layer.tar.gz"));
    put_manifest(&server, repo, "v1", fixture("image-manifest.json"));
    let image_digest = sha256_hex(&fixture("image-manifest.json"));
    put_blob(&server, repo, fixture("signature-config.json"));
    put_blob(&server, repo, fixture("signature-payload.json"));
    put_manifest(
        &server,
        repo,
        &format!("sha256-{image_digest}.sig"),
        fixture("signature-manifest.json"),
    );
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cosign-skopeo");
    let reference = format!("{}/{repo}:v1", server.addr);
    let (code, decision) = gate(&reference, &keys.join("cosign.pub"));
    assert_eq!(code, Some(0), "{decision}");
    assert_eq!(decision["digest"], format!("sha256:{image_digest}"));
    let (code, decision) = gate(&reference, &keys.join("other-key.pub"));
    assert_eq!(code, Some(1), "{decision}");
}
