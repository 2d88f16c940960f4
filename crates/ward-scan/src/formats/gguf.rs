//! GGUF models: chat templates that reach Python internals.
//!
//! Layout: `GGUF`, a version (1–3; big-endian files exist), the tensor count, the
//! metadata entry count, then the entries (key string, value type, value). Tensor
//! information and tensor data follow and are never read. Every entry is walked so
//! that each chat template (`tokenizer.chat_template` and its named variants
//! `tokenizer.chat_template.*`) is found; all other values are skipped by seeking.

use super::jinja;
use super::protobuf::{PbError, PbResult, Reader, input_len};
use crate::{Analyzer, Format, Scan, Severity, Source};

/// GGUF models: chat templates that reach Python internals.
pub struct GgufAnalyzer;

impl Analyzer for GgufAnalyzer {
    fn format(&self) -> Format {
        Format::Gguf
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let len = input_len(src).unwrap_or(u64::MAX);
        let mut g = Gguf {
            r: Reader::new(src),
            big_endian: false,
            v1: false,
        };
        let res = g.walk(scan);
        scan.count_bytes(g.r.consumed(len));
        if let Err(e) = res {
            scan.unreadable(Some(e.offset), format!("GGUF: {}", e.reason));
        }
    }
}

const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// Concerns listed in one finding.
const CONCERNS_MAX: usize = 6;

struct Gguf<'s> {
    r: Reader<'s>,
    big_endian: bool,
    /// Version 1 used 32-bit counts and lengths.
    v1: bool,
}

impl Gguf<'_> {
    fn fail<T>(&self, reason: String) -> PbResult<T> {
        Err(PbError {
            offset: self.r.pos(),
            reason,
        })
    }

    fn u32(&mut self) -> PbResult<u32> {
        let b = self.r.fixed::<4>()?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&mut self) -> PbResult<u64> {
        let b = self.r.fixed::<8>()?;
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A count or length: 32 bits in version 1, 64 after.
    fn size(&mut self) -> PbResult<u64> {
        if self.v1 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }

    /// A string, keeping at most `keep` bytes; also whether it was cut.
    fn string(&mut self, keep: u64) -> PbResult<(String, bool)> {
        let (s, cut, res) = self.partial_string(keep)?;
        res.map(|()| (s, cut))
    }

    /// A string and whether it was cut, plus the read error after it, if any: what
    /// precedes a truncation is still returned.
    fn partial_string(&mut self, keep: u64) -> PbResult<(String, bool, PbResult<()>)> {
        let len = self.size()?;
        let Some(end) = self.r.pos().checked_add(len) else {
            return self.fail(format!("string of {len} bytes"));
        };
        let keep = usize::try_from(keep.min(len)).unwrap_or(usize::MAX);
        let (raw, res) = self.r.partial(end, keep);
        let cut = raw.len() as u64 != len;
        Ok((String::from_utf8_lossy(&raw).into_owned(), cut, res))
    }

    fn walk(&mut self, scan: &mut Scan<'_>) -> PbResult<()> {
        let _magic = self.r.fixed::<4>()?;
        let version = self.r.fixed::<4>()?;
        let version = match (u32::from_le_bytes(version), u32::from_be_bytes(version)) {
            (v @ 1..=3, _) => v,
            (_, v @ 1..=3) => {
                self.big_endian = true;
                v
            }
            (v, _) => return self.fail(format!("unsupported GGUF version {v}")),
        };
        self.v1 = version == 1;
        let _tensors = self.size()?;
        let entries = self.size()?;
        let max = scan.limits().gguf_items_max;
        if entries > max {
            scan.unreadable(
                Some(self.r.pos()),
                format!(
                    "GGUF claims {entries} metadata entries; reading {max} (limits.gguf_items_max)"
                ),
            );
        }
        for _ in 0..entries.min(max) {
            self.entry(scan)?;
        }
        Ok(())
    }

    fn entry(&mut self, scan: &mut Scan<'_>) -> PbResult<()> {
        let key_max = scan.limits().string_bytes_max as u64;
        let (key, _) = self.string(key_max)?;
        let at = self.r.pos();
        let kind = self.u32()?;
        let is_template =
            key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.");
        if is_template && kind == STRING {
            let (template, cut, res) = self.partial_string(scan.limits().header_bytes_max)?;
            judge_template(scan, &key, &template, at);
            if cut && res.is_ok() {
                scan.unreadable(
                    Some(at),
                    format!("GGUF {key} is longer than limits.header_bytes_max; judged its start"),
                );
            }
            return res;
        }
        self.skip_value(kind, scan, 0)
    }

    /// Skips one value of type `kind` without reading it into memory.
    fn skip_value(&mut self, kind: u32, scan: &Scan<'_>, depth: u32) -> PbResult<()> {
        if let Some(size) = fixed_size(kind) {
            return self.r.skip_to(self.r.pos().saturating_add(size));
        }
        match kind {
            STRING => {
                let len = self.size()?;
                self.r.skip_to(self.r.pos().saturating_add(len))
            }
            ARRAY => self.skip_array(scan, depth),
            other => self.fail(format!("unknown GGUF value type {other}")),
        }
    }

    fn skip_array(&mut self, scan: &Scan<'_>, depth: u32) -> PbResult<()> {
        if depth >= scan.limits().nesting_depth_max {
            return self.fail("GGUF arrays nested deeper than limits.nesting_depth_max".into());
        }
        let kind = self.u32()?;
        let count = self.size()?;
        let max = scan.limits().gguf_items_max;
        if count > max {
            return self.fail(format!(
                "GGUF array of {count} items (limits.gguf_items_max is {max})"
            ));
        }
        if let Some(size) = fixed_size(kind) {
            let Some(len) = size.checked_mul(count) else {
                return self.fail(format!("GGUF array of {count} items"));
            };
            return self.r.skip_to(self.r.pos().saturating_add(len));
        }
        for _ in 0..count {
            self.skip_value(kind, scan, depth + 1)?;
        }
        Ok(())
    }
}

/// Byte size of the fixed-size value types.
fn fixed_size(kind: u32) -> Option<u64> {
    Some(match kind {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

fn judge_template(scan: &mut Scan<'_>, key: &str, template: &str, at: u64) {
    let concerns = jinja::judge(template, CONCERNS_MAX);
    let Some(worst) = concerns.first().map(|c| c.0) else {
        return;
    };
    let what: Vec<&str> = concerns.iter().map(|c| c.1.as_str()).collect();
    let (rule, verb) = if worst >= Severity::High {
        ("gguf.chat-template-injection", "reaches Python internals")
    } else {
        ("gguf.chat-template-unusual", "does something unusual")
    };
    scan.finding(
        worst,
        rule,
        format!("GGUF chat template {key} {verb}: {}", what.join("; ")),
        Some(at),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scanner;
    use std::io::Cursor;

    fn gguf_string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    /// A v3 GGUF file with these entries: (key, type, encoded value).
    fn gguf(entries: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(1u64.to_le_bytes());
        out.extend((entries.len() as u64).to_le_bytes());
        for (key, kind, value) in entries {
            gguf_string(&mut out, key);
            out.extend(kind.to_le_bytes());
            out.extend(value);
        }
        out.extend([0xAAu8; 64]);
        out
    }

    fn string(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        gguf_string(&mut out, s);
        out
    }

    fn string_array(items: &[&str]) -> Vec<u8> {
        let mut out = STRING.to_le_bytes().to_vec();
        out.extend((items.len() as u64).to_le_bytes());
        for item in items {
            gguf_string(&mut out, item);
        }
        out
    }

    /// A big-endian v3 file with one chat template.
    fn big_endian_v3(template: &str) -> Vec<u8> {
        let key = "tokenizer.chat_template";
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_be_bytes());
        out.extend(0u64.to_be_bytes());
        out.extend(1u64.to_be_bytes());
        out.extend((key.len() as u64).to_be_bytes());
        out.extend(key.as_bytes());
        out.extend(STRING.to_be_bytes());
        out.extend((template.len() as u64).to_be_bytes());
        out.extend(template.as_bytes());
        out
    }

    /// A version 1 file (32-bit counts and lengths) with one chat template.
    fn version1(template: &str) -> Vec<u8> {
        let key = "tokenizer.chat_template";
        let mut out = b"GGUF".to_vec();
        out.extend(1u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        out.extend((key.len() as u32).to_le_bytes());
        out.extend(key.as_bytes());
        out.extend(STRING.to_le_bytes());
        out.extend((template.len() as u32).to_le_bytes());
        out.extend(template.as_bytes());
        out
    }

    fn check(input: &[u8], expected: &[&str]) {
        let report = Scanner::default().scan(&mut Cursor::new(input.to_vec()));
        assert_eq!(report.format, Format::Gguf);
        let mut got: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("{} {} {}", f.severity, f.rule, f.message))
            .collect();
        got.extend(
            report
                .unreadable
                .iter()
                .map(|u| format!("unreadable {}", u.reason)),
        );
        assert_eq!(got, expected);
    }

    /// Values whose declared sizes run past the end are skipped by seeking; the bytes
    /// counted as scanned stay within the file (found by fuzzing).
    #[test]
    fn counts_only_bytes_the_file_holds() {
        let huge = (1u64 << 58).to_le_bytes().to_vec();
        let cases = [
            gguf(&[("general.name", STRING, huge.clone())]),
            gguf(&[(
                "x",
                ARRAY,
                [&STRING.to_le_bytes()[..], &1u64.to_le_bytes(), &huge].concat(),
            )]),
        ];
        for input in cases {
            let report = Scanner::default().scan(&mut Cursor::new(input.clone()));
            assert!(
                report.bytes_scanned <= input.len() as u64,
                "{}",
                report.bytes_scanned
            );
        }
    }

    #[test]
    fn walks_metadata() {
        let chatml = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n'}}{% endfor %}";
        let evil = "{{ cycler.__init__.__globals__.os.popen('id').read() }}";
        let common = |template: &str| {
            vec![
                ("general.architecture", STRING, string("llama")),
                ("llama.context_length", 4, 4096u32.to_le_bytes().to_vec()),
                ("general.flag", 7, vec![1]),
                (
                    "tokenizer.ggml.tokens",
                    ARRAY,
                    string_array(&["<s>", "</s>", "a"]),
                ),
                (
                    "tokenizer.ggml.scores",
                    ARRAY,
                    [&6u32.to_le_bytes()[..], &2u64.to_le_bytes(), &[0u8; 8]].concat(),
                ),
                ("tokenizer.chat_template", STRING, string(template)),
            ]
        };
        let mut truncated = gguf(&common(evil));
        truncated.truncate(truncated.len() - 70);
        let mut big_array = gguf(&[]);
        big_array.truncate(big_array.len() - 64);
        big_array[16..24].copy_from_slice(&1u64.to_le_bytes());
        gguf_string(&mut big_array, "x");
        big_array.extend(ARRAY.to_le_bytes());
        big_array.extend(4u32.to_le_bytes());
        big_array.extend(u64::MAX.to_le_bytes());
        let mut named = common(chatml);
        named.push(("tokenizer.chat_template.tool_use", STRING, string(evil)));
        let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
            (gguf(&common(chatml)), vec![]),
            (
                gguf(&named),
                vec![
                    "CRITICAL gguf.chat-template-injection GGUF chat template tokenizer.chat_template.tool_use reaches Python internals: attribute chain on the Jinja global `cycler`; `__init__`; `__globals__`; attribute `.os`; attribute `.popen`",
                ],
            ),
            (
                truncated,
                vec![
                    "CRITICAL gguf.chat-template-injection GGUF chat template tokenizer.chat_template reaches Python internals: attribute chain on the Jinja global `cycler`; `__init__`; `__globals__`; attribute `.os`; attribute `.popen`",
                    "unreadable GGUF: truncated string",
                ],
            ),
            (
                big_array,
                vec![
                    "unreadable GGUF: GGUF array of 18446744073709551615 items (limits.gguf_items_max is 16777216)",
                ],
            ),
            (
                b"GGUF\x09\x00\x00\x00".to_vec(),
                vec!["unreadable GGUF: unsupported GGUF version 9"],
            ),
            (
                big_endian_v3("{{ lipsum.__globals__ }}"),
                vec![
                    "CRITICAL gguf.chat-template-injection GGUF chat template tokenizer.chat_template reaches Python internals: attribute chain on the Jinja global `lipsum`; `__globals__`",
                ],
            ),
            (
                version1("{{ ''.__class__ }}"),
                vec![
                    "CRITICAL gguf.chat-template-injection GGUF chat template tokenizer.chat_template reaches Python internals: `__class__`",
                ],
            ),
            (
                b"GGUF\x00\x00\x00\x03\x00".to_vec(),
                vec!["unreadable GGUF: truncated: failed to fill whole buffer"],
            ),
        ];
        for (input, expected) in cases {
            check(&input, &expected);
        }
    }
    #[test]
    fn survives_garbage() {
        // Every truncation and byte flip: never panics, always finishes.
        let file = gguf(&[
            ("a", ARRAY, string_array(&["x", "y"])),
            (
                "tokenizer.chat_template",
                STRING,
                string("{{ x.__class__ }}"),
            ),
        ]);
        for cut in 0..file.len() {
            let _ = Scanner::default().scan(&mut Cursor::new(file[..cut].to_vec()));
        }
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0xff;
            let _ = Scanner::default().scan(&mut Cursor::new(bad));
        }
    }
}
