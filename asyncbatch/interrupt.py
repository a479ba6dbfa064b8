"""SIGINT and SIGTERM during a run: stop cleanly once, exit at once the second time.

The first signal sets the runner's ``stop`` event: running jobs are cancelled,
every unfinished job is ``cancelled``, and the caller still gets a Report to write
(exit 130 or 143). A second SIGINT means "now": the process exits at once with
130; every finished job is already in the journal, written line by line.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import anyio
from anyio.abc import TaskStatus

from asyncbatch.config import BatchConfig
from asyncbatch.report import Report
from asyncbatch.runner import run_batch

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


async def run_until_signalled(config: BatchConfig, **options: Any) -> tuple[Report, int | None]:
    """``run_batch`` with signal handling; returns the report and the exit code a
    signal asks for (None when no signal arrived)."""
    stop = anyio.Event()
    received: list[signal.Signals] = []
    async with anyio.create_task_group() as group:
        await group.start(_watch_signals, stop, received)
        report = await run_batch(config, stop=stop, **options)
        group.cancel_scope.cancel()
    return report, EXIT_CODES[received[0]] if received else None


async def _watch_signals(
    stop: anyio.Event,
    received: list[signal.Signals],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            if not received:
                received.append(signum)
                stop.set()
            elif signum == signal.SIGINT:
                os._exit(EXIT_CODES[signal.SIGINT])
