"""Where and how an attempt's work runs: the executor seam of the scheduler.

The scheduler (dependencies, limits, slots, retries, halting, the journal, the report)
decides *what* runs; it hands each slot's work to an :class:`Executor` as an
:class:`Attempt`, and the executor decides *how*: the scheduler knows nothing of
threads, processes, batches or clusters. An executor may take more ready attempts
into the same slot (``more``), which is how many small files share one thread hop.

:func:`job_route` gives each job its route once (:func:`asyncbatch.kernel.route_of`),
and every executor follows it. :class:`LocalExecutor` runs everything in this process:

- ``"call"`` (custom actions, ``command``): the action awaited in the event loop, its
  declared outputs guarded (:func:`asyncbatch.files.calls.call_action`);
- ``"process"`` (a kernel that may never return, a regex that may backtrack): a
  worker process a timeout can kill;
- ``"scan"``: small files many to a thread hop (:mod:`asyncbatch.files.batch`), told
  through the batch protocol (:mod:`._batch`); a big file where
  :func:`asyncbatch.kernel.big_file_route` says: a daemon thread of its own, a worker
  process, or streamed with aiofiles.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from asyncbatch.engine._batch import BatchReporter, More
from asyncbatch.errors import Timeout
from asyncbatch.files.calls import call_action
from asyncbatch.files.scan import Scanned
from asyncbatch.files.stream import plain_params, scan_in_process, scan_in_thread, stream_file
from asyncbatch.kernel import DEFAULT_TUNING, Kernel, Route, Tuning, big_file_route, route_of
from asyncbatch.model import Resources, resources_of
from asyncbatch.registry import JobContext, Streams

if TYPE_CHECKING:
    from asyncbatch.config import Job


class AttemptOwner(Protocol):
    """The scheduler, as an attempt reports to it."""

    def attempt_started(self, attempt: Attempt, at: float | None) -> None: ...

    def attempt_ended(
        self,
        attempt: Attempt,
        result: Any,
        error: BaseException | None,
        at: float | None,
        resources: Resources | None,
    ) -> None: ...

    def attempt_given_back(self, attempt: Attempt) -> None: ...

    def halting(self) -> bool: ...


class Attempt:
    """One attempt of one job, handed to an executor.

    The executor calls :meth:`start` when the work begins (at most once; a second
    call is ignored), then exactly one of :meth:`succeed` or :meth:`fail`. An
    attempt it took but will not start goes back with :meth:`give_back`; one left
    untouched when :meth:`Executor.run` returns goes back too. Times (``at``) are
    ``time.perf_counter()`` values; None means now. ``slot`` is the slot it runs in
    (1 to the run's concurrency: ``{%}``)."""

    __slots__ = (
        "_owner",
        "failure_may_halt",
        "index",
        "job",
        "root",
        "slot",
        "state",
        "streams",
        "successes_to_halt",
        "timeout",
    )

    def __init__(
        self,
        owner: AttemptOwner,
        index: int,
        job: Job,
        *,
        timeout: float | None,
        root: str | None,
        failure_may_halt: bool,
        slot: int = 1,
        successes_to_halt: int | None = None,
        streams: Streams | None = None,
    ) -> None:
        self._owner = owner
        self.index = index
        self.job = job
        self.timeout = timeout
        self.root = root
        self.slot = slot
        self.failure_may_halt = failure_may_halt
        """A failure may halt the run (``--fail-fast``, ``--halt now,fail=N``): work
        batched with this attempt should not start after it fails."""
        self.successes_to_halt = successes_to_halt
        """Successes from now on that halt the run (``--halt now,success=N``), if
        any: work batched with this attempt should not start after that many."""
        self.state = "taken"
        self.streams = streams
        """Where the attempt's program (if it runs one) tells what it prints and how
        it ended; made when the action is first given its context."""

    def start(self, at: float | None = None) -> None:
        if self.state == "taken":
            self.state = "started"
            self._owner.attempt_started(self, at)

    @property
    def context(self) -> JobContext:
        """The job as its action sees it, in this attempt's slot, with the attempt's
        :attr:`streams`."""
        if self.streams is None:
            self.streams = Streams()
        return self.job.context(self.slot, self.streams)

    def succeed(
        self, result: Any, at: float | None = None, resources: Resources | None = None
    ) -> None:
        self._end(result, None, at, resources)

    def fail(
        self, error: BaseException, at: float | None = None, resources: Resources | None = None
    ) -> None:
        self._end(None, error, at, resources)

    def halting(self) -> bool:
        """Whether the run is halting: work batched with this attempt should not
        start (safe to ask from any thread)."""
        return self._owner.halting()

    def give_back(self) -> None:
        if self.state == "taken":
            self.state = "given back"
            self._owner.attempt_given_back(self)

    def _end(
        self,
        result: Any,
        error: BaseException | None,
        at: float | None,
        resources: Resources | None,
    ) -> None:
        self.start(at)
        if self.state == "started":
            self.state = "ended"
            self._owner.attempt_ended(self, result, error, at, resources)


TakeMore = More
"""``more(accept, most)``: up to ``most`` more ready attempts, in config order while
``accept(job)`` holds, to run in the same slot as the attempt at hand (a fair share
of the ready jobs at most: :class:`asyncbatch.engine._batch.More`)."""


class Executor(Protocol):
    """Runs attempts; see the module doc. Cancellation of :meth:`run` (a halt, a
    signal) must return promptly."""

    async def run(self, attempt: Attempt, more: TakeMore) -> None: ...


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc``, caught in the current task, is that task being cancelled (a
    halt, a signal, a timeout, an enclosing cancel scope), which must propagate.
    A ``CancelledError`` raised while nothing cancels the task is an action's own
    (it awaited a task that was cancelled, say): a failure like any other."""
    return (
        isinstance(exc, anyio.get_cancelled_exc_class())
        and anyio.get_current_task().has_pending_cancellation()
    )


async def run_timed(attempt: Attempt, call: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Start ``attempt``, await ``call()`` under the attempt's timeout and report the
    outcome: the way an executor runs one attempt that it awaits here. Whatever
    ``call()`` raises is the attempt's error (``SystemExit``, ``KeyboardInterrupt``
    and a stray ``CancelledError`` too: one action never stops the run); only the
    cancellation of this task propagates (:func:`is_cancellation`). The child of an
    action that forked exits as soon as ``call()`` ends in it."""

    async def unmeasured() -> Scanned:
        return await call(), Resources()

    await run_measured(attempt, unmeasured)


async def run_measured(attempt: Attempt, call: Callable[[], Awaitable[Scanned]]) -> None:
    """:func:`run_timed` for a call that also says what it used (a scan, an awaited
    action's :class:`~asyncbatch.model.Measured`); an exception may say it too, as
    its ``resources`` attribute."""
    pid = os.getpid()
    cancelled = anyio.get_cancelled_exc_class()
    attempt.start()
    try:
        with anyio.move_on_after(attempt.timeout) as scope:
            try:
                result, used = await call()
            except BaseException as exc:
                _leave_if_forked(pid, exc)
                raise
            _leave_if_forked(pid, None)
        if scope.cancelled_caught:
            raise Timeout(seconds=attempt.timeout or 0)
    except BaseException as exc:  # every action failure becomes the attempt's error
        if isinstance(exc, cancelled) and is_cancellation(exc):
            raise
        attempt.fail(exc, None, resources_of(exc))
        return
    attempt.succeed(result, None, used)


def _leave_if_forked(pid: int, error: BaseException | None) -> None:
    """An action that forked returns (or raises) in the child too, where the event
    loop is not its to run: the child must not run the batch on (its jobs, journal
    and report are the parent's), so it exits here at once, before anything else
    runs, with the code ``sys.exit`` asked for (0 after a return, 1 after any other
    exception)."""
    if os.getpid() == pid:
        return
    code = 0 if error is None else 1
    if isinstance(error, SystemExit):
        asked = error.code
        code = 0 if asked is None else asked if isinstance(asked, int) else 1
    os._exit(code)


class LocalExecutor:
    """Runs actions in this process (the default); see the module doc for its routes.
    ``tuning`` sets the chunk, batch and threshold sizes; ``cpus`` the cores it
    counts on (default: all of them)."""

    def __init__(self, tuning: Tuning = DEFAULT_TUNING, *, cpus: int | None = None) -> None:
        self.tuning = tuning
        self._cpus = cpus if cpus is not None else (os.cpu_count() or 1)

    async def run(self, attempt: Attempt, more: TakeMore) -> None:
        job = attempt.job
        route = job_route(job)
        if route == "call":
            await run_measured(attempt, awaited_call(attempt))
        elif route == "process":
            await run_measured(attempt, self._scan(scan_in_process, attempt))
        else:
            batch = [attempt, *more(scans, self.tuning.batch_jobs - 1)]
            await self._run_small_files(batch)

    async def _run_small_files(self, attempts: list[Attempt]) -> None:
        """Run ``attempts`` in one thread hop; a file too big for it is scanned
        after (the attempts behind it go back to the queue for other slots)."""
        from asyncbatch.files.batch import SmallFiles, SmallJob

        jobs = [
            SmallJob(kernel_of(a.job), str(a.job.path), plain_params(a.job.params), a.timeout)
            for a in attempts
        ]
        first = attempts[0]
        reporter = BatchReporter(attempts)
        batch = SmallFiles(
            jobs,
            self.tuning,
            first.root,
            stop_on_error=first.failure_may_halt,
            stop_after_successes=first.successes_to_halt,
            may_start=lambda: not first.halting(),
            on_started=reporter.started,
            on_done=reporter.done,
        )
        try:
            await batch.run()
        finally:
            reporter.ended(batch.end)
        if batch.end.large is not None:
            position, size = batch.end.large
            large = attempts[position]
            kernel = kernel_of(large.job)
            route = big_file_route(kernel, size, self.tuning, self._cpus)
            driver = {"thread": scan_in_thread, "process": scan_in_process, "stream": stream_file}
            await run_measured(large, self._scan(driver[route], large))

    def _scan(
        self, driver: Callable[..., Awaitable[Scanned]], attempt: Attempt
    ) -> Callable[[], Awaitable[Scanned]]:
        job = attempt.job
        plain = plain_params(job.params)
        return functools.partial(driver, kernel_of(job), job.path, plain, self.tuning, attempt.root)


def job_route(job: Job) -> Route:
    """The route of ``job`` (:func:`asyncbatch.kernel.route_of`), computed once per
    job and followed by every executor."""
    if job.route is None:
        spec = job.spec
        assert spec is not None
        job.route = route_of(spec.kernel, lambda: plain_params(job.params))
    return job.route


def scans(job: Job) -> bool:
    """Whether ``job`` is a kernel's scan in this process: a small-file batch's kind."""
    return job_route(job) == "scan"


def awaited_call(attempt: Attempt) -> Callable[[], Awaitable[Scanned]]:
    """The ``"call"`` route's work for ``attempt``: its action, its outputs guarded;
    its result and what it used."""
    job = attempt.job
    assert job.spec is not None
    return functools.partial(call_action, job.spec, job.path, job.params, attempt.context)


def kernel_of(job: Job) -> Kernel:
    spec = job.spec
    assert spec is not None
    assert spec.kernel is not None
    return spec.kernel
