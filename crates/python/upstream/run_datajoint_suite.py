"""Run DataJoint 2.3.5's own tests for blobs, stored blobs and attachments with dj_rs.install()
active, against the local MariaDB/PostgreSQL servers and the loopback S3 server.

DataJoint's tests are not part of this repository: they are taken from DataJoint's source
distribution on PyPI (``pip download``), unpacked into ``.cache/datajoint-2.3.5/``, and run there
with pytest. ``DJ_RS_BLOB=1`` installs dj_rs at interpreter start-up; the plugin
``dj_rs_upstream_plugin`` checks that it is active and counts the blobs that go through it.

Usage: ``python run_datajoint_suite.py`` with DJ_TEST_MYSQL_URL, DJ_TEST_POSTGRES_URL and
DJ_TEST_S3_* set (``cargo xtask test`` runs it). Extra arguments go to pytest.
"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlparse

VERSION = "2.3.5"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CACHE = ROOT / ".cache"
CI = os.environ.get("CI") == "true"

#: DataJoint's test files that store or read <blob>, <blob@> or <attach>/<attach@> values (every
#: table of its schema.py holds blobs), and can run against the local servers.
FILES = [
    "tests/integration/test_blob.py",
    "tests/integration/test_blob_matlab.py",
    "tests/integration/test_attach.py",
    "tests/integration/test_hash_storage.py",
    "tests/integration/test_codec_chaining.py",
    "tests/integration/test_codecs.py",
    "tests/integration/test_object.py",
    "tests/integration/test_npy_codec.py",
    "tests/integration/test_fetch.py",
    "tests/integration/test_fetch_same.py",
    "tests/integration/test_insert.py",
    "tests/integration/test_nan.py",
    "tests/integration/test_update1.py",
    "tests/integration/test_gc.py",
    "tests/integration/test_autopopulate.py",
    "tests/integration/test_multi_backend.py",
    "tests/unit/test_codecs.py",
]

#: What DataJoint's tests import beyond the project venv, installed into .cache (not the venv).
TEST_DEPS = ["faker==40.63.0"]

#: Tests left out, each with the reason. Each also fails the same way without dj_rs.
DESELECT = {}


def unpacked() -> Path:
    """DataJoint's source tree (its tests), downloaded and unpacked once."""
    dest = CACHE / f"datajoint-{VERSION}"
    if (dest / "tests" / "conftest.py").is_file():
        return dest
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    sdist = downloads / f"datajoint-{VERSION}.tar.gz"
    if not sdist.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--no-binary=:all:", f"datajoint=={VERSION}", "-d", str(downloads)],
            check=True,
        )
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.startswith(f"datajoint-{VERSION}/tests/") and (m.isfile() or m.isdir())]
        tar.extractall(CACHE, members=members, filter="data")
    return dest


def test_deps() -> Path:
    """A directory holding :data:`TEST_DEPS`, for PYTHONPATH."""
    dest = CACHE / "datajoint-test-deps"
    stamp = dest / ".requirements"
    if not (stamp.is_file() and stamp.read_text() == "\n".join(TEST_DEPS)):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--upgrade", "--target", str(dest), *TEST_DEPS],
            check=True,
        )
        stamp.write_text("\n".join(TEST_DEPS))
    return dest


def environment() -> dict:
    env = dict(os.environ)
    mysql, pg, s3 = (env.get(k) for k in ("DJ_TEST_MYSQL_URL", "DJ_TEST_POSTGRES_URL",
                                          "DJ_TEST_S3_ENDPOINT"))
    if not (mysql and pg and s3):
        message = "DJ_TEST_MYSQL_URL, DJ_TEST_POSTGRES_URL and DJ_TEST_S3_ENDPOINT must be set"
        if CI:
            sys.exit(message + " with CI=true")
        print(f"SKIP: {message}")
        sys.exit(0)
    m, p, s = urlparse(mysql), urlparse(pg), urlparse(s3)
    env.update(
        DJ_USE_EXTERNAL_CONTAINERS="1",
        DJ_HOST=m.hostname, DJ_PORT=str(m.port or 3306),
        DJ_USER=m.username or "root", DJ_PASS=m.password or "",
        DJ_PG_HOST=p.hostname, DJ_PG_PORT=str(p.port or 5432),
        DJ_PG_USER=p.username or "postgres", DJ_PG_PASS=p.password or "",
        S3_ENDPOINT=f"{s.hostname}:{s.port}",
        S3_ACCESS_KEY=env["DJ_TEST_S3_ACCESS_KEY"], S3_SECRET_KEY=env["DJ_TEST_S3_SECRET_KEY"],
        S3_BUCKET=env["DJ_TEST_S3_BUCKET"],
        # DataJoint's default prefix: test_insert_longblob_32bit names `djtest_test1` in its SQL.
        DJ_TEST_DB_PREFIX="djtest",
        DJ_RS_BLOB="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), str(test_deps()),
                                                  env.get("PYTHONPATH")])),
    )
    return env


def main() -> int:
    tree = unpacked()
    env = environment()
    extra = sys.argv[1:]
    # `--baseline`: the same tests on DataJoint's own blob functions, for comparison.
    baseline = "--baseline" in extra
    extra = [a for a in extra if a != "--baseline"]
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs", "-o",
            "addopts="]
    # The plugin checks dj_rs is installed (not with --baseline) and patches pymysql for MariaDB.
    args += ["-p", "dj_rs_upstream_plugin"]
    if baseline:
        env.pop("DJ_RS_BLOB")
        env["DJ_RS_UPSTREAM_BASELINE"] = "1"
    args += FILES
    for test in DESELECT:
        args += ["--deselect", test]
    args += extra
    which = "DataJoint's own blob functions" if baseline else "dj_rs installed"
    print(f"running DataJoint's tests with {which}:", " ".join(FILES), flush=True)
    return subprocess.run(args, cwd=tree, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
