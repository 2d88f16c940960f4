//! The corpus test: generates malicious, suspicious and benign model files with
//! `tests/corpus/generate.py` (Python's pickle, numpy, h5py, joblib, zip/tar tools),
//! scans each one and fails on any miss or false alarm.
//!
//! The generator needs the packages in `requirements-test.txt`; `scripts/test` installs
//! them into `<repo>/.venv` and puts its `bin` first on PATH. The payloads are harmless
//! (`touch /tmp/ward-corpus-marker-<name>`) and nothing may ever run them: the test
//! also checks that no marker file appeared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde::Deserialize;
use ward_scan::{Report, Scanner, Severity};

const MARKER_DIR: &str = "/tmp";
const MARKER_PREFIX: &str = "ward-corpus-marker-";

/// What `expected.json` says about one file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    expect: Expect,
    #[serde(default)]
    min_severity: Option<Severity>,
    #[serde(default)]
    max_severity: Option<Severity>,
    #[serde(default)]
    mentions: Option<String>,
    technique: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Malicious,
    Suspicious,
    Benign,
}

/// The outcome for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Miss,
    FalseAlarm,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Miss => "MISS",
            Verdict::FalseAlarm => "FALSE-ALARM",
        }
    }
}

/// Benign files may carry nothing above this.
const BENIGN_MAX: Severity = Severity::Low;

impl Expected {
    fn describe(&self) -> String {
        let mut s = match self.expect {
            Expect::Benign => format!("benign<={BENIGN_MAX}"),
            Expect::Malicious => format!("malicious>={}", self.min()),
            Expect::Suspicious => format!("suspicious>={}", self.min()),
        };
        if let Some(max) = self.max_severity {
            s.push_str(&format!(",<={max}"));
        }
        s
    }

    fn min(&self) -> Severity {
        self.min_severity.unwrap_or(Severity::Medium)
    }

    /// Judges a report: a miss when no finding reaches the minimum (naming the expected
    /// thing), a false alarm when any finding exceeds the maximum.
    fn judge(&self, report: &Report) -> (Verdict, String) {
        let worst = report.max_severity();
        let max = match self.expect {
            Expect::Benign => Some(BENIGN_MAX),
            _ => self.max_severity,
        };
        if let (Some(max), Some(worst)) = (max, worst)
            && worst > max
        {
            return (
                Verdict::FalseAlarm,
                format!("found {worst}, allowed up to {max}"),
            );
        }
        if self.expect == Expect::Benign {
            return (Verdict::Ok, String::new());
        }
        let min = self.min();
        let needle = self.mentions.as_deref().map(str::to_lowercase);
        let hit = report.at_or_above(min).any(|f| {
            needle
                .as_deref()
                .is_none_or(|n| f.message.to_lowercase().contains(n))
        });
        match (hit, &self.mentions) {
            (true, _) => (Verdict::Ok, String::new()),
            (false, Some(m)) => (
                Verdict::Miss,
                format!("no finding >= {min} whose message mentions {m:?}"),
            ),
            (false, None) => (Verdict::Miss, format!("no finding >= {min}")),
        }
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the generator into `dir`; panics with its stderr and a hint when it fails.
fn generate(dir: &Path) {
    let script = manifest_dir().join("tests/corpus/generate.py");
    let output = Command::new("python3").arg(&script).arg(dir).output();
    let hint = "install the generator's packages (crates/ward-scan/requirements-test.txt) by running \
                scripts/test once, then put <repo>/.venv/bin first on PATH";
    match output {
        Err(e) => panic!("cannot run python3 {}: {e}\nhint: {hint}", script.display()),
        Ok(out) if !out.status.success() => panic!(
            "python3 {} failed ({}):\n{}\nhint: {hint}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
    }
}

/// Marker files (and their modification times) present now.
fn markers() -> BTreeMap<String, Option<SystemTime>> {
    let Ok(entries) = std::fs::read_dir(MARKER_DIR) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(MARKER_PREFIX)
                .then(|| (name, e.metadata().ok().and_then(|m| m.modified().ok())))
        })
        .collect()
}

/// Every regular file under `dir`, as paths relative to it.
fn files_under(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, root, out);
        } else {
            let rel = path.strip_prefix(root).unwrap();
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn load_expected(dir: &Path) -> BTreeMap<String, Expected> {
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let expected: BTreeMap<String, Expected> = serde_json::from_str(&text).unwrap();
    let mut on_disk = BTreeSet::new();
    files_under(dir, dir, &mut on_disk);
    on_disk.remove("expected.json");
    let listed: BTreeSet<String> = expected.keys().cloned().collect();
    assert_eq!(
        on_disk, listed,
        "expected.json must list exactly the generated files"
    );
    expected
}

/// The first findings (worst first), or the first unreadable reason when there are none.
fn summary(report: &Report) -> String {
    let mut findings: Vec<_> = report.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut parts: Vec<String> = findings
        .iter()
        .take(2)
        .map(|f| format!("{} {}: {} @{}", f.severity, f.rule, f.message, f.location))
        .collect();
    if findings.len() > 2 {
        parts.push(format!("+{} more", findings.len() - 2));
    }
    if parts.is_empty()
        && let Some(u) = report.unreadable.first()
    {
        parts.push(format!("unreadable @{}: {}", u.location, u.reason));
    }
    let text = parts.join(" | ");
    match text.char_indices().nth(220) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[test]
fn corpus_has_no_misses_and_no_false_alarms() {
    let markers_before = markers();
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let expected = load_expected(dir.path());

    let scanner = Scanner::default();
    let mut failures = Vec::new();
    for (name, exp) in &expected {
        let mut file = File::open(dir.path().join(name)).unwrap();
        let report = scanner.scan(&mut file);
        let (verdict, why) = exp.judge(&report);
        let worst = report.max_severity().map_or("-", Severity::as_str);
        println!(
            "{:<11} {:<52} {:<26} {:<8} [{}] {}",
            verdict.label(),
            name,
            exp.describe(),
            worst,
            report.format,
            summary(&report)
        );
        if verdict != Verdict::Ok {
            failures.push(format!(
                "{} {name} ({}): {why}",
                verdict.label(),
                exp.technique
            ));
        }
    }

    let markers_after = markers();
    let touched: Vec<_> = markers_after
        .iter()
        .filter(|(name, mtime)| markers_before.get(*name) != Some(*mtime))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        touched.is_empty(),
        "payloads ran: marker files appeared or changed in {MARKER_DIR}: {touched:?}"
    );

    let misses = failures.iter().filter(|f| f.starts_with("MISS")).count();
    println!(
        "\n{} files: {} ok, {misses} misses, {} false alarms",
        expected.len(),
        expected.len() - failures.len(),
        failures.len() - misses
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed:\n{}",
        failures.len(),
        expected.len(),
        failures.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_scan::{Finding, Location};

    fn report(findings: &[(Severity, &str)]) -> Report {
        Report {
            format: ward_scan::Format::Pickle,
            findings: findings
                .iter()
                .map(|(severity, message)| Finding {
                    severity: *severity,
                    rule: "test".into(),
                    message: (*message).into(),
                    location: Location::default(),
                })
                .collect(),
            unreadable: Vec::new(),
            bytes_scanned: 0,
            ruleset: String::new(),
        }
    }

    /// expected.json entry, findings (severity, message), verdict.
    type Case = (&'static str, &'static [(Severity, &'static str)], Verdict);

    fn check(expected: &str, findings: &[(Severity, &str)], verdict: Verdict) {
        let exp: Expected = serde_json::from_str(expected).unwrap();
        assert_eq!(
            exp.judge(&report(findings)).0,
            verdict,
            "{expected} {findings:?}"
        );
    }

    #[test]
    fn judging() {
        use Severity::*;
        let mal = r#"{"expect":"malicious","min_severity":"CRITICAL","mentions":"System","technique":"t"}"#;
        let sus = r#"{"expect":"suspicious","min_severity":"MEDIUM","max_severity":"MEDIUM","technique":"t"}"#;
        let ben = r#"{"expect":"benign","technique":"t"}"#;
        let cases: &[Case] = &[
            (mal, &[(Critical, "posix.system")], Verdict::Ok),
            (mal, &[(High, "posix.system")], Verdict::Miss),
            (
                mal,
                &[(Critical, "builtins.eval"), (Low, "posix.system")],
                Verdict::Miss,
            ),
            (mal, &[], Verdict::Miss),
            (sus, &[(Medium, "mymodule.x")], Verdict::Ok),
            (sus, &[(High, "mymodule.x")], Verdict::FalseAlarm),
            (sus, &[(Low, "mymodule.x")], Verdict::Miss),
            (ben, &[], Verdict::Ok),
            (ben, &[(Low, "odd"), (Info, "note")], Verdict::Ok),
            (ben, &[(Medium, "x")], Verdict::FalseAlarm),
        ];
        for (expected, findings, verdict) in cases {
            check(expected, findings, *verdict);
        }
    }
}
