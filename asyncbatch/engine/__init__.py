"""Running a batch: the scheduler, the dependency tracker, named limits and the
executors.

:func:`run_jobs` is the entry point; ``asyncbatch.run_batch`` (the session) builds
what it takes. The scheduler decides what runs and records what happened; an
:class:`Executor` decides how each attempt runs (:class:`LocalExecutor` in this
process; :mod:`asyncbatch.engine.dask` on a Dask cluster), following the route
:func:`job_route` gives each job once. Nothing here imports an action, nor the output
package: kernels and capabilities come with the specs, results are the model's.

The names are imported lazily (PEP 562): a module that needs only the listener
protocols (:mod:`._hooks`) or the settings does not load the scheduler, the
executors and anyio with them (a dry run imports no engine at all).
"""

from __future__ import annotations

import typing as _typing

from asyncbatch.lazy import lazy_names as _lazy_names

if _typing.TYPE_CHECKING:
    from asyncbatch.engine._hooks import Recorder, RunListener
    from asyncbatch.engine._runner import DEFAULT_CONCURRENCY, run_jobs
    from asyncbatch.engine._settings import Backoff
    from asyncbatch.engine._throttle import Machine
    from asyncbatch.engine.executors import (
        Attempt,
        Executor,
        LocalExecutor,
        TakeMore,
        job_route,
        run_timed,
    )

_LAZY = {
    "DEFAULT_CONCURRENCY": "asyncbatch.engine._runner",
    "Attempt": "asyncbatch.engine.executors",
    "Backoff": "asyncbatch.engine._settings",
    "Executor": "asyncbatch.engine.executors",
    "LocalExecutor": "asyncbatch.engine.executors",
    "Machine": "asyncbatch.engine._throttle",
    "Recorder": "asyncbatch.engine._hooks",
    "RunListener": "asyncbatch.engine._hooks",
    "TakeMore": "asyncbatch.engine.executors",
    "job_route": "asyncbatch.engine.executors",
    "run_jobs": "asyncbatch.engine._runner",
    "run_timed": "asyncbatch.engine.executors",
}


__getattr__, __dir__ = _lazy_names(__name__, _LAZY)


__all__ = [
    "DEFAULT_CONCURRENCY",
    "Attempt",
    "Backoff",
    "Executor",
    "LocalExecutor",
    "Machine",
    "Recorder",
    "RunListener",
    "TakeMore",
    "job_route",
    "run_jobs",
    "run_timed",
]
