"""What runs on a Dask worker for ``--executor dask``: one attempt, or a batch of
attempts (small files, or custom actions) in one task.

Every task first tells the client it has started (an event on the
:data:`STARTED_TOPIC` topic carrying its key: one message through the scheduler,
no round trip), so that a timeout counts from the start on the worker, not from the
submission. A task that runs longer than :data:`CANCEL_POLL` seconds then watches
the ``distributed.Event`` named after its key, which the client sets to cancel it
(Dask cannot interrupt a running task); a shorter one never asks the scheduler.

A batch (:func:`run_batch_on_worker`) runs its jobs one after another in a daemon
thread (kernels over small files as the local executor does in one thread hop;
custom actions each in an event loop of its own, as a task of their own would),
while the task's own thread keeps each job's timeout from the moment that job
starts: a job still running at its deadline is abandoned (a custom action is
cancelled at its next ``await``; the thread is told to stop after it) and the jobs
after it are never started. A custom action cancelled that way (a timeout, or the
client's cancel) is given :data:`STOP_SECONDS` to finish its cancellation before the
task returns: a command ends its program's group (SIGTERM, then SIGKILL) first.
The outcome comes back in one message with each job's start and end, counted from
the task's start, so that the client reports per-job durations. A batch stops taking
new jobs once it has run for :data:`BATCH_SECONDS`, after a failure when a failure may
halt the run, after the successes that would halt it, and before a file too big
to read whole; the jobs it did not start go
back to the client's queue.

Our errors pickle and come back as raised; any other exception is described here
with :func:`asyncbatch.errors.describe_error` and comes back as a
:class:`~asyncbatch.errors.RemoteError` (a user's exception may not unpickle).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asyncbatch.errors import AsyncbatchError, Cancelled, RemoteError, describe_error
from asyncbatch.files.batch import BatchEnd, BatchThread, Done
from asyncbatch.files.programs import GRACE
from asyncbatch.files.scan import Scanned, Stopped, scan_file, scan_small_file
from asyncbatch.kernel import Kernel, Tuning
from asyncbatch.model import Resources

T = TypeVar("T")

STARTED_TOPIC = "asyncbatch-started"
"""The Dask event topic on which workers announce the tasks they start."""
CANCEL_POLL = 0.2
"""How often (seconds) a running task checks whether the client cancelled it, and
how long it runs before it first does."""
BATCH_SECONDS = 1.0
"""A batch starts no new job after running this long: a slow batch gives the rest
of its jobs back to the queue instead of holding them (and its worker thread)."""
WAKE_EVERY = 1.0
"""Longest sleep of a batch's task thread while a job without a timeout runs."""
STOP_SECONDS = 2 * GRACE + 1.0
"""How long a batch waits for a cancelled custom action to end (a command's program:
SIGTERM, then SIGKILL :data:`~asyncbatch.files.programs.GRACE` seconds later)."""
STOP_WAIT = STOP_SECONDS + 2 * CANCEL_POLL
"""How long the client waits for a cancelled attempt's running task to end: the task
sees the cancel within :data:`CANCEL_POLL`, then stops as above."""

ScanJob = tuple[Kernel, str, Mapping[str, Any]]
"""A small-file job as it travels: kernel, input path, plain params."""
CallJob = Callable[[], Awaitable[Scanned]]
"""A custom action's job as it travels: its async function with its arguments bound
(its result and what it used)."""
BatchJob = ScanJob | CallJob
"""What one job of a batch runs."""
TimedJob = tuple[BatchJob, float | None]
"""One job of a batch and its timeout."""


@dataclass(slots=True)
class BatchOutcome:
    """How a batch went, in the batch protocol's terms (``Done`` for each job it
    finished, in order, and its ``BatchEnd``), every time in seconds since the task
    started; ``elapsed``: the task's seconds on the worker."""

    done: list[Done] = field(default_factory=list)
    end: BatchEnd = field(default_factory=lambda: BatchEnd(0))
    elapsed: float = 0.0


def run_batch_on_worker(
    jobs: Sequence[TimedJob],
    tuning: Tuning,
    root: str | None,
    stop_on_error: bool,
    key: str | None = None,
    stop_after_successes: int | None = None,
) -> BatchOutcome:
    """On the worker: ``jobs`` one after another in a daemon thread, each under its
    own timeout; see the module doc. Never raises for a job: each job's error is in
    the outcome."""
    began = time.perf_counter()
    _say_started(key)
    batch = _Batch(jobs, tuning, root, stop_on_error, began, stop_after_successes)
    threading.Thread(target=batch.work, name="asyncbatch-dask-batch", daemon=True).start()
    with _watch_cancel(key, batch.abandon):
        batch.wait()
    batch.settle(STOP_SECONDS)
    return batch.outcome()


class _Batch:
    """A batch on the worker: the jobs run by a :class:`BatchThread` (the one the
    local executor uses for small files), watched from the task's thread, which also
    cancels a custom action running when the batch is abandoned."""

    def __init__(
        self,
        jobs: Sequence[TimedJob],
        tuning: Tuning,
        root: str | None,
        stop_on_error: bool,
        began: float,
        stop_after_successes: int | None = None,
    ) -> None:
        self._jobs = jobs
        self._tuning = tuning
        self._root = root
        self._began = began
        self._thread = BatchThread(
            [timeout for _, timeout in jobs],
            self._run,
            stop_on_error=stop_on_error,
            stop_after_successes=stop_after_successes,
            may_start=lambda position, now: position == 0 or now - began < BATCH_SECONDS,
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()  # no custom action running
        self._idle.set()
        self._cancel_running: Callable[[], object] | None = None
        self._timed_out: tuple[int, float] | None = None

    def work(self) -> None:
        """In the daemon thread: the jobs, then wake the task's thread."""
        try:
            self._thread.work()
        finally:
            self._wake.set()

    def _run(self, position: int) -> tuple[dict[str, Any], Resources | None] | int:
        """One job: a kernel over a small file (its size if too big), or a custom
        action in an event loop of its own, whose task :meth:`abandon` cancels."""
        job = self._jobs[position][0]
        if isinstance(job, tuple):
            kernel, path, params = job
            return scan_small_file(kernel, path, params, self._tuning, self._root)
        import asyncio  # noqa: TID251 - a worker thread has no event loop; it needs one of its own

        async def watched() -> Scanned:
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(job())
            with self._lock:
                self._cancel_running = functools.partial(loop.call_soon_threadsafe, task.cancel)
            if self._thread.abandoned:
                task.cancel()
            try:
                return await task
            finally:
                with self._lock:
                    self._cancel_running = None

        self._idle.clear()
        try:
            return asyncio.run(watched())
        finally:
            self._idle.set()

    def abandon(self) -> None:
        """Start nothing more, stop a running custom action at its next ``await``,
        and stop waiting for the running job."""
        self._thread.abandon()
        self._cancel()
        self._wake.set()

    def _cancel(self) -> None:
        with self._lock:
            cancel = self._cancel_running
        if cancel is not None:
            cancel()

    def wait(self) -> None:
        """In the task's thread: until the daemon thread ends, a job reaches its
        deadline (abandoned, recorded as timed out) or the batch is abandoned."""
        while not self._wake.wait(self._thread.wait_for(WAKE_EVERY)):
            late = self._thread.overdue()
            if late is not None:
                self._timed_out = late
                self._cancel()
                return

    def settle(self, seconds: float) -> None:
        """After a cancel or a timeout, wait (at most ``seconds``) for the custom
        action still running to end its cancellation: a command's program is then
        gone when the task returns."""
        if self._thread.abandoned or self._timed_out is not None:
            self._idle.wait(seconds)

    def outcome(self) -> BatchOutcome:
        """What the batch did, times from the task's start; a thread left behind (a
        timed-out job's) adds nothing."""
        thread = self._thread
        thread.abandon()
        finished, _, _ = thread.progress(0)
        begin = self._began
        done = [
            Done(
                d.position,
                d.result,
                None if d.error is None else _travelling(d.error),
                d.started - begin,
                d.ended - begin,
                d.resources,
            )
            for d in finished
        ]
        timed_out = None
        if self._timed_out is not None:
            position, started = self._timed_out
            timed_out = (position, started - begin)
        end = BatchEnd(thread.reached, timed_out, thread.large)
        return BatchOutcome(done, end, time.perf_counter() - begin)


def _travelling(exc: BaseException) -> BaseException:
    """``exc`` as it can travel to the client: ours as raised, any other described."""
    if isinstance(exc, AsyncbatchError):
        return exc
    return RemoteError(error=describe_error(exc))


def scan_on_worker(
    kernel: Kernel,
    path: str,
    params: Mapping[str, Any],
    tuning: Tuning,
    root: str | None,
    key: str | None = None,
) -> Scanned:
    """On the worker: the kernel over the file, stopped at its next chunk when the
    attempt's cancel event is set."""
    _say_started(key)
    stop = threading.Event()
    with _watch_cancel(key, stop.set), _described():
        try:
            return scan_file(kernel, path, params, tuning, root, stop)
        except Stopped:
            raise RemoteError(error=describe_error(Cancelled(reason="cancelled"))) from None


def run_on_worker(call: Callable[[], Awaitable[T]], key: str | None = None) -> T:
    """On the worker: run the async ``call`` to completion in an event loop of its
    own, its task cancelled when the attempt's cancel event is set."""
    import asyncio  # noqa: TID251 - a worker thread has no event loop; it needs one of its own

    cancelled = threading.Event()

    async def watched() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(call())

        def cancel() -> None:
            cancelled.set()
            loop.call_soon_threadsafe(task.cancel)

        with _watch_cancel(key, cancel):
            return await task

    _say_started(key)
    with _described():
        try:
            return asyncio.run(watched())
        except asyncio.CancelledError:
            if not cancelled.is_set():
                raise  # the action's own: described as its error
            raise RemoteError(error=describe_error(Cancelled(reason="cancelled"))) from None


def _say_started(key: str | None) -> None:
    """On a worker, tell the client the task ``key`` has started (nothing in a
    direct call, outside a Dask worker)."""
    if key is None:
        return
    import distributed

    try:
        worker = distributed.get_worker()
    except ValueError:  # not running in a worker
        return
    worker.log_event(STARTED_TOPIC, key)


@contextlib.contextmanager
def _described() -> Iterator[None]:
    """Let our errors (they pickle) through; describe any other exception here, as
    :class:`RemoteError`, since a user's exception may not unpickle at the client."""
    try:
        yield
    except AsyncbatchError:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit and kin too: not the worker's end
        raise RemoteError(error=describe_error(exc)) from None


@contextlib.contextmanager
def _watch_cancel(key: str | None, cancel: Callable[[], object]) -> Iterator[None]:
    """While the block runs, a thread calls ``cancel`` once the client sets the
    task's event (nothing outside a Dask worker, or without ``key``). The thread
    first asks the scheduler after :data:`CANCEL_POLL` seconds: a short task costs
    the scheduler nothing."""
    client = _worker_client(key)
    if key is None or client is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        if done.wait(CANCEL_POLL):
            return
        import distributed

        event: Any = distributed.Event(key, client=client)  # type: ignore[no-untyped-call]
        while not done.is_set():
            try:
                if event.wait(timeout=CANCEL_POLL):
                    cancel()
                    event.clear()  # the scheduler forgets a cleared event
                    return
            except Exception:  # noqa: BLE001 - no scheduler: the task runs to its end
                return

    threading.Thread(target=watch, name=f"cancel-watch-{key}", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def _worker_client(key: str | None) -> Any:
    """The worker's client, asked for in the task's thread (only there does Dask know
    the worker); None outside a Dask worker (direct calls) or without ``key``."""
    if key is None:
        return None
    import distributed

    try:
        return distributed.get_client()
    except ValueError:  # not running in a worker
        return None
