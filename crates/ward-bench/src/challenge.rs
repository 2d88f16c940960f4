//! A parser for `WWW-Authenticate` (RFC 9110 §11.6.1) as registries send it.
//!
//! The header comes from the server under test, so the parser reports rather than
//! bails: it returns every challenge it could read plus a note for each part it could
//! not. Commas separate challenges *and* parameters, and may also sit inside quoted
//! values (`scope="repository:a:pull,push"`), so the split is done by a small lexer.

/// One authentication challenge, such as `Bearer realm="...",service="..."`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (compare with [`Challenge::is`]).
    pub scheme: String,
    /// Parameters in order of appearance; names as sent.
    pub params: Vec<(String, String)>,
    /// A token68 in place of parameters (`Negotiate abc==`).
    pub token68: Option<String>,
}

impl Challenge {
    /// Whether this challenge uses `scheme` (schemes are case-insensitive).
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first parameter called `name` (names are case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a header held: the challenges read, and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Challenges in order of appearance.
    pub challenges: Vec<Challenge>,
    /// One line per malformed part, with the byte offset where it starts.
    pub problems: Vec<String>,
}

/// Parses one `WWW-Authenticate` header value.
pub fn parse(header: &str) -> Parsed {
    let mut lexer = Lexer {
        s: header.as_bytes(),
        pos: 0,
    };
    let mut parsed = Parsed::default();
    loop {
        lexer.skip(|b| b == b',' || is_space(b));
        if lexer.at_end() {
            return parsed;
        }
        let start = lexer.pos;
        let scheme = lexer.take(is_tchar);
        if scheme.is_empty() {
            parsed.problems.push(format!(
                "unexpected {:?} at byte {start}",
                lexer.peek_char()
            ));
            lexer.skip_past_comma();
            continue;
        }
        let mut challenge = Challenge {
            scheme,
            ..Challenge::default()
        };
        read_params(&mut lexer, &mut challenge, &mut parsed.problems);
        parsed.challenges.push(challenge);
    }
}

/// Reads the token68 or the parameters after a scheme, stopping before the next scheme.
fn read_params(lexer: &mut Lexer<'_>, challenge: &mut Challenge, problems: &mut Vec<String>) {
    lexer.skip(is_space);
    if let Some(token68) = lexer.try_token68() {
        challenge.token68 = Some(token68);
        return;
    }
    loop {
        lexer.skip(|b| b == b',' || is_space(b));
        let start = lexer.pos;
        let name = lexer.take(is_tchar);
        lexer.skip(is_space);
        if name.is_empty() || lexer.peek() != Some(b'=') {
            // Either the end, or the scheme of the next challenge.
            lexer.pos = start;
            return;
        }
        lexer.pos += 1;
        lexer.skip(is_space);
        let value = lexer.value(problems);
        if challenge.param(&name).is_some() {
            problems.push(format!(
                "parameter {name:?} repeated at byte {start}; the first one is used"
            ));
        }
        challenge.params.push((name, value));
        lexer.skip(is_space);
        match lexer.peek() {
            None | Some(b',') => {}
            Some(other) => {
                problems.push(format!(
                    "expected ',' after parameter at byte {}, found {:?}",
                    lexer.pos,
                    char::from(other)
                ));
                lexer.skip_past_comma();
            }
        }
    }
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_char(&self) -> char {
        self.peek().map_or('\0', char::from)
    }

    fn skip(&mut self, pred: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
    }

    fn skip_past_comma(&mut self) {
        self.skip(|b| b != b',');
    }

    fn take(&mut self, pred: impl Fn(u8) -> bool) -> String {
        let start = self.pos;
        self.skip(pred);
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }

    /// A token68 is a run of its characters and trailing `=`, followed by the end or a comma.
    /// Anything else (notably `name=value`) leaves the position unchanged.
    fn try_token68(&mut self) -> Option<String> {
        let start = self.pos;
        self.skip(is_token68_char);
        if self.pos == start {
            return None;
        }
        self.skip(|b| b == b'=');
        let end = self.pos;
        self.skip(is_space);
        if self.at_end() || self.peek() == Some(b',') {
            return Some(String::from_utf8_lossy(&self.s[start..end]).into_owned());
        }
        self.pos = start;
        None
    }

    /// A quoted string (with backslash escapes) or a bare value running to the next comma
    /// or space; bare values are read leniently since some servers leave `:` unquoted.
    fn value(&mut self, problems: &mut Vec<String>) -> String {
        if self.peek() != Some(b'"') {
            return self.take(|b| b != b',' && !is_space(b));
        }
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => return String::from_utf8_lossy(&out).into_owned(),
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        out.push(escaped);
                        self.pos += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        problems.push(format!(
            "quoted string opened at byte {start} is not closed"
        ));
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobgen::Xoshiro256;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.to_owned(),
            params: params
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            token68: None,
        }
    }

    fn check(header: &str, expected: &[Challenge], problems_expected: usize) {
        let parsed = parse(header);
        assert_eq!(parsed.challenges, expected, "header {header:?}");
        assert_eq!(
            parsed.problems.len(),
            problems_expected,
            "header {header:?}: {:?}",
            parsed.problems
        );
    }

    #[test]
    fn well_formed_headers() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            ("", vec![]),
            ("Basic", vec![ch("Basic", &[])]),
            (
                r#"Basic realm="basic-realm""#,
                vec![ch("Basic", &[("realm", "basic-realm")])],
            ),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#,
                vec![ch(
                    "Bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/ubuntu:pull"),
                    ],
                )],
            ),
            (
                r#"Bearer realm="http://127.0.0.1:5000/token",service="ward",scope="repository:team/app:pull,push""#,
                vec![ch(
                    "Bearer",
                    &[
                        ("realm", "http://127.0.0.1:5000/token"),
                        ("service", "ward"),
                        ("scope", "repository:team/app:pull,push"),
                    ],
                )],
            ),
            (
                r#"Basic realm="r1", Bearer realm="r2",service="s""#,
                vec![
                    ch("Basic", &[("realm", "r1")]),
                    ch("Bearer", &[("realm", "r2"), ("service", "s")]),
                ],
            ),
            (
                "bearer REALM = \"x\" ,\tservice=plain",
                vec![ch("bearer", &[("REALM", "x"), ("service", "plain")])],
            ),
            (
                r#"Basic realm="a\"b\\c""#,
                vec![ch("Basic", &[("realm", r#"a"b\c"#)])],
            ),
            (r#"Bearer scope="""#, vec![ch("Bearer", &[("scope", "")])]),
            (
                "Bearer realm=http://h:1/token,scope=repository:a:pull",
                vec![ch(
                    "Bearer",
                    &[
                        ("realm", "http://h:1/token"),
                        ("scope", "repository:a:pull"),
                    ],
                )],
            ),
        ];
        for (header, expected) in cases {
            check(header, &expected, 0);
        }
    }

    #[test]
    fn token68_is_told_apart_from_parameters() {
        let parsed = parse(r#"Negotiate YIIB/w+x==, Basic realm="r""#);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.challenges.len(), 2);
        assert_eq!(parsed.challenges[0].token68.as_deref(), Some("YIIB/w+x=="));
        assert!(parsed.challenges[0].params.is_empty());
        assert_eq!(parsed.challenges[1], ch("Basic", &[("realm", "r")]));
    }

    #[test]
    fn malformed_headers_are_reported_and_the_rest_is_kept() {
        let cases: Vec<(&str, Vec<Challenge>, usize)> = vec![
            (
                r#"Bearer realm="never closed"#,
                vec![ch("Bearer", &[("realm", "never closed")])],
                1,
            ),
            (
                r#""oops", Basic realm="r""#,
                vec![ch("Basic", &[("realm", "r")])],
                1,
            ),
            ("=, Basic", vec![ch("Basic", &[])], 1),
            (
                r#"Bearer realm="r" junk, Basic realm="b""#,
                vec![
                    ch("Bearer", &[("realm", "r")]),
                    ch("Basic", &[("realm", "b")]),
                ],
                1,
            ),
            (
                r#"Bearer realm="a",realm="b""#,
                vec![ch("Bearer", &[("realm", "a"), ("realm", "b")])],
                1,
            ),
        ];
        for (header, expected, problems) in cases {
            check(header, &expected, problems);
        }
    }

    #[test]
    fn lookups_ignore_case_and_take_the_first_repeat() {
        let parsed = parse(r#"BEARER Realm="a",realm="b""#);
        let challenge = &parsed.challenges[0];
        assert!(challenge.is("Bearer"));
        assert_eq!(challenge.param("REALM"), Some("a"));
        assert_eq!(challenge.param("service"), None);
    }

    #[test]
    fn arbitrary_input_never_panics_and_always_terminates() {
        let alphabet = b"Bearer realm=\"\\,= \tx:/+";
        let mut rng = Xoshiro256::from_seed(5);
        for _ in 0..20_000 {
            let len = (rng.next_u64() % 40) as usize;
            let header: String = (0..len)
                .map(|_| char::from(alphabet[(rng.next_u64() % alphabet.len() as u64) as usize]))
                .collect();
            let parsed = parse(&header);
            assert!(parsed.challenges.len() <= header.len());
        }
    }
}
