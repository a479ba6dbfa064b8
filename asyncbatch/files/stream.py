"""The async drivers of a kernel over one file: streamed with aiofiles, or run in a
worker process that a timeout can kill.

Streaming is the shape of every built-in action: stat, open, then large chunks read
with aiofiles into one reused buffer, each fed to the kernel's scanner: in the event
loop, where a chunk of a few megabytes costs a few milliseconds, or in a daemon
thread for a kernel that releases the GIL (hashing). Cancellation (a timeout) stops
the stream at its next chunk. Every blocking call runs in a daemon thread
(:mod:`asyncbatch.files._threads`).

Two more drivers, for work that is CPU-bound: :func:`scan_in_thread` runs a whole
file in one daemon thread (a kernel that releases the GIL: several files hash on
several cores, without a thread hop per chunk), stopped at its next chunk when the
job is cancelled; :func:`scan_in_process` runs it in a worker process
(``anyio.to_process``), killed when the job is cancelled or times out: for a kernel
that may never return (a regex, ``Kernel.isolated``) or that holds the GIL over a big
file.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiofiles

from asyncbatch.files._threads import EXECUTOR, run_blocking
from asyncbatch.files.scan import (
    Scanned,
    open_regular,
    scan_file,
    scan_file_in_worker,
    stat_regular,
)
from asyncbatch.kernel import DEFAULT_TUNING, Kernel, Tuning, route_of
from asyncbatch.model import Resources


def plain_params(params: Any) -> Mapping[str, Any]:
    """Validated params as the plain values a kernel takes (a pydantic model is
    dumped; a dict is taken as is)."""
    dump = getattr(params, "model_dump", None)
    return dump() if dump is not None else dict(params or {})


async def stream_file(
    kernel: Kernel,
    path: str | os.PathLike[str],
    params: Mapping[str, Any],
    tuning: Tuning = DEFAULT_TUNING,
    root: str | None = None,
) -> Scanned:
    """``kernel`` over the file at ``path``, streamed with aiofiles (see the module
    doc). Raises ``NotARegularFile`` before opening anything that is not a regular
    file, ``OutsideRoot`` for a file outside ``root``, and ``OSError`` as it comes.
    Its CPU time is not measured: the event loop's thread does other work too."""
    name = os.fspath(path)
    size = (await run_blocking(stat_regular, name, root)).st_size
    scanner = kernel.start(name, size, params, tuning)
    if not kernel.reads:
        return scanner.result(), Resources(read_bytes=0)
    read = 0
    opener = functools.partial(open_regular, root=root)
    # Not ``async with``: aiofiles' __aexit__ closes in the default executor.
    file = await aiofiles.open(name, "rb", buffering=0, opener=opener, executor=EXECUTOR)
    try:
        buffer = bytearray(tuning.chunk_bytes)
        while length := await file.readinto(buffer):
            read += length
            chunk = buffer if length == len(buffer) else buffer[:length]
            if kernel.releases_gil:
                await run_blocking(scanner.update, chunk)
            else:
                scanner.update(chunk)
    finally:
        await file.close()
    return scanner.result(), Resources(read_bytes=read)


async def scan_in_thread(
    kernel: Kernel,
    path: str | os.PathLike[str],
    params: Mapping[str, Any],
    tuning: Tuning = DEFAULT_TUNING,
    root: str | None = None,
) -> Scanned:
    """``kernel`` over the file at ``path`` in one daemon thread, which stops at its
    next chunk once this call is cancelled."""
    stop = threading.Event()
    try:
        return await run_blocking(scan_file, kernel, os.fspath(path), params, tuning, root, stop)
    finally:
        stop.set()


async def scan_in_process(
    kernel: Kernel,
    path: str | os.PathLike[str],
    params: Mapping[str, Any],
    tuning: Tuning = DEFAULT_TUNING,
    root: str | None = None,
) -> Scanned:
    """``kernel`` over the file at ``path`` in a worker process, killed if this call
    is cancelled. The worker stats before it opens, as every driver does; our
    errors and ``OSError`` come back pickled, as they were raised."""
    import anyio.to_process

    scanned: Scanned = await anyio.to_process.run_sync(
        scan_file_in_worker,
        kernel,
        os.fspath(path),
        dict(params),
        tuning,
        root,
        os.getpid(),
        cancellable=True,
    )
    return scanned


WORKERS_EXIT = 2.0
"""Seconds idle worker processes get to exit on their own at the end of a run."""


async def close_worker_processes() -> None:
    """End this event loop's worker processes (:func:`scan_in_process`) while the
    loop still runs: their standard input is closed, on which they exit, and each is
    waited for (killed after :data:`WORKERS_EXIT` seconds).

    Left to anyio's own end-of-loop cleanup, each worker is killed twice, by two
    hooks, and the second kill's ``poll()`` may reap the dead worker before asyncio's
    waiting thread does, which then prints "Unknown child process pid N, will report
    returncode 255" on stderr. Workers taken out of anyio's set here are out of
    reach of both hooks."""
    import anyio
    import anyio.to_process

    registry = getattr(anyio.to_process, "_process_pool_workers", None)
    workers: set[Any] | None = None if registry is None else registry.get(None)
    if not workers:
        return
    idle = getattr(anyio.to_process, "_process_pool_idle_workers", None)
    queue = None if idle is None else idle.get(None)
    if queue is not None:
        queue.clear()
    closing = list(workers)
    workers.clear()
    with anyio.CancelScope(shield=True):
        for process in closing:
            with anyio.move_on_after(WORKERS_EXIT) as scope:
                await process.aclose()  # closes its stdin, then waits for its exit
            if scope.cancelled_caught and process.returncode is None:
                process.kill()
                await process.wait()


async def run_kernel(kernel: Kernel, path: Path, params: Any) -> dict[str, Any]:
    """A built-in action's body: its kernel streamed, or in a worker process when it
    must be killable. The executor of a run takes faster routes where it can."""
    plain = plain_params(params)
    if route_of(kernel, lambda: plain) == "process":
        result, _ = await scan_in_process(kernel, path, plain)
    else:
        result, _ = await stream_file(kernel, path, plain)
    return result
