"""``--executor dask``: run the attempts on a Dask distributed cluster.

Only the attempts travel: scheduling, timeouts, retries, the journal and the report
stay in the process that runs the command. What runs on the workers is in
:mod:`asyncbatch.engine._dask_worker`. Functions travel by reference (the worker
imports their module: built-ins, plugins and ``module:function`` actions must be
importable there), with the input path (the same path must be readable on the
worker) and the params.

Small files travel in batches, as they share a thread hop locally: a slot takes up
to ``tuning.batch_jobs`` ready jobs of kernels that need no process (``more``),
and one task runs them one after another on a worker, each under its own timeout
from the moment it starts there; the client then reports each job with the start
and end the worker measured. A job too big to read whole leaves the batch and runs
as a task of its own, the jobs behind it go back to the queue. Everything else is
one task per attempt: a custom action's async function (under ``asyncio.run`` on
the worker), a kernel that needs a process (a regex that may backtrack, in a
worker process of the worker, which a cancellation kills).

A task's timeout counts from the moment it starts on a worker, not while it waits
in the cluster's queue: the worker says so first thing, on the ``asyncbatch-started``
topic, and the client then starts the attempt and its timeout. A task that ends
before its start is heard of (it could not be loaded on the worker, its worker
died) ends the attempt as it is.

Cancelling an attempt (a timeout, fail-fast, a signal) sets a ``distributed.Event``
named after the task's key and cancels its Dask future (a queued task never starts).
Dask cannot interrupt a running task, so the worker watches that event while the
task runs: a kernel stops at its next chunk, a batch starts no further job, a custom
action's asyncio task is cancelled (a regex search's worker process is killed, a
command's group gets SIGTERM, then SIGKILL 2 s later), freeing the worker thread.
The attempt waits for that (:data:`STOP_WAIT`): no program outlives it, even if the
cluster closes next (see ``_dask_plugin``). Blocking code cannot be interrupted so.

``distributed`` is an optional extra (``pip install 'asyncbatch[dask]'``), imported
only when a Dask executor is opened.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from asyncbatch.engine._batch import BatchReporter
from asyncbatch.engine._dask_worker import (
    BATCH_SECONDS,
    STARTED_TOPIC,
    STOP_WAIT,
    BatchJob,
    BatchOutcome,
    TimedJob,
    run_batch_on_worker,
    run_on_worker,
    scan_on_worker,
)
from asyncbatch.engine.executors import (
    Attempt,
    TakeMore,
    awaited_call,
    is_cancellation,
    job_route,
    kernel_of,
    scans,
)
from asyncbatch.errors import ExecutorUnavailable, Timeout
from asyncbatch.files.stream import plain_params, scan_in_process
from asyncbatch.kernel import DEFAULT_TUNING, Tuning

if TYPE_CHECKING:
    from asyncbatch.config import Job

__all__ = ["DaskExecutor", "open_dask_executor", "run_on_worker", "scan_on_worker"]

DEFAULT_SCHEDULER_TIMEOUT = 10.0
CANCEL_WAIT = 2.0
"""How long a cancelled attempt waits for the scheduler to acknowledge the cancel."""
LOCAL_WORKERS = 2


class DaskExecutor:
    """Submit attempts to a connected ``distributed.Client``, small files many to a
    task, and await them."""

    def __init__(self, client: Any, tuning: Tuning = DEFAULT_TUNING) -> None:
        self._client = client
        self._tuning = tuning
        self._started: dict[str, anyio.Event] = {}
        """Tasks submitted and not yet ended, by key: set once a worker starts one."""
        self._pace: dict[str, float] = {}
        """Mean seconds a job of each custom action has taken on a worker."""
        client.subscribe_topic(STARTED_TOPIC, self._heard_started)

    def _heard_started(self, event: tuple[float, Any]) -> None:
        """A worker started the task named in ``event`` (``(time, key)``)."""
        _, key = event
        started = self._started.get(key) if isinstance(key, str) else None
        if started is not None:
            started.set()

    async def run(self, attempt: Attempt, more: TakeMore) -> None:
        spec = attempt.job.spec
        assert spec is not None
        route = job_route(attempt.job)
        if route == "process" or (route == "call" and not spec.batchable):
            await self._run_one(attempt)
            return
        if route == "scan":
            batch = [attempt, *more(scans, self._tuning.batch_jobs - 1)]
        else:
            batch = [attempt, *more(_batched_call, self._batch_size(spec.name) - 1)]
        await self._run_batch(batch)

    def _batch_size(self, action: str) -> int:
        """How many jobs of the custom ``action`` a batch takes: as many as its jobs
        have taken :data:`BATCH_SECONDS` to run so far on average (one until one has
        run), so that a batch does not hold jobs another slot could run."""
        pace = self._pace.get(action)
        if pace is None:
            return 1
        return max(1, min(self._tuning.batch_jobs, int(BATCH_SECONDS / max(pace, 1e-6))))

    def _learn_pace(self, attempts: list[Attempt], outcome: BatchOutcome) -> None:
        """Note how long the custom action's jobs of a batch took on the worker."""
        spec = attempts[0].job.spec
        if spec is None or spec.kernel is not None or not outcome.done:
            return
        seconds = sum(done.ended - done.started for done in outcome.done) / len(outcome.done)
        last = self._pace.get(spec.name)
        self._pace[spec.name] = seconds if last is None else (last + seconds) / 2

    async def _run_one(self, attempt: Attempt) -> None:
        key = _new_key()
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
            await _cancel_on_cluster(self._client, key, future, running=started.is_set())
            raise
        if timed_out:
            attempt.fail(Timeout(seconds=attempt.timeout or 0))
            await _cancel_on_cluster(self._client, key, future, running=True)
        elif ended.error is not None:
            attempt.fail(ended.error)
        else:
            result, used = ended.result  # a scan, an awaited call: what it used too
            attempt.succeed(result, None, used)

    def _submit(self, attempt: Attempt, key: str) -> Any:
        """The attempt's task, submitted under ``key``: its Dask future."""
        job = attempt.job
        route = job_route(job)
        if route == "call":
            return self._client.submit(run_on_worker, awaited_call(attempt), key, key=key)
        path, root, tuning = str(job.path), attempt.root, self._tuning
        plain = plain_params(job.params)
        if route == "scan":
            return self._client.submit(
                scan_on_worker, kernel_of(job), path, plain, tuning, root, key, key=key
            )
        call = functools.partial(scan_in_process, kernel_of(job), path, plain, tuning, root)
        return self._client.submit(run_on_worker, call, key, key=key)

    async def _run_batch(self, attempts: list[Attempt]) -> None:
        """Run ``attempts`` (small files) in one task; a file too big for it runs
        in a task of its own after (the attempts behind it go back to the queue)."""
        key = _new_key()
        started = self._started[key] = anyio.Event()
        try:
            outcome = await self._batch_outcome(attempts, key, started)
        finally:
            del self._started[key]
        if outcome is None or outcome.end.large is None:
            return
        await anyio.lowlevel.checkpoint_if_cancelled()  # halted by a job of the batch
        await self._run_one(attempts[outcome.end.large[0]])

    async def _batch_outcome(
        self, attempts: list[Attempt], key: str, started: anyio.Event
    ) -> BatchOutcome | None:
        """Submit the batch, wait for its start and end, and report its jobs; the
        outcome, or None when the task failed as a whole (its jobs fail with it)."""
        first = attempts[0]
        jobs: list[TimedJob] = [(_batch_job(a), a.timeout) for a in attempts]
        try:
            future = self._client.submit(
                run_batch_on_worker,
                jobs,
                self._tuning,
                first.root,
                first.failure_may_halt,
                key,
                key=key,
                stop_after_successes=first.successes_to_halt,
            )
        except Exception as exc:  # noqa: BLE001 - the call cannot be sent (pickling)
            _fail_all(attempts, exc)
            return None
        ended = _Ended()
        heard: float | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(ended.collect, future, started)
                await started.wait()
                if not ended.event.is_set():  # heard from the worker: the batch runs
                    heard = time.perf_counter()
                    first.start(heard)
                await ended.event.wait()
        except anyio.get_cancelled_exc_class():
            await _cancel_on_cluster(self._client, key, future, running=started.is_set())
            raise
        if ended.error is not None:
            _fail_all(attempts, ended.error)
            return None
        outcome: BatchOutcome = ended.result
        self._learn_pace(attempts, outcome)
        _report(attempts, outcome, heard)
        return outcome


def _report(attempts: list[Attempt], outcome: BatchOutcome, heard: float | None) -> None:
    """Report a batch's jobs at the times the worker measured them, counted from
    when its start was heard (or, heard of only at its end, from its length)."""
    now = time.perf_counter()
    began = heard if heard is not None else now - outcome.elapsed
    reporter = BatchReporter(attempts, lambda offset: min(began + offset, now))
    for done in outcome.done:
        reporter.done(done)
    reporter.ended(outcome.end)


def _fail_all(attempts: list[Attempt], error: BaseException) -> None:
    for attempt in attempts:
        attempt.fail(error)


def _new_key() -> str:
    return f"asyncbatch-{uuid.uuid4().hex}"


def _batched_call(job: Job) -> bool:
    """A job of a batch of awaited calls: an action without a kernel that may share
    a task."""
    return job_route(job) == "call" and job.spec is not None and job.spec.batchable


def _batch_job(attempt: Attempt) -> BatchJob:
    """What a batch runs for ``attempt``: its kernel over the input, or its action."""
    job = attempt.job
    if job_route(job) == "call":
        return awaited_call(attempt)
    return (kernel_of(job), str(job.path), plain_params(job.params))


class _Ended:
    """How an attempt's task ended: ``result`` or ``error``, once ``event`` is set."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: Any = None
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


async def _cancel_on_cluster(client: Any, key: str, future: Any, *, running: bool) -> None:
    """Stop the attempt's task: a queued task never starts; a ``running`` one sees the
    event, stops at its next checkpoint and ends its program, waited for (see the
    module doc)."""
    import distributed

    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(CANCEL_WAIT):
            await distributed.Event(key, client=client).set()  # type: ignore[no-untyped-call]
        if running:
            with anyio.move_on_after(STOP_WAIT), contextlib.suppress(Exception):
                await future  # ended by the event (an error), or done meanwhile
        with anyio.move_on_after(CANCEL_WAIT):
            await future.cancel()


@contextlib.asynccontextmanager
async def open_dask_executor(
    scheduler: str | None,
    *,
    connect_timeout: float = DEFAULT_SCHEDULER_TIMEOUT,
    tuning: Tuning = DEFAULT_TUNING,
) -> AsyncIterator[DaskExecutor]:
    """Connect to ``scheduler`` (``tcp://HOST:PORT``), or start a local cluster of
    worker processes when it is None; close them on exit. ``tuning`` sizes the reads
    on the workers and the batches. Raises
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
            import dask

            from asyncbatch.engine._dask_plugin import start_resource_tracker

            start_resource_tracker()
            try:
                # No dashboard, so no statistical profiler either: it samples every
                # worker's threads every 10 ms for nobody.
                with dask.config.set({"distributed.worker.profile.enabled": False}):
                    cluster = await distributed.LocalCluster(  # type: ignore[no-untyped-call]
                        n_workers=LOCAL_WORKERS,
                        threads_per_worker=1,
                        processes=True,
                        asynchronous=True,
                        dashboard_address=None,
                    )
            except Exception as exc:
                raise ExecutorUnavailable(f"cannot start a local Dask cluster: {exc}") from exc
            target = cluster
            stack.push_async_callback(target.close)
        client = await _connect(distributed, target, scheduler, connect_timeout=connect_timeout)
        stack.push_async_callback(client.close)
        from asyncbatch.engine._dask_plugin import install_plugin

        await install_plugin(client, own_cluster=scheduler is None)
        yield DaskExecutor(client, tuning)


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
