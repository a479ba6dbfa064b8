"""The ``asyncbatch`` command: parse options, call the library, map the Report to
an exit code. Standard output carries JSON only; everything for people goes to
standard error.

Start-up is kept small: a command's module is imported only when that command
runs (or ``--help`` lists it), and heavy modules are imported inside the commands,
so ``--version`` answers at once and ``run`` loads what running needs, no more.

Modules: :mod:`._app` (the application, which finds each command's module),
:mod:`._options` (the options ``run`` and ``each`` share), :mod:`._run` (``run``),
:mod:`._each` (``each``), :mod:`._read` (``show``, ``actions``, ``schema``),
:mod:`._out` (what is printed, and exits).
"""

from __future__ import annotations

from asyncbatch.cli._app import app
from asyncbatch.cli._out import MAX_PRINTED

__all__ = ["MAX_PRINTED", "app"]
