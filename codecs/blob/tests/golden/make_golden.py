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
    # MATLAB cells, structs and char arrays are described as written (DataJoint's reader reshapes
    # them into numpy forms that lose what the bytes say).
    if isinstance(v, blob.MatCell):
        return {"t": "cell", "shape": list(v.shape), "items": [describe(e) for e in v.flatten(order="F")]}
    if isinstance(v, blob.MatStruct):
        names = list(v.dtype.names)
        return {"t": "struct", "shape": list(v.shape), "fields": names,
                "elements": [[describe(rec[f]) for f in names] for rec in v.flatten(order="F")]}
    if isinstance(v, np.ndarray) and v.dtype.char in "Sc" and v.dtype.itemsize == 1:
        return {"t": "char", "shape": list(v.shape), "hex": v.view(np.uint8).astype("<u2").tobytes().hex()}
    if v is None:
        return {"t": "none"}
    if isinstance(v, bool):
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

def cell(shape, items):
    c = np.empty(shape, dtype=object)
    for i, x in enumerate(items):
        c[np.unravel_index(i, shape, order="F")] = x
    return c.view(blob.MatCell)


def struct(shape, fields, elements):
    s = np.empty(shape, dtype=[(f, object) for f in fields])
    for i, values in enumerate(elements):
        index = np.unravel_index(i, shape, order="F")
        for f, x in zip(fields, values):
            s[f][index] = x
    return s.view(blob.MatStruct)


values.update({
    # MATLAB containers as DataJoint Python writes them (mYm while they hold only arrays).
    "MatCell 1x2 of arrays": cell((1, 2), [np.array([1.0, 2.0]), np.array([[3]], np.int32)]),
    "MatCell 2x2 ragged": cell((2, 2), [np.zeros((1, 3)), np.ones((2, 1)), np.array([True]), np.array([7], np.uint16)]),
    "MatCell with a str (dj0)": cell((1, 2), [np.array([1.0]), "text"]),
    "MatStruct 1x1": struct((1, 1), ["a", "bb"], [[np.array([1.5]), np.array([[1, 2]], np.int8)]]),
    "MatStruct 1x2 nested": struct((1, 2), ["x"], [[np.array([1.0])], [cell((1, 1), [np.array([2.0])])]]),
    "char array S1": np.array([b"h", b"i", b"!"], dtype="S1"),
    "char array 1xN": np.array([[b"a", b"b", b"c"]], dtype="S1"),
    "char 0-d": np.array(b"z", dtype="S1"),
    # numpy scalars are 0-d arrays (dj0).
    "np.int32 scalar": np.int32(-5),
    "np.uint8 scalar": np.uint8(200),
    "np.bool_ scalar": np.bool_(True),
    "np.complex64 scalar": np.complex64(1.5 - 0.5j),
    "np.float32 scalar": np.float32(0.1),
    "np.datetime64 scalar": np.datetime64("2024-01-02T03:04:05", "s"),
    # Integer edges.
    "int 2**63 - 1": 2**63 - 1,
    "int 2**63": 2**63,
    "int -(2**63)": -(2**63),
    "int 2**64": 2**64,
    "int -(2**127)": -(2**127),
    "int 2**127": 2**127,
    "int 255": 255,
    "int 256": 256,
    "int -256": -256,
    "huge int 2**8000 (compressed)": 2**8000,
    "huge negative int": -(3**1000),
    # Float and decimal specials.
    "float inf": float("inf"),
    "float -inf": float("-inf"),
    "float nan": float("nan"),
    "float tiny": 5e-324,
    "Decimal negative small": decimal.Decimal("-0.001"),
    "Decimal exponent": decimal.Decimal("1E+10"),
    "Decimal NaN": decimal.Decimal("NaN"),
    "Decimal many digits": decimal.Decimal("3.14159265358979323846264338327950288"),
    # Time.
    "datetime with microseconds": datetime.datetime(1999, 12, 31, 23, 59, 59, 999999),
    "datetime with tz (dropped)": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
    "time midnight": datetime.time(0, 0),
    "date year 1": datetime.date(1, 1, 1),
    "UUID random": uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    # Empties.
    "empty str": "",
    "empty bytes": b"",
    "bytearray": bytearray(b"ab"),
    "empty tuple": (),
    "empty set": set(),
    "empty int64 (0,)": np.zeros(0, np.int64),
    "empty object array": np.empty(0, dtype=object),
    "empty bool 2x0": np.zeros((2, 0), bool),
    "empty unicode array": np.array([], dtype="U3"),
    # Shapes, orders, nesting.
    "Fortran-ordered input": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "transposed view": np.arange(6, dtype=np.int16).reshape(2, 3).T,
    "4-D uint32": np.arange(24, dtype=np.uint32).reshape(2, 1, 3, 4),
    "3-D bool": (np.arange(8).reshape(2, 2, 2) % 3 == 0),
    "2-D unicode array": np.array([["a", "bc"], ["déf", ""]]),
    "2-D object array": np.array([[1, "x"], [None, 2.5]], dtype=object),
    "complex128 3-D": (np.arange(8.0) + 1j * np.arange(8.0)[::-1]).reshape(2, 2, 2),
    "set of ints": {1, 2, 3},
    "tuple of everything": (None, True, 1, 1.0, 1j, "s", b"b", decimal.Decimal("2"), uuid.UUID(int=5), datetime.date(2020, 2, 29)),
    "dict with None, float and bytes keys": {None: 1, 2.5: 2, b"k": 3},
    "deeply nested lists": [[[[[["deep"]]]]]],
    "list of numpy scalars": [np.float64(1.0), np.int8(-1), np.uint64(2**64 - 1)],
    "dict of arrays": {"x": np.arange(3.0), "y": np.array([[1, 2], [3, 4]], np.int64)},
    "recarray nested record": np.array([((1, 2.0), 3)], dtype=[("a", [("x", "<i4"), ("y", "<f8")]), ("b", "<i2")]).view(np.recarray),
    "recarray 2-D": np.zeros((2, 2), dtype=[("p", "<f4"), ("q", "<u1")]).view(np.recarray),
    "structured ndarray (not recarray)": np.array([(1.5, -2)], dtype=[("u", "<f8"), ("v", "<i8")]),
    "record with datetime64 column": np.array([("2024-01-01", 1)], dtype=[("when", "datetime64[D]"), ("n", "<i4")]),
    # Compression edges: just under and over 1000 bytes; compressible and not.
    "float64 x 121 (996 bytes, never compressed)": np.zeros(121),
    "float64 x 122 (over 1000 bytes, compressed)": np.zeros(122),
    "random bytes 1500 (compression does not pay)": rng.bytes(1500),
    "list of 500 ints (compressed)": list(range(500)),
    "large dict (compressed)": {f"key{i}": float(i) for i in range(300)},
    "random normal 5000 float32 (compressed)": rng.standard_normal(5000).astype(np.float32),
})
values.update({f"datetime64 unit {u}": np.array([0, 1, -1, 1000], dtype=f"datetime64[{u}]")
               for u in ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"]})

# Values whose expected description comes from what was written rather than from DataJoint's
# reading of it (see describe).
AS_WRITTEN = (blob.MatCell, blob.MatStruct)

vectors = []
for name, value in values.items():
    packed = blob.pack(value)
    if isinstance(value, AS_WRITTEN) or (isinstance(value, np.ndarray) and value.dtype.char in "Sc"):
        expected = describe(value)
    else:
        expected = describe(blob.unpack(packed))
    vectors.append({"name": name, "hex": packed.hex(), "value": expected})

OUT.write_text(json.dumps({"datajoint": "2.3.5", "vectors": vectors}, indent=1) + "\n")
print(f"wrote {len(vectors)} vectors to {OUT}")
