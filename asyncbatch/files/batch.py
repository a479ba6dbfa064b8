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
from dataclasses import dataclass, field
from typing import Any

from asyncbatch.files._scan import scan_small_file
from asyncbatch.files._threads import start_blocking, wait_done
from asyncbatch.registry import Kernel, Tuning

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
    ``BaseException``: a kernel's ``SystemExit`` fails its job, not the run)."""

    position: int
    result: dict[str, Any] | None
    error: BaseException | None
    started: float
    ended: float


@dataclass(slots=True)
class _Shared:
    """What the thread and the event loop both see, under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    abandoned: bool = False
    running: int | None = None
    started: float = 0.0
    reached: int = 0
    done: list[Done] = field(default_factory=list)
    large: tuple[int, int] | None = None


class SmallFiles:
    """Run ``jobs`` in one daemon thread, telling the caller, in the event loop and in
    order, when each job started (``on_started(position, at)``) and how it ended
    (``on_done(done)``): at the end, and whenever the caller wakes to watch a
    deadline or, every :data:`REPORT_AFTER` seconds, to show a slow job as running.
    After :meth:`run` (even a cancelled one, which reports the job it was on as
    started):

    - ``timed_out``: ``(position, started)`` of a job stopped at its deadline;
    - ``large``: ``(position, size)`` of a file too big to read whole (not started);
    - ``not_started``: positions never started.

    With ``stop_on_error``, the thread starts nothing after the first job that fails.
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
    ) -> None:
        self._jobs = jobs
        self._tuning = tuning
        self._root = root
        self._stop_on_error = stop_on_error
        self._on_started = on_started
        self._on_done = on_done
        self._shared = _Shared()
        self._delivered = 0
        self.timed_out: tuple[int, float] | None = None

    @property
    def large(self) -> tuple[int, int] | None:
        return self._shared.large

    @property
    def not_started(self) -> range:
        return range(self._shared.reached, len(self._jobs))

    async def run(self) -> None:
        """Wait for the thread, stopping it at the running job's deadline."""
        shared = self._shared
        future = start_blocking(self._work)
        try:
            while not await wait_done(future, self._wait_for()):
                running, started = self._deliver()
                if running is None:
                    continue
                timeout = self._jobs[running].timeout
                if timeout is not None and time.perf_counter() - started >= timeout:
                    with shared.lock:
                        shared.abandoned = True
                    self.timed_out = (running, started)
                    return
                self._on_started(running, started)
            future.result()  # the thread's own bugs surface here
        finally:
            with shared.lock:
                shared.abandoned = True
            running, started = self._deliver()
            if running is not None and self.timed_out is None:
                self._on_started(running, started)  # cancelled while on it: it did start

    def _deliver(self) -> tuple[int | None, float]:
        """Tell the caller about the jobs finished since last time, in order; return
        the running job (None between jobs) and when it started."""
        shared = self._shared
        with shared.lock:
            finished = shared.done[self._delivered :]
            self._delivered = len(shared.done)
            running, started = shared.running, shared.started
        for done in finished:
            self._on_done(done)
        return running, started

    def _wait_for(self) -> float:
        """Seconds until the earliest moment a job can reach its deadline: the
        running job's own, or a later job's timeout (it starts after now)."""
        shared = self._shared
        with shared.lock:
            running, started, reached = shared.running, shared.started, shared.reached
        later = [job.timeout for job in self._jobs[reached:] if job.timeout is not None]
        if running is not None and (timeout := self._jobs[running].timeout) is not None:
            later.append(max(0.0, started + timeout - time.perf_counter()))
        return min([*later, REPORT_AFTER])

    def _work(self) -> None:
        shared = self._shared
        clock = time.perf_counter
        for position, job in enumerate(self._jobs):
            started = clock()
            with shared.lock:
                if shared.abandoned:
                    return
                shared.running = position
                shared.started = started
                shared.reached = position + 1
            error: BaseException | None = None
            result: dict[str, Any] | int | None
            try:  # no signal and no cancellation reaches this thread: all is the job's
                result = scan_small_file(job.kernel, job.path, job.params, self._tuning, self._root)
            except BaseException as exc:  # noqa: BLE001 - becomes that job's error
                result, error = None, exc
            with shared.lock:
                shared.running = None
                if shared.abandoned:
                    return
                if isinstance(result, int):
                    shared.large = (position, result)
                    return
                shared.done.append(Done(position, result, error, started, clock()))
            if error is not None and self._stop_on_error:
                return
