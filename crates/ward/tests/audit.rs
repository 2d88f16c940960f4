//! The audit trail end to end, against the real `ward` binary: the mission's
//! test 5 (a scripted session through real clients, then every expected event
//! with its metadata and nothing else), delivery to a webhook across an outage
//! and a server restart, and `ward audit verify` naming tampering done to the
//! database file and to an export.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const WEBHOOK_SECRET: &str = "audit-test-webhook-secret";

/// Every event of a server's log, through `ward audit export`.
fn exported_events(server: &WardProcess, work: &Path) -> Vec<Value> {
    let file = work.join(format!("export-{}.jsonl", server.addr.replace(':', "_")));
    let out = ward(&[
        "audit",
        "export",
        "--server",
        &server.addr,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "event")
        .collect()
}

/// Waits for a condition that the server reaches on its own (a delivery);
/// fails loudly after `limit`.
fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_scripted_session_is_logged_completely_and_with_the_right_metadata() {
    let work = tempfile::tempdir().unwrap();
    let server = WardProcess::start(&work.path().join("data"), &[]);

    // An administrator creates a CI robot through the CLI.
    let (_, secret) = create_robot(&server, "ci", "write=apps/*");
    let ci_creds = format!("ci:{secret}");

    // The robot pushes an image with skopeo (Docker token flow).
    let layout = umoci_image(work.path());
    let manifest_digest = {
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        index["manifests"][0]["digest"].as_str().unwrap().to_owned()
    };
    let image = format!("docker://{}/apps/web:v1", server.addr);
    tool_ok(
        "skopeo",
        &[
            "copy",
            "--dest-creds",
            &ci_creds,
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &image,
        ],
    );
    // The administrator pulls it back.
    let back = work.path().join("back");
    tool_ok(
        "skopeo",
        &[
            "copy",
            "--src-creds",
            &creds(),
            "--src-tls-verify=false",
            &image,
            &format!("oci:{}:v1", back.display()),
        ],
    );
    // The robot tries a repository it has no grant on: refused.
    let refused = tool(
        "skopeo",
        &[
            "copy",
            "--dest-creds",
            &ci_creds,
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/other/x:v1", server.addr),
        ],
    );
    assert!(!refused.status.success());
    // Somebody guesses a password.
    let guess = reqwest::blocking::Client::new()
        .get(server.url("/v2/"))
        .basic_auth("mallory", Some("guess"))
        .header("user-agent", "guesser/1.0")
        .send()
        .unwrap();
    assert_eq!(guess.status(), reqwest::StatusCode::UNAUTHORIZED);
    // The administrator creates a user through the API.
    let created = admin_http()
        .post(server.url("/api/v1/users"))
        .json(&json!({"name": "dev", "password": "a long dev password"}))
        .send()
        .unwrap();
    assert!(created.status().is_success(), "{}", created.text().unwrap());

    let events = exported_events(&server, work.path());
    let event = |e: &Value| e["event"].clone();
    let of = |kind: &str| -> Vec<Value> {
        events
            .iter()
            .map(event)
            .filter(|e| e["event_type"] == kind)
            .collect()
    };

    // Every event a request caused came from this machine, has a time and a
    // request id (the scanner's results, recorded by the server itself as
    // pushed content is scanned, have neither address nor request).
    for e in events.iter().map(event).filter(|e| e["user"] != "scanner") {
        assert_eq!(e["ip_address"], "127.0.0.1", "{e}");
        assert!(
            e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{e}"
        );
        assert!(e["request_id"].as_str().is_some(), "{e}");
    }

    let robots = of("admin.robot");
    assert_eq!(robots.len(), 1, "{robots:?}");
    assert_eq!(robots[0]["user"], "admin");
    assert_eq!(robots[0]["target"], "ci");
    assert_eq!(robots[0]["outcome"], "success");
    assert!(
        robots[0]["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("ward/")
    );

    let pushes = of("artifact.push");
    let manifest_pushes: Vec<&Value> = pushes.iter().filter(|e| e["action"] == "push").collect();
    assert_eq!(manifest_pushes.len(), 1, "{pushes:?}");
    // Every blob of the image has its own event: skopeo sends each as POST then PUT.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(&manifest_digest["sha256:".len()..]),
        )
        .unwrap(),
    )
    .unwrap();
    let mut blobs: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&manifest["config"]])
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    blobs.sort_unstable();
    let mut blob_pushes: Vec<&str> = pushes
        .iter()
        .filter(|e| e["action"] == "push_blob")
        .inspect(|e| {
            assert_eq!(
                (&e["user"], &e["repository"], &e["outcome"]),
                (&json!("ci"), &json!("apps/web"), &json!("success")),
                "{e}"
            );
        })
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    blob_pushes.sort_unstable();
    assert_eq!(blob_pushes, blobs, "{pushes:?}");
    assert_eq!(pushes.len(), 1 + blobs.len(), "{pushes:?}");
    let push = manifest_pushes[0];
    assert_eq!(push["user"], "ci");
    assert_eq!(push["action"], "push");
    assert_eq!(push["outcome"], "success");
    assert_eq!(push["repository"], "apps/web");
    assert_eq!(push["digest"], manifest_digest.as_str());
    assert_eq!(push["artifact"]["id"], manifest_digest.as_str());
    assert_eq!(push["artifact"]["name"], "apps/web");
    assert_eq!(push["artifact"]["version"], "v1");
    assert_eq!(push["auth_method"], "bearer");
    assert!(
        push["user_agent"].as_str().unwrap().starts_with("skopeo/"),
        "{push}"
    );

    let pulls = of("artifact.pull");
    assert!(!pulls.is_empty());
    for p in &pulls {
        assert_eq!(p["user"], "admin", "{p}");
        assert_eq!(p["repository"], "apps/web", "{p}");
        assert_eq!(p["outcome"], "success", "{p}");
        assert!(p["digest"].as_str().is_some(), "{p}");
    }
    assert!(
        pulls
            .iter()
            .any(|p| p["digest"] == manifest_digest.as_str()),
        "the manifest pull is logged: {pulls:?}"
    );

    let denials = of("deny.authorization");
    assert!(!denials.is_empty());
    for d in &denials {
        assert_eq!(d["user"], "ci", "{d}");
        assert_eq!(d["repository"], "other/x", "{d}");
        assert_eq!(d["outcome"], "denied", "{d}");
        assert!(!d["reason"].as_str().unwrap_or_default().is_empty(), "{d}");
    }

    let failures = of("auth.failure");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["user"], "mallory");
    assert_eq!(failures[0]["auth_method"], "password");
    assert_eq!(failures[0]["outcome"], "failure");
    assert_eq!(failures[0]["user_agent"], "guesser/1.0");

    let users = of("admin.user");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["user"], "admin");
    assert_eq!(users[0]["target"], "dev");

    for who in ["admin", "ci"] {
        assert!(
            of("auth.success").iter().any(|e| e["user"] == who),
            "{who} signed in"
        );
        assert!(
            of("token.issue").iter().any(|e| e["user"] == who),
            "{who} got a token"
        );
    }
    for e in of("auth.success").iter().chain(&of("token.issue")) {
        assert!(e["auth_method"].as_str().is_some(), "{e}");
    }

    // And nothing else: no other kind of event, and no event by anyone else.
    let allowed: &[(&str, &[&str])] = &[
        ("auth.success", &["admin", "ci"]),
        ("auth.failure", &["mallory"]),
        ("token.issue", &["admin", "ci"]),
        ("artifact.push", &["ci"]),
        ("artifact.pull", &["admin"]),
        ("deny.authorization", &["ci"]),
        ("admin.robot", &["admin"]),
        ("admin.user", &["admin"]),
        ("scan.result", &["scanner"]),
    ];
    for e in events.iter().map(event) {
        let kind = e["event_type"].as_str().unwrap();
        let user = e["user"].as_str().unwrap_or("");
        assert!(
            allowed
                .iter()
                .any(|(k, users)| *k == kind && users.contains(&user)),
            "unexpected event: {e}"
        );
    }
    // The export is intact and verifies against the server's pinned key.
    let key = work.path().join("checkpoint.pub");
    let out = ward(&["audit", "key", "--server", &server.addr]);
    assert!(out.status.success());
    std::fs::write(&key, &out.stdout).unwrap();
    let out = ward(&[
        "audit",
        "verify",
        "--server",
        &server.addr,
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A webhook receiver on a plain socket: checks each batch's HMAC and keeps
/// every item with its `seq`, in arrival order.
struct Receiver {
    items: Arc<Mutex<Vec<(u64, String)>>>,
    bad_signatures: Arc<Mutex<u32>>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl Receiver {
    fn start(addr: SocketAddr) -> Receiver {
        let listener = TcpListener::bind(addr).expect("rebind the receiver's port");
        listener.set_nonblocking(true).unwrap();
        let receiver = Receiver {
            items: Arc::default(),
            bad_signatures: Arc::default(),
            stop: Arc::default(),
            addr,
        };
        let (items, bad, stop) = (
            receiver.items.clone(),
            receiver.bad_signatures.clone(),
            receiver.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => serve_one(stream, &items, &bad),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("receiver accept: {e}"),
                }
            }
        });
        receiver
    }

    fn seqs(&self) -> Vec<u64> {
        self.items.lock().unwrap().iter().map(|(s, _)| *s).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_one(stream: TcpStream, items: &Mutex<Vec<(u64, String)>>, bad: &Mutex<u32>) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    let mut signature = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap();
            } else if name.eq_ignore_ascii_case(ward_audit::sink::SIGNATURE_HEADER) {
                signature = value.to_owned();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let status = if ward_audit::sink::verify_signature(WEBHOOK_SECRET.as_bytes(), &body, &signature)
    {
        let batch: Value = serde_json::from_slice(&body).unwrap();
        let mut all = items.lock().unwrap();
        for item in batch["items"].as_array().unwrap() {
            all.push((item["seq"].as_u64().unwrap(), item.to_string()));
        }
        "200 OK"
    } else {
        *bad.lock().unwrap() += 1;
        "401 Unauthorized"
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}

/// A loopback port nobody listens on (yet).
fn unused_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn status(server: &WardProcess) -> Value {
    admin_http()
        .get(server.url("/api/v1/audit/status"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn create_users(server: &WardProcess, names: std::ops::Range<u32>) {
    for i in names {
        let r = admin_http()
            .post(server.url("/api/v1/users"))
            .json(&json!({"name": format!("user{i}"), "password": "a long user password"}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    }
}

#[test]
fn the_webhook_gets_every_event_in_order_across_an_outage_and_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let receiver_addr = unused_port();
    let config = work.path().join("ward.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[audit.sinks]]
name = "siem"
kind = "webhook"
url = "http://{receiver_addr}/ingest"
secret = "{WEBHOOK_SECRET}"
delivery = {{ batch_events_max = 7, poll_interval_ms = 100, backoff_initial_ms = 50, backoff_max_ms = 200 }}
"#
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let data = work.path().join("data");
    let env = [("WARD_CONFIG", config.as_str())];

    // The receiver is down: events pile up, and the lag and failures show.
    let server = WardProcess::start(&data, &env);
    create_users(&server, 0..10);
    wait_for("failed deliveries", Duration::from_secs(30), || {
        status(&server)["status"]["sinks"][0]["consecutive_failures"]
            .as_u64()
            .unwrap()
            > 0
    });
    let metrics = admin_http()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let lag_line = metrics
        .lines()
        .find(|l| l.starts_with("ward_audit_sink_lag_events{") && l.contains("sink=\"siem\""))
        .unwrap_or_else(|| panic!("no lag gauge in /metrics:\n{metrics}"));
    let lag: u64 = lag_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(lag > 0, "{lag_line}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ward_audit_sink_consecutive_failures{") && !l.ends_with(" 0")),
        "{metrics}"
    );
    let ready: Value = reqwest::blocking::get(server.url("/readyz"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ready["audit"]["sinks"][0]["name"], "siem");
    assert_eq!(ready["audit"]["sinks"][0]["healthy"], false);
    assert!(ready["audit"]["sinks"][0]["lag_events"].as_u64().unwrap() > 0);

    // The server dies without warning and comes back; more events.
    server.kill();
    let server = WardProcess::start(&data, &env);
    create_users(&server, 10..20);

    // The receiver comes up; everything arrives.
    let receiver = Receiver::start(receiver_addr);
    let head = || {
        status(&server)["status"]["log"]["head"]["size"]
            .as_u64()
            .unwrap()
    };
    wait_for("delivery of every event", Duration::from_secs(60), || {
        let size = head();
        let seqs = receiver.seqs();
        status(&server)["status"]["sinks"][0]["lag_events"] == 0
            && seqs.iter().max().is_some_and(|m| *m + 1 >= size)
    });
    let size = head();
    let items = receiver.items.lock().unwrap().clone();
    // Every seq from 0 to the head, first arrivals in order; a repeat is
    // allowed only as an exact copy carrying the same seq.
    let mut next = 0u64;
    let mut seen = std::collections::HashMap::new();
    for (seq, item) in &items {
        match seen.get(seq) {
            Some(first) => assert_eq!(first, item, "a repeat of seq {seq} must be identical"),
            None => {
                assert_eq!(*seq, next, "seq {seq} arrived before {next}");
                seen.insert(*seq, item.clone());
                next += 1;
            }
        }
    }
    assert!(next >= size, "delivered {next} of {size}");
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
    // What arrived is what the log holds: all 20 user creations among them.
    let created: Vec<String> = items
        .iter()
        .filter_map(|(_, i)| {
            let v: Value = serde_json::from_str(i).unwrap();
            (v["event"]["event_type"] == "admin.user").then(|| v["event"]["target"].to_string())
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(created.len(), 20, "{created:?}");
    let stored = exported_events(&server, work.path());
    for (seq, item) in seen {
        let v: Value = serde_json::from_str(&item).unwrap();
        assert_eq!(v["hash"], stored[seq as usize]["hash"], "seq {seq}");
    }
    assert_eq!(receiver.addr, receiver_addr);
}

#[test]
fn verify_names_tampering_in_the_database_and_in_an_export() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = WardProcess::start(&data, &[("WARD_AUDIT__CHECKPOINT_INTERVAL_SECS", "1")]);
    create_users(&server, 0..8);
    let key = work.path().join("checkpoint.pub");
    let out = ward(&["audit", "key", "--server", &server.addr]);
    assert!(out.status.success());
    std::fs::write(&key, &out.stdout).unwrap();
    let verify = |args: &[&str]| {
        let mut all = vec!["audit", "verify", "--json", "--key", key.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = ward(&all);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "no JSON report: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), report)
    };
    let (code, _) = verify(&["--server", &server.addr]);
    assert_eq!(code, Some(0));

    // An export with one event removed: named offline.
    let export = work.path().join("export.jsonl");
    let out = ward(&[
        "audit",
        "export",
        "--server",
        &server.addr,
        "--output",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&export).unwrap();
    let without_5: String = text
        .lines()
        .filter(|l| !l.contains("\"type\":\"event\",\"seq\":5,"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without_5.lines().count() + 1, text.lines().count());
    let cut = work.path().join("cut.jsonl");
    std::fs::write(&cut, without_5).unwrap();
    let (code, report) = verify(&["--file", cut.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["first_problem"]["seq"], 5, "{report}");
    assert_eq!(report["first_problem"]["kind"], "removed", "{report}");

    // A DBA edits a row in the SQLite file, dropping the trigger first.
    server.kill();
    let db = data.join("ward.db");
    let edit = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys\n\
             c=sqlite3.connect(sys.argv[1])\n\
             c.execute('DROP TRIGGER audit_events_no_update')\n\
             n=c.execute(\"UPDATE audit_events SET event_json=replace(event_json,'\\\"success\\\"','\\\"failure\\\"') WHERE seq=4\").rowcount\n\
             c.commit()\n\
             print(n)\n",
        )
        .arg(&db)
        .output()
        .expect("python3 runs");
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&edit.stdout).trim(), "1");
    let server = WardProcess::start(&data, &[]);
    let (code, report) = verify(&["--server", &server.addr]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["first_problem"]["seq"], 4, "{report}");
    assert_eq!(report["first_problem"]["kind"], "altered", "{report}");
}
