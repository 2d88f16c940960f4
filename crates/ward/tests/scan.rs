//! Scanning in the registry, end to end on the real binary: the mission's
//! test 3 for models (a model whose pickle runs `os.system` is scanned on
//! push, quarantined and refused, while a clean model in the same repository
//! still pulls; release needs a reason), scan policies that block by
//! severity or refuse unscanned content, the queue surviving a restart, and
//! `ward scan` offline with its exit codes, JSON and SARIF.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A protocol-2 pickle that would run `touch <marker>` through `os.system` when loaded.
fn malicious_pickle(marker: &str) -> Vec<u8> {
    let cmd = format!("touch {marker}");
    let mut p = b"\x80\x02cposix\nsystem\nq\x00X".to_vec();
    p.extend_from_slice(&(cmd.len() as u32).to_le_bytes());
    p.extend_from_slice(cmd.as_bytes());
    p.extend_from_slice(b"q\x01\x85q\x02Rq\x03.");
    p
}

/// [`malicious_pickle`] behind a prefix that stores memo entries at every
/// other index, 5000 times: more separate memo runs than the scanner keeps
/// (`pickle_memo_ranges_max`, 4096), so it stops reading before the payload.
/// Python's unpickler does not care and would run it.
fn padded_malicious_pickle(marker: &str) -> Vec<u8> {
    let mut p = b"\x80\x02".to_vec();
    for i in 0..5000u32 {
        p.push(b'N');
        p.push(b'r');
        p.extend_from_slice(&(2 * i).to_le_bytes());
        p.push(b'0');
    }
    p.extend_from_slice(&malicious_pickle(marker)[2..]);
    p
}

/// A protocol-2 pickle of an OrderedDict of two floats: what a clean state dict looks like.
fn clean_pickle() -> Vec<u8> {
    b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aG?\xf0\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00bG@\x00\x00\x00\x00\x00\x00\x00u.".to_vec()
}

/// A protocol-2 pickle calling a function on neither list (MEDIUM).
fn unknown_callable_pickle() -> Vec<u8> {
    b"\x80\x02cmymodule\ninnocuous\nq\x00)Rq\x01.".to_vec()
}

/// `ward push` of one file: the manifest digest and the file's.
fn push_model(server: &WardProcess, reference: &str, file: &Path) -> (String, String) {
    let pushed = push_files(server, reference, &[file.to_str().unwrap()], &[]);
    let manifest = pushed["digest"].as_str().unwrap().to_owned();
    let layer = pushed["layers"][0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no file digest in {pushed}"))
        .to_owned();
    (manifest, layer)
}

/// A one-shot webhook on loopback: returns its URL and the JSON body it receives.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<Value>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        let _ = tx.send(serde_json::from_slice(&body).unwrap());
    });
    (url, rx)
}

fn ward_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ward"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn api(
    server: &WardProcess,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = admin_http().request(method, server.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// Polls `check` until it returns Some, failing after a minute: the scan
/// worker runs asynchronously, so tests wait on its observable result.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scanned(server: &WardProcess, digest: &str) -> Value {
    eventually(&format!("the scan of {digest}"), || {
        let (status, body) = api(
            server,
            reqwest::Method::GET,
            &format!("/api/v1/scans/{digest}"),
            None,
        );
        (status == 200 && !body["result"].is_null()).then_some(body)
    })
}

/// Waits for `digest`'s quarantine record.
fn quarantine_of(server: &WardProcess, digest: &str) -> Value {
    eventually(&format!("the quarantine of {digest}"), || {
        let (_, body) = api(server, reqwest::Method::GET, "/api/v1/quarantines", None);
        body["quarantines"]
            .as_array()
            .and_then(|list| list.iter().find(|q| q["digest"] == digest).cloned())
    })
}

/// Waits for the scan report referrer of `manifest` in `repo`: it is attached
/// after the policies are applied, so once it exists, their decision is made.
fn report_attached(server: &WardProcess, repo: &str, manifest: &str) -> Value {
    eventually("the scan report referrer", || {
        let (_, index) = raw_get(
            server,
            &format!("/v2/{repo}/referrers/{manifest}"),
            "application/vnd.oci.image.index.v1+json",
        );
        index["manifests"]
            .as_array()
            .and_then(|m| m.first().cloned())
    })
}

fn pull(server: &WardProcess, reference: &str, out: &Path) -> std::process::Output {
    ward(&[
        "pull",
        &format!("{}/{reference}", server.addr),
        "-o",
        out.to_str().unwrap(),
    ])
}

fn raw_get(server: &WardProcess, path: &str, accept: &str) -> (u16, Value) {
    let resp = admin_http()
        .get(server.url(path))
        .header("accept", accept)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn a_model_whose_pickle_runs_os_system_is_quarantined_and_refused_while_a_clean_one_pulls() {
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("payload-ran");
    let (hook_url, alerts) = webhook_receiver();
    let server = WardProcess::start(
        &work.path().join("data"),
        &[("WARD_SCAN__ALERT_WEBHOOK_URL", hook_url.as_str())],
    );
    let bad = work.path().join("model.pt");
    std::fs::write(&bad, malicious_pickle(marker.to_str().unwrap())).unwrap();
    let good = work.path().join("clean.pt");
    std::fs::write(&good, clean_pickle()).unwrap();
    let bad_layer = sha256_digest(&std::fs::read(&bad).unwrap());
    // The scan may finish between the layer's upload and the manifest's: then
    // the push itself is refused, because quarantined content takes no tag.
    let pushed = ward(&[
        "push",
        &format!("{}/models/fraud:v6", server.addr),
        bad.to_str().unwrap(),
    ]);
    let tagged = pushed.status.success();
    if !tagged {
        let stderr = String::from_utf8_lossy(&pushed.stderr);
        assert!(stderr.contains("quarantined"), "{stderr}");
    }
    let (good_manifest, good_layer) = push_model(&server, "models/fraud:v5", &good);

    // Scanned on push: the report names the callable, once per content.
    let result = scanned(&server, &bad_layer);
    assert_eq!(result["result"]["max_severity"], "CRITICAL", "{result}");
    assert!(
        result["result"]["report"]
            .to_string()
            .contains("posix.system"),
        "{result}"
    );
    let clean = scanned(&server, &good_layer);
    assert!(clean["result"]["max_severity"].is_null(), "{clean}");

    // The result is attached to the clean model as an OCI referrer.
    let referrer = report_attached(&server, "models/fraud", &good_manifest);
    assert_eq!(
        referrer["artifactType"],
        "application/vnd.ward.scan.report.v1+json"
    );
    assert_eq!(
        referrer["annotations"]["dev.ward.scan.ruleset"],
        result["result"]["ruleset"]
    );

    // Quarantined by the default policy (CRITICAL).
    let quarantines = eventually("the quarantine", || {
        let (_, body) = api(&server, reqwest::Method::GET, "/api/v1/quarantines", None);
        let list = body["quarantines"].as_array().cloned().unwrap_or_default();
        (!list.is_empty()).then_some(list)
    });
    assert_eq!(quarantines.len(), 1, "{quarantines:?}");
    assert_eq!(quarantines[0]["digest"], bad_layer.as_str());
    assert_eq!(quarantines[0]["source"], "policy");

    // The CRITICAL finding raised one alert on the webhook.
    let alert = alerts.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(alert["type"], "ward.scan.alert");
    assert_eq!(alert["digest"], bad_layer.as_str());
    assert_eq!(alert["max_severity"], "CRITICAL");
    assert!(
        alert["findings"].to_string().contains("posix.system"),
        "{alert}"
    );

    // The deployment gate refuses it, naming the quarantine.
    let key = work.path().join("gate");
    let out = ward_env(
        &[
            "key",
            "generate",
            "--output-key-prefix",
            key.to_str().unwrap(),
        ],
        &[("COSIGN_PASSWORD", "scan-test-key")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ward(&[
        "gate",
        &format!("{}/models/fraud:v5", server.addr),
        "--key",
        key.with_extension("pub").to_str().unwrap(),
        "--json",
    ]);
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(decision["scan"]["quarantined"], false, "{decision}");
    assert!(
        decision["reasons"].to_string().contains("not quarantined"),
        "{decision}"
    );
    if tagged {
        let out = ward(&[
            "gate",
            &format!("{}/models/fraud:v6", server.addr),
            "--key",
            key.with_extension("pub").to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(1));
        let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(decision["decision"], "refuse");
        assert!(
            decision["reasons"][0]
                .as_str()
                .unwrap()
                .contains("quarantined"),
            "{decision}"
        );
    }

    // Its pull is refused (CLI, manifest, blob), naming why; the clean model still pulls.
    let out = pull(&server, "models/fraud:v6", &work.path().join("bad-out"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if tagged {
        assert!(
            stderr.contains("quarantined") && stderr.contains("posix.system"),
            "{stderr}"
        );
        let (status, body) = raw_get(&server, "/v2/models/fraud/manifests/v6", MANIFEST_TYPES);
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["errors"][0]["code"], "DENIED");
    }
    let (status, body) = raw_get(
        &server,
        &format!("/v2/models/fraud/blobs/{bad_layer}"),
        "*/*",
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("posix.system"), "{body}");
    let out = pull(&server, "models/fraud:v5", &work.path().join("good-out"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(work.path().join("good-out/clean.pt")).unwrap(),
        clean_pickle()
    );

    // Quarantined content takes no tag, here or in another repository, and
    // its blob is refused wherever it is linked.
    for reference in ["models/fraud:v6-promoted", "other/copy:v1"] {
        let out = ward(&[
            "push",
            &format!("{}/{reference}", server.addr),
            bad.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{reference} was tagged");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("quarantined"), "{stderr}");
    }
    let (status, _) = raw_get(&server, &format!("/v2/other/copy/blobs/{bad_layer}"), "*/*");
    assert_eq!(status, 403);

    // The scan status API (what `ward gate` reports) names the decision.
    if tagged {
        let (status, report) = api(
            &server,
            reqwest::Method::GET,
            "/api/v1/scan-status/models/fraud?reference=v6",
            None,
        );
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["allowed"], false);
        assert_eq!(report["quarantined"], true);
        let layer = report["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["digest"] == bad_layer.as_str())
            .unwrap_or_else(|| panic!("{report}"));
        assert_eq!(layer["max_severity"], "CRITICAL", "{report}");
    }

    // Release needs a reason; then the artifact can be tagged and pulled again.
    let path = format!("/api/v1/quarantines/{bad_layer}/release");
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &path,
        Some(json!({"reason": " "})),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &path,
        Some(json!({"reason": "false positive confirmed by security (ticket SEC-1)"})),
    );
    assert_eq!(status, 200, "{body}");
    if !tagged {
        push_model(&server, "models/fraud:v6", &bad);
    }
    let (status, _) = raw_get(&server, "/v2/models/fraud/manifests/v6", MANIFEST_TYPES);
    assert_eq!(status, 200);
    // A rescan finding the same again does not undo the release (a result is
    // judged before it is stored, so once it is, the decision is made).
    let (status, body) = api(
        &server,
        reqwest::Method::POST,
        &format!("/api/v1/scans/{bad_layer}"),
        None,
    );
    assert_eq!(status, 202, "{body}");
    let before = result["result"]["scanned_at_ms"].as_i64().unwrap();
    eventually("the rescan", || {
        let (_, body) = api(
            &server,
            reqwest::Method::GET,
            &format!("/api/v1/scans/{bad_layer}"),
            None,
        );
        (body["result"]["scanned_at_ms"].as_i64() > Some(before)).then_some(())
    });
    let (_, body) = api(&server, reqwest::Method::GET, "/api/v1/quarantines", None);
    assert_eq!(body["quarantines"], json!([]), "{body}");
    let (status, _) = raw_get(&server, "/v2/models/fraud/manifests/v6", MANIFEST_TYPES);
    assert_eq!(status, 200);

    // Every decision is in the audit log.
    let (_, events) = api(
        &server,
        reqwest::Method::GET,
        "/api/v1/audit?limit=10000",
        None,
    );
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"]["event_type"].as_str())
        .collect();
    for wanted in ["scan.result", "quarantine.decision", "deny.quarantine"] {
        assert!(types.contains(&wanted), "{wanted} missing from {types:?}");
    }
    assert!(!marker.exists(), "the payload must never run");
}

#[test]
fn scan_policies_block_by_severity_and_refuse_unscanned_content() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let set_policy = |repo: &str, policy: Value| {
        let (status, body) = api(
            &server,
            reqwest::Method::PUT,
            &format!("/api/v1/repositories/{repo}"),
            Some(json!({"scan_policy": policy})),
        );
        assert_eq!(status, 200, "{body}");
        body
    };
    // Through the CLI: block at MEDIUM, keep the default quarantine (CRITICAL).
    let out = ward(&[
        "admin",
        "--registry",
        &server.addr,
        "repo",
        "scan-policy",
        "models/strict",
        "--block-at",
        "medium",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        body["effective_scan_policy"]["block_severity"], "MEDIUM",
        "{body}"
    );
    assert_eq!(
        body["effective_scan_policy"]["quarantine_severity"], "CRITICAL",
        "{body}"
    );
    let odd = work.path().join("odd.pkl");
    std::fs::write(&odd, unknown_callable_pickle()).unwrap();
    let (_, layer) = push_model(&server, "models/strict:v1", &odd);
    let result = scanned(&server, &layer);
    assert_eq!(result["result"]["max_severity"], "MEDIUM", "{result}");
    let (status, body) = raw_get(&server, "/v2/models/strict/manifests/v1", MANIFEST_TYPES);
    assert_eq!(status, 403, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("mymodule.innocuous"), "{message}");
    // The same content is not quarantined (MEDIUM < CRITICAL): a lenient repository serves it.
    let (_, same) = push_model(&server, "models/lenient:v1", &odd);
    assert_eq!(same, layer);
    let (status, _) = raw_get(&server, "/v2/models/lenient/manifests/v1", MANIFEST_TYPES);
    assert_eq!(status, 200);
    // A policy set back to the default stops blocking.
    let body = set_policy("models/strict", Value::Null);
    assert!(body["scan_policy"].is_null(), "{body}");
    let (status, _) = raw_get(&server, "/v2/models/strict/manifests/v1", MANIFEST_TYPES);
    assert_eq!(status, 200);
}

#[test]
fn a_pickle_that_outruns_the_scanner_is_judged_by_what_it_hid() {
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("payload-ran");
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let policy = |repo: &str, flags: &[&str]| {
        let mut args = vec![
            "admin",
            "--registry",
            &server.addr,
            "repo",
            "scan-policy",
            repo,
        ];
        args.extend_from_slice(flags);
        let out = ward(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    policy("models/lenient", &["--ignore-incomplete"]);
    policy(
        "models/blocking",
        &[
            "--block-at",
            "high",
            "--incomplete-as",
            "high",
            "--no-quarantine",
        ],
    );
    // Three different padded pickles, so that each is judged by one policy only.
    let file = |name: &str| {
        let path = work.path().join(name).join("model.pt");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let marker = format!("{}-{name}", marker.display());
        std::fs::write(&path, padded_malicious_pickle(&marker)).unwrap();
        path
    };
    let settled = |repo: &str, manifest: &str, layer: &str| {
        let result = scanned(&server, layer);
        report_attached(&server, repo, manifest);
        result
    };

    // The scanner stopped before the payload: no finding, one unread part.
    let (lenient_manifest, lenient_layer) =
        push_model(&server, "models/lenient:v1", &file("lenient"));
    let result = settled("models/lenient", &lenient_manifest, &lenient_layer);
    assert!(result["result"]["max_severity"].is_null(), "{result}");
    assert_eq!(result["result"]["unread_parts"], 1, "{result}");
    assert!(
        result["result"]["report"]["unreadable"]
            .to_string()
            .contains("pickle_memo_ranges_max"),
        "{result}"
    );
    // A repository that ignores incomplete scans serves it (its choice).
    let (status, _) = raw_get(&server, "/v2/models/lenient/manifests/v1", MANIFEST_TYPES);
    assert_eq!(status, 200);

    // One that counts them as HIGH and blocks at HIGH refuses it, naming why.
    let (manifest, layer) = push_model(&server, "models/blocking:v1", &file("blocking"));
    settled("models/blocking", &manifest, &layer);
    let (status, body) = raw_get(&server, "/v2/models/blocking/manifests/v1", MANIFEST_TYPES);
    assert_eq!(status, 403, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("incomplete scan") && message.contains("pickle_memo_ranges_max"),
        "{message}"
    );

    // The default policy quarantines it: it is refused everywhere.
    let out = ward(&[
        "push",
        &format!("{}/models/default:v1", server.addr),
        file("default").to_str().unwrap(),
    ]);
    let layer = sha256_digest(&std::fs::read(work.path().join("default/model.pt")).unwrap());
    scanned(&server, &layer);
    let quarantine = quarantine_of(&server, &layer);
    assert!(
        quarantine["reason"]
            .as_str()
            .unwrap()
            .contains("incomplete scan"),
        "{quarantine}"
    );
    if out.status.success() {
        let (status, _) = raw_get(&server, "/v2/models/default/manifests/v1", MANIFEST_TYPES);
        assert_eq!(status, 403);
    }
    let (status, _) = raw_get(&server, &format!("/v2/models/default/blobs/{layer}"), "*/*");
    assert_eq!(status, 403);
    // The others were not quarantined by it.
    let (_, body) = api(&server, reqwest::Method::GET, "/api/v1/quarantines", None);
    assert_eq!(body["quarantines"].as_array().unwrap().len(), 1, "{body}");
    assert!(std::fs::read_dir(work.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("payload-ran")
    }));
}

#[test]
fn content_scanned_before_is_judged_by_the_policy_of_each_repository_it_enters() {
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("payload-ran");
    let server = WardProcess::start(&work.path().join("data"), &[]);
    let out = ward(&[
        "admin",
        "--registry",
        &server.addr,
        "repo",
        "scan-policy",
        "lab/sandbox",
        "--no-quarantine",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = work.path().join("model.pt");
    std::fs::write(&bad, malicious_pickle(marker.to_str().unwrap())).unwrap();
    // Scanned while only a repository that never quarantines links it.
    let (manifest, layer) = push_model(&server, "lab/sandbox:v1", &bad);
    let result = scanned(&server, &layer);
    assert_eq!(result["result"]["max_severity"], "CRITICAL", "{result}");
    report_attached(&server, "lab/sandbox", &manifest);
    let (_, body) = api(&server, reqwest::Method::GET, "/api/v1/quarantines", None);
    assert_eq!(body["quarantines"], json!([]), "{body}");

    // The same bytes pushed to a repository on the default policy are not
    // scanned again, but that policy quarantines them.
    let _ = ward(&[
        "push",
        &format!("{}/models/prod:v1", server.addr),
        bad.to_str().unwrap(),
    ]);
    let quarantine = quarantine_of(&server, &layer);
    assert!(
        quarantine["reason"]
            .as_str()
            .unwrap()
            .contains("models/prod"),
        "{quarantine}"
    );
    let (status, _) = raw_get(&server, &format!("/v2/lab/sandbox/blobs/{layer}"), "*/*");
    assert_eq!(status, 403, "a quarantine holds everywhere");
    assert!(!marker.exists());
}

#[test]
fn the_queue_survives_a_restart_and_unscanned_content_can_be_refused() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let marker = work.path().join("payload-ran");
    // Scanning off: new content is queued, not scanned.
    let server = WardProcess::start(&data, &[("WARD_SCAN__ENABLED", "false")]);
    let (status, _) = api(
        &server,
        reqwest::Method::PUT,
        "/api/v1/repositories/models/gated",
        Some(json!({"scan_policy": {"block_unscanned": true, "quarantine_severity": "CRITICAL"}})),
    );
    assert_eq!(status, 200);
    let bad = work.path().join("model.pt");
    std::fs::write(&bad, malicious_pickle(marker.to_str().unwrap())).unwrap();
    let (_, layer) = push_model(&server, "models/gated:v1", &bad);
    let (status, body) = api(
        &server,
        reqwest::Method::GET,
        &format!("/api/v1/scans/{layer}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queued"], true);
    let (status, body) = raw_get(&server, "/v2/models/gated/manifests/v1", MANIFEST_TYPES);
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("not been scanned"), "{body}");
    server.kill();

    // Restarted with scanning on: the queued job is scanned and quarantined.
    let server = WardProcess::start(&data, &[]);
    let result = scanned(&server, &layer);
    assert_eq!(result["result"]["max_severity"], "CRITICAL");
    let (status, body) = eventually("the refusal to name the quarantine", || {
        let (status, body) = raw_get(&server, "/v2/models/gated/manifests/v1", MANIFEST_TYPES);
        body.to_string()
            .contains("quarantined")
            .then_some((status, body))
    });
    assert_eq!(status, 403, "{body}");
    assert!(!marker.exists());
}

#[test]
fn a_rule_set_change_rescans_stored_content_applies_the_policy_and_alerts() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let marker = work.path().join("payload-ran");
    let bad = work.path().join("model.pt");
    std::fs::write(&bad, malicious_pickle(marker.to_str().unwrap())).unwrap();
    let server = WardProcess::start(&data, &[("WARD_SCAN__ENABLED", "false")]);
    let (_, layer) = push_model(&server, "models/old:v1", &bad);
    server.kill();

    // As if an older rule set had scanned it and found nothing: a clean result
    // under another version, and no queued job.
    let clean = work.path().join("clean.pkl");
    std::fs::write(&clean, clean_pickle()).unwrap();
    let out = ward_env(&["scan", "--json", clean.to_str().unwrap()], &[]);
    let scanned_clean: Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = scanned_clean["files"][0]["report"].to_string();
    let script = "import sqlite3, sys, time\n\
        db = sqlite3.connect(sys.argv[1])\n\
        db.execute('DELETE FROM scan_queue WHERE digest = ?', (sys.argv[2],))\n\
        db.execute('INSERT INTO scan_results (digest, ruleset, max_severity, findings, report, scanned_at) \
        VALUES (?, ?, NULL, 0, ?, ?)', \
        (sys.argv[2], '2020.1.1', sys.argv[3], int(time.time() * 1000)))\n\
        db.commit()\n";
    tool_ok(
        venv_python().to_str().unwrap(),
        &[
            "-c",
            script,
            data.join("ward.db").to_str().unwrap(),
            &layer,
            &report,
        ],
    );

    // Restarted with the current rule set: the stored blob is rescanned, the
    // new finding quarantines it and raises an alert.
    let (hook_url, alerts) = webhook_receiver();
    let server = WardProcess::start(
        &data,
        &[("WARD_SCAN__ALERT_WEBHOOK_URL", hook_url.as_str())],
    );
    let alert = alerts.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(alert["digest"], layer.as_str());
    assert_eq!(alert["max_severity"], "CRITICAL");
    let result = scanned(&server, &layer);
    assert_eq!(result["result"]["max_severity"], "CRITICAL", "{result}");
    assert_eq!(
        result["result"]["ruleset"], scanned_clean["ruleset"],
        "{result}"
    );
    let (status, body) = eventually("the refusal to name the quarantine", || {
        let (status, body) = raw_get(&server, "/v2/models/old/manifests/v1", MANIFEST_TYPES);
        body.to_string()
            .contains("quarantined")
            .then_some((status, body))
    });
    assert_eq!(status, 403, "{body}");
    assert!(!marker.exists());
}

#[test]
fn ward_scan_reports_offline_with_exit_codes_json_and_sarif() {
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("payload-ran");
    let bad = work.path().join("weights.safetensors");
    std::fs::write(&bad, malicious_pickle(marker.to_str().unwrap())).unwrap();
    let good = work.path().join("clean.pt");
    std::fs::write(&good, clean_pickle()).unwrap();

    let out = ward(&["scan", good.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ward(&["scan", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("CRITICAL") && table.contains("posix.system"),
        "{table}"
    );
    // --fail-on above the worst finding passes.
    let out = ward(&["scan", "--fail-on", "critical", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));

    let out = ward(&["scan", "--json", work.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{doc}");
    let by_name = |name: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("weights.safetensors")["report"]["format"], "pickle");
    assert_eq!(
        by_name("weights.safetensors")["report"]["findings"][0]["severity"],
        "CRITICAL"
    );
    assert_eq!(by_name("clean.pt")["report"]["findings"], json!([]));

    let out = ward(&["scan", "--sarif", bad.to_str().unwrap()]);
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["level"], "error");
    assert_eq!(result["ruleId"], "pickle.denied-callable");

    let out = ward(&["scan", "/nonexistent/model.pt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!marker.exists());
}
