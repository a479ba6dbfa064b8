"""run_batch(): run a config's jobs concurrently and return the Report.

Worker tasks in one task group take ready jobs in config order (:class:`ReadyJobs`),
instead of one task per job waiting on a limiter: 200x cheaper per job. A worker
*is* a global slot: it hands the job to the executor as an :class:`Attempt` and
waits until the executor is done with that slot. Workers start one at a time as jobs
become ready, up to ``max_concurrency``, and end when none is left for them, so a
huge ``max_concurrency`` costs no memory for slots that nothing fills. A job becomes
ready when all it depends on has succeeded (:class:`DependencyTracker`); a job
waiting for a retry sits in a sleeping helper task and holds no slot.

Halting (``max_failures``, or the ``stop`` event a signal handler sets) cancels the
task group: running attempts are cancelled where they wait, and every job without a
result then ends ``cancelled``; so does one whose attempt fails while the run is
being halted, so the report holds at most ``max_failures`` failed jobs.

Failures are values: :meth:`Scheduler.attempt_ended` is the one place that turns
an action's exception into a report error, retried or final, whatever it is
(``SystemExit``, ``KeyboardInterrupt`` and a stray ``CancelledError`` included).
Only the cancellation of the run itself propagates. The task group never sees a
job's exception, so no ``ExceptionGroup`` reaches the user.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio

from asyncbatch.engine._hooks import Recorder, RunListener
from asyncbatch.engine._scheduler import Scheduler
from asyncbatch.engine._settings import Backoff, Settings
from asyncbatch.engine.executors import Executor, LocalExecutor
from asyncbatch.files._confine import real_root
from asyncbatch.model import JobResult, Report, now

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig

DEFAULT_CONCURRENCY = 4

JobCallback = Callable[[JobResult], None]


async def run_batch(
    config: BatchConfig,
    *,
    max_concurrency: int | None = None,
    default_timeout: float | None = None,
    default_retries: int | None = None,
    max_failures: int | None = None,
    stop: anyio.Event | None = None,
    on_job_done: JobCallback | None = None,
    listener: RunListener | Sequence[RunListener] | None = None,
    journal: Recorder | None = None,
    root: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
    backoff: Backoff | None = None,
) -> Report:
    """Run every job of ``config`` and return the report (jobs in config order).

    ``max_concurrency``, ``default_timeout`` and ``default_retries`` override the
    config's ``max_concurrency`` and ``defaults``; a job's own ``timeout``/``retries``
    win over both. After ``max_failures`` failed jobs (1 is fail-fast), or once ``stop``
    is set, nothing new starts, running jobs are cancelled and every unfinished job is
    ``cancelled`` (one that fails meanwhile too: at most ``max_failures`` jobs fail);
    the report is still returned. Anything an action raises fails its job,
    ``BaseException``s included; only the cancellation of the run propagates. An action
    that changes the working directory has it changed back when its attempt ends.
    ``on_job_done`` is called with each result as its job ends, ``listener`` (one, or
    several) hears of starts, failed attempts and retries too; ``journal`` records each
    result durably and offers earlier successes for reuse (``--resume``); a journal
    whose ``record`` raises is dropped for the rest of the run. ``root`` (default: the
    ``root`` the config was loaded with) confines the built-in actions' reads to that
    directory: a file outside it fails its job with ``OutsideRoot``. ``executor`` runs
    the attempts (default: a :class:`LocalExecutor`); ``backoff`` spaces retries. Usable
    from any running asyncio program (it starts no event loop of its own).
    """
    limit = max_concurrency if max_concurrency is not None else config.max_concurrency
    limit = DEFAULT_CONCURRENCY if limit is None else limit
    if limit < 1:
        raise ValueError("max_concurrency must be at least 1")
    if max_failures is not None and max_failures < 1:
        raise ValueError("max_failures must be at least 1")
    confined = root if root is not None else config.root
    settings = Settings(
        timeout=default_timeout if default_timeout is not None else config.defaults.timeout,
        retries=default_retries if default_retries is not None else config.defaults.retries or 0,
        max_failures=max_failures,
        root=None if confined is None else real_root(confined),
        backoff=backoff or Backoff(),
    )
    listeners: list[RunListener] = []
    if isinstance(listener, Sequence):
        listeners.extend(listener)
    elif listener is not None:
        listeners.append(listener)
    if on_job_done is not None:
        listeners.append(_Callback(on_job_done))
    scheduler = Scheduler(config, settings, executor or LocalExecutor(), journal, listeners)
    started_at = now()
    await scheduler.run(limit, stop)
    return Report(
        config=config.source,
        started_at=started_at,
        finished_at=now(),
        max_concurrency=limit,
        jobs=scheduler.results(),
        halted=scheduler.halt_reason,
        first_failure=scheduler.first_failure,
    )


class _Callback(RunListener):
    def __init__(self, on_job_done: JobCallback) -> None:
        self._on_job_done = on_job_done

    def job_done(self, result: JobResult) -> None:
        self._on_job_done(result)
