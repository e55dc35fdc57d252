"""Shared by the DataJoint side-by-side bench scripts: connecting DataJoint Python to the test
servers, and printing each measurement next to the Rust median criterion recorded for the same
work (`target/criterion/<group>/<bench>/new/estimates.json`)."""
import json
import os
from pathlib import Path
from urllib.parse import urlparse

import datajoint as dj

ROOT = Path(__file__).resolve().parents[3]
CRITERION = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"


def configure(url, stores=None):
    u = urlparse(url)
    backend = "postgresql" if u.scheme.startswith("postgres") else "mysql"
    dj.config["database.backend"] = backend
    dj.config["database.host"] = u.hostname
    dj.config["database.port"] = u.port or (5432 if backend == "postgresql" else 3306)
    dj.config["database.user"] = u.username or ("postgres" if backend == "postgresql" else "root")
    dj.config["database.password"] = u.password or ""
    if backend == "postgresql":
        dj.config["database.name"] = (u.path or "/").lstrip("/") or "postgres"
    dj.config["safemode"] = False
    if stores is not None:
        dj.config["stores"] = stores
    return dj.conn(reset=True)


def rust_ms(group, op):
    """The Rust median for `group`/`op`, in milliseconds, or None."""
    name = "".join("_" if c in ':<>"/\\|?*' else c for c in group)
    est = CRITERION / name / op / "new" / "estimates.json"
    try:
        return json.loads(est.read_text())["median"]["point_estimate"] / 1e6
    except (OSError, KeyError, ValueError):
        return None


def report(label, group, op, seconds, note=""):
    """Print DataJoint's time for `label: group / op` and the ratio to dj-rs's."""
    ms = seconds * 1000
    rust = rust_ms(f"{label}: {group}", op)
    side = (f"dj-rs {rust:.1f} ms, {ms / rust:.1f}x faster" if rust
            else "no dj-rs result (run the criterion bench first)")
    print(f"{label}: {group} / {op}{note}: DataJoint 2.3.5 {ms:.1f} ms; {side}", flush=True)
