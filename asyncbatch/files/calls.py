"""One attempt of an action that is awaited (the ``"call"`` route): its function,
with the job's context when it binds, and its declared outputs kept by make's rules.
An action may say what its work used by returning a
:class:`~asyncbatch.model.Measured`: the call gives ``(result, resources)`` either way.

Whoever awaits it (the local executor, a Dask worker), an action that declares
outputs gets the same: their folders are made before the attempt; after a success
every output must exist, or the job fails with ``MissingOutput``; when the attempt
fails, times out or is cancelled, each output it created or changed is removed (a
folder it created, with its contents; one that existed before stays) and so is each
folder made for them that is left empty, so that no half-written file passes for a
result (make's ``.DELETE_ON_ERROR``). Every file system call runs in a daemon
thread: a hung mount must not stop the event loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from asyncbatch.errors import MissingOutput
from asyncbatch.files._threads import run_blocking
from asyncbatch.files.scan import Scanned
from asyncbatch.model import measured
from asyncbatch.registry import ActionSpec, JobContext

Identity = tuple[int, int, int, int]
"""What tells whether a path was created or changed since: device, inode, size and
modification time."""


async def call_action(spec: ActionSpec, path: Path, params: Any, job: JobContext) -> Scanned:
    """The action's result for one attempt and what it used (when it returns a
    :class:`~asyncbatch.model.Measured`); see the module doc."""
    outputs = spec.declared_outputs(path, params, job)
    if not outputs:
        return measured(await spec.call(path, params, job))
    guard = await run_blocking(OutputGuard.prepare, outputs, job.config_dir)
    try:
        result = await spec.call(path, params, dataclasses.replace(job, outputs=tuple(outputs)))
        await run_blocking(guard.check)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_blocking(guard.undo)
        raise
    return measured(result)


class OutputGuard:
    """The outputs of one attempt: how they were before it, and the folders made for
    them."""

    def __init__(self, outputs: Sequence[str], config_dir: Path) -> None:
        self._config_dir = config_dir
        self._before = {output: identity(output) for output in outputs}
        self._made: list[str] = []

    @classmethod
    def prepare(cls, outputs: Sequence[str], config_dir: Path) -> OutputGuard:
        """Note each output's state, then make the folders they go in."""
        guard = cls(outputs, config_dir)
        for output in outputs:
            guard._make_folder(os.path.dirname(output))
        return guard

    def _make_folder(self, folder: str) -> None:
        missing = []
        while folder and not os.path.lexists(folder):
            missing.append(folder)
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
        for each in reversed(missing):
            try:
                os.mkdir(each)
            except FileExistsError:
                continue  # made meanwhile by another job: not ours to remove
            self._made.append(each)

    def check(self) -> None:
        """Raise ``MissingOutput`` naming every output that does not exist."""
        missing = [output for output in self._before if not os.path.lexists(output)]
        if missing:
            raise MissingOutput(paths=[self._shown(output) for output in missing])

    def undo(self) -> None:
        """Remove each output that is not as it was before the attempt, then each
        folder made for them that is left empty (deepest first)."""
        for output, before in self._before.items():
            now = identity(output)
            if now is None or now == before:
                continue
            with contextlib.suppress(OSError):
                if os.path.isdir(output) and not os.path.islink(output):
                    if before is None:  # a folder it created: with what it holds
                        shutil.rmtree(output)
                else:
                    os.unlink(output)
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):  # not empty: something else lives there
                os.rmdir(folder)

    def _shown(self, output: str) -> str:
        relative = os.path.relpath(output, self._config_dir)
        return output if relative.startswith("..") else relative


def identity(path: str) -> Identity | None:
    """What tells whether ``path`` was created or changed since (None: absent)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
