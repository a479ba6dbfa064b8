"""``python -m asyncbatch`` and the ``asyncbatch`` command: signal handling first,
then the command line.

The handler for SIGINT, SIGTERM and SIGHUP is installed before anything heavy is imported,
so that no moment of a run is left to Python's defaults (a ``KeyboardInterrupt``
traceback, a SIGTERM that kills before the report is written); see
:mod:`asyncbatch.interrupts`.
"""

from __future__ import annotations

import sys

from asyncbatch.interrupts import Interrupted, Interruptions


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:  # the one answer that needs no command line parser
        from asyncbatch._version import __version__

        print(f"asyncbatch {__version__}")  # noqa: T201 - the command's output
        return
    with Interruptions() as interruptions:
        try:
            with interruptions.raising():
                from asyncbatch.cli import app
        except Interrupted:
            raise SystemExit(interruptions.exit_code) from None
        try:
            app(prog_name="asyncbatch", obj=interruptions)  # the commands' signal handling
        except SystemExit as exc:
            code = exc.code
        # From here on the exit code is decided: a signal that came before this
        # line is in it; one that comes after is ignored, rather than killing the
        # process between the summary and its exit code.
        interruptions.settled()
        raise SystemExit(interruptions.exit_code or code)


# Guarded: anyio's worker processes (search_pattern) re-run the parent's main module
# as ``__mp_main__``, as multiprocessing does; unguarded, each would run the CLI.
if __name__ == "__main__":
    main()
