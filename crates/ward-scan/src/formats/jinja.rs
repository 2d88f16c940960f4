//! Judges Jinja chat templates for server-side template injection.
//!
//! Template engines that are not sandboxed (and sandboxes with holes) let an
//! expression climb from any object to Python's internals: `()|attr('__class__')`,
//! `cycler.__init__.__globals__.os.popen(...)`. Real chat templates never touch a
//! dunder, never call `attr`, never build strings from character codes; they loop,
//! compare roles, call `raise_exception`, `namespace()` and `strftime_now`. So the
//! checks are on the code inside `{{ }}` and `{% %}` only: identifiers and decoded
//! string literals (escapes such as `\x5f` undone, adjacent literals joined) that name
//! internals, attribute chains on Jinja's globals, and computed `attr` names.

use crate::Severity;

/// What a template does that a chat template should not: (severity, what, for a person).
pub type Concern = (Severity, String);

/// Names that only an escape to Python uses, when reached as an attribute.
const INTERNAL_ATTRS: &[&str] = &[
    "mro",
    "subclasses",
    "globals",
    "builtins",
    "popen",
    "import_module",
    "getattr",
    "check_output",
    "os",
    "subprocess",
    "eval",
    "exec",
    "modules",
    "f_globals",
    "gi_frame",
    "tb_frame",
    "func_globals",
];

/// Jinja (and Flask) globals whose attributes lead to Python internals.
const GLOBALS: &[&str] = &[
    "cycler",
    "joiner",
    "namespace",
    "lipsum",
    "self",
    "request",
    "config",
    "url_for",
    "get_flashed_messages",
];

/// Callables a template has no business calling.
/// (`system` only as a call: `ns.system` may well hold a system prompt.)
const CALLS: &[&str] = &[
    "eval", "exec", "popen", "getattr", "compile", "open", "system",
];

/// String literals that name process or module machinery.
const LITERALS: &[&str] = &["popen", "subprocess", "check_output", "import_module"];

/// Every concern in `template`, worst first, at most `max` of them. Works on bytes
/// (Jinja's syntax is ASCII) one block at a time, so memory stays near the template's
/// own size.
pub fn judge(template: &str, max: usize) -> Vec<Concern> {
    let mut out = Vec::new();
    let t = template.as_bytes();
    let mut i = 0;
    while let (Some(&a), Some(&b)) = (t.get(i), t.get(i + 1)) {
        if a != b'{' || !matches!(b, b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        let close = if b == b'{' { b'}' } else { b };
        let (toks, next) = tokenize(t, i + 2, close);
        if b != b'#' {
            judge_region(&toks, &mut out);
        }
        i = next;
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|c| seen.insert(c.clone()));
    out.sort_by_key(|c| std::cmp::Reverse(c.0));
    out.truncate(max);
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Op(char),
    Num,
}

fn ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Tokenizes a block from `i` to the closer `close` followed by `}` (comments `{# #}`
/// are tokenized and dropped); returns the tokens and the index after the closer.
fn tokenize(t: &[u8], mut i: usize, close: u8) -> (Vec<Tok>, usize) {
    let mut toks = Vec::new();
    while let Some(&c) = t.get(i) {
        if c == close && t.get(i + 1) == Some(&b'}') {
            return (toks, i + 2);
        }
        if c == b'\'' || c == b'"' {
            let (s, next) = literal(t, i + 1, c);
            toks.push(Tok::Str(s));
            i = next;
        } else if ident_byte(c) && !c.is_ascii_digit() {
            let start = i;
            while t.get(i).copied().is_some_and(ident_byte) {
                i += 1;
            }
            let id = t.get(start..i).unwrap_or_default();
            toks.push(Tok::Ident(String::from_utf8_lossy(id).into_owned()));
        } else if c.is_ascii_digit() {
            while t
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
            {
                i += 1;
            }
            toks.push(Tok::Num);
        } else {
            if !c.is_ascii_whitespace() {
                toks.push(Tok::Op(char::from(c)));
            }
            i += 1;
        }
    }
    (toks, i)
}

/// Decodes a string literal starting after its quote (Python escapes, as Jinja
/// reads them); returns it and the index after the closing quote.
fn literal(t: &[u8], mut i: usize, quote: u8) -> (String, usize) {
    let mut s: Vec<u8> = Vec::new();
    let push =
        |s: &mut Vec<u8>, ch: char| s.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
    while let Some(&c) = t.get(i) {
        i += 1;
        if c == quote {
            return (String::from_utf8_lossy(&s).into_owned(), i);
        }
        if c != b'\\' {
            s.push(c);
            continue;
        }
        let Some(&e) = t.get(i) else { break };
        i += 1;
        let hex = |i: usize, n: usize| -> Option<char> {
            let digits = std::str::from_utf8(t.get(i..i + n)?).ok()?;
            char::from_u32(u32::from_str_radix(digits, 16).ok()?)
        };
        match e {
            b'x' | b'u' | b'U' => {
                let n = match e {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                if let Some(ch) = hex(i, n) {
                    push(&mut s, ch);
                    i += n;
                }
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match t.get(i).filter(|d| (b'0'..=b'7').contains(d)) {
                        Some(d) => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        None => break,
                    }
                }
                push(&mut s, char::from_u32(v).unwrap_or('?'));
            }
            b'N' => {
                let len = t.get(i..).and_then(|r| r.iter().position(|c| *c == b'}'));
                let name = len.and_then(|n| t.get(i..i + n + 1)).unwrap_or_default();
                i += name.len();
                let low_line = name.windows(8).any(|w| w == b"LOW LINE");
                s.push(if low_line { b'_' } else { b'?' });
            }
            b'n' => s.push(b'\n'),
            b't' => s.push(b'\t'),
            other => s.push(other),
        }
    }
    (String::from_utf8_lossy(&s).into_owned(), i)
}

fn judge_region(toks: &[Tok], out: &mut Vec<Concern>) {
    let critical = Severity::Critical;
    let first = toks.iter().find(|t| !matches!(t, Tok::Op('-' | '+')));
    if let Some(Tok::Ident(kw)) = first
        && matches!(kw.as_str(), "import" | "include" | "extends" | "from")
    {
        out.push((
            Severity::Medium,
            format!("`{{% {kw} %}}` loads other templates"),
        ));
    }
    for (i, tok) in toks.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| toks.get(p));
        let next = toks.get(i + 1);
        match tok {
            Tok::Ident(id) if id.contains("__") => out.push((critical, format!("`{id}`"))),
            Tok::Ident(id)
                if prev == Some(&Tok::Op('.')) && INTERNAL_ATTRS.contains(&id.as_str()) =>
            {
                out.push((critical, format!("attribute `.{id}`")))
            }
            Tok::Ident(id)
                if GLOBALS.contains(&id.as_str())
                    && matches!(next, Some(Tok::Op('.' | '|' | '['))) =>
            {
                out.push((
                    critical,
                    format!("attribute chain on the Jinja global `{id}`"),
                ))
            }
            Tok::Ident(id) if CALLS.contains(&id.as_str()) && next == Some(&Tok::Op('(')) => {
                out.push((critical, format!("call to `{id}`")))
            }
            Tok::Ident(id) if id == "attr" && prev == Some(&Tok::Op('|')) => {
                out.push(attr_filter(toks.get(i + 1..).unwrap_or_default()))
            }
            Tok::Str(s) if s.contains("__") => out.push((critical, format!("string {s:?}"))),
            Tok::Str(s) if s.contains("%c") => out.push((
                Severity::High,
                format!("character-code format string {s:?}"),
            )),
            Tok::Str(s) if LITERALS.contains(&s.as_str()) => {
                out.push((Severity::High, format!("string {s:?}")))
            }
            Tok::Str(s) if !s.is_empty() && s.chars().all(|c| c == '_') => {
                let repeated = next == Some(&Tok::Op('*'));
                let severity = if repeated { critical } else { Severity::Medium };
                out.push((
                    severity,
                    format!("underscore string {s:?} (dunder building)"),
                ))
            }
            _ => {}
        }
    }
    joined_literals(toks, out);
}

/// `attr(...)`: the name is judged by the literal checks; a computed one is itself
/// suspect, since only an evasion needs to compute an attribute name.
fn attr_filter(rest: &[Tok]) -> Concern {
    match rest {
        [Tok::Op('('), Tok::Str(s), Tok::Op(')'), ..] => {
            (Severity::Medium, format!("`attr` filter reading {s:?}"))
        }
        _ => (
            Severity::High,
            "`attr` filter with a computed name".to_owned(),
        ),
    }
}

/// Literals joined by `~`, `+`, `,` or brackets (concatenation or a list to `join`)
/// that spell a dunder together though none does alone.
fn joined_literals(toks: &[Tok], out: &mut Vec<Concern>) {
    let mut run = String::new();
    for tok in toks {
        match tok {
            Tok::Str(s) => run.push_str(s),
            Tok::Op('~' | '+' | ',' | '(' | ')' | '[' | ']') => continue,
            _ => {
                flush(&mut run, out);
                continue;
            }
        }
    }
    flush(&mut run, out);
}

fn flush(run: &mut String, out: &mut Vec<Concern>) {
    if run.contains("__") {
        out.push((
            Severity::Critical,
            format!("dunder built from pieces {run:?}"),
        ));
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(template: &str, expected: Option<(Severity, &str)>) {
        let got = judge(template, 8);
        match expected {
            None => assert!(
                got.iter().all(|c| c.0 <= Severity::Low),
                "{template}: {got:?}"
            ),
            Some((severity, what)) => {
                let first = got.first().unwrap_or_else(|| panic!("{template}: nothing"));
                assert_eq!(first.0, severity, "{template}: {got:?}");
                assert!(
                    got.iter().any(|c| c.1.contains(what)),
                    "{template}: {got:?}"
                );
            }
        }
    }

    const LLAMA3: &str = r#"{{- bos_token }}
{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}{%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '{"name": "' + tool_call.name + '", "parameters": ' }}{{- tool_call.arguments | tojson }}{{- "}" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"#;

    const MISTRAL: &str = r#"{%- set ns = namespace(found=false) -%}{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% set ns.found = true %}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}"#;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    const GEMMA: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{# a __comment__ #}";

    #[test]
    fn judges_templates() {
        let c = Severity::Critical;
        let cases: &[(&str, Option<(Severity, &str)>)] = &[
            (LLAMA3, None),
            (MISTRAL, None),
            (CHATML, None),
            (GEMMA, None),
            ("plain text with __init__ outside tags", None),
            (
                "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                Some((c, "__class__")),
            ),
            (
                "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
                Some((c, "__init__")),
            ),
            (
                "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
                Some((c, "__class__")),
            ),
            (
                "{{ ()|attr('\\137\\137class\\137\\137') }}",
                Some((c, "__class__")),
            ),
            (
                "{{ ()|attr('\\N{LOW LINE}\\N{LOW LINE}class') }}",
                Some((c, "__class")),
            ),
            (
                "{{ ()|attr('_' ~ '_cla' ~ 'ss_' ~ '_') }}",
                Some((c, "dunder built")),
            ),
            (
                "{{ ()|attr(['_','_','class','_','_']|join) }}",
                Some((c, "dunder built")),
            ),
            (
                "{% set u = '_' * 2 %}{{ ()|attr(u ~ 'class' ~ u) }}",
                Some((c, "underscore")),
            ),
            ("{{ lipsum.x }}", Some((c, "lipsum"))),
            (
                "{{ self._TemplateReference__context }}",
                Some((c, "_TemplateReference__context")),
            ),
            ("{{ request|attr('application') }}", Some((c, "request"))),
            ("{{ x.popen('id') }}", Some((c, ".popen"))),
            ("{{ x.system('id') }}", Some((c, "`system`"))),
            ("{% set ns.system = message.content %}{{ ns.system }}", None),
            ("{{ ()|attr(name) }}", Some((Severity::High, "computed"))),
            ("{{ ('%c%c'|format(95,95)) }}", Some((Severity::High, "%c"))),
            ("{{ x|attr('title') }}", Some((Severity::Medium, "attr"))),
            (
                "{%- include 'other.j2' %}",
                Some((Severity::Medium, "include")),
            ),
            ("{{ 'unterminated", None),
            ("{{", None),
        ];
        for (template, expected) in cases {
            check(template, *expected);
        }
    }
}
