"""``python -m asyncbatch``: the same as the ``asyncbatch`` command."""

from __future__ import annotations

from asyncbatch.cli import main

# Guarded: anyio's worker processes (search_pattern) re-run the parent's main module
# as ``__mp_main__``, as multiprocessing does; unguarded, each would run the CLI.
if __name__ == "__main__":
    main()
