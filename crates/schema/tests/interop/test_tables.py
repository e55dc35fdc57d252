"""Tables shared between DataJoint Python 2.3.5 and dj-rs (run by `cargo xtask test`).

On PostgreSQL and on MariaDB:

1. Python declares a schema (Lookup, Manual, a master with a Part holding `<blob>` data, and on
   MariaDB a uuid table) and fills it. Rust opens every table by name, with no definition, and
   reads it: tiers, headings and every value must equal what Python fetches.
2. Rust inserts rows (blobs packed by Python) into Python's tables; Python fetches them and
   compares. Rust restricts by another table, and deletes with a cascade that Python then sees.
3. Rust declares a schema of its own; Python opens it with `VirtualModule`, recognises the tiers
   and the part, joins tables (which needs Rust's `~lineage` rows), inserts rows that Rust reads
   back, and its `describe()` names the codecs and types Rust declared.

Each run uses fresh schema names and drops them at the end.
"""
import datetime
import decimal
import os
import sys
import uuid
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from datajoint import blob  # noqa: E402
from _interop import CI, configure, tool  # noqa: E402

def as_json(v):
    """A Python-fetched value in the tool's JSON convention."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (int, float, dict, list)):
        return v
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    raise TypeError(f"no JSON form for {type(v)}")


def same_blob(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_blob(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_blob(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def check_rows(label, py_rows, rs_rows, blob_attrs=()):
    assert len(py_rows) == len(rs_rows), f"{label}: {len(py_rows)} rows in Python, {len(rs_rows)} in Rust"
    for p, r in zip(py_rows, rs_rows):
        assert list(p) == list(r), f"{label}: attributes {list(p)} vs {list(r)}"
        for k, v in p.items():
            if k in blob_attrs:
                got = blob.unpack(bytes.fromhex(r[k]["$blob"]))
                assert same_blob(v, got), f"{label}.{k}: {v!r} vs {got!r}"
                # compat-mode bytes equal DataJoint's own packing of the same value
                assert bytes.fromhex(r[k]["$blob"]) == blob.pack(v), f"{label}.{k}: blob bytes differ"
            elif isinstance(v, float) or isinstance(r[k], float):
                assert v is not None and r[k] is not None and abs(float(v) - float(r[k])) <= 1e-12 * max(1, abs(float(v))), \
                    f"{label}.{k}: {v!r} vs {r[k]!r}"
            else:
                assert as_json(v) == r[k], f"{label}.{k}: Python {as_json(v)!r}, Rust {r[k]!r}"


def python_declared(url, backend, conn, name):
    schema = dj.Schema(name, connection=conn)
    mysql = backend == "mysql"

    @schema
    class Rig(dj.Lookup):
        definition = """
        rig : varchar(16)
        ---
        room : varchar(32)
        """
        contents = [("A", "101"), ("B", "102")]

    @schema
    class Subject(dj.Manual):
        definition = """
        # experimental subjects
        subject_id : int32
        ---
        name : varchar(64)
        sex : enum('F', 'M', 'U')
        weight = null : float64
        alive = 1 : bool
        score : decimal(6,2)
        dob : date
        seen : datetime(3)
        meta = null : json
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session_idx : int16
        ---
        -> Rig
        note = '' : varchar(255)
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int32
            ---
            data : <blob>
            """

    Subject.insert([
        dict(subject_id=1, name="Ann", sex="F", weight=20.25, alive=True, score=decimal.Decimal("12.50"),
             dob=datetime.date(2020, 1, 2), seen=datetime.datetime(2024, 5, 6, 7, 8, 9, 123000),
             meta={"k": [1, 2, {"x": "y"}]}),
        dict(subject_id=2, name="O'Brien \"q\" \\ %", sex="M", weight=None, alive=False,
             score=decimal.Decimal("-3.25"), dob=datetime.date(2019, 12, 31),
             seen=datetime.datetime(2024, 1, 1, 0, 0, 0), meta=None),
    ])
    Session.insert([dict(subject_id=1, session_idx=1, rig="A", note="first"),
                    dict(subject_id=1, session_idx=2, rig="B", note=""),
                    dict(subject_id=2, session_idx=1, rig="A", note="")])
    rng = np.random.default_rng(7)
    Session.Trial.insert([
        dict(subject_id=1, session_idx=1, trial=0, data=rng.standard_normal((3, 4))),
        dict(subject_id=1, session_idx=1, trial=1, data={"channels": 32, "rate": 30000.0}),
        dict(subject_id=1, session_idx=2, trial=0, data=np.arange(2000, dtype=np.int16)),
        dict(subject_id=2, session_idx=1, trial=0, data=["a", 1, (2.5, None)]),
    ])
    tables = [Rig, Subject, Session, Session.Trial]
    if mysql:
        @schema
        class Device(dj.Manual):
            definition = """
            device : uuid
            ---
            label : varchar(32)
            """
        Device.insert1(dict(device=uuid.UUID(int=0xABCDEF), label="probe"))
        tables.append(Device)

    # 1. Rust opens and reads every table.
    names = [t.table_name for t in tables]
    got = tool({"url": url, "schema": name, "op": "read", "tables": names})
    expect_tier = {"#rig": "lookup", "subject": "manual", "session": "manual",
                   "session__trial": "part", "device": "manual"}
    for t in tables:
        r = got[t.table_name]
        assert r["tier"] == expect_tier[t.table_name], f"{t.table_name}: tier {r['tier']}"
        assert r["primary_key"] == list(t.primary_key), f"{t.table_name}: key {r['primary_key']}"
        assert [a["name"] for a in r["attributes"]] == list(t.heading.names), t.table_name
        py_rows = t.to_dicts(order_by=list(t.primary_key))
        check_rows(f"{backend} read {t.table_name}", py_rows, r["rows"],
                   blob_attrs=("data",) if t is Session.Trial else ())
    types = {a["name"]: a["type"] for a in got["subject"]["attributes"]}
    assert types["score"] == "decimal(6,2)" and types["meta"] == "json" and types["seen"] == "datetime(3)", types
    assert {a["name"]: a["type"] for a in got["session__trial"]["attributes"]}["data"] == "<blob>"
    print(f"{backend}: Rust opened and read {len(tables)} Python tables")

    # 2. Rust inserts rows that Python fetches.
    new_blob = {"x": np.linspace(0, 1, 1500), "tag": "rust"}
    tool({"url": url, "schema": name, "op": "insert", "table": "subject", "rows": [
        {"subject_id": 3, "name": "Cy", "sex": "U", "weight": 31.5, "alive": True, "score": "7.125",
         "dob": "2021-03-04", "seen": "2024-02-03 04:05:06.789", "meta": {"from": "rust", "n": [1, 2.5]}},
    ]})
    tool({"url": url, "schema": name, "op": "insert", "table": "session", "rows": [
        {"subject_id": 3, "session_idx": 1, "rig": "B", "note": "rust"}]})
    tool({"url": url, "schema": name, "op": "insert", "table": "session__trial", "rows": [
        {"subject_id": 3, "session_idx": 1, "trial": 0, "data": {"$blob": blob.pack(new_blob).hex()}}]})
    cy = (Subject & {"subject_id": 3}).fetch1()
    assert cy["name"] == "Cy" and cy["sex"] == "U" and cy["weight"] == 31.5 and bool(cy["alive"]), cy
    assert cy["score"] == decimal.Decimal("7.13"), cy["score"]  # rounded to the column's scale
    assert cy["dob"] == datetime.date(2021, 3, 4), cy["dob"]
    assert cy["seen"] == datetime.datetime(2024, 2, 3, 4, 5, 6, 789000), cy["seen"]
    assert cy["meta"] == {"from": "rust", "n": [1, 2.5]}, cy["meta"]
    data = (Session.Trial & {"subject_id": 3}).fetch1("data")
    assert same_blob(data, new_blob), data
    assert len(Session & {"subject_id": 3}) == 1 and len(Subject * Session) == 4
    if mysql:
        tool({"url": url, "schema": name, "op": "insert", "table": "device", "rows": [
            {"device": "12345678-1234-5678-1234-567812345678", "label": "from rust"}]})
        assert (Device & {"device": uuid.UUID("12345678-1234-5678-1234-567812345678")}).fetch1("label") == "from rust"

    # Restriction by another table, and a cascading delete from Rust that Python sees.
    assert tool({"url": url, "schema": name, "op": "count", "table": "subject", "semijoin": "session"})["count"] \
        == len(Subject & Session) == 3
    dj.Table.delete(Subject & {"subject_id": 2}, prompt=False)  # make Python delete one side too
    n = tool({"url": url, "schema": name, "op": "delete", "table": "subject", "key": {"subject_id": 1}})["deleted"]
    assert n == 1, f"delete reported {n} subject rows"  # rows of the table itself, as DataJoint
    assert len(Subject()) == 1 and len(Session()) == 1 and len(Session.Trial()) == 1
    print(f"{backend}: Python fetched Rust's rows, restriction and cascade agree")
    schema.drop(prompt=False)


RUST_TABLES = [
    {"class": "Species", "tier": "lookup", "definition": "species : varchar(32)\n---\nlatin = '' : varchar(64)",
     "contents": [{"species": "mouse", "latin": "Mus musculus"}, {"species": "rat", "latin": "Rattus"}]},
    {"class": "Animal", "tier": "manual", "definition":
        "# animals\nanimal_id : int32\n---\n-> Species\nborn = null : date\nweight : float32\ninfo = null : json"},
    {"class": "Note", "tier": "part", "master": "animal", "definition":
        "-> master\nnote_idx : int16\n---\ntext : varchar(200)\nsketch = null : <blob>"},
    {"class": "AnimalStat", "tier": "computed", "definition": "-> Animal\n---\nmean : float64"},
]


def rust_declared(url, backend, conn, name):
    got = tool({"url": url, "schema": name, "op": "declare", "tables": RUST_TABLES})
    assert got["declared"] == ["#species", "animal", "animal__note", "__animal_stat"], got
    tool({"url": url, "schema": name, "op": "insert", "table": "animal", "rows": [
        {"animal_id": 1, "species": "mouse", "born": "2023-01-02", "weight": 21.5, "info": {"cage": 4}},
        {"animal_id": 2, "species": "rat", "weight": 300.25}]})
    tool({"url": url, "schema": name, "op": "insert", "table": "animal__note", "rows": [
        {"animal_id": 1, "note_idx": 0, "text": "healthy", "sketch": {"$blob": blob.pack(np.eye(3)).hex()}}]})

    vm = dj.VirtualModule("vm_" + name, name, connection=conn)
    assert issubclass(vm.Species, dj.Lookup) and issubclass(vm.Animal, dj.Manual), "tiers"
    assert issubclass(vm.AnimalStat, dj.Computed), "computed tier"
    assert hasattr(vm.Animal, "Note") and issubclass(vm.Animal.Note, dj.Part), "part table"
    assert sorted(vm.Species.fetch("species")) == ["mouse", "rat"]
    rows = (vm.Animal * vm.Species).to_dicts(order_by="animal_id")  # a join: needs ~lineage
    assert [(r["animal_id"], r["latin"]) for r in rows] == [(1, "Mus musculus"), (2, "Rattus")], rows
    assert rows[0]["born"] == datetime.date(2023, 1, 2) and rows[0]["info"] == {"cage": 4}, rows[0]
    assert abs(rows[1]["weight"] - 300.25) < 1e-4 and rows[1]["born"] is None, rows[1]
    note = (vm.Animal.Note & {"animal_id": 1}).fetch1()
    assert np.array_equal(note["sketch"], np.eye(3)) and note["text"] == "healthy", note
    assert len(vm.Animal & vm.Animal.Note) == 1  # semijoin across Rust tables
    desc = vm.Animal.Note().describe()
    assert "<blob>" in desc and "int16" in desc, desc
    q = '"' if backend == "postgresql" else "`"
    lineage = conn.query(f"SELECT lineage FROM {q}{name}{q}.{q}~lineage{q} "
                         "WHERE table_name='animal__note' AND attribute_name='animal_id'").fetchall()
    assert lineage and lineage[0][0] == f"{name}.animal.animal_id", lineage

    # Python writes into Rust's tables; Rust reads it back.
    vm.Animal.insert1(dict(animal_id=3, species="mouse", weight=19.0))
    vm.Animal.Note.insert1(dict(animal_id=3, note_idx=0, text="from python", sketch=[1, "two"]))
    vm.AnimalStat.insert1(dict(animal_id=3, mean=1.5), allow_direct_insert=True)
    got = tool({"url": url, "schema": name, "op": "read", "tables": ["animal", "animal__note", "__animal_stat"]})
    assert [r["animal_id"] for r in got["animal"]["rows"]] == [1, 2, 3]
    assert got["animal"]["rows"][2]["info"] is None
    notes = got["animal__note"]["rows"]
    assert blob.unpack(bytes.fromhex(notes[1]["sketch"]["$blob"])) == [1, "two"], notes[1]
    assert got["__animal_stat"]["rows"] == [{"animal_id": 3, "mean": 1.5}]
    assert got["__animal_stat"]["tier"] == "computed"
    print(f"{backend}: Python opened, joined and filled Rust's tables; Rust read them back")
    dj.Schema(name, connection=conn, create_schema=False).drop(prompt=False)


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
        pid = os.getpid()
        python_declared(url, backend, conn, f"djx_py_{pid}")
        rust_declared(url, backend, conn, f"djx_rs_{pid}")
        ran += 1
    print(f"table interop passed on {ran} backend(s)")


if __name__ == "__main__":
    main()
