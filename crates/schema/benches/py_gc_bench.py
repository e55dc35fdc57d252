"""DataJoint 2.3.5's GarbageCollector dry run on the schema and store the Rust `gc` bench set up
(it runs this script and passes DJ_BENCH_GC_SCHEMA, DJ_BENCH_GC_STORE, DJ_BENCH_GC_ORPHANS and
DJ_TEST_POSTGRES_URL); prints `seconds <t>`. Not run on its own: `cargo xtask bench` skips it
when the variables are missing."""
import os
import time
import warnings

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _ratios import configure  # noqa: E402


def main():
    schema_name = os.environ.get("DJ_BENCH_GC_SCHEMA")
    url = os.environ.get("DJ_TEST_POSTGRES_URL")
    if not schema_name or not url:
        print("SKIP: run by the Rust gc bench (cargo bench -p dj-schema --bench gc)")
        return
    _, conn = configure(url, stores={
        "files": {"protocol": "file", "location": os.environ["DJ_BENCH_GC_STORE"]}})
    schema = dj.Schema(schema_name, connection=conn, create_schema=False)
    start = time.perf_counter()
    stats = dj.gc.GarbageCollector(schema, store="files").collect(dry_run=True)
    seconds = time.perf_counter() - start
    assert stats["schema_paths_orphaned"] == int(os.environ["DJ_BENCH_GC_ORPHANS"]), stats
    print(f"seconds {seconds}")


if __name__ == "__main__":
    main()
