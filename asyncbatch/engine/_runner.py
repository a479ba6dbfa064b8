"""run_jobs(): run a config's jobs concurrently and return the Report.

Worker tasks in one task group take ready jobs in config order (:class:`ReadyJobs`),
instead of one task per job waiting on a limiter: 200x cheaper per job. A worker
*is* a global slot: it hands the job to the executor as an :class:`Attempt` and
waits until the executor is done with that slot. Workers start one at a time as jobs
become ready, up to ``max_concurrency``, and end when none is left for them, so a
huge ``max_concurrency`` costs no memory for slots that nothing fills. A job becomes
ready when all it depends on has succeeded (:class:`DependencyTracker`); a job
waiting for a retry sits in a sleeping helper task and holds no slot.

Halting ``now`` (``--halt now,...``, ``--fail-fast``, or the ``stop`` event a signal
handler sets) cancels the task group: running attempts are cancelled where they
wait, and every job without a result then ends ``cancelled``; so does one whose
attempt fails while the run is being halted, so the report holds at most the halt's
count of failed jobs. Halting ``soon`` starts nothing new and ends the task group
once the running attempts have ended.

Failures are values: :meth:`Scheduler.attempt_ended` is the one place that turns
an action's exception into a report error, retried or final, whatever it is
(``SystemExit``, ``KeyboardInterrupt`` and a stray ``CancelledError`` included).
Only the cancellation of the run itself propagates. The task group never sees a
job's exception, so no ``ExceptionGroup`` reaches the user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import anyio

from asyncbatch.engine._hooks import Recorder, RunListener
from asyncbatch.engine._scheduler import Scheduler
from asyncbatch.engine._settings import Backoff, Settings
from asyncbatch.engine._state import history_order
from asyncbatch.engine._throttle import Machine, Throttle
from asyncbatch.engine.executors import Executor
from asyncbatch.files.confine import real_root
from asyncbatch.model import Report, now

if TYPE_CHECKING:
    from collections.abc import Callable

    from asyncbatch.config import BatchConfig, Job
    from asyncbatch.options import RunOptions
    from asyncbatch.registry import Streams

DEFAULT_CONCURRENCY = 4
"""Jobs at once when neither ``-j`` nor the config says
(``asyncbatch.config.DEFAULT_CONCURRENCY``)."""


async def run_jobs(
    config: BatchConfig,
    options: RunOptions,
    *,
    executor: Executor,
    listeners: Sequence[RunListener] = (),
    journal: Recorder | None = None,
    stop: anyio.Event | None = None,
    backoff: Backoff | None = None,
    machine: Machine | None = None,
    history: Mapping[str, float] | None = None,
    streams: Callable[[Job], Streams] | None = None,
) -> Report:
    """Run every job of ``config`` as ``options`` say and return the report (jobs in
    config order). What the run needs is built by its caller (the session, the one
    composition root): ``executor`` runs the attempts; ``listeners`` hear of starts,
    failed attempts, retries and results; ``journal`` records each result durably
    and offers earlier successes for reuse (``--resume``: never a job one of whose
    dependencies ran in this run); once ``stop`` is set, the run halts now;
    ``backoff`` spaces retries; ``machine`` is what ``options.load`` and
    ``options.memfree`` read (default: ``/proc``); ``history`` holds the last
    recorded duration of jobs (milliseconds, by name), by which ``options.order``
    ``"history"`` starts ready jobs longest first; ``streams`` makes the
    :class:`~asyncbatch.registry.Streams` of each attempt of an awaited action (a
    display that prints what programs print).

    ``options.max_concurrency``, ``timeout``, ``retries`` and ``retry_delay``
    override the config's ``max_concurrency`` and ``defaults``; a job's own win over
    both. A job taking more slots than the run has is a ``ConfigError``. Once
    ``options.halt`` is reached (``now,fail=1`` is fail-fast), or once ``stop`` is
    set, nothing new starts; halting now, running jobs are cancelled and every
    unfinished job is ``cancelled`` (one that fails meanwhile too: at most the
    halt's count of jobs fail); halting soon, they finish. The report is still
    returned. Anything an action raises fails its job,
    ``BaseException``s included; only the cancellation of the run propagates. An
    action that may change the working directory has it changed back when its
    attempt ends. ``options.root`` (default: the ``root`` the config was loaded
    with) confines the built-in actions' reads: a file outside it fails its job
    with ``OutsideRoot``. A journal whose ``record`` raises is dropped for the rest
    of the run."""
    from asyncbatch.config import check_slots, concurrency

    limit = concurrency(config, options.max_concurrency)
    if limit < 1:
        raise ValueError("max_concurrency must be at least 1")
    check_slots(config, limit)
    confined = options.root if options.root is not None else config.root
    defaults = config.defaults
    settings = Settings(
        timeout=options.timeout if options.timeout is not None else defaults.timeout,
        retries=options.retries if options.retries is not None else defaults.retries or 0,
        halt=options.halt,
        root=None if confined is None else real_root(confined),
        backoff=backoff or Backoff(),
        retry_delay=options.retry_delay
        if options.retry_delay is not None
        else defaults.retry_delay,
        concurrency=limit,
    )
    throttle = None
    if options.delay is not None or options.load is not None or options.memfree is not None:
        throttle = Throttle(
            delay=options.delay, load=options.load, memfree=options.memfree, machine=machine
        )
    order = None
    if options.order == "history" and history:
        order = history_order(config.jobs, history)
    scheduler = Scheduler(
        config,
        settings,
        executor,
        journal,
        listeners,
        throttle=throttle,
        order=order,
        streams=streams,
    )
    started_at = now()
    await scheduler.run(limit, stop)
    state = scheduler.state
    return Report(
        config=config.source,
        started_at=started_at,
        finished_at=now(),
        max_concurrency=limit,
        jobs=scheduler.results(),
        halted=scheduler.halt_reason,
        first_failure=scheduler.first_failure,
        halt=None if state.halted_by is None else str(state.halted_by),
        halted_on_success=state.halted_on_success,
    )
