//! Hand-assembled pickles for every opcode family and evasion technique.

use std::io::Cursor;

use super::sniff;
use crate::{Limits, Scanner, Severity, UnreadKind};

/// Expected findings: severity, rule and a substring of the message.
type Expect = Vec<(Severity, &'static str, &'static str)>;

const C: Severity = Severity::Critical;
const H: Severity = Severity::High;
const M: Severity = Severity::Medium;
const L: Severity = Severity::Low;
const I: Severity = Severity::Info;

/// A pickle being written, one opcode at a time.
#[derive(Clone)]
struct P(Vec<u8>);

impl P {
    fn proto(n: u8) -> P {
        P(vec![0x80, n])
    }
    fn raw() -> P {
        P(Vec::new())
    }
    fn op(mut self, b: u8) -> P {
        self.0.push(b);
        self
    }
    fn bytes(mut self, b: &[u8]) -> P {
        self.0.extend_from_slice(b);
        self
    }
    fn global(self, module: &str, name: &str) -> P {
        self.op(b'c')
            .bytes(format!("{module}\n{name}\n").as_bytes())
    }
    fn str(self, s: &str) -> P {
        self.op(0x8c).op(s.len() as u8).bytes(s.as_bytes())
    }
    fn int(self, n: u8) -> P {
        self.op(b'K').op(n)
    }
    fn put(self, i: u8) -> P {
        self.op(b'q').op(i)
    }
    fn get(self, i: u8) -> P {
        self.op(b'h').op(i)
    }
    fn stop(self) -> P {
        self.op(b'.')
    }
    /// `f(arg)` with one string argument.
    fn call1(self, module: &str, name: &str, arg: &str) -> P {
        self.global(module, name).str(arg).op(0x85).op(b'R')
    }
}

fn scan(input: &[u8], limits: Limits) -> crate::Report {
    Scanner::new(limits).scan(&mut Cursor::new(input.to_vec()))
}

fn check_with(input: &P, limits: Limits, expected: &[(Severity, &str, &str)], unreadable: bool) {
    let report = scan(&input.0, limits);
    let got: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.severity, f.rule.as_str()))
        .collect();
    let want: Vec<_> = expected.iter().map(|(s, r, _)| (*s, *r)).collect();
    assert_eq!(got, want, "{report:#?}");
    for (f, (_, _, needle)) in report.findings.iter().zip(expected) {
        assert!(f.message.contains(needle), "{f:?} lacks {needle}");
    }
    assert_eq!(!report.unreadable.is_empty(), unreadable, "{report:#?}");
}

fn check(input: &P, expected: &[(Severity, &str, &str)]) {
    check_with(input, Limits::default(), expected, false);
}

const DENIED: &str = "pickle.denied-callable";
const UNKNOWN: &str = "pickle.unknown-callable";
const DYNAMIC: &str = "pickle.dynamic-callable";

/// A torch-style state dict: OrderedDict of a tensor rebuilt from a persistent storage.
fn torch_state_dict() -> P {
    P::proto(2)
        .global("collections", "OrderedDict")
        .put(0)
        .op(b')')
        .op(b'R')
        .put(1)
        .str("weight")
        .global("torch._utils", "_rebuild_tensor_v2")
        .put(2)
        .op(b'(')
        .op(b'(')
        .str("storage")
        .global("torch", "FloatStorage")
        .str("0")
        .str("cpu")
        .int(4)
        .op(b't')
        .op(b'Q')
        .int(0)
        .int(2)
        .int(2)
        .op(0x86)
        .int(2)
        .int(1)
        .op(0x86)
        .op(0x89)
        .global("collections", "OrderedDict")
        .op(b')')
        .op(b'R')
        .op(b't')
        .op(b'R')
        .op(b's')
        .global("torch", "Size")
        .op(b')')
        .op(b'R')
        .op(b'0')
        .stop()
}

fn system(module: &str) -> P {
    P::proto(2).call1(module, "system", "id").stop()
}

#[test]
fn direct_globals() {
    let cases: Vec<(P, Expect)> = vec![
        (system("posix"), vec![(C, DENIED, "posix.system")]),
        (system("nt"), vec![(C, DENIED, "nt.system")]),
        (
            P::proto(2).call1("__builtin__", "eval", "1").stop(),
            vec![(C, DENIED, "__builtin__.eval")],
        ),
        (
            P::proto(2).call1("subprocess", "check_output", "id").stop(),
            vec![(C, DENIED, "subprocess.check_output")],
        ),
        (
            P::proto(2).call1("socket", "create_connection", "x").stop(),
            vec![(H, DENIED, "socket.create_connection")],
        ),
        (
            P::proto(2).call1("__main__", "Thing", "x").stop(),
            vec![(M, UNKNOWN, "__main__.Thing")],
        ),
        (
            P::proto(2)
                .call1("sklearn.linear_model._base", "LinearRegression", "x")
                .stop(),
            vec![(L, "pickle.library-callable", "sklearn.linear_model")],
        ),
        // The same callable twice in one pickle is reported once.
        (
            P::proto(2)
                .call1("os", "system", "a")
                .call1("os", "system", "b")
                .op(0x86)
                .stop(),
            vec![(C, DENIED, "os.system")],
        ),
        (torch_state_dict(), vec![]),
    ];
    for (input, expected) in cases {
        check(&input, &expected);
    }
}

#[test]
fn resolved_names() {
    // STACK_GLOBAL whose strings come from the memo.
    let memo_stack_global = P::proto(4)
        .op(0x95)
        .bytes(&[0; 8])
        .str("os")
        .op(0x94)
        .op(b'0')
        .str("system")
        .op(0x94)
        .op(b'0')
        .get(0)
        .get(1)
        .op(0x93)
        .str("id")
        .op(0x85)
        .op(b'R')
        .stop();
    // PUT and MEMOIZE mixed: MEMOIZE stores at len(memo), not at a counter of its own.
    let memo_mixed = P::proto(4)
        .str("os")
        .put(0)
        .op(b'0')
        .str("system")
        .put(1)
        .op(b'0')
        .str("torch._utils")
        .op(0x94)
        .op(b'0')
        .str("_rebuild_tensor_v2")
        .op(0x94)
        .op(b'0')
        .get(0)
        .get(1)
        .op(0x93)
        .stop();
    // getattr(import_module('os'), 'sys' + 'tem')('id')
    let getattr_chain = P::proto(2)
        .global("builtins", "getattr")
        .call1("importlib", "import_module", "os")
        .global("operator", "add")
        .str("sys")
        .str("tem")
        .op(0x86)
        .op(b'R')
        .op(0x86)
        .op(b'R')
        .str("id")
        .op(0x85)
        .op(b'R')
        .stop();
    // STACK_GLOBAL whose name is computed by string methods.
    let string_methods = P::proto(4)
        .global("codecs", "decode")
        .str("bf")
        .str("rot13")
        .op(0x86)
        .op(b'R')
        .global("builtins", "str.join")
        .str("")
        .str("sys")
        .str("tem")
        .op(0x86)
        .op(0x86)
        .op(b'R')
        .op(0x93)
        .stop();
    // getattr(<global builtins.dict>, '__class__') reaches a dunder.
    let dunder = P::proto(2)
        .global("builtins", "getattr")
        .global("builtins", "dict")
        .str("__class__")
        .op(0x86)
        .op(b'R')
        .stop();
    // Protocol 0: INST and a quoted string argument.
    let inst = P::raw()
        .op(b'(')
        .bytes(b"S'ls'\n")
        .bytes(b"ios\nsystem\n")
        .stop();
    // Protocol 1: OBJ with a class and an argument.
    let obj = P::raw()
        .op(b'(')
        .global("posix", "system")
        .str("ls")
        .op(b'o')
        .stop();
    // STACK_GLOBAL `logging` `os.system`: the dotted name hops through logging.os.
    let dotted_hop = P::proto(4)
        .str("logging")
        .str("os.system")
        .op(0x93)
        .str("id")
        .op(0x85)
        .op(b'R')
        .stop();
    // getattr(codecs.builtins, 'ex' + 'ec'): a module attribute that is builtins.
    let attribute_module = P::proto(4)
        .global("builtins", "getattr")
        .str("codecs")
        .str("builtins")
        .op(0x93)
        .global("operator", "add")
        .str("ex")
        .str("ec")
        .op(0x86)
        .op(b'R')
        .op(0x86)
        .op(b'R')
        .stop();
    let cases: Vec<(P, Expect)> = vec![
        (
            dotted_hop,
            vec![(C, DENIED, "`logging.os.system` (`os.system`)")],
        ),
        (
            attribute_module,
            vec![
                (C, DENIED, "builtins.getattr"),
                (M, UNKNOWN, "codecs.builtins"),
                (M, UNKNOWN, "operator.add"),
                (C, DENIED, "`codecs.builtins.exec` (`builtins.exec`)"),
            ],
        ),
        (memo_stack_global, vec![(C, DENIED, "os.system")]),
        (memo_mixed, vec![(C, DENIED, "os.system")]),
        (
            string_methods,
            vec![
                (M, UNKNOWN, "codecs.decode"),
                (M, UNKNOWN, "builtins.str.join"),
                (C, DENIED, "os.system"),
            ],
        ),
        (
            getattr_chain,
            vec![
                (C, DENIED, "builtins.getattr"),
                (C, DENIED, "importlib.import_module"),
                (M, UNKNOWN, "operator.add"),
                (C, DENIED, "os.system"),
            ],
        ),
        (
            dunder,
            vec![
                (C, DENIED, "builtins.getattr"),
                (C, DENIED, "builtins.dict.__class__"),
            ],
        ),
        (inst, vec![(C, DENIED, "os.system")]),
        (obj, vec![(C, DENIED, "posix.system")]),
    ];
    for (input, expected) in cases {
        check(&input, &expected);
    }
}

#[test]
fn dynamic_and_odd_constructs() {
    // Calling the result of a call.
    let call_result = P::proto(2)
        .call1("__main__", "factory", "x")
        .str("y")
        .op(0x85)
        .op(b'R')
        .stop();
    // NEWOBJ_EX with a persistent-load result as its class.
    let newobj_ex = P::proto(4)
        .str("k")
        .op(b'Q')
        .op(b')')
        .op(b'}')
        .op(0x92)
        .stop();
    let newobj = P::proto(2)
        .global("__main__", "Model")
        .op(b')')
        .op(0x81)
        .stop();
    let ext = P::proto(2).op(0x82).op(7).op(b')').op(b'R').stop();
    let ext4 = P::proto(2)
        .op(0x84)
        .bytes(&70000u32.to_le_bytes())
        .op(b')')
        .op(b'R')
        .stop();
    // BUILD setting attributes on a global.
    let mutation = P::proto(2)
        .global("torch._utils", "_rebuild_tensor_v2")
        .op(b'N')
        .op(b'}')
        .op(0x86)
        .op(b'b')
        .stop();
    // STACK_GLOBAL with a name computed by a call.
    let computed_name = P::proto(4)
        .str("os")
        .call1("__main__", "name", "x")
        .op(0x93)
        .stop();
    let cases: Vec<(P, Expect)> = vec![
        (
            call_result,
            vec![
                (M, UNKNOWN, "__main__.factory"),
                (H, DYNAMIC, "earlier call"),
            ],
        ),
        (newobj_ex, vec![(H, DYNAMIC, "class computed")]),
        (newobj, vec![(M, UNKNOWN, "__main__.Model")]),
        (ext, vec![(M, "pickle.unknown-extension", "extension 7")]),
        (
            ext4,
            vec![(M, "pickle.unknown-extension", "extension 70000")],
        ),
        (
            mutation,
            vec![(H, "pickle.global-mutation", "_rebuild_tensor_v2")],
        ),
        (
            computed_name,
            vec![
                (M, UNKNOWN, "__main__.name"),
                (H, DYNAMIC, "name is computed"),
            ],
        ),
    ];
    for (input, expected) in cases {
        check(&input, &expected);
    }
}

#[test]
fn streams_and_tails() {
    let benign = P::proto(2).op(b']').op(b'(').int(1).int(2).op(b'e').stop();
    let malicious = system("posix");
    let two = benign.clone().bytes(&malicious.0);
    // Legacy PyTorch: pickles, then raw storage bytes (a u64 count and floats).
    let legacy = benign
        .clone()
        .bytes(&torch_state_dict().0)
        .bytes(&2u64.to_le_bytes())
        .bytes(&[0x00, 0x00, 0x80, 0x3f, 0x12, 0x34]);
    let truncated = P::proto(2)
        .call1("posix", "system", "id")
        .op(b'(')
        .op(b'X')
        .op(9);
    let corrupt = P::proto(2)
        .call1("posix", "system", "id")
        .op(0xf0)
        .bytes(b"junk");
    let cases: Vec<(P, Expect, bool)> = vec![
        (two, vec![(C, DENIED, "posix.system")], false),
        (
            legacy,
            vec![(I, "pickle.trailing-data", "2 complete")],
            false,
        ),
        (truncated, vec![(C, DENIED, "posix.system")], true),
        (
            corrupt,
            vec![(C, DENIED, "posix.system"), (L, "pickle.malformed", "0xf0")],
            true,
        ),
    ];
    for (input, expected, unreadable) in cases {
        check_with(&input, Limits::default(), &expected, unreadable);
    }
}

/// The joblib wrapper for an array of `dtype` and `shape`, then `data` inline.
fn joblib_array(p: P, dtype: &str, flags: u8, shape: &[u8], aligned: bool, data: &[u8]) -> P {
    let mut p = p
        .global("joblib.numpy_pickle", "NumpyArrayWrapper")
        .op(b')')
        .op(0x81)
        .op(b'}')
        .op(b'(')
        .str("subclass")
        .global("numpy", "ndarray")
        .str("shape")
        .op(b'(');
    for &d in shape {
        p = p.int(d);
    }
    p = p
        .op(b't')
        .str("order")
        .str("C")
        .str("dtype")
        .global("numpy", "dtype")
        .str(dtype)
        .op(0x89)
        .op(0x88)
        .op(0x87)
        .op(b'R')
        .op(b'(')
        .int(3)
        .str("<")
        .op(b'N')
        .op(b'N')
        .op(b'N')
        .op(b'J')
        .bytes(&(-1i32).to_le_bytes())
        .op(b'J')
        .bytes(&(-1i32).to_le_bytes())
        .int(flags)
        .op(b't')
        .op(b'b')
        .str("allow_mmap")
        .op(0x89);
    if aligned {
        p = p.str("numpy_array_alignment_bytes").int(16);
    }
    p = p.op(b'u').op(b'b');
    // Object arrays are followed by a pickle, never by padding.
    if aligned && !dtype.contains('O') {
        p = p.op(3).bytes(&[0xff; 3]);
    }
    p.bytes(data)
}

#[test]
fn joblib_inline_arrays() {
    // Array bytes that would parse as opcodes must be skipped, and the pickle after
    // them still analysed.
    let floats = joblib_array(P::proto(4), "f8", 0, &[2, 1], true, &[b'c'; 16])
        .op(b'0')
        .call1("posix", "system", "id")
        .stop();
    let unaligned = joblib_array(P::proto(2), "i4", 0, &[3], false, &[b'R'; 12])
        .op(b'0')
        .call1("posix", "system", "id")
        .stop();
    let nested = system("posix");
    let objects = joblib_array(P::proto(2), "O8", 63, &[1], true, &nested.0)
        .op(b'0')
        .op(b'N')
        .stop();
    let benign = joblib_array(P::proto(2), "f4", 0, &[2, 2], true, &[0x2e; 16])
        .op(b'0')
        .op(b'N')
        .stop();
    // Array bytes that are themselves a payload for a plain pickle.load.
    let hidden = P::raw().call1("posix", "system", "id").stop();
    let len = hidden.0.len() as u8;
    let disguised = joblib_array(P::proto(2), "u1", 0, &[len], true, &hidden.0)
        .op(b'0')
        .op(b'N')
        .stop();
    let cases: Vec<(P, Expect)> = vec![
        (disguised, vec![(C, DENIED, "posix.system")]),
        (floats, vec![(C, DENIED, "posix.system")]),
        (unaligned, vec![(C, DENIED, "posix.system")]),
        (objects, vec![(C, DENIED, "posix.system")]),
        (benign, vec![]),
    ];
    for (input, expected) in cases {
        check(&input, &expected);
    }
}

#[test]
fn limits_hold() {
    let deep_tuples = (0..200_000)
        .fold(P::proto(2).op(b'N'), |p, _| p.op(0x85))
        .stop();
    let marks = (0..100)
        .fold(P::proto(2), |p, _| p.op(b'('))
        .op(b'N')
        .stop();
    let memo_fanout = (0..1000)
        .fold(P::proto(2).op(b']').put(0), |p, _| p.get(0))
        .stop();
    let small = Limits {
        pickle_stack_max: 50,
        ..Limits::default()
    };
    let ops = Limits {
        pickle_ops_max: 10,
        ..Limits::default()
    };
    // A limit leaves the rest unread (a loader reads on); a malformed op
    // stops a loader too.
    let cases: Vec<(P, Limits, Option<UnreadKind>)> = vec![
        (deep_tuples.clone(), Limits::default(), None),
        (marks, small.clone(), Some(UnreadKind::Limit)),
        (memo_fanout.clone(), small, Some(UnreadKind::Limit)),
        (memo_fanout, ops, Some(UnreadKind::Limit)),
        (
            P::proto(2).op(b'q').op(1).stop(),
            Limits::default(),
            Some(UnreadKind::Malformed),
        ),
    ];
    for (input, limits, kind) in cases {
        let report = scan(&input.0, limits);
        let kinds: Vec<UnreadKind> = report.unreadable.iter().map(|u| u.kind).collect();
        assert_eq!(kinds.first().copied(), kind, "{report:#?}");
        assert_eq!(
            report.unread_parts() > 0,
            kind.is_some_and(UnreadKind::leaves_unread)
        );
    }
}

#[test]
fn sniffing() {
    let (sys, torch) = (system("posix"), torch_state_dict());
    let cases: Vec<(&[u8], bool)> = vec![
        (&sys.0, true),
        (&torch.0, true),
        (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00", true),
        (b"(lp0\nI1\naI2\na.", true),
        (b"(dp0\nS'a'\np1\nI1\ns.", true),
        (b"cposix\nsystem\n(S'ls'\ntR.", true),
        (b"N.", true),
        (b"cos\nfork\n)R\xff\xff", true),
        // Loadable, though no Python writes them so: PROTO 0 or 1, and protocol
        // 4 opcodes without the PROTO that would announce them.
        (b"\x80\x01cposix\nsystem\n(S'id'\ntR.", true),
        (b"\x80\x00cposix\nsystem\n(S'id'\ntR.", true),
        (b"\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R.", true),
        (
            b"\x95\x20\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x8c\x06system\x93",
            true,
        ),
        (b"cat\ndog\nNever mind\n", false),
        (b"cat\ndog\nbird\n", false),
        (b"{\"a\": 1}", false),
        (b"[1, 2, 3]", false),
        (b"(c) 2024 Someone. All rights reserved.\n", false),
        (b"I am a text file\n", false),
        (b"Name: x\nVersion: 1\n", false),
        (b"Lorem ipsum dolor sit amet", false),
        (&[0u8; 64], false),
        (b"\x00\x00\x80\x3f\x00\x00\x00\x40", false),
        (b"\x80\x09abc", false),
        (b"", false),
    ];
    for (head, expected) in cases {
        assert_eq!(sniff(head), expected, "{:?}", String::from_utf8_lossy(head));
    }
}

#[test]
fn pickles_in_unusual_shapes_are_still_analysed() {
    for payload in [
        &b"\x80\x01cposix\nsystem\n(S'id'\ntR."[..],
        &b"\x80\x00cposix\nsystem\n(S'id'\ntR."[..],
        &b"\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R."[..],
    ] {
        let report = scan(payload, Limits::default());
        assert!(
            report.findings.iter().any(|f| f.rule == DENIED),
            "{:?}: {report:#?}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn every_byte_prefix_is_safe() {
    // Truncations and single-byte corruptions of real-shaped pickles never panic.
    let base = joblib_array(torch_state_dict(), "f8", 0, &[2], true, &[0; 16]).stop();
    for cut in 0..base.0.len() {
        scan(base.0.get(..cut).unwrap(), Limits::default());
        let mut flipped = base.0.clone();
        flipped[cut] ^= 0x5a;
        scan(&flipped, Limits::default());
    }
}

#[test]
fn strings_over_budget_are_not_names() {
    let long = "m".repeat(40);
    // A kept long module name, then one over the budget: the first is judged, the
    // second is a name that cannot be known.
    let p = P::proto(4)
        .op(b'X')
        .bytes(&40u32.to_le_bytes())
        .bytes(long.as_bytes())
        .str("f")
        .op(0x93)
        .op(b'0')
        .op(b'X')
        .bytes(&40u32.to_le_bytes())
        .bytes(long.as_bytes())
        .str("g")
        .op(0x93)
        .stop();
    let limits = Limits {
        pickle_kept_string_bytes_max: 50,
        ..Limits::default()
    };
    let expected = vec![(M, UNKNOWN, "mmmm.f"), (H, DYNAMIC, "too long")];
    check_with(&p, limits, &expected, false);
    let tiny = Limits {
        string_bytes_max: 30,
        ..Limits::default()
    };
    check_with(&p, tiny, &[(H, DYNAMIC, "too long")], false);
}

#[test]
fn random_bytes_never_panic() {
    // A fixed linear congruential generator: reproducible noise, biased towards
    // opcode bytes so the machine gets deep into its state.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u8
    };
    const OPS: &[u8] =
        b"(.012NIKJMGSVXUTBC)]}lt\x85\x86\x87asudebRoiqhgjprcQ\x93\x94\x95\x81\x92\x82\x8c";
    for round in 0..20_000u32 {
        let len = usize::from(next()) + 1;
        let mut input = vec![0x80, 2 + round as u8 % 4];
        for _ in 0..len {
            let b = next();
            input.push(if b % 3 == 0 {
                b
            } else {
                OPS[usize::from(b) % OPS.len()]
            });
        }
        scan(&input, Limits::default());
    }
}

/// `n` memoized identifier-like strings, each popped: memo entries a big benign pickle
/// holds by the million.
fn fillers(p: P, n: usize) -> P {
    (0..n).fold(p, |p, i| p.str(&format!("name{i:05}")).op(0x94).op(b'0'))
}

#[test]
fn memo_past_its_limits() {
    const LIMIT: &str = "pickle.memo-limit";
    let limits = Limits {
        pickle_memo_globals_max: 4,
        pickle_memo_kept_bytes_max: 2_000,
        ..Limits::default()
    };
    // A memoized global re-used by BINGET after the fillers.
    let global_reused = fillers(
        P::proto(4)
            .str("collections")
            .op(0x94)
            .str("OrderedDict")
            .op(0x94)
            .op(0x93)
            .op(0x94)
            .op(b'0'),
        100,
    )
    .get(2)
    .op(b')')
    .op(b'R')
    .op(b'0');
    // ... and its module string re-used by the next global of the same module.
    let module_reused = global_reused
        .clone()
        .get(0)
        .str("defaultdict")
        .op(0x93)
        .op(b'0');
    // A STACK_GLOBAL whose strings were dropped: fail closed.
    let dropped_name = fillers(
        P::proto(4)
            .str("os")
            .op(0x94)
            .str("system")
            .op(0x94)
            .op(b'0')
            .op(b'0'),
        100,
    )
    .get(0)
    .get(1)
    .op(0x93)
    .op(b'0');
    // Stored but never kept (a list): a GET yields something opaque, not an error.
    let unkept = fillers(P::proto(4).op(b']').op(0x94).op(b'0'), 100)
        .get(0)
        .op(b'0');
    let payload = fillers(P::proto(4), 100).call1("os", "system", "id");
    let cases: Vec<(P, Expect)> = vec![
        (global_reused, vec![(I, LIMIT, "memo")]),
        (module_reused, vec![(I, LIMIT, "memo")]),
        (
            dropped_name,
            vec![(I, LIMIT, "memo"), (H, DYNAMIC, "computed at load time")],
        ),
        (unkept, vec![(I, LIMIT, "memo")]),
        (payload, vec![(I, LIMIT, "memo"), (C, DENIED, "os.system")]),
    ];
    for (input, expected) in cases {
        check_with(&input.op(b'N').stop(), limits.clone(), &expected, false);
    }
}

#[test]
fn memo_indexes() {
    let ranges = Limits {
        pickle_memo_ranges_max: 3,
        ..Limits::default()
    };
    let p = |indexes: &[u8]| {
        indexes
            .iter()
            .fold(P::proto(2).op(b'N'), |p, &i| p.put(i))
            .stop()
    };
    // (indexes PUT, limits, unreadable)
    let cases: Vec<(P, Limits, bool)> = vec![
        (p(&[0, 1, 2, 3]), ranges.clone(), false),
        (p(&[3, 1, 2, 0, 9, 7, 8]), ranges.clone(), false),
        (p(&[0, 2, 4, 6]), ranges.clone(), true),
        (p(&[200, 0, 100]), Limits::default(), false),
    ];
    for (input, limits, over_limit) in cases {
        let report = scan(&input.0, limits);
        assert_eq!(!report.unreadable.is_empty(), over_limit, "{report:#?}");
        assert_eq!(report.unread_parts() > 0, over_limit, "{report:#?}");
    }
}

#[test]
fn text_that_only_starts_like_a_pickle_is_malformed_not_incomplete() {
    // numpy's wheel ships this Fortran source; its bytes read as protocol 0
    // opcodes (`M` BININT2, `U` SHORT_BINSTRING...) until a GLOBAL whose
    // names are no identifiers, where `pickle.load` fails too: nothing could
    // hide past it.
    let fortran = b"MODULE string_test\n\n  character(len=8) :: string\n  character string77 * 8\n\n  character(len=12), dimension(5,7) :: strarr\n  character strarr77(5,7) * 12\n\nEND MODULE string_test\n";
    let report = scan(fortran, Limits::default());
    assert_eq!(report.max_severity(), Some(Severity::Low), "{report:#?}");
    assert_eq!(
        report.unreadable[0].kind,
        UnreadKind::Malformed,
        "{report:#?}"
    );
    assert_eq!(report.unread_parts(), 0, "{report:#?}");
}
