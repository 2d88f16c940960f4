//! The server's memory, read from `/proc/<pid>/status`.
//!
//! `VmHWM` is the peak RSS over the whole life of the process, so a figure taken after a
//! run may come from an earlier one. Two remedies, both reported: writing `5` to
//! `/proc/<pid>/clear_refs` resets the peak to the current RSS (Linux ≥ 4.0, same user
//! or root), and sampling `VmRSS` during the run gives a peak of that run alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::BenchError;

/// How to watch the server's memory.
#[derive(Clone, Debug)]
pub struct MemoryOptions {
    /// The server's process id; nothing is watched without one.
    pub pid: Option<u32>,
    /// Reset the peak before each benchmark.
    pub reset_hwm: bool,
    /// Sample `VmRSS` this often; zero disables sampling.
    pub sample_interval: Duration,
}

/// The server's memory during one benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct ServerMemory {
    /// The process watched.
    pub pid: u32,
    /// `VmHWM` before the run (after the reset, when one was asked for).
    pub vm_hwm_before_kib: Option<u64>,
    /// Whether the peak was reset before the run.
    pub hwm_reset: bool,
    /// `VmHWM` after the run: the process-lifetime peak unless `hwm_reset`.
    pub vm_hwm_after_kib: Option<u64>,
    /// The largest `VmRSS` sampled during the run.
    pub rss_sampled_max_kib: Option<u64>,
    /// Number of samples taken.
    pub rss_samples: u64,
    /// The sampling period.
    pub rss_sample_interval_ms: u64,
    /// Anything that went wrong while watching.
    pub notes: Vec<String>,
}

impl ServerMemory {
    /// The best estimate of this run's peak: the sampled peak, or `VmHWM` after a reset.
    pub fn run_peak_kib(&self) -> Option<u64> {
        let hwm = self.vm_hwm_after_kib.filter(|_| self.hwm_reset);
        match (hwm, self.rss_sampled_max_kib) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The value in KiB of a `Field:   1234 kB` line of a `/proc/<pid>/status` text.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Reads one field of `/proc/<pid>/status`, in KiB.
pub fn read_field_kib(pid: u32, field: &str) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(|e| BenchError::io(format!("reading {path}"), e))?;
    status_field_kib(&status, field)
        .ok_or_else(|| BenchError::Invalid(format!("{path} has no {field} line (is this Linux?)")))
}

/// Resets the process's `VmHWM` to its current RSS.
pub fn reset_hwm(pid: u32) -> Result<(), BenchError> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").map_err(|e| BenchError::io(format!("writing 5 to {path}"), e))
}

/// Memory watching in progress; [`MemoryWatch::finish`] ends it.
pub struct MemoryWatch {
    report: ServerMemory,
    samples: Arc<Samples>,
    sampler: Option<(oneshot::Sender<()>, JoinHandle<Option<String>>)>,
}

/// Shared with the sampling task; zero means "no sample yet".
#[derive(Default)]
struct Samples {
    max_kib: AtomicU64,
    count: AtomicU64,
}

impl MemoryWatch {
    /// Starts watching (resetting the peak first if asked); `None` without a pid.
    pub fn start(options: &MemoryOptions) -> Option<MemoryWatch> {
        let pid = options.pid?;
        let mut notes = Vec::new();
        let hwm_reset = options.reset_hwm
            && reset_hwm(pid)
                .map_err(|e| notes.push(e.to_string()))
                .is_ok();
        let vm_hwm_before_kib = read_field_kib(pid, "VmHWM")
            .map_err(|e| notes.push(e.to_string()))
            .ok();
        let samples = Arc::new(Samples::default());
        let sampler = (!options.sample_interval.is_zero()).then(|| {
            let (stop, stopped) = oneshot::channel();
            let task = sample_rss(pid, options.sample_interval, samples.clone(), stopped);
            (stop, tokio::spawn(task))
        });
        let report = ServerMemory {
            pid,
            vm_hwm_before_kib,
            hwm_reset,
            vm_hwm_after_kib: None,
            rss_sampled_max_kib: None,
            rss_samples: 0,
            rss_sample_interval_ms: u64::try_from(options.sample_interval.as_millis())
                .unwrap_or(u64::MAX),
            notes,
        };
        Some(MemoryWatch {
            report,
            samples,
            sampler,
        })
    }

    /// The largest `VmRSS` sampled so far.
    #[cfg(test)]
    pub fn sampled_max_kib(&self) -> Option<u64> {
        Some(self.samples.max_kib.load(Ordering::Relaxed)).filter(|kib| *kib > 0)
    }

    /// Stops sampling and reads the peak.
    pub async fn finish(self) -> ServerMemory {
        let mut report = self.report;
        if let Some((stop, handle)) = self.sampler {
            let _ = stop.send(());
            if let Ok(Some(error)) = handle.await {
                report.notes.push(error);
            }
        }
        report.rss_sampled_max_kib =
            Some(self.samples.max_kib.load(Ordering::Relaxed)).filter(|kib| *kib > 0);
        report.rss_samples = self.samples.count.load(Ordering::Relaxed);
        match read_field_kib(report.pid, "VmHWM") {
            Ok(kib) => report.vm_hwm_after_kib = Some(kib),
            Err(e) => report.notes.push(e.to_string()),
        }
        report
    }
}

/// Samples until told to stop; returns the first error met, if any.
async fn sample_rss(
    pid: u32,
    period: Duration,
    samples: Arc<Samples>,
    mut stopped: oneshot::Receiver<()>,
) -> Option<String> {
    let mut first_error = None;
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut stopped => return first_error,
            _ = interval.tick() => match read_field_kib(pid, "VmRSS") {
                Ok(kib) => {
                    samples.max_kib.fetch_max(kib, Ordering::Relaxed);
                    samples.count.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| format!("sampling VmRSS: {e}"));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines copied from /proc/self/status of `cat` on Linux 6.1 (Debian 12).
    const STATUS: &str = "Name:\tcat\nVmPeak:\t    3060 kB\nVmHWM:\t    1612 kB\nVmRSS:\t    1500 kB\nRssAnon:\t     116 kB\nVmHWMx:\t 9 kB\n";

    #[test]
    fn status_fields_are_read_by_exact_name() {
        let cases = [
            ("VmHWM", Some(1612)),
            ("VmRSS", Some(1500)),
            ("VmPeak", Some(3060)),
            ("Name", None),
            ("VmSwap", None),
        ];
        for (field, expected) in cases {
            assert_eq!(status_field_kib(STATUS, field), expected, "{field}");
        }
    }

    #[test]
    fn own_process_memory_is_readable_and_the_peak_resets() {
        let pid = std::process::id();
        let hwm = read_field_kib(pid, "VmHWM").unwrap();
        let rss = read_field_kib(pid, "VmRSS").unwrap();
        // The kernel folds per-thread RSS counters into VmHWM lazily, so the
        // peak can trail the current RSS by a few pages; both must be real.
        assert!(rss > 0 && hwm > 0, "hwm {hwm} rss {rss}");
        reset_hwm(pid).unwrap();
        assert!(read_field_kib(u32::MAX, "VmRSS").is_err());
    }

    #[tokio::test]
    async fn sampling_sees_memory_that_was_freed_before_the_end() {
        let pid = std::process::id();
        let options = MemoryOptions {
            pid: Some(pid),
            reset_hwm: true,
            sample_interval: Duration::from_millis(5),
        };
        let watch = MemoryWatch::start(&options).unwrap();
        let before = read_field_kib(pid, "VmRSS").unwrap();
        let big = std::hint::black_box(vec![1u8; 64 << 20]);
        // Poll until the sampler has seen the 64 MiB resident, then free them.
        while watch.sampled_max_kib().unwrap_or(0) < before + (60 << 10) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(big);
        let report = watch.finish().await;
        assert!(report.hwm_reset, "{:?}", report.notes);
        assert!(report.rss_samples > 0);
        assert!(
            report.rss_sampled_max_kib.unwrap() >= before + (60 << 10),
            "{report:?}"
        );
        assert!(
            report.vm_hwm_after_kib.unwrap() >= before + (60 << 10),
            "{report:?}"
        );
    }
}
