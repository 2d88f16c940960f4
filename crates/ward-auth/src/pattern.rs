//! Repository patterns and the small glob matcher shared by the whole crate.
//!
//! Repository patterns (`ml/*`, `ml/**`, `team-*/models`, `*`) are used by role
//! bindings, policy `Resource`s and immutability rules, so they mean the same
//! thing everywhere:
//!
//! | pattern | matches | does not match |
//! | --- | --- | --- |
//! | `*` or `**` alone | every repository, and registry-wide resources (catalog, users, audit) | — |
//! | `ml/fraud` | `ml/fraud` | `ml/fraud/v2` |
//! | `ml/*` | `ml/fraud` (exactly one more level) | `ml`, `ml/fraud/v2` |
//! | `ml/**` | `ml/fraud`, `ml/fraud/v2` (one or more levels) | `ml` |
//! | `ml/fraud-*` | `ml/fraud-x` (`*` stays inside one path segment) | `ml/fraud-x/y` |
//!
//! `**` is allowed only as the last segment; a repository pattern never matches
//! a registry-wide resource unless it is the bare `*`/`**`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest repository name (and pattern) accepted, in bytes; Docker's limit.
pub const REPOSITORY_NAME_BYTES_MAX: usize = 255;
/// Longest tag accepted, in bytes; the OCI distribution spec's limit.
pub const TAG_BYTES_MAX: usize = 128;

/// Matches `text` against a glob where `*` is any run of characters and `?`
/// exactly one. Runs in O(len(pattern) × len(text)) at worst (one backtrack
/// point), never exponentially, so hostile patterns and inputs are safe.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    glob_match_with(pattern, text, |a, b| a == b)
}

/// [`glob_match`] with ASCII case folding (action names are case-insensitive).
pub(crate) fn glob_match_ignore_ascii_case(pattern: &str, text: &str) -> bool {
    glob_match_with(pattern, text, |a, b| a.eq_ignore_ascii_case(&b))
}

fn utf8_len(first_byte: u8) -> usize {
    match first_byte {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn glob_match_with(pattern: &str, text: &str, eq: impl Fn(u8, u8) -> bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` seen and the text position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                ti += utf8_len(t[ti]);
            }
            Some(&c) if eq(c, t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` absorb one more character and retry.
                Some((sp, st)) => {
                    let next = st + utf8_len(t[st]);
                    star = Some((sp, next));
                    pi = sp + 1;
                    ti = next;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Why a repository pattern, name or tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Nothing was given.
    #[error("empty pattern")]
    Empty,
    /// Longer than the limit.
    #[error("pattern is {len} bytes, longer than the limit of {max}")]
    TooLong {
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `a//b`, a leading or trailing `/`.
    #[error("pattern {pattern:?} has an empty path segment")]
    EmptySegment {
        /// The offending pattern.
        pattern: String,
    },
    /// A character outside `[a-z0-9._-]`, `/` and `*`.
    #[error(
        "pattern {pattern:?} contains {ch:?}; repository names are lowercase letters, digits, '.', '_', '-' and '/'"
    )]
    BadCharacter {
        /// The offending pattern.
        pattern: String,
        /// The character.
        ch: char,
    },
    /// `**` used anywhere but as the whole last segment, or `***`.
    #[error("pattern {pattern:?}: '**' may only appear as the whole last segment (like 'ml/**')")]
    MisplacedDoubleStar {
        /// The offending pattern.
        pattern: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// Bare `*` or `**`: everything, including registry-wide resources.
    Everything,
    /// Per-segment globs; `any_depth_tail` is a trailing `**`.
    Segments { any_depth_tail: bool },
}

/// A validated repository pattern; see the module documentation for its meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoPattern {
    text: Box<str>,
    shape: Shape,
}

impl RepoPattern {
    /// Parses and validates a pattern.
    pub fn new(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > REPOSITORY_NAME_BYTES_MAX {
            return Err(PatternError::TooLong {
                len: text.len(),
                max: REPOSITORY_NAME_BYTES_MAX,
            });
        }
        if text == "*" || text == "**" {
            return Ok(Self {
                text: text.into(),
                shape: Shape::Everything,
            });
        }
        let owned = || text.to_owned();
        if let Some(ch) = text
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '/' | '*'))
        {
            return Err(PatternError::BadCharacter {
                pattern: owned(),
                ch,
            });
        }
        let segment_count = text.split('/').count();
        let mut any_depth_tail = false;
        for (i, segment) in text.split('/').enumerate() {
            if segment.is_empty() {
                return Err(PatternError::EmptySegment { pattern: owned() });
            }
            if segment.contains("**") {
                if segment != "**" || i + 1 != segment_count {
                    return Err(PatternError::MisplacedDoubleStar { pattern: owned() });
                }
                any_depth_tail = true;
            }
        }
        Ok(Self {
            text: text.into(),
            shape: Shape::Segments { any_depth_tail },
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this pattern covers everything (`*` or `**`).
    pub fn is_everything(&self) -> bool {
        self.shape == Shape::Everything
    }

    /// Whether the pattern covers `repository`; `None` stands for a
    /// registry-wide resource, which only `*`/`**` cover.
    pub fn matches(&self, repository: Option<&str>) -> bool {
        let any_depth_tail = match self.shape {
            Shape::Everything => return true,
            Shape::Segments { any_depth_tail } => any_depth_tail,
        };
        let Some(repository) = repository else {
            return false;
        };
        let mut names = repository.split('/');
        for pattern in self.text.split('/') {
            if pattern == "**" {
                // Valid patterns have `**` only last: it needs at least one more segment.
                return any_depth_tail && names.next().is_some_and(|n| !n.is_empty());
            }
            match names.next() {
                Some(name) if glob_match(pattern, name) => {}
                _ => return false,
            }
        }
        names.next().is_none()
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for RepoPattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for RepoPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for RepoPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether `name` is a valid OCI repository name:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// at most [`REPOSITORY_NAME_BYTES_MAX`] bytes.
pub fn is_valid_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= REPOSITORY_NAME_BYTES_MAX
        && name.split('/').all(is_valid_path_component)
}

fn is_valid_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators: one '.', one or two '_', or any run of '-'; never mixed, never adjacent otherwise.
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|&&c| c == b).count();
        let ok = match b {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        i += run;
        // A separator run must be followed by a letter or digit, never another separator.
        if !ok || !bytes.get(i).is_some_and(|&c| alnum(c)) {
            return false;
        }
    }
    true
}

/// Whether `tag` is a valid OCI tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    bytes.len() <= TAG_BYTES_MAX
        && (first.is_ascii_alphanumeric() || first == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let cases = [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("a*", "abc", true),
            ("a*", "bac", false),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "aéc", true),
            ("*é*", "caféx", true),
            ("prod-*", "prod-1", true),
            ("prod-*", "prod", false),
            ("*-rc*", "v1.0-rc2", true),
            ("**", "x", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXcYb", false),
            ("ABC", "abc", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} ~ {text:?}");
        }
        assert!(glob_match_ignore_ascii_case(
            "registry:delete*",
            "registry:DeleteRepository"
        ));
        assert!(!glob_match_ignore_ascii_case(
            "registry:delete",
            "registry:DeleteRepository"
        ));
    }

    /// The obvious exponential definition, as a reference.
    fn reference_glob(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference_glob(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && reference_glob(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference_glob(rest, &t[1..]),
        }
    }

    #[test]
    fn glob_agrees_with_the_reference_on_random_inputs() {
        // xorshift64: deterministic, so a failure always reproduces.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pick = |r: u64, alphabet: &[char], len: usize| -> String {
            (0..len)
                .map(|i| alphabet[((r >> (i * 3)) as usize) % alphabet.len()])
                .collect()
        };
        for _ in 0..20_000 {
            let (a, b, c) = (next(), next(), next());
            let pattern = pick(a, &['a', 'b', '*', '?', 'é'], (c % 7) as usize);
            let text = pick(b, &['a', 'b', 'é'], ((c >> 8) % 9) as usize);
            let p: Vec<char> = pattern.chars().collect();
            let t: Vec<char> = text.chars().collect();
            assert_eq!(
                glob_match(&pattern, &text),
                reference_glob(&p, &t),
                "{pattern:?} ~ {text:?}"
            );
        }
    }

    #[test]
    fn glob_is_not_exponential() {
        let text = "a".repeat(4000);
        let pattern = format!("{}b", "a*".repeat(200));
        assert!(!glob_match(&pattern, &text));
    }

    #[test]
    fn repo_pattern_matching_table() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("*", Some("ml"), true),
            ("*", Some("ml/fraud/v2"), true),
            ("*", None, true),
            ("**", Some("a/b/c"), true),
            ("**", None, true),
            ("ml", Some("ml"), true),
            ("ml", Some("ml/fraud"), false),
            ("ml", None, false),
            ("ml/fraud", Some("ml/fraud"), true),
            ("ml/fraud", Some("ml/fraud/v2"), false),
            ("ml/fraud", Some("ml"), false),
            ("ml/*", Some("ml/fraud"), true),
            ("ml/*", Some("ml"), false),
            ("ml/*", Some("ml/fraud/v2"), false),
            ("ml/*", Some("mlx/fraud"), false),
            ("ml/*", None, false),
            ("ml/**", Some("ml/fraud"), true),
            ("ml/**", Some("ml/fraud/v2/x"), true),
            ("ml/**", Some("ml"), false),
            ("ml/**", Some("mlops/fraud"), false),
            ("ml/**", None, false),
            ("ml/fraud-*", Some("ml/fraud-x"), true),
            ("ml/fraud-*", Some("ml/fraud-x/y"), false),
            ("team-*/models", Some("team-a/models"), true),
            ("team-*/models", Some("team-a/other"), false),
            ("*/models/**", Some("a/models/b"), true),
            ("*/models/**", Some("a/b/models/c"), false),
        ];
        for (pattern, repo, want) in cases {
            let p = RepoPattern::new(pattern).unwrap();
            assert_eq!(p.matches(*repo), *want, "{pattern} vs {repo:?}");
        }
    }

    #[test]
    fn repo_pattern_rejections() {
        let long = "a".repeat(256);
        let cases: &[(&str, PatternError)] = &[
            ("", PatternError::Empty),
            (
                &long,
                PatternError::TooLong {
                    len: 256,
                    max: REPOSITORY_NAME_BYTES_MAX,
                },
            ),
            (
                "ML/x",
                PatternError::BadCharacter {
                    pattern: "ML/x".into(),
                    ch: 'M',
                },
            ),
            (
                "repository:ml",
                PatternError::BadCharacter {
                    pattern: "repository:ml".into(),
                    ch: ':',
                },
            ),
            (
                "ml//x",
                PatternError::EmptySegment {
                    pattern: "ml//x".into(),
                },
            ),
            (
                "/ml",
                PatternError::EmptySegment {
                    pattern: "/ml".into(),
                },
            ),
            (
                "ml/",
                PatternError::EmptySegment {
                    pattern: "ml/".into(),
                },
            ),
            (
                "**/ml",
                PatternError::MisplacedDoubleStar {
                    pattern: "**/ml".into(),
                },
            ),
            (
                "ml/a**",
                PatternError::MisplacedDoubleStar {
                    pattern: "ml/a**".into(),
                },
            ),
            (
                "ml/***",
                PatternError::MisplacedDoubleStar {
                    pattern: "ml/***".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(RepoPattern::new(text).unwrap_err(), *want, "{text:?}");
        }
    }

    #[test]
    fn repo_pattern_serde_round_trip_and_validation() {
        let p: RepoPattern = serde_json::from_str("\"ml/**\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"ml/**\"");
        let err = serde_json::from_str::<RepoPattern>("\"ml//x\"").unwrap_err();
        assert!(err.to_string().contains("empty path segment"), "{err}");
    }

    #[test]
    fn repository_names_table() {
        let cases = [
            ("ml", true),
            ("ml/fraud", true),
            ("a.b_c__d---e/f", true),
            ("library/ubuntu", true),
            ("", false),
            ("ML", false),
            ("ml/", false),
            ("/ml", false),
            ("ml//x", false),
            ("-ml", false),
            ("ml-", false),
            ("a..b", false),
            ("a___b", false),
            ("a._b", false),
            ("localhost:5000/ml", false),
            ("ml/fraud:tag", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_valid_repository_name(name), want, "{name:?}");
        }
        assert!(!is_valid_repository_name(&"a".repeat(256)));
        assert!(is_valid_repository_name(&"a".repeat(255)));
    }

    #[test]
    fn tags_table() {
        let cases = [
            ("latest", true),
            ("v1.0.0", true),
            ("_x", true),
            ("sha256-abc.sig", true),
            ("", false),
            (".x", false),
            ("-x", false),
            ("a/b", false),
            ("a:b", false),
        ];
        for (tag, want) in cases {
            assert_eq!(is_valid_tag(tag), want, "{tag:?}");
        }
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }
}
