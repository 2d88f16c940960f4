//! `wrk` as an alternative load generator for manifest `GET`s.
//!
//! wrk is written in C around one epoll loop per thread and costs less CPU per request
//! than most clients, which matters when client and server share two cores. Headers go
//! in a Lua script written to a private temporary file, so a bearer token never shows
//! on a command line (`ps` would reveal it). Only the script's top level runs (it sets
//! `wrk.headers`), so wrk keeps its prebuilt-request fast path.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

use super::manifest_get::ManifestGetOptions;
use crate::error::BenchError;

/// One wrk run.
pub struct Load<'a> {
    /// The URL requested.
    pub url: &'a str,
    /// The `Accept` header.
    pub accept: &'a str,
    /// The `Authorization` header, if the registry wants one.
    pub authorization: Option<&'a HeaderValue>,
    /// Connections, threads and duration.
    pub options: ManifestGetOptions,
}

/// What wrk printed, in numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WrkOutcome {
    /// Responses completed, whatever their status.
    pub requests: u64,
    /// Responses with a status above 399.
    pub non_2xx_3xx: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
    /// The run's length, from wrk's own requests and rate.
    pub duration_seconds: f64,
    /// Median latency.
    pub p50: Option<Duration>,
    /// 99th percentile latency.
    pub p99: Option<Duration>,
    /// Largest latency.
    pub max: Option<Duration>,
}

impl WrkOutcome {
    /// A line saying which errors wrk counted.
    pub fn error_summary(&self) -> String {
        format!(
            "wrk counted {} responses above 399 and {} socket errors",
            self.non_2xx_3xx, self.socket_errors
        )
    }
}

/// Removes the script however the run ends.
struct ScriptFile(PathBuf);

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs wrk and reads its report.
pub async fn run(load: &Load<'_>) -> Result<WrkOutcome, BenchError> {
    let script = write_script(load)?;
    let options = load.options;
    let output = tokio::process::Command::new("wrk")
        .arg(format!("--threads={}", options.wrk_threads.max(1)))
        .arg(format!("--connections={}", options.concurrency))
        .arg(format!("--duration={}s", options.duration.as_secs().max(1)))
        .arg("--latency")
        .arg(format!("--script={}", script.0.display()))
        .arg(load.url)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BenchError::Wrk(
                "`wrk` is not on PATH: install it (Debian: apt-get install wrk) or use --driver builtin".into(),
            ),
            _ => BenchError::io("starting wrk", e),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(BenchError::Wrk(format!(
            "exited with {}: {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse_output(&stdout).map_err(|e| BenchError::Wrk(format!("{e}; wrk printed:\n{stdout}")))
}

fn write_script(load: &Load<'_>) -> Result<ScriptFile, BenchError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path =
        std::env::temp_dir().join(format!("ward-bench-wrk-{}-{nanos}.lua", std::process::id()));
    let mut text = format!(
        "wrk.headers[\"Accept\"] = {}\n",
        lua_string(load.accept.as_bytes())
    );
    if let Some(authorization) = load.authorization {
        text.push_str(&format!(
            "wrk.headers[\"Authorization\"] = {}\n",
            lua_string(authorization.as_bytes())
        ));
    }
    let script = ScriptFile(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&script.0)
        .map_err(|e| BenchError::io(format!("creating {}", script.0.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| BenchError::io(format!("writing {}", script.0.display()), e))?;
    Ok(script)
}

/// A Lua string literal holding `bytes` (header values: visible ASCII, spaces and tabs).
fn lua_string(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
    out
}

/// Reads the figures out of wrk's report (`wrk --latency`).
pub fn parse_output(text: &str) -> Result<WrkOutcome, String> {
    let mut outcome = WrkOutcome::default();
    let mut requests_per_s = None;
    let mut in_distribution = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Latency", "Distribution", ..] => in_distribution = true,
            ["Latency", _avg, _stdev, max, ..] => outcome.max = Some(parse_time(max)?),
            ["50%", value] if in_distribution => outcome.p50 = Some(parse_time(value)?),
            ["99%", value] if in_distribution => outcome.p99 = Some(parse_time(value)?),
            [count, "requests", "in", ..] => outcome.requests = parse_number(count)?,
            ["Socket", "errors:", ..] => outcome.socket_errors = sum_socket_errors(&words[2..])?,
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                outcome.non_2xx_3xx = parse_number(count)?
            }
            ["Requests/sec:", rate] => {
                requests_per_s = Some(
                    rate.parse::<f64>()
                        .map_err(|e| format!("Requests/sec {rate:?}: {e}"))?,
                );
            }
            _ => {}
        }
    }
    let requests_per_s = requests_per_s.ok_or("no `Requests/sec:` line")?;
    if requests_per_s > 0.0 {
        outcome.duration_seconds = outcome.requests as f64 / requests_per_s;
    }
    Ok(outcome)
}

fn parse_number(text: &str) -> Result<u64, String> {
    text.trim_end_matches(',')
        .parse()
        .map_err(|e| format!("number {text:?}: {e}"))
}

/// `connect 0, read 2667, write 0, timeout 0`.
fn sum_socket_errors(words: &[&str]) -> Result<u64, String> {
    words
        .chunks(2)
        .map(|pair| parse_number(pair.get(1).copied().unwrap_or_default()))
        .sum()
}

/// wrk's times: `354.01us`, `1.10ms`, `1.69s`, `2.00m`, `1.00h`.
fn parse_time(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("time {text:?} has no unit"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|e| format!("time {text:?}: {e}"))?;
    let seconds_per_unit = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("time {text:?}: unknown unit {unit:?}")),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| format!("time {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real report; the file's first lines say how it was made.
    const REAL_RUN: &str = include_str!("../../tests/fixtures/wrk-docker-registry.txt");

    #[test]
    fn reads_a_real_report() {
        let outcome = parse_output(REAL_RUN).unwrap();
        assert_eq!(outcome.requests, 1139);
        assert_eq!((outcome.non_2xx_3xx, outcome.socket_errors), (0, 0));
        assert_eq!(outcome.p50, Some(Duration::from_micros(74_190)));
        assert_eq!(outcome.p99, Some(Duration::from_micros(318_200)));
        assert_eq!(outcome.max, Some(Duration::from_micros(434_180)));
        assert!(
            (outcome.duration_seconds - 1139.0 / 377.88).abs() < 1e-9,
            "{outcome:?}"
        );
    }

    #[test]
    fn reads_errors_and_every_time_unit() {
        let text = "Running 2m test @ http://127.0.0.1:5000/v2/x/manifests/bench\n  1 threads and 32 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   559.43us    4.80ms   1.69s    99.99%\n    \
            Req/Sec     1.80k   407.00     6.87k    68.72%\n  Latency Distribution\n     50%  250.00us\n     75%    1.00ms\n     \
            90%    2.00m\n     99%    1.00h\n  120000 requests in 2.00m, 8.51MB read\n  \
            Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 3396\n\
            Requests/sec:   1000.00\nTransfer/sec:      1.23MB\n";
        let outcome = parse_output(text).unwrap();
        let expected = WrkOutcome {
            requests: 120_000,
            non_2xx_3xx: 3396,
            socket_errors: 10,
            duration_seconds: 120.0,
            p50: Some(Duration::from_micros(250)),
            p99: Some(Duration::from_secs(3600)),
            max: Some(Duration::from_millis(1690)),
        };
        assert_eq!(outcome, expected);
    }

    #[test]
    fn refuses_what_is_not_a_wrk_report() {
        for text in [
            "",
            "unable to connect to 127.0.0.1:1 Connection refused",
            "Requests/sec: fast",
        ] {
            assert!(parse_output(text).is_err(), "{text:?}");
        }
        assert!(parse_time("12").is_err());
        assert!(parse_time("12parsecs").is_err());
    }

    #[test]
    fn lua_strings_escape_quotes_and_controls() {
        assert_eq!(lua_string(br#"Bearer a"b\c"#), r#""Bearer a\"b\\c""#);
        assert_eq!(lua_string(b"x\ty"), r#""x\009y""#);
    }
}
