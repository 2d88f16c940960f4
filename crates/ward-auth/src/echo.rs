//! Untrusted text made safe to put in an error message or a log line.

use std::fmt;

/// Characters of untrusted text kept in an [`Echo`].
const ECHO_CHARS_MAX: usize = 64;

/// Untrusted text, escaped (no control characters or ANSI escapes reach a
/// terminal or log), truncated to 64 characters, and printed quoted.
#[derive(Clone, PartialEq, Eq)]
pub struct Echo(String);

impl Echo {
    /// Escapes and truncates `text`.
    pub fn of(text: &str) -> Self {
        let mut out: String = text
            .chars()
            .take(ECHO_CHARS_MAX)
            .flat_map(char::escape_debug)
            .collect();
        if text.chars().nth(ECHO_CHARS_MAX).is_some() {
            out.push('…');
        }
        Echo(out)
    }
}

impl fmt::Display for Echo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl fmt::Debug for Echo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_truncates() {
        let cases = [
            ("plain", "\"plain\""),
            ("a\"b", "\"a\\\"b\""),
            ("\u{1b}[31mred", "\"\\u{1b}[31mred\""),
            ("line\nbreak", "\"line\\nbreak\""),
        ];
        for (input, want) in cases {
            assert_eq!(Echo::of(input).to_string(), want);
        }
        let long = Echo::of(&"x".repeat(100)).to_string();
        assert_eq!(long, format!("\"{}…\"", "x".repeat(64)));
    }
}
