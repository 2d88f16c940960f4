//! `ward scan`: scans model files, directories and archives offline.
//!
//! Exit codes: 0 nothing at or above `--fail-on`; 1 a finding at or above it;
//! 2 bad arguments or a path that does not exist; 3 no such finding, but part
//! of the input was left unread that a loader would read (past a scanner
//! limit, encrypted, or an I/O failure), so a payload could hide there. A part
//! malformed for any reader is listed but does not make a scan incomplete.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use ward_scan::{Report, Scanner, Severity};

/// Arguments of `ward scan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files, directories (scanned recursively; symlinks not followed) and archives.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print one JSON document with every report.
    #[arg(long, conflicts_with = "sarif")]
    json: bool,
    /// Print SARIF 2.1.0 (for code-scanning dashboards).
    #[arg(long)]
    sarif: bool,
    /// Exit with 1 when a finding is at or above this severity
    /// (INFO, LOW, MEDIUM, HIGH, CRITICAL).
    #[arg(long, default_value = "MEDIUM", value_parser = parse_severity)]
    fail_on: Severity,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse::<Severity>().map_err(|e| e.to_string())
}

/// Runs `ward scan`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(missing) = args
        .paths
        .iter()
        .find(|p| std::fs::symlink_metadata(p).is_err())
    {
        eprintln!("error: {} does not exist", missing.display());
        return Ok(ExitCode::from(2));
    }
    let paths = &args.paths;
    let scanner = Scanner::default();
    let reports = paths
        .iter()
        .flat_map(|p| scanner.scan_path(p))
        .collect::<Vec<_>>();
    if args.json {
        let files: Vec<_> = reports
            .iter()
            .map(|(path, report)| json!({"path": path, "report": report}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"ruleset": ward_scan::RULESET_VERSION, "files": files})
            )?
        );
    } else if args.sarif {
        println!("{}", serde_json::to_string_pretty(&sarif(&reports))?);
    } else {
        print_table(&reports);
    }
    let failing = reports
        .iter()
        .any(|(_, r)| r.max_severity().is_some_and(|s| s >= args.fail_on));
    let incomplete = reports.iter().any(|(_, r)| r.unread_parts() > 0);
    Ok(if failing {
        ExitCode::from(1)
    } else if incomplete {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_table(reports: &[(PathBuf, Report)]) {
    let mut counts = [0usize; 5];
    for (path, report) in reports {
        let worst = report.max_severity().map_or("clean", |s| s.as_str());
        println!("{worst:<8}  {}  [{}]", path.display(), report.format);
        for f in &report.findings {
            counts[f.severity as usize] += 1;
            println!(
                "  {:<8}  {:<28}  {}  at {}",
                f.severity, f.rule, f.message, f.location
            );
        }
        for u in &report.unreadable {
            let rule = if u.kind.leaves_unread() {
                "scan.incomplete"
            } else {
                "scan.malformed"
            };
            println!(
                "  {:<8}  {:<28}  {}  at {}",
                "UNREAD", rule, u.reason, u.location
            );
        }
    }
    let summary: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|s| format!("{} {}", counts[*s as usize], s))
        .collect();
    println!(
        "\n{} file(s) scanned: {} (rule set {})",
        reports.len(),
        summary.join(", "),
        ward_scan::RULESET_VERSION
    );
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// A SARIF 2.1.0 log: one run, one result per finding, archive members as
/// logical locations.
fn sarif(reports: &[(PathBuf, Report)]) -> serde_json::Value {
    let mut rules = std::collections::BTreeSet::new();
    let mut results = Vec::new();
    for (path, report) in reports {
        for f in &report.findings {
            rules.insert(f.rule.clone());
            let mut location = json!({
                "physicalLocation": {"artifactLocation": {"uri": path.to_string_lossy()}}
            });
            if f.location.members.is_empty()
                && let Some(offset) = f.location.offset
            {
                location["physicalLocation"]["region"] = json!({"byteOffset": offset});
            }
            if !f.location.members.is_empty() {
                location["logicalLocations"] = json!([{
                    "fullyQualifiedName": f.location.to_string(),
                    "kind": "member"
                }]);
            }
            results.push(json!({
                "ruleId": f.rule,
                "level": sarif_level(f.severity),
                "message": {"text": f.message},
                "locations": [location],
                "properties": {"severity": f.severity},
            }));
        }
    }
    let rules: Vec<_> = rules.into_iter().map(|id| json!({"id": id})).collect();
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "ward-scan",
                "version": ward_scan::RULESET_VERSION,
                "rules": rules,
            }},
            "results": results,
        }]
    })
}
