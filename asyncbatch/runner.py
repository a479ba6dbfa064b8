"""run_batch(): run a config's jobs concurrently and return the Report.

Design (see PERF-NOTES.md): a fixed pool of ``max_concurrency`` worker tasks in one
task group takes ready jobs in config order (:class:`ReadyJobs`), instead of one task
per job waiting on a limiter: 200x cheaper per job and flat in memory. A worker *is*
a global slot. A job becomes ready when everything it depends on has succeeded;
when a dependency did not, its dependents are skipped at once. A job waiting for a
retry sits in a sleeping helper task and holds no slot.

Halting (``max_failures``, or the ``stop`` event a signal handler sets) cancels the
whole task group: running attempts are cancelled where they wait, and every job
without a result then ends ``cancelled``.

Small built-in jobs (:mod:`asyncbatch.actions.fastpath`): a worker that takes one
takes up to ``BATCH_JOBS`` more ready ones like it and runs them one after another
in a single thread hop, each with its own timeout, start and end, instead of
paying several thread hops per job.

Failures are values: :meth:`_Scheduler._fail` is the one place that turns an
action's exception into a report error; :meth:`_Scheduler._attempt` catches
``Exception`` only, so cancellation propagates and the task group never sees a
job's exception.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import anyio

from asyncbatch import confine
from asyncbatch.actions import _io, fastpath
from asyncbatch.config import BatchConfig, Job
from asyncbatch.errors import Cancelled, DependencyFailed, Timeout, UnknownAction, describe_error
from asyncbatch.executors import LOCAL, Executor
from asyncbatch.limits import ReadyJobs
from asyncbatch.report import JobResult, Report, Status, now

DEFAULT_CONCURRENCY = 4
BACKOFF_START = 0.1
BACKOFF_CAP = 10.0

JobCallback = Callable[[JobResult], None]


class Recorder(Protocol):
    """Where finished jobs go as they end, and where earlier results come from
    (``asyncbatch.journal.Journal``)."""

    def reusable(self, job: Job) -> JobResult | None:
        """A recorded result to reuse instead of running ``job``, or None."""

    def record(self, result: JobResult) -> None:
        """Keep ``result`` durably; called as each job ends."""


async def run_batch(
    config: BatchConfig,
    *,
    max_concurrency: int | None = None,
    default_timeout: float | None = None,
    default_retries: int | None = None,
    max_failures: int | None = None,
    stop: anyio.Event | None = None,
    on_job_done: JobCallback | None = None,
    journal: Recorder | None = None,
    root: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
) -> Report:
    """Run every job of ``config`` and return the report (jobs in config order).

    ``max_concurrency``, ``default_timeout`` and ``default_retries`` override the
    config's ``max_concurrency`` and ``defaults``; a job's own ``timeout``/``retries``
    win over both. After ``max_failures`` failed jobs (1 is fail-fast), or once
    ``stop`` is set, nothing new starts, running jobs are cancelled and every
    unfinished job is ``cancelled``; the report is still returned.
    ``on_job_done`` is called with each result as its job ends; ``journal`` records
    each one durably and offers earlier successes for reuse (``--resume``).
    ``root`` (default: the ``root`` the config was loaded with) confines the
    built-in actions' reads to that directory: every file they open or stat is
    checked on its descriptor, and one outside fails its job with ``OutsideRoot``.
    ``executor`` runs each attempt (default: in this event loop; see
    :mod:`asyncbatch.executors`); everything else stays here whatever it is.
    Usable from any running asyncio program (it starts no event loop of its own).
    """
    limit = (
        max_concurrency
        if max_concurrency is not None
        else config.max_concurrency or DEFAULT_CONCURRENCY
    )
    if limit < 1:
        raise ValueError("max_concurrency must be at least 1")
    if max_failures is not None and max_failures < 1:
        raise ValueError("max_failures must be at least 1")
    scheduler = _Scheduler(
        config,
        default_timeout=(
            default_timeout if default_timeout is not None else config.defaults.timeout
        ),
        default_retries=(
            default_retries if default_retries is not None else (config.defaults.retries or 0)
        ),
        max_failures=max_failures,
        on_job_done=on_job_done,
        journal=journal,
        executor=executor or LOCAL,
    )
    confined = root if root is not None else config.root
    token = _io.ROOT.set(None if confined is None else confine.real_root(confined))
    started_at = now()
    try:
        await scheduler.run(limit, stop)
    finally:
        _io.ROOT.reset(token)
    return Report(
        config=config.source,
        started_at=started_at,
        finished_at=now(),
        max_concurrency=limit,
        jobs=scheduler.results(),
        halted=scheduler.halt_reason,
        first_failure=scheduler.first_failure,
    )


class _Scheduler:
    """Dependency-aware dispatch of jobs to a fixed pool of workers."""

    def __init__(
        self,
        config: BatchConfig,
        *,
        default_timeout: float | None,
        default_retries: int,
        max_failures: int | None,
        on_job_done: JobCallback | None,
        journal: Recorder | None,
        executor: Executor = LOCAL,
    ) -> None:
        self._jobs = config.jobs
        self._executor = executor
        self._default_timeout = default_timeout
        self._default_retries = default_retries
        self._max_failures = max_failures
        self._on_job_done = on_job_done
        self._journal = journal
        total = len(self._jobs)
        self._results: list[JobResult | None] = [None] * total
        self._attempts = [0] * total
        self._first_start: list[float | None] = [None] * total
        self._finished = 0
        self._failures = 0
        self.first_failure: str | None = None
        self.halt_reason: str | None = None
        position = {job.name: i for i, job in enumerate(self._jobs)}
        self._dependents: list[list[int]] = [[] for _ in range(total)]
        self._waiting_on = [len(job.depends_on) for job in self._jobs]
        for i, job in enumerate(self._jobs):
            for dep in job.depends_on:
                self._dependents[position[dep]].append(i)
        self._ready = ReadyJobs(config.limits, [job.limits for job in self._jobs])
        self._kernels = [
            None
            if job.start_error is not None
            or job.limits
            or job.spec is None
            or not executor.local  # every attempt goes through the executor
            else fastpath.kernel_name(job.spec.func)
            for job in self._jobs
        ]
        for i in range(total):
            if self._waiting_on[i] == 0:
                self._ready.push(i)
        self._changed = anyio.Event()
        self._idle = 0  # workers waiting on _changed

    def results(self) -> list[JobResult]:
        done = [result for result in self._results if result is not None]
        assert len(done) == len(self._results), "every job ends with a result"
        return done

    async def run(self, limit: int, stop: anyio.Event | None) -> None:
        self._workers = min(limit, len(self._jobs))
        async with anyio.create_task_group() as group:
            self._group = group
            if not self._jobs:
                group.cancel_scope.cancel()
            if stop is not None:
                group.start_soon(self._halt_when_set, stop)
            for _ in range(self._workers):
                group.start_soon(self._worker)
        self._cancel_unfinished()

    async def _halt_when_set(self, stop: anyio.Event) -> None:
        await stop.wait()
        self._halt("the run was interrupted")

    def _halt(self, reason: str) -> None:
        if self.halt_reason is None:
            self.halt_reason = reason
            self._group.cancel_scope.cancel()

    async def _worker(self) -> None:
        # Checking halt_reason matters: the worker whose job caused the halt is not
        # cancelled until its next checkpoint, and an action's body runs up to its
        # first await as soon as it is called, so without the check it would start
        # the next ready job after the halt.
        while self._finished < len(self._jobs) and self.halt_reason is None:
            index = self._ready.take()
            if index is None:
                self._idle += 1
                try:
                    await self._changed.wait()
                finally:
                    self._idle -= 1
                continue
            if self._kernels[index] is not None:
                batch = self._take_batch(index)
                try:
                    await self._run_batch(batch)
                finally:
                    self._notify()
                continue
            try:
                await self._attempt(index, self._jobs[index])
            finally:
                self._ready.release(index)
                self._notify()

    def _notify(self) -> None:
        """Wake the idle workers: something changed (a job is ready, or all done)."""
        if self._idle:
            self._changed.set()
            self._changed = anyio.Event()

    async def _attempt(self, index: int, job: Job) -> None:
        """Run one attempt and record its outcome: finished, or queued for retry."""
        if isinstance(job.start_error, UnknownAction):
            self._finish(index, "skipped", error=describe_error(job.start_error))
            return
        if self._journal is not None and self._attempts[index] == 0 and job.start_error is None:
            reused = self._journal.reusable(job)
            if reused is not None:
                self._finish(index, "succeeded", reused=reused)
                return
        if self._first_start[index] is None:
            self._first_start[index] = time.perf_counter()
        self._attempts[index] += 1
        timeout = self._timeout_of(job)
        try:
            if job.start_error is not None:
                raise job.start_error
            assert job.spec is not None
            with anyio.move_on_after(timeout) as scope:
                result = await self._executor.run(job.spec, job.path, job.params)
            if scope.cancelled_caught:
                raise Timeout(seconds=timeout or 0)
            _check_result(result)
        except Exception as exc:  # noqa: BLE001 - every action failure becomes the job's error
            self._fail(index, exc)
            return
        self._finish(index, "succeeded", result=result)

    def _fail(self, index: int, exc: Exception, ended: float | None = None) -> None:
        """The attempt failed with ``exc``: retry later, or record the failure."""
        job = self._jobs[index]
        error = describe_error(exc)
        error["message"] = error["message"].replace(str(job.path), job.input)
        retries = job.retries if job.retries is not None else self._default_retries
        if self._attempts[index] <= retries:
            self._group.start_soon(self._retry_later, index)
            return
        self._finish(index, "failed", error=error, ended=ended)

    def _timeout_of(self, job: Job) -> float | None:
        return job.timeout if job.timeout is not None else self._default_timeout

    def _take_batch(self, index: int) -> list[int]:
        """``index`` and more ready jobs a small-file batch can run with it (same
        timeout, no named limits), a fair share of the ready ones at most; jobs
        with a recorded result to reuse are finished here instead."""
        timeout = self._timeout_of(self._jobs[index])
        share = self._ready.count_unlimited() // self._workers + 1
        more = self._ready.take_unlimited(
            lambda i: self._kernels[i] is not None and self._timeout_of(self._jobs[i]) == timeout,
            min(fastpath.BATCH_JOBS, share) - 1,
        )
        batch = [index, *more]
        if self._journal is None:
            return batch
        kept = []
        for i in batch:
            reused = self._journal.reusable(self._jobs[i]) if self._attempts[i] == 0 else None
            if reused is not None:
                self._finish(i, "succeeded", reused=reused)
            else:
                kept.append(i)
        return kept

    async def _run_batch(self, batch: list[int]) -> None:
        """Run small built-in jobs in one thread hop; record each as it ended."""
        if not batch:
            return
        jobs = self._jobs
        items = [(self._kernels[i] or "", str(jobs[i].path), jobs[i].params) for i in batch]
        timeout = self._timeout_of(jobs[batch[0]])
        small = fastpath.SmallBatch(
            items, timeout, stop_on_error=self._max_failures is not None, root=_io.ROOT.get()
        )
        try:
            await small.run()
        finally:
            for done in small.done:
                index = batch[done.position]
                self._start_attempt(index, done.started)
                if done.error is None:
                    self._finish(index, "succeeded", result=done.result, ended=done.ended)
                else:
                    self._fail(index, done.error, ended=done.ended)
            if small.timed_out is not None:
                position, started = small.timed_out
                self._start_attempt(batch[position], started)
                self._fail(batch[position], Timeout(seconds=timeout or 0))
            if small.large is not None:  # runs on its own, through the action
                self._kernels[batch[small.large]] = None
                self._ready.push(batch[small.large])
            for position in small.not_started():
                self._ready.push(batch[position])

    def _start_attempt(self, index: int, started: float) -> None:
        if self._first_start[index] is None:
            self._first_start[index] = started
        self._attempts[index] += 1

    async def _retry_later(self, index: int) -> None:
        """Back off (0.1 s doubling, capped at 10 s, with jitter), then make the job
        ready again: it holds no slot while it waits."""
        attempt = self._attempts[index]
        delay = min(BACKOFF_CAP, BACKOFF_START * 2 ** (attempt - 1))
        await anyio.sleep(delay * random.uniform(0.5, 1.0))
        self._ready.push(index)
        self._notify()

    def _finish(
        self,
        index: int,
        status: Status,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
        reused: JobResult | None = None,
        ended: float | None = None,
    ) -> None:
        """Record a final result, release dependents, skip those that cannot run."""
        pending = [(index, status, result, error)]
        queued = {index}
        while pending:
            i, outcome, value, problem = pending.pop()
            if i == index:
                self._record(i, outcome, value, problem, reused, ended)
            else:
                self._record(i, outcome, value, problem)
            for dependent in self._dependents[i]:
                if self._results[dependent] is not None:
                    continue
                if outcome == "succeeded":
                    self._waiting_on[dependent] -= 1
                    if self._waiting_on[dependent] == 0:
                        self._ready.push(dependent)
                elif dependent not in queued:
                    queued.add(dependent)
                    skip = DependencyFailed(dependency=self._jobs[i].name, status=outcome)
                    pending.append((dependent, "skipped", None, describe_error(skip)))
        if status == "failed":
            self._count_failure(index)
        if self._finished == len(self._jobs):
            self._group.cancel_scope.cancel()  # ends the stop watcher and idle workers
        self._notify()

    def _count_failure(self, index: int) -> None:
        """Halt once ``max_failures`` jobs have failed, naming the first of them."""
        self._failures += 1
        if self.first_failure is None:
            self.first_failure = self._jobs[index].name
        over = self._max_failures is not None and self._failures >= self._max_failures
        if over and self._finished < len(self._jobs):
            count = "1 failure" if self._failures == 1 else f"{self._failures} failures"
            self._halt(f"the run halted after {count} (first: {self.first_failure!r})")

    def _record(
        self,
        index: int,
        status: Status,
        result: dict[str, Any] | None,
        error: dict[str, str] | None,
        reused: JobResult | None = None,
        ended: float | None = None,
    ) -> None:
        job = self._jobs[index]
        first_start = self._first_start[index]
        end = ended if ended is not None else time.perf_counter()
        duration = None if first_start is None else round((end - first_start) * 1000, 3)
        outcome = reused or JobResult(
            name=job.name,
            action=job.action,
            input=job.input,
            status=status,
            result=result,
            error=error,
            duration_ms=duration,
            attempts=self._attempts[index],
        )
        self._results[index] = outcome
        self._finished += 1
        if self._journal is not None:
            self._journal.record(outcome)
        if self._on_job_done is not None:
            self._on_job_done(outcome)

    def _cancel_unfinished(self) -> None:
        """After a halt: every job without a result (running, waiting for a retry,
        or never started) is ``cancelled``."""
        if self._finished == len(self._jobs):
            return
        error = describe_error(Cancelled(reason=self.halt_reason or "the run was stopped"))
        for index, outcome in enumerate(self._results):
            if outcome is None:
                self._record(index, "cancelled", None, dict(error))


def _check_result(result: object) -> None:
    """An action must return a JSON-serialisable dict: the report depends on it.
    NaN and infinities are refused too: they are not JSON (RFC 8259)."""
    if not isinstance(result, dict):
        raise TypeError(f"action returned {type(result).__name__}, expected a dict")
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"action result is not JSON-serialisable: {exc}") from None
