#!/usr/bin/env python3
"""Fills fuzz/corpus/<target>/ with seed inputs taken from ward-scan's test corpus.

    /work/main/.venv/bin/python seed.py            # from crates/ward-scan/fuzz

Runs tests/corpus/generate.py into a temporary directory (it never loads what it
writes), then copies the small files of each format to the targets that read it, plus
the pickles and configs found inside the generated zips, and the committed HDF5 fixtures.
Only reads and copies bytes: nothing here unpickles or loads a model.
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(HERE)
SIZE_MAX = 64 << 10

# Target -> glob patterns relative to the generated corpus.
SEEDS = {
    "pickle": ["pickle/*", "benign/*", "torch/legacy_raw_*", "joblib/benign.joblib",
               "joblib/malicious.joblib", "joblib/*object_array*"],
    "zip": ["archive/*.zip", "torch/*.pt", "torch/*.pth", "torch/*.zip", "numpy/*.npz",
            "keras/*.keras"],
    "tar": ["archive/*.tar", "torch/legacy_tar_*"],
    "compressed": ["archive/*.gz", "archive/*.zst", "joblib/*_*.joblib"],
    "sevenz": ["archive/*.7z"],
    "numpy": ["numpy/*.npy", "misnamed/weights.npy"],
    "safetensors": ["safetensors/*"],
    "gguf": ["gguf/*"],
    "onnx": ["onnx/*"],
    "savedmodel": ["savedmodel/*/saved_model.pb"],
    "keras_json": ["other/config.json"],
    "hdf5": ["keras/*.h5"],
}


def put(target, data):
    """Writes one seed, named by its hash like libFuzzer's own corpus files."""
    if len(data) > SIZE_MAX:
        return
    out = os.path.join(HERE, "corpus", target)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def members(zip_path):
    """Pickles and JSON configs stored inside a generated zip, read as bytes."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            for info in z.infolist():
                if info.file_size <= SIZE_MAX:
                    yield info.filename, z.read(info)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError, OSError):
        return


def main():
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([python, os.path.join(CRATE, "tests/corpus/generate.py"), tmp],
                       check=True, stdout=subprocess.DEVNULL)
        for target, patterns in SEEDS.items():
            for pattern in patterns:
                for path in glob.glob(os.path.join(tmp, pattern)):
                    with open(path, "rb") as f:
                        put(target, f.read())
        for path in glob.glob(os.path.join(tmp, "**/*"), recursive=True):
            if os.path.isfile(path) and not path.endswith("expected.json"):
                with open(path, "rb") as f:
                    put("scan_any", f.read())
            if zipfile.is_zipfile(path):
                for name, data in members(path):
                    if name.endswith(".pkl"):
                        put("pickle", data)
                    elif name.endswith(".json"):
                        put("keras_json", data)
    for path in glob.glob(os.path.join(CRATE, "src/formats/keras/fixtures/*.h5")):
        with open(path, "rb") as f:
            data = f.read()
        put("hdf5", data)
        put("scan_any", data)
    for target in sorted(os.listdir(os.path.join(HERE, "corpus"))):
        print(target, len(os.listdir(os.path.join(HERE, "corpus", target))))


if __name__ == "__main__":
    main()
