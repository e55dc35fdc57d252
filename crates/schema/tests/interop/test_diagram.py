"""The dependency graph, `dj diagram` and `dj jobs` on a pipeline DataJoint Python 2.3.5
declared and populated (run by `cargo xtask test`).

On PostgreSQL and on MariaDB, Python declares a Lookup, Manuals, a master with a part, a
Computed table whose make fails for one key (so its job table `~~clean`, declared by DataJoint,
holds an error) and a Computed table with two renamed foreign keys to one parent. Then:

1. `dj --json diagram` lists the same tables and the same foreign keys as DataJoint's
   `connection.dependencies`, with the same `primary`, `aliased`, `multi` and attribute maps,
   and an order that is topological with every part right after its master (or its sibling);
2. `dj --json jobs` reads DataJoint's job table: the error with DataJoint's message, the
   pending count after `--refresh`;
3. `dj diagram --format dot` and the SVG are drawn.

Each run uses a fresh schema name and drops it at the end.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _interop import CI, ROOT, configure  # noqa: E402


def dj_cli(config, *args):
    """Run the `dj` binary (debug build) with `config`; return (exit code, stdout, stderr)."""
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--manifest-path", str(ROOT / "Cargo.toml"), "-p", "dj-cli",
         "--", "--config", str(config), *args],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    return out.returncode, out.stdout, out.stderr


def plain(name):
    """`"s"."t"` or `` `s`.`t` `` → `s.t`."""
    return name.replace('"', "").replace("`", "")


def run(url, backend, conn, name):
    schema = dj.Schema(name, connection=conn, create_tables=True)

    @schema
    class Rig(dj.Lookup):
        definition = "rig : varchar(16)"
        contents = [("r1",)]

    @schema
    class Subject(dj.Manual):
        definition = "subject_id : int32\n---\n-> Rig"

    @schema
    class Session(dj.Manual):
        definition = "-> Subject\nsession : int16"

        class Trial(dj.Part):
            definition = "-> master\ntrial : int16"

    @schema
    class Clean(dj.Computed):
        definition = "-> Session\n---\nn : int32"

        def make(self, key):
            if key["session"] == 2:
                raise ValueError("boom: session 2 has no trace")
            self.insert1(dict(key, n=1))

    @schema
    class Pair(dj.Computed):
        definition = (
            "-> Subject.proj(subject_a='subject_id')\n-> Subject.proj(subject_b='subject_id')"
        )

        def make(self, key):
            self.insert1(key)

    try:
        Subject.insert([(1, "r1"), (2, "r1")])
        Session.insert([(1, 1), (1, 2), (2, 1)])
        Session.Trial.insert([(1, 1, 1), (1, 1, 2)])
        Clean.populate(reserve_jobs=True, suppress_errors=True)

        with tempfile.TemporaryDirectory() as work:
            config = Path(work) / "datajoint.json"
            config.write_text(json.dumps({"database": {"url": url}}))

            # 1. The graph, against DataJoint's own.
            code, out, err = dj_cli(config, "--json", "diagram", name)
            assert code == 0, err
            ours = json.loads(out)
            conn.dependencies.load()
            deps = conn.dependencies
            theirs_nodes = {plain(n) for n in deps.nodes() if plain(n).startswith(name + ".")}
            our_nodes = {t["full_name"] for t in ours["tables"]}
            assert our_nodes == theirs_nodes, (our_nodes, theirs_nodes)

            def edge_key(parent, child, attr_map, primary, aliased, multi):
                return (parent, child, tuple(sorted(attr_map)), primary, aliased, multi)

            theirs_edges = sorted(
                edge_key(plain(u), plain(v), list(d["attr_map"].items()), d["primary"],
                         d["aliased"], d["multi"])
                for u, v, d in deps.edges(data=True)
                if plain(v).startswith(name + ".")
            )
            our_edges = sorted(
                edge_key(e["parent"], e["child"], [tuple(p) for p in e["attr_map"]], e["primary"],
                         e["aliased"], e["multi"])
                for e in ours["foreign_keys"]
            )
            assert our_edges == theirs_edges, (our_edges, theirs_edges)
            order = ours["order"]
            assert sorted(order) == sorted(our_nodes)
            pos = {n: i for i, n in enumerate(order)}
            for parent, child, *_ in our_edges:
                assert pos[parent] < pos[child], (parent, child, order)
            trial = f"{name}.session__trial"
            assert pos[trial] == pos[f"{name}.session"] + 1, order
            tiers = {t["full_name"]: t["tier"] for t in ours["tables"]}
            assert tiers[f"{name}.#rig"] == "lookup" and tiers[f"{name}.__clean"] == "computed"
            assert tiers[trial] == "part"

            # 2. DataJoint's job table, read and refreshed by `dj jobs`.
            code, out, err = dj_cli(config, "--json", "jobs", f"{name}.Clean")
            assert code == 0, err
            jobs = json.loads(out)
            assert jobs["job_table"] == f"{name}.~~clean", jobs
            assert jobs["counts"]["error"] == 1, jobs
            [error] = jobs["errors"]
            assert error["key"] == {"subject_id": 1, "session": 2}, error
            assert "boom: session 2 has no trace" in error["message"], error
            assert "ValueError" in (error["stack"] or ""), error
            code, out, err = dj_cli(config, "--json", "jobs", f"{name}.Clean", "--clear-errors",
                                    "--refresh")
            assert code == 0, err
            jobs = json.loads(out)
            assert jobs["actions"]["errors_cleared"] == 1, jobs
            assert jobs["actions"]["refreshed"]["added"] == 1, jobs
            # DataJoint sees the key pending again.
            pending = (Clean.jobs & "status = 'pending'").fetch("KEY")
            assert pending == [{"subject_id": 1, "session": 2}], pending

            # 3. The drawings.
            code, out, err = dj_cli(config, "diagram", name, "--format", "dot")
            assert code == 0, err
            assert f'"{name}.session" -> "{name}.__clean"' in out, out
            code, out, err = dj_cli(config, "diagram", name)
            assert code == 0 and out.startswith("<?xml") and out.count('<g class="node ') == 6, err
    finally:
        schema.drop(prompt=False)


def main():
    urls = [os.environ.get("DJ_TEST_POSTGRES_URL"), os.environ.get("DJ_TEST_MYSQL_URL")]
    ran = 0
    for url in urls:
        if not url:
            if CI:
                sys.exit("DJ_TEST_POSTGRES_URL and DJ_TEST_MYSQL_URL must be set with CI=true")
            print("SKIP a backend: its URL is not set")
            continue
        backend, conn = configure(url)
        run(url, backend, conn, f"djx_diagram_{os.getpid()}")
        ran += 1
    print(f"diagram interop passed on {ran} backend(s)")


if __name__ == "__main__":
    main()
