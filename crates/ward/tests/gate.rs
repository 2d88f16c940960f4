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

fn release_policy(server: &WardProcess, work: &Path, public_key: &Path, revoked: bool) {
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
    put_trust_policy(server, work, &policy);
}

type Consumer = (String, String);

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
    release_policy(&server, work.path(), &key.with_extension("pub"), false);
    let deployer = create_robot(&server, "deployer", "read=prod/**");

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
        let (status, body) = get_as(&server, &deployer, "/v2/prod/web/manifests/v1", ua);
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
    let (status, body) = get_as(&server, &deployer, &blob_path, "curl/8");
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
    sign(&server, "prod/web:v1", &key);
    let (status, body) = get_as(
        &server,
        &deployer,
        "/v2/prod/web/manifests/v1",
        "skopeo/1.9.3",
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = get_as(&server, &deployer, &blob_path, "curl/8");
    assert_eq!(status, 200);
    let out = skopeo_pull(&server, &deployer, "prod/web:v1", &work.path().join("out2"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(promote("prod-1"), 201);

    // Revoking the key takes effect at once.
    release_policy(&server, work.path(), &key.with_extension("pub"), true);
    let (status, body) = get_as(
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

/// `ward sign` of `reference` on `server` with the key pair at `key` (no extension).
fn sign(server: &WardProcess, reference: &str, key: &Path) {
    let out = ward_with(
        &[
            "sign",
            &format!("{}/{reference}", server.addr),
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
}

/// The PyPI `model_signing` tool from the venv (`./scripts/test` installs it).
fn model_signing(args: &[&str]) -> Output {
    let cli = venv_python().with_file_name("model_signing");
    tool(cli.to_str().unwrap(), args)
}

fn openssl_key(dir: &Path, name: &str, algorithm: &[&str]) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let mut args = vec!["genpkey"];
    args.extend_from_slice(algorithm);
    args.extend_from_slice(&["-out", private.to_str().unwrap()]);
    tool_ok("openssl", &args);
    tool_ok(
        "openssl",
        &[
            "pkey",
            "-in",
            private.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ],
    );
    (private, public)
}

/// `ward push` of every file of a flat model directory (one layer per file,
/// titled with its name); returns the manifest digest.
fn push_model_dir(server: &WardProcess, reference: &str, dir: &Path) -> String {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    files.sort();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    push_files(server, reference, &files, &[])["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Attaches a sigstore bundle to `digest` the way `oras attach` does: a
/// referrer whose one layer is the bundle.
fn attach_bundle(server: &WardProcess, reference: &str, digest: &str, bundle: &Path) -> String {
    const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let spec = format!("{}:{BUNDLE}", bundle.display());
    push_files(
        server,
        reference,
        &[&spec],
        &["--artifact-type", BUNDLE, "--subject", digest],
    )["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_signed_model_is_served_whole_and_a_changed_or_extended_one_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let (ec_key, ec_pub) = openssl_key(
        work.path(),
        "ml-team",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (rsa_key, rsa_pub) = openssl_key(
        work.path(),
        "legacy",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let policy = serde_json::json!({
        "keys": [
            {"name": "ml-team", "public_key": std::fs::read_to_string(&ec_pub).unwrap()},
            {"name": "legacy", "public_key": std::fs::read_to_string(&rsa_pub).unwrap()},
        ],
        "rules": [{
            "name": "models",
            "repositories": ["models/**"],
            "keys": ["ml-team", "legacy"],
        }],
    });
    put_trust_policy(&server, work.path(), &policy);
    let deployer = create_robot(&server, "deployer", "read=models/**");
    let manifest = |reference: &str| {
        get_as(
            &server,
            &deployer,
            &format!("/v2/models/fraud/manifests/{reference}"),
            "deployer/1",
        )
    };

    // A model directory, pushed one file per layer and signed by the
    // independent model_signing tool (key mode).
    let model = work.path().join("fraud-v1");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("config.json"), b"{\"hidden_size\": 8}").unwrap();
    std::fs::write(
        model.join("model.safetensors"),
        b"\x08\0\0\0\0\0\0\0{}      ",
    )
    .unwrap();
    let v1 = push_model_dir(&server, "models/fraud:v1", &model);
    let (status, body) = manifest("v1");
    assert_eq!(status, 403, "unsigned: {body}");
    let bundle = work.path().join("fraud-v1.sig");
    let out = model_signing(&[
        "sign",
        "key",
        "--private_key",
        ec_key.to_str().unwrap(),
        "--signature",
        bundle.to_str().unwrap(),
        model.to_str().unwrap(),
    ]);
    assert_ok(&out);
    attach_bundle(&server, "models/fraud:v1-bundle", &v1, &bundle);

    // Every file of it is checked against the bundle: the manifest and each
    // layer are served, and the deployment gate agrees.
    let (status, body) = manifest("v1");
    assert_eq!(status, 200, "signed: {body}");
    let layers: Value = serde_json::from_str(&body).unwrap();
    for layer in layers["layers"].as_array().unwrap() {
        let path = format!(
            "/v2/models/fraud/blobs/{}",
            layer["digest"].as_str().unwrap()
        );
        let (status, _) = get_as(&server, &deployer, &path, "deployer/1");
        assert_eq!(status, 200, "{path}");
    }
    let reference = format!("{}/models/fraud:v1", server.addr);
    let (code, decision) = gate(&reference, &ec_pub);
    assert_eq!(code, Some(0), "{decision}");

    // One byte of a file changed, pushed with the same bundle attached: refused,
    // naming the file.
    let changed = work.path().join("fraud-v2");
    std::fs::create_dir(&changed).unwrap();
    std::fs::copy(model.join("config.json"), changed.join("config.json")).unwrap();
    std::fs::write(
        changed.join("model.safetensors"),
        b"\x08\0\0\0\0\0\0\0{}     !",
    )
    .unwrap();
    let v2 = push_model_dir(&server, "models/fraud:v2", &changed);
    attach_bundle(&server, "models/fraud:v2-bundle", &v2, &bundle);
    let (status, body) = manifest("v2");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("model.safetensors"), "{body}");

    // A file added beside the signed ones: refused, naming it.
    let extended = work.path().join("fraud-v3");
    std::fs::create_dir(&extended).unwrap();
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(model.join(name), extended.join(name)).unwrap();
    }
    std::fs::write(extended.join("extra.pkl"), b"\x80\x04N.").unwrap();
    let v3 = push_model_dir(&server, "models/fraud:v3", &extended);
    attach_bundle(&server, "models/fraud:v3-bundle", &v3, &bundle);
    let (status, body) = manifest("v3");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("extra.pkl"), "{body}");
    let (code, _) = gate(&format!("{}/models/fraud:v3", server.addr), &ec_pub);
    assert_eq!(code, Some(1));

    // `ward sign --model --attach` refuses to attach to an artifact whose files
    // are not the model's, and attaches a bundle that makes the right one pass.
    let sign_attach = |signature: &str, reference: &str, extra: &[&str]| {
        let signature = work.path().join(signature);
        let reference = format!("{}/{reference}", server.addr);
        let mut args = vec![
            "sign",
            "--model",
            changed.to_str().unwrap(),
            "--key",
            ec_key.to_str().unwrap(),
            "--output",
            signature.to_str().unwrap(),
            "--attach",
            &reference,
        ];
        args.extend_from_slice(extra);
        ward(&args)
    };
    let out = sign_attach("wrong.sig", "models/fraud:v3", &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not hold the files"), "{stderr}");
    let out = sign_attach("fraud-v2.sig", "models/fraud:v2", &["--json"]);
    assert_ok(&out);
    let attached: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        attached["attached"]["subject"],
        format!("{}/models/fraud@{v2}", server.addr)
    );
    let (status, body) = manifest("v2");
    assert_eq!(status, 200, "{body}");
    // model_signing accepts what Ward wrote for it.
    let out = model_signing(&[
        "verify",
        "key",
        "--public_key",
        ec_pub.to_str().unwrap(),
        "--signature",
        work.path().join("fraud-v2.sig").to_str().unwrap(),
        changed.to_str().unwrap(),
    ]);
    assert_ok(&out);

    // The mission's RSA-PSS scheme, for a single-file model.
    let single = work.path().join("single.onnx");
    std::fs::write(&single, b"onnx bytes of a single-file model").unwrap();
    push_file(&server, "models/fraud:single", &single);
    let (status, _) = manifest("single");
    assert_eq!(status, 403);
    let out = ward(&[
        "sign",
        "--model",
        single.to_str().unwrap(),
        "--format",
        "rsa-pss",
        "--key",
        rsa_key.to_str().unwrap(),
        "--attach",
        &format!("{}/models/fraud:single", server.addr),
    ]);
    assert_ok(&out);
    let (status, body) = manifest("single");
    assert_eq!(status, 200, "{body}");
    let (code, decision) = gate(&format!("{}/models/fraud:single", server.addr), &rsa_pub);
    assert_eq!(code, Some(0), "{decision}");
}

/// An index no rule covers vouches for nothing: the unsigned platform
/// manifest it lists stays refused. And withdrawing a signature (deleting its
/// referrer and its `.sig` tag) takes effect at once, not when the cached
/// verdict expires.
#[test]
fn only_a_verified_index_vouches_and_a_withdrawn_signature_counts_at_once() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(
        &work.path().join("data"),
        &[("WARD_DELETE_ENABLED", "true")],
    );
    let key = generate_key(work.path(), "release");
    let policy = serde_json::json!({
        "keys": [{
            "name": "release",
            "public_key": std::fs::read_to_string(key.with_extension("pub")).unwrap(),
        }],
        "rules": [{
            "name": "images",
            "repositories": ["prod/**"],
            "keys": ["release"],
            "artifact_types": ["application/vnd.oci.image.config.v1+json"],
        }],
    });
    put_trust_policy(&server, work.path(), &policy);
    let deployer = create_robot(&server, "deployer", "read=prod/**");

    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"platform layer".to_vec();
    put_blob(&server, "prod/app", config.clone());
    put_blob(&server, "prod/app", layer.clone());
    let image = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{}", sha256_hex(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": format!("sha256:{}", sha256_hex(&layer)), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let image_digest = format!("sha256:{}", sha256_hex(&image));
    put_manifest(&server, "prod/app", "amd64", image.clone());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": image_digest, "size": image.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    })
    .to_string()
    .into_bytes();
    put_manifest(&server, "prod/app", "multi", index);

    let by_digest = format!("/v2/prod/app/manifests/{image_digest}");
    let layer_path = format!("/v2/prod/app/blobs/sha256:{}", sha256_hex(&layer));
    let (status, body) = get_as(&server, &deployer, &by_digest, "containerd/2");
    assert_eq!(status, 403, "listed by an index no rule covers: {body}");
    let (status, body) = get_as(&server, &deployer, &layer_path, "containerd/2");
    assert_eq!(status, 403, "{body}");

    // Signed, it is served; the signature withdrawn, it is refused again.
    let signed = ward_with(
        &[
            "sign",
            &format!("{}/prod/app@{image_digest}", server.addr),
            "--key",
            key.with_extension("key").to_str().unwrap(),
        ],
        &[("COSIGN_PASSWORD", KEY_PASSWORD)],
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let (status, body) = get_as(&server, &deployer, &by_digest, "containerd/2");
    assert_eq!(status, 200, "{body}");
    let referrers: Value = admin_http()
        .get(server.url(&format!("/v2/prod/app/referrers/{image_digest}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut withdrawn = vec![format!("{}.sig", image_digest.replace(':', "-"))];
    for r in referrers["manifests"].as_array().unwrap() {
        withdrawn.push(r["digest"].as_str().unwrap().to_owned());
    }
    assert!(withdrawn.len() >= 2, "{referrers}");
    for reference in withdrawn {
        let r = admin_http()
            .delete(server.url(&format!("/v2/prod/app/manifests/{reference}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED, "{reference}");
    }
    let (status, body) = get_as(&server, &deployer, &by_digest, "containerd/2");
    assert_eq!(status, 403, "the signature is gone: {body}");
}

/// A manifest whose layers all claim a signature type is served unverified
/// only as a signature: its sizes must be true, it does not open the layers
/// of an unverified model to consumers, and under an ordinary tag it is gated
/// like any manifest.
#[test]
fn a_manifest_dressed_as_a_signature_smuggles_nothing_past_the_gate() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let key = generate_key(work.path(), "release");
    release_policy(&server, work.path(), &key.with_extension("pub"), false);
    let deployer = create_robot(&server, "deployer", "read=prod/**");
    let repo = "prod/model";
    let payload = b"an unsigned model the gate must keep from consumers".to_vec();
    let payload_digest = format!("sha256:{}", sha256_hex(&payload));
    put_blob(&server, repo, payload.clone());
    put_blob(&server, repo, b"{}".to_vec());
    let empty = format!("sha256:{}", sha256_hex(b"{}"));
    let manifest = |layer_type: &str, size: usize| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": layer_type, "digest": payload_digest, "size": size}],
        }))
        .unwrap()
    };
    put_manifest(
        &server,
        repo,
        "v1",
        manifest("application/octet-stream", payload.len()),
    );

    // A descriptor that understates its blob's size is refused at push.
    let simple_signing = "application/vnd.dev.cosign.simplesigning.v1+json";
    let understated = admin_http()
        .put(server.url(&format!("/v2/{repo}/manifests/sig-small")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest(simple_signing, 1))
        .send()
        .unwrap();
    assert_eq!(understated.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: Value = understated.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID", "{body}");
    assert_eq!(
        body["errors"][0]["detail"]["stored"],
        payload.len(),
        "{body}"
    );

    // With the true size it is stored, but serves nothing to a consumer.
    let dressed = manifest(simple_signing, payload.len());
    let dressed_digest = format!("sha256:{}", sha256_hex(&dressed));
    put_manifest(&server, repo, "latest", dressed);
    // (path, status for a consumer)
    let cases = [
        // Not under an ordinary tag...
        (format!("/v2/{repo}/manifests/latest"), 403),
        // ...nor the model's layer, which an unverified manifest holds.
        (format!("/v2/{repo}/blobs/{payload_digest}"), 403),
        // As a signature (by digest, as referrers and cosign name it) the
        // manifest itself is readable, and so is the empty config.
        (format!("/v2/{repo}/manifests/{dressed_digest}"), 200),
        (format!("/v2/{repo}/blobs/{empty}"), 200),
    ];
    for (path, want) in cases {
        let (status, body) = get_as(&server, &deployer, &path, "curl/8");
        assert_eq!(status, want, "{path}: {body}");
    }
}

/// The gate reads at most `signatures.evidence_bytes_max` of signatures for
/// one decision: a subject buried under more is refused, not read whole.
#[test]
fn the_signatures_read_for_one_decision_are_bounded() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let key = generate_key(work.path(), "release");
    let model = work.path().join("model.safetensors");
    std::fs::write(&model, b"weights v1").unwrap();
    let server = WardProcess::start(&data, &[("WARD_SIGNATURES__EVIDENCE_BYTES_MAX", "64")]);
    release_policy(&server, work.path(), &key.with_extension("pub"), false);
    let deployer = create_robot(&server, "deployer", "read=prod/**");
    push_file(&server, "prod/model:v1", &model);
    sign(&server, "prod/model:v1", &key);
    let (status, body) = get_as(&server, &deployer, "/v2/prod/model/manifests/v1", "curl/8");
    assert_eq!(status, 403, "a signature over 64 bytes is not read: {body}");
    server.kill();

    // The same signature, read under the default bound, passes.
    let server = WardProcess::start(&data, &[]);
    let (status, body) = get_as(&server, &deployer, "/v2/prod/model/manifests/v1", "curl/8");
    assert_eq!(status, 200, "{body}");
}
