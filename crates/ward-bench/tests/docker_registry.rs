#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `ward-bench` binary against a real peer: Debian's `docker-registry` (CNCF
//! distribution 2.8), open, behind htpasswd Basic auth, and behind Docker token auth.
//!
//! Needs the Debian packages `docker-registry`, `wrk` and `openssl`. For token auth the
//! registry needs a token issuer; none is packaged, so the test serves the token endpoint
//! itself (RS256 tokens signed with `openssl`) and the registry verifies them for real.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use serde_json::{Value, json};

const BENCH: &str = env!("CARGO_BIN_EXE_ward-bench");
const USER: &str = "bench";
// The password whose bcrypt hash is in tests/fixtures/htpasswd.
const PASSWORD: &str = "bench-password-1";

/// A scratch directory removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "ward-bench-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A docker-registry process serving a fresh directory; killed when dropped.
struct DockerRegistry {
    child: Child,
    url: String,
    dir: ScratchDir,
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DockerRegistry {
    /// Starts the registry with `auth` (YAML under `auth:`, or empty) and waits for its
    /// "listening on" log line.
    fn start(name: &str, auth: &str) -> Self {
        let dir = ScratchDir::new(name);
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    \
             rootdirectory: {data}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            data = dir.0.join("data").display()
        );
        let config_path = dir.0.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry is needed: apt-get install docker-registry");
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        let listening = log
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("listening on"));
        assert!(listening, "docker-registry exited before listening");
        // Keep draining the log so the registry never blocks on a full pipe.
        std::thread::spawn(move || log.for_each(drop));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data/docker/registry/v2")
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(args: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(BENCH);
    command
        .args(args)
        .env_remove("WARD_BENCH_PASSWORD")
        .env_remove("WARD_BENCH_USER");
    if let Some(password) = password {
        command.env("WARD_BENCH_PASSWORD", password);
    }
    command.output().unwrap()
}

/// Runs ward-bench with `--json` and returns its report, failing on a non-zero exit.
fn bench(args: &[&str], password: Option<&str>) -> Value {
    let output = run(&[args, &["--json"]].concat(), password);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ward-bench {args:?} failed: {stderr}"
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// Runs ward-bench expecting failure; returns its error output.
fn bench_fails(args: &[&str], password: Option<&str>) -> String {
    let output = run(args, password);
    assert!(
        !output.status.success(),
        "ward-bench {args:?} should have failed"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn blob_file(registry: &DockerRegistry, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    registry
        .data()
        .join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]))
}

#[test]
fn push_pull_stores_the_exact_blob_and_pulls_it_back() {
    let registry = DockerRegistry::start("push-pull", "");
    let size = (3 << 20) + 5;
    let report = bench(
        &[
            "push-pull",
            "--registry",
            &registry.url,
            "--size",
            &size.to_string(),
            "--server-pid",
            &registry.pid(),
            "--reset-hwm",
        ],
        None,
    );
    let digest = report["digest"].as_str().unwrap();
    let stored = std::fs::read(blob_file(&registry, digest)).unwrap();
    assert_eq!(stored.len(), size);
    assert_eq!(sha256_hex(&stored), digest.trim_start_matches("sha256:"));
    assert_eq!(report["auth"], "none");
    for direction in ["push", "pull"] {
        assert!(
            report[direction]["mb_per_s"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        let memory = &report[direction]["server_memory"];
        assert_eq!(memory["hwm_reset"], true, "{report}");
        assert!(
            memory["vm_hwm_after_kib"].as_u64().unwrap() > 1024,
            "{report}"
        );
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn small_blobs_are_all_distinct_and_stored() {
    let registry = DockerRegistry::start("small", "");
    let report = bench(
        &[
            "small-blobs",
            "--registry",
            &registry.url,
            "--count",
            "12",
            "--size",
            "64KiB",
            "--concurrency",
            "3",
        ],
        None,
    );
    assert_eq!(
        (report["pushed"].as_u64(), report["errors"].as_u64()),
        (Some(12), Some(0)),
        "{report}"
    );
    assert!(report["blobs_per_s"].as_f64().unwrap() > 0.0);
    let repository = report["repository"].as_str().unwrap();
    let layers = registry
        .data()
        .join(format!("repositories/{repository}/_layers/sha256"));
    assert_eq!(std::fs::read_dir(layers).unwrap().count(), 12);
}

#[test]
fn manifest_get_with_both_drivers_reads_the_pushed_manifest() {
    let registry = DockerRegistry::start("manifest", "");
    for driver in ["builtin", "wrk"] {
        let args = [
            "manifest-get",
            "--registry",
            &registry.url,
            "--driver",
            driver,
            "--concurrency",
            "4",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--server-pid",
            &registry.pid(),
        ];
        let report = bench(&args, None);
        assert_eq!(report["driver"], driver);
        assert!(report["requests"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert!(
            report["latency_p50_ms"].as_f64().unwrap()
                <= report["latency_p99_ms"].as_f64().unwrap()
        );
        let repository = report["url"]
            .as_str()
            .unwrap()
            .split("/v2/")
            .nth(1)
            .unwrap()
            .split("/manifests/")
            .next()
            .unwrap();
        let link = registry.data().join(format!(
            "repositories/{repository}/_manifests/tags/bench/current/link"
        ));
        assert_eq!(
            std::fs::read_to_string(link).unwrap(),
            report["manifest_digest"].as_str().unwrap()
        );
        assert!(
            report["server_memory"]["rss_sampled_max_kib"]
                .as_u64()
                .unwrap()
                > 1024,
            "{report}"
        );
    }
}

#[test]
fn basic_auth_is_answered_with_the_credentials() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/htpasswd");
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: bench-realm\n    path: {}\n",
        fixture.display()
    );
    let registry = DockerRegistry::start("basic", &auth);
    let args = [
        "push-pull",
        "--registry",
        &registry.url,
        "--size",
        "100KiB",
        "--user",
        USER,
    ];
    let report = bench(&args, Some(PASSWORD));
    assert_eq!(report["auth"], "basic");
    assert!(bench_fails(&args, Some("wrong")).contains("401"));
    let anonymous = bench_fails(
        &["push-pull", "--registry", &registry.url, "--size", "1KiB"],
        None,
    );
    assert!(anonymous.contains("--user"), "{anonymous}");
}

#[test]
fn token_auth_fetches_one_token_and_reuses_it() {
    let keys = ScratchDir::new("token-keys");
    let issuer = TokenIssuer::start(&keys.0);
    let auth = format!(
        "auth:\n  token:\n    realm: {}/token\n    service: ward-bench-test\n    issuer: ward-bench-test-issuer\n    \
         rootcertbundle: {}\n",
        issuer.url,
        keys.0.join("cert.pem").display()
    );
    let registry = DockerRegistry::start("token", &auth);

    let small = [
        "small-blobs",
        "--registry",
        &registry.url,
        "--count",
        "8",
        "--size",
        "4KiB",
        "--concurrency",
        "8",
        "--user",
        USER,
    ];
    let report = bench(&small, Some(PASSWORD));
    assert_eq!(
        (report["auth"].as_str(), report["pushed"].as_u64()),
        (Some("bearer"), Some(8)),
        "{report}"
    );
    assert_eq!(
        issuer.requests.swap(0, Ordering::SeqCst),
        1,
        "8 clients must share one token"
    );

    let get = [
        "manifest-get",
        "--registry",
        &registry.url,
        "--concurrency",
        "4",
        "--duration",
        "1s",
        "--warmup",
        "0ms",
        "--user",
        USER,
    ];
    for driver in ["builtin", "wrk"] {
        let report = bench(&[&get[..], &["--driver", driver]].concat(), Some(PASSWORD));
        assert_eq!(
            (report["auth"].as_str(), report["errors"].as_u64()),
            (Some("bearer"), Some(0)),
            "{report}"
        );
        assert!(report["requests"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(
            issuer.requests.swap(0, Ordering::SeqCst),
            1,
            "{driver}: one token for the whole run"
        );
    }

    let refused = bench_fails(&small, Some("wrong"));
    assert!(
        refused.contains("token endpoint") && refused.contains("401"),
        "{refused}"
    );
    let anonymous = bench_fails(&small[..small.len() - 2], None);
    assert!(anonymous.contains("no --user/--password"), "{anonymous}");
}

#[test]
fn all_and_combine_produce_one_document_per_registry_and_a_side_by_side_table() {
    let registry = DockerRegistry::start("all", "");
    let scratch = ScratchDir::new("all");
    let dir = scratch.0.to_str().unwrap();
    let args = [
        "all",
        "--registry",
        &registry.url,
        "--server-pid",
        &registry.pid(),
        "--reset-hwm",
        "--dir",
        dir,
        "--raw-size",
        "8MiB",
        "--push-size",
        "2MiB",
        "--small-count",
        "4",
        "--small-size",
        "16KiB",
        "--concurrency",
        "2",
        "--duration",
        "1s",
        "--warmup",
        "100ms",
        "--drivers",
        "builtin,wrk",
    ];
    let report = bench(&args, None);
    for pointer in [
        "/raw/sha256_mb_s",
        "/raw/write_fsync_mb_s",
        "/push_pull/push/mb_per_s",
        "/push_pull/pull/mb_per_s",
        "/small_blobs/blobs_per_s",
        "/manifest_get/builtin/requests_per_s",
        "/manifest_get/wrk/requests_per_s",
        "/push_pct_of_raw_limit",
        "/targets/small_blobs_per_s/value",
    ] {
        assert!(
            report.pointer(pointer).and_then(Value::as_f64).unwrap() > 0.0,
            "{pointer} in {report}"
        );
    }
    assert!(
        report["targets"]["small_blobs_per_s"]["met"]
            .as_bool()
            .is_some(),
        "{report}"
    );
    assert!(report["machine"]["nproc"].as_u64().unwrap() >= 1);

    let first = scratch.0.join("a.json");
    std::fs::write(&first, report.to_string()).unwrap();
    let raw = scratch.0.join("raw.json");
    std::fs::write(&raw, report["raw"].to_string()).unwrap();
    let dead = [
        "all",
        "--registry",
        "http://127.0.0.1:1",
        "--raw-json",
        raw.to_str().unwrap(),
        "--drivers",
        "builtin",
        "--json",
    ];
    let output = run(&dead, None);
    assert!(
        !output.status.success(),
        "a dead registry must fail the suite"
    );
    let failed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        failed["push_pull"]["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1"),
        "{failed}"
    );
    assert_eq!(
        failed["raw"]["sha256_mb_s"], report["raw"]["sha256_mb_s"],
        "raw limits are taken from the file"
    );
    let second = scratch.0.join("b.json");
    std::fs::write(&second, failed.to_string()).unwrap();

    let out = scratch.0.join("combined.json");
    let combine = run(
        &[
            "combine",
            &format!("docker-registry={}", first.display()),
            &format!("dead={}", second.display()),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let table = String::from_utf8_lossy(&combine.stdout);
    assert!(
        combine.status.success(),
        "{}",
        String::from_utf8_lossy(&combine.stderr)
    );
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("docker-registry") && header.contains("dead"),
        "{table}"
    );
    assert!(table.contains("dead: push_pull failed"), "{table}");
    let combined: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_eq!(combined["runs"]["docker-registry"], report);
}

#[test]
fn wait_gives_up_on_a_registry_that_is_not_there() {
    let error = bench_fails(
        &[
            "wait",
            "--registry",
            "http://127.0.0.1:1",
            "--timeout",
            "300ms",
        ],
        None,
    );
    assert!(error.contains("no answer"), "{error}");
}

/// A Docker token endpoint: checks Basic credentials and issues RS256 JWTs carrying the
/// requested scope, with the signing certificate in `x5c` so the registry can verify them.
struct TokenIssuer {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl TokenIssuer {
    fn start(dir: &Path) -> Self {
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stderr(Stdio::null())
                .status();
            assert!(
                status
                    .expect("openssl is needed: apt-get install openssl")
                    .success(),
                "openssl {args:?}"
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=ward-bench-test-issuer",
        ]);
        openssl(&[
            "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
        ]);
        let certificate = Base64::encode_string(&std::fs::read(dir.join("cert.der")).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let (counter, key) = (requests.clone(), dir.join("key.pem"));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                answer_token_request(stream.unwrap(), &certificate, &key);
            }
        });
        Self { url, requests }
    }
}

fn answer_token_request(mut stream: TcpStream, certificate: &str, key: &Path) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let expected = format!(
        "authorization: basic {}",
        Base64::encode_string(format!("{USER}:{PASSWORD}").as_bytes())
    );
    let authorised = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case(&expected));
    let target = head.split_whitespace().nth(1).unwrap();
    let scope = target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("scope="));
    let (status, body) = if authorised {
        (
            "200 OK",
            json!({ "token": sign_token(scope.map(percent_decode), certificate, key), "expires_in": 300 }),
        )
    } else {
        (
            "401 Unauthorized",
            json!({ "errors": [{ "code": "UNAUTHORIZED", "message": "bad credentials" }] }),
        )
    };
    let body = body.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).unwrap();
}

fn sign_token(scope: Option<String>, certificate: &str, key: &Path) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<Value> = scope
        .iter()
        .filter_map(|s| s.strip_prefix("repository:"))
        .filter_map(|s| s.rsplit_once(':'))
        .map(|(name, actions)| json!({ "type": "repository", "name": name, "actions": actions.split(',').collect::<Vec<_>>() }))
        .collect();
    let header = json!({ "typ": "JWT", "alg": "RS256", "x5c": [certificate] });
    let claims = json!({
        "iss": "ward-bench-test-issuer", "sub": USER, "aud": "ward-bench-test", "exp": now + 300, "nbf": now - 10,
        "iat": now, "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
        Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let signature = openssl.wait_with_output().unwrap();
    assert!(signature.status.success());
    format!(
        "{signing_input}.{}",
        Base64UrlUnpadded::encode_string(&signature.stdout)
    )
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
