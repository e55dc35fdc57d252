"""install() / uninstall() and the DJ_RS_BLOB switch: DataJoint's <blob> codecs run on dj_rs."""

import os
import subprocess
import sys
import struct

import numpy as np
import pytest
from conftest import DJ_PACK, DJ_UNPACK, assert_same

import datajoint as dj
import datajoint.blob as djblob
import dj_rs
from datajoint.builtin_codecs.blob import BlobCodec


@pytest.fixture
def installed():
    dj_rs.install()
    yield
    dj_rs.uninstall()


def test_install_and_uninstall(installed):
    assert dj_rs.installed()
    assert djblob.pack is dj_rs.pack and djblob.unpack is dj_rs.unpack
    codec = BlobCodec()
    value = {"x": np.random.default_rng(0).standard_normal((30, 40)), "n": [1, "a"]}
    stored = codec.encode(value)
    assert stored == DJ_PACK(value)
    assert_same(DJ_UNPACK(stored), codec.decode(stored))
    # Only dj_rs says where a bad blob breaks: proof that the codec went through it.
    with pytest.raises(dj_rs.BlobError) as info:
        codec.decode(b"dj0\x00Z")
    assert info.value.offset == 4
    dj_rs.uninstall()
    assert not dj_rs.installed()
    assert djblob.pack is DJ_PACK and djblob.unpack is DJ_UNPACK
    with pytest.raises(dj.errors.DataJointError) as info:
        codec.decode(b"dj0\x00Z")
    assert not isinstance(info.value, dj_rs.BlobError)


def test_refuses_untested_datajoint_versions(monkeypatch):
    monkeypatch.setattr(dj_rs, "TESTED_DATAJOINT_VERSIONS", ("0.0.1",))
    with pytest.raises(RuntimeError, match="tested with DataJoint 0.0.1"):
        dj_rs.install()
    assert not dj_rs.installed() and djblob.pack is DJ_PACK
    try:
        dj_rs.install(force=True)
        assert djblob.pack is dj_rs.pack
    finally:
        dj_rs.uninstall()


def test_legacy_32bit_dims_follow_datajoint_switch(installed):
    # A 1x3 double array from 32-bit MATLAB mYm: u32 dims, class and complex flag.
    blob = b"mYm\x00A" + struct.pack("<IIIII", 2, 1, 3, 6, 0) + np.arange(3.0).tobytes()
    try:
        djblob.use_32bit_dims = True
        assert_same(DJ_UNPACK(blob), djblob.unpack(blob))
    finally:
        djblob.use_32bit_dims = False
    with pytest.raises(dj_rs.BlobError):
        djblob.unpack(blob)


@pytest.mark.parametrize("switch,expected", [("1", "True"), ("", "False"), ("0", "False")])
def test_environment_switch(switch, expected):
    """The wheel's .pth file installs dj_rs at start-up when DJ_RS_BLOB is set."""
    env = dict(os.environ, DJ_RS_BLOB=switch)
    code = "import datajoint.blob as b, dj_rs; print(b.pack is dj_rs.pack, dj_rs.installed())"
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [expected, expected], out


def test_environment_switch_fast():
    env = dict(os.environ, DJ_RS_BLOB="fast")
    code = ("import datajoint.blob as b, dj_rs; "
            "print(b.pack is dj_rs.pack_fast, b.unpack is dj_rs.unpack, dj_rs.installed())")
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "True", "True"], out


def test_install_fast_mode_writes_what_datajoint_reads_and_switches_back():
    value = np.random.default_rng(1).standard_normal(20000)
    try:
        dj_rs.install(compat=False)
        assert djblob.pack is dj_rs.pack_fast and dj_rs.installed()
        stored = BlobCodec().encode(value)
        assert stored == dj_rs.pack(value, compat=False)
        assert_same(DJ_UNPACK(stored), value)
        # Installing again switches mode; uninstall still restores DataJoint's own.
        dj_rs.install()
        assert djblob.pack is dj_rs.pack
        assert BlobCodec().encode(value) == DJ_PACK(value)
    finally:
        dj_rs.uninstall()
    assert djblob.pack is DJ_PACK and djblob.unpack is DJ_UNPACK
