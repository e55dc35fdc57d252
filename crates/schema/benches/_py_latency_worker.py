"""DataJoint Python 2.3.5's side of `benches/latency.rs`, driven by it round by round.

The Rust bench starts this script once per server (URL as the first argument), and then
alternates: it times its own work, writes a command line here, and reads back the seconds
DataJoint took for the same work, so that both run under the same load. Commands:

- `fetch1`: `(Small & {"id": i}).fetch1()` for each of the 1000 rows of `Small`;
- `insert`: empty `Bulk` (not timed), then one `Bulk.insert` of the 10,000 rows.

The tables are those of the Rust side (`id : int32`, `a : int32`, `b : float64`,
`c : varchar(32)`), with the same values, in a schema of this script's own (dropped on `quit`).
"""
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _ratios import configure  # noqa: E402

FETCH_ROWS = 1000
INSERT_ROWS = 10_000


def rows(n):
    return [dict(id=i, a=(i * 7919) % (2**31), b=i * 0.5, c=f"row {i}") for i in range(n)]


def main():
    _, conn = configure(sys.argv[1])
    schema = dj.Schema(f"djbench_lat_py_{os.getpid()}", connection=conn)

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
    class Bulk(dj.Manual):
        definition = """
        id : int32
        ---
        a : int32
        b : float64
        c : varchar(32)
        """

    Small.insert(rows(FETCH_ROWS))
    bulk = rows(INSERT_ROWS)
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "fetch1":
            t = time.perf_counter()
            for i in range(FETCH_ROWS):
                r = (Small & {"id": i}).fetch1()
                assert r["id"] == i
            print(time.perf_counter() - t, flush=True)
        elif cmd == "insert":
            Bulk.delete_quick()
            t = time.perf_counter()
            Bulk.insert(bulk)
            print(time.perf_counter() - t, flush=True)
        elif cmd == "quit":
            break
        else:
            print(f"unknown command {cmd!r}", file=sys.stderr, flush=True)
            sys.exit(2)
    schema.drop(prompt=False)


if __name__ == "__main__":
    main()
