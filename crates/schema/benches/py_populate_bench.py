"""Populate through the job table, dj-rs next to DataJoint Python 2.3.5 (run by `cargo xtask bench`).

On PostgreSQL and MariaDB (from `DJ_TEST_POSTGRES_URL` / `DJ_TEST_MYSQL_URL`), with the tables of
`tests/interop/populate_worker.py` (`Item`, and the Computed `Result(-> Item)` whose make inserts one
row) declared by DataJoint in a fresh schema for every run:

1. **Per-job overhead**: one worker populates N keys (a) through the job table with the queue filled
   beforehand (`populate(reserve_jobs=True, refresh=False)`: per job a reservation, the trivial make
   and the completion), (b) the same with the refresh inside populate, (c) in direct mode. DataJoint
   runs in this process, dj-rs in a `populate_bench_worker` process (`examples/`, release build),
   each timing only its populate call; the two alternate, and each figure is the median of ROUNDS.
2. **Worker curve**: 1, 2, 4 and 8 worker processes work one queue of keys (PostgreSQL by default),
   dj-rs and DataJoint, with the trivial make and with a make that sleeps SLEEP_MS first (real work
   that does not load the database server). Throughput is keys / (latest end - earliest start of the
   workers' populate calls); next to it the machine's CPU use over that span (/proc/stat), which says
   whether the cores were the bound.
3. On PostgreSQL, the per-job figures again with `synchronous_commit=off` in both clients' sessions:
   a commit then does not wait for the WAL flush (about 1 ms on the test machine's disk), which leaves
   the clients' own work and the statements' execution.

Environment: DJ_POPULATE_BENCH_N (keys per per-job run, default 500), DJ_POPULATE_BENCH_ROUNDS (3),
DJ_POPULATE_BENCH_CURVE_N (keys per curve run, 1000), DJ_POPULATE_BENCH_SLEEP_CURVE_N (400, with the
sleeping make), DJ_POPULATE_BENCH_CURVE_BACKENDS (`postgres`; `postgres,mariadb` for both),
DJ_POPULATE_BENCH_WORKER (a prebuilt worker binary instead of the release build).

With a worker argument list (`--dj-worker URL SCHEMA SLEEP_MS`) this script is itself a DataJoint
worker process of the curve.
"""
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _ratios import ROOT, configure  # noqa: E402

N = int(os.environ.get("DJ_POPULATE_BENCH_N", "500"))
ROUNDS = int(os.environ.get("DJ_POPULATE_BENCH_ROUNDS", "3"))
CURVE_N = int(os.environ.get("DJ_POPULATE_BENCH_CURVE_N", "1000"))
SLEEP_MS = 10
SLEEP_CURVE_N = int(os.environ.get("DJ_POPULATE_BENCH_SLEEP_CURVE_N", "400"))
WORKERS = [1, 2, 4, 8]
BACKENDS = [("postgres", "DJ_TEST_POSTGRES_URL"), ("mariadb", "DJ_TEST_MYSQL_URL")]


def declare(schema, sleep_ms=0):
    """Declare `Item` and `Result` (as tests/interop/populate_worker.py) in `schema`."""

    @schema
    class Item(dj.Manual):
        definition = """
        n : int32
        ---
        x : int64
        """

    @schema
    class Result(dj.Computed):
        definition = """
        -> Item
        ---
        y : int64
        worker : varchar(8)
        """

        def make(self, key):
            if sleep_ms:
                time.sleep(sleep_ms / 1000)
            self.insert1(dict(key, y=0, worker="py"))

    return Item, Result


def fresh(conn, tag, n, sleep_ms=0):
    """A new schema with `n` items; returns (schema, Result)."""
    name = f"djbench_pop_{tag}_{os.getpid()}"
    schema = dj.Schema(name, connection=conn)
    item, result = declare(schema, sleep_ms)
    item.insert([dict(n=i, x=i) for i in range(n)])
    return schema, result


def worker_binary():
    given = os.environ.get("DJ_POPULATE_BENCH_WORKER")
    if given:
        return Path(given)
    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "--manifest-path", str(ROOT / "Cargo.toml"),
         "-p", "dj-schema", "--example", "populate_bench_worker"],
        check=True,
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "release" / "examples" / "populate_bench_worker"


def last_json(text, who):
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{who} printed nothing")
    return json.loads(lines[-1])


def rust_run(worker, url, schema_name, flags):
    out = subprocess.run([str(worker), url, schema_name, *flags], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"populate_bench_worker failed: {out.stderr}")
    return last_json(out.stdout, "populate_bench_worker")


def check_done(result, n, label):
    rows = len(result())
    left = len(result.jobs & "status in ('pending', 'reserved', 'error')")
    if rows != n or left:
        raise RuntimeError(f"{label}: {rows} of {n} rows made, {left} jobs left in the queue")


def per_job(label, url, conn, worker):
    """Median ms per job of DataJoint and dj-rs, for each of the three modes."""
    modes = [
        ("distributed, queue filled first", dict(reserve_jobs=True, refresh=False), [], True),
        ("distributed, refresh inside populate", dict(reserve_jobs=True), ["--refresh"], False),
        ("direct", dict(), ["--direct"], False),
    ]
    for mode, dj_kwargs, rs_flags, prefill in modes:
        times = {"dj": [], "rs": []}
        cpu = {"dj": [], "rs": []}
        for r in range(ROUNDS):
            for side in (["dj", "rs"] if r % 2 == 0 else ["rs", "dj"]):
                schema, result = fresh(conn, side, N)
                try:
                    if prefill:
                        result.jobs.refresh(delay=-1)
                    if side == "dj":
                        t, c = time.perf_counter(), time.process_time()
                        out = result.populate(**dj_kwargs)
                        seconds = time.perf_counter() - t
                        cpu_seconds = time.process_time() - c
                        made = out["success_count"]
                    else:
                        out = rust_run(worker, url, schema.database, rs_flags)
                        seconds, made = out["seconds"], out["success_count"]
                        cpu_seconds = out["cpu_seconds"]
                    if made != N:
                        raise RuntimeError(f"{label} {mode} {side}: made {made} of {N}")
                    check_done(result, N, f"{label} {mode} {side}")
                    times[side].append(seconds * 1000 / N)
                    cpu[side].append(cpu_seconds * 1000 / N)
                finally:
                    schema.drop(prompt=False)
        dj_ms, rs_ms = statistics.median(times["dj"]), statistics.median(times["rs"])
        dj_cpu, rs_cpu = statistics.median(cpu["dj"]), statistics.median(cpu["rs"])
        print(f"{label}: populate {N} keys, {mode}: per job DataJoint 2.3.5 {dj_ms:.2f} ms, "
              f"dj-rs {rs_ms:.2f} ms, ratio {dj_ms / rs_ms:.1f}x (goal >= 5); client CPU per job "
              f"DataJoint {dj_cpu:.2f} ms, dj-rs {rs_cpu:.2f} ms, ratio {dj_cpu / max(rs_cpu, 1e-6):.1f}x "
              f"(wall runs dj {[round(x, 2) for x in times['dj']]}, rs {[round(x, 2) for x in times['rs']]}; "
              f"load average {os.getloadavg()[0]:.1f})",
              flush=True)


def cpu_ticks():
    """(busy, total) jiffies of the machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def curve_run(side, k, url, conn, worker, n, sleep_ms):
    """Keys/s of `k` worker processes of `side` on a fresh queue of `n` keys, and CPU busy %."""
    schema, result = fresh(conn, f"curve_{side}", n, sleep_ms)
    try:
        result.jobs.refresh(delay=-1)
        if side == "rs":
            flags = ["--random"] + (["--sleep-ms", str(sleep_ms)] if sleep_ms else [])
            cmd = [str(worker), url, schema.database, *flags]
        else:
            cmd = [sys.executable, __file__, "--dj-worker", url, schema.database, str(sleep_ms)]
        busy0, total0 = cpu_ticks()
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(k)]
        outs = []
        for p in procs:
            stdout, stderr = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"a {side} worker failed: {stderr}")
            outs.append(last_json(stdout, f"{side} worker"))
        busy1, total1 = cpu_ticks()
        made = sum(o["success_count"] for o in outs)
        if made != n:
            raise RuntimeError(f"{side} x{k}: made {made} of {n}")
        check_done(result, n, f"{side} x{k}")
        span = max(o["end"] for o in outs) - min(o["start"] for o in outs)
        cpu = 100 * (busy1 - busy0) / max(total1 - total0, 1)
        return n / span, cpu
    finally:
        schema.drop(prompt=False)


def curve(label, url, conn, worker):
    for sleep_ms, n in [(0, CURVE_N), (SLEEP_MS, SLEEP_CURVE_N)]:
        make = "trivial make" if not sleep_ms else f"make sleeping {sleep_ms} ms"
        for side, name in [("rs", "dj-rs"), ("dj", "DataJoint 2.3.5")]:
            rates = {k: [] for k in WORKERS}
            cpus = {k: [] for k in WORKERS}
            rounds = 2 if side == "rs" else 1
            for r in range(rounds):
                for k in (WORKERS if r % 2 == 0 else list(reversed(WORKERS))):
                    rate, cpu = curve_run(side, k, url, conn, worker, n, sleep_ms)
                    rates[k].append(rate)
                    cpus[k].append(cpu)
            base = statistics.median(rates[1])
            points = ", ".join(
                f"{k}: {statistics.median(rates[k]):.0f} jobs/s ({statistics.median(rates[k]) / base:.1f}x, "
                f"CPU {statistics.median(cpus[k]):.0f}%)" for k in WORKERS)
            print(f"{label}: worker curve, {make}, {n} keys, {name}: {points} "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)


def dj_worker(url, schema_name, sleep_ms):
    """One DataJoint worker process of the curve."""
    _, conn = configure(url)
    schema = dj.Schema(schema_name, connection=conn, create_schema=False)
    _, result = declare(schema, sleep_ms)
    start = time.time()
    out = result.populate(reserve_jobs=True, refresh=False)
    end = time.time()
    print(json.dumps({"start": start, "end": end, "success_count": out["success_count"]}))


def main():
    worker = worker_binary()
    curve_backends = os.environ.get("DJ_POPULATE_BENCH_CURVE_BACKENDS", "postgres").split(",")
    for label, var in BACKENDS:
        url = os.environ.get(var)
        if not url:
            print(f"SKIP {label}: {var} is not set")
            continue
        _, conn = configure(url)
        per_job(label, url, conn, worker)
        if label in curve_backends:
            curve(label, url, conn, worker)
        if label == "postgres":
            # The same without waiting for the WAL flush at each commit (this session only, both
            # sides): what remains is the client's and the server's work per job, as on a server
            # whose commits are cheap.
            conn.query("SET synchronous_commit TO off")
            sep = "&" if "?" in url else "?"
            per_job(f"{label} (synchronous_commit=off)", url + sep + "options=-c%20synchronous_commit%3Doff",
                    conn, worker)
            conn.query("SET synchronous_commit TO on")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--dj-worker"]:
        dj_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
