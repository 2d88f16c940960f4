//! The first administrator: with no password configured, Ward generates one,
//! prints it once on standard error (never in the log), and it works; a
//! restart prints nothing and keeps it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `ward serve` with no admin password anywhere; returns the child,
/// its address, and what it printed on stderr before listening.
fn start(data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_remove("WARD_ADMIN_PASSWORD")
        .env("WARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ward serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("ward listening on ")
        .unwrap_or_else(|| panic!("ward did not start: {line:?}"))
        .to_owned();
    (child, addr)
}

/// The generated password from what `ward serve` printed on stderr, if any.
fn generated_password(child: &mut Child) -> Option<String> {
    child.kill().unwrap();
    child.wait().unwrap();
    let stderr = child.stderr.take().unwrap();
    BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_once("shown only now: ")
                .map(|(_, p)| p.trim().to_owned())
        })
}

#[test]
fn a_generated_admin_password_is_printed_once_and_works() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (mut first, _) = start(&data);
    let password = generated_password(&mut first).expect("the password is printed on first start");
    assert!(password.len() >= 16, "{password:?}");
    // The log (stdout here is only the listening line) never carries it; a
    // restart prints nothing and the password still signs in.
    let (mut second, addr) = start(&data);
    let client = reqwest::blocking::Client::new();
    let ok = client
        .get(format!("http://{addr}/v2/"))
        .basic_auth("admin", Some(&password))
        .send()
        .unwrap();
    assert_eq!(ok.status(), reqwest::StatusCode::OK);
    let wrong = client
        .get(format!("http://{addr}/v2/"))
        .basic_auth("admin", Some("guess"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(generated_password(&mut second), None, "printed only once");
}
