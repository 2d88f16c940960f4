//! Runs fuzz target inputs without libFuzzer, on stable Rust:
//! `reproduce <target> <file or directory>...` scans each file as the target does and
//! prints what the scan found; a broken invariant panics as it would under the fuzzer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_default();
    if ward_scan_fuzz::formats(&target).is_none() {
        let names: Vec<&str> = ward_scan_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "usage: reproduce <target> <file or dir>...; targets: {}",
            names.join(" ")
        );
        return ExitCode::FAILURE;
    }
    let mut files = Vec::new();
    for arg in args {
        collect(Path::new(&arg), &mut files);
    }
    for file in files {
        match std::fs::read(&file) {
            Ok(data) => match ward_scan_fuzz::run(&target, &data) {
                Some(report) => {
                    let worst = report.findings.iter().map(|f| f.severity).max();
                    println!(
                        "{}: {} findings (worst {}), {} unreadable, {} bytes scanned, {}",
                        file.display(),
                        report.findings.len(),
                        worst.map_or("-", |s| s.as_str()),
                        report.unreadable.len(),
                        report.bytes_scanned,
                        report.format,
                    );
                }
                None => println!("{}: not this target's format", file.display()),
            },
            Err(e) => eprintln!("{}: {e}", file.display()),
        }
    }
    ExitCode::SUCCESS
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut children: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            children.sort();
            children.iter().for_each(|c| collect(c, out));
        }
        Err(_) => out.push(path.to_owned()),
    }
}
