"""Where and how an attempt's work runs: the executor seam of the scheduler.

The scheduler (dependencies, limits, slots, retries, halting, the journal, the report)
decides *what* runs; it hands each slot's work to an :class:`Executor` as an
:class:`Attempt`, and the executor decides *how*: the scheduler knows nothing of
threads, processes, batches or clusters. An executor may take more ready attempts
into the same slot (``more``), which is how many small files share one thread hop.

:class:`LocalExecutor` runs everything in this process and picks a route per job:

- a custom action (no kernel): its async function, awaited in the event loop;
- a kernel that may never return (a regex that may backtrack): a worker process a
  timeout can kill;
- any other kernel: small files many to a thread hop (:mod:`asyncbatch.files.batch`);
  a big file in a daemon thread of its own when its kernel releases the GIL
  (hashing: files hash on every core), in a worker process when it holds the GIL
  and the file is big enough to pay for one, else streamed with aiofiles.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from asyncbatch.errors import Timeout
from asyncbatch.files.stream import plain_params, scan_in_process, scan_in_thread, stream_file
from asyncbatch.registry import DEFAULT_TUNING, Kernel, Tuning

if TYPE_CHECKING:
    from asyncbatch.config import Job


class AttemptOwner(Protocol):
    """The scheduler, as an attempt reports to it."""

    def attempt_started(self, attempt: Attempt, at: float | None) -> None: ...

    def attempt_ended(
        self, attempt: Attempt, result: Any, error: BaseException | None, at: float | None
    ) -> None: ...

    def attempt_given_back(self, attempt: Attempt) -> None: ...


class Attempt:
    """One attempt of one job, handed to an executor.

    The executor calls :meth:`start` when the work begins (at most once; a second
    call is ignored), then exactly one of :meth:`succeed` or :meth:`fail`. An
    attempt it took but will not start goes back with :meth:`give_back`; one left
    untouched when :meth:`Executor.run` returns goes back too. Times (``at``) are
    ``time.perf_counter()`` values; None means now."""

    __slots__ = ("_owner", "failure_may_halt", "index", "job", "root", "state", "timeout")

    def __init__(
        self,
        owner: AttemptOwner,
        index: int,
        job: Job,
        *,
        timeout: float | None,
        root: str | None,
        failure_may_halt: bool,
    ) -> None:
        self._owner = owner
        self.index = index
        self.job = job
        self.timeout = timeout
        self.root = root
        self.failure_may_halt = failure_may_halt
        """A failure may halt the run (``--fail-fast``, ``--max-failures``): work
        batched with this attempt should not start after it fails."""
        self.state = "taken"

    def start(self, at: float | None = None) -> None:
        if self.state == "taken":
            self.state = "started"
            self._owner.attempt_started(self, at)

    def succeed(self, result: Any, at: float | None = None) -> None:
        self._end(result, None, at)

    def fail(self, error: BaseException, at: float | None = None) -> None:
        self._end(None, error, at)

    def give_back(self) -> None:
        if self.state == "taken":
            self.state = "given back"
            self._owner.attempt_given_back(self)

    def _end(self, result: Any, error: BaseException | None, at: float | None) -> None:
        self.start(at)
        if self.state == "started":
            self.state = "ended"
            self._owner.attempt_ended(self, result, error, at)


TakeMore = Callable[[Callable[["Job"], bool], int], list[Attempt]]
"""``more(accept, most)``: up to ``most`` more ready attempts, in config order while
``accept(job)`` holds, to run in the same slot as the attempt at hand."""


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
    pid = os.getpid()
    cancelled = anyio.get_cancelled_exc_class()
    attempt.start()
    try:
        with anyio.move_on_after(attempt.timeout) as scope:
            try:
                result = await call()
            except BaseException as exc:
                _leave_if_forked(pid, exc)
                raise
            _leave_if_forked(pid, None)
        if scope.cancelled_caught:
            raise Timeout(seconds=attempt.timeout or 0)
    except BaseException as exc:  # every action failure becomes the attempt's error
        if isinstance(exc, cancelled) and is_cancellation(exc):
            raise
        attempt.fail(exc)
        return
    attempt.succeed(result)


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
        assert job.spec is not None
        kernel = job.spec.kernel
        if kernel is None:
            await run_timed(attempt, functools.partial(job.spec.func, job.path, job.params))
        elif needs_process(job):
            await run_timed(attempt, self._in_process(kernel, attempt))
        else:
            batch = [attempt, *more(_batchable, self.tuning.batch_jobs - 1)]
            await self._run_small_files(batch)

    async def _run_small_files(self, attempts: list[Attempt]) -> None:
        """Run ``attempts`` in one thread hop; a file too big for it is streamed
        after (the attempts behind it go back to the queue for other slots)."""
        from asyncbatch.files.batch import Done, SmallFiles, SmallJob

        jobs = [
            SmallJob(_kernel(a), str(a.job.path), plain_params(a.job.params), a.timeout)
            for a in attempts
        ]

        def done(finished: Done) -> None:
            attempt = attempts[finished.position]
            attempt.start(finished.started)
            if finished.error is None:
                attempt.succeed(finished.result, finished.ended)
            else:
                attempt.fail(finished.error, finished.ended)

        first = attempts[0]
        batch = SmallFiles(
            jobs,
            self.tuning,
            first.root,
            stop_on_error=first.failure_may_halt,
            on_started=lambda position, at: attempts[position].start(at),
            on_done=done,
        )
        try:
            await batch.run()
        finally:
            if batch.timed_out is not None:
                position, started = batch.timed_out
                late = attempts[position]
                late.start(started)
                late.fail(Timeout(seconds=late.timeout or 0))
            for position in batch.not_started:
                attempts[position].give_back()
        if batch.large is not None:
            position, size = batch.large
            large = attempts[position]
            await run_timed(large, self._big_file(_kernel(large), large, size))

    def _big_file(
        self, kernel: Kernel, attempt: Attempt, size: int
    ) -> Callable[[], Awaitable[dict[str, Any]]]:
        """CPU-bound work where it can use both cores: a kernel that releases the GIL
        in a daemon thread of its own; one that holds it in a worker process, when
        the file is big enough to pay for one and a second core is there; else the
        file is streamed with aiofiles."""
        job = attempt.job
        args = (kernel, job.path, plain_params(job.params), self.tuning, attempt.root)
        if kernel.releases_gil:
            return functools.partial(scan_in_thread, *args)
        if size >= self.tuning.process_min_bytes and self._cpus > 1:
            return functools.partial(scan_in_process, *args)
        return functools.partial(stream_file, *args)

    def _in_process(
        self, kernel: Kernel, attempt: Attempt
    ) -> Callable[[], Awaitable[dict[str, Any]]]:
        job = attempt.job
        return functools.partial(
            scan_in_process, kernel, job.path, plain_params(job.params), self.tuning, attempt.root
        )


def _kernel(attempt: Attempt) -> Kernel:
    spec = attempt.job.spec
    assert spec is not None
    assert spec.kernel is not None
    return spec.kernel


def needs_process(job: Job) -> bool:
    """A job whose kernel must run in a worker process (a regex that may backtrack),
    whatever executor runs it."""
    kernel = job.spec.kernel if job.spec is not None else None
    return kernel is not None and kernel.isolated and kernel.isolated_for(plain_params(job.params))


def _batchable(job: Job) -> bool:
    """A job a small-file batch can run: a kernel that need not be isolated."""
    kernel = job.spec.kernel if job.spec is not None else None
    return kernel is not None and not needs_process(job)
