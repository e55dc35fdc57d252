"""Path-addressed object storage shared by DataJoint Python 2.3.5 and dj-rs (run by `cargo xtask test`).

On PostgreSQL and on MariaDB, with one `file` store and one bucket on the loopback S3 server
configured identically on both sides:

1. Python declares a table with `<object@files>`, `<object@s3>` and `<npy@files>` and inserts a
   file, a folder and an array; Rust fetches `ObjectRef`s and an `NpyRef` and reads the same bytes,
   files and values (and the objects pass Rust's `verify`, which has no checksum to check here).
2. Rust inserts bytes with an extension, a local folder and an array; Python reads them with
   `ObjectRef.read()`, `ObjectRef.download()` and `NpyRef.load()`, and its `verify()` passes.
3. Rust's paths follow DataJoint's layout, so Python's own path builder agrees on the prefix.

MariaDB: DataJoint 2.3.5 needs the same pymysql JSON patch as test_objects.py (see there).
"""
import os
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _interop import configure, run_with_stores, tool  # noqa: E402


def run(url, stores, work):
    backend, conn = configure(url, stores, patch_json=True)
    name = f"djx_paths_{os.getpid()}"
    schema = dj.Schema(name, connection=conn)

    @schema
    class Rec(dj.Manual):
        definition = """
        rec_id : int32
        ---
        obj = null : <object@files>
        folder = null : <object@s3>
        arr = null : <npy@files>
        """

    work = Path(work)
    src = work / f"py_src_{backend}"
    (src / "folder" / "sub").mkdir(parents=True, exist_ok=True)
    raw = np.random.default_rng(5).bytes(200_000)
    (src / "trace.bin").write_bytes(raw)
    (src / "folder" / "a.txt").write_bytes(b"alpha")
    (src / "folder" / "sub" / "b.dat").write_bytes(b"\x00\x01\x02" * 1000)
    arr = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7.0
    Rec.insert1(dict(rec_id=1, obj=str(src / "trace.bin"), folder=str(src / "folder"), arr=arr))

    rs_config = {"stores": stores}
    base = {"url": url, "schema": name, "config": rs_config}

    # 1. Rust reads Python's objects.
    got = tool({**base, "op": "read", "tables": ["rec"]})["rec"]
    types = {a["name"]: a["type"] for a in got["attributes"]}
    assert types == {"rec_id": "int32", "obj": "<object@files>", "folder": "<object@s3>",
                     "arr": "<npy@files>"}, types
    row = got["rows"][0]
    o = row["obj"]
    assert bytes.fromhex(o["hex"]) == raw and o["verified"], o["$objectref"]
    assert o["$objectref"]["ext"] == ".bin" and o["$objectref"]["size"] == len(raw)
    f = row["folder"]
    assert f["$objectref"]["is_dir"] and f["verified"], f["$objectref"]
    assert {k: bytes.fromhex(v) for k, v in f["files"].items()} == {
        "a.txt": b"alpha", "sub/b.dat": b"\x00\x01\x02" * 1000}, f["files"]
    a = row["arr"]["$npy"]
    assert a["dtype"] == "float64" and a["shape"] == [2, 3, 4], a
    assert np.array_equal(np.frombuffer(bytes.fromhex(a["hex"]), "<f8").reshape(2, 3, 4), arr)
    print(f"{backend}: Rust read Python's <object@> file and folder and <npy@> array")

    # 2. Rust inserts; Python reads.
    rs_src = work / f"rs_src_{backend}"
    (rs_src / "deep" / "er").mkdir(parents=True, exist_ok=True)
    (rs_src / "x.json").write_text('{"k": 1}')
    (rs_src / "deep" / "er" / "y.bin").write_bytes(bytes(range(256)) * 40)
    rs_arr = (np.arange(60, dtype=np.int32) - 30).reshape(5, 12)
    tool({**base, "op": "insert", "table": "rec", "rows": [
        {"rec_id": 2, "obj": {"$object": b"from rust".hex(), "ext": "txt"},
         "folder": str(rs_src),
         "arr": {"$npy": {"dtype": "int32", "shape": [5, 12], "hex": rs_arr.astype("<i4").tobytes().hex()}}},
    ]})
    r2 = (Rec & {"rec_id": 2}).fetch1()
    ref = r2["obj"]
    assert ref.read() == b"from rust" and ref.ext == ".txt" and ref.size == 9, ref
    ref.verify()
    folder = r2["folder"]
    assert folder.is_dir, folder
    folder.verify()
    dest = folder.download(work / f"py_dl_{backend}")
    # DataJoint puts a folder under the destination, by its own name.
    dest = Path(dest) / Path(str(folder.path)).name
    assert (dest / "x.json").read_text() == '{"k": 1}', sorted(dest.rglob("*"))
    assert (dest / "deep" / "er" / "y.bin").read_bytes() == bytes(range(256)) * 40
    loaded = r2["arr"].load()
    assert loaded.dtype == np.int32 and np.array_equal(loaded, rs_arr), loaded
    print(f"{backend}: Python read Rust's <object@> bytes and folder and <npy@> array")

    # 3. Rust's paths are DataJoint's.
    for field in ("obj", "arr"):
        p = str(r2[field].path)
        assert p.startswith(f"_schema/{name}/rec/rec_id=2/{field}_"), p
    schema.drop(prompt=False)


def main():
    run_with_stores(run, "path-addressed", "interop-paths")

if __name__ == "__main__":
    main()
