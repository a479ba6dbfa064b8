"""The scheduler of one run: the async driver around the run's state.

What the run knows and decides (results, attempts, retries, halting, dependencies,
slots and named limits, reuse) is the pure
:class:`~asyncbatch.engine._state.RunState`'s; when a start may happen is the
:class:`~asyncbatch.engine._throttle.Throttle`'s; how an attempt runs is the
executor's business (:mod:`asyncbatch.engine.executors`). Here: the worker tasks
(each runs one job at a time, in as many of the run's slots as the job takes),
handing attempts to the executor, retry timers, the journal, the listeners and the
working directory.

Whatever a job's action does, the run's bookkeeping holds: every job ends exactly
once; a result is checked and kept as a plain JSON copy; an action that may change
the working directory has it changed back when its attempt ends; a journal that
fails to record is dropped, and the jobs go on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from asyncbatch.engine._batch import Accept, More
from asyncbatch.engine._cwd import WorkingDirectory
from asyncbatch.engine._hooks import Listeners, Recorder, RunListener
from asyncbatch.engine._limits import SlotNumbers
from asyncbatch.engine._results import checked_result, left_resources, with_details
from asyncbatch.engine._settings import Settings
from asyncbatch.engine._state import Retry, RunState
from asyncbatch.engine._throttle import Throttle
from asyncbatch.engine.executors import Attempt, Executor, is_cancellation, job_route
from asyncbatch.errors import UnknownAction, describe_error
from asyncbatch.model import JobResult, Resources, Status

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from asyncbatch.config import BatchConfig, Job
    from asyncbatch.registry import Streams

    OpenStreams = Callable[[Job], Streams]
    """Makes the streams of each attempt of an awaited action (the display's)."""


class Scheduler:
    """Dependency-aware dispatch of jobs to a fixed pool of workers (the slots)."""

    def __init__(
        self,
        config: BatchConfig,
        settings: Settings,
        executor: Executor,
        journal: Recorder | None,
        listeners: Sequence[RunListener],
        throttle: Throttle | None = None,
        order: Sequence[int] | None = None,
        streams: OpenStreams | None = None,
    ) -> None:
        self._jobs = config.jobs
        self._streams = streams
        self._running: dict[int, Attempt] = {}  # started attempts not yet ended
        self._settings = settings
        self._executor = executor
        self._journal = journal
        self._listeners = Listeners(listeners)
        self._throttle = throttle
        self.state = RunState(config.jobs, config.limits, settings, time.perf_counter(), order)
        self.slots = 1  # workers at most: min(max_concurrency, jobs)
        self._workers = 0  # started and not ended
        self._busy = 0  # workers running an attempt
        self._numbers = SlotNumbers()
        self._spawning = False  # a worker was started and has not run yet
        self._held: str | None = None  # why starts are held back, as listeners were told
        self._timers: dict[int, anyio.CancelScope] = {}  # retry timers, by job
        self._group: TaskGroup | None = None
        self._cwd = WorkingDirectory()

    @property
    def halt_reason(self) -> str | None:
        return self.state.halt_reason

    @property
    def first_failure(self) -> str | None:
        return self.state.first_failure

    def results(self) -> list[JobResult]:
        return self.state.final()

    async def run(self, limit: int, stop: anyio.Event | None) -> None:
        self.state.began = time.perf_counter()
        self.slots = min(limit, len(self._jobs))
        async with anyio.create_task_group() as group:
            self._group = group
            if not self._jobs:
                group.cancel_scope.cancel()
            if stop is not None:
                group.start_soon(self._halt_when_set, stop)
            self._spawn()
        self._cwd.restore()
        cancelled = self.state.cancel_unfinished(time.perf_counter())
        if self._running:  # stopped where they ran: what their programs printed
            index = {job.name: i for i, job in enumerate(self._jobs)}
            for result in cancelled:
                attempt = self._running.get(index[result.name])
                if attempt is not None and result.error is not None:
                    result.error = with_details(result.error, attempt)
                    result.resources = left_resources(attempt)
        self._tell_done(cancelled)

    # --- slots -------------------------------------------------------------------------

    def _spawn(self) -> None:
        """Start one more worker when a ready job may be waiting for one.

        Workers start one at a time, as jobs become ready, and end when they find
        nothing to run: never more than ``max_concurrency``, never more than the jobs
        that can run. The new worker runs once the one that started it has handed
        its attempt to the executor, which may have taken more ready jobs into the
        same slot (a batch of small files) by then: what is left decides whether the
        new worker starts a third, so a large ``max_concurrency`` costs nothing
        while batches absorb the ready jobs."""
        if (
            self._spawning
            or self.state.waiting == 0
            or self._workers >= self.slots
            or self.state.ready.free() == 0
            or self.halt_reason is not None
            or self._group is None
        ):
            return
        self._spawning = True
        self._workers += 1
        self._group.start_soon(self._worker)

    async def _worker(self) -> None:
        """Ready jobs one after another, each in the slots it takes, until none is
        left for this worker."""
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
                if self._throttle is not None:
                    await self._wait_for_throttle(self._throttle)
                taken = self._take()
                if taken is None:
                    return
                self._spawn()
                await self._run_attempt(*taken)
        finally:
            self._workers -= 1

    async def _wait_for_throttle(self, throttle: Throttle) -> None:
        """Wait while the throttle holds starts back (the listeners hear why)."""
        while True:
            wait, why = 0.0, None
            if self.state.waiting and self.halt_reason is None:
                wait, why = throttle.hold(time.perf_counter(), self._busy)
            if why != self._held:
                self._held = why
                self._listeners.tell("starts_held", why)
            if wait <= 0:
                return
            await anyio.sleep(wait)

    async def _run_attempt(self, attempt: Attempt, numbers: list[int]) -> None:
        """Hand ``attempt`` (and its slots) to the executor until it is done with them."""
        more = More(self, attempt)
        self._busy += 1
        try:
            await self._executor.run(attempt, more)
            if attempt.state == "taken":
                raise RuntimeError("the executor returned without running the job")
        except BaseException as exc:  # an executor's bug fails its jobs, not the run
            if is_cancellation(exc):
                raise
            attempt.fail(exc)
            for each in more.taken:
                if each.state == "started":
                    each.fail(exc)
        finally:
            self._busy -= 1
            self.state.release(attempt.index)
            self._numbers.give_back(numbers)
            for each in (attempt, *more.taken):
                each.give_back()
            self._spawn()
            self._end_if_idle()

    def _take(self) -> tuple[Attempt, list[int]] | None:
        """The first ready job that can run now, as an attempt holding its slots
        (their numbers); jobs settled without running (reused, skipped, failed
        before starting) are recorded on the way."""
        while (index := self.state.take()) is not None:
            if not self._settle(index):
                numbers = self._numbers.take(self._jobs[index].slots)
                if self._throttle is not None:
                    self._throttle.started(time.perf_counter())
                return self._attempt(index, numbers[0]), numbers
            self.state.release(index)
        return None

    def workers(self) -> int:
        """Slots running now."""
        return self._workers

    def waiting(self) -> int:
        """Ready jobs that need one slot and no named limit (none while starts are
        spaced by ``--delay``: each must start on its own)."""
        if self._throttle is not None and self._throttle.delay:
            return 0
        return self.state.ready.count_unlimited()

    def take_more(self, accept: Accept, most: int, slot: int) -> list[Attempt]:
        """Up to ``most`` ready jobs that need no named limit, in config order while
        ``accept`` holds, as attempts in ``slot``."""
        taken = self.state.take_more(accept, most)
        return [self._attempt(i, slot) for i in taken if not self._settle(i)]

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
            attempt = self._attempt(index, 0)
            attempt.start()
            attempt.fail(error)  # permanent: see RunState.attempt_failed
            return True
        if self._journal is not None and self.state.attempts[index] == 0:
            reused = self._journal.reusable(job)  # also notes the job's fingerprint
            if reused is not None and self.state.may_reuse(index):
                self._finish(index, "succeeded", reused=reused)
                return True
        return False

    def _attempt(self, index: int, slot: int) -> Attempt:
        job = self._jobs[index]
        settings = self._settings
        halt = settings.halt
        streams = None
        if self._streams is not None and job.spec is not None and job_route(job) == "call":
            streams = self._streams(job)
        return Attempt(
            self,
            index,
            job,
            timeout=job.timeout if job.timeout is not None else settings.timeout,
            root=settings.root,
            failure_may_halt=halt is not None and halt.on == "fail",
            slot=slot,
            successes_to_halt=self.state.successes_to_halt(),
            streams=streams,
        )

    # --- what attempts report (the AttemptOwner protocol) -----------------------------

    def attempt_started(self, attempt: Attempt, at: float | None) -> None:
        number = self.state.attempt_started(
            attempt.index, at if at is not None else time.perf_counter()
        )
        self._running[attempt.index] = attempt
        self._listeners.tell("job_started", attempt.job, number)

    def attempt_ended(
        self,
        attempt: Attempt,
        result: Any,
        error: BaseException | None,
        at: float | None,
        resources: Resources | None,
    ) -> None:
        job = attempt.job
        if job.spec is None or job.spec.may_chdir:
            self._cwd.restore()
        index = attempt.index
        self._running.pop(index, None)
        if error is None:
            result, error = checked_result(result)
        if error is not None and resources is None:
            resources = left_resources(attempt)
        if error is None:
            self._finish(index, "succeeded", result=result, at=at, resources=resources)
            return
        self._listeners.tell("job_attempt_failed", job, self.state.attempts[index], error)
        after = self.state.attempt_failed(index, error)
        if after == "cancelled":
            # Failed while the run is being halted (cancelled, or about to be):
            # cancelled, so that the report holds at most the halt's count of failures.
            why = with_details(self.state.cancelled(), attempt, error)
            cancelled = self.state.record(
                index, "cancelled", _now(at), error=why, resources=resources
            )
            self._tell_done([cancelled])
        elif after == "failed":
            described = with_details(self.state.describe(index, error), attempt)
            self._finish(index, "failed", error=described, at=at, resources=resources)
        else:
            assert isinstance(after, Retry)
            self._listeners.tell("job_retrying", job, after.error, after.delay)
            assert self._group is not None
            self._group.start_soon(self._retry_later, index, after.delay)

    def attempt_given_back(self, attempt: Attempt) -> None:
        self.state.push(attempt.index)

    def halting(self) -> bool:
        return self.halt_reason is not None

    async def _retry_later(self, index: int, delay: float) -> None:
        """Make the job ready again after ``delay``: it holds no slot meanwhile. A
        halt ``soon`` ends the wait (the job is cancelled)."""
        with anyio.CancelScope() as scope:
            self._timers[index] = scope
            await anyio.sleep(delay)
        self._timers.pop(index, None)
        if self.state.retry_due(index):
            self._spawn()

    # --- results -----------------------------------------------------------------------

    def _finish(
        self,
        index: int,
        status: Status,
        *,
        at: float | None = None,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
        reused: JobResult | None = None,
        resources: Resources | None = None,
    ) -> None:
        """Record a final result (and the skips it causes), then act on it: halt,
        end the run when every job has a result, start workers for released jobs."""
        state = self.state
        running = state.halt_reason is None
        ended = at if at is not None else time.perf_counter()
        self._tell_done(
            state.finish(
                index, status, ended, result=result, error=error, reused=reused, resources=resources
            )
        )
        assert self._group is not None
        if state.finished == len(self._jobs) or (running and state.halt_when == "now"):
            self._group.cancel_scope.cancel()  # ends the stop watcher and retry timers
        elif running and state.halt_when == "soon":
            self._tell_done(state.cancel_retrying(ended))
            for timer in list(self._timers.values()):
                timer.cancel()
        self._spawn()
        self._end_if_idle()

    def _end_if_idle(self) -> None:
        """After a halt ``soon``, the run ends once nothing runs any more."""
        if self.state.halt_when == "soon" and self._busy == 0 and self._group is not None:
            self._group.cancel_scope.cancel()

    def _tell_done(self, results: list[JobResult]) -> None:
        """Journal each result, then tell the listeners."""
        for outcome in results:
            if self._journal is not None:
                try:
                    self._journal.record(outcome)
                except Exception:  # noqa: BLE001 - the run's bookkeeping must never stop half-way
                    # The journal reports its own failures when it is closed; a run
                    # that cannot journal goes on, as one that cannot show progress does.
                    self._journal = None
            self._listeners.tell("job_done", outcome)

    async def _halt_when_set(self, stop: anyio.Event) -> None:
        await stop.wait()
        if self.state.halt("the run was interrupted"):
            assert self._group is not None
            self._group.cancel_scope.cancel()


def _now(at: float | None) -> float:
    return at if at is not None else time.perf_counter()
