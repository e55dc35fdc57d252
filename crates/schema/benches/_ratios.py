"""Shared by the DataJoint side-by-side bench scripts: connecting DataJoint Python to the test
servers, and printing each measurement next to the Rust median criterion recorded for the same
work (`target/criterion/<group>/<bench>/new/estimates.json`)."""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))
from _interop import configure  # noqa: E402,F401  (re-exported for the bench scripts)

ROOT = Path(__file__).resolve().parents[3]
CRITERION = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"


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


def floor(label, group, op, floor_op, note=""):
    """Print dj-rs's time for `label: group / op` as a multiple of the floor `floors / floor_op`
    (both criterion medians of the Rust bench)."""
    rust = rust_ms(f"{label}: {group}", op)
    base = rust_ms("floors", floor_op)
    if rust and base:
        side = f"dj-rs {rust:.1f} ms = {rust / base:.2f}x the floor ({floor_op}: {base:.1f} ms)"
    else:
        side = "no dj-rs result or floor (run the criterion bench first)"
    print(f"{label}: {group} / {op}{note}: {side}", flush=True)
