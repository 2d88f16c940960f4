//! `ward audit`: verify, query and export the audit log.
//!
//! `ward audit verify --file <export.jsonl> --key <checkpoint-pub.pem>` checks an export
//! offline. Exit codes: 0 intact (a warning names events not yet covered by a signed
//! checkpoint), 1 tampered (the first bad event and every bad checkpoint are named),
//! 2 the check could not be run. `--server` forms fetch the export from a running
//! registry's audit API (signed in as a user allowed `admin:ReadAudit`) and check it
//! the same way, against keys the auditor pinned, never the server's word.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ward_audit::checkpoint::CheckpointVerifier;
use ward_audit::export::{self, ImportLimits};

use crate::cmd::common::RegistryArgs;

/// Arguments of `ward audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check that the log is complete and unaltered: an export file offline, or a server.
    Verify(VerifyArgs),
    /// List events of a running server, filtered.
    Query(QueryArgs),
    /// Write a running server's log as JSON lines, for `verify --file` or a SIEM.
    Export(ExportArgs),
    /// Print a server's checkpoint public key (pin it once, then verify against it).
    Key(KeyArgs),
}

#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// The registry, host[:port] or URL.
    #[arg(long, env = "WARD_SERVER")]
    server: String,
    #[command(flatten)]
    auth: RegistryArgs,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// An export file (JSON lines) to verify offline.
    #[arg(long, required_unless_present = "server")]
    file: Option<PathBuf>,
    /// A trusted checkpoint key: a PEM public key file or a signed-note verifier key. Repeatable.
    #[arg(long = "key", required = true)]
    keys: Vec<String>,
    /// Verify a running server's log instead of a file (host[:port] or URL).
    #[arg(long, conflicts_with = "file")]
    server: Option<String>,
    #[command(flatten)]
    auth: RegistryArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct QueryArgs {
    /// The server.
    #[arg(long, env = "WARD_SERVER")]
    server: Option<String>,
    /// Only this principal.
    #[arg(long)]
    user: Option<String>,
    /// Only this repository.
    #[arg(long)]
    repository: Option<String>,
    /// Only this action (push, pull, delete, login, …).
    #[arg(long)]
    action: Option<String>,
    /// Only this outcome (success, failure, denied).
    #[arg(long)]
    outcome: Option<String>,
    /// At or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    auth: RegistryArgs,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The server.
    #[arg(long, env = "WARD_SERVER")]
    server: Option<String>,
    /// Where to write the export (standard output if absent).
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    auth: RegistryArgs,
}

/// Runs `ward audit`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify(verify) => match (verify.file, verify.server) {
            (Some(file), _) => verify_file(file, &verify.keys, verify.json).await,
            (None, Some(server)) => {
                let api = Api::new(&server, &verify.auth)?;
                let dir = tempfile_dir()?;
                let file = dir.join("export.jsonl");
                api.export_to(Some(&file)).await?;
                let code = verify_file(file, &verify.keys, verify.json).await;
                let _ = std::fs::remove_dir_all(&dir);
                code
            }
            (None, None) => anyhow::bail!("give --file <export.jsonl> or --server <registry>"),
        },
        Command::Query(q) => query(q).await,
        Command::Export(e) => {
            let server = e
                .server
                .context("give --server <registry> (or WARD_SERVER)")?;
            Api::new(&server, &e.auth)?
                .export_to(e.output.as_deref())
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(k) => {
            let status = Api::new(&k.server, &k.auth)?
                .get("/api/v1/audit/status", &[])
                .await?;
            print!(
                "{}",
                status["checkpoint_public_key"].as_str().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A private scratch folder for a downloaded export.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "ward-audit-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

struct Api {
    http: reqwest::Client,
    base: String,
    credentials: crate::client::Credentials,
}

impl Api {
    fn new(server: &str, auth: &RegistryArgs) -> anyhow::Result<Api> {
        let (base, host) = match server.split_once("://") {
            Some((_, rest)) => (
                server.trim_end_matches('/').to_owned(),
                rest.trim_end_matches('/').to_owned(),
            ),
            None => (auth.base_url(server), server.to_owned()),
        };
        let credentials = auth.credentials(&host)?.context(
            "no credentials: run `ward login` first, or pass --username with WARD_PASSWORD",
        )?;
        Ok(Api {
            http: crate::client::api_http()?,
            base,
            credentials,
        })
    }

    async fn send(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .basic_auth(&self.credentials.username, Some(&self.credentials.password))
            .send()
            .await
            .with_context(|| format!("GET {}{path}", self.base))?;
        if !response.status().is_success() {
            anyhow::bail!("{}", crate::client::describe(response).await);
        }
        Ok(response)
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<serde_json::Value> {
        Ok(self.send(path, query).await?.json().await?)
    }

    async fn export_to(&self, output: Option<&std::path::Path>) -> anyhow::Result<()> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut stream = self.send("/api/v1/audit/export", &[]).await?.bytes_stream();
        let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match output {
            Some(p) => Box::new(
                tokio::fs::File::create(p)
                    .await
                    .with_context(|| format!("creating {}", p.display()))?,
            ),
            None => Box::new(tokio::io::stdout()),
        };
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
        Ok(())
    }
}

async fn query(q: QueryArgs) -> anyhow::Result<ExitCode> {
    let server = q
        .server
        .clone()
        .context("give --server <registry> (or WARD_SERVER)")?;
    let api = Api::new(&server, &q.auth)?;
    let mut params: Vec<(&str, String)> = [
        ("user", q.user),
        ("repository", q.repository),
        ("action", q.action),
        ("outcome", q.outcome),
        ("since", q.since),
        ("until", q.until),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    loop {
        let page = api.get("/api/v1/audit", &params).await?;
        for e in page["events"].as_array().into_iter().flatten() {
            if q.json {
                println!("{e}");
            } else {
                let ev = &e["event"];
                let s = |k: &str| ev[k].as_str().unwrap_or("-").to_owned();
                println!(
                    "{:>6} {} {:<24} {:<9} user={} repo={} digest={} {}",
                    e["seq"],
                    s("timestamp"),
                    s("action"),
                    s("outcome"),
                    s("user"),
                    s("repository"),
                    s("digest"),
                    ev["reason"]
                        .as_str()
                        .map(|r| format!("reason={r:?}"))
                        .unwrap_or_default()
                );
            }
        }
        match page["next_after"].as_u64() {
            Some(next) => {
                params.retain(|(k, _)| *k != "after");
                params.push(("after", next.to_string()));
            }
            None => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify_file(file: PathBuf, keys: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let trusted = keys
        .iter()
        .map(|k| {
            CheckpointVerifier::from_argument(k).with_context(|| format!("reading trusted key {k}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = tokio::task::spawn_blocking(move || {
        export::verify_file(&file, &trusted, ImportLimits::default())
    })
    .await
    .context("verification task failed")??;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use clap::Parser as _;
    use ward_audit::checkpoint::{Checkpoint, CheckpointSigner};
    use ward_audit::export::Header;
    use ward_audit::{AuditEvent, AuditRecord, ChainHead, EventBatch, EventType};

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("ward-audit-cmd-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes an export of 6 events with a checkpoint at 4, and the public key.
    fn fixture(dir: &std::path::Path, tamper: bool) -> (PathBuf, PathBuf) {
        let signer = CheckpointSigner::from_seed("ward.test/audit", &[5; 32]).unwrap();
        let events = (0..6)
            .map(|i| AuditEvent::new(EventType::Pull).user(format!("u{i}")))
            .collect();
        let batch = EventBatch::new(events).unwrap();
        let mut records: Vec<AuditRecord> = batch
            .link(&ChainHead::EMPTY)
            .events
            .into_iter()
            .map(|l| l.record)
            .collect();
        let now = ward_audit::event::timestamp::now();
        let note = signer
            .sign(&Checkpoint::over("ward.test/audit", &records[..4], now))
            .unwrap();
        if tamper {
            records[2].event_json = records[2].event_json.replace("u2", "u9");
        }
        let header = Header {
            format: export::EXPORT_FORMAT.into(),
            version: export::EXPORT_VERSION,
            origin: "ward.test/audit".into(),
            exported_at: now,
            tree_size: 6,
        };
        let path = dir.join("export.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        export::write_export(&mut file, &header, &[(4, note)], &records).unwrap();
        let key = dir.join("checkpoint-pub.pem");
        std::fs::write(&key, signer.verifier().to_public_pem().unwrap()).unwrap();
        (path, key)
    }

    async fn run_with(argv: &[&str]) -> anyhow::Result<ExitCode> {
        let cli = Cli::try_parse_from(std::iter::once("audit").chain(argv.iter().copied()))?;
        run(cli.args).await
    }

    #[tokio::test]
    async fn verify_exit_codes() {
        let scratch = Scratch::new("exit");
        let (good, key) = fixture(&scratch.0, false);
        let (good, key) = (
            good.to_str().unwrap().to_owned(),
            key.to_str().unwrap().to_owned(),
        );
        let code = run_with(&["verify", "--file", &good, "--key", &key])
            .await
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let code = run_with(&["verify", "--file", &good, "--key", &key, "--json"])
            .await
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);

        let bad_dir = scratch.0.join("bad");
        std::fs::create_dir_all(&bad_dir).unwrap();
        let (bad, _) = fixture(&bad_dir, true);
        let code = run_with(&["verify", "--file", bad.to_str().unwrap(), "--key", &key])
            .await
            .unwrap();
        assert_eq!(code, ExitCode::from(1));

        let missing = scratch.0.join("missing.jsonl");
        assert!(
            run_with(&["verify", "--file", missing.to_str().unwrap(), "--key", &key])
                .await
                .is_err()
        );
        assert!(
            run_with(&["verify", "--file", &good, "--key", "/no/such.pem"])
                .await
                .is_err()
        );
        assert!(
            run_with(&["verify", "--file", &good]).await.is_err(),
            "--key is required"
        );
    }
}
