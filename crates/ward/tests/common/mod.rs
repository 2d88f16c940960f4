//! The real `ward` binary as a separate process, and helpers to drive
//! third-party clients against it. A missing tool fails the test loudly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The administrator password of every test server.
pub const ADMIN_PASSWORD: &str = "interop-admin-password";

/// `admin:<password>`, as skopeo, podman and buildah take `--creds`.
pub fn creds() -> String {
    format!("admin:{ADMIN_PASSWORD}")
}

/// A blocking HTTP client that signs in as the administrator.
pub fn admin_http() -> reqwest::blocking::Client {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(creds());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Basic {basic}").parse().unwrap(),
    );
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The `Authorization` header line for raw HTTP requests.
pub fn basic_header_line() -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(creds())
    )
}

/// A `ward serve` process on an ephemeral loopback port.
pub struct WardProcess {
    pub child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    pub extra_env: Vec<(String, String)>,
}

impl WardProcess {
    /// Starts `ward serve` on `data_dir` and waits for its "listening" line.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ward"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("WARD_LOG", "warn")
            .env("WARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ward serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read ward's first line");
        let addr = line
            .trim()
            .strip_prefix("ward listening on ")
            .unwrap_or_else(|| panic!("ward did not start: {line:?}"))
            .to_owned();
        WardProcess {
            child,
            addr,
            data_dir: data_dir.to_owned(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for WardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a third-party tool; a tool that is not installed fails the test with how to get it.
pub fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed by this test and could not run ({e}); ./scripts/test installs it"))
}

/// Runs a tool and requires success, showing its output otherwise.
pub fn tool_ok(program: &str, args: &[&str]) -> String {
    let out = tool(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The venv's Python (scripts/test creates it), or a loud failure.
pub fn venv_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test (or python3 -m venv .venv && .venv/bin/pip install -r tests/requirements-interop.txt)",
        python.display()
    );
    python
}

/// Runs the `ward` CLI signed in as the test registry's admin (through the
/// environment, as a CI job would), with no saved credentials of the user's.
pub fn ward(args: &[&str]) -> Output {
    ward_with(args, &[])
}

/// [`ward`] with extra environment variables.
pub fn ward_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ward"));
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

/// Requires a command to have succeeded, showing its output otherwise.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The password of every key [`generate_key`] writes.
pub const KEY_PASSWORD: &str = "test-signing-key-password";

/// `ward key generate`: `<dir>/<name>.key` (encrypted with [`KEY_PASSWORD`],
/// cosign's format) and `<dir>/<name>.pub`; returns `<dir>/<name>`.
pub fn generate_key(dir: &Path, name: &str) -> PathBuf {
    let prefix = dir.join(name);
    assert_ok(&ward_with(
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
        &[("COSIGN_PASSWORD", KEY_PASSWORD)],
    ));
    prefix
}

/// `ward push --json` of files (each `path` or `path:media/type`), plus any
/// extra flags; returns what it printed.
pub fn push_files(
    server: &WardProcess,
    reference: &str,
    files: &[&str],
    extra: &[&str],
) -> serde_json::Value {
    let target = format!("{}/{reference}", server.addr);
    let mut args = vec!["push", target.as_str()];
    args.extend_from_slice(files);
    args.extend_from_slice(extra);
    args.push("--json");
    let out = ward(&args);
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `ward push` of one file; returns the manifest digest.
pub fn push_file(server: &WardProcess, reference: &str, file: &Path) -> String {
    push_files(server, reference, &[file.to_str().unwrap()], &[])["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `ward gate --json` with one trusted public key: the exit code and the decision.
pub fn gate(reference: &str, public_key: &Path) -> (Option<i32>, serde_json::Value) {
    let out = ward(&[
        "gate",
        reference,
        "--key",
        public_key.to_str().unwrap(),
        "--json",
    ]);
    let decision = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), decision)
}

/// Stores `policy` as the registry's trust policy (`ward admin trust put`).
pub fn put_trust_policy(server: &WardProcess, work: &Path, policy: &serde_json::Value) {
    let file = work.join("trust.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    assert_ok(&ward(&[
        "admin",
        "--registry",
        &server.addr,
        "trust",
        "put",
        file.to_str().unwrap(),
    ]));
}

/// A robot with one grant (`read=prod/**`); returns its name and secret.
pub fn create_robot(server: &WardProcess, name: &str, grant: &str) -> (String, String) {
    let out = ward(&[
        "admin",
        "--registry",
        &server.addr,
        "robot",
        "create",
        name,
        "--grant",
        grant,
    ]);
    assert_ok(&out);
    (
        name.to_owned(),
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    )
}

/// GET `path` as `who`, accepting manifests and indexes: status and body.
pub fn get_as(
    server: &WardProcess,
    who: &(String, String),
    path: &str,
    user_agent: &str,
) -> (u16, String) {
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

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// Builds a two-layer OCI image layout with umoci; returns the layout path.
pub fn umoci_image(work: &Path) -> PathBuf {
    let layout = work.join("layout");
    let l = layout.to_str().unwrap();
    tool_ok("umoci", &["init", "--layout", l]);
    tool_ok("umoci", &["new", "--image", &format!("{l}:v1")]);
    let hello = work.join("hello.txt");
    std::fs::write(&hello, b"hello from the interop test\n").unwrap();
    tool_ok(
        "umoci",
        &[
            "insert",
            "--image",
            &format!("{l}:v1"),
            hello.to_str().unwrap(),
            "/hello.txt",
        ],
    );
    let big = work.join("data.bin");
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, data).unwrap();
    tool_ok(
        "umoci",
        &[
            "insert",
            "--image",
            &format!("{l}:v1"),
            big.to_str().unwrap(),
            "/data.bin",
        ],
    );
    tool_ok(
        "umoci",
        &[
            "config",
            "--image",
            &format!("{l}:v1"),
            "--config.cmd",
            "/hello.txt",
        ],
    );
    layout
}
