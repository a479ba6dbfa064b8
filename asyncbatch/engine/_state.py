"""What a run knows and decides, with no event loop, no clock and no I/O of its own:
events in (an attempt started, an attempt ended, a job settled without one), decisions
out (retry after a delay, fail for good, cancel; halt; which jobs are now ready, which
are skipped). The scheduler (:mod:`._scheduler`) does the waiting and the calling
around it, as distributed's ``Worker`` does around its ``WorkerState``; tests drive
this directly.

Whatever happens, the bookkeeping holds: every job gets exactly one result; after a
halt, a job whose attempt fails is ``cancelled`` (so the report holds at most
``max_failures`` failed jobs); a job whose dependency did not succeed is ``skipped``,
naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from asyncbatch.engine._limits import ReadyJobs
from asyncbatch.engine._settings import Settings
from asyncbatch.engine._tracker import DependencyTracker
from asyncbatch.errors import Cancelled, DependencyFailed, describe_error
from asyncbatch.model import JobResult, Resources, Status

if TYPE_CHECKING:
    from asyncbatch.config import Job


@dataclass(frozen=True, slots=True)
class Retry:
    """Run the job again after ``delay`` seconds; ``error`` is how the report would
    describe the failure."""

    delay: float
    error: dict[str, str]


AfterFailure = Retry | Literal["failed", "cancelled"]
"""What a failed attempt leads to."""


class RunState:
    """The state of one run over ``jobs`` (see the module doc). Times are the
    caller's clock (``time.perf_counter()`` values); ``began`` is the run's start."""

    def __init__(
        self, jobs: Sequence[Job], limits: dict[str, int], settings: Settings, began: float
    ) -> None:
        self.jobs = jobs
        self.settings = settings
        self.began = began
        total = len(jobs)
        self.results: list[JobResult | None] = [None] * total
        self.attempts = [0] * total
        self._first_start: list[float | None] = [None] * total
        self.finished = 0
        self.failures = 0
        self.first_failure: str | None = None
        self.halt_reason: str | None = None
        self._tracker = DependencyTracker.grouped(
            [job.name for job in jobs],
            [job.group for job in jobs],
            [job.depends_on for job in jobs],
        )
        self.ready = ReadyJobs(limits, [job.limits for job in jobs])
        self.waiting = 0
        """Jobs ready and not taken."""
        for index in self._tracker.initially_ready():
            self.push(index)

    @property
    def done(self) -> bool:
        return self.finished == len(self.jobs)

    # --- ready jobs ------------------------------------------------------------------

    def push(self, index: int) -> None:
        """Job ``index`` is ready to run."""
        self.ready.push(index)
        self.waiting += 1

    def take(self) -> int | None:
        """The first ready job that can run now, its named-limit slots taken."""
        if self.halt_reason is not None:
            return None
        index = self.ready.take()
        if index is not None:
            self.waiting -= 1
        return index

    def take_more(self, accept: Callable[[Job], bool], most: int) -> list[int]:
        """Up to ``most`` more ready jobs that need no named limit and can start (no
        error known before starting), in config order while ``accept`` holds."""
        jobs = self.jobs
        taken = self.ready.take_unlimited(
            lambda i: jobs[i].start_error is None and accept(jobs[i]), most
        )
        self.waiting -= len(taken)
        return taken

    # --- attempts ----------------------------------------------------------------------

    def attempt_started(self, index: int, at: float) -> int:
        """An attempt of job ``index`` started at ``at``; its number (from 1)."""
        if self._first_start[index] is None:
            self._first_start[index] = at
        self.attempts[index] += 1
        return self.attempts[index]

    def attempt_failed(self, index: int, error: BaseException) -> AfterFailure:
        """What a failed attempt leads to: ``"cancelled"`` while the run halts,
        ``"failed"`` when its retries are spent (or its error was known before it
        started: nothing would change), else a :class:`Retry`."""
        if self.halt_reason is not None:
            return "cancelled"
        job = self.jobs[index]
        retries = job.retries if job.retries is not None else self.settings.retries
        if self.attempts[index] > retries or error is job.start_error:
            return "failed"
        return Retry(self.settings.backoff.delay(self.attempts[index]), self.describe(index, error))

    def describe(self, index: int, error: BaseException) -> dict[str, str]:
        """The report's error, naming the input as the config wrote it."""
        job = self.jobs[index]
        described = describe_error(error)
        described["message"] = described["message"].replace(str(job.path), job.input)
        return described

    # --- results -----------------------------------------------------------------------

    def finish(
        self,
        index: int,
        status: Status,
        at: float,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
        reused: JobResult | None = None,
        resources: Resources | None = None,
    ) -> list[JobResult]:
        """Job ``index``'s final result: recorded, its dependents released (ready) or
        skipped, a failure counted (and the run halted once ``max_failures`` jobs
        have failed). Returns the results recorded, the job's first."""
        recorded = [
            self.record(
                index, status, at, result=result, error=error, reused=reused, resources=resources
            )
        ]
        released = self._tracker.end(index, succeeded=status == "succeeded")
        for ready in released.ready:
            self.push(ready)
        for skipped, cause in released.skipped:
            cause_result = self.results[cause]
            assert cause_result is not None
            why = DependencyFailed(dependency=self.jobs[cause].name, status=cause_result.status)
            recorded.append(self.record(skipped, "skipped", at, error=describe_error(why)))
        if status == "failed":
            self._count_failure(index)
        return recorded

    def record(
        self,
        index: int,
        status: Status,
        at: float,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
        reused: JobResult | None = None,
        resources: Resources | None = None,
    ) -> JobResult:
        """Job ``index``'s result (``reused``: one recorded by an earlier run), ended
        at ``at``, its last attempt having used ``resources``; its dependents are not
        told (see :meth:`finish`)."""
        job = self.jobs[index]
        first_start = self._first_start[index]
        duration = started = None
        if first_start is not None:
            duration = round((at - first_start) * 1000, 3)
            started = round(max(first_start - self.began, 0.0) * 1000, 3)
        outcome = reused or JobResult(
            name=job.name,
            action=job.action,
            input=job.input,
            status=status,
            result=result,
            error=error,
            duration_ms=duration,
            attempts=self.attempts[index],
            started_ms=started,
            resources=resources,
        )
        self.results[index] = outcome
        self.finished += 1
        return outcome

    def _count_failure(self, index: int) -> None:
        """Halt once ``max_failures`` jobs have failed, naming the first of them."""
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = self.jobs[index].name
        limit = self.settings.max_failures
        if limit is not None and self.failures >= limit and not self.done:
            count = "1 failure" if self.failures == 1 else f"{self.failures} failures"
            self.halt(f"the run halted after {count} (first: {self.first_failure!r})")

    def halt(self, reason: str) -> bool:
        """Halt the run (the first reason given stays); whether it was running."""
        if self.halt_reason is not None:
            return False
        self.halt_reason = reason
        return True

    def cancelled(self) -> dict[str, str]:
        """The error of a job cancelled by the halt."""
        return describe_error(Cancelled(reason=self.halt_reason or "the run was stopped"))

    def cancel_unfinished(self, at: float) -> list[JobResult]:
        """After a halt: every job without a result (running, waiting for a retry,
        or never started) is ``cancelled``."""
        if self.done:
            return []
        error = self.cancelled()
        return [
            self.record(index, "cancelled", at, error=dict(error))
            for index, outcome in enumerate(self.results)
            if outcome is None
        ]

    def final(self) -> list[JobResult]:
        """Every job's result, in config order (each job has one by now)."""
        done = [result for result in self.results if result is not None]
        assert len(done) == len(self.results), "every job ends with a result"
        return done
