"""``gc``, ``verify`` and ``migrate``: the ``dj`` command's storage tools, from Python.

Each function builds a ``dj`` command line and runs it with the command's own Rust code (in the
extension module, with the GIL released), so the configuration it reads (``datajoint.json`` found
from the working directory upward, or ``config=``; ``DJ_*`` environment overrides; ``.secrets/``),
the safety rules and the report are exactly those of ``dj gc|verify|migrate --json``. A report
is a :class:`Report`: the command's JSON document as a ``dict`` (equal to ``json.loads`` of the
command's output), whose keys can also be read as attributes, plus the command's ``exit_code``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any, Iterable, Mapping

from . import _native

__all__ = ["GcReport", "MigrationReport", "Report", "ToolError", "VerifyReport", "gc", "migrate", "verify"]

_lazy: dict = {}


def _tool_error() -> type:
    """``ToolError``, made on first use so that importing this module does not import DataJoint."""
    if "ToolError" not in _lazy:
        from . import _datajoint_error

        class ToolError(_datajoint_error(), RuntimeError):
            """A storage tool that stopped with an error, as ``dj`` would have: bad
            configuration, a database or store failure, a refused option combination, a lock
            held by another collection.

            ``exit_code`` is the exit code ``dj`` gives for it (1 error, 2 refused or bad
            arguments, 4 another garbage collection holds the store's lock). A
            ``DataJointError`` when DataJoint is installed, and a ``RuntimeError``.
            """

            __module__ = "dj_rs"
            __qualname__ = "ToolError"

            def __init__(self, message: str, exit_code: int) -> None:
                super().__init__(message)
                self.exit_code = exit_code

        _lazy["ToolError"] = ToolError
    return _lazy["ToolError"]


def __getattr__(name: str):
    if name == "ToolError":
        return _tool_error()
    raise AttributeError(f"module 'dj_rs.tools' has no attribute {name!r}")


def _wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, Report):
        return Report(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class Report(dict):
    """A ``dj … --json`` document: a ``dict`` whose keys are also attributes (nested documents
    too). ``exit_code`` is the exit code ``dj`` gives for this outcome (0 when ``ok``)."""

    exit_code: int = 0

    def __init__(self, data: Mapping[str, Any] = (), exit_code: int = 0) -> None:
        super().__init__({k: _wrap(v) for k, v in dict(data).items()})
        self.exit_code = exit_code

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def ok(self) -> bool:
        """Whether ``dj`` would exit with 0 for this outcome."""
        return self.exit_code == 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)}, exit_code={self.exit_code})"


class GcReport(Report):
    """``dj gc --json``: ``store``, ``dry_run``, ``grace_seconds``, ``schemas``, the sections
    ``hash`` and ``schema`` (``referenced``, ``stored``, ``orphaned``, ``skipped_young``,
    ``deleted``, each with ``*_bytes``/``bytes_freed``, and ``orphaned_paths``), ``other_keys``,
    ``rescued``, ``incomplete`` (leftovers of interrupted writes), ``refused``, ``scan_errors``
    and ``errors``. ``exit_code`` 3: scan errors, nothing was (or would be) deleted; 1: some
    deletions failed."""


class VerifyReport(Report):
    """``dj verify --json``: ``store``, ``schemas``, ``attributes`` (per table and attribute:
    ``ok``, ``missing``, ``corrupt``, ``errors`` and ``problems`` with ``key``, ``store``,
    ``path``, ``status``, ``reason``), the totals ``ok``, ``missing``, ``corrupt``, ``errors``,
    ``objects``, ``bytes_read``, and ``scan_errors``. ``exit_code`` 5: objects are missing or
    corrupt; 1: some could not be checked."""


class MigrationReport(Report):
    """``dj migrate --json``: ``table``, ``attribute``, ``from``, ``to``, ``dry_run``, ``rows``,
    ``rows_to_migrate``, ``rows_migrated``, ``rows_changed``, ``objects``, ``objects_copied``,
    ``objects_present`` and ``bytes_copied``."""


def _duration(value: str | int | float | _dt.timedelta) -> str:
    if isinstance(value, str):
        return value
    seconds = value.total_seconds() if isinstance(value, _dt.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"grace: expected a duration string, seconds or a timedelta, not {value!r}")
    if seconds < 0 or seconds != int(seconds):
        raise ValueError(f"grace: {value!r} is not a whole, non-negative number of seconds")
    return f"{int(seconds)}s"


def _common(config: str | os.PathLike | None) -> list[str]:
    argv = ["dj", "--json"]
    if config is not None:
        argv.append(f"--config={os.fspath(config)}")
    return argv


def _names(option: str, values: str | Iterable[str] | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [f"--{option}={v}" for v in values]


def _run(argv: list[str], cls: type[Report]) -> Report:
    try:
        code, text = _native.run_json(argv)
    except _native.NativeToolError as e:
        raise _tool_error()(*e.args) from None
    return cls(json.loads(text), exit_code=code)


def gc(
    store: str,
    *,
    schemas: str | Iterable[str] | None = None,
    delete: bool = False,
    grace: str | int | float | _dt.timedelta = "24h",
    allow_zero_grace: bool = False,
    config: str | os.PathLike | None = None,
) -> GcReport:
    """Collect garbage in ``store``, as ``dj gc --store STORE``.

    A dry run unless ``delete=True``: the report lists the orphans (objects no row references)
    and deletes nothing. Objects younger than ``grace`` ("24h", "30m", "1h30m", seconds, or a
    ``timedelta``) are never deleted; with ``delete=True`` the grace must be at least 2h, or 0
    with ``allow_zero_grace=True`` (only while nothing writes to the store), else
    :class:`ToolError <dj_rs.ToolError>` (exit code 2) before anything is opened. ``schemas`` limits the scan (default:
    every schema that uses stores). A scan error makes the collection delete nothing
    (``report.refused``, ``exit_code`` 3). Raises :class:`ToolError <dj_rs.ToolError>` (exit code 4) when another
    collection of the store holds its lock.
    """
    argv = _common(config) + ["gc", f"--store={store}", f"--grace={_duration(grace)}"]
    argv += _names("schema", schemas)
    if delete:
        argv.append("--delete")
    if allow_zero_grace:
        argv.append("--allow-zero-grace")
    return _run(argv, GcReport)  # type: ignore[return-value]


def verify(
    store: str | None = None,
    *,
    schemas: str | Iterable[str] | None = None,
    config: str | os.PathLike | None = None,
) -> VerifyReport:
    """Check that every object the rows reference exists and is intact, as ``dj verify``.

    ``store`` limits the check to one store, ``schemas`` to those schemas. Missing or corrupt
    objects are listed in the report (``exit_code`` 5), not raised.
    """
    argv = _common(config) + ["verify"]
    if store is not None:
        argv.append(f"--store={store}")
    argv += _names("schema", schemas)
    return _run(argv, VerifyReport)  # type: ignore[return-value]


def _key_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat(sep=" ") if isinstance(value, _dt.datetime) else value.isoformat()
    return str(value)


def migrate(
    schema: str,
    table: str,
    attribute: str,
    *,
    from_store: str,
    to_store: str,
    key: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    config: str | os.PathLike | None = None,
) -> MigrationReport:
    """Move ``attribute``'s objects of ``schema.table`` (SQL or class name) from ``from_store``
    to ``to_store``, then rewrite the rows, as ``dj migrate``. ``key`` restricts the rows
    (``{"attr": value}``, as ``--key attr=value``); ``dry_run=True`` reports what would move and
    changes nothing. Rows changed while their objects were copied are left as they are
    (``rows_changed``): run it again.
    """
    argv = _common(config) + [
        "migrate",
        f"--from={from_store}",
        f"--to={to_store}",
    ]
    for name, value in (key or {}).items():
        argv.append(f"--key={name}={_key_text(value)}")
    if dry_run:
        argv.append("--dry-run")
    # After `--`: a name starting with `-` is still a name.
    argv += ["--", schema, table, attribute]
    return _run(argv, MigrationReport)  # type: ignore[return-value]
