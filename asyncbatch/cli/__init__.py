"""The ``asyncbatch`` command: parse options, call the library, map the Report to
an exit code. Standard output carries JSON only; everything for people goes to
standard error. Heavy modules are imported inside the commands, so ``--version``
starts fast.

Modules: :mod:`._app` (the application), :mod:`._options` (the options ``run``
and ``each`` share), :mod:`._run` (``run``, ``each``), :mod:`._read` (``show``,
``actions``, ``schema``), :mod:`._out` (what is printed, and exits).
"""

from __future__ import annotations

from asyncbatch.cli import _read, _run  # noqa: F401 - their commands register on the app
from asyncbatch.cli._app import app
from asyncbatch.cli._out import MAX_PRINTED

__all__ = ["MAX_PRINTED", "app"]
