//! The symbolic pickle machine: runs every opcode over summaries of values, never
//! importing or calling anything, and judges each callable when it would be imported.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use super::input::{Input, Step, Stop};
use super::memo::{Got, Memo, MemoBounds, PutError};
use super::rules::{self, Verdict};
use crate::{Scan, Severity};

/// Dict entries tracked per dict (enough for joblib's array wrapper state).
const DICT_TRACKED: usize = 32;
/// Tuple items tracked per tuple (call arguments, shapes, dtype states).
const TUPLE_TRACKED: usize = 16;
const WRAPPER: &str = "joblib.numpy_pickle.NumpyArrayWrapper";

/// A global the pickle imports: as written and with module aliases resolved.
#[derive(Debug)]
pub struct Global {
    written: String,
    canonical: String,
}

/// A NumPy dtype built by `numpy.dtype(code, ...)` and its BUILD state.
#[derive(Debug, Default)]
pub struct Dtype {
    code: String,
    elsize: i64,
    flags: i64,
}

/// What the machine knows of a value. Cheap to clone (reference-counted); dicts hold no
/// dicts and tuples hold no dicts, so values form no cycles and drop without deep
/// recursion.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool,
    Int(i64),
    /// A float or an integer too large to track.
    Num,
    /// A string of up to [`SHORT`] bytes, kept inline (no allocation).
    Short(u8, [u8; SHORT]),
    Str(Rc<str>),
    /// A string not kept: longer than [`crate::Limits::string_bytes_max`], or over
    /// the per-pickle budget [`crate::Limits::pickle_kept_string_bytes_max`].
    Text,
    /// bytes, bytearray or an out-of-band buffer; never kept.
    Bytes,
    /// A tracked tuple and how deeply tuples nest inside it (1 for a flat tuple).
    Tuple(u32, Rc<[Value]>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// A list, set, or a container too large or deep to track.
    Container,
    Callable(Rc<Global>),
    Module(Rc<str>),
    Dtype(Rc<RefCell<Dtype>>),
    ArrayWrapper,
    /// The result of a call or of a persistent load: unknown at scan time.
    Opaque,
}

/// Strings up to this many bytes are kept inline.
const SHORT: usize = 22;

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) | Value::Num => "number",
            Value::Str(_) | Value::Short(..) | Value::Text => "string",
            Value::Bytes => "bytes",
            Value::Tuple(..) => "tuple",
            Value::Dict(_) => "dict",
            Value::Container => "container",
            Value::Callable(_) => "global",
            Value::Module(_) => "module",
            Value::Dtype(_) => "dtype",
            Value::ArrayWrapper => "array wrapper",
            Value::Opaque => "call result",
        }
    }

    fn item(&self, i: usize) -> Option<&Value> {
        match self {
            Value::Tuple(_, t) => t.get(i),
            _ => None,
        }
    }

    pub fn str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Short(len, buf) => std::str::from_utf8(buf.get(..usize::from(*len))?).ok(),
            _ => None,
        }
    }

    /// The value as stored inside a container: dicts become opaque containers.
    fn flat(self) -> Value {
        match self {
            Value::Dict(_) => Value::Container,
            v => v,
        }
    }
}

/// The tunable bounds the machine enforces.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub stack_max: usize,
    pub memo: MemoBounds,
    pub ops_max: u64,
    pub string_max: usize,
    pub nesting_max: u32,
    pub kept_max: u64,
}

impl Bounds {
    pub fn of(limits: &crate::Limits) -> Self {
        Bounds {
            stack_max: limits.pickle_stack_max,
            memo: MemoBounds {
                ranges_max: limits.pickle_memo_ranges_max,
                globals_max: limits.pickle_memo_globals_max,
                kept_bytes_max: limits.pickle_memo_kept_bytes_max,
            },
            ops_max: limits.pickle_ops_max,
            string_max: limits.string_bytes_max,
            nesting_max: limits.pickle_nesting_max,
            kept_max: limits.pickle_kept_string_bytes_max,
        }
    }
}

/// The machine state for one stream of pickles.
pub struct Machine<'s, 'a> {
    scan: &'s mut Scan<'a>,
    base: u64,
    bounds: Bounds,
    /// Whether BUILD of a joblib array wrapper is followed by inline array bytes.
    joblib: bool,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Memo,
    /// Whether `pickle.memo-limit` was reported for this pickle.
    memo_reported: bool,
    seen: HashSet<String>,
    ops: u64,
    buf: Vec<u8>,
    at: u64,
    empty_tuple: Value,
    /// Whether dict contents are tracked: only once a joblib array wrapper is imported,
    /// since only its state is read from a dict.
    track_dicts: bool,
    /// Bytes of heap strings kept in this pickle, against `bounds.kept_max`.
    kept_bytes: u64,
    /// Whether this machine reads joblib array bytes as a plain unpickler would (see
    /// [`Machine::shadow_parse`]): lenient about the state it cannot know.
    shadow: bool,
}

fn malformed(why: impl Into<String>) -> Stop {
    Stop::Malformed(why.into())
}

/// Whether `s` is a dotted Python identifier (what find_class could import).
pub fn dotted_identifier(s: &[u8]) -> bool {
    !s.is_empty()
        && s.split(|&b| b == b'.').all(|part| {
            part.first().is_some_and(|b| !b.is_ascii_digit())
                && part
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80)
        })
}

impl<'s, 'a> Machine<'s, 'a> {
    /// A machine reporting into `scan`; offsets are reported as `base + position`.
    pub fn new(scan: &'s mut Scan<'a>, base: u64, joblib: bool) -> Self {
        let bounds = Bounds::of(scan.limits());
        Machine {
            scan,
            base,
            bounds,
            joblib,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::default(),
            memo_reported: false,
            seen: HashSet::new(),
            ops: 0,
            buf: Vec::new(),
            at: 0,
            empty_tuple: make_tuple(0, &[]),
            track_dicts: false,
            kept_bytes: 0,
            shadow: false,
        }
    }

    /// Analyses every pickle in `input` until its end or the first error.
    pub fn stream(&mut self, input: &mut Input<'_>) {
        let mut complete = 0u64;
        loop {
            let start = input.pos();
            match self.one(input) {
                Ok(true) => complete += 1,
                Ok(false) => return,
                Err(stop) => return self.stopped(stop, complete, start),
            }
        }
    }

    fn stopped(&mut self, stop: Stop, complete: u64, start: u64) {
        let at = Some(self.base.saturating_add(self.at));
        match stop {
            Stop::Malformed(_) | Stop::Truncated if complete > 0 => {
                // Legacy PyTorch files put raw storage bytes after their pickles.
                let message = format!(
                    "data after {complete} complete pickle(s), from offset {}, is not a pickle; analysis ends there",
                    self.base.saturating_add(start)
                );
                self.scan
                    .finding(Severity::Info, "pickle.trailing-data", message, at);
            }
            Stop::Malformed(why) => {
                let message = format!("malformed pickle: {why}");
                self.scan
                    .finding(Severity::Low, "pickle.malformed", message.clone(), at);
                self.scan.unreadable(at, message);
            }
            Stop::Truncated => self.scan.unreadable(at, "pickle is truncated"),
            Stop::Limit(why) => self.scan.unreadable(at, why),
            Stop::Io(e) => self.scan.unreadable(at, format!("cannot read: {e}")),
        }
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.marks.clear();
        self.memo = Memo::default();
        self.memo_reported = false;
        self.seen.clear();
        self.track_dicts = false;
        self.kept_bytes = 0;
    }

    /// Analyses one pickle up to its STOP; `Ok(false)` if the input ends before it starts.
    pub fn one(&mut self, input: &mut Input<'_>) -> Step<bool> {
        self.reset();
        self.at = input.pos();
        let Some(mut op) = input.next_byte()? else {
            return Ok(false);
        };
        loop {
            self.ops += 1;
            if self.ops > self.bounds.ops_max {
                return Err(Stop::Limit(format!(
                    "more than {} pickle opcodes (limits.pickle_ops_max)",
                    self.bounds.ops_max
                )));
            }
            if self.op(op, input)? {
                return Ok(true);
            }
            self.at = input.pos();
            op = input.byte()?;
        }
    }

    // ---- stack helpers ----

    fn push(&mut self, v: Value) -> Step<()> {
        if self.stack.len() + self.marks.len() >= self.bounds.stack_max {
            return Err(Stop::Limit(format!(
                "pickle stack deeper than {} (limits.pickle_stack_max)",
                self.bounds.stack_max
            )));
        }
        self.stack.push(v);
        Ok(())
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Step<Value> {
        if self.stack.len() <= self.floor() {
            if self.shadow {
                return Ok(Value::Opaque);
            }
            return Err(malformed("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| malformed("stack underflow"))
    }

    fn top(&mut self) -> Step<&mut Value> {
        if self.stack.len() <= self.floor() {
            if !self.shadow {
                return Err(malformed("stack underflow"));
            }
            self.push(Value::Opaque)?;
        }
        self.stack
            .last_mut()
            .ok_or_else(|| malformed("stack underflow"))
    }

    /// Pops the topmost mark; the items above it stay, starting at the returned index.
    fn pop_mark(&mut self) -> Step<usize> {
        match self.marks.pop() {
            Some(m) => Ok(m),
            None if self.shadow => Ok(0),
            None => Err(malformed("no MARK for an opcode that needs one")),
        }
    }

    /// Replaces the stack from `start` with a tuple of those items.
    fn tuple_from(&mut self, start: usize) -> Step<()> {
        let t = make_tuple(
            self.bounds.nesting_max,
            self.stack.get(start..).unwrap_or_default(),
        );
        self.stack.truncate(start);
        self.push(t)
    }

    fn tuple_n(&mut self, n: usize) -> Step<()> {
        let start = self.stack.len().saturating_sub(n);
        if start < self.floor() || self.stack.len() < n {
            return Err(malformed("stack underflow"));
        }
        self.tuple_from(start)
    }

    fn tuple_mark(&mut self) -> Step<()> {
        let start = self.pop_mark()?;
        self.tuple_from(start)
    }

    /// The items from `start` as a tuple, removed from the stack.
    fn take_tuple(&mut self, start: usize) -> Value {
        let t = make_tuple(
            self.bounds.nesting_max,
            self.stack.get(start..).unwrap_or_default(),
        );
        self.stack.truncate(start);
        t
    }

    fn container_mark(&mut self) -> Step<()> {
        let start = self.pop_mark()?;
        self.stack.truncate(start);
        self.push(Value::Container)
    }

    /// SETITEM(S): the key/value pairs from `start` go into the dict just below them.
    fn set_items(&mut self, start: usize) -> Step<()> {
        if start == 0 || start > self.stack.len() {
            return Err(malformed("stack underflow"));
        }
        if let Some(Value::Dict(d)) = self.stack.get(start - 1) {
            let mut d = d.borrow_mut();
            let pairs = self.stack.get(start..).unwrap_or_default().chunks_exact(2);
            for pair in pairs.take(DICT_TRACKED.saturating_sub(d.len())) {
                if let [k, v] = pair {
                    d.push((k.clone().flat(), v.clone().flat()));
                }
            }
        }
        self.stack.truncate(start);
        Ok(())
    }

    /// A string value: inline when short, else kept while the budget lasts.
    fn text(&mut self, s: &str) -> Value {
        let mut buf = [0u8; SHORT];
        if let Some(head) = buf.get_mut(..s.len()) {
            head.copy_from_slice(s.as_bytes());
            return Value::Short(s.len() as u8, buf);
        }
        let kept = self.kept_bytes.saturating_add(s.len() as u64);
        if kept > self.bounds.kept_max || s.len() >= self.bounds.string_max {
            return Value::Text;
        }
        self.kept_bytes = kept;
        Value::Str(Rc::from(s))
    }

    fn new_dict(&self) -> Value {
        if self.track_dicts {
            Value::Dict(Rc::default())
        } else {
            Value::Container
        }
    }

    // ---- memo ----

    fn put(&mut self, index: u64) -> Step<()> {
        let top = self.top()?.clone();
        if let Err(PutError::Ranges) = self.memo.put(index, top, self.bounds.memo) {
            return Err(Stop::Limit(format!(
                "memo indexes stored in more than {} separate runs (limits.pickle_memo_ranges_max)",
                self.bounds.memo.ranges_max
            )));
        }
        if self.memo.dropped && !self.memo_reported {
            self.memo_reported = true;
            let message = format!(
                "pickle memo holds more values than kept (limits.pickle_memo_globals_max {}, limits.pickle_memo_kept_bytes_max {}); memo references from here on are judged without the values dropped",
                self.bounds.memo.globals_max, self.bounds.memo.kept_bytes_max
            );
            let at = Some(self.base.saturating_add(self.at));
            self.scan
                .finding(Severity::Info, "pickle.memo-limit", message, at);
        }
        Ok(())
    }

    fn get(&mut self, index: u64) -> Step<()> {
        match self.memo.get(index) {
            Got::Value(v) => self.push(v),
            Got::Unkept => self.push(Value::Opaque),
            Got::NeverStored if self.shadow => self.push(Value::Opaque),
            Got::NeverStored => Err(malformed(format!("memo key {index} was never stored"))),
        }
    }

    // ---- arguments ----

    fn line(&mut self, input: &mut Input<'_>) -> Step<()> {
        input.line(self.bounds.string_max, &mut self.buf)
    }

    fn line_u64(&mut self, input: &mut Input<'_>) -> Step<u64> {
        self.line(input)?;
        std::str::from_utf8(&self.buf)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| malformed("memo key is not a number"))
    }

    fn string(&mut self, input: &mut Input<'_>, n: u64) -> Step<Value> {
        if n >= self.bounds.string_max as u64 {
            input.skip(n)?;
            return Ok(Value::Text);
        }
        input.read_kept(n, self.bounds.string_max, &mut self.buf)?;
        let s = String::from_utf8_lossy(&self.buf).into_owned();
        Ok(self.text(&s))
    }

    fn int_line(&mut self, input: &mut Input<'_>) -> Step<Value> {
        self.line(input)?;
        let text = std::str::from_utf8(&self.buf).unwrap_or("").trim();
        let digits = text.strip_suffix('L').unwrap_or(text);
        match digits {
            "00" => return Ok(Value::Bool),
            "01" => return Ok(Value::Bool),
            _ => {}
        }
        let body = digits.strip_prefix(['-', '+']).unwrap_or(digits);
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(format!("{text:?} is not an integer")));
        }
        Ok(digits.parse().map(Value::Int).unwrap_or(Value::Num))
    }

    fn quoted_line(&mut self, input: &mut Input<'_>) -> Step<Value> {
        self.line(input)?;
        let s = String::from_utf8_lossy(&self.buf);
        let s = s.trim_end();
        let inner = s
            .strip_prefix('\'')
            .and_then(|r| r.strip_suffix('\''))
            .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
            .ok_or_else(|| malformed("STRING argument is not quoted"))?;
        let inner = inner.to_owned();
        Ok(self.text(&inner))
    }

    fn long_bytes(&mut self, input: &mut Input<'_>, n: u64) -> Step<Value> {
        input.read_kept(n, 8, &mut self.buf)?;
        if n > 8 {
            return Ok(Value::Num);
        }
        let mut le = [0u8; 8];
        let fill = if self.buf.last().is_some_and(|b| b & 0x80 != 0) {
            0xff
        } else {
            0
        };
        for (i, slot) in le.iter_mut().enumerate() {
            *slot = self.buf.get(i).copied().unwrap_or(fill);
        }
        Ok(Value::Int(i64::from_le_bytes(le)))
    }

    /// Two lines naming a module and an attribute, as GLOBAL and INST carry them.
    fn global_lines(&mut self, input: &mut Input<'_>) -> Step<String> {
        self.line(input)?;
        let module = self.buf.clone();
        self.line(input)?;
        if !dotted_identifier(&module) || !dotted_identifier(&self.buf) {
            return Err(malformed("GLOBAL names are not identifiers"));
        }
        Ok(format!(
            "{}.{}",
            String::from_utf8_lossy(&module),
            String::from_utf8_lossy(&self.buf)
        ))
    }

    // ---- judging ----

    /// Imports `path` symbolically: judges it (once per pickle) and returns the global.
    fn global(&mut self, path: String) -> Value {
        let canonical = rules::canonical(&path);
        if self.joblib && canonical == WRAPPER {
            self.track_dicts = true;
        }
        if !self.seen.contains(&path) {
            self.judge(&path, &canonical);
            self.seen.insert(path.clone());
        }
        Value::Callable(Rc::new(Global {
            written: path,
            canonical,
        }))
    }

    fn judge(&mut self, path: &str, canonical: &str) {
        let name = if path == canonical {
            format!("`{path}`")
        } else {
            format!("`{path}` (`{canonical}`)")
        };
        let at = Some(self.base.saturating_add(self.at));
        match rules::judge(canonical) {
            Verdict::Denied(severity, why) => self.scan.finding(
                severity,
                "pickle.denied-callable",
                format!("pickle imports {name}, which {why}"),
                at,
            ),
            Verdict::Allowed => {}
            Verdict::Trusted => self.scan.finding(
                Severity::Low,
                "pickle.library-callable",
                format!("pickle imports {name} from a trusted library namespace"),
                at,
            ),
            Verdict::Unknown => self.scan.finding(
                Severity::Medium,
                "pickle.unknown-callable",
                format!("pickle imports {name}, on neither the deny- nor the allow-list"),
                at,
            ),
        }
    }

    /// Reports a call that cannot be judged, once per kind per pickle.
    fn dynamic(&mut self, what: &str) {
        // Shadow parses start from an unknown state: only named globals count there.
        if self.shadow || !self.seen.insert(format!("?{what}")) {
            return;
        }
        let message = format!("pickle calls {what}, computed at load time; it cannot be judged");
        let at = Some(self.base.saturating_add(self.at));
        self.scan
            .finding(Severity::High, "pickle.dynamic-callable", message, at);
    }

    fn extension(&mut self, code: u32) -> Step<()> {
        let path = format!("copyreg extension {code}");
        if self.seen.insert(path.clone()) {
            let message = format!(
                "pickle uses {path}: the callable it names is registered by the loading program, not the file"
            );
            let at = Some(self.base.saturating_add(self.at));
            self.scan
                .finding(Severity::Medium, "pickle.unknown-extension", message, at);
        }
        self.push(Value::Callable(Rc::new(Global {
            written: path.clone(),
            canonical: path,
        })))
    }

    /// What calling `f` with `args` yields, reporting calls that cannot be judged.
    fn call(&mut self, f: &Value, args: &Value) -> Step<Value> {
        match f {
            Value::Callable(g) => Ok(self.apply(g, args)),
            Value::Opaque | Value::Dtype(_) | Value::ArrayWrapper => {
                self.dynamic("the result of an earlier call or persistent load");
                Ok(Value::Opaque)
            }
            other => Err(malformed(format!("calls a {} value", other.kind()))),
        }
    }

    fn apply(&mut self, g: &Global, args: &Value) -> Value {
        let first = args.item(0);
        let second = args.item(1);
        match g.canonical.as_str() {
            "builtins.getattr" => match (first, second.and_then(Value::str)) {
                (Some(Value::Callable(obj)), Some(name)) => {
                    self.global(format!("{}.{name}", obj.written))
                }
                (Some(Value::Module(m)), Some(name)) => self.global(format!("{m}.{name}")),
                _ => Value::Opaque,
            },
            "importlib.import_module" | "builtins.__import__" => match first.and_then(Value::str) {
                Some(m) => Value::Module(Rc::from(m)),
                _ => Value::Opaque,
            },
            "operator.add" | "operator.concat" | "operator.iadd" | "operator.iconcat" => {
                match (first.and_then(Value::str), second.and_then(Value::str)) {
                    (Some(a), Some(b)) => {
                        let mut s = format!("{a}{b}");
                        let end = (0..=self.bounds.string_max.min(s.len()))
                            .rev()
                            .find(|&i| s.is_char_boundary(i))
                            .unwrap_or(0);
                        s.truncate(end);
                        self.text(&s)
                    }
                    _ => Value::Opaque,
                }
            }
            "builtins.str" => match first {
                Some(v @ (Value::Str(_) | Value::Short(..))) => v.clone(),
                _ => Value::Opaque,
            },
            "copyreg._reconstructor" | "copyreg.__newobj__" => match first {
                Some(cls @ Value::Callable(_)) => self.instantiate_known(cls),
                _ => {
                    self.dynamic(&format!("{} with a computed class", g.written));
                    Value::Opaque
                }
            },
            "numpy.dtype" => match first.and_then(Value::str) {
                Some(code) => Value::Dtype(Rc::new(RefCell::new(Dtype {
                    code: code.to_string(),
                    ..Dtype::default()
                }))),
                _ => Value::Opaque,
            },
            WRAPPER => Value::ArrayWrapper,
            other => match string_op(other, args) {
                Some(s) => self.text(&s),
                None => Value::Opaque,
            },
        }
    }

    fn stack_global(&mut self, module: &Value, name: &Value) -> Step<Value> {
        match (module.str(), name.str()) {
            (Some(m), Some(n)) => {
                if !dotted_identifier(m.as_bytes()) || !dotted_identifier(n.as_bytes()) {
                    return Err(malformed("STACK_GLOBAL names are not identifiers"));
                }
                self.memo.named(m, self.bounds.memo);
                self.memo.named(n, self.bounds.memo);
                Ok(self.global(format!("{m}.{n}")))
            }
            _ if matches!(module, Value::Text) || matches!(name, Value::Text) => {
                self.dynamic("a global whose name is too long to keep");
                Ok(Value::Opaque)
            }
            _ if matches!(module, Value::Opaque) || matches!(name, Value::Opaque) => {
                self.dynamic("a global whose name is computed at load time");
                Ok(Value::Opaque)
            }
            _ => Err(malformed(format!(
                "STACK_GLOBAL needs two strings, got {} and {}",
                module.kind(),
                name.kind()
            ))),
        }
    }

    fn instantiate_known(&self, cls: &Value) -> Value {
        match cls {
            Value::Callable(g) if g.canonical == WRAPPER => Value::ArrayWrapper,
            _ => Value::Opaque,
        }
    }

    /// NEWOBJ, NEWOBJ_EX and OBJ: `cls.__new__(cls, ...)`.
    fn instantiate(&mut self, cls: &Value) -> Step<Value> {
        match cls {
            Value::Callable(_) => Ok(self.instantiate_known(cls)),
            Value::Opaque | Value::Dtype(_) | Value::ArrayWrapper => {
                self.dynamic("a class computed at load time");
                Ok(Value::Opaque)
            }
            other => Err(malformed(format!("instantiates a {} value", other.kind()))),
        }
    }

    fn build(&mut self, input: &mut Input<'_>) -> Step<()> {
        let state = self.pop()?;
        let target = self.top()?.clone();
        match target {
            Value::Callable(g) => {
                let message = format!(
                    "pickle sets attributes on the global `{}` (BUILD), changing code the loader later runs",
                    g.written
                );
                let at = Some(self.base.saturating_add(self.at));
                self.scan
                    .finding(Severity::High, "pickle.global-mutation", message, at);
            }
            Value::Module(m) => {
                let message = format!("pickle sets attributes on the module `{m}` (BUILD)");
                let at = Some(self.base.saturating_add(self.at));
                self.scan
                    .finding(Severity::High, "pickle.global-mutation", message, at);
            }
            Value::Dtype(d) => {
                let mut d = d.borrow_mut();
                if let Some(Value::Int(n)) = state.item(5) {
                    d.elsize = *n;
                }
                if let Some(Value::Int(n)) = state.item(7) {
                    d.flags = *n;
                }
            }
            Value::ArrayWrapper if self.joblib => self.joblib_array(&state, input)?,
            _ => {}
        }
        Ok(())
    }

    /// Skips the array bytes joblib writes right after a NumpyArrayWrapper's BUILD, or
    /// analyses the pickle it writes there for object arrays.
    fn joblib_array(&mut self, state: &Value, input: &mut Input<'_>) -> Step<()> {
        let layout = match state {
            Value::Dict(d) => ArrayLayout::from_state(&d.borrow()),
            _ => None,
        };
        let layout = layout
            .ok_or_else(|| malformed("joblib array wrapper without a readable shape and dtype"))?;
        if layout.has_object {
            let mut nested = Machine::new(&mut *self.scan, self.base, false);
            nested.ops = self.ops;
            let done = nested.one(input);
            self.ops = nested.ops;
            self.at = nested.at;
            return match done? {
                true => Ok(()),
                false => Err(Stop::Truncated),
            };
        }
        if layout.padded {
            let padding = input.byte()?;
            input.skip(u64::from(padding))?;
        }
        self.shadow_parse(input, layout.bytes)
    }

    /// Steps over `len` bytes of joblib array data, first reading them as a plain
    /// `pickle.load` would: a file built to be loaded either way could hide a payload
    /// there from a scanner that only skips. Random array data stops this parse at its
    /// first invalid opcode; nothing but named globals is reported from it.
    fn shadow_parse(&mut self, input: &mut Input<'_>, len: u64) -> Step<()> {
        let start = input.pos();
        let mut region = std::io::Read::take(&mut *input, len);
        {
            let mut sub = Input::new(&mut region);
            let mut shadow = Machine::new(&mut *self.scan, self.base.saturating_add(start), false);
            shadow.shadow = true;
            // Whatever stops the shadow parse, the bytes are still array data.
            let _ = shadow.one(&mut sub);
        }
        std::io::copy(&mut region, &mut std::io::sink())?;
        if input.pos() - start < len {
            return Err(Stop::Truncated);
        }
        Ok(())
    }

    // ---- the opcode table ----

    /// Runs one opcode; true at STOP.
    fn op(&mut self, op: u8, input: &mut Input<'_>) -> Step<bool> {
        match op {
            b'.' => {
                self.pop()?;
                return Ok(true);
            }
            b'(' => {
                if self.stack.len() + self.marks.len() >= self.bounds.stack_max {
                    return Err(Stop::Limit(format!(
                        "pickle stack deeper than {} (limits.pickle_stack_max)",
                        self.bounds.stack_max
                    )));
                }
                self.marks.push(self.stack.len());
            }
            b'0' => {
                if self.stack.len() > self.floor() {
                    self.stack.pop();
                } else {
                    let start = self.pop_mark()?;
                    self.stack.truncate(start);
                }
            }
            b'1' => {
                let start = self.pop_mark()?;
                self.stack.truncate(start);
            }
            b'2' => {
                let v = self.top()?.clone();
                self.push(v)?;
            }
            0x80 => {
                let proto = input.byte()?;
                if proto > 5 {
                    return Err(malformed(format!("unsupported protocol {proto}")));
                }
            }
            0x95 => {
                input.u64()?;
            }
            _ => return self.op_data(op, input),
        }
        Ok(false)
    }

    fn op_data(&mut self, op: u8, input: &mut Input<'_>) -> Step<bool> {
        let v = match op {
            b'N' => Value::None,
            0x88 => Value::Bool,
            0x89 => Value::Bool,
            b'I' | b'L' => self.int_line(input)?,
            b'J' => Value::Int(i64::from(i32::from_le_bytes(input.array()?))),
            b'K' => Value::Int(i64::from(input.byte()?)),
            b'M' => Value::Int(i64::from(u16::from_le_bytes(input.array()?))),
            0x8a => {
                let n = input.byte()?;
                self.long_bytes(input, u64::from(n))?
            }
            0x8b => {
                let n = i32::from_le_bytes(input.array()?);
                let n = u64::try_from(n).map_err(|_| malformed("negative LONG4 length"))?;
                self.long_bytes(input, n)?
            }
            b'F' => {
                self.line(input)?;
                Value::Num
            }
            b'G' => {
                input.array::<8>()?;
                Value::Num
            }
            b'S' => self.quoted_line(input)?,
            b'V' => {
                self.line(input)?;
                let s = String::from_utf8_lossy(&self.buf).into_owned();
                self.text(&s)
            }
            b'T' => {
                let n = i32::from_le_bytes(input.array()?);
                let n = u64::try_from(n).map_err(|_| malformed("negative BINSTRING length"))?;
                self.string(input, n)?
            }
            b'U' | 0x8c => {
                let n = input.byte()?;
                self.string(input, u64::from(n))?
            }
            b'X' => {
                let n = input.u32()?;
                self.string(input, u64::from(n))?
            }
            0x8d => {
                let n = input.u64()?;
                self.string(input, n)?
            }
            b'C' => {
                let n = input.byte()?;
                input.skip(u64::from(n))?;
                Value::Bytes
            }
            b'B' => {
                let n = input.u32()?;
                input.skip(u64::from(n))?;
                Value::Bytes
            }
            0x8e | 0x96 => {
                let n = input.u64()?;
                input.skip(n)?;
                Value::Bytes
            }
            0x97 => Value::Bytes,
            0x98 => {
                self.top()?;
                return Ok(false);
            }
            b')' => self.empty_tuple.clone(),
            b']' | 0x8f => Value::Container,
            b'}' => self.new_dict(),
            _ => return self.op_build(op, input),
        };
        self.push(v)?;
        Ok(false)
    }

    fn op_build(&mut self, op: u8, input: &mut Input<'_>) -> Step<bool> {
        match op {
            b't' => self.tuple_mark()?,
            0x85 => self.tuple_n(1)?,
            0x86 => self.tuple_n(2)?,
            0x87 => self.tuple_n(3)?,
            b'l' | 0x91 => self.container_mark()?,
            b'd' => {
                let start = self.pop_mark()?;
                let dict = self.new_dict();
                self.stack.insert(start, dict);
                self.set_items(start + 1)?;
            }
            b'a' => {
                self.pop()?;
                self.top()?;
            }
            b'e' | 0x90 => {
                let start = self.pop_mark()?;
                self.stack.truncate(start);
                self.top()?;
            }
            b's' => {
                if self.stack.len() < self.floor() + 3 {
                    return Err(malformed("stack underflow"));
                }
                let start = self.stack.len() - 2;
                self.set_items(start)?;
            }
            b'u' => {
                let start = self.pop_mark()?;
                if start <= self.floor() || start == 0 {
                    return Err(malformed("stack underflow"));
                }
                self.set_items(start)?;
            }
            b'b' => self.build(input)?,
            _ => return self.op_memo(op, input),
        }
        Ok(false)
    }

    fn op_memo(&mut self, op: u8, input: &mut Input<'_>) -> Step<bool> {
        match op {
            b'p' => {
                let i = self.line_u64(input)?;
                self.put(i)?;
            }
            b'q' => {
                let i = input.byte()?;
                self.put(u64::from(i))?;
            }
            b'r' => {
                let i = input.u32()?;
                self.put(u64::from(i))?;
            }
            0x94 => {
                let i = self.memo.len();
                self.put(i)?;
            }
            b'g' => {
                let i = self.line_u64(input)?;
                self.get(i)?;
            }
            b'h' => {
                let i = input.byte()?;
                self.get(u64::from(i))?;
            }
            b'j' => {
                let i = input.u32()?;
                self.get(u64::from(i))?;
            }
            _ => return self.op_call(op, input),
        }
        Ok(false)
    }

    fn op_call(&mut self, op: u8, input: &mut Input<'_>) -> Step<bool> {
        let v = match op {
            b'c' => {
                let path = self.global_lines(input)?;
                self.global(path)
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                self.stack_global(&module, &name)?
            }
            0x82 => {
                let code = input.byte()?;
                self.extension(u32::from(code))?;
                return Ok(false);
            }
            0x83 => {
                let code = u16::from_le_bytes(input.array()?);
                self.extension(u32::from(code))?;
                return Ok(false);
            }
            0x84 => {
                let code = input.u32()?;
                self.extension(code)?;
                return Ok(false);
            }
            b'R' => {
                let args = self.pop()?;
                let f = self.pop()?;
                self.call(&f, &args)?
            }
            0x81 => {
                let _args = self.pop()?;
                let cls = self.pop()?;
                self.instantiate(&cls)?
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let _args = self.pop()?;
                let cls = self.pop()?;
                self.instantiate(&cls)?
            }
            b'o' => {
                let start = self.pop_mark()?;
                let cls = self
                    .stack
                    .get(start)
                    .cloned()
                    .ok_or_else(|| malformed("OBJ without a class"))?;
                let args = self.take_tuple(start + 1);
                self.stack.truncate(start);
                if matches!(cls, Value::Callable(_)) {
                    self.call(&cls, &args)?
                } else {
                    self.instantiate(&cls)?
                }
            }
            b'i' => {
                let path = self.global_lines(input)?;
                let cls = self.global(path);
                let start = self.pop_mark()?;
                let args = self.take_tuple(start);
                self.call(&cls, &args)?
            }
            b'P' => {
                self.line(input)?;
                Value::Opaque
            }
            b'Q' => {
                self.pop()?;
                Value::Opaque
            }
            _ => return Err(malformed(format!("unknown opcode 0x{op:02x}"))),
        };
        self.push(v)?;
        Ok(false)
    }
}

/// What joblib needs to know to step over an inline array.
struct ArrayLayout {
    has_object: bool,
    padded: bool,
    bytes: u64,
}

impl ArrayLayout {
    fn from_state(state: &[(Value, Value)]) -> Option<Self> {
        let field = |key: &str| {
            state
                .iter()
                .find(|(k, _)| k.str() == Some(key))
                .map(|(_, v)| v)
        };
        let Some(Value::Dtype(dtype)) = field("dtype") else {
            return None;
        };
        let dtype = dtype.borrow();
        let has_object = dtype.code.contains('O') || dtype.flags & 1 != 0;
        let padded = matches!(field("numpy_array_alignment_bytes"), Some(Value::Int(_)));
        if has_object {
            return Some(ArrayLayout {
                has_object,
                padded,
                bytes: 0,
            });
        }
        let Some(Value::Tuple(_, shape)) = field("shape") else {
            return None;
        };
        let mut count: u64 = 1;
        for dim in shape.iter() {
            let Value::Int(n) = dim else { return None };
            count = count.checked_mul(u64::try_from(*n).ok()?)?;
        }
        let bytes = count.checked_mul(itemsize(&dtype)?)?;
        Some(ArrayLayout {
            has_object,
            padded,
            bytes,
        })
    }
}

/// The size of one element: the BUILD state's elsize when set, else the type string's
/// digits (`<f8` → 8, `?` → 1).
fn itemsize(dtype: &Dtype) -> Option<u64> {
    if dtype.elsize > 0 {
        return u64::try_from(dtype.elsize).ok();
    }
    let code = dtype.code.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = code.chars();
    let kind = chars.next()?;
    let digits: String = chars.take_while(char::is_ascii_digit).collect();
    match (kind, digits.parse::<u64>()) {
        ('?', _) => Some(1),
        ('U', Ok(n)) => n.checked_mul(4),
        (_, Ok(n)) => Some(n),
        _ => None,
    }
}

/// A tracked tuple of `items`, or an opaque container when it is too long or too deep.
fn make_tuple(nesting_max: u32, items: &[Value]) -> Value {
    if items.len() > TUPLE_TRACKED {
        return Value::Container;
    }
    let depth = items
        .iter()
        .map(|v| match v {
            Value::Tuple(d, _) => *d,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    if depth >= nesting_max {
        return Value::Container;
    }
    Value::Tuple(depth + 1, items.iter().cloned().map(Value::flat).collect())
}

/// Evaluates the string methods a pickle can call to build a name at load time
/// (`str.join`, `str.lower`, `str.replace`, a rot13 `codecs.decode`, ...).
fn string_op(callable: &str, args: &Value) -> Option<String> {
    let arg = |i| args.item(i).and_then(Value::str);
    let s = arg(0)?;
    Some(match callable {
        "builtins.str.lower" => s.to_lowercase(),
        "builtins.str.upper" => s.to_uppercase(),
        "builtins.str.strip" => s.trim().to_owned(),
        "builtins.str.swapcase" => s
            .chars()
            .map(|c| {
                if c.is_uppercase() {
                    c.to_lowercase().next().unwrap_or(c)
                } else {
                    c.to_uppercase().next().unwrap_or(c)
                }
            })
            .collect(),
        "builtins.str.replace" => s.replace(arg(1)?, arg(2)?),
        "builtins.str.join" => {
            let Some(Value::Tuple(_, parts)) = args.item(1) else {
                return None;
            };
            let parts: Option<Vec<&str>> = parts.iter().map(Value::str).collect();
            parts?.join(s)
        }
        "codecs.decode" | "codecs.encode" if matches!(arg(1)?, "rot13" | "rot_13") => s
            .chars()
            .map(|c| match c {
                'a'..='m' | 'A'..='M' => char::from(c as u8 + 13),
                'n'..='z' | 'N'..='Z' => char::from(c as u8 - 13),
                _ => c,
            })
            .collect(),
        _ => return None,
    })
}
