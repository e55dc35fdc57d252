"""dj_rs.gc/verify/migrate on SQLite and a file store (the README demo, written by dj-rs), each
compared with the `dj` binary's `--json` output and exit code on the same files."""

import datetime as dt
import os
import time

import pytest

import dj_rs
from _tools import demo_copy, hash_name, native_dj, run_dj


@pytest.fixture
def demo(tmp_path):
    return demo_copy(tmp_path)


def hash_objects(demo):
    return sorted(p for p in (demo / "store" / "_hash").rglob("*") if p.is_file())


def add_orphan(demo, age_seconds=0):
    """An object no row references, in the demo schema's hash folder."""
    content = b"no row points here " + os.urandom(8)
    folder = hash_objects(demo)[0].parent
    orphan = folder / hash_name(content)
    orphan.write_bytes(content)
    if age_seconds:
        t = time.time() - age_seconds
        os.utime(orphan, (t, t))
    return orphan


def same_as_cli(report, demo, *args):
    code, doc, _ = run_dj(native_dj(), "--config", demo / "datajoint.json", *args)
    assert dict(report) == doc
    assert report.exit_code == code
    return doc


def test_gc_dry_run_lists_the_orphan_and_deletes_nothing(demo):
    orphan = add_orphan(demo)
    config = demo / "datajoint.json"
    report = dj_rs.gc("main", grace="0s", config=config)
    assert isinstance(report, dj_rs.GcReport)
    assert report.ok and report.dry_run and report.grace_seconds == 0
    assert report.hash.orphaned == 1
    assert report.hash.orphaned_paths == [orphan.relative_to(demo / "store").as_posix()]
    assert report.hash.deleted == 0 and orphan.exists()
    same_as_cli(report, demo, "gc", "--store", "main", "--grace", "0s")


def test_gc_default_grace_keeps_a_young_orphan(demo):
    orphan = add_orphan(demo)
    report = dj_rs.gc("main", config=demo / "datajoint.json")
    assert report.grace_seconds == 24 * 3600
    assert report.hash.skipped_young == 1 and report.hash.orphaned == 0
    assert orphan.exists()
    same_as_cli(report, demo, "gc", "--store", "main")


@pytest.mark.parametrize("grace, extra", [("1h", {}), ("0s", {}), (dt.timedelta(minutes=90), {})])
def test_gc_delete_refuses_a_short_grace_like_the_cli(demo, grace, extra):
    orphan = add_orphan(demo)
    config = demo / "datajoint.json"
    with pytest.raises(dj_rs.ToolError) as e:
        dj_rs.gc("main", delete=True, grace=grace, config=config, **extra)
    assert e.value.exit_code == 2
    text = grace if isinstance(grace, str) else f"{int(grace.total_seconds())}s"
    code, doc, stderr = run_dj(native_dj(), "--config", config, "gc", "--store", "main",
                               "--delete", "--grace", text)
    assert code == 2 and doc == {"error": str(e.value), "exit_code": 2}
    assert f"error: {e.value}" in stderr
    assert orphan.exists()


def test_gc_delete_removes_an_old_orphan_only(demo):
    referenced = hash_objects(demo)
    orphan = add_orphan(demo, age_seconds=3 * 24 * 3600)
    young = add_orphan(demo)
    report = dj_rs.gc("main", delete=True, config=demo / "datajoint.json")
    assert report.ok and not report.dry_run
    assert report.hash.deleted == 1 and report.hash.skipped_young == 1
    assert report.hash.bytes_freed == len(b"no row points here ") + 8
    assert not orphan.exists() and young.exists()
    assert all(p.exists() for p in referenced)
    assert dj_rs.verify(config=demo / "datajoint.json").ok
    # The CLI now finds nothing old enough either.
    again = dj_rs.gc("main", config=demo / "datajoint.json")
    assert again.hash.orphaned == 0
    same_as_cli(again, demo, "gc", "--store", "main")


def test_gc_zero_grace_delete_needs_the_explicit_switch(demo):
    orphan = add_orphan(demo)
    report = dj_rs.gc("main", delete=True, grace=0, allow_zero_grace=True,
                      config=demo / "datajoint.json")
    assert report.hash.deleted == 1 and not orphan.exists()


def test_verify_clean_then_corrupt_like_the_cli(demo):
    config = demo / "datajoint.json"
    clean = dj_rs.verify(config=config)
    assert isinstance(clean, dj_rs.VerifyReport)
    assert clean.ok and clean.missing == 0 and clean.corrupt == 0 and clean.objects >= 1
    same_as_cli(clean, demo, "verify")
    victim = hash_objects(demo)[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    bad = dj_rs.verify("main", config=config)
    assert bad.exit_code == 5 and not bad.ok
    assert bad.corrupt == 1
    problems = [p for a in bad.attributes for p in a.problems]
    assert [p.status for p in problems] == ["corrupt"]
    assert problems[0].path == victim.relative_to(demo / "store").as_posix()
    same_as_cli(bad, demo, "verify", "--store", "main")
    victim.unlink()
    gone = dj_rs.verify(schemas=["demo"], config=config)
    assert gone.exit_code == 5 and gone.missing == 1
    same_as_cli(gone, demo, "verify", "--schema", "demo")


def test_migrate_dry_run_then_move_like_the_cli(demo):
    config = demo / "datajoint.json"
    dry = dj_rs.migrate("demo", "Recording", "raw_data", from_store="main", to_store="cold",
                        dry_run=True, config=config)
    assert isinstance(dry, dj_rs.MigrationReport)
    assert dry.dry_run and dry.rows_to_migrate >= 1 and dry.rows_migrated == 0
    assert not any((demo / "cold").rglob("*.*")) and not any(p.is_file() for p in (demo / "cold").rglob("*"))
    same_as_cli(dry, demo, "migrate", "demo", "Recording", "raw_data", "--from", "main",
                "--to", "cold", "--dry-run")
    done = dj_rs.migrate("demo", "recording", "raw_data", from_store="main", to_store="cold",
                         config=config)
    assert done.ok and done.rows_migrated == dry.rows_to_migrate
    assert done.objects_copied + done.objects_present == dry.objects
    assert any(p.is_file() for p in (demo / "cold").rglob("*"))
    assert dj_rs.verify("cold", config=config).ok
    # Nothing left to move: the CLI agrees.
    again = dj_rs.migrate("demo", "Recording", "raw_data", from_store="main", to_store="cold",
                          dry_run=True, config=config)
    assert again.rows_to_migrate == 0
    same_as_cli(again, demo, "migrate", "demo", "Recording", "raw_data", "--from", "main",
                "--to", "cold", "--dry-run")


def test_errors_are_the_cli_errors(demo, tmp_path):
    missing_config = tmp_path / "nope.json"
    with pytest.raises(dj_rs.ToolError) as e:
        dj_rs.verify(config=missing_config)
    assert e.value.exit_code == 1 and "nope.json" in str(e.value)
    code, doc, _ = run_dj(native_dj(), "--config", missing_config, "verify")
    assert (code, doc) == (1, {"error": str(e.value), "exit_code": 1})
    with pytest.raises(dj_rs.ToolError) as e:
        dj_rs.gc("no-such-store", config=demo / "datajoint.json")
    code, doc, _ = run_dj(native_dj(), "--config", demo / "datajoint.json", "gc", "--store",
                          "no-such-store")
    assert "no-such-store" in str(e.value)
    assert (code, doc) == (e.value.exit_code, {"error": str(e.value), "exit_code": code})
    with pytest.raises(dj_rs.ToolError) as e:
        dj_rs.migrate("demo", "Recording", "no_such_attr", from_store="main", to_store="cold",
                      config=demo / "datajoint.json")
    assert "no_such_attr" in str(e.value)
    with pytest.raises(ValueError):
        dj_rs.gc("main", grace=1.5, config=demo / "datajoint.json")


def test_config_found_from_the_working_directory_and_dj_env(demo, monkeypatch):
    """Without config=: datajoint.json is searched from the working directory, as dj does; a
    DJ_* variable overrides it for both."""
    add_orphan(demo)
    sub = demo / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    report = dj_rs.gc("main", grace="0s")
    assert report.hash.orphaned == 1
    code, doc, _ = run_dj(native_dj(), "gc", "--store", "main", "--grace", "0s", cwd=sub)
    assert (code, doc) == (report.exit_code, dict(report))
    # DataJoint's switch to ignore the file: no store `main` then, for both.
    monkeypatch.setenv("DJ_IGNORE_CONFIG_FILE", "true")
    with pytest.raises(dj_rs.ToolError) as e:
        dj_rs.gc("main", grace="0s")
    code, doc, _ = run_dj(native_dj(), "gc", "--store", "main", "--grace", "0s", cwd=sub,
                          env=dict(os.environ))
    assert (code, doc["error"]) == (e.value.exit_code, str(e.value))
