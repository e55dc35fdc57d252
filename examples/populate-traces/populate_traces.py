"""The DataJoint 2.3.5 (Python) equivalent of the `populate-traces` Rust example.

Same schema, same tables, same filter, same job queue: Python workers started with
``python populate_traces.py worker`` and Rust workers started with
``populate-traces populate --workers N`` can work on one queue together.

    python populate_traces.py seed 200      # sessions 1..200
    python populate_traces.py populate      # one process, progress bar
    python populate_traces.py worker        # one worker on the job queue ~~filtered_trace

DataJoint 2.3.5 cannot resolve a bare ``<blob@>`` to ``stores.default`` (dj-rs does, and records
the store it resolved to: ``<blob@traces>``), so the store is named here. The database and the
store come from ``datajoint.json`` (DataJoint Python has no SQLite
backend: PostgreSQL or MySQL), e.g.

    {"database": {"backend": "postgresql", "host": "127.0.0.1", "user": "postgres"},
     "stores": {"default": "traces",
                "traces": {"protocol": "file", "location": "populate_traces_store"}}}
"""

import os
import sys

import datajoint as dj
import numpy as np

schema = dj.Schema(os.environ.get("POPULATE_TRACES_SCHEMA", "populate_traces"))
SAMPLING_RATE = 1000.0


@schema
class Session(dj.Manual):
    definition = """
    # a recording session and its raw trace
    session_id : int32
    ---
    sampling_rate : float64     # Hz
    trace : <blob@traces>       # raw samples, in store `traces`
    """


def moving_average(x, window):
    """The centred moving average over `window` samples (fewer at the edges)."""
    x = np.asarray(x, dtype=np.float64)
    if window <= 1 or x.size == 0:
        return x
    before = (window - 1) // 2
    after = window - 1 - before
    prefix = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(x.size)
    lo = np.maximum(i - before, 0)
    hi = np.minimum(i + after + 1, x.size)
    return (prefix[hi] - prefix[lo]) / (hi - lo)


@schema
class FilteredTrace(dj.Computed):
    definition = """
    # the session's trace smoothed by a centred moving average
    -> Session
    ---
    window : int32              # samples averaged
    filtered : <blob@traces>    # the smoothed trace, in store `traces`
    """

    def make(self, key, window=9):
        trace = (Session & key).fetch1("trace")
        bad = np.flatnonzero(~np.isfinite(trace))
        if bad.size:
            raise ValueError(
                f"session {key['session_id']}: sample {bad[0]} of the trace is "
                f"{trace[bad[0]]}; the filter needs finite samples"
            )
        self.insert1(dict(key, window=window, filtered=moving_average(trace, window)))


def seed(n, samples=10_000):
    rng = np.random.default_rng(0)
    t = np.arange(samples) / SAMPLING_RATE
    Session.insert(
        (
            dict(
                session_id=i,
                sampling_rate=SAMPLING_RATE,
                trace=np.sin(2 * np.pi * (5 + i % 7) * t) + rng.uniform(-0.5, 0.5, samples),
            )
            for i in range(1, n + 1)
        ),
        skip_duplicates=True,
    )


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "populate"
    if command == "seed":
        seed(int(sys.argv[2]) if len(sys.argv) > 2 else 20)
    elif command == "populate":
        FilteredTrace.populate(
            display_progress=True, suppress_errors=True, make_kwargs={"window": 9}
        )
    elif command == "worker":
        FilteredTrace.populate(
            reserve_jobs=True,
            suppress_errors=True,
            make_kwargs={"window": 9},
        )
    print(FilteredTrace.progress(display=False))
