"""Daemon threads: where every blocking call of a read goes.

A read can hang for good (a hung NFS mount). asyncio's default executor, which
aiofiles uses unless told otherwise, is joined when ``asyncio.run`` ends and its
threads when the interpreter exits, so such a read would keep the process alive long
after its job timed out. Every blocking call of ours goes to :data:`EXECUTOR`
instead, whose threads are daemons: a stuck one is abandoned at exit.
"""

from __future__ import annotations

# anyio cannot run a call in a given executor; aiofiles is asyncio-only anyway.
import asyncio  # noqa: TID251
import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar, TypeVarTuple

from asyncbatch.errors import RemoteError, describe_error

P = ParamSpec("P")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class DaemonThreadExecutor(Executor):
    """Runs calls in daemon threads: one starts when a call finds no thread idle (at
    most ``max_workers``), and one idle for ``idle_seconds`` exits.

    A call is marked running as soon as it is submitted, so it always runs: a
    cancelled caller stops waiting, and a ``close`` submitted while being cancelled
    still happens."""

    def __init__(self, max_workers: int, idle_seconds: float) -> None:
        self._max_workers = max_workers
        self._idle_seconds = idle_seconds
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._spare = 0  # threads not running a call, minus calls waiting for one

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._calls.put((future, functools.partial(fn, *args, **kwargs)))
            self._spare -= 1
            if self._spare < 0 and self._threads < self._max_workers:
                self._threads += 1
                self._spare += 1
                threading.Thread(target=self._work, name="asyncbatch-io", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            try:
                future, call = self._calls.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._calls.empty():  # else a call was queued for a spare thread
                        self._threads -= 1
                        self._spare -= 1
                        return
                continue
            try:
                future.set_result(call())
            except Exception as exc:  # noqa: BLE001 - the caller gets it, as with any executor
                future.set_exception(exc)
            except BaseException as exc:  # noqa: BLE001 - described: see below
                future.set_exception(_described(exc))
            del future, call  # hold no result while idle
            with self._lock:
                self._spare += 1


EXECUTOR = DaemonThreadExecutor(max_workers=32, idle_seconds=10)


def _described(exc: BaseException) -> RemoteError:
    """A ``SystemExit``, ``GeneratorExit`` or the like raised in a thread, as the
    description the report will give it. Handed to the awaiting coroutine as itself,
    it would act there (a ``GeneratorExit`` closes every frame up to the task's) and
    end the slot instead of failing the job."""
    return RemoteError(error=describe_error(exc))


async def run_blocking(func: Callable[[*Ts], T], *args: *Ts) -> T:
    """``func(*args)`` in a daemon thread: how a built-in action blocks.

    Cancellation (a timeout) stops the waiting at once; a call that never returns
    leaves a daemon thread behind, which delays neither the end of the run nor the
    exit of the process."""
    return await start_blocking(func, *args)


def start_blocking(func: Callable[[*Ts], T], *args: *Ts) -> asyncio.Future[T]:
    """``func(*args)`` started in a daemon thread; await it with :func:`wait_done`."""
    return start_blocking_in(EXECUTOR, func, *args)


def start_blocking_in(
    executor: Executor, func: Callable[[*Ts], T], *args: *Ts
) -> asyncio.Future[T]:
    """As :func:`start_blocking`, in the threads of ``executor``."""
    return asyncio.get_running_loop().run_in_executor(executor, func, *args)


async def wait_done(future: asyncio.Future[Any], seconds: float | None) -> bool:
    """Wait until ``future`` is done (True) or ``seconds`` pass (False).

    Never cancels ``future``: a caller cancelled meanwhile just stops waiting."""
    done, _ = await asyncio.wait({future}, timeout=seconds)
    return bool(done)
