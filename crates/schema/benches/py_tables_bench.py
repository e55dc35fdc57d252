"""DataJoint Python 2.3.5 on the work of `benches/tables.rs` (run by `cargo xtask bench`).

The same tables, rows and servers: 10,000 small rows inserted in one `insert` and fetched back,
and 100 rows of a 1 MiB float64 array in a `<blob>` column, on PostgreSQL and MariaDB (from
`DJ_TEST_POSTGRES_URL` / `DJ_TEST_MYSQL_URL`). Each number is the median of 5 rounds.
"""
import os
import statistics
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _ratios import configure, report  # noqa: E402

ROUNDS = 5


def median_time(table, op, refill=None):
    """Median of ROUNDS timings of `op`. Inserts (no `refill`) empty the table before each
    round; fetches fill it once with `refill` and then only read, as the Rust bench does."""
    times = []
    if refill is not None:
        table.delete_quick()
        refill()
    for _ in range(ROUNDS):
        if refill is None:
            table.delete_quick()
        t = time.perf_counter()
        op()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    rng = np.random.default_rng(7)
    small = [dict(id=i, a=(i * 7919) % (2**31), b=i * 0.5, c=f"row {i}") for i in range(10_000)]
    blobs = [dict(id=i, data=rng.random(1024 * 1024 // 8) - 0.5) for i in range(100)]
    for label, var in [("postgres", "DJ_TEST_POSTGRES_URL"), ("mariadb", "DJ_TEST_MYSQL_URL")]:
        url = os.environ.get(var)
        if not url:
            print(f"SKIP {label}: {var} is not set")
            continue
        _, conn = configure(url)
        schema = dj.Schema(f"djbench_py_{os.getpid()}", connection=conn)

        @schema
        class Small(dj.Manual):
            definition = """
            id : int32
            ---
            a : int32
            b : float64
            c : varchar(32)
            """

        @schema
        class Signal(dj.Manual):
            definition = """
            id : int32
            ---
            data : <blob>
            """

        # Fetches first, from tables filled once, as the Rust bench does (the insert rounds
        # leave dead tuples behind on PostgreSQL).
        t = median_time(Small(), lambda: Small.to_dicts(), refill=lambda: Small.insert(small))
        report(label, "10,000 small rows", "fetch", t)
        t = median_time(Small(), lambda: Small.insert(small))
        report(label, "10,000 small rows", "insert", t)
        fill = lambda: Signal.insert(blobs)  # noqa: E731
        try:
            t = median_time(Signal(), lambda: Signal.to_dicts(), refill=fill)
            report(label, "100 rows of 1 MiB <blob>", "fetch", t)
            t = median_time(Signal(), fill)
            report(label, "100 rows of 1 MiB <blob>", "insert", t)
        except dj.errors.DataJointError as e:
            # One INSERT of ~100 MiB exceeds the server's max_allowed_packet (MariaDB's default
            # is 16 MiB); DataJoint does not split it. Time its workaround, a row at a time.
            print(f"{label}: 100 rows of 1 MiB <blob> / insert: DataJoint 2.3.5 FAILS in one insert ({type(e).__name__})")
            _, conn = configure(url)
            fill = lambda: [Signal.insert1(b) for b in blobs]  # noqa: E731
            t = median_time(Signal(), lambda: Signal.to_dicts(), refill=fill)
            report(label, "100 rows of 1 MiB <blob>", "fetch", t)
            t = median_time(Signal(), fill)
            report(label, "100 rows of 1 MiB <blob>", "insert", t, note=" (DataJoint: insert1 per row)")
        schema.drop(prompt=False)


if __name__ == "__main__":
    main()
