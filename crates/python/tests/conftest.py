"""Shared helpers: a strict comparison of unpacked values (types, dtypes, shapes, contents)."""

import math
from decimal import Decimal
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", message="No datajoint.json found")

import datajoint.blob as djblob  # noqa: E402
import dj_rs  # noqa: E402

# DataJoint's own functions, taken before any test can install dj_rs over them.
DJ_PACK = djblob.pack
DJ_UNPACK = djblob.unpack

GOLDEN = Path(__file__).resolve().parents[3] / "codecs" / "blob" / "tests" / "golden"


def assert_same(x, y, path="value"):
    """Assert that ``y`` is what ``x`` is: same type, dtype, shape and contents, recursively."""
    assert type(x) is type(y), f"{path}: {type(x)!r} != {type(y)!r} ({x!r} / {y!r})"
    if isinstance(x, np.ndarray):
        assert x.dtype == y.dtype, f"{path}: dtype {x.dtype} != {y.dtype}"
        assert x.shape == y.shape, f"{path}: shape {x.shape} != {y.shape}"
        if x.dtype.names:
            for f in x.dtype.names:
                assert_same(np.asarray(x[f]), np.asarray(y[f]), f"{path}.{f}")
        elif x.dtype.kind == "O":
            for i, (a, b) in enumerate(zip(x.ravel(order="K"), y.ravel(order="K"))):
                assert_same(a, b, f"{path}[{i}]")
        else:
            equal_nan = x.dtype.kind in "fcmM"
            assert np.array_equal(x, y, equal_nan=equal_nan), f"{path}: {x!r} != {y!r}"
    elif isinstance(x, (float, complex, np.floating, np.complexfloating)):
        assert (x == y) or (
            np.isnan(x) and np.isnan(y) if not isinstance(x, complex) else repr(x) == repr(y)
        ), f"{path}: {x!r} != {y!r}"
    elif isinstance(x, Decimal):
        assert str(x) == str(y), f"{path}: {x!r} != {y!r}"
    elif isinstance(x, np.generic):
        assert x == y or (isinstance(x, np.datetime64) and np.isnat(x) and np.isnat(y)), (
            f"{path}: {x!r} != {y!r}"
        )
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), f"{path}: length {len(x)} != {len(y)}"
        for i, (a, b) in enumerate(zip(x, y)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(x, dict):
        assert list(x) == list(y), f"{path}: keys {list(x)} != {list(y)}"
        for k in x:
            assert_same(x[k], y[k], f"{path}[{k!r}]")
    elif isinstance(x, float) and math.isnan(x):
        assert math.isnan(y)
    else:
        assert x == y, f"{path}: {x!r} != {y!r}"


def outcome(f, *args, **kwargs):
    """``("ok", value)`` or ``("error", exception)``."""
    try:
        return "ok", f(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - we compare what happens, whatever it is
        return "error", e


def check_like_datajoint(value):
    """dj_rs packs ``value`` to DataJoint's bytes and unpacks them to DataJoint's value."""
    for compress in (True, False):
        theirs = outcome(DJ_PACK, value, compress=compress)
        ours = outcome(dj_rs.pack, value, compress=compress)
        assert theirs[0] == ours[0], f"DataJoint: {theirs}, dj_rs: {ours}"
        if theirs[0] == "error":
            return
        assert ours[1] == theirs[1], "compat bytes differ from DataJoint's"
        check_unpack_like_datajoint(theirs[1])
    # Fast mode: other bytes, the same value for DataJoint.
    fast = dj_rs.pack(value, compat=False)
    for squeeze in (False, True):
        want = outcome(DJ_UNPACK, DJ_PACK(value), squeeze=squeeze)
        got = outcome(DJ_UNPACK, fast, squeeze=squeeze)
        assert want[0] == got[0], f"fast mode: {want} / {got}"
        if want[0] == "ok":
            assert_same(want[1], got[1])


def check_unpack_like_datajoint(blob):
    for squeeze in (False, True):
        theirs = outcome(DJ_UNPACK, blob, squeeze=squeeze)
        ours = outcome(dj_rs.unpack, blob, squeeze=squeeze)
        assert theirs[0] == ours[0], f"squeeze={squeeze}: DataJoint: {theirs}, dj_rs: {ours}"
        if theirs[0] == "ok":
            assert_same(theirs[1], ours[1])
