//! A string that must never be printed: passwords, generated secrets, bearer tokens.
//!
//! [`SecretString`] has no `Display`, its `Debug` prints `[redacted]`, and its
//! memory is wiped on drop. Reading the value takes an explicit
//! [`SecretString::expose`], so every place that handles the plain text is
//! greppable.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret value: wiped on drop, never shown by `Debug`, no `Display`.
#[derive(Clone, Default)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret. The caller's `String` moves in, so no unwiped copy remains.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The plain text. Call only where the secret must leave the process
    /// (shown once to its owner, sent to the client) or be hashed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes; safe to reveal, used for limit checks.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Compares two byte strings in time independent of their contents.
///
/// The length is not hidden: callers compare fixed-length values (digests,
/// MACs) or accept that the length of a secret is public.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretString::from("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
    }

    #[test]
    fn ct_eq_table() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"ab", false),
            (b"ab", b"abc", false),
            (b"\x00", b"", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(ct_eq(a, b), *want, "{a:?} vs {b:?}");
        }
    }
}
