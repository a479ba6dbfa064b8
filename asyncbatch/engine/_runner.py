"""run_jobs(): run a config's jobs concurrently and return the Report.

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

from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from asyncbatch.engine._hooks import Recorder, RunListener
from asyncbatch.engine._scheduler import Scheduler
from asyncbatch.engine._settings import Backoff, Settings
from asyncbatch.engine.executors import Executor
from asyncbatch.files.confine import real_root
from asyncbatch.model import Report, now

if TYPE_CHECKING:
    from collections.abc import Callable

    from asyncbatch.config import BatchConfig, Job
    from asyncbatch.options import RunOptions
    from asyncbatch.registry import Streams

DEFAULT_CONCURRENCY = 4


async def run_jobs(
    config: BatchConfig,
    options: RunOptions,
    *,
    executor: Executor,
    listeners: Sequence[RunListener] = (),
    journal: Recorder | None = None,
    stop: anyio.Event | None = None,
    backoff: Backoff | None = None,
    streams: Callable[[Job], Streams] | None = None,
) -> Report:
    """Run every job of ``config`` as ``options`` say and return the report (jobs in
    config order). What the run needs is built by its caller (the session, the one
    composition root): ``executor`` runs the attempts; ``listeners`` hear of starts,
    failed attempts, retries and results; ``journal`` records each result durably
    and offers earlier successes for reuse (``--resume``); once ``stop`` is set,
    the run halts as after ``max_failures`` failures; ``backoff`` spaces retries;
    ``streams`` makes the :class:`~asyncbatch.registry.Streams` of each attempt of
    an awaited action (a display that prints what programs print).

    ``options.max_concurrency``, ``timeout`` and ``retries`` override the config's
    ``max_concurrency`` and ``defaults``; a job's own ``timeout``/``retries`` win over
    both. After ``max_failures`` failed jobs (1 is fail-fast), or once ``stop`` is
    set, nothing new starts, running jobs are cancelled and every unfinished job is
    ``cancelled`` (one that fails meanwhile too: at most ``max_failures`` jobs fail);
    the report is still returned. Anything an action raises fails its job,
    ``BaseException``s included; only the cancellation of the run propagates. An
    action that may change the working directory has it changed back when its
    attempt ends. ``options.root`` (default: the ``root`` the config was loaded
    with) confines the built-in actions' reads: a file outside it fails its job
    with ``OutsideRoot``. A journal whose ``record`` raises is dropped for the rest
    of the run."""
    limit = options.max_concurrency
    limit = limit if limit is not None else config.max_concurrency
    limit = DEFAULT_CONCURRENCY if limit is None else limit
    if limit < 1:
        raise ValueError("max_concurrency must be at least 1")
    if options.max_failures is not None and options.max_failures < 1:
        raise ValueError("max_failures must be at least 1")
    confined = options.root if options.root is not None else config.root
    defaults = config.defaults
    settings = Settings(
        timeout=options.timeout if options.timeout is not None else defaults.timeout,
        retries=options.retries if options.retries is not None else defaults.retries or 0,
        max_failures=options.max_failures,
        root=None if confined is None else real_root(confined),
        backoff=backoff or Backoff(),
    )
    scheduler = Scheduler(config, settings, executor, journal, listeners, streams)
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
