"""Fast paths of the built-in actions: fewer thread hops, both cores, same results.

The plain path (each action in :mod:`.text` and :mod:`.files`) streams a file with
aiofiles: about five thread hops per file, ~150 µs of overhead that dominates a
4 KiB file. Here the work of the plain path is done by the synchronous kernels of
:mod:`asyncbatch.kernels`, routed by the file's size:

- **A batch of small files, one hop** (:class:`SmallBatch`): the runner hands a
  worker slot several ready jobs of batchable built-ins at once; one daemon thread
  stats, opens, reads and closes each in turn, recording when each started and
  ended. Each job keeps its own timeout: a job still running at its deadline fails
  with ``Timeout``, the thread is told to stop, and the jobs after it go back to the
  queue. Jobs run one after another, so a slot still runs one action at a time.
- **One file, one hop** (:func:`run_action`): stat, open, read in large chunks
  into one reused buffer, close; a flag checked between chunks stops the thread
  when the job times out. ``hashlib`` releases the GIL, so concurrent checksums
  use every core.
- **Big files in worker processes**: counting lines or words holds the GIL, so from
  :data:`PROCESS_MIN_BYTES` on (with more than one core) the count runs in anyio's
  process pool, like ``search_pattern``; a timeout kills the worker.

``ENABLED`` (environment ``ASYNCBATCH_FASTPATH=0`` turns it off) switches every
fast path at once; ``tests/test_fastpaths.py`` runs both paths on the same files.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from asyncbatch import kernels
from asyncbatch.actions import _io
from asyncbatch.errors import NotARegularFile, OutsideRoot
from asyncbatch.linescan import open_regular

ENABLED = os.environ.get("ASYNCBATCH_FASTPATH", "1") != "0"
"""Read at call time, so tests can switch to the plain path."""

SMALL_FILE_BYTES = 256 << 10
"""Files up to this size (and up to ``_io.CHUNK_SIZE``) are read whole, in one read."""

PROCESS_MIN_BYTES = 32 << 20
"""From this size on, line and word counts run in a worker process (multi-core)."""

BATCH_JOBS = 64
"""Most jobs one slot takes at once."""

F = TypeVar("F", bound=Callable[..., Any])

_KERNEL_OF: dict[Callable[..., Any], str] = {}


def batchable(name: str) -> Callable[[F], F]:
    """Mark a built-in action as one :class:`SmallBatch` may run (kernel ``name``)."""

    def mark(func: F) -> F:
        _KERNEL_OF[func] = name
        return func

    return mark


def kernel_name(func: Callable[..., Any] | None) -> str | None:
    """The batch kernel of an action function, when fast paths are on."""
    if not ENABLED or func is None:
        return None
    return _KERNEL_OF.get(func)


def small_limit() -> int:
    return min(SMALL_FILE_BYTES, _io.CHUNK_SIZE)


# --- one file, one hop ----------------------------------------------------------------


async def run_action(name: str, path: Path, params: Any) -> dict[str, Any]:
    """Built-in ``name`` on one file through its fast route (see the module doc)."""
    stop = threading.Event()
    root = _io.ROOT.get()  # here, in the event loop: the threads do not see it
    chunk_size = _io.CHUNK_SIZE
    process_from = (
        PROCESS_MIN_BYTES
        if name in ("count_lines", "count_words") and (os.cpu_count() or 1) > 1
        else None
    )
    try:
        result = await _io.run_blocking(
            _one_file, name, str(path), params, chunk_size, stop, process_from, root
        )
    finally:
        stop.set()  # a thread still reading (we were cancelled) stops at its next chunk
    if result is not None:
        return result
    import anyio.to_process

    outcome = await anyio.to_process.run_sync(
        kernels.count_in_worker, name, str(path), chunk_size, root, cancellable=True
    )
    if outcome[0] == "not_regular":
        raise NotARegularFile(path=str(path), kind=outcome[1])
    if outcome[0] == "outside_root":
        assert root is not None
        raise OutsideRoot(path=str(path), root=root)
    result_in_worker: dict[str, Any] = outcome[1]
    return result_in_worker


def _one_file(
    name: str,
    path: str,
    params: Any,
    chunk_size: int,
    stop: threading.Event,
    process_from: int | None,
    root: str | None = None,
) -> dict[str, Any] | None:
    """The whole job in this thread, or None: big enough for a worker process.
    With ``root``, the stat and the open are checked on their descriptors."""
    size = kernels.stat_regular(path, root).st_size
    if name == "file_size":
        return {"bytes": size}
    if process_from is not None and size >= process_from:
        return None
    fd = open_regular(path, root=root)
    try:
        if size <= min(SMALL_FILE_BYTES, chunk_size):
            data = kernels.read_small(fd, size, small_limit())
            if data is not None:
                return kernels.on_bytes(name, data, params)
            os.lseek(fd, 0, os.SEEK_SET)  # it grew past the limit: stream it
        return kernels.KERNELS[name](fd, chunk_size, params, stop)
    finally:
        os.close(fd)


# --- many small files, one hop ----------------------------------------------------------


@dataclass(slots=True)
class Done:
    """One job a batch finished: its result or the exception it raised."""

    position: int
    result: dict[str, Any] | None
    error: Exception | None
    started: float
    ended: float


@dataclass(slots=True)
class _Progress:
    lock: threading.Lock = field(default_factory=threading.Lock)
    abandoned: bool = False
    busy: bool = False
    current: int = 0
    started: float = 0.0
    done: list[Done] = field(default_factory=list)
    large: int | None = None
    reached: int = 0


class SmallBatch:
    """Jobs ``(kernel name, path, params)`` run one after another in one daemon
    thread, each under ``timeout``; after :meth:`run` (even a cancelled one):

    - ``done``: the jobs finished, in order (a result or an exception each);
    - ``timed_out``: ``(position, started)`` of a job stopped at its deadline;
    - ``large``: the position of a file too big for a batch (not started);
    - :meth:`not_started`: positions never started, to queue again.
    """

    def __init__(
        self,
        items: list[tuple[str, str, Any]],
        timeout: float | None,
        *,
        stop_on_error: bool,
        root: str | None = None,
    ) -> None:
        self._items = items
        self._root = root
        self._timeout = timeout
        self._stop_on_error = stop_on_error
        self._progress = _Progress()
        self.timed_out: tuple[int, float] | None = None

    @property
    def done(self) -> list[Done]:
        return self._progress.done

    @property
    def large(self) -> int | None:
        return self._progress.large

    def not_started(self) -> range:
        return range(self._progress.reached, len(self._items))

    async def run(self) -> None:
        progress = self._progress
        future = _io.start_blocking(self._work, small_limit())
        try:
            while not await _io.wait_done(future, self._wait_for()):
                with progress.lock:
                    now = time.perf_counter()
                    assert self._timeout is not None
                    if progress.busy and now - progress.started >= self._timeout:
                        progress.abandoned = True
                        progress.reached = progress.current + 1
                        self.timed_out = (progress.current, progress.started)
                        return
            future.result()  # the thread's own bugs surface here
        finally:
            with progress.lock:
                progress.abandoned = True

    def _wait_for(self) -> float | None:
        """Seconds until the running job's deadline (None: no timeout)."""
        if self._timeout is None:
            return None
        progress = self._progress
        if not progress.busy:
            return self._timeout
        return max(0.0, progress.started + self._timeout - time.perf_counter())

    def _work(self, limit: int) -> None:
        progress = self._progress
        lock = progress.lock
        clock = time.perf_counter
        root = self._root
        for position, (name, path, params) in enumerate(self._items):
            started = clock()
            with lock:
                if progress.abandoned:
                    return
                progress.busy = True
                progress.current = position
                progress.started = started
                progress.reached = position + 1
            error: Exception | None = None
            try:
                result = kernels.small_job(name, path, params, limit, root)
            except Exception as exc:  # noqa: BLE001 - becomes that job's error
                result, error = None, exc
            with lock:
                progress.busy = False
                if progress.abandoned:
                    return
                if result is None and error is None:
                    progress.large = position
                    return
                progress.done.append(Done(position, result, error, started, clock()))
            if error is not None and self._stop_on_error:
                return
