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

fn put_trust_policy(server: &WardProcess, work: &Path, public_key: &Path, revoked: bool) {
    let policy = serde_json::json!({
        "keys": [{
            "name": "release",
            "public_key": std::fs::read_to_string(public_key).unwrap(),
            "revoked": revoked,
        }],
        "rules": [{
            "name": "production",
            "repositories": ["prod/**"],
            "keys": ["release"],
            "promote_tags": ["prod-*"],
        }],
    });
    let file = work.join("trust.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    let out = ward(&[
        "admin",
        "--registry",
        &server.addr,
        "trust",
        "put",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A consumer: a robot that may only pull from `prod/**`.
struct Consumer(String, String);

fn create_consumer(server: &WardProcess) -> Consumer {
    let out = ward(&[
        "admin",
        "--registry",
        &server.addr,
        "robot",
        "create",
        "deployer",
        "--grant",
        "read=prod/**",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Consumer(
        "deployer".into(),
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    )
}

fn get_status(server: &WardProcess, who: &Consumer, path: &str, user_agent: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .get(server.url(path))
        .basic_auth(&who.0, Some(&who.1))
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .header("user-agent", user_agent)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn skopeo_pull(server: &WardProcess, who: &Consumer, image: &str, dest: &Path) -> Output {
    tool(
        "skopeo",
        &[
            "copy",
            "--src-creds",
            &format!("{}:{}", who.0, who.1),
            "--src-tls-verify=false",
            &format!("docker://{}/{image}", server.addr),
            &format!("oci:{}:v1", dest.display()),
        ],
    )
}

#[test]
fn a_protected_repository_serves_only_verified_content() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let key = generate_key(work.path(), "release");
    put_trust_policy(&server, work.path(), &key.with_extension("pub"), false);
    let deployer = create_consumer(&server);

    // Pushing is not gated: an image goes in with skopeo, unsigned.
    let layout = umoci_image(work.path());
    tool_ok(
        "skopeo",
        &[
            "copy",
            "--dest-creds",
            &creds(),
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/prod/web:v1", server.addr),
        ],
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();

    // Unsigned: for a consumer, the manifest (GET and HEAD), its layer by
    // digest, and a real client's pull are all refused, whatever the client
    // calls itself.
    for ua in ["skopeo/1.9.3", "cosign/2.2.0 (linux; amd64)"] {
        let (status, body) = get_status(&server, &deployer, "/v2/prod/web/manifests/v1", ua);
        assert_eq!(status, 403, "{body}");
        assert!(
            body.contains("DENIED") && body.contains("trust policy"),
            "{body}"
        );
    }
    let head = reqwest::blocking::Client::new()
        .head(server.url(&format!("/v2/prod/web/manifests/{digest}")))
        .basic_auth(&deployer.0, Some(&deployer.1))
        .send()
        .unwrap();
    assert_eq!(head.status(), reqwest::StatusCode::FORBIDDEN);
    let blob_path = format!("/v2/prod/web/blobs/{layer}");
    let (status, body) = get_status(&server, &deployer, &blob_path, "curl/8");
    assert_eq!(status, 403, "the blob-digest bypass is closed: {body}");
    let refused = skopeo_pull(&server, &deployer, "prod/web:v1", &work.path().join("out1"));
    assert!(!refused.status.success());
    // The producer (who may push) reads its own work, to sign it.
    let producer = admin_http()
        .get(server.url("/v2/prod/web/manifests/v1"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    assert_eq!(producer.status(), reqwest::StatusCode::OK);
    // Promotion of the unsigned digest to a protected tag is refused too.
    let raw = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    let promote = |tag: &str| {
        admin_http()
            .put(server.url(&format!("/v2/prod/web/manifests/{tag}")))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(raw.clone())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(promote("prod-1"), 403);
    assert_eq!(promote("staging"), 201, "tags no rule protects move freely");

    // Signed: everything is served, to a real client too.
    let out = ward_with(
        &[
            "sign",
            &format!("{}/prod/web:v1", server.addr),
            "--key",
            key.with_extension("key").to_str().unwrap(),
        ],
        &[("COSIGN_PASSWORD", KEY_PASSWORD)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = get_status(
        &server,
        &deployer,
        "/v2/prod/web/manifests/v1",
        "skopeo/1.9.3",
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = get_status(&server, &deployer, &blob_path, "curl/8");
    assert_eq!(status, 200);
    let out = skopeo_pull(&server, &deployer, "prod/web:v1", &work.path().join("out2"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(promote("prod-1"), 201);

    // Revoking the key takes effect at once.
    put_trust_policy(&server, work.path(), &key.with_extension("pub"), true);
    let (status, body) = get_status(
        &server,
        &deployer,
        "/v2/prod/web/manifests/v1",
        "skopeo/1.9.3",
    );
    assert_eq!(status, 403, "{body}");

    // Every refusal is in the audit log with its reason.
    let export = admin_http()
        .get(server.url("/api/v1/audit/export"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let denials: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["event"]["event_type"] == "deny.signature")
        .collect();
    assert!(denials.len() >= 5, "{denials:?}");
    assert!(denials.iter().any(|d| d["event"]["action"] == "promote"));
    assert!(denials.iter().any(|d| d["event"]["action"] == "pull_blob"));
    assert!(
        denials
            .iter()
            .all(|d| d["event"]["repository"] == "prod/web"
                && d["event"]["reason"].as_str().is_some_and(|r| !r.is_empty()))
    );
    // Unprotected repositories were never affected.
    let plain = work.path().join("plain.bin");
    std::fs::write(&plain, b"not protected").unwrap();
    push_file(&server, "dev/tool:v1", &plain);
    let dev = admin_http()
        .get(server.url("/v2/dev/tool/manifests/v1"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    assert_eq!(dev.status(), reqwest::StatusCode::OK);
}
