"""The `dj` console script the wheel installs: the same command as the `dj` binary."""

import subprocess

import dj_rs.cli
from _tools import CONSOLE_DJ, demo_copy, native_dj, run_dj


def run(exe, *args, cwd=None):
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_console_script_is_installed_and_shows_help():
    assert CONSOLE_DJ.is_file(), f"the wheel installed no {CONSOLE_DJ}"
    ours = run(CONSOLE_DJ, "--help")
    assert ours.returncode == 0 and ours.stderr == ""
    assert "Exit codes:" in ours.stdout and "gc" in ours.stdout
    theirs = run(native_dj(), "--help")
    assert ours.stdout == theirs.stdout


def test_console_script_version_and_usage_errors_like_the_binary():
    for args in (["--version"], ["gc"], ["no-such-command"], ["gc", "--store", "x", "--grace", "soon"]):
        ours, theirs = run(CONSOLE_DJ, *args), run(native_dj(), *args)
        assert (ours.returncode, ours.stdout, ours.stderr) == (
            theirs.returncode, theirs.stdout, theirs.stderr), args
    assert run(CONSOLE_DJ, "gc").returncode == 2


def test_console_script_gc_dry_run_and_refusal(tmp_path):
    demo = demo_copy(tmp_path)
    config = demo / "datajoint.json"
    for args in (
        ["gc", "--dry-run", "--store", "main", "--grace", "0s"],
        ["gc", "--store", "main", "--delete", "--grace", "1h"],
        ["verify", "-v"],
        ["codecs"],
    ):
        ours = run(CONSOLE_DJ, "--config", config, *args, cwd=demo)
        theirs = run(native_dj(), "--config", config, *args, cwd=demo)
        assert (ours.returncode, ours.stdout, ours.stderr) == (
            theirs.returncode, theirs.stdout, theirs.stderr), args
    text = run(CONSOLE_DJ, "--config", config, "gc", "--dry-run", "--store", "main", cwd=demo)
    assert text.returncode == 0 and "dry run" in text.stdout
    assert run(CONSOLE_DJ, "--config", config, "gc", "--store", "main", "--delete", "--grace",
               "1h").returncode == 2
    code, doc, _ = run_dj(CONSOLE_DJ, "--config", config, "gc", "--store", "main")
    assert code == 0 and doc["dry_run"] is True


def test_main_takes_arguments():
    assert dj_rs.cli.main(["codecs"]) == 0
    assert dj_rs.cli.main(["gc"]) == 2
