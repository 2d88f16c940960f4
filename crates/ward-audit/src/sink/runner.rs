//! The delivery loop of one sink: read after the durable cursor, deliver, advance.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Envelope, Sink};
use crate::alert::AlertEngine;
use crate::config::DeliveryConfig;
use crate::event::timestamp;
use crate::record::{AuditRecord, ChainHead};
use crate::store::{AuditStore, READ_RECORDS_MAX};

/// A sink's state, for `/metrics` and health output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkStatus {
    /// The sink's name (and cursor name).
    pub name: String,
    /// `file`, `stdout`, `syslog` or `webhook`.
    pub kind: String,
    /// `events` or `alerts`.
    pub feed: String,
    /// Next seq to deliver (everything below is delivered).
    pub cursor: u64,
    /// Size of the log when last looked at.
    pub head: u64,
    /// Events recorded but not yet delivered.
    pub lag_events: u64,
    /// Items delivered by this process.
    pub delivered_total: u64,
    /// Failed delivery attempts.
    pub failures_total: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// The last error, cleared by a success.
    pub last_error: Option<String>,
    /// When the last delivery succeeded.
    #[serde(default, with = "optional_time")]
    pub last_delivery_at: Option<OffsetDateTime>,
    /// Seqs missing from the store that the sink had to skip (tampering).
    pub gaps_total: u64,
    /// What the last gap was; kept until the process restarts, unlike `last_error`.
    pub gap_warning: Option<String>,
}

mod optional_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&crate::event::timestamp::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| crate::event::timestamp::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A live view of one sink's status.
#[derive(Debug, Clone)]
pub struct SinkMonitor(watch::Receiver<SinkStatus>);

impl SinkMonitor {
    /// The current status.
    pub fn snapshot(&self) -> SinkStatus {
        self.0.borrow().clone()
    }

    /// Waits until `condition` holds for the status (or the runner is gone).
    pub async fn wait_until(&self, condition: impl FnMut(&SinkStatus) -> bool) -> SinkStatus {
        let mut receiver = self.0.clone();
        match receiver.wait_for(condition).await {
            Ok(status) => status.clone(),
            Err(_) => self.snapshot(),
        }
    }
}

/// What the runner feeds the sink.
pub(crate) enum Feed {
    /// Every event.
    Events,
    /// Alerts computed over the events.
    Alerts(AlertEngine),
}

impl Feed {
    fn name(&self) -> &'static str {
        match self {
            Feed::Events => "events",
            Feed::Alerts(_) => "alerts",
        }
    }

    fn envelopes(&mut self, records: &[AuditRecord]) -> Vec<Envelope> {
        match self {
            Feed::Events => records.iter().map(Envelope::of_record).collect(),
            Feed::Alerts(engine) => records
                .iter()
                .filter_map(|r| r.event().ok().map(|e| (r, e)))
                .flat_map(|(r, e)| {
                    engine
                        .evaluate(r, &e)
                        .into_iter()
                        .map(|alert| Envelope::of_alert(&alert, r))
                        .collect::<Vec<_>>()
                })
                .collect(),
        }
    }
}

/// Starts delivering to `sink`: events if `alerts` is `None`, else the alerts its
/// engine raises. The cursor is `cursor_name` in the store. `wake` (the log's head)
/// makes delivery prompt; polling every `poll_interval_ms` catches events written by
/// other processes.
pub(crate) fn spawn_runner<S: AuditStore>(
    store: Arc<S>,
    cursor_name: String,
    sink: Sink,
    feed: Feed,
    delivery: DeliveryConfig,
    wake: Option<watch::Receiver<ChainHead>>,
) -> (SinkMonitor, JoinHandle<()>) {
    let status = SinkStatus {
        name: cursor_name.clone(),
        kind: sink.kind().into(),
        feed: feed.name().into(),
        ..SinkStatus::default()
    };
    let (status_tx, status_rx) = watch::channel(status);
    let runner = Runner {
        store,
        cursor_name,
        sink,
        feed,
        delivery,
        wake,
        status: status_tx,
    };
    (SinkMonitor(status_rx), tokio::spawn(runner.run()))
}

/// Starts delivering every event to `sink`, with cursor `name`.
pub fn spawn_sink<S: AuditStore>(
    store: Arc<S>,
    name: &str,
    sink: Sink,
    delivery: DeliveryConfig,
    wake: Option<watch::Receiver<ChainHead>>,
) -> (SinkMonitor, JoinHandle<()>) {
    spawn_runner(store, name.to_owned(), sink, Feed::Events, delivery, wake)
}

/// Starts delivering the alerts that `rules` raise over every event to `sink`, with
/// cursor `alert:<name>`.
pub fn spawn_alert_sink<S: AuditStore>(
    store: Arc<S>,
    name: &str,
    sink: Sink,
    rules: Vec<crate::alert::RuleConfig>,
    delivery: DeliveryConfig,
    wake: Option<watch::Receiver<ChainHead>>,
) -> (SinkMonitor, JoinHandle<()>) {
    let feed = Feed::Alerts(AlertEngine::new(rules));
    spawn_runner(store, format!("alert:{name}"), sink, feed, delivery, wake)
}

struct Runner<S> {
    store: Arc<S>,
    cursor_name: String,
    sink: Sink,
    feed: Feed,
    delivery: DeliveryConfig,
    wake: Option<watch::Receiver<ChainHead>>,
    status: watch::Sender<SinkStatus>,
}

impl<S: AuditStore> Runner<S> {
    async fn run(mut self) {
        let mut cursor = self
            .with_retry(|store, name| async move { store.cursor(&name).await })
            .await;
        self.status.send_modify(|s| s.cursor = cursor);
        loop {
            let limit = self.delivery.batch_events_max.clamp(1, READ_RECORDS_MAX);
            let records = self
                .with_retry(|store, _| async move { store.read(cursor, limit).await })
                .await;
            let Some(last) = records.last() else {
                self.refresh_head(cursor).await;
                self.idle().await;
                continue;
            };
            let next = last.seq + 1;
            // What leaves the store must be durable: a sink never delivers an event
            // that a power cut could take back and a later event reuse the seq of.
            self.with_retry(|store, _| async move { store.sync().await })
                .await;
            self.refresh_head(cursor).await;
            self.note_gap(cursor, &records);
            let envelopes = self.feed.envelopes(&records);
            self.deliver(&envelopes, cursor).await;
            self.with_retry(|store, name| async move { store.set_cursor(&name, next).await })
                .await;
            cursor = next;
            let delivered = envelopes.len() as u64;
            self.status.send_modify(|s| {
                s.cursor = next;
                s.delivered_total += delivered;
                s.head = s.head.max(next);
                s.lag_events = s.head.saturating_sub(next);
            });
        }
    }

    /// Delivers until it succeeds, backing off between attempts.
    async fn deliver(&mut self, envelopes: &[Envelope], cursor: u64) {
        if envelopes.is_empty() {
            return;
        }
        let mut backoff = Backoff::new(&self.delivery);
        loop {
            match self.sink.deliver(envelopes).await {
                Ok(()) => {
                    self.status.send_modify(|s| {
                        s.consecutive_failures = 0;
                        s.last_error = None;
                        s.last_delivery_at = Some(timestamp::now());
                    });
                    return;
                }
                Err(e) => {
                    self.status.send_modify(|s| {
                        s.failures_total += 1;
                        s.consecutive_failures += 1;
                        s.last_error = Some(e.to_string());
                    });
                    // Keep the lag true during an outage: it is what monitoring watches.
                    self.refresh_head(cursor).await;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Runs a store call until it succeeds; a store outage delays delivery, nothing more.
    async fn with_retry<T, F, Fut>(&self, mut call: F) -> T
    where
        F: FnMut(Arc<S>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, S::Error>>,
    {
        let mut backoff = Backoff::new(&self.delivery);
        loop {
            match call(self.store.clone(), self.cursor_name.clone()).await {
                Ok(value) => return value,
                Err(e) => {
                    self.status.send_modify(|s| {
                        s.failures_total += 1;
                        s.last_error = Some(format!("audit store: {e}"));
                    });
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    fn note_gap(&self, cursor: u64, records: &[AuditRecord]) {
        let mut expected = cursor;
        let mut missing = 0;
        for record in records {
            missing += record.seq.saturating_sub(expected);
            expected = record.seq + 1;
        }
        if missing > 0 {
            self.status.send_modify(|s| {
                s.gaps_total += missing;
                s.gap_warning = Some(format!(
                    "{missing} events missing from the audit store after seq {cursor}: run `ward audit verify`"
                ));
            });
        }
    }

    async fn refresh_head(&self, cursor: u64) {
        if let Ok(head) = self.store.head().await {
            self.status.send_modify(|s| {
                s.head = head.size.max(cursor);
                s.lag_events = s.head.saturating_sub(cursor);
            });
        }
    }

    /// Waits for the log to grow, or for the poll interval.
    async fn idle(&mut self) {
        let poll = Duration::from_millis(self.delivery.poll_interval_ms.max(1));
        match &mut self.wake {
            Some(wake) => {
                // A closed channel means the local writer stopped; keep polling.
                let _ = tokio::time::timeout(poll, wake.changed()).await;
            }
            None => tokio::time::sleep(poll).await,
        }
    }
}

/// Exponential back-off with jitter: the nth delay is drawn from [d/2, d] with
/// d = min(initial * 2^n, max).
struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    attempt: u32,
}

impl Backoff {
    fn new(delivery: &DeliveryConfig) -> Backoff {
        Backoff {
            initial_ms: delivery.backoff_initial_ms.max(1),
            max_ms: delivery
                .backoff_max_ms
                .max(delivery.backoff_initial_ms.max(1)),
            attempt: 0,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let factor = 1u64.checked_shl(self.attempt.min(32)).unwrap_or(u64::MAX);
        let ceiling = self.initial_ms.saturating_mul(factor).min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter = getrandom::u64().unwrap_or(0) % (ceiling - half + 1);
        Duration::from_millis(half + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_and_caps() {
        let mut backoff = Backoff::new(&DeliveryConfig {
            backoff_initial_ms: 100,
            backoff_max_ms: 1000,
            ..DeliveryConfig::default()
        });
        let ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        for ceiling in ceilings {
            let d = backoff.next_delay().as_millis() as u64;
            assert!(
                (ceiling / 2..=ceiling).contains(&d),
                "{d} not in [{}, {ceiling}]",
                ceiling / 2
            );
        }
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_millis(1000));
        }
    }
}
