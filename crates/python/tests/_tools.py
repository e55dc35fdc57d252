"""Shared by the storage-tool tests: where the repository, the `dj` binaries and the SQLite demo
are, and how to run `dj --json` for a comparison."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CI = os.environ.get("CI") == "true"
#: The console script the wheel installs, beside the venv's python.
CONSOLE_DJ = Path(sys.executable).parent / "dj"


def missing(what):
    """Skip, or fail under CI=true, for a missing prerequisite."""
    if CI:
        pytest.fail(f"{what} (needed with CI=true)")
    pytest.skip(what)


def native_dj():
    """The `dj` binary cargo built from crates/cli (the reference for every comparison)."""
    candidates = []
    if os.environ.get("DJ_RS_TEST_DJ"):
        candidates.append(Path(os.environ["DJ_RS_TEST_DJ"]))
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    candidates += [target / "debug" / "dj", target / "release" / "dj"]
    for c in candidates:
        if c.is_file():
            return c
    missing(f"no `dj` binary built by cargo (looked at {', '.join(map(str, candidates))})")


def run_dj(exe, *args, cwd=None, env=None):
    """Run `exe --json ARGS`; return (exit code, parsed stdout or None, stderr)."""
    out = subprocess.run(
        [str(exe), "--json", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    doc = json.loads(out.stdout) if out.stdout.strip() else None
    return out.returncode, doc, out.stderr


def hash_name(content: bytes) -> str:
    """DataJoint's name for content in a hash-addressed store: base32 MD5, lower case."""
    return base64.b32encode(hashlib.md5(content).digest()).decode().lower().rstrip("=")


def demo_copy(tmp_path):
    """A copy of the README's demo (SQLite + a `file` store, written by dj-rs's example), with a
    second, empty store `cold`."""
    demo = REPO / "target" / "readme-example" / "dj-demo"
    if not (demo / "datajoint.json").is_file():
        missing(f"{demo} is missing: run `cargo run --example object_storage` in "
                "target/readme-example (cargo xtask test does)")
    dst = tmp_path / "demo"
    shutil.copytree(demo, dst)
    config = dst / "datajoint.json"
    doc = json.loads(config.read_text())
    (dst / "cold").mkdir()
    doc["stores"]["cold"] = {"protocol": "file", "location": "cold"}
    config.write_text(json.dumps(doc, indent=2))
    return dst
