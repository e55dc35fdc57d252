"""DataJoint Python 2.3.5 on the `paths` bench's work, side by side with dj-rs (run by
`cargo xtask bench` after the criterion benches; prints the ratios to dj-rs's medians).

20 files of 50 MiB, inserted from local paths into an `<object@files>` column in one `insert`,
then fetched and read back in full (`ObjectRef.read()`), with the table on PostgreSQL and the
objects in a `file` store. The median of 5 rounds.
"""
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _ratios import configure, report  # noqa: E402

ROUNDS = 5
FILES = 20
SIZE = 50 * 1024 * 1024


def main():
    url = os.environ.get("DJ_TEST_POSTGRES_URL")
    if not url:
        print("SKIP: DJ_TEST_POSTGRES_URL is needed")
        return
    base = os.environ.get("DJ_BENCH_DIR", ".")
    with tempfile.TemporaryDirectory(dir=base) as work:
        work = Path(work)
        files = work / "files"
        files.mkdir()
        src = work / "src"
        src.mkdir()
        for i in range(FILES):
            (src / f"rec{i:02}.bin").write_bytes(os.urandom(SIZE))
        _, conn = configure(url, stores={"files": {"protocol": "file", "location": str(files)}})
        schema = dj.Schema(f"djbench_pypaths_{os.getpid()}", connection=conn)

        @schema
        class Rec(dj.Manual):
            definition = """
            id : int32
            ---
            data : <object@files>
            """

        def clear():
            Rec.delete_quick()
            shutil.rmtree(files / "_schema", ignore_errors=True)

        group = f"{FILES} x 50 MiB files in <object@file>"
        times = []
        for _ in range(ROUNDS):
            clear()
            rows = [dict(id=i, data=str(src / f"rec{i:02}.bin")) for i in range(FILES)]
            t = time.perf_counter()
            Rec.insert(rows)
            times.append(time.perf_counter() - t)
        report("postgres", group, "insert", statistics.median(times))
        times = []
        for _ in range(ROUNDS):
            t = time.perf_counter()
            total = sum(len(ref.read()) for ref in Rec.to_arrays("data"))
            times.append(time.perf_counter() - t)
            assert total == FILES * SIZE, total
        report("postgres", group, "fetch and read", statistics.median(times))
        clear()
        schema.drop(prompt=False)


if __name__ == "__main__":
    main()
