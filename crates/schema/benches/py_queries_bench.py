"""DataJoint Python 2.3.5 on the work of `benches/queries.rs` (run by `cargo xtask bench`).

The same tables, filled on the server with the same values, on PostgreSQL and MariaDB (from
`DJ_TEST_POSTGRES_URL` / `DJ_TEST_MYSQL_URL`):

- `Child * Parent & 'value < 0.5'` (100,000 x 1,000 rows) fetched with `to_dicts()` and
  `to_arrow()`, next to dj-rs fetching the same join into structs (and into Arrow when the bench
  has it);
- `dj.U('grp').aggr(Big, n='count(*)', mean_x='avg(x)')` over 1,000,000 rows, and the ratio of
  dj-rs's time to the hand-written SQL's time that the criterion bench recorded (goal: <= 1.2).

Each DataJoint number is the median of 3 rounds.
"""
import os
import statistics
import time
import warnings

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _ratios import configure, report, rust_ms  # noqa: E402

ROUNDS = 3
JOIN = "join 100,000 x 1,000 restricted"
AGGR = "aggregate 1,000,000 rows"


def median_time(op):
    times = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        op()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def series(backend, schema, n):
    if backend == "postgresql":
        return f"(SELECT i FROM generate_series(0, {n - 1}) AS s(i)) AS s"
    return f"(SELECT seq AS i FROM `{schema}`.seq_0_to_{n - 1}) AS s"


def main():
    for label, var in [("postgres", "DJ_TEST_POSTGRES_URL"), ("mariadb", "DJ_TEST_MYSQL_URL")]:
        url = os.environ.get(var)
        if not url:
            print(f"SKIP {label}: {var} is not set")
            continue
        backend, conn = configure(url)
        name = f"djbench_pyq_{os.getpid()}"
        schema = dj.Schema(name, connection=conn)

        try:
            @schema
            class Parent(dj.Manual):
                definition = """
                parent_id : int32
                ---
                label : varchar(16)
                grp : int16
                """

            @schema
            class Child(dj.Manual):
                definition = """
                -> Parent
                child_id : int32
                ---
                value : float64
                flag : int16
                """

            @schema
            class Big(dj.Manual):
                definition = """
                id : int32
                ---
                grp : int32
                x : float64
                """

            q = (lambda t: f'"{name}"."{t}"') if backend == "postgresql" else (lambda t: f"`{name}`.`{t}`")
            concat = "'p' || i" if backend == "postgresql" else "CONCAT('p', i)"
            conn.query(f"INSERT INTO {q('parent')} (parent_id, label, grp) "
                       f"SELECT i, {concat}, i %% 10 FROM {series(backend, name, 1000)}")
            conn.query(f"INSERT INTO {q('child')} (parent_id, child_id, value, flag) "
                       f"SELECT i %% 1000, i, ((i * 7919) %% 1000) / 1000.0, i %% 3 FROM {series(backend, name, 100_000)}")
            conn.query(f"INSERT INTO {q('big')} (id, grp, x) "
                       f"SELECT i, i %% 1000, ((i * 37) %% 10007) / 100.0 FROM {series(backend, name, 1_000_000)}")
            if backend == "postgresql":
                conn.query("ANALYZE")

            join = Child * Parent & "value < 0.5"
            report(label, JOIN, "structs", median_time(lambda: join.to_dicts()), note=" (to_dicts)")
            report(label, JOIN, "arrow", median_time(lambda: join.to_arrow()), note=" (to_arrow)")

            aggr = dj.U("grp").aggr(Big, n="count(*)", mean_x="avg(x)")
            t = median_time(lambda: aggr.to_dicts())
            report(label, AGGR, "dj-rs", t, note=" (to_dicts)")
            raw_sql = f"SELECT grp, count(*), avg(x) FROM {q('big')} GROUP BY grp"
            raw_py = median_time(lambda: conn.query(raw_sql).fetchall())
            ours, raw = rust_ms(f"{label}: {AGGR}", "dj-rs"), rust_ms(f"{label}: {AGGR}", "raw SQL")
            if ours and raw:
                print(f"{label}: {AGGR}: dj-rs {ours:.1f} ms / the same SQL by hand {raw:.1f} ms = "
                      f"{ours / raw:.2f} (goal <= 1.2); DataJoint {t * 1000:.1f} ms / its raw query "
                      f"{raw_py * 1000:.1f} ms = {t / raw_py:.2f}", flush=True)
            else:
                print(f"{label}: {AGGR}: no dj-rs results (run the criterion bench first)")
        finally:
            schema.drop(prompt=False)


if __name__ == "__main__":
    main()
