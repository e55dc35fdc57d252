"""A DataJoint 2.3.5 worker for tests/populate.rs: populates `Result` of an existing schema
through its job table `~~result`, beside Rust workers. Not a test by itself.

usage: populate_worker.py URL SCHEMA           -> populates, prints {"made": n, "success_count": n}
       populate_worker.py URL SCHEMA refresh   -> declares and refreshes the job table only,
                                                  prints its progress()
       populate_worker.py URL SCHEMA bench     -> a trivial make through the job table, timed
       populate_worker.py URL SCHEMA hang      -> reserves a job, inserts its row in make and
                                                  hangs there (to be killed)
"""
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _interop import configure  # noqa: E402

url, schema_name = sys.argv[1], sys.argv[2]
configure(url)
schema = dj.Schema(schema_name, create_schema=False, create_tables=False)
made = 0
hang = sys.argv[3:] == ["hang"]
bench = sys.argv[3:] == ["bench"]


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
        global made
        if bench:
            self.insert1(dict(key, y=0, worker="py"))
            return
        x = (Item & key).fetch1("x")
        time.sleep(0.01)
        self.insert1(dict(key, y=2 * x, worker="py"))
        made += 1
        if hang:
            print("inserted", flush=True)
            time.sleep(3600)


if sys.argv[3:] == ["refresh"]:
    Result.jobs.refresh()
    print(json.dumps(Result.jobs.progress()))
elif bench:
    start = time.perf_counter()
    out = Result.populate(reserve_jobs=True, suppress_errors=False)
    print(json.dumps({"seconds": time.perf_counter() - start, "success_count": out["success_count"]}))
else:
    out = Result.populate(reserve_jobs=True, suppress_errors=False)
    print(json.dumps({"made": made, "success_count": out["success_count"]}))
