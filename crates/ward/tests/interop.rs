//! Real third-party clients against the real `ward` binary: skopeo, podman,
//! buildah and umoci from Debian, oras from PyPI, and Ward's own CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{
    ADMIN_PASSWORD, WardProcess, admin_http, creds, files_under, tool, tool_ok, umoci_image,
    venv_python, ward,
};

/// Runs the oras-py driver script signed in as the administrator.
fn oras(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/oras_artifact.py");
    let out = std::process::Command::new(venv_python())
        .arg(script)
        .args(args)
        .env("WARD_USERNAME", "admin")
        .env("WARD_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("run the oras driver");
    assert!(
        out.status.success(),
        "oras {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
use serde_json::Value;
use ward_core::Digest;

fn oci_index_digest(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn skopeo_round_trip_of_a_umoci_image_is_byte_identical() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let layout = umoci_image(work.path());
    let dest = format!("docker://{}/interop/umoci:v1", server.addr);
    tool_ok(
        "skopeo",
        &[
            "copy",
            "--dest-creds",
            &creds(),
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &dest,
        ],
    );
    let back = work.path().join("back");
    tool_ok(
        "skopeo",
        &[
            "copy",
            "--src-creds",
            &creds(),
            "--src-tls-verify=false",
            &dest,
            &format!("oci:{}:v1", back.display()),
        ],
    );

    assert_eq!(
        oci_index_digest(&layout),
        oci_index_digest(&back),
        "same manifest digest"
    );
    // umoci's layout also keeps superseded blobs; what came back must be the
    // manifest, its config and its two layers, each byte-identical.
    let back_blobs = files_under(&back.join("blobs"));
    assert_eq!(back_blobs.len(), 4, "{back_blobs:?}");
    for blob in back_blobs {
        let (a, b) = (
            std::fs::read(layout.join("blobs").join(&blob)).unwrap(),
            std::fs::read(back.join("blobs").join(&blob)).unwrap(),
        );
        assert_eq!(a, b, "blob {} is byte-identical", blob.display());
    }
    // The registry agrees on what it holds.
    let tags = tool_ok(
        "skopeo",
        &[
            "list-tags",
            "--creds",
            &creds(),
            "--tls-verify=false",
            &format!("docker://{}/interop/umoci", server.addr),
        ],
    );
    assert!(tags.contains("\"v1\""), "{tags}");
}

fn podman(store: &Path, args: &[&str]) -> String {
    let root = store.join("root");
    let runroot = store.join("run");
    let mut full = vec![
        "--storage-driver",
        "vfs",
        "--root",
        root.to_str().unwrap(),
        "--runroot",
        runroot.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    tool_ok("podman", &full)
}

#[test]
fn podman_pushes_and_pulls() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let layout = umoci_image(work.path());
    let store = work.path().join("podman");
    // Load the image into podman's store with skopeo: podman would derive a
    // repository name from the temporary path, which may hold capitals.
    let storage = format!(
        "containers-storage:[vfs@{}+{}]localhost/interop:v1",
        store.join("root").display(),
        store.join("run").display()
    );
    tool_ok(
        "skopeo",
        &["copy", &format!("oci:{}:v1", layout.display()), &storage],
    );
    let id = podman(
        &store,
        &["images", "-q", "--no-trunc", "localhost/interop:v1"],
    );
    let id = id.trim().trim_start_matches("sha256:").to_owned();
    assert_eq!(id.len(), 64, "podman holds the image: {id:?}");
    let remote = format!("{}/podman/img:v1", server.addr);
    // Sign in once with `podman login` (credentials saved to an auth file,
    // as a user would), then push and pull with them: the token flow.
    let authfile = work.path().join("auth.json");
    let authfile = authfile.to_str().unwrap();
    let wrong = tool(
        "podman",
        &[
            "login",
            "--authfile",
            authfile,
            "--tls-verify=false",
            "-u",
            "admin",
            "-p",
            "not-the-password",
            &server.addr,
        ],
    );
    assert!(!wrong.status.success(), "a wrong password is refused");
    podman(
        &store,
        &[
            "login",
            "--authfile",
            authfile,
            "--tls-verify=false",
            "-u",
            "admin",
            "-p",
            ADMIN_PASSWORD,
            &server.addr,
        ],
    );
    podman(
        &store,
        &[
            "push",
            "--authfile",
            authfile,
            "--tls-verify=false",
            "localhost/interop:v1",
            &format!("docker://{remote}"),
        ],
    );
    podman(&store, &["rmi", "-a", "-f"]);
    let pulled = podman(
        &store,
        &[
            "pull",
            "-q",
            "--authfile",
            authfile,
            "--tls-verify=false",
            &remote,
        ],
    );
    let pulled = pulled.trim().trim_start_matches("sha256:").to_owned();
    assert_eq!(pulled, id, "the same image (config digest) comes back");
}

#[test]
fn buildah_pushes_an_image_ward_serves() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let store = work.path().join("buildah");
    let (root, run) = (store.join("root"), store.join("run"));
    let b = |args: &[&str]| {
        let mut full = vec![
            "--storage-driver",
            "vfs",
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            run.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        tool_ok("buildah", &full)
    };
    let file = work.path().join("app.txt");
    std::fs::write(&file, b"built by buildah").unwrap();
    let ctr = b(&["from", "scratch"]).trim().to_owned();
    b(&["copy", &ctr, file.to_str().unwrap(), "/app.txt"]);
    b(&["config", "--cmd", "/app.txt", &ctr]);
    b(&["commit", "-q", &ctr, "interop-buildah:v1"]);
    let remote = format!("docker://{}/buildah/app:v1", server.addr);
    b(&[
        "push",
        "--creds",
        &creds(),
        "--tls-verify=false",
        "interop-buildah:v1",
        &remote,
    ]);
    let inspect: Value = serde_json::from_str(&tool_ok(
        "skopeo",
        &[
            "inspect",
            "--creds",
            &creds(),
            "--tls-verify=false",
            &remote,
        ],
    ))
    .unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    let out = work.path().join("out");
    tool_ok(
        "skopeo",
        &[
            "copy",
            "--src-creds",
            &creds(),
            "--src-tls-verify=false",
            &remote,
            &format!("dir:{}", out.display()),
        ],
    );
    assert!(
        files_under(&out).len() >= 3,
        "manifest, config and layer came back"
    );
}

#[test]
fn oras_pushes_a_model_with_artifact_type_and_subject() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    // The subject: an image pushed with skopeo.
    let layout = umoci_image(work.path());
    tool_ok(
        "skopeo",
        &[
            "copy",
            "--dest-creds",
            &creds(),
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/ml/fraud:v1", server.addr),
        ],
    );
    let subject: Digest = oci_index_digest(&layout).parse().unwrap();
    let subject_size = std::fs::metadata(layout.join("blobs/sha256").join(subject.hex()))
        .unwrap()
        .len();

    let model = work.path().join("model.safetensors");
    let weights: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&model, &weights).unwrap();
    let out = oras(&[
        "push",
        &server.addr,
        "ml/fraud",
        model.to_str().unwrap(),
        "application/vnd.example.model.v1",
        &subject.to_string(),
        &subject_size.to_string(),
    ]);
    let mut lines = out.lines();
    let artifact: Digest = lines.next().unwrap().parse().unwrap();
    assert_eq!(
        lines.next().unwrap(),
        subject.to_string(),
        "OCI-Subject answered"
    );

    // Ward lists it as a referrer of the image, with its artifactType.
    let index: Value = admin_http()
        .get(server.url(&format!("/v2/ml/fraud/referrers/{subject}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    // (The scanner may have attached its report to the image too.)
    let found: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] != "application/vnd.ward.scan.report.v1+json")
        .collect();
    assert_eq!(found.len(), 1, "{index}");
    assert_eq!(found[0]["digest"], artifact.to_string());
    assert_eq!(found[0]["artifactType"], "application/vnd.example.model.v1");

    // oras pulls it back intact.
    let dest = work.path().join("pulled");
    let pulled = oras(&[
        "pull",
        &server.addr,
        &format!("ml/fraud@{artifact}"),
        dest.to_str().unwrap(),
    ]);
    assert!(pulled.contains("model.safetensors"), "{pulled}");
    assert_eq!(
        std::fs::read(dest.join("model.safetensors")).unwrap(),
        weights
    );
}

#[test]
fn ward_push_and_pull_verify_every_digest() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let model = work.path().join("model.safetensors");
    let config = work.path().join("config.json");
    let weights: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    std::fs::write(&model, &weights).unwrap();
    std::fs::write(&config, br#"{"layers": 12}"#).unwrap();
    let reference = format!("{}/models/fraud:v5", server.addr);
    let out = ward(&[
        "push",
        &reference,
        model.to_str().unwrap(),
        config.to_str().unwrap(),
        "--artifact-type",
        "application/vnd.example.model.v1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pinned = pushed["pinned"].as_str().unwrap().to_owned();
    assert!(pinned.starts_with(&format!("{}/models/fraud@sha256:", server.addr)));

    let dest = work.path().join("out");
    let out = ward(&["pull", &pinned, "-o", dest.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dest.join("model.safetensors")).unwrap(),
        weights
    );
    assert_eq!(
        std::fs::read(dest.join("config.json")).unwrap(),
        br#"{"layers": 12}"#
    );
    let pulled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled["digest"], pushed["digest"]);

    // The manifest carries the artifact type, and skopeo reads it too.
    let raw = tool_ok(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--creds",
            &creds(),
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    let manifest: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.example.model.v1");

    // Pulling by a digest the registry does not hold fails with a reason.
    let bogus = format!("{}/models/fraud@{}", server.addr, Digest::of(b"nope"));
    let out = ward(&["pull", &bogus, "-o", dest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MANIFEST_UNKNOWN"));
}
