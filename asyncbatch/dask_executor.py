"""``--executor dask``: run each attempt of an action on a Dask distributed cluster.

Only the attempt travels: the scheduling, timeouts, retries, the journal and the
report stay in the process that runs the command (:mod:`asyncbatch.runner`). The
worker gets the action's function (pickled by reference: the worker imports its
module, so built-ins, plugins and ``module:function`` actions must be importable
there), the input path (the same path must be readable on the worker) and the
validated params, and runs the async action with ``asyncio.run``. It returns a
tagged outcome rather than raising: a failure is described on the worker by
:func:`asyncbatch.errors.describe_error` and rebuilt here as a
:class:`~asyncbatch.errors.RemoteError`.

Cancelling an attempt (a timeout, fail-fast, a signal) cancels its Dask future (a
queued task never starts) and sets a ``distributed.Event`` named after the attempt.
Dask cannot interrupt a running task, so the worker watches that event while the
action runs and cancels the action's asyncio task when it is set: built-in actions
stop at their next chunk (a regex search's worker process is killed), freeing the
worker thread. Blocking code in a custom action cannot be interrupted this way.

``distributed`` is an optional extra (``pip install 'asyncbatch[dask]'``), imported
only when a Dask executor is opened.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from asyncbatch import confine
from asyncbatch.errors import AsyncbatchError, RemoteError, describe_error

if TYPE_CHECKING:
    from asyncbatch.registry import ActionFunc, ActionSpec

DEFAULT_SCHEDULER_TIMEOUT = 10.0
CANCEL_WAIT = 2.0
"""How long a cancelled attempt waits for the scheduler to acknowledge the cancel."""
CANCEL_POLL = 0.2
"""How often (seconds) a worker checks whether its running attempt was cancelled."""
LOCAL_WORKERS = 2


class ExecutorUnavailable(AsyncbatchError):
    """The executor cannot start: the extra is missing or the scheduler is
    unreachable. Raised before any job starts (the CLI exits 2)."""


class DaskExecutor:
    """Submit each attempt to a connected ``distributed.Client`` and await it."""

    local = False

    def __init__(self, client: Any) -> None:
        self._client = client

    async def run(self, spec: ActionSpec, path: Path, params: Any) -> dict[str, Any]:
        import distributed

        key = f"asyncbatch-{uuid.uuid4().hex}"
        future = self._client.submit(
            run_on_worker, spec.func, str(path), params, confine.ROOT.get(), key, key=key
        )
        try:
            tag, value = await future
        except anyio.get_cancelled_exc_class():
            # A queued task never starts; a running one sees the event and stops at
            # its next checkpoint. The run does not wait for either.
            with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_WAIT):
                await distributed.Event(key, client=self._client).set()  # type: ignore[no-untyped-call]
                await future.cancel()
            raise
        if tag == "error":
            raise RemoteError(error=value)
        if tag == "cancelled":  # only after a cancel from here; kept for safety
            raise RemoteError(error={"type": "Cancelled", "message": "cancelled on the worker"})
        result: dict[str, Any] = value
        return result


def run_on_worker(
    func: ActionFunc, path: str, params: Any, root: str | None, key: str | None = None
) -> tuple[str, Any]:
    """On the worker: run the async action to completion; ``("ok", result)``,
    ``("error", {"type", "message"})`` or ``("cancelled", None)``, never an exception.

    With ``key``, a thread watches the ``distributed.Event`` of that name and cancels
    the action when the client sets it (the attempt was cancelled or timed out)."""
    import asyncio  # noqa: TID251 - a worker thread has no event loop; it needs one of its own

    event = _cancel_event(key)
    token = confine.ROOT.set(root)
    try:
        return "ok", asyncio.run(_call(func, Path(path), params, event))
    except asyncio.CancelledError:
        return "cancelled", None
    except Exception as exc:  # noqa: BLE001 - every action failure travels back as a value
        return "error", describe_error(exc)
    finally:
        confine.ROOT.reset(token)


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


async def _call(func: ActionFunc, path: Path, params: Any, event: Any) -> dict[str, Any]:
    import asyncio  # noqa: TID251 - the worker's own loop: cancel its task from a thread

    if event is None:
        return await func(path, params)
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(func(path, params))
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                if event.wait(timeout=CANCEL_POLL):
                    loop.call_soon_threadsafe(task.cancel)
                    event.clear()  # the scheduler forgets a cleared event
                    return
            except Exception:  # noqa: BLE001 - no scheduler: the action runs to its end
                return

    threading.Thread(target=watch, name=f"cancel-watch-{task.get_name()}", daemon=True).start()
    try:
        return await task
    finally:
        done.set()


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
        try:
            client = await distributed.Client(  # type: ignore[no-untyped-call]
                target, asynchronous=True, timeout=connect_timeout
            )
        except Exception as exc:
            where = scheduler or "the local cluster"
            raise ExecutorUnavailable(
                f"cannot reach the Dask scheduler {where} within {connect_timeout:g} s: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        stack.push_async_callback(_close, client)
        yield DaskExecutor(client)
