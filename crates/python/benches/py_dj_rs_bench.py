"""DataJoint Python 2.3.5 with and without dj_rs.install(), side by side in one run (run by
`cargo xtask bench`).

1. ``pack``/``unpack`` alone: DataJoint's ``datajoint.blob`` against ``dj_rs`` in compat mode
   (the same bytes, checked) and in fast mode, on a 1 MiB random float64 array, 1 MiB of zeros
   and a small dict. Median of many calls, the two sides interleaved.
2. End to end on PostgreSQL: 100 x 1 MiB random float64 arrays in one ``insert`` into a
   ``<blob@file>`` attribute and into an in-table ``<blob>``, and fetching them back
   (``to_dicts``), with DataJoint's own blob functions, with ``install()`` and with
   ``install(compat=False)``. Each round writes new arrays; rounds rotate through the three modes;
   each figure is the median of the rounds. The time spent inside ``pack``/``unpack`` is measured
   in the same runs, which shows what bounds the rest.

The release wheel is built and installed first (set DJ_RS_BENCH_NO_BUILD=1 to use the installed
one). DJ_RS_BENCH_ROUNDS sets the rounds (default 3).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

warnings.filterwarnings("ignore")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
ROUNDS = int(os.environ.get("DJ_RS_BENCH_ROUNDS", "3"))


def install_release_wheel():
    """Build the dj_rs wheel in release mode and install it into this venv."""
    if os.environ.get("DJ_RS_BENCH_NO_BUILD") == "1":
        return
    bin_dir = Path(sys.executable).parent
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    out = target / "python-wheels-release"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([str(bin_dir / "maturin"), "build", "--release", "--quiet", "--interpreter",
                    sys.executable, "--out", str(out)], cwd=HERE.parent, check=True)
    wheel = next(out.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--force-reinstall", "--no-deps", str(wheel)], check=True)


def median_ms(f, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def bench_codec():
    import datajoint.blob as djblob
    import dj_rs

    rng = np.random.default_rng(11)
    values = {
        "1 MiB random float64": (rng.random(1 << 17) - 0.5, 15),
        "1 MiB zeros": (np.zeros(1 << 17), 30),
        "small dict": ({"fs": 30000.0, "channels": list(range(8)), "name": "probe A",
                        "gain": np.arange(8.0)}, 500),
    }
    print("\n## pack/unpack alone (median ms per call)")
    print(f"{'value':<22} {'pack DJ':>9} {'pack compat':>12} {'pack fast':>10} "
          f"{'unpack DJ':>10} {'unpack dj_rs':>13} {'unpack fast':>12}  "
          "ratios: pack compat, pack fast, unpack, unpack of fast")
    for name, (value, reps) in values.items():
        theirs = djblob.pack(value)
        assert dj_rs.pack(value) == theirs, f"{name}: compat bytes differ from DataJoint's"
        fast = dj_rs.pack(value, compat=False)
        row = {}
        for _ in range(2):  # interleave the sides; keep the better of the two medians
            for key, f in [
                ("pack DJ", lambda: djblob.pack(value)),
                ("pack compat", lambda: dj_rs.pack(value)),
                ("pack fast", lambda: dj_rs.pack(value, compat=False)),
                ("unpack DJ", lambda: djblob.unpack(theirs)),
                ("unpack dj_rs", lambda: dj_rs.unpack(theirs)),
                ("unpack fast", lambda: dj_rs.unpack(fast)),
            ]:
                ms = median_ms(f, reps)
                row[key] = min(row.get(key, ms), ms)
        print(f"{name:<22} {row['pack DJ']:>9.3f} {row['pack compat']:>12.3f} "
              f"{row['pack fast']:>10.3f} {row['unpack DJ']:>10.3f} {row['unpack dj_rs']:>13.3f} "
              f"{row['unpack fast']:>12.3f}  {row['pack DJ'] / row['pack compat']:.1f}x, "
              f"{row['pack DJ'] / row['pack fast']:.1f}x, {row['unpack DJ'] / row['unpack dj_rs']:.1f}x, "
              f"{row['unpack DJ'] / row['unpack fast']:.1f}x", flush=True)


class Timed:
    """Wraps datajoint.blob.pack/unpack (whichever is installed) to add up their time."""

    def __init__(self, djblob):
        self.djblob = djblob
        self.seconds = {"pack": 0.0, "unpack": 0.0}

    def __enter__(self):
        self.saved = (self.djblob.pack, self.djblob.unpack)
        pack, unpack = self.saved

        def timed_pack(*a, **k):
            t = time.perf_counter()
            try:
                return pack(*a, **k)
            finally:
                self.seconds["pack"] += time.perf_counter() - t

        def timed_unpack(*a, **k):
            t = time.perf_counter()
            try:
                return unpack(*a, **k)
            finally:
                self.seconds["unpack"] += time.perf_counter() - t

        self.djblob.pack, self.djblob.unpack = timed_pack, timed_unpack
        return self

    def __exit__(self, *exc):
        self.djblob.pack, self.djblob.unpack = self.saved


def bench_tables():
    import datajoint as dj
    import datajoint.blob as djblob
    import dj_rs

    url = os.environ.get("DJ_TEST_POSTGRES_URL")
    if not url:
        print("SKIP end to end: DJ_TEST_POSTGRES_URL is not set")
        return
    u = urlparse(url)
    modes = {
        "DataJoint": lambda: dj_rs.uninstall(),
        "install()": lambda: dj_rs.install(),
        "install(compat=False)": lambda: dj_rs.install(compat=False),
    }
    with tempfile.TemporaryDirectory() as work:
        files = Path(work) / "files"
        files.mkdir()
        dj.config["database.backend"] = "postgresql"
        dj.config["database.host"] = u.hostname
        dj.config["database.port"] = u.port or 5432
        dj.config["database.user"] = u.username or "postgres"
        dj.config["database.password"] = u.password or ""
        dj.config["database.name"] = (u.path or "/").lstrip("/") or "postgres"
        dj.config["safemode"] = False
        dj.config["stores"] = {"files": {"protocol": "file", "location": str(files)}}
        conn = dj.conn(reset=True)
        schema = dj.Schema(f"djbench_pyrs_{os.getpid()}", connection=conn)

        @schema
        class InStore(dj.Manual):
            definition = """
            id : int32
            ---
            data : <blob@files>
            """

        @schema
        class InTable(dj.Manual):
            definition = """
            id : int32
            ---
            data : <blob>
            """

        rng = np.random.default_rng(5)
        results = {}  # (table, mode, op) -> [(seconds, codec seconds)]
        try:
            for _ in range(ROUNDS):
                for mode, activate in modes.items():
                    activate()
                    for label, table in [("<blob@file>", InStore), ("<blob>", InTable)]:
                        table.delete_quick()
                        shutil.rmtree(files / "_hash", ignore_errors=True)
                        rows = [dict(id=i, data=rng.random(1 << 17) - 0.5) for i in range(100)]
                        with Timed(djblob) as timed:
                            t = time.perf_counter()
                            table.insert(rows)
                            took = time.perf_counter() - t
                        results.setdefault((label, mode, "insert"), []).append(
                            (took, timed.seconds["pack"]))
                        with Timed(djblob) as timed:
                            t = time.perf_counter()
                            back = table.to_dicts()
                            took = time.perf_counter() - t
                        assert len(back) == 100
                        results.setdefault((label, mode, "fetch"), []).append(
                            (took, timed.seconds["unpack"]))
        finally:
            dj_rs.uninstall()
            schema.drop(prompt=False)
    print(f"\n## 100 x 1 MiB random float64 on PostgreSQL (median of {ROUNDS} rounds)")
    print(f"{'attribute / op':<22} {'mode':<22} {'total ms':>9} {'in pack/unpack':>15} "
          f"{'rest':>8} {'speed-up':>9}")
    for label in ("<blob@file>", "<blob>"):
        for op in ("insert", "fetch"):
            base = statistics.median(t for t, _ in results[(label, "DataJoint", op)])
            for mode in modes:
                runs = results[(label, mode, op)]
                total = statistics.median(t for t, _ in runs)
                codec = statistics.median(c for _, c in runs)
                print(f"{label + ' ' + op:<22} {mode:<22} {total * 1000:>9.0f} "
                      f"{codec * 1000:>15.0f} {(total - codec) * 1000:>8.0f} "
                      f"{base / total:>8.2f}x", flush=True)


def main():
    install_release_wheel()
    # Import after the install, in a fresh interpreter state for dj_rs.
    print("dj_rs side by side with DataJoint 2.3.5")
    bench_codec()
    bench_tables()


if __name__ == "__main__":
    main()
