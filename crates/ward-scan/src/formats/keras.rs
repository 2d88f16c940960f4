//! Keras models: H5 files (`model_config` attribute) and v3 `config.json`: Lambda
//! layers and custom objects.
//!
//! A Keras config is JSON. Code reaches it in three ways, all judged here:
//! - `Lambda` layers (and Keras 3's `__lambda__` objects) carry marshalled Python
//!   bytecode that runs when the model is loaded or called: CRITICAL.
//! - `module` + `class_name` (Keras 3, and Keras 2 since TF 2.13) name what the loader
//!   imports; a function is `class_name: "function"` with its name in `config`.
//!   Modules that run code or reach the system are CRITICAL or HIGH, modules outside
//!   Keras otherwise (custom objects, i.e. someone else's code) MEDIUM.
//! - `TFOpLambda` layers call `tf.<function>`: graded by that function (Python or file
//!   access); ordinary math ops are not reported.
//!
//! For H5 files the config is the root group's `model_config` (and `training_config`)
//! attribute, found by parsing HDF5 as h5py does (see [`super::hdf5`]), not by
//! searching bytes: attributes are never compressed, so the parse sees exactly what
//! Keras reads. What the parse cannot read (dense or shared attribute storage, which
//! h5py does not produce for Keras's few root attributes) is reported as unreadable and
//! as a MEDIUM finding, since a config could hide there.

use std::io::Read;

use serde_json::{Map, Value};

use super::hdf5::{self, Event};
use crate::{Analyzer, Format, Scan, Severity, Source};

/// Keras H5 (HDF5) models.
pub struct H5Analyzer;
/// JSON configs (Keras v3 `config.json`, H5 `model_config`).
pub struct JsonConfigAnalyzer;

impl Analyzer for H5Analyzer {
    fn format(&self) -> Format {
        Format::Hdf5
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let limits = scan.limits().clone();
        let mut events = Vec::new();
        let (read, res) = hdf5::root_attributes(src, &limits, &mut |e| events.push(e));
        scan.count_bytes(read);
        for event in events {
            match event {
                Event::Attribute {
                    name,
                    value,
                    offset,
                } => h5_attribute(scan, &name, &value, offset),
                Event::Unsupported { offset, what } => {
                    scan.finding(
                        Severity::Medium,
                        "keras.h5-unread-attributes",
                        format!(
                            "HDF5 root group holds {what}; a Keras config there is not checked"
                        ),
                        Some(offset),
                    );
                    scan.unreadable(Some(offset), format!("HDF5: {what}"));
                }
            }
        }
        if let Err(e) = res {
            scan.unreadable(Some(e.offset), format!("HDF5: {}", e.reason));
        }
    }
}

/// Judges a root attribute: the Keras configs, and any other that holds a JSON object.
fn h5_attribute(scan: &mut Scan<'_>, name: &str, value: &[u8], offset: u64) {
    let keras = matches!(name, "model_config" | "training_config");
    if !keras && !sniff_json(value) {
        return;
    }
    match serde_json::from_slice::<Value>(value) {
        Ok(config) => judge(scan, &config, offset),
        Err(e) if keras => scan.unreadable(
            Some(offset),
            format!("HDF5 attribute {name}: not valid JSON: {e}"),
        ),
        Err(_) => {}
    }
}

impl Analyzer for JsonConfigAnalyzer {
    fn format(&self) -> Format {
        Format::Json
    }

    fn analyse(&self, src: &mut dyn Source, scan: &mut Scan<'_>) {
        let max = scan.limits().header_bytes_max;
        let mut text = Vec::new();
        if let Err(e) = src.take(max.saturating_add(1)).read_to_end(&mut text) {
            scan.unreadable(Some(text.len() as u64), format!("JSON: read error: {e}"));
            return;
        }
        scan.count_bytes(text.len() as u64);
        if text.len() as u64 > max {
            scan.unreadable(
                Some(max),
                format!("JSON document larger than {max} bytes (limits.header_bytes_max)"),
            );
            return;
        }
        match serde_json::from_slice::<Value>(&text) {
            Ok(config) => judge(scan, &config, 0),
            Err(e) => {
                scan.unreadable(Some(0), format!("JSON: not valid: {e}"));
                judge_broken(scan, &text);
            }
        }
    }
}

/// A loader cannot use invalid JSON, but a damaged copy of a malicious config should
/// still be named: its strings are read lexically and `"class_name": "Lambda"` and
/// `"module": <denied>` pairs reported.
fn judge_broken(scan: &mut Scan<'_>, text: &[u8]) {
    let strings = json_strings(text);
    for pair in strings.windows(2) {
        let [(key, _), (value, at)] = pair else {
            continue;
        };
        let root = value.split('.').next().unwrap_or(value);
        let found = match key.as_str() {
            "class_name" if value == "Lambda" || value == "__lambda__" => Some((
                Severity::Critical,
                "keras.lambda",
                format!("Keras {value} layer (in invalid JSON)"),
            )),
            "module" if EXEC_MODULES.contains(&root) => Some((
                Severity::Critical,
                "keras.denied-module",
                format!("Keras config references module {value} (in invalid JSON)"),
            )),
            "module" if SYSTEM_MODULES.contains(&root) => Some((
                Severity::High,
                "keras.denied-module",
                format!("Keras config references module {value} (in invalid JSON)"),
            )),
            _ => None,
        };
        if let Some((severity, rule, message)) = found {
            scan.finding(severity, rule, message, Some(*at));
        }
    }
}

/// The string literals of a JSON text, decoded, with their offsets.
fn json_strings(text: &[u8]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(start) = text
        .get(i..)
        .and_then(|t| t.iter().position(|b| *b == b'"'))
    {
        let start = i + start;
        let mut j = start + 1;
        while let Some(&b) = text.get(j) {
            match b {
                b'\\' => j += 2,
                b'"' => break,
                _ => j += 1,
            }
        }
        let literal = text.get(start..=j).unwrap_or_default();
        if let Ok(s) = serde_json::from_slice::<String>(literal) {
            out.push((s, start as u64));
        }
        i = j + 1;
    }
    out
}

/// Judges a parsed config (or any JSON) for Keras code-carrying constructs.
pub fn judge(scan: &mut Scan<'_>, config: &Value, offset: u64) {
    let depth_max = scan.limits().nesting_depth_max;
    let mut deepest = false;
    walk(scan, config, offset, 0, depth_max, &mut deepest);
    if deepest {
        scan.unreadable(
            Some(offset),
            format!("JSON nested deeper than {depth_max} (limits.nesting_depth_max); the rest not judged"),
        );
    }
}

fn walk(scan: &mut Scan<'_>, v: &Value, at: u64, depth: u32, max: u32, deepest: &mut bool) {
    if depth > max {
        *deepest = true;
        return;
    }
    match v {
        Value::Object(obj) => {
            judge_object(scan, obj, at);
            for child in obj.values() {
                walk(scan, child, at, depth + 1, max, deepest);
            }
        }
        Value::Array(items) => {
            for child in items {
                walk(scan, child, at, depth + 1, max, deepest);
            }
        }
        _ => {}
    }
}

fn judge_object(scan: &mut Scan<'_>, obj: &Map<String, Value>, at: u64) {
    let Some(class) = obj.get("class_name").and_then(Value::as_str) else {
        return;
    };
    let config = obj.get("config");
    let layer = config
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    match class {
        "Lambda" => lambda(scan, config, layer, at),
        "__lambda__" => scan.finding(
            Severity::Critical,
            "keras.lambda",
            "Keras __lambda__ object carries marshalled Python bytecode",
            Some(at),
        ),
        "TFOpLambda" => tf_op_lambda(scan, config, layer, at),
        _ => {}
    }
    if let Some(module) = obj.get("module").and_then(Value::as_str) {
        let name = match (class, config.and_then(Value::as_str)) {
            ("function", Some(function)) => function,
            _ => class,
        };
        judge_reference(scan, module, name, at);
    }
}

fn lambda(scan: &mut Scan<'_>, config: Option<&Value>, layer: &str, at: u64) {
    let function = config.and_then(|c| c.get("function"));
    let kind = config
        .and_then(|c| c.get("function_type"))
        .and_then(Value::as_str);
    // A function by name (Keras 2 `function_type: "function"`, Keras 3 a serialized
    // function reference) rather than bytecode; the reference is judged on its own.
    let named = match (function, kind) {
        (Some(Value::String(f)), Some("function")) => Some(f.clone()),
        (Some(Value::Object(f)), _) if f.get("class_name") == Some(&Value::from("function")) => {
            let module = f.get("module").and_then(Value::as_str).unwrap_or("?");
            let name = f.get("config").and_then(Value::as_str).unwrap_or("?");
            Some(format!("{module}.{name}"))
        }
        _ => None,
    };
    match named {
        Some(f) => scan.finding(
            Severity::High,
            "keras.lambda",
            format!("Keras Lambda layer {layer:?} calls the Python function {f}"),
            Some(at),
        ),
        None => scan.finding(
            Severity::Critical,
            "keras.lambda",
            format!("Keras Lambda layer {layer:?} carries marshalled Python bytecode"),
            Some(at),
        ),
    }
}

/// `TFOpLambda` calls `tf.<function>` by its API name.
fn tf_op_lambda(scan: &mut Scan<'_>, config: Option<&Value>, layer: &str, at: u64) {
    let function = config
        .and_then(|c| c.get("function"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let lower = function.to_ascii_lowercase();
    let python = ["py_func", "py_function", "numpy_function", "pyfunc"];
    let files = [
        "io.",
        "gfile",
        "read_file",
        "write_file",
        "readfile",
        "writefile",
        "matching_files",
        "debugging.",
    ];
    let severity = if python.iter().any(|p| lower.contains(p)) {
        Severity::Critical
    } else if files.iter().any(|p| lower.contains(p)) {
        Severity::High
    } else {
        return;
    };
    scan.finding(
        severity,
        "keras.tf-op",
        format!("Keras TFOpLambda layer {layer:?} calls tf.{function}"),
        Some(at),
    );
}

/// Top-level modules whose objects run code when called or built.
const EXEC_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "__builtin__",
    "sys",
    "runpy",
    "importlib",
    "code",
    "codeop",
    "pty",
    "ctypes",
    "marshal",
    "pickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "multiprocessing",
    "pdb",
    "timeit",
    "commands",
    "asyncio",
    "popen2",
    "platform",
    "imp",
];

/// Top-level modules that reach files, the network or Python's object model.
const SYSTEM_MODULES: &[&str] = &[
    "io",
    "_io",
    "pathlib",
    "shutil",
    "tempfile",
    "glob",
    "socket",
    "ssl",
    "urllib",
    "http",
    "requests",
    "ftplib",
    "smtplib",
    "telnetlib",
    "webbrowser",
    "operator",
    "functools",
    "types",
    "inspect",
    "gc",
    "signal",
    "threading",
    "_thread",
    "zipimport",
    "pkgutil",
];

/// Top-level modules of Keras itself (and its official add-ons).
const KERAS_MODULES: &[&str] = &[
    "keras",
    "keras_core",
    "keras_nlp",
    "keras_hub",
    "keras_cv",
    "tf_keras",
    "tensorflow",
];

fn judge_reference(scan: &mut Scan<'_>, module: &str, name: &str, at: u64) {
    let root = module.split('.').next().unwrap_or(module);
    let qualified = format!("{module}.{name}");
    let (severity, rule, why) = if EXEC_MODULES.contains(&root) {
        (
            Severity::Critical,
            "keras.denied-module",
            "a module that runs code",
        )
    } else if SYSTEM_MODULES.contains(&root) {
        (
            Severity::High,
            "keras.denied-module",
            "a module that reaches the system",
        )
    } else if KERAS_MODULES.contains(&root) && !risky_tf(module) {
        return;
    } else if KERAS_MODULES.contains(&root) {
        (
            Severity::High,
            "keras.denied-module",
            "TensorFlow file or Python access",
        )
    } else {
        (
            Severity::Medium,
            "keras.custom-object",
            "a custom object outside Keras",
        )
    };
    scan.finding(
        severity,
        rule,
        format!("Keras config references {qualified} ({why})"),
        Some(at),
    );
}

/// TensorFlow modules (outside Keras) that touch files or run Python.
fn risky_tf(module: &str) -> bool {
    module.starts_with("tensorflow")
        && !module.starts_with("tensorflow.keras")
        && module
            .split('.')
            .any(|part| matches!(part, "io" | "gfile" | "file_io" | "script_ops"))
}

/// Whether the first bytes look like a JSON object: optional whitespace (or a UTF-8
/// byte order mark), `{`, then a key or the closing brace.
pub fn sniff_json(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let mut rest = head.iter().skip_while(|b| b.is_ascii_whitespace());
    if rest.next() != Some(&b'{') {
        return false;
    }
    match rest.find(|b| !b.is_ascii_whitespace()) {
        None => true,
        // `{}`: an empty object, and nothing after it.
        Some(b'}') => rest.all(|b| b.is_ascii_whitespace()),
        // The first key: printable text up to its closing quote, then a colon.
        Some(b'"') => match rest.find(|b| **b == b'"' || **b < 0x20) {
            None => true,
            Some(b'"') => matches!(rest.find(|b| !b.is_ascii_whitespace()), Some(b':') | None),
            Some(_) => false,
        },
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests;
