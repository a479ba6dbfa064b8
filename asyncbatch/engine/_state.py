"""What a run knows and decides, with no event loop, no clock and no I/O of its own:
events in (an attempt started, an attempt ended, a job settled without one), decisions
out (retry after a delay, fail for good, cancel; halt; which jobs are now ready and
may start in the slots free, which are skipped, which may be reused). The scheduler
(:mod:`._scheduler`) does the waiting and the calling around it, as distributed's
``Worker`` does around its ``WorkerState``; tests drive this directly.

Whatever happens, the bookkeeping holds: every job gets exactly one result; after a
halt ``now``, a job whose attempt fails is ``cancelled`` (so the report holds at
most the halt's count of failed jobs); after a halt ``soon``, nothing new starts, a
failure is final and jobs waiting to retry are ``cancelled``; a job whose
dependency did not succeed is ``skipped``, naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from asyncbatch.engine._limits import ReadyJobs, needs_of
from asyncbatch.engine._settings import Settings
from asyncbatch.engine._tracker import DependencyTracker
from asyncbatch.errors import Cancelled, DependencyFailed, describe_error, error_matches
from asyncbatch.model import JobResult, Resources, Status

if TYPE_CHECKING:
    from asyncbatch.config import Job
    from asyncbatch.controls import Halt


@dataclass(frozen=True, slots=True)
class Retry:
    """Run the job again after ``delay`` seconds; ``error`` is how the report would
    describe the failure."""

    delay: float
    error: dict[str, str]


AfterFailure = Retry | Literal["failed", "cancelled"]
"""What a failed attempt leads to."""


class RunState:
    """The state of one run over ``jobs`` (see the module doc), ``limits`` naming
    its pools besides its own ``settings.concurrency`` slots. Times are the
    caller's clock (``time.perf_counter()`` values); ``began`` is the run's start.
    Ready jobs are taken in config order, or in ``order`` (the job indices, first
    to start first: see :func:`history_order`)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        limits: dict[str, int],
        settings: Settings,
        began: float,
        order: Sequence[int] | None = None,
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
        self.successes = 0
        """Jobs that succeeded having run in this run (reused ones are not counted)."""
        self.first_failure: str | None = None
        self.halt_reason: str | None = None
        self.halt_when: Literal["now", "soon"] | None = None
        self.halted_by: Halt | None = None
        """The ``--halt`` rule that stopped the run (None: none did)."""
        halt = settings.halt
        self._halt_at = halt.threshold(total) if halt is not None else None
        self.retrying: set[int] = set()
        """Jobs waiting for their next attempt."""
        self._tracker = DependencyTracker.grouped(
            [job.name for job in jobs],
            [job.group for job in jobs],
            [job.depends_on for job in jobs],
        )
        needs = _needs(jobs, limits)
        self._order = order
        self._rank: list[int] | None = None
        if order is not None:  # the queue holds ranks; a job's rank is its place in order
            self._rank = [0] * total
            for rank, index in enumerate(order):
                self._rank[index] = rank
            needs = [needs[index] for index in order]
        self.ready = ReadyJobs([settings.concurrency, *limits.values()], needs)
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
        self.ready.push(index if self._rank is None else self._rank[index])
        self.waiting += 1

    def take(self) -> int | None:
        """The first ready job that can run now, its slots taken."""
        if self.halt_reason is not None:
            return None
        taken = self.ready.take()
        if taken is None:
            return None
        self.waiting -= 1
        return taken if self._order is None else self._order[taken]

    def release(self, index: int) -> None:
        """Give back the slots job ``index`` took."""
        self.ready.release(index if self._rank is None else self._rank[index])

    def take_more(self, accept: Callable[[Job], bool], most: int) -> list[int]:
        """Up to ``most`` more ready jobs that take one of the run's slots and no
        named limit and can start (no error known before starting), in config order
        while ``accept`` holds."""
        if self.halt_reason is not None:
            return []
        jobs, order = self.jobs, self._order
        if order is None:
            taken = self.ready.take_unlimited(
                lambda i: jobs[i].start_error is None and accept(jobs[i]), most
            )
        else:
            ranks = self.ready.take_unlimited(
                lambda r: jobs[order[r]].start_error is None and accept(jobs[order[r]]), most
            )
            taken = [order[rank] for rank in ranks]
        self.waiting -= len(taken)
        return taken

    def may_reuse(self, index: int) -> bool:
        """Whether job ``index`` may be reused from an earlier run: only when nothing
        it depends on ran in this one (as make rebuilds what depends on a rebuilt
        target)."""
        return self._tracker.dependency_ran(index) is None

    def successes_to_halt(self) -> int | None:
        """Successes that would halt the run from now (None: no halt on success)."""
        halt, at = self.settings.halt, self._halt_at
        if halt is None or at is None or halt.on != "success":
            return None
        return max(1, at - self.successes)

    # --- attempts ----------------------------------------------------------------------

    def attempt_started(self, index: int, at: float) -> int:
        """An attempt of job ``index`` started at ``at``; its number (from 1)."""
        if self._first_start[index] is None:
            self._first_start[index] = at
        self.attempts[index] += 1
        return self.attempts[index]

    def attempt_failed(self, index: int, error: BaseException) -> AfterFailure:
        """What a failed attempt leads to: ``"cancelled"`` while the run halts now;
        ``"failed"`` once it halts soon, when the job's retries are spent, when its
        ``retry_on`` does not name the error, or when the error was known before it
        started (nothing would change); else a :class:`Retry` (the job waits in
        :attr:`retrying` until :meth:`retry_due`)."""
        if self.halt_when == "now":
            return "cancelled"
        job = self.jobs[index]
        retries = job.retries if job.retries is not None else self.settings.retries
        if self.halt_when == "soon" or self.attempts[index] > retries or error is job.start_error:
            return "failed"
        retry_on = job.retry_on
        if retry_on is not None and not error_matches(error, retry_on.types, retry_on.exit_codes):
            return "failed"
        first = job.retry_delay if job.retry_delay is not None else self.settings.retry_delay
        self.retrying.add(index)
        delay = self.settings.backoff.delay(self.attempts[index], first)
        return Retry(delay, self.describe(index, error))

    def retry_due(self, index: int) -> bool:
        """Job ``index`` waited for its next attempt: ready again, unless the run
        ended its wait (a halt); whether it is."""
        if index not in self.retrying:
            return False
        self.retrying.discard(index)
        self.push(index)
        return True

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
        skipped, a failure or a success counted (and the run halted once the halt
        rule's count is reached). Returns the results recorded, the job's first."""
        recorded = [
            self.record(
                index, status, at, result=result, error=error, reused=reused, resources=resources
            )
        ]
        succeeded = status == "succeeded"
        released = self._tracker.end(index, succeeded=succeeded, ran=reused is None)
        for ready in released.ready:
            self.push(ready)
        for skipped, cause in released.skipped:
            cause_result = self.results[cause]
            assert cause_result is not None
            why = DependencyFailed(dependency=self.jobs[cause].name, status=cause_result.status)
            recorded.append(self.record(skipped, "skipped", at, error=describe_error(why)))
        if status == "failed":
            self._count(index, "fail")
        elif succeeded and reused is None:
            self._count(index, "success")
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
        at ``at``, its last attempt having used ``resources`` (unknown: all None;
        a job that never started used none); its dependents are not told (see
        :meth:`finish`)."""
        job = self.jobs[index]
        first_start = self._first_start[index]
        duration = started = None
        if first_start is not None:
            duration = round((at - first_start) * 1000, 3)
            started = round(max(first_start - self.began, 0.0) * 1000, 3)
            if resources is None:
                resources = Resources()
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

    def _count(self, index: int, on: Literal["fail", "success"]) -> None:
        """Count a failure or a success (a job that ran), and halt once the halt
        rule's count of them is reached."""
        if on == "fail":
            self.failures += 1
            if self.first_failure is None:
                self.first_failure = self.jobs[index].name
        else:
            self.successes += 1
        halt, at = self.settings.halt, self._halt_at
        if halt is None or at is None or halt.on != on or self.done:
            return
        count = self.failures if on == "fail" else self.successes
        if count < at:
            return
        if on == "fail":
            failures = "1 failure" if count == 1 else f"{count} failures"
            reason = f"the run halted after {failures} (first: {self.first_failure!r})"
        else:
            reason = f"halted by --halt {halt}"
        if self.halt(reason, when=halt.when):
            self.halted_by = halt

    def halt(self, reason: str, *, when: Literal["now", "soon"] = "now") -> bool:
        """Halt the run (the first reason given stays): ``now`` cancels what runs,
        ``soon`` lets it finish. A halt ``now`` after a halt ``soon`` makes it
        ``now``. Whether the run's running jobs are to be cancelled by this call."""
        if self.halt_reason is None:
            self.halt_reason, self.halt_when = reason, when
            return True
        if when == "now" and self.halt_when == "soon":
            self.halt_when = "now"
            return True
        return False

    @property
    def halted_on_success(self) -> bool:
        """The run was halted by a rule on successes: the jobs it cancelled do not
        make the run fail."""
        return self.halted_by is not None and self.halted_by.on == "success"

    def cancelled(self) -> dict[str, str]:
        """The error of a job cancelled by the halt."""
        return describe_error(Cancelled(reason=self.halt_reason or "the run was stopped"))

    def cancel_retrying(self, at: float) -> list[JobResult]:
        """After a halt ``soon``: the jobs waiting for their next attempt are
        ``cancelled`` (no new attempt starts)."""
        waiting, self.retrying = sorted(self.retrying), set()
        error = self.cancelled()
        return [self.record(index, "cancelled", at, error=dict(error)) for index in waiting]

    def cancel_unfinished(self, at: float) -> list[JobResult]:
        """After a halt: every job without a result (running, waiting for a retry,
        or never started) is ``cancelled``."""
        if self.done:
            return []
        self.retrying.clear()
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


def history_order(jobs: Sequence[Job], durations: Mapping[str, float]) -> list[int]:
    """The job indices longest first by their recorded ``durations`` (milliseconds,
    by job name), then the jobs with none, in config order: no slow job starts
    last (``--order history``)."""
    known = [
        (-durations[job.name], index) for index, job in enumerate(jobs) if job.name in durations
    ]
    known.sort()
    first = [index for _, index in known]
    return first + [index for index, job in enumerate(jobs) if job.name not in durations]


def _needs(jobs: Sequence[Job], limits: dict[str, int]) -> list[Any]:
    """What each job takes of the run's slots and of the named pools (numbered from
    1 in ``limits``' order); jobs sharing their limits share one tuple."""
    pools = {name: number for number, name in enumerate(limits, start=1)}
    made: dict[tuple[int, int], Any] = {}
    found = []
    for job in jobs:
        key = (job.slots, id(job.limits))
        needs = made.get(key)
        if needs is None:
            needs = made[key] = needs_of(job.slots, job.limits, pools)
        found.append(needs)
    return found
