"""``--executor dask``: run each attempt on a Dask distributed cluster.

Only the attempt travels: scheduling, timeouts, retries, the journal and the report
stay in the process that runs the command. A built-in's kernel runs on the worker
through the same synchronous code as locally (:func:`asyncbatch.files._scan.scan_file`;
a regex in a worker process of the worker, killable); a custom action's async
function runs there under ``asyncio.run``. Functions travel by reference (the worker
imports their module: built-ins, plugins and ``module:function`` actions must be
importable there), with the input path (the same path must be readable on the
worker) and the params. Our errors and ``OSError`` pickle and come back as raised;
any other exception is described on the worker by
:func:`asyncbatch.errors.describe_error` and comes back as a
:class:`~asyncbatch.errors.RemoteError` (a user's exception may not unpickle).

A job's timeout counts from the moment its attempt starts on a worker, not while it
waits in the cluster's queue: the worker says so first thing, with an event on the
``asyncbatch-started`` topic carrying the attempt's key (Dask's pub/sub: one message
through the scheduler, no round trip), and the client then starts the attempt and its
timeout. A task that ends before its start is heard of (it could not be loaded on
the worker, its worker died) ends the attempt as it is.

Cancelling an attempt (a timeout, fail-fast, a signal) cancels its Dask future (a
queued task never starts) and sets a ``distributed.Event`` named after the attempt.
Dask cannot interrupt a running task, so the worker watches that event while the
attempt runs: a kernel stops at its next chunk, a custom action's asyncio task is
cancelled (a regex search's worker process is killed), freeing the worker thread.
Blocking code in a custom action cannot be interrupted this way.

``distributed`` is an optional extra (``pip install 'asyncbatch[dask]'``), imported
only when a Dask executor is opened.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import anyio

from asyncbatch.engine.executors import Attempt, TakeMore, is_cancellation
from asyncbatch.errors import (
    AsyncbatchError,
    Cancelled,
    ExecutorUnavailable,
    RemoteError,
    Timeout,
    describe_error,
)
from asyncbatch.files._scan import Stopped, scan_file
from asyncbatch.files.stream import plain_params, scan_in_process
from asyncbatch.registry import DEFAULT_TUNING, Kernel, Tuning

DEFAULT_SCHEDULER_TIMEOUT = 10.0
STARTED_TOPIC = "asyncbatch-started"
"""The Dask event topic on which workers announce the attempts they start."""
CANCEL_WAIT = 2.0
"""How long a cancelled attempt waits for the scheduler to acknowledge the cancel."""
CANCEL_POLL = 0.2
"""How often (seconds) a worker checks whether its running attempt was cancelled."""
LOCAL_WORKERS = 2


class DaskExecutor:
    """Submit each attempt to a connected ``distributed.Client`` and await it."""

    def __init__(self, client: Any, tuning: Tuning = DEFAULT_TUNING) -> None:
        self._client = client
        self._tuning = tuning
        self._started: dict[str, anyio.Event] = {}
        """Attempts submitted and not yet ended, by key: set once a worker starts one."""
        client.subscribe_topic(STARTED_TOPIC, self._heard_started)

    def _heard_started(self, event: tuple[float, Any]) -> None:
        """A worker started the attempt named in ``event`` (``(time, key)``)."""
        _, key = event
        started = self._started.get(key) if isinstance(key, str) else None
        if started is not None:
            started.set()

    async def run(self, attempt: Attempt, more: TakeMore) -> None:
        key = f"asyncbatch-{uuid.uuid4().hex}"
        started = self._started[key] = anyio.Event()
        try:
            await self._run(attempt, key, started)
        finally:
            del self._started[key]

    async def _run(self, attempt: Attempt, key: str, started: anyio.Event) -> None:
        """Submit, wait (untimed) for the start on a worker, then for the end under
        the attempt's timeout; a timeout or a cancellation cancels the task."""
        try:
            future = self._submit(attempt, key)
        except Exception as exc:  # noqa: BLE001 - the call cannot be sent (pickling)
            attempt.fail(exc)
            return
        ended, timed_out = _Ended(), False
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(ended.collect, future, started)
                await started.wait()  # queued in the cluster: the timeout has not begun
                attempt.start()
                with anyio.move_on_after(attempt.timeout):
                    await ended.event.wait()
                timed_out = not ended.event.is_set()
                group.cancel_scope.cancel()  # stop awaiting the future
        except anyio.get_cancelled_exc_class():
            await _cancel_on_cluster(self._client, key, future)
            raise
        if timed_out:
            attempt.fail(Timeout(seconds=attempt.timeout or 0))
            await _cancel_on_cluster(self._client, key, future)
        elif ended.error is not None:
            attempt.fail(ended.error)
        else:
            attempt.succeed(ended.result)

    def _submit(self, attempt: Attempt, key: str) -> Any:
        """The attempt's task, submitted under ``key``: its Dask future."""
        job = attempt.job
        assert job.spec is not None
        kernel = job.spec.kernel
        path, root, tuning = str(job.path), attempt.root, self._tuning
        if kernel is not None and not kernel.isolated:
            plain = plain_params(job.params)
            return self._client.submit(
                scan_on_worker, kernel, path, plain, tuning, root, key, key=key
            )
        call: Callable[[], Awaitable[dict[str, Any]]] = (
            functools.partial(job.spec.func, job.path, job.params)
            if kernel is None
            else functools.partial(
                scan_in_process, kernel, path, plain_params(job.params), tuning, root
            )
        )
        return self._client.submit(run_on_worker, call, key, key=key)


class _Ended:
    """How an attempt's task ended: ``result`` or ``error``, once ``event`` is set."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None

    async def collect(self, future: Any, started: anyio.Event) -> None:
        """Await ``future``; set ``started`` too (an ended task has started, or
        never will)."""
        try:
            self.result = await future
        except BaseException as exc:  # every way a task fails is the attempt's error
            if is_cancellation(exc):
                raise
            self.error = exc
        started.set()
        self.event.set()


async def _cancel_on_cluster(client: Any, key: str, future: Any) -> None:
    """Stop the attempt's task: a queued task never starts; a running one sees the
    attempt's event and stops at its next checkpoint. The run waits for neither."""
    import distributed

    with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_WAIT):
        await distributed.Event(key, client=client).set()  # type: ignore[no-untyped-call]
        await future.cancel()


def scan_on_worker(
    kernel: Kernel,
    path: str,
    params: Mapping[str, Any],
    tuning: Tuning,
    root: str | None,
    key: str | None = None,
) -> dict[str, Any]:
    """On the worker: the kernel over the file, stopped at its next chunk when the
    attempt's cancel event is set."""
    _say_started(key)
    stop = threading.Event()
    with _watch_cancel(key, stop.set), _described():
        try:
            return scan_file(kernel, path, params, tuning, root, stop)
        except Stopped:
            raise RemoteError(error=describe_error(Cancelled(reason="cancelled"))) from None


def run_on_worker(
    call: Callable[[], Awaitable[dict[str, Any]]], key: str | None = None
) -> dict[str, Any]:
    """On the worker: run the async ``call`` to completion in an event loop of its
    own, its task cancelled when the attempt's cancel event is set."""
    import asyncio  # noqa: TID251 - a worker thread has no event loop; it needs one of its own

    cancelled = threading.Event()

    async def watched() -> dict[str, Any]:
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
    """On a worker, tell the client the attempt ``key`` has started (nothing in a
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
    attempt's event (nothing outside a Dask worker, or without ``key``)."""
    event = _cancel_event(key)
    if event is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                if event.wait(timeout=CANCEL_POLL):
                    cancel()
                    event.clear()  # the scheduler forgets a cleared event
                    return
            except Exception:  # noqa: BLE001 - no scheduler: the attempt runs to its end
                return

    threading.Thread(target=watch, name=f"cancel-watch-{key}", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def _cancel_event(key: str | None) -> Any:
    """The attempt's cancel event, or None outside a Dask worker (direct calls)."""
    if key is None:
        return None
    import distributed

    try:
        client = distributed.get_client()
    except ValueError:  # not running in a worker
        return None
    return distributed.Event(key, client=client)  # type: ignore[no-untyped-call]


async def _close(resource: Any) -> None:
    await resource.close()


@contextlib.asynccontextmanager
async def open_dask_executor(
    scheduler: str | None, *, connect_timeout: float = DEFAULT_SCHEDULER_TIMEOUT
) -> AsyncIterator[DaskExecutor]:
    """Connect to ``scheduler`` (``tcp://HOST:PORT``), or start a local cluster of
    worker processes when it is None; close them on exit. Raises
    :class:`ExecutorUnavailable` when ``distributed`` is missing or the scheduler
    cannot be reached within ``connect_timeout`` seconds."""
    try:
        import distributed
    except ImportError:
        raise ExecutorUnavailable(
            "--executor dask needs the dask extra: install 'asyncbatch[dask]'"
        ) from None
    logging.getLogger("distributed").setLevel(logging.ERROR)
    async with contextlib.AsyncExitStack() as stack:
        target: Any = scheduler
        if scheduler is None:
            try:
                cluster = await distributed.LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=LOCAL_WORKERS,
                    threads_per_worker=1,
                    processes=True,
                    asynchronous=True,
                    dashboard_address=None,
                )
            except Exception as exc:
                raise ExecutorUnavailable(f"cannot start a local Dask cluster: {exc}") from exc
            stack.push_async_callback(_close, cluster)
            target = cluster
        client = await _connect(distributed, target, scheduler, connect_timeout=connect_timeout)
        stack.push_async_callback(_close, client)
        yield DaskExecutor(client)


async def _connect(
    distributed: Any, target: Any, scheduler: str | None, *, connect_timeout: float
) -> Any:
    """A started asynchronous client of ``target``; one that fails to start is
    closed (left to the garbage collector, it would warn of a closed loop later)."""
    try:
        client = distributed.Client(target, asynchronous=True, timeout=connect_timeout)
    except Exception as exc:  # a malformed address, say
        raise _unreachable(scheduler, connect_timeout, exc) from exc
    try:
        await client
    except Exception as exc:
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(CANCEL_WAIT),
            contextlib.suppress(Exception),
        ):
            await client.close(timeout=CANCEL_WAIT)
        raise _unreachable(scheduler, connect_timeout, exc) from exc
    return client


def _unreachable(scheduler: str | None, timeout: float, exc: Exception) -> ExecutorUnavailable:
    where = "the local cluster" if scheduler is None else scheduler or repr(scheduler)
    within = f" within {timeout:g} s" if isinstance(exc, OSError | TimeoutError) else ""
    return ExecutorUnavailable(
        f"cannot reach the Dask scheduler {where}{within}: {type(exc).__name__}: {exc}"
    )
