"""DataJoint Python 2.3.5 on the work of `benches/objects.rs` (run by `cargo xtask bench`).

100 random 1 MiB float64 arrays in one `insert` into `<blob@file>` and `<blob@s3>` (the loopback
S3 server), and 1000 random 64 KiB arrays into `<blob@file>`, and fetching them back, with the
table on PostgreSQL. Every insert round writes new arrays (as the Rust bench does), and rows and
objects are removed between rounds. Each number is the median of 5 rounds; each line prints the
ratio to dj-rs's criterion median. DataJoint always writes zlib level 6, so its 100 x 1 MiB
`<blob@file>` figures are also what dj-rs's `compat` mode is compared with. Last, dj-rs's times
against the machine's floors that the Rust bench measured (durable writes, reads, PostgreSQL's
COPY).
"""
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

warnings.filterwarnings("ignore")
import boto3  # noqa: E402
import datajoint as dj  # noqa: E402
from _ratios import configure, floor, report  # noqa: E402

ROUNDS = 5


def main():
    url = os.environ.get("DJ_TEST_POSTGRES_URL")
    endpoint = os.environ.get("DJ_TEST_S3_ENDPOINT")
    if not url or not endpoint:
        print("SKIP: DJ_TEST_POSTGRES_URL and DJ_TEST_S3_* are needed")
        return
    host = urlparse(endpoint)
    prefix = f"pybench-{os.getpid()}"
    s3 = boto3.resource("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=os.environ["DJ_TEST_S3_ACCESS_KEY"],
                        aws_secret_access_key=os.environ["DJ_TEST_S3_SECRET_KEY"])
    bucket = s3.Bucket(os.environ["DJ_TEST_S3_BUCKET"])
    with tempfile.TemporaryDirectory() as work:
        files = Path(work) / "files"
        files.mkdir()
        _, conn = configure(url, stores={
            "files": {"protocol": "file", "location": str(files)},
            "s3": {"protocol": "s3", "endpoint": f"{host.hostname}:{host.port}", "secure": False,
                   "bucket": os.environ["DJ_TEST_S3_BUCKET"], "location": prefix,
                   "access_key": os.environ["DJ_TEST_S3_ACCESS_KEY"],
                   "secret_key": os.environ["DJ_TEST_S3_SECRET_KEY"]},
        })
        schema = dj.Schema(f"djbench_pyobj_{os.getpid()}", connection=conn)

        @schema
        class SigFile(dj.Manual):
            definition = """
            id : int32
            ---
            data : <blob@files>
            """

        @schema
        class SigS3(dj.Manual):
            definition = """
            id : int32
            ---
            data : <blob@s3>
            """

        @schema
        class Small(dj.Manual):
            definition = """
            id : int32
            ---
            data : <blob@files>
            """

        rng = np.random.default_rng(3)

        def fresh(n=100, size=1024 * 1024):
            return [dict(id=i, data=rng.random(size // 8) - 0.5) for i in range(n)]

        def clear(table, store):
            table.delete_quick()
            if store == "file":
                shutil.rmtree(files / "_hash", ignore_errors=True)
            else:
                bucket.objects.filter(Prefix=prefix + "/").delete()

        workloads = [(SigFile, "file", 100, 1024 * 1024, "100 x 1 MiB"),
                     (SigS3, "s3", 100, 1024 * 1024, "100 x 1 MiB"),
                     (Small, "file", 1000, 64 * 1024, "1000 x 64 KiB")]
        for table, store, n, size, what in workloads:
            group = f"{what} float64 in <blob@{store}>"
            # Fetches first, after one fill, then the insert rounds, as the Rust bench does.
            clear(table, store)
            table.insert(fresh(n, size))
            times = []
            for _ in range(ROUNDS):
                t = time.perf_counter()
                rows = len(table.to_dicts())
                times.append(time.perf_counter() - t)
                assert rows == n
            fetch = statistics.median(times)
            report("postgres", group, "fetch", fetch)
            times = []
            for _ in range(ROUNDS):
                clear(table, store)
                rows = fresh(n, size)
                t = time.perf_counter()
                table.insert(rows)
                times.append(time.perf_counter() - t)
            insert = statistics.median(times)
            report("postgres", group, "insert", insert)
            if table is SigFile:
                compat = "100 x 1 MiB float64 in <blob@file>, compat"
                report("postgres", compat, "fetch", fetch)
                report("postgres", compat, "insert", insert)
            clear(table, store)
        schema.drop(prompt=False)
    for group, what in [("100 x 1 MiB float64 in <blob@file>", "100 x 1 MiB"),
                        ("100 x 1 MiB float64 in <blob@file>, compat", "100 x 1 MiB"),
                        ("1000 x 64 KiB float64 in <blob@file>", "1000 x 64 KiB")]:
        floor("postgres", group, "insert", f"durable write {what}")
        floor("postgres", group, "fetch", f"read {what}")
    floor("postgres", "100 rows of 1 MiB <blob>", "insert", "postgres COPY 100 x 1 MiB bytea",
          " (in-table, benches/tables.rs)")


if __name__ == "__main__":
    main()
