//! Which callables a pickle may import: a deny-list, an allow-list, trusted namespaces,
//! and module aliases. Everything else is unknown (MEDIUM), never passed silently.
//!
//! Decisions worth knowing:
//! - `os`, `posix`, `nt` are one module; `posixpath`/`ntpath` are `os.path`; Python 2
//!   names (`__builtin__`, `copy_reg`, `cPickle`) map to their Python 3 modules, as the
//!   unpickler's protocol-2 compatibility map does.
//! - `os.path` is graded with `os` (HIGH, file-system access): no model needs it.
//! - A deny pattern covers its submodules and attributes (`subprocess` covers
//!   `subprocess.Popen.__init__`); an allow pattern names exactly one callable, so a
//!   method reached through an allowed class is judged on its own.
//! - `sklearn.*`, `torch.nn.*` and `scipy.sparse.*` are trusted namespaces (LOW): whole
//!   estimators and modules are pickled by name, their constructors and `__setstate__`
//!   only store data; their file, network and loader functions are denied first.

use crate::Severity;

/// How a qualified callable is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// On the deny-list, with its severity and why.
    Denied(Severity, &'static str),
    /// Needed by real model files.
    Allowed,
    /// In a trusted library namespace: reported LOW.
    Trusted,
    /// On neither list.
    Unknown,
}

const C: Severity = Severity::Critical;
const H: Severity = Severity::High;

const EXEC: &str = "executes code";
const SHELL: &str = "runs a program or shell command";
const IMPORT: &str = "imports or resolves arbitrary names";
const LOAD: &str = "loads a nested pickle, which can execute code";
const CALLS: &str = "calls other callables";
const FILES: &str = "accesses files";
const NET: &str = "opens network connections";
const PROC: &str = "controls processes or the interpreter";

/// Deny patterns. A pattern ending in `*` or `.` is a raw prefix; any other covers the
/// exact path and everything under it (`os.system` covers `os.system.__call__`).
const DENY: &[(&str, Severity, &str)] = &[
    ("os.system", C, SHELL),
    ("os.popen", C, SHELL),
    ("os.exec*", C, SHELL),
    ("os.spawn*", C, SHELL),
    ("os.posix_spawn*", C, SHELL),
    ("os.startfile", C, SHELL),
    ("os.fork*", C, PROC),
    ("os.kill*", H, PROC),
    ("os", H, FILES),
    ("subprocess", C, SHELL),
    ("_posixsubprocess", C, SHELL),
    ("_winapi", C, SHELL),
    ("commands", C, SHELL),
    ("popen2", C, SHELL),
    ("pty", C, SHELL),
    ("platform.popen", C, SHELL),
    ("platform._syscmd*", C, SHELL),
    ("uuid._get_command_stdout", C, SHELL),
    ("_osx_support", C, SHELL),
    ("asyncio", C, SHELL),
    ("multiprocessing", C, SHELL),
    ("concurrent", C, CALLS),
    ("threading", C, CALLS),
    ("_thread", C, CALLS),
    ("webbrowser", C, SHELL),
    ("builtins.eval", C, EXEC),
    ("builtins.exec", C, EXEC),
    ("builtins.execfile", C, EXEC),
    ("builtins.compile", C, EXEC),
    ("builtins.__import__", C, IMPORT),
    ("builtins.getattr", C, IMPORT),
    ("builtins.setattr", C, EXEC),
    ("builtins.delattr", C, EXEC),
    ("builtins.breakpoint", C, EXEC),
    ("builtins.globals", C, IMPORT),
    ("builtins.locals", C, IMPORT),
    ("builtins.vars", C, IMPORT),
    ("builtins.apply", C, CALLS),
    ("builtins.reload", C, IMPORT),
    ("builtins.help", C, SHELL),
    ("builtins.open", H, FILES),
    ("builtins.file", H, FILES),
    ("builtins.input", H, PROC),
    ("builtins.raw_input", H, PROC),
    ("builtins.exit", H, PROC),
    ("builtins.quit", H, PROC),
    ("runpy", C, EXEC),
    ("importlib", C, IMPORT),
    ("imp", C, IMPORT),
    ("zipimport", C, IMPORT),
    ("pkgutil", C, IMPORT),
    ("sys", C, IMPORT),
    ("code", C, EXEC),
    ("codeop", C, EXEC),
    ("ctypes", C, EXEC),
    ("_ctypes", C, EXEC),
    ("cffi", C, EXEC),
    ("marshal", C, EXEC),
    ("types.CodeType", C, EXEC),
    ("types.FunctionType", C, EXEC),
    ("types.LambdaType", C, EXEC),
    ("types.MethodType", C, EXEC),
    ("types.ModuleType", C, EXEC),
    ("pickle", C, LOAD),
    ("pickletools", C, LOAD),
    ("shelve", C, LOAD),
    ("dill", C, LOAD),
    ("cloudpickle", C, LOAD),
    ("joblib.load", C, LOAD),
    ("joblib.numpy_pickle.load", C, LOAD),
    ("joblib.numpy_pickle.NumpyUnpickler", C, LOAD),
    ("joblib.numpy_pickle_compat", C, LOAD),
    ("joblib.parallel", C, CALLS),
    ("joblib.Parallel", C, CALLS),
    ("joblib.delayed", C, CALLS),
    ("torch.load", C, LOAD),
    ("torch.serialization", C, LOAD),
    ("torch.storage._load_from_bytes", C, LOAD),
    ("torch.save", H, FILES),
    ("torch.hub", C, EXEC),
    // torch.utils entry points that run processes, code or loaders.
    ("torch.utils.collect_env", C, SHELL),
    ("torch.utils.bottleneck", C, EXEC),
    ("torch.utils.benchmark", C, EXEC),
    ("torch.utils.jit", C, EXEC),
    ("torch.utils.model_zoo", C, LOAD),
    ("torch.utils.show_pickle", C, LOAD),
    ("torch.utils.checkpoint", C, CALLS),
    ("torch.utils._pytree.tree_*", C, CALLS),
    ("torch.utils.hipify", H, FILES),
    ("torch.utils.file_baton", H, FILES),
    ("torch.utils.tensorboard", H, FILES),
    ("torch.multiprocessing", C, SHELL),
    ("torch.testing", C, EXEC),
    ("torch.export", C, LOAD),
    ("torch._export", C, EXEC),
    ("torch._ops", C, EXEC),
    ("torch._jit_internal", C, EXEC),
    ("torch._library", C, EXEC),
    ("torch.func", C, CALLS),
    ("torch.vmap", C, CALLS),
    ("torch._functorch", C, CALLS),
    ("torch.onnx", H, FILES),
    ("torch.profiler", H, FILES),
    ("torch.jit", C, EXEC),
    ("torch.package", C, EXEC),
    ("torch.utils.cpp_extension", C, EXEC),
    ("torch._inductor", C, EXEC),
    ("torch._dynamo", C, EXEC),
    ("torch.compile", C, EXEC),
    ("torch.ops", C, EXEC),
    ("torch.library", C, EXEC),
    ("torch.classes", C, EXEC),
    ("torch._C", C, EXEC),
    ("torch.distributed", C, NET),
    ("torch.utils.data.datapipes", C, CALLS),
    ("torch.fx", C, EXEC),
    ("numpy.load", C, LOAD),
    ("numpy.lib.npyio", C, LOAD),
    ("numpy.lib.format", C, LOAD),
    ("numpy.testing", C, EXEC),
    ("numpy.f2py", C, EXEC),
    ("numpy.distutils", C, EXEC),
    ("numpy.ctypeslib", C, EXEC),
    ("numpy.save*", H, FILES),
    ("numpy.fromfile", H, FILES),
    ("numpy.loadtxt", H, FILES),
    ("numpy.genfromtxt", H, FILES),
    ("numpy.memmap", H, FILES),
    ("numpy.ndarray.tofile", H, FILES),
    ("numpy.ndarray.dump", H, FILES),
    ("pandas.read_pickle", C, LOAD),
    ("pandas.io", H, FILES),
    ("operator.attrgetter", C, CALLS),
    ("operator.methodcaller", C, CALLS),
    ("operator.call", C, CALLS),
    ("functools", C, CALLS),
    ("itertools.starmap", C, CALLS),
    ("builtins.map", C, CALLS),
    ("builtins.filter", C, CALLS),
    ("copyreg.add_extension", C, IMPORT),
    ("copyreg.pickle", C, IMPORT),
    ("pydoc", C, SHELL),
    ("timeit", C, EXEC),
    ("cProfile", C, EXEC),
    ("profile", C, EXEC),
    ("pdb", C, EXEC),
    ("bdb", C, EXEC),
    ("trace", C, EXEC),
    ("doctest", C, EXEC),
    ("idlelib", C, EXEC),
    ("lib2to3", C, EXEC),
    ("distutils", C, SHELL),
    ("setuptools", C, SHELL),
    ("pip", C, SHELL),
    ("ensurepip", C, SHELL),
    ("venv", C, SHELL),
    ("site", C, EXEC),
    ("sysconfig", H, FILES),
    ("logging.config", C, EXEC),
    ("signal", H, PROC),
    ("resource", H, PROC),
    ("gc", H, PROC),
    ("atexit", C, CALLS),
    ("inspect", C, IMPORT),
    ("shutil", H, FILES),
    ("tempfile", H, FILES),
    ("glob", H, FILES),
    ("fileinput", H, FILES),
    ("linecache", H, FILES),
    ("io.open", H, FILES),
    ("io.open_code", H, FILES),
    ("io.FileIO", H, FILES),
    ("codecs.open", H, FILES),
    ("gzip", H, FILES),
    ("bz2", H, FILES),
    ("lzma", H, FILES),
    ("zipfile", H, FILES),
    ("tarfile", H, FILES),
    ("mmap", H, FILES),
    ("sqlite3", H, FILES),
    ("dbm", H, FILES),
    ("socket", H, NET),
    ("_socket", H, NET),
    ("socketserver", H, NET),
    ("ssl", H, NET),
    ("select", H, NET),
    ("http", H, NET),
    ("httplib", H, NET),
    ("urllib", H, NET),
    ("urllib2", H, NET),
    ("urllib3", H, NET),
    ("requests", H, NET),
    ("httpx", H, NET),
    ("aiohttp", H, NET),
    ("ftplib", H, NET),
    ("smtplib", H, NET),
    ("poplib", H, NET),
    ("imaplib", H, NET),
    ("nntplib", H, NET),
    ("telnetlib", H, NET),
    ("xmlrpc", H, NET),
    ("xmlrpclib", H, NET),
    ("mailcap", C, SHELL),
    ("_pyrepl", C, SHELL),
    ("_sitebuiltins", C, SHELL),
    ("operator.itemgetter", C, CALLS),
    ("compileall", H, FILES),
    ("py_compile", H, FILES),
    ("filecmp", H, FILES),
    ("netrc", H, FILES),
    ("tabnanny", H, FILES),
    ("mimetypes.init", H, FILES),
    ("mimetypes.read_mime_types", H, FILES),
    ("aifc.open", H, FILES),
    ("wave.open", H, FILES),
    ("sunau.open", H, FILES),
    ("argparse.FileType", H, FILES),
    ("configparser.RawConfigParser.read", H, FILES),
    ("configparser.ConfigParser.read", H, FILES),
    ("sklearn.datasets", H, NET),
    ("sklearn.externals", C, LOAD),
    ("sklearn.utils._testing", C, EXEC),
    ("scipy.sparse.load_npz", C, LOAD),
    ("scipy.sparse.save_npz", H, FILES),
];

/// Callables real model files need (PyTorch, NumPy, joblib, the standard library).
const ALLOW: &[&str] = &[
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_xla_tensor",
    "torch._utils._rebuild_mlc_tensor",
    "torch._tensor._rebuild_from_type",
    "torch._tensor._rebuild_from_type_v2",
    "torch.nn.parameter.Parameter",
    "torch.nn.parameter._rebuild_parameter",
    "torch.serialization._get_layout",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor",
    "torch._utils._rebuild_sparse_csr_tensor",
    "torch.sparse_csr",
    "torch.sparse_csc",
    "torch.sparse_bsr",
    "torch.sparse_bsc",
    "torch.Size",
    "torch.device",
    "torch.Tensor",
    "torch.storage.TypedStorage",
    "torch.storage.UntypedStorage",
    "torch.UntypedStorage",
    "torch.TypedStorage",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    "torch.ComplexFloatStorage",
    "torch.ComplexDoubleStorage",
    "torch.QUInt8Storage",
    "torch.QInt8Storage",
    "torch.QInt32Storage",
    "torch.QUInt4x2Storage",
    "torch.QUInt2x4Storage",
    "torch.float",
    "torch.float16",
    "torch.float32",
    "torch.float64",
    "torch.double",
    "torch.half",
    "torch.bfloat16",
    "torch.float8_e4m3fn",
    "torch.float8_e5m2",
    "torch.int",
    "torch.int8",
    "torch.int16",
    "torch.int32",
    "torch.int64",
    "torch.uint8",
    "torch.uint16",
    "torch.uint32",
    "torch.uint64",
    "torch.short",
    "torch.long",
    "torch.bool",
    "torch.complex32",
    "torch.complex64",
    "torch.complex128",
    "torch.cfloat",
    "torch.cdouble",
    "torch.qint8",
    "torch.quint8",
    "torch.qint32",
    "torch.quint4x2",
    "torch.strided",
    "torch.sparse_coo",
    "torch.contiguous_format",
    "torch.channels_last",
    "torch.preserve_format",
    "torch.per_tensor_affine",
    "torch.per_channel_affine",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "collections.deque",
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.matrix",
    "numpy.ma.core._mareconstruct",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random.mtrand.RandomState",
    "builtins.set",
    "builtins.frozenset",
    "builtins.slice",
    "builtins.complex",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.range",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "builtins.object",
    "builtins.NoneType",
    "codecs.encode",
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    "argparse.Namespace",
    "types.SimpleNamespace",
    "pathlib.PosixPath",
    "pathlib.PurePosixPath",
    "pathlib.WindowsPath",
    "pathlib.PureWindowsPath",
    "pathlib.Path",
];

/// Library namespaces whose classes are pickled whole (estimators, modules): LOW.
const TRUSTED: &[&str] = &["sklearn.", "torch.nn.", "scipy.sparse."];

/// Module names the unpickler treats as one (Python 2 names, platform modules and C
/// accelerators), mapped to the name the lists use.
const ALIASES: &[(&str, &str)] = &[
    ("posix", "os"),
    ("nt", "os"),
    ("posixpath", "os.path"),
    ("ntpath", "os.path"),
    ("__builtin__", "builtins"),
    ("__builtins__", "builtins"),
    ("exceptions", "builtins"),
    ("copy_reg", "copyreg"),
    // Names the unpickler itself renames for Python 2 pickles.
    ("__builtin__.xrange", "builtins.range"),
    ("__builtin__.unicode", "builtins.str"),
    ("__builtin__.long", "builtins.int"),
    ("__builtin__.basestring", "builtins.str"),
    ("__builtin__.unichr", "builtins.chr"),
    ("__builtin__.reduce", "functools.reduce"),
    ("__builtin__.intern", "sys.intern"),
    ("UserDict.UserDict", "collections.UserDict"),
    ("UserList.UserList", "collections.UserList"),
    ("cPickle", "pickle"),
    ("_pickle", "pickle"),
    ("_operator", "operator"),
    ("_functools", "functools"),
    ("_io", "io"),
    ("_codecs", "codecs"),
    ("_collections", "collections"),
    ("numpy._core", "numpy.core"),
    ("urllib.request", "urllib"),
    ("Queue", "queue"),
    ("SocketServer", "socketserver"),
    ("BaseHTTPServer", "http"),
    ("SimpleHTTPServer", "http"),
    ("CGIHTTPServer", "http"),
];

/// Dunder attributes reachable from a global that are part of normal pickles.
const DUNDER_OK: &[&str] = &["__newobj__", "__newobj_ex__"];

/// The qualified name with its module aliases resolved (`posix.system` → `os.system`)
/// and, when an attribute hop lands on a denied callable, that callable: since protocol
/// 4 the unpickler resolves a dotted name attribute by attribute, and a module's
/// attribute named after a module usually is that module (`logging.os` is `os`,
/// `codecs.builtins` is `builtins`), so `logging.os.system` is `os.system`.
pub fn canonical(path: &str) -> String {
    let direct = unaliased(path);
    if judge(&direct) == Verdict::Allowed {
        return direct;
    }
    let rank = |v: Verdict| match v {
        Verdict::Denied(severity, _) => Some(severity),
        _ => None,
    };
    let own = rank(judge(&direct));
    let best = hops(&direct)
        .filter_map(|hop| {
            let hop = unaliased(hop);
            rank(judge(&hop)).map(|severity| (severity, hop))
        })
        // Worst first; among equals the outermost hop (the first found) is kept.
        .fold(
            None::<(Severity, String)>,
            |best, (severity, hop)| match best {
                Some((b, _)) if b >= severity => best,
                _ => Some((severity, hop)),
            },
        );
    match best {
        Some((severity, hop)) if own.is_none_or(|own| severity >= own) => hop,
        _ => direct,
    }
}

/// Attribute hops judged per name: bounds the work a long dotted name can cause.
const HOPS_MAX: usize = 32;

/// The suffixes of `path` that start at an attribute named like a module the deny-list
/// or the alias table knows (`os.system` in `logging.os.system`), outermost first.
fn hops(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('.')
        .filter_map(|(dot, _)| path.get(dot + 1..))
        .filter(|rest| {
            let first = rest.split('.').next().unwrap_or_default();
            module_roots().contains(first)
        })
        .take(HOPS_MAX)
}

/// First components of the deny patterns and aliases: the module names a hop may land on.
fn module_roots() -> &'static std::collections::HashSet<&'static str> {
    static ROOTS: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let first = |p: &'static str| {
            p.split(['.', '*'])
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or(p)
        };
        DENY.iter()
            .map(|(p, _, _)| first(p))
            .chain(ALIASES.iter().map(|(a, _)| first(a)))
            .collect()
    })
}

/// `path` with its module alias resolved (the longest alias that is a prefix).
fn unaliased(path: &str) -> String {
    let best = ALIASES
        .iter()
        .filter(|(alias, _)| {
            path == *alias
                || path
                    .strip_prefix(alias)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|(alias, _)| alias.len());
    match best {
        Some((alias, real)) => format!("{real}{}", path.get(alias.len()..).unwrap_or("")),
        None => path.to_owned(),
    }
}

/// Whether deny `pattern` covers `path` (a raw prefix, or the path and what is under it).
fn covers(pattern: &str, path: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        return path.starts_with(prefix);
    }
    if pattern.ends_with('.') {
        return path.starts_with(pattern);
    }
    path == pattern
        || path
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether `path` is one of the dtype-specific classes named by shape: `torch.XStorage`,
/// `torch.XTensor` (also under `torch.cuda`) and `numpy.dtypes.XDType`. The parent
/// module must match exactly: a suffix test over any depth would let an attacker pick
/// `torch.<anything>.EvilTensor`.
fn class_by_shape(path: &str) -> bool {
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let torch = path
        .strip_prefix("torch.cuda.")
        .or_else(|| path.strip_prefix("torch."))
        .and_then(|n| {
            n.strip_suffix("Storage")
                .or_else(|| n.strip_suffix("Tensor"))
        });
    let numpy = path
        .strip_prefix("numpy.dtypes.")
        .and_then(|n| n.strip_suffix("DType"));
    torch.is_some_and(word) || numpy.is_some_and(word)
}

/// Judges a canonical qualified callable. Exact allow-list entries come first (they
/// carve single callables out of denied modules, like `torch.serialization._get_layout`),
/// then the deny-list, dunder traversal, allowed shapes and trusted namespaces.
pub fn judge(canonical: &str) -> Verdict {
    if ALLOW.contains(&canonical) || class_by_shape(canonical) {
        return Verdict::Allowed;
    }
    if let Some((_, severity, why)) = DENY.iter().find(|(p, _, _)| covers(p, canonical)) {
        return Verdict::Denied(*severity, why);
    }
    let mut parts = canonical.split('.');
    parts.next();
    if let Some(dunder) = parts.find(|p| p.len() > 4 && p.starts_with("__") && p.ends_with("__"))
        && !DUNDER_OK.contains(&dunder)
    {
        return Verdict::Denied(C, "reaches a dunder attribute (attribute traversal)");
    }
    if TRUSTED.iter().any(|p| canonical.starts_with(p)) {
        return Verdict::Trusted;
    }
    Verdict::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expected: Verdict) {
        assert_eq!(judge(&canonical(path)), expected, "{path}");
    }

    #[test]
    fn verdicts() {
        let cases = [
            ("posix.system", Verdict::Denied(C, SHELL)),
            ("nt.system", Verdict::Denied(C, SHELL)),
            ("os.execvp", Verdict::Denied(C, SHELL)),
            ("os.path.exists", Verdict::Denied(H, FILES)),
            ("posixpath.join", Verdict::Denied(H, FILES)),
            ("__builtin__.eval", Verdict::Denied(C, EXEC)),
            ("builtins.getattr", Verdict::Denied(C, IMPORT)),
            ("subprocess.Popen", Verdict::Denied(C, SHELL)),
            ("subprocess.Popen.__init__", Verdict::Denied(C, SHELL)),
            ("_pickle.loads", Verdict::Denied(C, LOAD)),
            ("torch.load", Verdict::Denied(C, LOAD)),
            ("torch.load_state_dict_x", Verdict::Unknown),
            (
                "builtins.object.__subclasses__",
                Verdict::Denied(C, "reaches a dunder attribute (attribute traversal)"),
            ),
            ("socket.create_connection", Verdict::Denied(H, NET)),
            ("torch._utils._rebuild_tensor_v2", Verdict::Allowed),
            ("torch.FloatStorage", Verdict::Allowed),
            ("torch.cuda.HalfTensor", Verdict::Allowed),
            ("torch.serialization._get_layout", Verdict::Allowed),
            ("torch.serialization.load", Verdict::Denied(C, LOAD)),
            ("torch.utils.other.EvilTensor", Verdict::Unknown),
            ("torch.utils.collect_env.run", Verdict::Denied(C, SHELL)),
            ("torch.utils._pytree.tree_map", Verdict::Denied(C, CALLS)),
            ("torch.multiprocessing.spawn", Verdict::Denied(C, SHELL)),
            ("logging.os.system", Verdict::Denied(C, SHELL)),
            ("logging.os", Verdict::Denied(H, FILES)),
            ("codecs.builtins.exec", Verdict::Denied(C, EXEC)),
            ("a.b.sys.modules", Verdict::Denied(C, IMPORT)),
            ("os.path.os.system", Verdict::Denied(C, SHELL)),
            ("x.posix.system", Verdict::Denied(C, SHELL)),
            ("x.__builtin__.eval", Verdict::Denied(C, EXEC)),
            ("codecs.builtins", Verdict::Unknown),
            ("collections.OrderedDict.os", Verdict::Denied(H, FILES)),
            ("torch.Evil.Storage", Verdict::Unknown),
            ("copy_reg._reconstructor", Verdict::Allowed),
            ("copyreg.__newobj__", Verdict::Allowed),
            ("numpy._core.multiarray._reconstruct", Verdict::Allowed),
            ("numpy.dtypes.Float64DType", Verdict::Allowed),
            ("_codecs.encode", Verdict::Allowed),
            ("__builtin__.set", Verdict::Allowed),
            ("__builtin__.xrange", Verdict::Allowed),
            ("__builtin__.reduce", Verdict::Denied(C, CALLS)),
            ("collections.OrderedDict.fromkeys", Verdict::Unknown),
            (
                "sklearn.linear_model._base.LinearRegression",
                Verdict::Trusted,
            ),
            ("sklearn.datasets.fetch_openml", Verdict::Denied(H, NET)),
            ("torch.nn.modules.linear.Linear", Verdict::Trusted),
            ("__main__.MyModel", Verdict::Unknown),
            ("operator.add", Verdict::Unknown),
        ];
        for (path, expected) in cases {
            check(path, expected);
        }
    }
}
