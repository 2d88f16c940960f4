//! The pickle memo, kept in memory bounded by named limits whatever the pickle size.
//!
//! Only values that can matter for judging a callable are kept:
//! - globals, modules, dtypes, array wrappers and tuples holding them ("anchors"), counted against [`crate::Limits::pickle_memo_globals_max`]. Python
//!   memoizes each global once and refers to it by BINGET ever after, so they must
//!   stay; they are few in real pickles.
//! - strings that could be (part of) a module or attribute name, small tuples and
//!   tracked dicts ("candidates"), within [`crate::Limits::pickle_memo_kept_bytes_max`]
//!   (estimated). When it is full the oldest candidate is evicted, except strings
//!   already used to name a global, which become anchors: Python's pickler re-uses a
//!   memoized module string for the next global of the same module.
//!
//! Everything else is remembered only as "stored" (runs of consecutive indexes), so a
//! GET of it yields an opaque value: calling one, or naming a global with one, is
//! judged as a callable computed at load time. Fail closed, never a false "never
//! stored".

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::machine::Value;

/// Longest string kept as a possible name (longer than any real dotted module path).
const NAME_BYTES_MAX: usize = 256;
/// Strings up to this many bytes are kept whatever their characters: separators and
/// `str.replace` arguments used to build names at load time.
const ANY_BYTES_MAX: usize = 4;
/// Estimated bytes of bookkeeping per kept entry.
const ENTRY_BYTES: u64 = 64;
/// Estimated bytes of a tracked dict's entries.
const DICT_BYTES: u64 = 2048;
/// Tuple items visited when classifying a value; bigger trees are kept as anchors.
const WALK_MAX: usize = 64;

/// Hashes memo indexes by one multiplication: a PUT or GET per opcode makes SipHash
/// the analyser's main cost, and flooding the maps gains an attacker nothing beyond
/// slowness bounded by the entry limits.
#[derive(Default)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IndexHash = BuildHasherDefault<IndexHasher>;

/// Named bounds of the memo.
#[derive(Debug, Clone, Copy)]
pub struct MemoBounds {
    pub ranges_max: usize,
    pub globals_max: usize,
    pub kept_bytes_max: u64,
}

/// Why a PUT could not be recorded faithfully.
pub enum PutError {
    /// The stored indexes are too fragmented to track (never in pickles Python writes).
    Ranges,
}

/// What a GET finds.
pub enum Got {
    Value(Value),
    /// Stored, but its value was not kept (or was dropped past a limit).
    Unkept,
    NeverStored,
}

/// The memo of one pickle.
#[derive(Default)]
pub struct Memo {
    /// Stored indexes as disjoint runs `start -> end` (exclusive).
    ranges: BTreeMap<u64, u64>,
    /// Distinct indexes stored: where MEMOIZE stores next.
    count: u64,
    anchors: HashMap<u64, Value, IndexHash>,
    /// Candidates with their cost and insertion number.
    candidates: HashMap<u64, (Value, u64, u64), IndexHash>,
    /// Candidates by index and insertion number, oldest first; entries whose number
    /// no longer matches were overwritten since.
    order: VecDeque<(u64, u64)>,
    inserted: u64,
    candidate_bytes: u64,
    /// Strings that have named a global in this pickle.
    names: HashSet<String>,
    /// Whether an entry that could matter was dropped past a limit.
    pub dropped: bool,
}

impl Memo {
    /// Where MEMOIZE stores: the number of distinct indexes stored so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Stores `value` at `index`.
    pub fn put(&mut self, index: u64, value: Value, bounds: MemoBounds) -> Result<(), PutError> {
        self.mark_stored(index, bounds)?;
        self.forget(index);
        match classify(&value) {
            Class::Anchor => self.anchor(index, value, bounds),
            Class::Candidate(cost) => self.candidate(index, value, cost, bounds),
            Class::Unkept => {}
        }
        Ok(())
    }

    /// The value at `index`.
    pub fn get(&self, index: u64) -> Got {
        if let Some(v) = self.anchors.get(&index) {
            return Got::Value(v.clone());
        }
        if let Some((v, ..)) = self.candidates.get(&index) {
            return Got::Value(v.clone());
        }
        let stored = self
            .ranges
            .range(..=index)
            .next_back()
            .is_some_and(|(_, &end)| index < end);
        if stored {
            Got::Unkept
        } else {
            Got::NeverStored
        }
    }

    /// Remembers that `s` named a global, so its memo entry is never evicted.
    pub fn named(&mut self, s: &str, bounds: MemoBounds) {
        if self.names.len() < bounds.globals_max && !self.names.contains(s) {
            self.names.insert(s.to_owned());
        }
    }

    fn mark_stored(&mut self, index: u64, bounds: MemoBounds) -> Result<(), PutError> {
        let before = self
            .ranges
            .range(..=index)
            .next_back()
            .map(|(&s, &e)| (s, e));
        if let Some((_, end)) = before
            && index < end
        {
            return Ok(());
        }
        let next = index.checked_add(1).ok_or(PutError::Ranges)?;
        let end = self.ranges.remove(&next).unwrap_or(next);
        match before {
            Some((start, e)) if e == index => {
                self.ranges.insert(start, end);
            }
            _ => {
                if self.ranges.len() >= bounds.ranges_max {
                    return Err(PutError::Ranges);
                }
                self.ranges.insert(index, end);
            }
        }
        self.count += 1;
        Ok(())
    }

    fn forget(&mut self, index: u64) {
        self.anchors.remove(&index);
        if let Some((_, cost, _)) = self.candidates.remove(&index) {
            self.candidate_bytes = self.candidate_bytes.saturating_sub(cost);
        }
    }

    fn anchor(&mut self, index: u64, value: Value, bounds: MemoBounds) {
        if self.anchors.len() >= bounds.globals_max {
            self.dropped = true;
            return;
        }
        self.anchors.insert(index, value);
    }

    fn candidate(&mut self, index: u64, value: Value, cost: u64, bounds: MemoBounds) {
        while self.candidate_bytes.saturating_add(cost) > bounds.kept_bytes_max {
            if !self.evict(bounds) {
                self.dropped = true;
                return;
            }
        }
        self.candidate_bytes = self.candidate_bytes.saturating_add(cost);
        self.inserted += 1;
        self.candidates.insert(index, (value, cost, self.inserted));
        self.order.push_back((index, self.inserted));
        if self.order.len() > 2 * self.candidates.len() + 16 {
            // Overwritten entries pile up when a pickle re-uses indexes: drop them.
            let live = &self.candidates;
            self.order
                .retain(|(i, n)| live.get(i).is_some_and(|(.., m)| m == n));
        }
    }

    /// Evicts the oldest candidate (a name used by a global becomes an anchor instead);
    /// false if there is none.
    fn evict(&mut self, bounds: MemoBounds) -> bool {
        while let Some((index, n)) = self.order.pop_front() {
            if self.candidates.get(&index).is_none_or(|(.., m)| *m != n) {
                continue; // overwritten since
            }
            let Some((value, cost, _)) = self.candidates.remove(&index) else {
                continue;
            };
            self.candidate_bytes = self.candidate_bytes.saturating_sub(cost);
            if value.str().is_some_and(|s| self.names.contains(s)) {
                self.anchor(index, value, bounds);
            } else {
                self.dropped = true;
            }
            return true;
        }
        false
    }
}

enum Class {
    Anchor,
    /// Kept while the budget lasts, at this estimated cost in bytes.
    Candidate(u64),
    Unkept,
}

fn classify(v: &Value) -> Class {
    let mut visited = 0usize;
    let mut cost = ENTRY_BYTES;
    match walk(v, &mut visited, &mut cost) {
        Some(true) | None => Class::Anchor,
        Some(false) if matters(v) => Class::Candidate(cost),
        Some(false) => Class::Unkept,
    }
}

/// Whether `v` holds an anchor value (None if too big to tell), adding up its cost.
fn walk(v: &Value, visited: &mut usize, cost: &mut u64) -> Option<bool> {
    *visited += 1;
    if *visited > WALK_MAX {
        return None;
    }
    *cost = cost.saturating_add(32);
    match v {
        Value::Callable(_) | Value::Module(_) | Value::Dtype(_) | Value::ArrayWrapper => Some(true),
        // Filled after it is memoized: charged for the entries it may get.
        Value::Dict(_) => {
            *cost = cost.saturating_add(DICT_BYTES);
            Some(false)
        }
        Value::Str(s) => {
            *cost = cost.saturating_add(s.len() as u64);
            Some(false)
        }
        Value::Tuple(_, items) => {
            let mut any = false;
            for item in items.iter() {
                any |= walk(item, visited, cost)?;
            }
            Some(any)
        }
        _ => Some(false),
    }
}

/// Whether a value holding no anchor is worth keeping: a possible name, or a tuple
/// that may be call arguments or an array shape.
fn matters(v: &Value) -> bool {
    match v {
        Value::Tuple(..) | Value::Dict(_) => true,
        _ => v.str().is_some_and(name_like),
    }
}

/// A string that could be (part of) a module or attribute name, or be turned into one
/// by the string operations the machine evaluates: up to [`NAME_BYTES_MAX`] bytes of
/// identifier characters and dots, or any string of up to [`ANY_BYTES_MAX`] bytes.
fn name_like(s: &str) -> bool {
    s.len() <= ANY_BYTES_MAX
        || (s.len() <= NAME_BYTES_MAX
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b >= 0x80))
}

#[cfg(test)]
mod tests {
    use super::name_like;

    fn check(input: &str, expected: bool) {
        assert_eq!(name_like(input), expected, "{input:?}");
    }

    #[test]
    fn names() {
        let long = "a".repeat(300);
        let cases: &[(&str, bool)] = &[
            ("os", true),
            ("numpy.core.multiarray", true),
            ("sklearn.ensemble._forest", true),
            ("", true),
            (".", true),
            ("rot-13", false),
            ("string-42", false),
            ("a b c d e", false),
            ("ünïcode_name", true),
            (&long, false),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }
}
