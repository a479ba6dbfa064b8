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

``distributed`` is an optional extra (``pip install 'asyncbatch[dask]'``), imported
only when a Dask executor is opened.
"""

from __future__ import annotations

import contextlib
import logging
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
        future = self._client.submit(
            run_on_worker, spec.func, str(path), params, confine.ROOT.get(), pure=False
        )
        try:
            tag, value = await future
        except anyio.get_cancelled_exc_class():
            # Best effort: a task already running on a worker cannot be interrupted.
            with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_WAIT):
                await future.cancel()
            raise
        if tag == "error":
            raise RemoteError(error=value)
        result: dict[str, Any] = value
        return result


def run_on_worker(func: ActionFunc, path: str, params: Any, root: str | None) -> tuple[str, Any]:
    """On the worker: run the async action to completion; ``("ok", result)`` or
    ``("error", {"type", "message"})``, never an exception."""
    import asyncio  # noqa: TID251 - a worker thread has no event loop; it needs one of its own

    token = confine.ROOT.set(root)
    try:
        return "ok", asyncio.run(_call(func, Path(path), params))
    except Exception as exc:  # noqa: BLE001 - every action failure travels back as a value
        return "error", describe_error(exc)
    finally:
        confine.ROOT.reset(token)


async def _call(func: ActionFunc, path: Path, params: Any) -> dict[str, Any]:
    return await func(path, params)


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
