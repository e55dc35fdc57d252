"""Live blob round trips between DataJoint Python 2.3.5 and dj-rs (run by `cargo xtask test`).

1. Python packs random values. Rust decodes each and re-encodes it twice: in `compat` mode, which
   must give DataJoint's bytes exactly, and in the default `fast` mode, which DataJoint must read
   back to an equal value.
2. Rust generates random values (every array class, MATLAB cells and structs, record arrays,
   Python scalars and containers) and writes them in both modes. Python unpacks both, checks they
   are equal, and packs the value again: those bytes must equal Rust's `compat` bytes, and Rust
   decodes them to its original value.
"""
import datetime
import decimal
import os
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", message="No datajoint.json")
from datajoint import blob  # noqa: E402

ROOT = Path(__file__).resolve().parents[4]
N = int(os.environ.get("DJ_BLOB_INTEROP_N", "400"))

NUMERIC = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
           np.uint64, np.float32, np.float64, np.complex64, np.complex128]
UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"]


def tool(*args):
    subprocess.run(
        ["cargo", "run", "--quiet", "--release", "--manifest-path", str(ROOT / "Cargo.toml"),
         "-p", "dj-codec-blob", "--example", "blob_tool", "--", *args],
        check=True,
    )


def shape(rng):
    return tuple(int(s) for s in rng.integers(0, 4, size=int(rng.integers(0, 4))))


def numeric_array(rng, shp):
    dtype = NUMERIC[int(rng.integers(len(NUMERIC)))]
    a = rng.standard_normal(shp) * 1000
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shp)
    if dtype is np.bool_:
        a = a > 0
    return np.asarray(a).astype(dtype)


def cell(shp, items):
    c = np.empty(shp, dtype=object)
    for i, x in enumerate(items):
        c[np.unravel_index(i, shp, order="F")] = x
    return c.view(blob.MatCell)


def scalar(rng):
    """A non-array value (DataJoint cannot rebuild object arrays whose elements are arrays)."""
    while True:
        v = random_value(rng, 3)
        if not isinstance(v, np.ndarray):
            return v


def random_value(rng, depth=0):
    k = int(rng.integers(19 if depth < 3 else 9))
    if k == 0:
        return None
    if k == 1:
        return bool(rng.integers(2))
    if k == 2:
        bits = int(rng.integers(1, 300))
        return int(rng.integers(-(2**62), 2**62)) * 2 ** int(rng.integers(bits)) + int(rng.integers(-5, 5))
    if k == 3:
        return float(rng.choice([rng.standard_normal(), np.inf, -0.0, 1e308, 5e-324]))
    if k == 4:
        return "".join(chr(int(c)) for c in rng.integers(0x20, 0x3000, size=int(rng.integers(0, 10))))
    if k == 5:
        return rng.bytes(int(rng.integers(0, 50)))
    if k == 6:
        return numeric_array(rng, shape(rng))
    if k == 7:
        return [datetime.datetime(2024, 1, 2, 3, 4, 5, int(rng.integers(10**6))), datetime.date(1999, 12, 31),
                datetime.time(int(rng.integers(24)), 59, 1, 7), uuid.UUID(int=int(rng.integers(2**62)) << 60),
                decimal.Decimal(f"{rng.integers(-10**6, 10**6)}.{rng.integers(1000):03d}"),
                complex(rng.standard_normal(), -1.5), np.float32(0.25), np.int16(-7)][int(rng.integers(8))]
    if k == 8:
        unit = UNITS[int(rng.integers(len(UNITS)))]
        return rng.integers(-(10**6), 10**6, size=shape(rng)).astype(f"datetime64[{unit}]")
    if k == 9:
        return [random_value(rng, depth + 1) for _ in range(int(rng.integers(4)))]
    if k == 10:
        return tuple(random_value(rng, depth + 1) for _ in range(int(rng.integers(4))))
    if k == 11:
        keys = [f"k{i}" for i in range(int(rng.integers(4)))] + [int(i) for i in range(int(rng.integers(2)))]
        return {key: random_value(rng, depth + 1) for key in keys}
    if k == 12:
        return {f"s{int(i)}" for i in rng.integers(0, 100, size=int(rng.integers(4)))} | {int(rng.integers(9))}
    if k == 13:
        return np.array(["", "ab", "dé"] * 2)[: int(rng.integers(1, 6))].reshape(-1, 1)
    if k == 14:
        return np.array([scalar(rng) for _ in range(3)] + [None], dtype=object)[:-1]
    if k == 15:
        shp = shape(rng)
        n = int(np.prod(shp))
        return np.rec.fromarrays([rng.integers(0, 9, n).reshape(shp).astype(np.int32), rng.standard_normal(shp)],
                                 names="a,b")
    if k == 16:
        shp = (1, int(rng.integers(0, 4)))
        return cell(shp, [numeric_array(rng, (1, int(rng.integers(1, 4)))) for _ in range(shp[1])])
    if k == 17:
        s = np.empty((1, int(rng.integers(1, 3))), dtype=[("x", object), ("y", object)]).view(blob.MatStruct)
        for j in range(s.shape[1]):
            s["x"][0, j] = numeric_array(rng, (1, 2))
            s["y"][0, j] = random_value(rng, depth + 1)
        return s
    # Large enough to be compressed, and sometimes compressible.
    n = int(rng.integers(200, 3000))
    return rng.standard_normal(n) if rng.integers(2) else np.arange(n, dtype=np.int64)


def equal(a, b):
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind == "U":
            a = a.astype(object)
        if b.dtype.kind == "U":
            b = b.astype(object)
        if a.shape != b.shape:
            return False
        if a.dtype.names or b.dtype.names:
            return a.dtype.names == b.dtype.names and all(equal(a[f], b[f]) for f in a.dtype.names)
        if a.dtype != b.dtype:
            return False
        if a.dtype == object:
            return all(equal(x, y) for x, y in zip(a.flat, b.flat))
        return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or (a != a and b != b))


def has_set(v):
    if isinstance(v, (set, frozenset)):
        return True
    if isinstance(v, dict):
        return any(has_set(k) or has_set(x) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return any(has_set(x) for x in v)
    if isinstance(v, np.ndarray) and v.dtype == object:
        return any(has_set(x) for x in v.flat)
    if isinstance(v, np.ndarray) and v.dtype.names:
        return any(has_set(v[f]) for f in v.dtype.names)
    return False


def main():
    rng = np.random.default_rng(20261124)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        values = [random_value(rng) for _ in range(N)]
        for i, v in enumerate(values):
            (d / f"py_{i}.blob").write_bytes(blob.pack(v))
        tool("repack", str(d))
        compressed_fast = 0
        for i, v in enumerate(values):
            ours = (d / f"py_{i}.blob").read_bytes()
            compat = (d / f"py_{i}.rust.blob").read_bytes()
            assert compat == ours, f"value {i} ({v!r}): Rust's compat bytes differ from DataJoint's"
            fast = (d / f"py_{i}.rust-fast.blob").read_bytes()
            compressed_fast += fast.startswith(b"ZL123\0")
            # Compare with DataJoint's reading of its own bytes (which is not always the value
            # packed: an empty 1x0 MatCell comes back 0-d, for one).
            reference = blob.unpack(ours)
            for name, b in [("compat", compat), ("fast", fast)]:
                back = blob.unpack(b)
                assert equal(reference, back), f"value {i} ({name}): {reference!r} came back as {back!r}"
        assert compressed_fast > 0, "no fast-mode blob was compressed; the test lost its reach"
        print(f"python -> rust -> python: {N} values; compat bytes identical, fast blobs "
              f"({compressed_fast} compressed) read back equal")

        tool("generate", str(d), str(N), "42")
        identical = compressed = 0
        for k in range(N):
            compat = (d / f"rust_{k}.blob").read_bytes()
            fast = (d / f"rust_{k}.fast.blob").read_bytes()
            compressed += fast.startswith(b"ZL123\0")
            value = blob.unpack(compat)
            assert equal(value, blob.unpack(fast)), f"rust_{k}: fast and compat blobs differ in Python"
            again = blob.pack(value)
            if again == compat:
                identical += 1
            elif not has_set(value):  # sets may come back in another order
                raise AssertionError(f"rust_{k}: DataJoint repacks {value!r} to other bytes")
            (d / f"rust_{k}.py.blob").write_bytes(again)
        assert compressed > 0, "no Rust fast-mode blob was compressed"
        tool("check", str(d))
        print(f"rust -> python -> rust: {N} values read equal in both modes; {identical} repacked "
              f"byte-identically by DataJoint (the others hold sets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
