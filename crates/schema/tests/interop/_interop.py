"""Shared by the interop scripts (and the bench scripts): DataJoint Python connected to the test
servers, and the Rust peer `table_tool`. Not a test itself (`cargo xtask test` runs `test_*.py`)."""
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import datajoint as dj

ROOT = Path(__file__).resolve().parents[4]
CI = os.environ.get("CI") == "true"


def tool(request):
    """Run one `table_tool` request (JSON in, JSON out) with the release build."""
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "--manifest-path", str(ROOT / "Cargo.toml"),
         "-p", "dj-schema", "--example", "table_tool"],
        input=json.dumps(request), capture_output=True, text=True,
    )
    if out.returncode != 0:
        raise AssertionError(f"table_tool {request.get('op')} failed: {out.stderr}")
    return json.loads(out.stdout)


def patch_pymysql_json():
    """Send dicts as JSON text: DataJoint 2.3.5 hands pymysql a store column's metadata as a
    `dict`, which pymysql refuses to escape (MariaDB only; test_objects.py says why)."""
    import pymysql.converters as conv

    def escape_json(value, mapping=None):
        return conv.escape_str(json.dumps(value), mapping)

    conv.conversions[dict] = escape_json
    conv.encoders[dict] = escape_json


def configure(url, stores=None, patch_json=False):
    """Point DataJoint at the server of `url` (and at `stores`); return (backend, connection)."""
    u = urlparse(url)
    backend = "postgresql" if u.scheme.startswith("postgres") else "mysql"
    dj.config["database.backend"] = backend
    dj.config["database.host"] = u.hostname
    dj.config["database.port"] = u.port or (5432 if backend == "postgresql" else 3306)
    dj.config["database.user"] = u.username or ("postgres" if backend == "postgresql" else "root")
    dj.config["database.password"] = u.password or ""
    if backend == "postgresql":
        dj.config["database.name"] = (u.path or "/").lstrip("/") or "postgres"
    dj.config["safemode"] = False
    if stores is not None:
        dj.config["stores"] = stores
    if patch_json and backend == "mysql":
        patch_pymysql_json()
    return backend, dj.conn(reset=True)


def run_with_stores(run, label, prefix):
    """Call `run(url, stores, work)` for PostgreSQL and MariaDB, with a `files` store in a temporary
    directory and an `s3` store on the loopback S3 server under `prefix`; skip (or fail, under CI)
    when the servers are not configured."""
    import sys
    import tempfile

    endpoint = os.environ.get("DJ_TEST_S3_ENDPOINT")
    urls = [os.environ.get("DJ_TEST_POSTGRES_URL"), os.environ.get("DJ_TEST_MYSQL_URL")]
    if not endpoint or not all(urls):
        if CI:
            sys.exit("the database URLs and DJ_TEST_S3_* must be set with CI=true")
        print("SKIP: databases or S3 not configured")
        return
    host = urlparse(endpoint)
    with tempfile.TemporaryDirectory() as work:
        files = Path(work) / "files"
        files.mkdir()
        stores = {
            "files": {"protocol": "file", "location": str(files)},
            "s3": {"protocol": "s3", "endpoint": f"{host.hostname}:{host.port}", "secure": False,
                   "bucket": os.environ["DJ_TEST_S3_BUCKET"],
                   "access_key": os.environ["DJ_TEST_S3_ACCESS_KEY"],
                   "secret_key": os.environ["DJ_TEST_S3_SECRET_KEY"],
                   "location": f"{prefix}-{os.getpid()}"},
        }
        for url in urls:
            run(url, stores, work)
    print(f"{label} interop passed on 2 backends")
