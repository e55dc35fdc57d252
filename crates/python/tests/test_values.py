"""Every kind of value DataJoint 2.3.5's blob.py handles: the same bytes, the same values back."""

import datetime
import json
import uuid
from collections import OrderedDict, UserList
from decimal import Decimal

import numpy as np
import pytest
from conftest import GOLDEN, assert_same, check_like_datajoint, check_unpack_like_datajoint

from datajoint.blob import MatCell, MatStruct

import dj_rs


def cell(shape, items):
    c = np.empty(len(items), dtype=object)
    c[:] = items
    return c.reshape(shape, order="F").view(MatCell)


def struct(shape, fields, rows):
    a = np.array(rows, dtype=[(f, object) for f in fields])
    return a.reshape(shape, order="F").view(MatStruct)


NUMERIC = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
           "float32", "float64", "complex64", "complex128"]
UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"]

VALUES = {
    "none": None,
    "true": True,
    "false": False,
    "int": 7,
    "int -1": -1,
    "int -128": -128,
    "int 255": 255,
    "int 2**63": 2**63,
    "int -2**200": -(2**200),
    "int huge": 3**20000,
    "int too big": 1 << (8 * 65535),
    "float": -3.7e-2,
    "float nan": float("nan"),
    "float -inf": float("-inf"),
    "complex": 1 - 2.5j,
    "str": "héllo \U0001f600",
    "str empty": "",
    "bytes": b"\x00\xffabc",
    "bytearray": bytearray(b"xyz"),
    "decimal": Decimal("-1.2500"),
    "decimal nan": Decimal("NaN"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "datetime": datetime.datetime(2024, 2, 29, 23, 59, 58, 123456),
    "datetime tz": datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone.utc),
    "date": datetime.date(1999, 12, 31),
    "time": datetime.time(0, 0),
    "time us": datetime.time(13, 14, 15, 16),
    "list": [1, "a", None, [2.0, (3,)]],
    "tuple": (1, (2, (3, ()))),
    "set": {1, 2, 3},
    "frozenset": frozenset({"a"}),
    "dict": {"a": 1, 2: [3], (4, 5): {"n": None}},
    "ordered dict": OrderedDict([("z", 1), ("a", 2)]),
    "user list": UserList([1, 2]),
    "range": range(3),
    "empty list": [],
    "empty dict": {},
    "numpy int scalar": np.int16(-33),
    "numpy uint scalar": np.uint64(2**64 - 1),
    "numpy float scalar": np.float32(3.5),
    "numpy complex scalar": np.complex64(1 + 1j),
    "numpy bool scalar": np.bool_(True),
    "numpy datetime64 scalar": np.datetime64("2020-01-02T03:04", "m"),
    "numpy str scalar": np.str_("abc"),
    "numpy bytes scalar": np.bytes_(b"ab"),
    "0-d array": np.array(3.0),
    "0-d int array": np.array(-3).astype(np.uint8),
    "matrix F": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "matrix C": np.arange(12.0).reshape(3, 4),
    "3-d strided": np.arange(60, dtype=np.int32).reshape(3, 4, 5)[::2, 1:, ::-1],
    "empty": np.zeros((0, 3)),
    "unaligned": np.zeros(9, dtype="i1")[1:].view("i2"),
    "packed record column": np.zeros(3, dtype=[("n", "<i8"), ("s", "<i4")])["n"],
    "big endian": np.arange(3, dtype=">f8"),
    "float16": np.zeros(2, dtype=np.float16),
    "longdouble": np.zeros(2, dtype=np.longdouble),
    "generic datetime64": np.array(["NaT"], dtype="datetime64"),
    "unicode array": np.array([["ab", "c"], ["", "déf"]]),
    "char array": np.array([b"a", b"b", b"c"], dtype="c"),
    "char matrix": np.array([[b"a", b"b"], [b"c", b"d"]], dtype="c"),
    "bytes array S2": np.array([b"ab"], dtype="S2"),
    "object array": np.array([1, "a", None, np.arange(3)], dtype=object),
    "object 2-d": np.array([[1, 2.0], ["x", {"k": 1}]], dtype=object),
    "object equal-shaped": np.array([np.zeros(2), np.ones(2)], dtype=object)[:1],
    "large float": np.linspace(0, 1, 5000),
    "large random": np.random.default_rng(1).standard_normal((50, 40)),
    "large ints": np.arange(10000, dtype=np.int64) % 7,
    "record": np.array([(1, 2.5, "a"), (2, 3.5, "b")], dtype=[("i", "i4"), ("f", "f8"), ("s", "O")]),
    "record 2-d": np.zeros((2, 3), dtype=[("a", "u1"), ("b", "c16")]),
    "record nested": np.zeros(2, dtype=[("a", [("x", "f4"), ("y", "i2")]), ("b", "f8")]),
    "recarray": np.rec.fromrecords([(1, "x")], names="n,s"),
    "cell": cell((1, 3), [np.arange(3.0), "text", cell((1, 1), [1.5])]),
    "cell 2-d": cell((2, 2), [1.0, 2.0, np.zeros((2, 2)), "x"]),
    "cell empty": cell((1, 0), []),
    "struct": struct((1, 1), ["a", "b"], [(np.arange(3.0), "s")]),
    "struct 2x1": struct((2, 1), ["x"], [(1.0,), (np.ones((2, 2)),)]),
    "nested everything": {
        "arr": np.arange(4, dtype=np.uint16).reshape(2, 2),
        "when": [datetime.date(2020, 1, 1), datetime.time(1, 2)],
        "ids": (uuid.UUID(int=1), Decimal("1e-3")),
        "cells": cell((1, 2), [1.0, "a"]),
    },
    "unsupported object": object(),
}
for dt in NUMERIC:
    for shape in [(4,), (2, 3), (1, 1), (2, 1, 3)]:
        rng = np.random.default_rng(hash((dt, shape)) & 0xFFFF)
        raw = rng.integers(-100, 100, size=shape) + (1j if dt.startswith("complex") else 0)
        VALUES[f"{dt} {shape}"] = (raw.real if not dt.startswith("complex") else raw).astype(dt)
for u in UNITS:
    VALUES[f"datetime64[{u}]"] = np.array([0, 1, -5, 1000], dtype=f"datetime64[{u}]")
VALUES["datetime64 NaT"] = np.array(["NaT", "2020-01-01"], dtype="datetime64[D]")


@pytest.mark.parametrize("name", list(VALUES))
def test_value_like_datajoint(name):
    check_like_datajoint(VALUES[name])


def _golden(file):
    return [(v["name"], bytes.fromhex(v["hex"])) for v in json.loads((GOLDEN / file).read_text())["vectors"]]


@pytest.mark.parametrize("name,blob", _golden("vectors.json") + _golden("matlab.json"))
def test_golden_blob_unpacks_like_datajoint(name, blob):
    """The blobs DataJoint 2.3.5 and MATLAB's mYm wrote (the Rust codec's golden vectors)."""
    check_unpack_like_datajoint(blob)
    value = dj_rs.unpack(blob)
    check_like_datajoint(value)


def test_numeric_arrays_are_not_copied_twice():
    """A decoded numeric array owns its buffer; a Fortran-order reshape is a view of it."""
    x = np.arange(1_000_000, dtype=np.float64).reshape(1000, 1000)
    y = dj_rs.unpack(dj_rs.pack(x, compress=False))
    assert_same(x, y)
    # y is a Fortran-order view of a 1-D array whose memory is the decoder's own buffer
    # (rust-numpy's PySliceContainer), not a numpy copy of it.
    assert y.flags.f_contiguous and not y.flags.owndata
    assert y.base.ndim == 1 and y.base.size == x.size
    assert type(y.base.base).__name__ == "PySliceContainer"
