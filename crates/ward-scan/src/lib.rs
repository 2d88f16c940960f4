//! ward-scan: finds code-execution payloads in model files without ever running them.
//!
//! Main types: [`Scanner`] (limits + analysers), [`Report`] (what one file held),
//! [`Finding`] (one thing judged, with a [`Severity`] and a [`Location`]) and
//! [`Unreadable`] (a part the scanner could not read, reported rather than hidden).
//!
//! The design decision a reader must know: **formats are recognised by content, never
//! by name**. [`detect`] sniffs the first bytes of every file and of every archive
//! member; each format has one [`Analyzer`] in its own module. Analysers report, they
//! do not bail: a corrupt tail yields an [`Unreadable`] next to every finding made
//! before it.
//!
//! **`ward-scan` does no network I/O and knows nothing of HTTP or the database.**
//! Every input is streamed and every loop, stack and archive has a named limit in
//! [`Limits`].
//!
//! ```no_run
//! let scanner = ward_scan::Scanner::default();
//! let mut file = std::fs::File::open("model.pt")?;
//! let report = scanner.scan(&mut file);
//! for finding in &report.findings {
//!     println!("{} {} at {}", finding.severity, finding.message, finding.location);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

mod detect;
mod input;
mod report;
mod scanner;

pub mod archive;
pub mod formats;
pub mod pickle;

pub use detect::{Format, detect};
pub use input::{ForwardOnly, Source};
pub use report::{Finding, Location, Report, Severity, UnreadKind, Unreadable};
pub use scanner::{Analyzer, Limits, Scan, Scanner};

/// Version of the rule set (deny-list, allow-list, format checks). Stored with every
/// scan result; when it changes, the registry rescans everything it holds.
pub const RULESET_VERSION: &str = "2026.11.1";
