"""Running a batch: the scheduler, the dependency tracker, named limits and the
executors.

:func:`run_batch` is the entry point. The scheduler decides what runs and records
what happened; an :class:`Executor` decides how each attempt runs
(:class:`LocalExecutor` in this process; :mod:`asyncbatch.engine.dask` on a Dask
cluster). Nothing here imports a built-in action: kernels come with the specs.
"""

from __future__ import annotations

from asyncbatch.engine._hooks import Recorder, RunListener
from asyncbatch.engine._runner import DEFAULT_CONCURRENCY, run_batch
from asyncbatch.engine._settings import Backoff
from asyncbatch.engine.executors import Attempt, Executor, LocalExecutor, TakeMore, run_timed

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Attempt",
    "Backoff",
    "Executor",
    "LocalExecutor",
    "Recorder",
    "RunListener",
    "TakeMore",
    "run_batch",
    "run_timed",
]
