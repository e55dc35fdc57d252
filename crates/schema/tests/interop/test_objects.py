"""Hash-addressed object storage shared by DataJoint Python 2.3.5 and dj-rs (run by `cargo xtask test`).

On PostgreSQL and on MariaDB, with one `file` store and one bucket on the loopback S3 server
configured identically on both sides:

1. Python declares a table with `<blob@files>`, `<blob@s3>` and `<attach@files>` and inserts rows;
   Rust fetches them and gets equal values (blobs compared byte for byte).
2. Rust (with `blob_compression: compat`) inserts rows; Python fetches equal values.
3. The same content inserted from both sides is stored once: Rust's row points at the object
   Python wrote, and the store holds one object per distinct content.

MariaDB note: DataJoint 2.3.5 cannot insert into a store-backed column there. The codec
hands pymysql the metadata as a `dict`, and pymysql refuses to escape a dict ("dict can not be
used as parameter"); on PostgreSQL psycopg2 adapts it. This script patches pymysql's encoder
table so a dict is sent as its JSON text (what a `longtext` JSON column holds), and only on
MariaDB. Nothing else on the Python side is patched.
"""
import os
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from datajoint import blob  # noqa: E402
from _interop import configure, run_with_stores, tool  # noqa: E402

def same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.asarray(a).shape == np.asarray(b).shape and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def run(url, stores, work):
    backend, conn = configure(url, stores, patch_json=True)
    name = f"djx_obj_{os.getpid()}"
    schema = dj.Schema(name, connection=conn)

    @schema
    class Rec(dj.Manual):
        definition = """
        rec_id : int32
        ---
        raw : <blob@files>
        cold = null : <blob@s3>
        doc = null : <attach@files>
        """

    rng = np.random.default_rng(11)
    shared = rng.standard_normal((64, 100))            # inserted from both sides
    py_vals = {1: shared, 2: {"channels": 32, "rate": 30000.0, "gain": np.arange(5.0)}}
    cold_val = rng.integers(0, 1000, size=3000).astype(np.int32)
    doc = Path(work) / "protocol.txt"
    doc.write_text("protocol v1\n")
    Rec.insert([
        dict(rec_id=1, raw=py_vals[1], cold=cold_val, doc=str(doc)),
        dict(rec_id=2, raw=py_vals[2], cold=None, doc=None),
    ])

    rs_config = {"stores": stores, "blob_compression": "compat",
                 "download_path": str(Path(work) / f"rs_downloads_{backend}")}
    base = {"url": url, "schema": name, "config": rs_config}

    # 1. Rust reads Python's rows.
    got = tool({**base, "op": "read", "tables": ["rec"]})["rec"]
    types = {a["name"]: a["type"] for a in got["attributes"]}
    assert types == {"rec_id": "int32", "raw": "<blob@files>", "cold": "<blob@s3>",
                     "doc": "<attach@files>"}, types
    rows = got["rows"]
    for r in rows:
        packed = bytes.fromhex(r["raw"]["$blob"])
        assert same(blob.unpack(packed), py_vals[r["rec_id"]]), r["rec_id"]
        assert packed == blob.pack(py_vals[r["rec_id"]]), "compat bytes differ"
    assert np.array_equal(blob.unpack(bytes.fromhex(rows[0]["cold"]["$blob"])), cold_val)
    assert rows[1]["cold"] is None and rows[1]["doc"] is None
    att = rows[0]["doc"]
    assert att["$attach"] == "protocol.txt" and bytes.fromhex(att["hex"]) == b"protocol v1\n", att
    assert Path(att["saved_to"]).read_bytes() == b"protocol v1\n"
    print(f"{backend}: Rust fetched Python's <blob@files>, <blob@s3> and <attach@files> values")

    # 2. Rust inserts; Python fetches.
    rs_new = {"tag": "rust", "x": np.linspace(0, 1, 3000)}
    tool({**base, "op": "insert", "table": "rec", "rows": [
        {"rec_id": 3, "raw": {"$blob": blob.pack(rs_new).hex()},
         "cold": {"$blob": blob.pack(rs_new).hex()},
         "doc": {"$attach": "notes.md", "hex": b"# from rust\n".hex()}},
        # The same array Python stored for row 1.
        {"rec_id": 4, "raw": {"$blob": blob.pack(shared).hex()}},
    ]})
    dl = Path(work) / f"py_downloads_{backend}"
    dl.mkdir(exist_ok=True)
    with dj.config.override(download_path=str(dl)):
        r3 = (Rec & {"rec_id": 3}).fetch1()
    assert same(r3["raw"], rs_new) and same(r3["cold"], rs_new), r3
    path = r3["doc"]
    assert Path(path).name == "notes.md" and Path(path).read_bytes() == b"# from rust\n", path
    assert np.array_equal((Rec & {"rec_id": 4}).fetch1("raw"), shared)
    assert (Rec & {"rec_id": 4}).fetch1("cold") is None
    print(f"{backend}: Python fetched Rust's rows")

    # 3. Deduplication across languages.
    stored = {r["rec_id"]: r for r in tool({**base, "op": "stored", "table": "rec"})["rows"]}
    assert stored[4]["raw"]["path"] == stored[1]["raw"]["path"], (stored[1]["raw"], stored[4]["raw"])
    assert stored[4]["raw"]["hash"] == stored[1]["raw"]["hash"]
    files_root = Path(stores["files"]["location"]) / "_hash" / name
    objects = sorted(p for p in files_root.rglob("*") if p.is_file())
    # raw: shared, py dict, rs_new; doc: protocol.txt, notes.md  -> 5 distinct objects
    assert len(objects) == 5, [str(p) for p in objects]
    print(f"{backend}: the same content from Python and Rust is stored once ({len(objects)} objects)")
    schema.drop(prompt=False)


def main():
    run_with_stores(run, "object-storage", "interop")

if __name__ == "__main__":
    main()
