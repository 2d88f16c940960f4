//! [`Audit`]: the whole subsystem started in one call — log, checkpointer, sinks, alerts.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::checkpoint::CheckpointSigner;
use crate::checkpointer::{CheckpointStatus, Checkpointer, CheckpointerError};
use crate::config::AuditConfig;
use crate::log::{AuditError, AuditLog, LogStats};
use crate::sink::{Sink, SinkError, SinkMonitor, SinkStatus, spawn_alert_sink, spawn_sink};
use crate::store::AuditStore;

/// Why the audit subsystem did not start. The server must not serve without it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("audit configuration: {0}")]
    Config(String),
    /// The log could not start.
    #[error(transparent)]
    Log(#[from] AuditError),
    /// The checkpointer could not resume.
    #[error(transparent)]
    Checkpointer(#[from] CheckpointerError),
    /// A sink could not be built.
    #[error("audit sink {name}: {error}")]
    Sink {
        /// The sink's name.
        name: String,
        /// Why.
        error: SinkError,
    },
}

/// Everything `/metrics` and the health output need to know about auditing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditStatus {
    /// The write path.
    pub log: LogStats,
    /// Signed checkpoints.
    pub checkpoints: CheckpointStatus,
    /// Event and alert sinks.
    pub sinks: Vec<SinkStatus>,
}

/// The running audit subsystem. Dropping it stops the checkpointer and the sinks;
/// the log's writer stops when the last [`AuditLog`] clone is dropped.
pub struct Audit {
    log: AuditLog,
    checkpoints: watch::Receiver<CheckpointStatus>,
    sinks: Vec<SinkMonitor>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("status", &self.status())
            .finish()
    }
}

impl Audit {
    /// Starts the log, the checkpointer (signing with `signer`, whose name must be
    /// `config.origin`), every event sink and every alert sink.
    pub async fn start<S: AuditStore>(
        store: Arc<S>,
        config: &AuditConfig,
        signer: CheckpointSigner,
    ) -> Result<Audit, StartError> {
        check_config(config, &signer)?;
        let (log, _writer) = AuditLog::start(store.clone(), config.log).await?;
        let checkpointer = Checkpointer::resume(store.clone(), signer).await?;
        let checkpoints = checkpointer.status();
        let interval = Duration::from_secs(config.checkpoint_interval_secs.max(1));
        let mut tasks = vec![checkpointer.spawn(interval)];
        let mut sinks = Vec::new();
        let build = |c: &crate::config::SinkConfig| {
            Sink::from_config(c, &config.origin).map_err(|error| StartError::Sink {
                name: c.name.clone(),
                error,
            })
        };
        for sink_config in &config.sinks {
            let sink = build(sink_config)?;
            let wake = Some(log.subscribe());
            let (monitor, task) = spawn_sink(
                store.clone(),
                &sink_config.name,
                sink,
                sink_config.delivery,
                wake,
            );
            sinks.push(monitor);
            tasks.push(task);
        }
        for sink_config in &config.alerts.sinks {
            let sink = build(sink_config)?;
            let rules = config.alerts.rules.clone();
            let wake = Some(log.subscribe());
            let (monitor, task) = spawn_alert_sink(
                store.clone(),
                &sink_config.name,
                sink,
                rules,
                sink_config.delivery,
                wake,
            );
            sinks.push(monitor);
            tasks.push(task);
        }
        Ok(Audit {
            log,
            checkpoints,
            sinks,
            tasks,
        })
    }

    /// The handle to record through (clone it into request handlers).
    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// A snapshot of every part's state.
    pub fn status(&self) -> AuditStatus {
        AuditStatus {
            log: self.log.stats(),
            checkpoints: self.checkpoints.borrow().clone(),
            sinks: self.sinks.iter().map(SinkMonitor::snapshot).collect(),
        }
    }

    /// A live view of the checkpointer's status.
    pub fn checkpoints(&self) -> watch::Receiver<CheckpointStatus> {
        self.checkpoints.clone()
    }

    /// Live views of the sinks, in configuration order (event sinks, then alert sinks).
    pub fn sink_monitors(&self) -> &[SinkMonitor] {
        &self.sinks
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn check_config(config: &AuditConfig, signer: &CheckpointSigner) -> Result<(), StartError> {
    if signer.origin() != config.origin {
        return Err(StartError::Config(format!(
            "checkpoint key is named {:?} but audit.origin is {:?}",
            signer.origin(),
            config.origin
        )));
    }
    for list in [&config.sinks, &config.alerts.sinks] {
        let mut names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(StartError::Config(format!(
                "two sinks are named {:?}; names must be unique (they name the delivery cursors)",
                pair[0]
            )));
        }
        if let Some(empty) = list.iter().find(|s| s.name.trim().is_empty()) {
            return Err(StartError::Config(format!(
                "a {:?} sink has an empty name",
                empty.target
            )));
        }
    }
    Ok(())
}
