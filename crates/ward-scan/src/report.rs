//! What a scan found: findings with severities and locations, and what it could not read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Format;

/// How bad a finding is, graded as ModelScan grades them. Ordered: `Info < … < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Worth knowing, not a risk by itself.
    Info,
    /// Unusual but unlikely to be exploitable.
    Low,
    /// Unknown behaviour: a callable on neither the deny- nor the allow-list.
    Medium,
    /// Can read or write files, open sockets or otherwise reach outside the model.
    High,
    /// Runs arbitrary code when the file is loaded.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The upper-case name (`CRITICAL`), as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of INFO, LOW, MEDIUM, HIGH, CRITICAL.
#[derive(Debug, thiserror::Error)]
#[error("unknown severity {0:?}: expected one of INFO, LOW, MEDIUM, HIGH, CRITICAL")]
pub struct UnknownSeverity(String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// Where inside a file something was found: the chain of archive members leading to
/// it (outermost first; empty for the file itself) and a byte offset in the innermost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Archive member names, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Byte offset inside the innermost member (or the file), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Location {
    /// The same member chain at another offset.
    pub fn at(&self, offset: u64) -> Location {
        Location {
            members: self.members.clone(),
            offset: Some(offset),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.members.is_empty() {
            f.write_str("<file>")?;
        } else {
            f.write_str(&self.members.join("!/"))?;
        }
        if let Some(offset) = self.offset {
            write!(f, "@{offset}")?;
        }
        Ok(())
    }
}

/// One thing the scanner judged risky (or worth noting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// Stable rule identifier, e.g. `pickle.denied-callable`.
    pub rule: String,
    /// What was found, for a person: names the callable, op, path or field.
    pub message: String,
    /// Where it was found.
    pub location: Location,
}

/// A part of the input the scanner could not read (corrupt, truncated, over a limit,
/// unsupported). Reported so that nothing is silently passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// Where reading stopped.
    pub location: Location,
    /// Why, for a person.
    pub reason: String,
    /// What kind of stop it was: whether a payload could hide past it.
    #[serde(default)]
    pub kind: UnreadKind,
}

/// Why the scanner stopped reading a part, which decides whether what it did
/// not read could still reach a loader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnreadKind {
    /// Past one of the scanner's limits: a loader would read on.
    Limit,
    /// Encrypted: a loader given the key would read it.
    Encrypted,
    /// Reading the input failed (not its content): nothing is known of it.
    Io,
    /// Not valid in its format where reading stopped: a loader fails there
    /// too, so nothing past it runs. (Older reports say nothing of the kind.)
    #[default]
    Malformed,
}

impl UnreadKind {
    /// Whether bytes a loader would read were left unread, so the scan says
    /// nothing of them.
    pub fn leaves_unread(self) -> bool {
        self != UnreadKind::Malformed
    }
}

/// Everything one scan of one input found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The format recognised at the top level.
    pub format: Format,
    /// Findings, in the order they were made.
    pub findings: Vec<Finding>,
    /// Parts that could not be read.
    pub unreadable: Vec<Unreadable>,
    /// Bytes read from the input and from decompressed members.
    pub bytes_scanned: u64,
    /// [`crate::RULESET_VERSION`] at the time of the scan.
    pub ruleset: String,
}

impl Report {
    /// How many parts were left unread that a loader would read
    /// ([`UnreadKind::leaves_unread`]): a scan with any is incomplete.
    pub fn unread_parts(&self) -> usize {
        self.unreadable
            .iter()
            .filter(|u| u.kind.leaves_unread())
            .count()
    }

    /// The highest severity among the findings, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Findings at or above `threshold`.
    pub fn at_or_above(&self, threshold: Severity) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| f.severity >= threshold)
    }
}
