//! The serve loop: TLS, bounded request heads, graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::{Backend, TestRegistry};
use reqwest::StatusCode;
use ward_core::Digest;
use ward_server::config::TlsConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (ca, ca_key, csr, cert, key) = (
        p("ca.pem"),
        p("ca.key"),
        p("leaf.csr"),
        p("cert.pem"),
        p("key.pem"),
    );
    let ext = p("leaf.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=ward test CA",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
        ],
        vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl is needed by this test; ./scripts/test installs it");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (cert, key) = (
        std::path::PathBuf::from(cert),
        std::path::PathBuf::from(key),
    );
    let reg = TestRegistry::start_with(Backend::Sqlite, |c| {
        c.tls = Some(TlsConfig {
            cert_path: cert.clone(),
            key_path: key.clone(),
        });
    })
    .await;
    let addr = reg.running.as_ref().unwrap().local_addr;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap()])
        .build()
        .unwrap();
    let r = client
        .get(format!("https://{addr}/v2/"))
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert!(reqwest::get(format!("http://{addr}/v2/")).await.is_err());
    reg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_are_refused() {
    let reg = TestRegistry::start_with(Backend::Sqlite, |c| {
        c.limits.request_header_bytes_max = 16 * 1024
    })
    .await;
    let addr = reg.running.as_ref().unwrap().local_addr;
    let big = "x".repeat(32 * 1024);
    // The server answers 431 and closes while the client may still be writing
    // the rest of the head; the kernel can then reset the connection before the
    // answer is read. So try a few times: a server without the limit never
    // answers 431 at all.
    let mut response = String::new();
    for _ in 0..10 {
        let big = big.clone();
        response = tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = write!(
                s,
                "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nX-Big: {big}\r\n\r\n"
            );
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        })
        .await
        .unwrap();
        if !response.is_empty() {
            break;
        }
    }
    assert!(response.starts_with("HTTP/1.1 431"), "{response:.60}");
    // Normal requests still pass.
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::OK);
    reg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_upload_in_flight_finish() {
    let reg = TestRegistry::start(Backend::Sqlite).await;
    let data: Vec<u8> = (0..8_000_000u32).map(|i| (i % 199) as u8).collect();
    let digest = Digest::of(&data);
    let r = reg
        .client
        .post(reg.url("/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = reg.location(&r);
    // The body arrives in pieces; the server is asked to stop after the first.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let put = tokio::spawn(
        reg.client
            .put(format!("{location}?digest={digest}"))
            .body(body)
            .send(),
    );
    tx.send(Ok(data[..4_000_000].to_vec())).await.unwrap();
    // Stop only once the server is demonstrably inside the request: its
    // upload has started writing into the session folder.
    let session = reg
        .config
        .storage_path()
        .join("uploads")
        .join(location.rsplit('/').next().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&session).map_or(0, |d| d.count()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never reached the server"
        );
        tokio::task::yield_now().await;
    }
    let mut reg = reg;
    let stopping = tokio::spawn(reg.running.take().unwrap().stop());
    tx.send(Ok(data[4_000_000..].to_vec())).await.unwrap();
    drop(tx);
    let response = put.await.unwrap().unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "the in-flight upload completed"
    );
    stopping.await.unwrap();
    // New connections are refused once stopped; the blob is intact after a restart.
    assert!(reg.client.get(reg.url("/v2/")).send().await.is_err());
    let mut config = reg.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let reg = TestRegistry::start_config(reg.dir, config).await;
    let got = reg
        .get(&format!("/v2/app/blobs/{digest}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got, data);
    reg.stop().await;
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditing_can_be_switched_off_for_measurement_and_says_so() {
    let reg = TestRegistry::start_with(Backend::Sqlite, |c| c.audit.enabled = false).await;
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::OK);
    reg.push_image("app", "v1", b"layer").await;
    let status: serde_json::Value = reg.get("/api/v1/audit/status").await.json().await.unwrap();
    assert_eq!(
        status["status"]["log"]["events_recorded_total"], 0,
        "{status}"
    );
    let ready: serde_json::Value = reg.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["audit"]["enabled"], false, "{ready}");
    reg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_per_sqlite_database() {
    let reg = TestRegistry::start(Backend::Sqlite).await;
    let mut second = reg.config.clone();
    second.listen = "127.0.0.1:0".parse().unwrap();
    let refused = match ward_server::start(second.clone()).await {
        Ok(running) => {
            running.stop().await;
            panic!("a second server started on the same SQLite database");
        }
        Err(e) => e.to_string(),
    };
    assert!(
        refused.contains("another ward serve is using the database"),
        "{refused}"
    );
    assert!(refused.contains("use PostgreSQL"), "{refused}");
    // Nor through a symbolic link to the database file.
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("linked.db");
    let database = reg.dir.path().join("ward.db");
    assert_eq!(
        reg.config.database_url(),
        ward_store::testing::sqlite_url(reg.dir.path())
    );
    assert!(database.is_file());
    std::os::unix::fs::symlink(&database, &link).unwrap();
    let mut linked = second.clone();
    linked.database_url = format!("sqlite://{}", link.display());
    match ward_server::start(linked).await {
        Ok(running) => {
            running.stop().await;
            panic!("a second server started on the same database through a link");
        }
        Err(e) => assert!(
            e.to_string()
                .contains("another ward serve is using the database"),
            "{e}"
        ),
    }
    // The lock goes with the server that held it (the data stays).
    let mut reg = reg;
    reg.running.take().unwrap().stop().await;
    let running = ward_server::start(second).await.unwrap();
    running.stop().await;
    reg.stop().await;
}

/// A database named through a link that points to nothing yet: the first
/// server creates it through the link, and a second one naming the file
/// itself must still find it taken.
#[tokio::test]
async fn one_server_per_sqlite_database_created_through_a_link() {
    let real = tempfile::tempdir().unwrap();
    let links = tempfile::tempdir().unwrap();
    let database = real.path().join("ward.db");
    std::os::unix::fs::symlink(&database, links.path().join("linked.db")).unwrap();
    assert!(!database.exists());
    let reg = TestRegistry::start_with(Backend::Sqlite, |config| {
        config.database_url = format!("sqlite://{}", links.path().join("linked.db").display());
    })
    .await;
    assert!(database.is_file(), "created through the link");
    let mut direct = reg.config.clone();
    direct.listen = "127.0.0.1:0".parse().unwrap();
    direct.database_url = format!("sqlite://{}", database.display());
    match ward_server::start(direct).await {
        Ok(running) => {
            running.stop().await;
            panic!("a second server started on a database created through a link");
        }
        Err(e) => assert!(
            e.to_string()
                .contains("another ward serve is using the database"),
            "{e}"
        ),
    }
    reg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_audit_flush_fails_what_must_be_recorded_and_readiness() {
    let reg = TestRegistry::start(Backend::Sqlite).await;
    reg.push_image("app", "v1", b"layer").await;
    let manifest = "/v2/app/manifests/v1";
    assert_eq!(reg.get(manifest).await.status(), StatusCode::OK);

    // The write-ahead log's name now loops: SQLite keeps writing through the
    // file it has open, but the audit flush cannot open it, as after a disk error.
    let wal = reg.dir.path().join("ward.db-wal");
    assert!(wal.exists(), "the database is in WAL mode");
    std::fs::remove_file(&wal).unwrap();
    std::os::unix::fs::symlink("ward.db-wal", &wal).unwrap();

    let refused = reg.get(manifest).await;
    assert_eq!(refused.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let ready = reg.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let reason = ready.text().await.unwrap();
    assert!(reason.contains("audit log cannot record"), "{reason}");
    let metrics = reg.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("ward_audit_broken 1"), "{metrics}");

    // A flush that works again does not make the lost one durable: still refused.
    std::fs::remove_file(&wal).unwrap();
    assert_eq!(
        reg.get(manifest).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    reg.stop().await;
}
