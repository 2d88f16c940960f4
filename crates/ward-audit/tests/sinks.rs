#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sinks against real receivers on 127.0.0.1: files, a UDP socket, a TCP listener and an
//! HTTP server, including receivers that are down for a while and a sink restart.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{MemoryStore, within};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::sync::watch;
use ward_audit::checkpoint::CheckpointSigner;
use ward_audit::config::{
    AlertsConfig, DeliveryConfig, Secret, SinkConfig, SinkTarget, SyslogTransport,
};
use ward_audit::export::{self, ImportLimits};
use ward_audit::sink::{self, FileSink, Sink, SinkMonitor, SyslogSink, WebhookSink};
use ward_audit::{Audit, AuditConfig, AuditEvent, AuditLog, EventType, LogConfig, RuleConfig};

const SECRET: &str = "webhook-test-secret";

fn quick() -> DeliveryConfig {
    DeliveryConfig {
        batch_events_max: 7,
        poll_interval_ms: 50,
        backoff_initial_ms: 5,
        backoff_max_ms: 40,
    }
}

async fn record_range(log: &AuditLog, range: std::ops::Range<usize>) {
    for i in range {
        let event = match i % 3 {
            0 => AuditEvent::new(EventType::Push)
                .user("ci")
                .repository("lib/a")
                .tag(format!("v{i}")),
            1 => AuditEvent::new(EventType::Pull)
                .user("deploy")
                .repository("lib/a"),
            _ => AuditEvent::new(EventType::AuthorizationDenied)
                .user("eve")
                .reason("no push permission"),
        };
        log.record(event).await.unwrap();
    }
}

async fn caught_up(monitor: &SinkMonitor, n: u64) {
    within(
        "the sink to catch up",
        monitor.wait_until(|s| s.cursor == n),
    )
    .await;
}

/// The seq of a delivered JSON line.
fn seq_of(line: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
        .as_u64()
        .unwrap()
}

/// Every item arrived, in order; a repeated seq is always the identical item.
fn assert_complete_in_order(items: &[(u64, String)], n: u64) {
    let mut first_copy = std::collections::HashMap::new();
    let mut unique = Vec::new();
    for (seq, line) in items {
        match first_copy.get(seq) {
            Some(previous) => assert_eq!(
                previous, line,
                "seq {seq} delivered twice with different content"
            ),
            None => {
                first_copy.insert(*seq, line.clone());
                unique.push(*seq);
            }
        }
    }
    assert_eq!(
        unique,
        (0..n).collect::<Vec<u64>>(),
        "every event exactly in order"
    );
}

/// A port with nothing listening (yet).
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

// ---------------------------------------------------------------- file

fn read_rotated(path: &Path, kept: usize) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut files = 0;
    let mut names: Vec<PathBuf> = (1..=kept)
        .rev()
        .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
        .collect();
    names.push(path.to_owned());
    for name in names {
        let Ok(text) = std::fs::read_to_string(&name) else {
            continue;
        };
        files += 1;
        lines.extend(text.lines().map(str::to_owned));
    }
    (lines, files)
}

#[tokio::test]
async fn the_file_sink_rotates_by_size_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let sink = Sink::File(FileSink::new(path.clone(), 2000, 100));
    let (monitor, _task) = sink::spawn_sink(
        store.clone(),
        "archive",
        sink,
        quick(),
        Some(log.subscribe()),
    );
    record_range(&log, 0..60).await;
    caught_up(&monitor, 60).await;

    let (lines, files) = read_rotated(&path, 100);
    assert!(files > 3, "expected several rotated files, got {files}");
    let items: Vec<(u64, String)> = lines.iter().map(|l| (seq_of(l), l.clone())).collect();
    assert_complete_in_order(&items, 60);
    for n in 1..files {
        let size = std::fs::metadata(format!("{}.{n}", path.display()))
            .unwrap()
            .len();
        assert!(size <= 2000, "rotated file {n} is {size} bytes");
    }
    assert_eq!(store.state.lock().unwrap().cursors["archive"], 60);
    let status = monitor.snapshot();
    assert_eq!(
        (
            status.kind.as_str(),
            status.lag_events,
            status.delivered_total
        ),
        ("file", 0, 60)
    );
}

#[tokio::test]
async fn the_file_sink_keeps_only_files_kept_max_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let sink = Sink::File(FileSink::new(path.clone(), 1000, 2));
    let (monitor, _task) = sink::spawn_sink(
        store.clone(),
        "archive",
        sink,
        quick(),
        Some(log.subscribe()),
    );
    record_range(&log, 0..60).await;
    caught_up(&monitor, 60).await;
    let (lines, files) = read_rotated(&path, 10);
    assert_eq!(files, 3, "the active file and two rotated ones");
    let seqs: Vec<u64> = lines.iter().map(|l| seq_of(l)).collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..60).collect::<Vec<u64>>(),
        "the newest events, contiguous"
    );
}

#[tokio::test]
async fn the_file_sink_ends_a_line_torn_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "{\"type\":\"event\",\"seq\":0,\"tor").unwrap();
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let sink = Sink::File(FileSink::new(path.clone(), 1 << 20, 2));
    let (monitor, _task) = sink::spawn_sink(
        store.clone(),
        "archive",
        sink,
        quick(),
        Some(log.subscribe()),
    );
    record_range(&log, 0..3).await;
    caught_up(&monitor, 3).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].ends_with("tor"));
    assert_eq!(
        lines[1..].iter().map(|l| seq_of(l)).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

// ---------------------------------------------------------------- syslog

fn syslog_fields() -> ward_audit::sink::SyslogFields {
    ward_audit::sink::SyslogFields {
        facility: 13,
        app_name: "ward".into(),
        hostname: Some("registry".into()),
        sd_id: "ward@32473".into(),
        message_bytes_max: 8192,
    }
}

/// Checks one RFC 5424 message and returns its seq and JSON part.
fn parse_syslog(message: &str) -> (u64, String) {
    let (header, json) = message
        .split_once('\u{feff}')
        .expect("a BOM before the message");
    let mut fields = header.splitn(7, ' ');
    let pri = fields.next().unwrap();
    assert!(pri.starts_with('<') && pri.ends_with(">1"), "{pri}");
    let pri: u16 = pri[1..pri.len() - 2].parse().unwrap();
    assert_eq!(pri / 8, 13, "facility");
    let timestamp = fields.next().unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.len() == 27,
        "{timestamp}"
    );
    assert_eq!(fields.next(), Some("registry"));
    assert_eq!(fields.next(), Some("ward"));
    let _procid = fields.next().unwrap();
    let msgid = fields.next().unwrap();
    let sd = fields.next().unwrap().trim_end();
    let seq: u64 = sd
        .strip_prefix("[ward@32473 seq=\"")
        .and_then(|s| s.strip_suffix("\"]"))
        .unwrap_or_else(|| panic!("structured data {sd}"))
        .parse()
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(event["seq"], seq);
    assert_eq!(event["event"]["event_type"], msgid);
    let severity = pri % 8;
    let expected = match event["event"]["outcome"].as_str().unwrap() {
        "success" => 6,
        "failure" => 5,
        _ => 4,
    };
    assert_eq!(severity, expected);
    (seq, json.to_owned())
}

#[tokio::test]
async fn syslog_over_udp_delivers_rfc5424_messages_to_a_real_socket() {
    let receiver = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = receiver.local_addr().unwrap().to_string();
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let sink =
        Sink::Syslog(SyslogSink::new(address, SyslogTransport::Udp, syslog_fields()).unwrap());
    let (_monitor, _task) = sink::spawn_sink(
        store.clone(),
        "syslog",
        sink,
        quick(),
        Some(log.subscribe()),
    );
    record_range(&log, 0..20).await;
    let mut items = Vec::new();
    let mut buffer = vec![0u8; 65536];
    while items.len() < 20 {
        let n = within("a datagram", receiver.recv(&mut buffer))
            .await
            .unwrap();
        items.push(parse_syslog(std::str::from_utf8(&buffer[..n]).unwrap()));
    }
    assert_complete_in_order(&items, 20);
}

/// Accepts connections on `listener` and publishes every octet-counted frame's seq and JSON.
fn tcp_receiver(listener: tokio::net::TcpListener, frames: watch::Sender<Vec<(u64, String)>>) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let frames = frames.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = Vec::new();
                    if reader.read_until(b' ', &mut length).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let length: usize = std::str::from_utf8(&length[..length.len() - 1])
                        .unwrap()
                        .parse()
                        .unwrap();
                    let mut message = vec![0u8; length];
                    reader.read_exact(&mut message).await.unwrap();
                    let parsed = parse_syslog(std::str::from_utf8(&message).unwrap());
                    frames.send_modify(|f| f.push(parsed));
                }
            });
        }
    });
}

#[tokio::test]
async fn syslog_over_tcp_waits_out_a_collector_outage() {
    let address = free_port();
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let sink = Sink::Syslog(
        SyslogSink::new(address.to_string(), SyslogTransport::Tcp, syslog_fields()).unwrap(),
    );
    let (monitor, _task) = sink::spawn_sink(
        store.clone(),
        "syslog",
        sink,
        quick(),
        Some(log.subscribe()),
    );
    record_range(&log, 0..30).await;
    let down = within(
        "the outage to show",
        monitor.wait_until(|s| s.failures_total >= 2 && s.lag_events == 30),
    )
    .await;
    assert!(
        down.last_error.unwrap().contains("connecting to"),
        "the outage is visible"
    );
    assert_eq!(down.cursor, 0);

    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let (frames_tx, mut frames) = watch::channel(Vec::new());
    tcp_receiver(listener, frames_tx);
    record_range(&log, 30..40).await;
    let items = within("all frames", frames.wait_for(|f| f.len() >= 40))
        .await
        .unwrap()
        .clone();
    assert_complete_in_order(&items, 40);
    caught_up(&monitor, 40).await;
    assert_eq!(monitor.snapshot().last_error, None);
}

// ---------------------------------------------------------------- webhook

#[derive(Clone)]
struct Receiver {
    items: watch::Sender<Vec<(u64, String)>>,
    /// Requests still to refuse with 503.
    refuse: Arc<AtomicU32>,
    bad_signatures: Arc<AtomicU32>,
}

#[derive(serde::Deserialize)]
struct Body<'a> {
    origin: String,
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
}

async fn ingest(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get(sink::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !sink::verify_signature(SECRET.as_bytes(), &body, signature) {
        receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if receiver.refuse.load(Ordering::SeqCst) > 0 {
        receiver.refuse.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let body: Body<'_> = serde_json::from_slice(&body).unwrap();
    assert_eq!(body.origin, "ward.test/audit");
    let items: Vec<(u64, String)> = body
        .items
        .iter()
        .map(|raw| (seq_of(raw.get()), raw.get().to_owned()))
        .collect();
    let first: u64 = headers["X-Ward-First-Seq"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let last: u64 = headers["X-Ward-Last-Seq"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!((first, last), (items[0].0, items[items.len() - 1].0));
    receiver.items.send_modify(|all| all.extend(items));
    StatusCode::OK
}

async fn start_receiver(
    address: SocketAddr,
    refuse: u32,
) -> (Receiver, watch::Receiver<Vec<(u64, String)>>) {
    let (items, watcher) = watch::channel(Vec::new());
    let receiver = Receiver {
        items,
        refuse: Arc::new(AtomicU32::new(refuse)),
        bad_signatures: Arc::new(AtomicU32::new(0)),
    };
    let app = axum::Router::new()
        .route("/ingest", axum::routing::post(ingest))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, watcher)
}

fn webhook(address: SocketAddr) -> Sink {
    let url = format!("http://{address}/ingest");
    Sink::Webhook(WebhookSink::new(&url, Secret::new(SECRET), "ward.test/audit", 5000).unwrap())
}

#[tokio::test]
async fn the_webhook_survives_an_outage_refusals_and_a_restart_without_losing_an_event() {
    let address = free_port();
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    let (monitor, task) = sink::spawn_sink(
        store.clone(),
        "siem",
        webhook(address),
        quick(),
        Some(log.subscribe()),
    );
    record_range(&log, 0..25).await;
    let down = within(
        "failed attempts",
        monitor.wait_until(|s| s.failures_total >= 3),
    )
    .await;
    assert!(down.last_error.unwrap().contains("webhook request failed"));

    // The receiver comes up, but refuses its first two requests.
    let (receiver, mut items) = start_receiver(address, 2).await;
    within("some deliveries", items.wait_for(|i| i.len() >= 14))
        .await
        .unwrap();

    // The server restarts: the old delivery task dies, a new one resumes from the cursor.
    task.abort();
    let _ = task.await;
    let (monitor, _task) = sink::spawn_sink(
        store.clone(),
        "siem",
        webhook(address),
        quick(),
        Some(log.subscribe()),
    );
    record_range(&log, 25..50).await;
    caught_up(&monitor, 50).await;

    let delivered = items.borrow().clone();
    assert_complete_in_order(&delivered, 50);
    assert_eq!(
        receiver.refuse.load(Ordering::SeqCst),
        0,
        "the refusals were retried"
    );
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    assert_eq!(monitor.snapshot().lag_events, 0);

    // The SIEM's copy is itself a verifiable log.
    let mut unique: Vec<String> = Vec::new();
    for (seq, line) in delivered {
        if seq as usize == unique.len() {
            unique.push(line);
        }
    }
    let mut checkpointer = ward_audit::Checkpointer::resume(store.clone(), signer())
        .await
        .unwrap();
    let cp = checkpointer.checkpoint_now().await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("siem-copy.jsonl");
    let mut text = export::checkpoint_line(cp.tree_size, &cp.note) + "\n";
    for line in unique {
        text += &line;
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let report =
        export::verify_file(&path, &[signer().verifier()], ImportLimits::default()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.events, report.unprotected_tail), (50, 0));
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed("ward.test/audit", &[3; 32]).unwrap()
}

// ---------------------------------------------------------------- runner edge cases

#[tokio::test]
async fn a_store_outage_delays_delivery_and_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    record_range(&log, 0..5).await;
    store.fail_reads.store(true, Ordering::SeqCst);
    let sink = Sink::File(FileSink::new(path.clone(), 1 << 20, 2));
    let (monitor, _task) = sink::spawn_sink(
        store.clone(),
        "archive",
        sink,
        quick(),
        Some(log.subscribe()),
    );
    let failing = within(
        "store failures",
        monitor.wait_until(|s| s.failures_total >= 2),
    )
    .await;
    assert!(failing.last_error.unwrap().contains("audit store"));
    store.fail_reads.store(false, Ordering::SeqCst);
    caught_up(&monitor, 5).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 5);
}

#[tokio::test]
async fn a_sink_delivers_only_what_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = MemoryStore::new();
    store.append_unflushed(5).await;
    store.fail_syncs.store(true, Ordering::SeqCst);
    let sink = Sink::File(FileSink::new(path.clone(), 1 << 20, 2));
    let (monitor, _task) = sink::spawn_sink(store.clone(), "archive", sink, quick(), None);
    let failing = within(
        "flush failures",
        monitor.wait_until(|s| s.failures_total >= 2),
    )
    .await;
    assert!(failing.last_error.unwrap().contains("fsync failed"));
    let delivered = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(delivered, "", "nothing leaves before it is durable");

    store.fail_syncs.store(false, Ordering::SeqCst);
    caught_up(&monitor, 5).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 5);
    assert_eq!(store.durable(), 5);
}

#[tokio::test]
async fn events_missing_from_the_store_are_reported_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = MemoryStore::new();
    let (log, _writer) = AuditLog::start(store.clone(), LogConfig::default())
        .await
        .unwrap();
    record_range(&log, 0..5).await;
    store.tamper(|records| {
        records.remove(2);
    });
    let sink = Sink::File(FileSink::new(path.clone(), 1 << 20, 2));
    let (monitor, _task) = sink::spawn_sink(
        store.clone(),
        "archive",
        sink,
        quick(),
        Some(log.subscribe()),
    );
    caught_up(&monitor, 5).await;
    let status = monitor.snapshot();
    assert_eq!(status.gaps_total, 1);
    assert!(status.gap_warning.unwrap().contains("ward audit verify"));
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
}

// ---------------------------------------------------------------- alerts and the whole subsystem

fn file_sink(name: &str, path: &Path) -> SinkConfig {
    SinkConfig {
        name: name.into(),
        target: SinkTarget::File {
            path: path.to_owned(),
            file_bytes_max: 1 << 20,
            files_kept_max: 2,
        },
        delivery: quick(),
    }
}

#[tokio::test]
async fn audit_start_runs_sinks_alerts_and_checkpoints_together() {
    let dir = tempfile::tempdir().unwrap();
    let events_path = dir.path().join("events.jsonl");
    let alerts_path = dir.path().join("alerts.jsonl");
    let mut rules = RuleConfig::defaults();
    rules.push(RuleConfig::ProductionPull {
        environment: "production".into(),
        allowed_principals: vec!["deploy-bot".into()],
        severity: ward_audit::Severity::Critical,
    });
    let config = AuditConfig {
        origin: "ward.test/audit".into(),
        checkpoint_interval_secs: 1,
        sinks: vec![file_sink("archive", &events_path)],
        alerts: AlertsConfig {
            rules,
            sinks: vec![file_sink("security", &alerts_path)],
        },
        ..AuditConfig::default()
    };
    let store = MemoryStore::new();
    let audit = Audit::start(store.clone(), &config, signer())
        .await
        .unwrap();
    let log = audit.log();
    let ip = "198.51.100.9".parse().unwrap();
    let events = vec![
        AuditEvent::new(EventType::Push)
            .user("ci")
            .repository("prod/api")
            .tag("1.0"),
        AuditEvent::new(EventType::Delete)
            .user("mallory")
            .repository("prod/api")
            .digest("sha256:aa"),
        AuditEvent::new(EventType::AuthFailure).user("root").ip(ip),
        AuditEvent::new(EventType::AuthFailure).user("root").ip(ip),
        AuditEvent::new(EventType::AuthFailure).user("admin").ip(ip),
        AuditEvent::new(EventType::AuthFailure).user("admin").ip(ip),
        AuditEvent::new(EventType::AuthFailure).user("admin").ip(ip),
        AuditEvent::new(EventType::PolicyChanged)
            .user("admin")
            .target("prod-push")
            .action("update"),
        AuditEvent::new(EventType::Pull)
            .user("deploy-bot")
            .repository("prod/api")
            .environment("production"),
        AuditEvent::new(EventType::Pull)
            .user("intern")
            .repository("prod/api")
            .environment("production"),
    ];
    for event in events {
        log.record(event).await.unwrap();
    }
    for monitor in audit.sink_monitors() {
        caught_up(monitor, 10).await;
    }
    let mut checkpoints = audit.checkpoints();
    within(
        "a checkpoint of all events",
        checkpoints.wait_for(|s| s.tree_size == 10),
    )
    .await
    .unwrap();

    assert_eq!(
        std::fs::read_to_string(&events_path)
            .unwrap()
            .lines()
            .count(),
        10
    );
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(&alerts_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fired: Vec<(String, u64)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_owned(),
                a["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fired,
        vec![
            ("delete".to_owned(), 1),
            ("auth_failures".to_owned(), 6),
            ("policy_change".to_owned(), 7),
            ("production_pull".to_owned(), 9),
        ]
    );
    assert_eq!(alerts[3]["severity"], "critical");
    assert_eq!(alerts[3]["event"]["user"], "intern");

    let status = audit.status();
    assert_eq!(status.log.events_recorded_total, 10);
    assert_eq!(status.checkpoints.tree_size, 10);
    assert!(
        status
            .sinks
            .iter()
            .all(|s| s.lag_events == 0 && s.last_error.is_none()),
        "{status:?}"
    );
    assert_eq!(status.sinks[1].name, "alert:security");
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["sinks"][0]["cursor"], 10);

    let report = ward_audit::verify::verify_store(
        &*store,
        &[signer().verifier()],
        Some("ward.test/audit"),
        Default::default(),
    )
    .await
    .unwrap();
    assert!(
        report.is_intact() && report.unprotected_tail == 0,
        "{report}"
    );
}

#[tokio::test]
async fn audit_start_refuses_inconsistent_configuration() {
    let store = MemoryStore::new();
    let wrong_origin = AuditConfig {
        origin: "other/log".into(),
        ..AuditConfig::default()
    };
    let error = Audit::start(store.clone(), &wrong_origin, signer())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("audit.origin"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let duplicate = AuditConfig {
        origin: "ward.test/audit".into(),
        sinks: vec![
            file_sink("a", &dir.path().join("1")),
            file_sink("a", &dir.path().join("2")),
        ],
        ..AuditConfig::default()
    };
    let error = Audit::start(store, &duplicate, signer()).await.unwrap_err();
    assert!(error.to_string().contains("unique"), "{error}");
}
