"""A DataJoint 2.3.5 worker for tests/populate.rs: populates `Result` of an existing schema
through its job table `~~result`, beside Rust workers. Not a test by itself.

usage: populate_worker.py URL SCHEMA           -> populates, prints {"made": n, "success_count": n}
       populate_worker.py URL SCHEMA refresh   -> declares and refreshes the job table only,
                                                  prints its progress()
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
        x = (Item & key).fetch1("x")
        time.sleep(0.01)
        self.insert1(dict(key, y=2 * x, worker="py"))
        made += 1


if sys.argv[3:] == ["refresh"]:
    Result.jobs.refresh()
    print(json.dumps(Result.jobs.progress()))
else:
    out = Result.populate(reserve_jobs=True, suppress_errors=False)
    print(json.dumps({"made": made, "success_count": out["success_count"]}))
