//! Verification: does a sequence of records form the log the server signed?
//!
//! Two independent checks run over the records as presented:
//!
//! 1. **The chain as stored.** Each record must sit at the next `seq`, name the
//!    previous record's hash as `prev_hash`, and hash to its own `hash`. The first
//!    record that does not is classified, using its neighbours, as
//!    [`ProblemKind::Altered`], [`ProblemKind::Removed`], [`ProblemKind::Reordered`] or
//!    [`ProblemKind::Inserted`].
//! 2. **The tree the content implies.** Chain hashes are recomputed from the content
//!    alone (`prev_hash` and `hash` fields ignored), the RFC 9162 tree is built over
//!    them, and each signed checkpoint's root and chain head are compared at its size.
//!    This catches an attacker who rewrote the chain consistently: the first
//!    checkpoint that no longer matches bounds the damage to the records between the
//!    last matching checkpoint and it ([`ProblemKind::Rewritten`]). A checkpoint larger
//!    than the log shows that records were cut off ([`ProblemKind::Truncated`]).
//!
//! Records after the last valid checkpoint are reported as the unprotected tail: the
//! chain covers them, but nothing signed does yet.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint, CheckpointError, CheckpointVerifier};
use crate::hash::Hash;
use crate::merkle::{self, Frontier};
use crate::record::AuditRecord;
use crate::store::{AuditStore, READ_RECORDS_MAX};

/// A row that could not be read as a record (e.g. a corrupt export line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// Where it was (line number in a file, 1-based).
    pub line: u64,
    /// Why it could not be read.
    pub message: String,
}

/// One input row of the verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// A record.
    Record(AuditRecord),
    /// Something in its place that is not a record.
    Unreadable(Unreadable),
}

impl From<AuditRecord> for Row {
    fn from(record: AuditRecord) -> Row {
        Row::Record(record)
    }
}

/// What happened to the first bad event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Its content, seq or hash fields were changed.
    Altered,
    /// It is missing.
    Removed,
    /// It is out of order.
    Reordered,
    /// A record that was never logged sits at this position.
    Inserted,
    /// The log ends before a signed checkpoint says it should.
    Truncated,
    /// Records in `seq..end_seq` were altered, removed, reordered or inserted and the
    /// chain recomputed over them; only a signed checkpoint shows it.
    Rewritten,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::Altered => "altered",
            ProblemKind::Removed => "removed",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Inserted => "inserted",
            ProblemKind::Truncated => "truncated",
            ProblemKind::Rewritten => "rewritten",
        })
    }
}

/// The first event that is not as it was logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventProblem {
    /// Its seq (for `Rewritten`, the first seq that may be affected).
    pub seq: u64,
    /// What happened.
    pub kind: ProblemKind,
    /// For `Rewritten`: the damage lies below this seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_seq: Option<u64>,
    /// The evidence, in words.
    pub detail: String,
}

/// What is wrong with a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointProblemKind {
    /// Not a well-formed signed checkpoint.
    Malformed,
    /// Not signed by any trusted key.
    UntrustedKey,
    /// A trusted key's signature does not verify: altered or forged.
    BadSignature,
    /// For another log.
    OriginMismatch,
    /// Its root is not the root of the records as presented.
    RootMismatch,
    /// Its chain head is not the hash of the record before its size.
    ChainHeadMismatch,
    /// It covers more records than there are.
    BeyondLog,
    /// More checkpoints than the verifier accepts.
    TooMany,
}

/// A checkpoint that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointProblem {
    /// Its position among the checkpoints given (0-based).
    pub index: usize,
    /// Its size, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    /// What is wrong.
    pub kind: CheckpointProblemKind,
    /// In words.
    pub detail: String,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The log's origin, when known.
    pub origin: Option<String>,
    /// Rows examined.
    pub events: u64,
    /// The first event that is not as logged.
    pub first_problem: Option<EventProblem>,
    /// Checkpoints given.
    pub checkpoints_total: usize,
    /// Checkpoints with a trusted signature that match the records.
    pub checkpoints_verified: usize,
    /// Checkpoints that failed, in the order given.
    pub checkpoint_problems: Vec<CheckpointProblem>,
    /// Size of the largest verified checkpoint.
    pub protected_size: u64,
    /// Events after it: chained, but not yet covered by a signature.
    pub unprotected_tail: u64,
    /// Root over all records, recomputed from their content.
    pub root_hash: Hash,
}

impl Report {
    /// True when no event and no checkpoint failed.
    pub fn is_intact(&self) -> bool {
        self.first_problem.is_none() && self.checkpoint_problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.origin.as_deref().unwrap_or("(unknown origin)");
        writeln!(
            f,
            "audit log {origin}: {} events, {} checkpoints ({} verified)",
            self.events, self.checkpoints_total, self.checkpoints_verified
        )?;
        match &self.first_problem {
            Some(p) => {
                let range = p
                    .end_seq
                    .map(|e| format!(" (somewhere in seq {}..{e})", p.seq))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "TAMPERED: first bad event: seq {} {}{range}: {}",
                    p.seq, p.kind, p.detail
                )?;
            }
            None => writeln!(f, "chain: intact, root {}", self.root_hash)?,
        }
        for p in &self.checkpoint_problems {
            let size = p
                .tree_size
                .map(|s| format!(" (size {s})"))
                .unwrap_or_default();
            writeln!(f, "BAD CHECKPOINT #{}{size}: {}", p.index, p.detail)?;
        }
        if self.unprotected_tail > 0 {
            writeln!(
                f,
                "warning: {} events after the last verified checkpoint (size {}) are not yet covered by a signature",
                self.unprotected_tail, self.protected_size
            )?;
        }
        Ok(())
    }
}

/// Limits of the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyLimits {
    /// Most checkpoints examined; further ones are reported as `TooMany`.
    pub checkpoints_max: usize,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits {
            checkpoints_max: 1_000_000,
        }
    }
}

/// Verifies `rows` (in storage order) against signed checkpoint `notes`.
pub fn verify<R: Into<Row>>(
    rows: impl IntoIterator<Item = R>,
    notes: &[String],
    trusted: &[CheckpointVerifier],
    origin: Option<&str>,
) -> Report {
    let mut verifier = Verifier::new(notes, trusted, origin, VerifyLimits::default());
    for row in rows {
        verifier.push(row.into());
    }
    verifier.finish()
}

/// Verifies everything `store` holds: all checkpoints, then all records in pages.
/// This is what a server-backed `ward audit verify` runs.
pub async fn verify_store<S: AuditStore>(
    store: &S,
    trusted: &[CheckpointVerifier],
    origin: Option<&str>,
    limits: VerifyLimits,
) -> Result<Report, S::Error> {
    let mut notes = Vec::new();
    let mut from = 0;
    while notes.len() <= limits.checkpoints_max {
        let page = store.read_checkpoints(from, READ_RECORDS_MAX).await?;
        let Some(last) = page.last() else { break };
        from = last.tree_size + 1;
        notes.extend(page.into_iter().map(|c| c.note));
    }
    let mut verifier = Verifier::new(&notes, trusted, origin, limits);
    let mut next = 0;
    loop {
        let page = store.read(next, READ_RECORDS_MAX).await?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for record in page {
            verifier.push(Row::Record(record));
        }
    }
    Ok(verifier.finish())
}

/// The streaming verifier behind [`verify`]: memory stays O(checkpoints + log n).
pub struct Verifier {
    origin: Option<String>,
    checkpoints_total: usize,
    by_size: BTreeMap<u64, Vec<(usize, Checkpoint)>>,
    checkpoint_problems: Vec<CheckpointProblem>,
    verified_sizes: Vec<u64>,
    first_mismatch: Option<u64>,
    tree: TreeCheck,
    chain: ChainCheck,
}

impl Verifier {
    /// A verifier for the given checkpoints.
    pub fn new(
        notes: &[String],
        trusted: &[CheckpointVerifier],
        origin: Option<&str>,
        limits: VerifyLimits,
    ) -> Verifier {
        let mut verifier = Verifier {
            origin: origin.map(str::to_owned),
            checkpoints_total: notes.len(),
            by_size: BTreeMap::new(),
            checkpoint_problems: Vec::new(),
            verified_sizes: Vec::new(),
            first_mismatch: None,
            tree: TreeCheck::default(),
            chain: ChainCheck::default(),
        };
        for (index, note) in notes.iter().enumerate() {
            if index >= limits.checkpoints_max {
                verifier.checkpoint_problem(
                    index,
                    None,
                    CheckpointProblemKind::TooMany,
                    "beyond checkpoints_max; not examined".into(),
                );
                continue;
            }
            verifier.admit(index, note, trusted);
        }
        verifier.compare_checkpoints();
        verifier
    }

    fn admit(&mut self, index: usize, note: &str, trusted: &[CheckpointVerifier]) {
        let cp = match checkpoint::open(note, trusted) {
            Ok(cp) => cp,
            Err(e) => {
                let size = note.lines().nth(1).and_then(|l| l.parse().ok());
                let kind = match e {
                    CheckpointError::UnknownKey(_) => CheckpointProblemKind::UntrustedKey,
                    CheckpointError::BadSignature(_) => CheckpointProblemKind::BadSignature,
                    CheckpointError::OriginMismatch { .. } => CheckpointProblemKind::OriginMismatch,
                    CheckpointError::Malformed(_) | CheckpointError::BadOrigin(_) => {
                        CheckpointProblemKind::Malformed
                    }
                };
                return self.checkpoint_problem(index, size, kind, e.to_string());
            }
        };
        if let Some(origin) = &self.origin {
            if cp.origin != *origin {
                let detail = format!("checkpoint is for log {:?}, not {origin:?}", cp.origin);
                return self.checkpoint_problem(
                    index,
                    Some(cp.tree_size),
                    CheckpointProblemKind::OriginMismatch,
                    detail,
                );
            }
        } else {
            self.origin = Some(cp.origin.clone());
        }
        self.by_size
            .entry(cp.tree_size)
            .or_default()
            .push((index, cp));
    }

    fn checkpoint_problem(
        &mut self,
        index: usize,
        tree_size: Option<u64>,
        kind: CheckpointProblemKind,
        detail: String,
    ) {
        self.checkpoint_problems.push(CheckpointProblem {
            index,
            tree_size,
            kind,
            detail,
        });
    }

    /// Feeds the next row in storage order.
    pub fn push(&mut self, row: Row) {
        self.tree.push(&row);
        self.compare_checkpoints();
        self.chain.push(row);
    }

    /// Compares the checkpoints of the current tree size.
    fn compare_checkpoints(&mut self) {
        let size = self.tree.frontier.size();
        let Some(checkpoints) = self.by_size.remove(&size) else {
            return;
        };
        let (root, head) = (self.tree.frontier.root(), self.tree.chain_head);
        for (index, cp) in checkpoints {
            let problem = if cp.root_hash != root {
                Some((
                    CheckpointProblemKind::RootMismatch,
                    "its root is not the root of these records: records before its size were changed",
                ))
            } else if cp.chain_head != head {
                Some((
                    CheckpointProblemKind::ChainHeadMismatch,
                    "its chain head is not the hash of the record before its size",
                ))
            } else {
                None
            };
            match problem {
                Some((kind, detail)) => {
                    self.first_mismatch.get_or_insert(size);
                    self.checkpoint_problem(index, Some(size), kind, detail.to_owned());
                }
                None => self.verified_sizes.push(size),
            }
        }
    }

    /// Ends the stream and returns the verdict.
    pub fn finish(mut self) -> Report {
        self.chain.finish();
        let events = self.tree.frontier.size();
        let beyond: Vec<(u64, Vec<(usize, Checkpoint)>)> =
            std::mem::take(&mut self.by_size).into_iter().collect();
        let truncated = beyond.first().map(|(size, _)| *size);
        for (size, checkpoints) in beyond {
            for (index, _) in checkpoints {
                let detail = format!("signed for {size} events but the log holds {events}");
                self.checkpoint_problem(
                    index,
                    Some(size),
                    CheckpointProblemKind::BeyondLog,
                    detail,
                );
            }
        }
        let first_problem = self.first_problem(events, truncated);
        let limit = first_problem.as_ref().map_or(u64::MAX, |p| p.seq);
        let protected_size = self
            .verified_sizes
            .iter()
            .copied()
            .filter(|&s| s <= limit)
            .max()
            .unwrap_or(0);
        self.checkpoint_problems.sort_by_key(|p| p.index);
        Report {
            origin: self.origin,
            events,
            first_problem,
            checkpoints_total: self.checkpoints_total,
            checkpoints_verified: self.verified_sizes.len(),
            checkpoint_problems: self.checkpoint_problems,
            protected_size,
            unprotected_tail: events.saturating_sub(protected_size),
            root_hash: self.tree.frontier.root(),
        }
    }

    /// Chooses the earliest evidence: the chain's, a mismatching checkpoint's, or a cut.
    fn first_problem(&self, events: u64, truncated: Option<u64>) -> Option<EventProblem> {
        let rewritten = self.first_mismatch.map(|end| {
            let start = self.verified_sizes.iter().copied().filter(|&s| s < end).max().unwrap_or(0);
            EventProblem {
                seq: start,
                kind: ProblemKind::Rewritten,
                end_seq: Some(end),
                detail: format!(
                    "the signed checkpoint of size {end} does not match the records although their chain links up: records {start}..{end} were changed and re-hashed"
                ),
            }
        });
        match (self.chain.first.clone(), rewritten) {
            (Some(chain), Some(rewritten))
                if rewritten.end_seq.is_some_and(|end| end <= chain.seq) =>
            {
                Some(rewritten)
            }
            (Some(chain), _) => Some(chain),
            (None, Some(rewritten)) => Some(rewritten),
            (None, None) => truncated.map(|size| EventProblem {
                seq: events,
                kind: ProblemKind::Truncated,
                end_seq: Some(size),
                detail: format!(
                    "a signed checkpoint covers {size} events but the log ends after {events}"
                ),
            }),
        }
    }
}

/// Recomputes chain hashes from content alone and builds the tree over them.
#[derive(Default)]
struct TreeCheck {
    frontier: Frontier,
    chain_head: Hash,
}

impl TreeCheck {
    fn push(&mut self, row: &Row) {
        let position = self.frontier.size();
        let hash = match row {
            Row::Record(r) => AuditRecord::entry_hash(&self.chain_head, position, &r.event_json),
            // Nothing can be recomputed from an unreadable row: a value no checkpoint can match.
            Row::Unreadable(_) => Hash::of_parts(&[b"unreadable row", self.chain_head.as_bytes()]),
        };
        self.frontier.push(merkle::leaf_hash(hash.as_bytes()));
        self.chain_head = hash;
    }
}

/// Checks the stored chain fields and classifies the first break.
#[derive(Default)]
struct ChainCheck {
    expected: u64,
    /// `(prev_hash, hash)` of the last accepted record.
    last: Option<(Hash, Hash)>,
    pending: Option<Row>,
    first: Option<EventProblem>,
}

impl ChainCheck {
    fn push(&mut self, row: Row) {
        if self.first.is_some() {
            return;
        }
        if let Some(previous) = self.pending.take() {
            self.examine(previous, Some(&row));
        }
        self.pending = Some(row);
    }

    fn finish(&mut self) {
        if let Some(last) = self.pending.take()
            && self.first.is_none()
        {
            self.examine(last, None);
        }
    }

    fn examine(&mut self, row: Row, next: Option<&Row>) {
        let e = self.expected;
        let p = self.last.map_or(Hash::ZERO, |(_, h)| h);
        let p_prev = self.last.map(|(prev, _)| prev);
        let record = match row {
            Row::Record(r) => r,
            Row::Unreadable(u) => {
                return self.fail(
                    e,
                    ProblemKind::Altered,
                    format!("line {} is not a readable record: {}", u.line, u.message),
                );
            }
        };
        if record.seq == e && record.hashes_at(e) && record.prev_hash == p {
            self.expected += 1;
            self.last = Some((record.prev_hash, record.hash));
            return;
        }
        let (seq, kind, detail) = classify(&record, next, e, p, p_prev);
        self.fail(seq, kind, detail);
    }

    fn fail(&mut self, seq: u64, kind: ProblemKind, detail: String) {
        self.first = Some(EventProblem {
            seq,
            kind,
            end_seq: None,
            detail,
        });
    }
}

fn next_record(next: Option<&Row>) -> Option<&AuditRecord> {
    match next {
        Some(Row::Record(r)) => Some(r),
        _ => None,
    }
}

/// Names the first bad seq given a record `r` that does not continue the chain at
/// seq `e` after hash `p` (whose own `prev_hash` was `p_prev`).
fn classify(
    r: &AuditRecord,
    next: Option<&Row>,
    e: u64,
    p: Hash,
    p_prev: Option<Hash>,
) -> (u64, ProblemKind, String) {
    let next = next_record(next);
    if r.seq > e {
        if next.is_some_and(|n| n.seq == e) {
            return (
                e,
                ProblemKind::Reordered,
                format!("seq {} comes before seq {e}", r.seq),
            );
        }
        return (
            e,
            ProblemKind::Removed,
            format!(
                "seq {e}..{} missing: the next record present is seq {}",
                r.seq, r.seq
            ),
        );
    }
    if r.seq < e {
        if r.seq + 1 == e && Some(r.prev_hash) == p_prev && r.is_self_consistent() {
            return (
                r.seq,
                ProblemKind::Inserted,
                format!(
                    "two records claim seq {} with the same predecessor: one was inserted",
                    r.seq
                ),
            );
        }
        return (
            r.seq,
            ProblemKind::Inserted,
            format!(
                "a second record with seq {} appears where seq {e} belongs",
                r.seq
            ),
        );
    }
    // r.seq == e: its own fields or its link are wrong.
    if r.hashes_at(e) {
        if e > 0 && Some(r.prev_hash) == p_prev {
            return (
                e - 1,
                ProblemKind::Inserted,
                format!("seq {e} links past seq {}: that record was inserted", e - 1),
            );
        }
        let culprit = e.saturating_sub(1);
        return (
            culprit,
            ProblemKind::Altered,
            format!(
                "seq {e} names a different predecessor hash: seq {culprit} was changed and re-hashed"
            ),
        );
    }
    if r.hashes_at(e + 1) {
        if next.is_some_and(|n| n.hashes_at(e) && n.prev_hash == p) {
            return (
                e,
                ProblemKind::Reordered,
                format!("the records at seq {e} and {} were swapped", e + 1),
            );
        }
        return (
            e,
            ProblemKind::Removed,
            format!(
                "the record at seq {e} was logged as seq {}: seq {e} was removed and later records renumbered",
                e + 1
            ),
        );
    }
    if e > 0 && r.hashes_at(e - 1) && Some(r.prev_hash) == p_prev {
        return (
            e - 1,
            ProblemKind::Inserted,
            format!(
                "the record at seq {e} was logged as seq {}: a record was inserted before it",
                e - 1
            ),
        );
    }
    (
        e,
        ProblemKind::Altered,
        format!("seq {e}'s hash does not match its content"),
    )
}
