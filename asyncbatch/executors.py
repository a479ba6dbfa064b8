"""Where an attempt of an action runs: the executor seam of the runner.

The runner (scheduling, dependencies, limits, timeouts, retries, the journal and
the report) always stays in the calling process; it hands each attempt to an
:class:`Executor`. :class:`LocalExecutor` awaits the action in the event loop (what
asyncbatch always did); :mod:`asyncbatch.dask_executor` sends it to a Dask cluster.
This module imports nothing heavy: the runner's core never imports dask.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from asyncbatch.registry import ActionSpec


class Executor(Protocol):
    """Runs one attempt of an action and returns its result (or raises its error).

    Cancellation of ``run`` (a timeout, fail-fast, a signal) must return promptly."""

    local: bool
    """True when actions run in this process: the runner may then use its fast
    paths (small built-in jobs batched in one thread hop)."""

    async def run(self, spec: ActionSpec, path: Path, params: Any) -> dict[str, Any]:
        """Run ``spec``'s action on ``path`` with validated ``params``."""


class LocalExecutor:
    """Await the action in the running event loop (the default)."""

    local = True

    async def run(self, spec: ActionSpec, path: Path, params: Any) -> dict[str, Any]:
        return await spec.func(path, params)


LOCAL = LocalExecutor()
