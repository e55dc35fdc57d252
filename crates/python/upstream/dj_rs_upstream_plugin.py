"""pytest plugin for DataJoint's own test suite run by run_datajoint_suite.py: checks that
``dj_rs.install()`` is active (DJ_RS_BLOB=1 installs it at interpreter start-up), counts the
calls that go through it, and fails the run if DataJoint's blob functions were not dj_rs's."""

import os

import datajoint.blob as djblob
import dj_rs

BASELINE = os.environ.get("DJ_RS_UPSTREAM_BASELINE") == "1"

CALLS = {"pack": 0, "unpack": 0}


def _counting(name, f):
    def wrapper(*args, **kwargs):
        CALLS[name] += 1
        return f(*args, **kwargs)

    wrapper.__wrapped__ = f
    return wrapper


def pytest_sessionstart(session):
    if BASELINE:
        if dj_rs.installed():
            raise RuntimeError("the baseline run has dj_rs installed")
        return
    if not dj_rs.installed() or djblob.pack is not dj_rs.pack or djblob.unpack is not dj_rs.unpack:
        raise RuntimeError("dj_rs.install() is not active: DataJoint's tests would test DataJoint")
    djblob.pack = _counting("pack", dj_rs.pack)
    djblob.unpack = _counting("unpack", dj_rs.unpack)


def pytest_sessionfinish(session, exitstatus):
    if BASELINE:
        return
    print(f"\ndj_rs: datajoint.blob.pack ran on dj_rs {CALLS['pack']} times, "
          f"unpack {CALLS['unpack']} times")
    if session.testscollected and (CALLS["pack"] == 0 or CALLS["unpack"] == 0):
        session.exitstatus = 1
        print("dj_rs: FAILED: no blob went through dj_rs")


def _send_dicts_as_json():
    """DataJoint 2.3.5 hands pymysql a stored value's metadata (a JSON column) as a dict, which
    pymysql refuses to escape on MariaDB ("dict can not be used as parameter"); the interop
    scripts send it as JSON text, and so does this run, so that DataJoint's attachment and
    stored-blob tests reach the blob code on MariaDB."""
    import json

    import pymysql.converters as conv

    def escape_json(value, mapping=None):
        return conv.escape_str(json.dumps(value), mapping)

    conv.conversions[dict] = escape_json
    conv.encoders[dict] = escape_json


_send_dicts_as_json()
