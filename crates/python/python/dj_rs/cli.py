"""The ``dj`` console script: dj-rs's ``dj`` command, run inside this Python package.

The command line is parsed and run by the same Rust code as the ``dj`` binary built from
``crates/cli`` (same options, output and exit codes); see ``dj --help``.
"""

from __future__ import annotations

import signal
import sys

from . import _native


def main(argv: list[str] | None = None) -> int:
    """Run ``dj`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    # The Rust code writes to the process's own stdout/stderr: flush Python's first.
    sys.stdout.flush()
    sys.stderr.flush()
    if argv is None and hasattr(signal, "SIGINT"):
        # As the native binary: Ctrl-C stops the command at once (the Rust code holds no GIL to
        # notice a KeyboardInterrupt until it returns).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return int(_native.cli_main(["dj", *args]))


def run() -> None:  # the console script's entry point
    sys.exit(main())


if __name__ == "__main__":  # python -m dj_rs.cli
    run()
