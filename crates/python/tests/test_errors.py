"""Bad input: malformed and hostile blobs raise BlobError with the byte offset, never crash."""

import json
import random
import struct
import zlib

import numpy as np
import pytest
from conftest import GOLDEN

import datajoint as dj
import dj_rs

BLOBS = [bytes.fromhex(v["hex"]) for v in json.loads((GOLDEN / "vectors.json").read_text())["vectors"]]


def u64(n):
    return struct.pack("<Q", n)


def test_blob_error_is_a_datajoint_error_and_a_value_error():
    assert issubclass(dj_rs.BlobError, dj.errors.DataJointError)
    assert issubclass(dj_rs.BlobError, ValueError)


def test_every_truncation_reports_an_offset():
    for blob in BLOBS:
        for n in range(len(blob)):
            cut = blob[:n]
            try:
                value = dj_rs.unpack(cut)
            except dj_rs.BlobError as e:
                assert e.offset is not None and 0 <= e.offset <= len(blob), (cut, e)
                assert f"at byte {e.offset}" in str(e), e
            else:
                # Only a cut inside the header leaves no blob to report on: None, as DataJoint.
                assert value is None and n <= 6, (cut, value)


def test_corrupted_blobs_never_crash():
    """Random byte changes: a value or a Python exception, never a crash of the interpreter."""
    rng = random.Random(7)
    for blob in BLOBS:
        for _ in range(30):
            b = bytearray(blob)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(4, len(b)) if len(b) > 4 else 0] = rng.randrange(256)
            try:
                dj_rs.unpack(bytes(b))
            except dj_rs.BlobError as e:
                assert e.offset is not None
            except (ValueError, TypeError, ArithmeticError):
                pass  # a value numpy or datetime refuses to build, as in DataJoint


def test_malformed_examples():
    cases = {
        # an unknown item code
        b"dj0\x00Z": (4, "unknown item code"),
        # a list announcing 2**60 elements in a few bytes: refused before any allocation
        b"dj0\x00\x02" + u64(2**60): (5, "truncated"),
        # an item length that disagrees with the item
        b"dj0\x00\x02" + u64(1) + u64(5) + b"\xff": (13, "truncated"),
        # trailing bytes
        b"dj0\x00\xff\x00": (5, "trailing"),
        # an array whose shape overflows
        b"mYm\x00A" + u64(2) + u64(2**40) + u64(2**40) + struct.pack("<II", 6, 0): (5, "overflow"),
    }
    for blob, (offset, text) in cases.items():
        with pytest.raises(dj_rs.BlobError) as info:
            dj_rs.unpack(blob)
        assert info.value.offset == offset, (blob, info.value)
        assert text in str(info.value).lower(), (blob, info.value)


def test_too_deep_nesting_is_an_error():
    blob = b"dj0\x00"
    inner = b"\xff"
    for _ in range(400):
        inner = b"\x02" + u64(1) + u64(len(inner)) + inner
    with pytest.raises(dj_rs.BlobError, match="nesting deeper"):
        dj_rs.unpack(blob + inner)
    deep = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(dj_rs.BlobError, match="nested deeper"):
        dj_rs.pack(deep)
    loop = []
    loop.append(loop)
    with pytest.raises(dj_rs.BlobError, match="nested deeper"):
        dj_rs.pack(loop)


def test_declared_size_over_the_limit_is_refused_before_inflating():
    hostile = b"ZL123\x00" + u64(2**50) + zlib.compress(b"mYm\x00")
    with pytest.raises(dj_rs.BlobError) as info:
        dj_rs.unpack(hostile)
    assert info.value.offset == 6 and "limit" in str(info.value)


def test_zip_bomb_is_refused_at_the_configured_limit():
    body = b"dj0\x00\x06" + u64(20_000_000) + bytes(20_000_000)
    bomb = b"ZL123\x00" + u64(len(body)) + zlib.compress(body, 9)
    assert len(bomb) < 100_000
    old = dj_rs.max_blob_size()
    try:
        dj_rs.set_max_blob_size(1_000_000)
        with pytest.raises(dj_rs.BlobError, match="limit of 1000000"):
            dj_rs.unpack(bomb)
        # A lying header cannot get round the limit: inflating stops at the declared size.
        liar = b"ZL123\x00" + u64(999_999) + zlib.compress(body, 9)
        with pytest.raises(dj_rs.BlobError, match="inflates to"):
            dj_rs.unpack(liar)
        dj_rs.set_max_blob_size(len(body))
        assert len(dj_rs.unpack(bomb)) == 20_000_000
    finally:
        dj_rs.set_max_blob_size(old)


def test_unknown_header_is_none_as_in_datajoint():
    for blob in (b"", b"xyz\x00\xff", b"ZL123\x00" + u64(4) + zlib.compress(b"abc\x00")):
        assert dj.blob.unpack(blob) is None
        assert dj_rs.unpack(blob) is None
    assert dj_rs.unpack(None) is None


def test_memoryview_and_bytearray_input():
    blob = dj_rs.pack(np.arange(5.0))
    for b in (memoryview(blob), bytearray(blob)):
        assert np.array_equal(dj_rs.unpack(b), np.arange(5.0))


def test_unsupported_values_raise_datajoint_errors():
    for value in (object(), np.zeros(2, dtype=np.float16), np.arange(2, dtype=">i4")):
        with pytest.raises(dj.errors.DataJointError):
            dj.blob.pack(value)
        with pytest.raises(dj_rs.BlobError):
            dj_rs.pack(value)
