"""The run's working directory, kept: an action that changed it (``os.chdir``) does
not change it for the rest of the run, so that relative paths (the report's, say)
resolve as they did when the run started."""

from __future__ import annotations

import contextlib
import os


class WorkingDirectory:
    """The working directory as it was when made; :meth:`restore` goes back to it."""

    def __init__(self) -> None:
        self._path = _current()

    def restore(self) -> None:
        if self._path is not None and _current() != self._path:
            with contextlib.suppress(OSError):
                os.chdir(self._path)


def _current() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # it was removed
        return None
