"""Live blob round trips between DataJoint Python 2.3.5 and dj-rs (run by `cargo xtask test`).

1. Python packs random values; Rust unpacks and repacks them (compat mode); Python unpacks Rust's
   bytes and compares them equal to the originals, and checks the bytes are identical to its own.
2. Rust packs random values; Python unpacks and repacks them; Rust decodes Python's bytes and
   compares them with its originals.
"""
import datetime
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
from datajoint import blob

ROOT = Path(__file__).resolve().parents[4]


def tool(*args):
    subprocess.run(
        ["cargo", "run", "--quiet", "--manifest-path", str(ROOT / "Cargo.toml"), "-p", "dj-codec-blob", "--example", "blob_tool", "--", *args],
        check=True,
    )


def random_value(rng, depth=0):
    kinds = 12 if depth < 3 else 8
    k = int(rng.integers(kinds))
    if k == 0:
        return None
    if k == 1:
        return bool(rng.integers(2))
    if k == 2:
        return int(rng.integers(-(2**62), 2**62)) * int(rng.integers(1, 2**40))
    if k == 3:
        return float(rng.standard_normal())
    if k == 4:
        return "".join(chr(int(c)) for c in rng.integers(0x20, 0x3000, size=int(rng.integers(0, 10))))
    if k == 5:
        return rng.bytes(int(rng.integers(0, 50)))
    if k == 6:
        dtype = [np.float64, np.float32, np.int16, np.uint8, np.int64, np.complex128][int(rng.integers(6))]
        shape = tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        a = rng.standard_normal(shape) * 100
        if dtype is np.complex128:
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dtype)
    if k == 7:
        return [datetime.datetime(2024, 1, 2, 3, 4, 5, 6), datetime.date(1999, 12, 31), uuid.UUID(int=int(rng.integers(2**62)))][int(rng.integers(3))]
    if k == 8:
        return [random_value(rng, depth + 1) for _ in range(int(rng.integers(4)))]
    if k == 9:
        return tuple(random_value(rng, depth + 1) for _ in range(int(rng.integers(4))))
    if k == 10:
        return {f"k{i}": random_value(rng, depth + 1) for i in range(int(rng.integers(4)))}
    return rng.standard_normal(int(rng.integers(200, 3000)))  # large enough to be compressed


def equal(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def main():
    rng = np.random.default_rng(20261123)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        values = [random_value(rng) for _ in range(300)]
        for i, v in enumerate(values):
            (d / f"py_{i}.blob").write_bytes(blob.pack(v))
        tool("repack", str(d))
        for i, v in enumerate(values):
            ours = (d / f"py_{i}.blob").read_bytes()
            theirs = (d / f"py_{i}.rust.blob").read_bytes()
            back = blob.unpack(theirs)
            assert equal(v, back), f"value {i}: {v!r} came back as {back!r}"
            assert ours == theirs, f"value {i}: Rust's compat bytes differ from DataJoint's"
        print(f"python -> rust -> python: {len(values)} values equal and byte-identical")

        tool("generate", str(d), "300", "42")
        n = 0
        for p in sorted(d.glob("rust_*.blob")):
            if p.name.endswith(".py.blob"):
                continue
            value = blob.unpack(p.read_bytes())
            p.with_suffix(".py.blob").write_bytes(blob.pack(value))
            n += 1
        assert n == 300, n
        tool("check", str(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
