//! No secret in logs, metrics or error bodies: a server logging at its most
//! verbose sees passwords (right and wrong), a robot secret, bearer and
//! refresh tokens; none of them may appear in anything it writes or answers
//! other than the one response that hands a secret out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "admin-Secret-4f1c9e";
const WRONG_PASSWORD: &str = "wrong-Secret-77ab31";

#[test]
fn secrets_stay_out_of_logs_metrics_and_error_bodies() {
    let work = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(work.path().join("data"))
        .env("WARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("WARD_LOG", "trace,h2=info,hyper=info,rustls=info")
        .env("WARD_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ward serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("ward listening on ")
        .unwrap_or_else(|| panic!("ward did not start: {line:?}"))
        .to_owned();
    let url = |p: &str| format!("http://{addr}{p}");
    let http = reqwest::blocking::Client::new();
    let mut answers = Vec::new();

    // A wrong password, then the right one, over Basic and the token flow.
    let r = http
        .get(url("/v2/"))
        .basic_auth("admin", Some(WRONG_PASSWORD))
        .send()
        .unwrap();
    answers.push(r.text().unwrap());
    let r = http
        .get(url("/token"))
        .query(&[("service", "ward"), ("offline_token", "true")])
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    let body: Value = r.json().unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    // A robot secret is handed out once, then used, rightly and wrongly.
    let r = http
        .post(url("/api/v1/robots"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&json!({"name": "ci", "grants": [{"role": "write", "repositories": "apps/*"}]}))
        .send()
        .unwrap();
    let robot: Value = r.json().unwrap();
    let robot_secret = robot["secret"].as_str().unwrap().to_owned();
    for (user, secret) in [("ci", robot_secret.as_str()), ("ci", "ward_rbt_forged")] {
        let r = http
            .get(url("/v2/apps/x/tags/list"))
            .basic_auth(user, Some(secret))
            .send()
            .unwrap();
        answers.push(r.text().unwrap());
    }
    // Tokens used where they do not belong.
    for t in [&token, &refresh] {
        let r = http
            .get(url("/v2/other/repo/manifests/v1"))
            .bearer_auth(t)
            .send()
            .unwrap();
        answers.push(r.text().unwrap());
    }
    let r = http
        .post(url("/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", WRONG_PASSWORD),
            ("service", "ward"),
        ])
        .send()
        .unwrap();
    answers.push(r.text().unwrap());
    let metrics = http.get(url("/metrics")).send().unwrap().text().unwrap();

    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    stdout.read_to_string(&mut logs).unwrap();
    assert!(
        logs.lines().count() > 20,
        "the server logged at trace level:\n{logs}"
    );

    for (what, secret) in [
        ("the admin password", ADMIN_PASSWORD),
        ("a wrong password", WRONG_PASSWORD),
        ("the robot secret", robot_secret.as_str()),
        ("a bearer token", token.as_str()),
        ("a refresh token", refresh.as_str()),
    ] {
        assert!(!logs.contains(secret), "{what} is in the logs");
        assert!(!metrics.contains(secret), "{what} is in /metrics");
        for a in &answers {
            assert!(!a.contains(secret), "{what} is in an error body: {a}");
        }
    }
}
