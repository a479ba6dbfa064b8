"""The scheduler of one run: slots, ready jobs, attempts, retries, halting, results.

It decides what runs and records what happened; how an attempt runs is the
executor's business (:mod:`asyncbatch.engine.executors`). Dependencies are the pure
:class:`DependencyTracker`'s, named limits the :class:`ReadyJobs`'.

Whatever a job's action does, the run's bookkeeping holds: every job ends exactly
once; after a halt, a job whose attempt fails is ``cancelled`` (so the report holds
at most ``max_failures`` failed jobs); a result is checked and kept as a plain JSON
copy; an action that changed the working directory has it changed back when its
attempt ends; a journal that fails to record is dropped, and the jobs go on.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from asyncbatch.engine._hooks import Listeners, Recorder, RunListener
from asyncbatch.engine._limits import ReadyJobs
from asyncbatch.engine._results import checked_result
from asyncbatch.engine._settings import Settings
from asyncbatch.engine._tracker import DependencyTracker
from asyncbatch.engine.executors import Attempt, Executor, is_cancellation
from asyncbatch.errors import Cancelled, DependencyFailed, UnknownAction, describe_error
from asyncbatch.model import JobResult, Status

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from asyncbatch.config import BatchConfig, Job


SHARED_AMONG = 64
"""An executor may take more ready jobs into a slot (a batch of small files), an
equal share at most: the ready jobs divided among the ``max_concurrency`` slots or,
when there are more slots than this, among the workers running but at least this
many. Divided among 100,000 slots, batches would be of one file each (a thread hop
and a worker per job); divided among too few, slots would sit idle while one batch
works through a long list."""


class Scheduler:
    """Dependency-aware dispatch of jobs to a fixed pool of workers (the slots)."""

    def __init__(
        self,
        config: BatchConfig,
        settings: Settings,
        executor: Executor,
        journal: Recorder | None,
        listeners: Sequence[RunListener],
    ) -> None:
        self._jobs = config.jobs
        self._settings = settings
        self._executor = executor
        self._journal = journal
        self._listeners = Listeners(listeners)
        total = len(self._jobs)
        self._results: list[JobResult | None] = [None] * total
        self._attempts = [0] * total
        self._first_start: list[float | None] = [None] * total
        self._began = time.perf_counter()  # the run's start: jobs' started_ms count from it
        self._finished = 0
        self._failures = 0
        self.first_failure: str | None = None
        self.halt_reason: str | None = None
        self._tracker = DependencyTracker.grouped(
            [job.name for job in self._jobs],
            [job.group for job in self._jobs],
            [job.depends_on for job in self._jobs],
        )
        self._ready = ReadyJobs(config.limits, [job.limits for job in self._jobs])
        self._waiting = 0  # jobs in _ready
        for index in self._tracker.initially_ready():
            self._push(index)
        self._slots = 1  # workers at most: min(max_concurrency, jobs)
        self._workers = 0  # started and not ended
        self._spawning = False  # a worker was started and has not run yet
        self._group: TaskGroup | None = None
        self._cwd = _working_directory()

    def results(self) -> list[JobResult]:
        done = [result for result in self._results if result is not None]
        assert len(done) == len(self._results), "every job ends with a result"
        return done

    async def run(self, limit: int, stop: anyio.Event | None) -> None:
        self._began = time.perf_counter()
        self._slots = min(limit, len(self._jobs))
        async with anyio.create_task_group() as group:
            self._group = group
            if not self._jobs:
                group.cancel_scope.cancel()
            if stop is not None:
                group.start_soon(self._halt_when_set, stop)
            self._spawn()
        self._restore_working_directory()
        self._cancel_unfinished()

    # --- slots -------------------------------------------------------------------------

    def _spawn(self) -> None:
        """Start one more worker (a slot) when a ready job may be waiting for one.

        Workers start one at a time, as jobs become ready, and end when they find
        nothing to run: never more than ``max_concurrency``, never more than the jobs
        that can run. The new worker runs once the one that started it has handed
        its attempt to the executor, which may have taken more ready jobs into the
        same slot (a batch of small files) by then: what is left decides whether the
        new worker starts a third, so a large ``max_concurrency`` costs nothing
        while batches absorb the ready jobs."""
        if (
            self._spawning
            or self._waiting == 0
            or self._workers >= self._slots
            or self.halt_reason is not None
            or self._group is None
        ):
            return
        self._spawning = True
        self._workers += 1
        self._group.start_soon(self._worker)

    async def _worker(self) -> None:
        self._spawning = False
        try:
            # Checking halt_reason matters: the worker whose job caused the halt is
            # not cancelled until its next checkpoint, and an action's body runs up
            # to its first await as soon as it is called, so without the check it
            # would start the next ready job after the halt. The checkpoint ends a
            # worker started in a run being cancelled from outside before it takes
            # a job.
            while self.halt_reason is None:
                await anyio.lowlevel.checkpoint_if_cancelled()
                attempt = self._take()
                if attempt is None:
                    return
                self._spawn()
                await self._run_attempt(attempt)
        finally:
            self._workers -= 1

    async def _run_attempt(self, attempt: Attempt) -> None:
        """Hand ``attempt`` (and its slots) to the executor until it is done with them."""
        taken = [attempt]
        try:
            await self._executor.run(attempt, self._more_for(attempt, taken))
            if attempt.state == "taken":
                raise RuntimeError("the executor returned without running the job")
        except BaseException as exc:  # an executor's bug fails its jobs, not the run
            if is_cancellation(exc):
                raise
            attempt.fail(exc)
            for each in taken:
                if each.state == "started":
                    each.fail(exc)
        finally:
            self._ready.release(attempt.index)
            for each in taken:
                each.give_back()
            self._spawn()

    def _take(self) -> Attempt | None:
        """The first ready job that can run now, as an attempt holding its slots;
        jobs settled without running (reused, skipped, failed before starting) are
        recorded on the way."""
        while self.halt_reason is None and (index := self._ready.take()) is not None:
            self._waiting -= 1
            if not self._settle(index):
                return self._attempt(index)
            self._ready.release(index)
        return None

    def _more_for(
        self, first: Attempt, taken: list[Attempt]
    ) -> Callable[[Callable[[Job], bool], int], list[Attempt]]:
        """``more`` for the slot of ``first``: ready jobs that need no named limit
        (none when ``first`` holds some), a fair share of them at most."""

        def more(accept: Callable[[Job], bool], most: int) -> list[Attempt]:
            if first.job.limits:
                return []
            share = self._ready.count_unlimited() // min(
                self._slots, max(self._workers, SHARED_AMONG)
            )
            jobs = self._jobs
            indices = self._ready.take_unlimited(
                lambda i: jobs[i].start_error is None and accept(jobs[i]), min(most, share)
            )
            self._waiting -= len(indices)
            attempts = [self._attempt(i) for i in indices if not self._settle(i)]
            taken.extend(attempts)
            return attempts

        return more

    def _settle(self, index: int) -> bool:
        """Record the outcome of a job that needs no attempt: an unknown action is
        skipped, a result recorded by the journal is reused, a job whose input was
        refused at load fails at once (never retried: nothing would change)."""
        job = self._jobs[index]
        error = job.start_error
        if isinstance(error, UnknownAction):
            self._finish(index, "skipped", error=describe_error(error))
            return True
        if error is not None:
            attempt = self._attempt(index)
            attempt.start()
            attempt.fail(error)  # permanent: see attempt_ended
            return True
        if self._journal is not None and self._attempts[index] == 0:
            reused = self._journal.reusable(job)
            if reused is not None:
                self._finish(index, "succeeded", reused=reused)
                return True
        return False

    def _attempt(self, index: int) -> Attempt:
        job = self._jobs[index]
        settings = self._settings
        return Attempt(
            self,
            index,
            job,
            timeout=job.timeout if job.timeout is not None else settings.timeout,
            root=settings.root,
            failure_may_halt=settings.max_failures is not None,
        )

    def _push(self, index: int) -> None:
        """Job ``index`` is ready to run."""
        self._ready.push(index)
        self._waiting += 1

    # --- what attempts report (the AttemptOwner protocol) -----------------------------

    def attempt_started(self, attempt: Attempt, at: float | None) -> None:
        index = attempt.index
        if self._first_start[index] is None:
            self._first_start[index] = at if at is not None else time.perf_counter()
        self._attempts[index] += 1
        self._listeners.tell("job_started", attempt.job, self._attempts[index])

    def attempt_ended(
        self, attempt: Attempt, result: Any, error: BaseException | None, at: float | None
    ) -> None:
        spec = attempt.job.spec
        if spec is None or spec.origin != "builtin":  # a built-in never moves it
            self._restore_working_directory()
        index = attempt.index
        if error is None:
            result, error = checked_result(result)
        if error is None:
            self._finish(index, "succeeded", result=result, ended=at)
            return
        self._listeners.tell("job_attempt_failed", attempt.job, self._attempts[index], error)
        if self.halt_reason is not None:
            # Failed while the run is being halted (cancelled, or about to be):
            # cancelled, so that the report holds at most max_failures failed jobs.
            self._record(index, "cancelled", None, self._cancelled(), ended=at)
            return
        job = self._jobs[index]
        retries = job.retries if job.retries is not None else self._settings.retries
        if self._attempts[index] > retries or error is job.start_error:
            self._fail_for_good(index, error, ended=at)
            return
        delay = self._settings.backoff.delay(self._attempts[index])
        self._listeners.tell("job_retrying", job, self._describe(index, error), delay)
        assert self._group is not None
        self._group.start_soon(self._retry_later, index, delay)

    def attempt_given_back(self, attempt: Attempt) -> None:
        self._push(attempt.index)

    async def _retry_later(self, index: int, delay: float) -> None:
        """Make the job ready again after ``delay``: it holds no slot meanwhile."""
        await anyio.sleep(delay)
        self._push(index)
        self._spawn()

    def _restore_working_directory(self) -> None:
        """An action that changed the working directory does not change it for the
        rest of the run: relative paths (the report's, say) resolve as they did
        when the run started."""
        if self._cwd is not None and _working_directory() != self._cwd:
            with contextlib.suppress(OSError):
                os.chdir(self._cwd)

    # --- results -----------------------------------------------------------------------

    def _describe(self, index: int, error: BaseException) -> dict[str, str]:
        """The report's error, naming the input as the config wrote it."""
        job = self._jobs[index]
        described = describe_error(error)
        described["message"] = described["message"].replace(str(job.path), job.input)
        return described

    def _fail_for_good(self, index: int, error: BaseException, ended: float | None = None) -> None:
        self._finish(index, "failed", error=self._describe(index, error), ended=ended)

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
        self._record(index, status, result, error, reused, ended)
        released = self._tracker.end(index, succeeded=status == "succeeded")
        for ready in released.ready:
            self._push(ready)
        for skipped, cause in released.skipped:
            cause_result = self._results[cause]
            assert cause_result is not None
            why = DependencyFailed(dependency=self._jobs[cause].name, status=cause_result.status)
            self._record(skipped, "skipped", None, describe_error(why))
        if status == "failed":
            self._count_failure(index)
        if self._finished == len(self._jobs):
            assert self._group is not None
            self._group.cancel_scope.cancel()  # ends the stop watcher and retry timers
        self._spawn()

    def _count_failure(self, index: int) -> None:
        """Halt once ``max_failures`` jobs have failed, naming the first of them."""
        self._failures += 1
        if self.first_failure is None:
            self.first_failure = self._jobs[index].name
        limit = self._settings.max_failures
        if limit is not None and self._failures >= limit and self._finished < len(self._jobs):
            count = "1 failure" if self._failures == 1 else f"{self._failures} failures"
            self._halt(f"the run halted after {count} (first: {self.first_failure!r})")

    async def _halt_when_set(self, stop: anyio.Event) -> None:
        await stop.wait()
        self._halt("the run was interrupted")

    def _halt(self, reason: str) -> None:
        if self.halt_reason is None:
            self.halt_reason = reason
            assert self._group is not None
            self._group.cancel_scope.cancel()

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
        duration = started = None
        if first_start is not None:
            duration = round((end - first_start) * 1000, 3)
            started = round(max(first_start - self._began, 0.0) * 1000, 3)
        outcome = reused or JobResult(
            name=job.name,
            action=job.action,
            input=job.input,
            status=status,
            result=result,
            error=error,
            duration_ms=duration,
            attempts=self._attempts[index],
            started_ms=started,
        )
        self._results[index] = outcome
        self._finished += 1
        if self._journal is not None:
            try:
                self._journal.record(outcome)
            except Exception:  # noqa: BLE001 - the run's bookkeeping must never stop half-way
                # The journal reports its own failures when it is closed; a run
                # that cannot journal goes on, as one that cannot show progress does.
                self._journal = None
        self._listeners.tell("job_done", outcome)

    def _cancel_unfinished(self) -> None:
        """After a halt: every job without a result (running, waiting for a retry,
        or never started) is ``cancelled``."""
        if self._finished == len(self._jobs):
            return
        error = self._cancelled()
        for index, outcome in enumerate(self._results):
            if outcome is None:
                self._record(index, "cancelled", None, dict(error))

    def _cancelled(self) -> dict[str, str]:
        return describe_error(Cancelled(reason=self.halt_reason or "the run was stopped"))


def _working_directory() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # it was removed
        return None
