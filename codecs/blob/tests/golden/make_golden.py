"""Write golden blob vectors with DataJoint Python 2.3.5 (run by `cargo xtask golden`).

Each vector holds the blob DataJoint packs for a value (hex) and a typed description of the value
that the Rust tests compare against what they decode. Compressed vectors use DataJoint's default
(zlib level 6), so the Rust `compat` mode must reproduce them byte for byte.
"""
import datetime
import decimal
import json
import pathlib
import uuid

import numpy as np
from datajoint import blob

OUT = pathlib.Path(__file__).with_name("vectors.json")


def describe(v):
    if v is None:
        return {"t": "none"}
    if isinstance(v, (bool, np.bool_)):
        return {"t": "bool", "v": bool(v)}
    if isinstance(v, np.ndarray):
        if v.dtype.fields:
            return {"t": "record", "fields": list(v.dtype.names), "columns": [describe(np.asarray(v[f])) for f in v.dtype.names]}
        if v.dtype == object or v.dtype.char == "U":
            return {"t": "array", "shape": list(v.shape), "dtype": "O", "items": [describe(e) for e in v.flatten(order="F")]}
        if np.iscomplexobj(v):
            data = np.real(v).tobytes(order="F") + np.imag(v).tobytes(order="F")
        else:
            data = v.tobytes(order="F")
        return {"t": "array", "shape": list(v.shape), "dtype": v.dtype.str, "hex": data.hex()}
    if isinstance(v, np.generic):
        return describe(np.asarray(v))
    if isinstance(v, int):
        return {"t": "int", "v": str(v)}
    if isinstance(v, float):
        return {"t": "float", "v": repr(v)}
    if isinstance(v, complex):
        return {"t": "complex", "re": repr(v.real), "im": repr(v.imag)}
    if isinstance(v, str):
        return {"t": "str", "v": v}
    if isinstance(v, bytes):
        return {"t": "bytes", "hex": v.hex()}
    if isinstance(v, decimal.Decimal):
        return {"t": "decimal", "v": str(v)}
    if isinstance(v, uuid.UUID):
        return {"t": "uuid", "hex": v.hex}
    if isinstance(v, (datetime.date, datetime.time)):
        if isinstance(v, datetime.datetime):
            d, t = v.date(), v.time()
        elif isinstance(v, datetime.date):
            d, t = v, None
        else:
            d, t = None, v
        date = -1 if d is None else (d.year * 100 + d.month) * 100 + d.day
        time = -1 if t is None else ((t.hour * 100 + t.minute) * 100 + t.second) * 1000000 + t.microsecond
        return {"t": "temporal", "date": date, "time": time}
    if isinstance(v, tuple):
        return {"t": "tuple", "items": [describe(e) for e in v]}
    if isinstance(v, list):
        return {"t": "list", "items": [describe(e) for e in v]}
    if isinstance(v, (set, frozenset)):
        return {"t": "set", "items": [describe(e) for e in v]}
    if isinstance(v, dict):
        return {"t": "dict", "items": [[describe(k), describe(x)] for k, x in v.items()]}
    raise TypeError(f"cannot describe {type(v)}")


rng = np.random.default_rng(7)
values = {
    # The reference's hex table.
    "int64 vector": np.array([1, 2, 3], np.int64),
    "float64 scalar": np.float64(3.5),
    "2x2 float64": np.array([[1.0, 2.0], [3.0, 4.0]]),
    "int 5": 5,
    "int -1": -1,
    "True": True,
    "float 1.5": 1.5,
    "str hi": "hi",
    "None": None,
    "list [1, 'a']": [1, "a"],
    "dict {'a': 1}": {"a": 1},
    "Decimal 1.5": decimal.Decimal("1.5"),
    "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
    "date": datetime.date(2024, 1, 2),
    "time": datetime.time(23, 59, 58, 123456),
    "UUID int=1": uuid.UUID(int=1),
    "unicode array": np.array(["ab"]),
    "datetime64[D]": np.array(["2024-01-02"], dtype="datetime64[D]"),
    "bool array": np.array([True, False]),
    "recarray": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]).view(np.recarray),
    # More shapes and types.
    "3-D float32": rng.standard_normal((2, 3, 4)).astype(np.float32),
    "int8": np.array([-128, 0, 127], np.int8),
    "uint8 2-D": np.arange(6, dtype=np.uint8).reshape(2, 3),
    "int16": np.array([-3, 4], np.int16),
    "uint16": np.array([65535], np.uint16),
    "int32": np.array([[1], [2]], np.int32),
    "uint32": np.array([7], np.uint32),
    "uint64": np.array([2**64 - 1], np.uint64),
    "complex128": np.array([1 + 2j, 3 - 4j]),
    "complex64 2-D": np.array([[1 + 1j], [2 - 2j]], np.complex64),
    "datetime64[ns]": np.array(["2024-01-02T03:04:05.123456789"], dtype="datetime64[ns]"),
    "datetime64[s] 2-D": np.array([["2020-01-01T00:00:00", "2021-06-01T12:00:00"]], dtype="datetime64[s]"),
    "empty float64 0x3": np.zeros((0, 3)),
    "object array": np.array([1, "x", None], dtype=object),
    "big int": 2**100,
    "negative big int": -(2**70) - 3,
    "int 128": 128,
    "int -128": -128,
    "int -129": -129,
    "int 0": 0,
    "float nan-free extremes": [1e-300, 1e300, -0.0],
    "complex scalar": 1.5 - 2.5j,
    "bytes": b"\x00\x01binary\xff",
    "str unicode": "naïve ☃ 😀",
    "tuple": (1, 2.5, "three"),
    "set": {7},
    "empty list": [],
    "empty dict": {},
    "nested": {"channels": 32, "rate": 30000, "meta": {"probe": ["a", "b"], "ok": True}, "t": (None, 1.0)},
    "dict with int keys": {1: "one", (2, 3): "tuple key"},
    "ragged list of arrays": [np.arange(3.0), np.arange(5.0)],
    "zeros 1000 (compressed)": np.zeros(1000),
    "random normal 2000 (compressed)": rng.standard_normal(2000),
    "arange int64 5000 (compressed)": np.arange(5000, dtype=np.int64),
    "long string (compressed)": "abc" * 1000,
    "recarray nested types": np.array([(1, 2.5, True), (3, 4.5, False)], dtype=[("i", "<i8"), ("f", "<f4"), ("b", "?")]).view(np.recarray),
}

vectors = []
for name, value in values.items():
    packed = blob.pack(value)
    back = blob.unpack(packed)
    vectors.append({"name": name, "hex": packed.hex(), "value": describe(back)})

OUT.write_text(json.dumps({"datajoint": "2.3.5", "vectors": vectors}, indent=1) + "\n")
print(f"wrote {len(vectors)} vectors to {OUT}")
