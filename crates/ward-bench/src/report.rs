//! Human tables, drawn from the JSON reports so that what people read and what machines
//! read can never disagree; and a description of the machine.

use serde::Serialize;
use serde_json::Value;

/// How a value is shown.
#[derive(Clone, Copy, Debug)]
pub enum Fmt {
    /// A rate with one decimal.
    Rate,
    /// A whole number.
    Int,
    /// Milliseconds with three decimals.
    Ms,
    /// Seconds with two decimals.
    Secs,
    /// KiB shown as MiB.
    KibAsMib,
    /// A percentage with one decimal.
    Pct,
    /// Text as is.
    Text,
    /// A target check: value, goal and verdict.
    Target,
}

/// One line of a table: a label and where its value sits in a report.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// What the line shows, with its unit.
    pub label: &'static str,
    /// JSON pointer into the report.
    pub pointer: &'static str,
    /// How to show the value.
    pub fmt: Fmt,
}

const fn row(label: &'static str, pointer: &'static str, fmt: Fmt) -> Row {
    Row {
        label,
        pointer,
        fmt,
    }
}

/// Rows of `raw`.
pub const RAW_ROWS: &[Row] = &[
    row(
        "sha256, 1 core, file in page cache (MB/s)",
        "/sha256_mb_s",
        Fmt::Rate,
    ),
    row(
        "sha256, 1 core, in memory (MB/s)",
        "/sha256_memory_mb_s",
        Fmt::Rate,
    ),
    row(
        "sequential write + fsync (MB/s)",
        "/write_fsync_mb_s",
        Fmt::Rate,
    ),
    row("  of which fsync (s)", "/fsync_seconds", Fmt::Secs),
    row("client PRNG, 1 core (MB/s)", "/prng_mb_s", Fmt::Rate),
    row("file size (bytes)", "/size_bytes", Fmt::Int),
    row("directory", "/dir", Fmt::Text),
];

/// Rows of `push-pull`.
pub const PUSH_PULL_ROWS: &[Row] = &[
    row("blob size (bytes)", "/size_bytes", Fmt::Int),
    row(
        "push, monolithic POST+PUT (MB/s)",
        "/push/mb_per_s",
        Fmt::Rate,
    ),
    row("push time (s)", "/push/seconds", Fmt::Secs),
    row(
        "push: server peak RSS, sampled",
        "/push/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "push: server VmHWM after",
        "/push/server_memory/vm_hwm_after_kib",
        Fmt::KibAsMib,
    ),
    row("pull, digest verified (MB/s)", "/pull/mb_per_s", Fmt::Rate),
    row("pull time (s)", "/pull/seconds", Fmt::Secs),
    row(
        "pull: server peak RSS, sampled",
        "/pull/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "pull: server VmHWM after",
        "/pull/server_memory/vm_hwm_after_kib",
        Fmt::KibAsMib,
    ),
    row("auth", "/auth", Fmt::Text),
];

/// Rows of `small-blobs`.
pub const SMALL_BLOBS_ROWS: &[Row] = &[
    row("blobs", "/count", Fmt::Int),
    row("blob size (bytes)", "/size_bytes", Fmt::Int),
    row("concurrent clients", "/concurrency", Fmt::Int),
    row("blobs/s", "/blobs_per_s", Fmt::Rate),
    row("MB/s", "/mb_per_s", Fmt::Rate),
    row("per-blob POST+PUT p50 (ms)", "/latency_p50_ms", Fmt::Ms),
    row("per-blob POST+PUT p99 (ms)", "/latency_p99_ms", Fmt::Ms),
    row("pushed", "/pushed", Fmt::Int),
    row("errors", "/errors", Fmt::Int),
    row(
        "server peak RSS, sampled",
        "/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "server VmHWM after",
        "/server_memory/vm_hwm_after_kib",
        Fmt::KibAsMib,
    ),
    row("auth", "/auth", Fmt::Text),
];

/// Rows of `manifest-get`.
pub const MANIFEST_GET_ROWS: &[Row] = &[
    row("driver", "/driver", Fmt::Text),
    row("connections", "/concurrency", Fmt::Int),
    row("requests/s (200 OK)", "/requests_per_s", Fmt::Rate),
    row("latency p50 (ms)", "/latency_p50_ms", Fmt::Ms),
    row("latency p99 (ms)", "/latency_p99_ms", Fmt::Ms),
    row("latency max (ms)", "/latency_max_ms", Fmt::Ms),
    row("requests in window", "/requests", Fmt::Int),
    row("errors", "/errors", Fmt::Int),
    row("window (s)", "/duration_seconds", Fmt::Secs),
    row(
        "server peak RSS, sampled",
        "/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "server VmHWM after",
        "/server_memory/vm_hwm_after_kib",
        Fmt::KibAsMib,
    ),
    row("auth", "/auth", Fmt::Text),
];

/// Rows of `all` and of `combine`.
pub const ALL_ROWS: &[Row] = &[
    row("raw sha256, 1 core (MB/s)", "/raw/sha256_mb_s", Fmt::Rate),
    row(
        "raw write + fsync (MB/s)",
        "/raw/write_fsync_mb_s",
        Fmt::Rate,
    ),
    row("push 1 blob (MB/s)", "/push_pull/push/mb_per_s", Fmt::Rate),
    row(
        "  % of min(sha256, write+fsync)",
        "/push_pct_of_raw_limit",
        Fmt::Pct,
    ),
    row(
        "  server peak RSS, sampled",
        "/push_pull/push/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "  server VmHWM after",
        "/push_pull/push/server_memory/vm_hwm_after_kib",
        Fmt::KibAsMib,
    ),
    row(
        "pull 1 blob, verified (MB/s)",
        "/push_pull/pull/mb_per_s",
        Fmt::Rate,
    ),
    row(
        "  server peak RSS, sampled",
        "/push_pull/pull/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "small blobs (blobs/s)",
        "/small_blobs/blobs_per_s",
        Fmt::Rate,
    ),
    row("  (MB/s)", "/small_blobs/mb_per_s", Fmt::Rate),
    row("  errors", "/small_blobs/errors", Fmt::Int),
    row(
        "  server peak RSS, sampled",
        "/small_blobs/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "manifest GET, builtin (req/s)",
        "/manifest_get/builtin/requests_per_s",
        Fmt::Rate,
    ),
    row(
        "  p50 (ms)",
        "/manifest_get/builtin/latency_p50_ms",
        Fmt::Ms,
    ),
    row(
        "  p99 (ms)",
        "/manifest_get/builtin/latency_p99_ms",
        Fmt::Ms,
    ),
    row("  errors", "/manifest_get/builtin/errors", Fmt::Int),
    row(
        "  server peak RSS, sampled",
        "/manifest_get/builtin/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "manifest GET, wrk (req/s)",
        "/manifest_get/wrk/requests_per_s",
        Fmt::Rate,
    ),
    row("  p50 (ms)", "/manifest_get/wrk/latency_p50_ms", Fmt::Ms),
    row("  p99 (ms)", "/manifest_get/wrk/latency_p99_ms", Fmt::Ms),
    row("  errors", "/manifest_get/wrk/errors", Fmt::Int),
    row(
        "  server peak RSS, sampled",
        "/manifest_get/wrk/server_memory/rss_sampled_max_kib",
        Fmt::KibAsMib,
    ),
    row(
        "target: push >= 80% of raw limit",
        "/targets/push_vs_raw_limit",
        Fmt::Target,
    ),
    row(
        "target: push peak RSS < 64 MiB",
        "/targets/push_peak_rss",
        Fmt::Target,
    ),
    row(
        "target: small blobs > 150/s",
        "/targets/small_blobs_per_s",
        Fmt::Target,
    ),
    row(
        "target: manifest GET > 20000/s",
        "/targets/manifest_get_per_s",
        Fmt::Target,
    ),
    row("load average before", "/load_avg_before", Fmt::Text),
    row("load average after", "/load_avg_after", Fmt::Text),
    row("auth", "/auth", Fmt::Text),
];

/// A table with one value column per report; rows no report has are left out, and
/// every `error` found in a report is listed below the table.
pub fn render(columns: &[(&str, &Value)], rows: &[Row]) -> String {
    let mut lines: Vec<Vec<String>> = vec![
        std::iter::once(String::new())
            .chain(columns.iter().map(|(name, _)| (*name).to_owned()))
            .collect(),
    ];
    for row in rows {
        let cells: Vec<Option<String>> = columns
            .iter()
            .map(|(_, report)| format_value(report.pointer(row.pointer), row.fmt))
            .collect();
        if cells.iter().any(Option::is_some) {
            let cells = cells
                .into_iter()
                .map(|c| c.unwrap_or_else(|| "-".to_owned()));
            lines.push(std::iter::once(row.label.to_owned()).chain(cells).collect());
        }
    }
    let mut out = align(&lines);
    for (name, report) in columns {
        let mut errors = Vec::new();
        collect_errors(report, String::new(), &mut errors);
        for (path, error) in errors {
            out.push_str(&format!(
                "{name}: {} failed: {error}\n",
                if path.is_empty() { "run" } else { &path }
            ));
        }
    }
    out
}

fn align(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            lines
                .iter()
                .filter_map(|l| l.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        for (i, cell) in line.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

fn format_value(value: Option<&Value>, fmt: Fmt) -> Option<String> {
    let value = value.filter(|v| !v.is_null())?;
    let number = value.as_f64();
    Some(match fmt {
        Fmt::Rate => format!("{:.1}", number?),
        Fmt::Int => format!("{:.0}", number?),
        Fmt::Ms => format!("{:.3}", number?),
        Fmt::Secs => format!("{:.2}", number?),
        Fmt::KibAsMib => format!("{:.1} MiB", number? / 1024.0),
        Fmt::Pct => format!("{:.1}%", number?),
        Fmt::Text => value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned),
        Fmt::Target => format_target(value)?,
    })
}

fn format_target(value: &Value) -> Option<String> {
    let verdict = match value.get("met").and_then(Value::as_bool) {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    };
    let shown = value
        .get("value")
        .and_then(Value::as_f64)
        .map_or_else(String::new, |v| format!("{v:.1} "));
    Some(format!("{shown}{verdict}"))
}

fn collect_errors(value: &Value, path: String, out: &mut Vec<(String, String)>) {
    let Value::Object(map) = value else { return };
    if let Some(Value::String(error)) = map.get("error") {
        out.push((path, error.clone()));
        return;
    }
    for (key, child) in map {
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}/{key}")
        };
        collect_errors(child, child_path, out);
    }
}

/// The machine the figures were taken on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub nproc: usize,
    /// The CPU's model name from `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// Whether the CPU has the SHA extensions (sha256 in hardware).
    pub cpu_sha_ni: bool,
    /// Total memory, in GiB.
    pub mem_total_gib: Option<f64>,
    /// The kernel release.
    pub kernel: Option<String>,
}

impl Machine {
    /// Reads `/proc`.
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpu_field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        };
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: cpu_field("model name"),
            cpu_sha_ni: cpu_field("flags")
                .is_some_and(|f| f.split_whitespace().any(|flag| flag == "sha_ni")),
            mem_total_gib: crate::procmem::status_field_kib(&meminfo, "MemTotal")
                .map(|kib| kib as f64 / (1u64 << 20) as f64),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned()),
        }
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` shows them.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_line_up_skip_unknown_rows_and_list_errors() {
        let a = json!({"x": 1234.56, "t": {"value": 80.0, "met": true}, "s": {"error": "boom"}});
        let b = json!({"x": 7.0, "t": {"value": null, "met": null}});
        let rows = [
            row("rate", "/x", Fmt::Rate),
            row("absent", "/nope", Fmt::Int),
            row("goal", "/t", Fmt::Target),
        ];
        let table = render(&[("left", &a), ("right", &b)], &rows);
        let expected = "          left         right\n\
                        rate    1234.6           7.0\n\
                        goal  80.0 met  not measured\n\
                        left: s failed: boom\n";
        assert_eq!(table, expected);
    }

    #[test]
    fn values_are_formatted_by_kind() {
        let cases = [
            (json!(2048), Fmt::KibAsMib, Some("2.0 MiB")),
            (json!(0.12345), Fmt::Ms, Some("0.123")),
            (json!(81.25), Fmt::Pct, Some("81.2%")),
            (json!("bearer"), Fmt::Text, Some("bearer")),
            (json!("text"), Fmt::Rate, None),
            (Value::Null, Fmt::Int, None),
        ];
        for (value, fmt, expected) in cases {
            assert_eq!(
                format_value(Some(&value), fmt).as_deref(),
                expected,
                "{value} {fmt:?}"
            );
        }
    }

    #[test]
    fn the_machine_is_described() {
        let machine = Machine::describe();
        assert!(machine.nproc >= 1);
        assert!(machine.mem_total_gib.unwrap() > 0.0);
        assert!(load_average().unwrap().split(' ').count() == 3);
    }
}
