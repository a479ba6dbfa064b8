"""Many small files in one thread hop: the driver for batches of small kernel jobs.

A thread hop costs more than reading and counting a 4 KiB file (an aiofiles open,
read and close is three hops), so one daemon thread stats, opens, reads and scans
the files of a batch one after another, noting when each started and ended. Each
job keeps its own timeout: a job still running at its deadline is abandoned (the
thread is told to stop after it), and the jobs after it are never started. Jobs
run one after another, so a batch occupies one slot and runs one job at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asyncbatch.files._threads import start_blocking, wait_done
from asyncbatch.files.scan import Scanned, scan_small_file
from asyncbatch.kernel import Kernel, Tuning
from asyncbatch.model import Resources

REPORT_AFTER = 1.0
"""Seconds between looks at a batch's running job (and after which it is reported)."""


@dataclass(frozen=True, slots=True)
class SmallJob:
    """One job of a batch: its kernel, input, plain params and own timeout."""

    kernel: Kernel
    path: str
    params: Mapping[str, Any]
    timeout: float | None


@dataclass(slots=True)
class Done:
    """A job the batch finished: its result, or the exception it raised (any
    ``BaseException``: a kernel's ``SystemExit`` fails its job, not the run), when
    it started and ended, and what it used."""

    position: int
    result: dict[str, Any] | None
    error: BaseException | None
    started: float
    ended: float
    resources: Resources | None = None


@dataclass(frozen=True, slots=True)
class BatchEnd:
    """How a batch ended: ``reached``, the first position it did not start (jobs
    from there on go back to the queue); ``timed_out``, ``(position, started)`` of a
    job stopped at its deadline; ``large``, ``(position, size)`` of a file too big to
    read whole (reached, not started: the executor runs it after the batch)."""

    reached: int
    timed_out: tuple[int, float] | None = None
    large: tuple[int, int] | None = None


RunOne = Callable[[int], "tuple[dict[str, Any], Resources | None] | int"]
"""Runs the job at a position: its result and what it used, or, for a file too big
to read whole, its size (not started)."""


class BatchThread:
    """The thread side of a batch, whoever waits for it: ``run_one(position)`` for
    each of ``len(timeouts)`` jobs in turn (:meth:`work`, in a daemon thread),
    noting when each started and ended, under one lock with the waiter.

    ``run_one`` returns the job's result and what it used, or an ``int``, the size
    of a file too big to read whole (``large``: not started, the batch stops there);
    whatever it raises is the job's error (any ``BaseException``). The thread stops at
    :meth:`abandon`, after a failure with ``stop_on_error``, after
    ``stop_after_successes`` jobs succeeded, and before a job for which
    ``may_start(position, now)`` is false."""

    def __init__(
        self,
        timeouts: Sequence[float | None],
        run_one: RunOne,
        *,
        stop_on_error: bool,
        stop_after_successes: int | None = None,
        may_start: Callable[[int, float], bool] | None = None,
    ) -> None:
        self._timeouts = timeouts
        self._run_one = run_one
        self._stop_on_error = stop_on_error
        self._successes_left = stop_after_successes
        self._may_start = may_start
        self._lock = threading.Lock()
        self._abandoned = False
        self._running: int | None = None
        self._started = 0.0
        self._reached = 0
        self._done: list[Done] = []
        self.large: tuple[int, int] | None = None

    @property
    def reached(self) -> int:
        """Jobs started (or, for the last one, refused as too large): the first not started."""
        with self._lock:
            return self._reached

    @property
    def abandoned(self) -> bool:
        with self._lock:
            return self._abandoned

    def work(self) -> None:
        """In the daemon thread: the jobs one after another, until one of the stops."""
        clock = time.perf_counter
        for position in range(len(self._timeouts)):
            started = clock()
            with self._lock:
                if self._abandoned:
                    return
                if self._may_start is not None and not self._may_start(position, started):
                    return
                self._running, self._started = position, started
                self._reached = position + 1
            error: BaseException | None = None
            outcome: tuple[dict[str, Any], Resources | None] | int | None
            try:  # no signal and no cancellation reaches this thread: all is the job's
                outcome = self._run_one(position)
            except BaseException as exc:  # noqa: BLE001 - becomes that job's error
                outcome, error = None, exc
            with self._lock:
                self._running = None
                if self._abandoned:
                    return
                if isinstance(outcome, int):
                    self.large = (position, outcome)
                    return
                result, used = outcome if outcome is not None else (None, None)
                self._done.append(Done(position, result, error, started, clock(), used))
            if error is not None and self._stop_on_error:
                return
            if error is None and self._successes_left is not None:
                self._successes_left -= 1
                if self._successes_left <= 0:
                    return

    def abandon(self) -> None:
        """Start nothing more; a job running now is left to end on its own."""
        with self._lock:
            self._abandoned = True

    def progress(self, delivered: int) -> tuple[list[Done], int | None, float]:
        """The jobs finished from position ``delivered`` of the finished list on, and
        the job running now (None between jobs) with when it started."""
        with self._lock:
            return self._done[delivered:], self._running, self._started

    def overdue(self) -> tuple[int, float] | None:
        """``(position, started)`` of the running job if it has reached its deadline:
        the batch is then abandoned."""
        with self._lock:
            running, started = self._running, self._started
            timeout = None if running is None else self._timeouts[running]
            if running is None or timeout is None or time.perf_counter() - started < timeout:
                return None
            self._abandoned = True
            return running, started

    def wait_for(self, longest: float) -> float:
        """Seconds until the earliest moment a job can reach its deadline (the
        running job's own, or a later job's timeout: it starts after now), at most
        ``longest``."""
        with self._lock:
            running, started, reached = self._running, self._started, self._reached
        later = [timeout for timeout in self._timeouts[reached:] if timeout is not None]
        if running is not None and (timeout := self._timeouts[running]) is not None:
            later.append(max(0.0, started + timeout - time.perf_counter()))
        return min([*later, longest])


class SmallFiles:
    """Run ``jobs`` in one daemon thread, telling the caller, in the event loop and in
    order, when each job started (``on_started(position, at)``) and how it ended
    (``on_done(done)``): at the end, and whenever the caller wakes to watch a
    deadline or, every :data:`REPORT_AFTER` seconds, to show a slow job as running.
    After :meth:`run` (even a cancelled one, which reports the job it was on as
    started), :attr:`end` says how the batch ended.

    With ``stop_on_error``, the thread starts nothing after the first job that fails;
    with ``stop_after_successes``, nothing after that many succeeded; nothing once
    ``may_start()`` is false (asked from the thread: the run halted).
    """

    def __init__(
        self,
        jobs: Sequence[SmallJob],
        tuning: Tuning,
        root: str | None,
        *,
        stop_on_error: bool,
        on_started: Callable[[int, float], None],
        on_done: Callable[[Done], None],
        stop_after_successes: int | None = None,
        may_start: Callable[[], bool] | None = None,
    ) -> None:
        self.jobs = jobs
        self._tuning = tuning
        self._root = root
        self._on_started = on_started
        self._on_done = on_done
        self._thread = BatchThread(
            [job.timeout for job in jobs],
            self._scan,
            stop_on_error=stop_on_error,
            stop_after_successes=stop_after_successes,
            may_start=None if may_start is None else lambda position, now: may_start(),
        )
        self._delivered = 0
        self.timed_out: tuple[int, float] | None = None

    @property
    def end(self) -> BatchEnd:
        return BatchEnd(self._thread.reached, self.timed_out, self._thread.large)

    async def run(self) -> None:
        """Wait for the thread, stopping it at the running job's deadline."""
        thread = self._thread
        future = start_blocking(thread.work)
        try:
            while not await wait_done(future, thread.wait_for(REPORT_AFTER)):
                running, started = self._deliver()
                if running is None:
                    continue
                late = thread.overdue()
                if late is not None:
                    self.timed_out = late
                    return
                self._on_started(running, started)
            future.result()  # the thread's own bugs surface here
        finally:
            thread.abandon()
            running, started = self._deliver()
            if running is not None and self.timed_out is None:
                self._on_started(running, started)  # cancelled while on it: it did start

    def _deliver(self) -> tuple[int | None, float]:
        """Tell the caller about the jobs finished since last time, in order; return
        the running job (None between jobs) and when it started."""
        finished, running, started = self._thread.progress(self._delivered)
        self._delivered += len(finished)
        for done in finished:
            self._on_done(done)
        return running, started

    def _scan(self, position: int) -> Scanned | int:
        job = self.jobs[position]
        return scan_small_file(job.kernel, job.path, job.params, self._tuning, self._root)
