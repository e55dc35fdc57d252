"""DataJoint Python 2.3.5 on the work of `benches/objects.rs` (run by `cargo xtask bench`).

100 random 1 MiB float64 arrays in one `insert` into `<blob@file>` and `<blob@s3>` (the loopback
S3 server), and fetching them back, with the table on PostgreSQL. Every insert round writes new
arrays (as the Rust bench does), and rows and objects are removed between rounds. Each number is
the median of 5 rounds; each line prints the ratio to dj-rs's criterion median.
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
from _ratios import configure, report  # noqa: E402

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

        rng = np.random.default_rng(3)

        def fresh():
            return [dict(id=i, data=rng.random(1024 * 1024 // 8) - 0.5) for i in range(100)]

        def clear(table, store):
            table.delete_quick()
            if store == "file":
                shutil.rmtree(files / "_hash", ignore_errors=True)
            else:
                bucket.objects.filter(Prefix=prefix + "/").delete()

        for table, store in [(SigFile, "file"), (SigS3, "s3")]:
            group = f"100 x 1 MiB float64 in <blob@{store}>"
            # Fetches first, after one fill, then the insert rounds, as the Rust bench does.
            clear(table, store)
            table.insert(fresh())
            times = []
            for _ in range(ROUNDS):
                t = time.perf_counter()
                n = len(table.to_dicts())
                times.append(time.perf_counter() - t)
                assert n == 100
            report("postgres", group, "fetch", statistics.median(times))
            times = []
            for _ in range(ROUNDS):
                clear(table, store)
                rows = fresh()
                t = time.perf_counter()
                table.insert(rows)
                times.append(time.perf_counter() - t)
            report("postgres", group, "insert", statistics.median(times))
            clear(table, store)
        schema.drop(prompt=False)


if __name__ == "__main__":
    main()
