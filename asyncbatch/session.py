"""One run's whole lifecycle, in one exit stack: the executor, the journal, the
progress display and signal handling are opened around the run and closed after it,
and every way out (success, failure, a signal) passes the same final writes.

:func:`run_session` is what ``asyncbatch run`` calls once the config is loaded:
it takes the typed :class:`RunOptions` and returns the report with its exit code.
Signals: the first SIGINT or SIGTERM stops the run cleanly (running jobs are
cancelled, every unfinished job is ``cancelled``, the report is still written) and
the exit code is 130 or 143; a second SIGINT means "now": the process exits at once
with 130, every finished job already in the journal, written line by line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

import anyio
from anyio.abc import TaskStatus

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig
    from asyncbatch.engine import Executor, Recorder, RunListener
    from asyncbatch.output.journal import Journal
    from asyncbatch.output.report import Report

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The options of ``asyncbatch run`` that shape a run (loading has its own)."""

    max_concurrency: int | None = None
    output: Path | None = None
    junit: Path | None = None
    timeout: float | None = None
    retries: int | None = None
    max_failures: int | None = None
    resume: bool = False
    progress: bool | None = None
    quiet: bool = False
    verbose: bool = False
    executor: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    scheduler_timeout: float = 10.0

    def problems(self) -> list[str]:
        """Combinations that cannot run, as messages (usage errors, exit 2)."""
        found = []
        if self.scheduler is not None and self.executor != "dask":
            found.append("--scheduler needs --executor dask")
        if self.resume and self.output is None:
            found.append(
                "--resume needs --output: the journal to resume from lives beside the report"
            )
        if (
            self.junit is not None
            and self.output is not None
            and self.junit.resolve() == self.output.resolve()
        ):
            found.append("--junit and --output must name different files")
        return found


@dataclass(slots=True)
class Outcome:
    """What a session ended with: the report and the exit code it asks for."""

    report: Report
    exit_code: int
    failed_writes: list[str] = field(default_factory=list)
    """Why a final write failed (the report or JUnit file); each makes exit 2."""


def check_outputs(options: RunOptions) -> None:
    """Raise ``OutputError`` unless the report and JUnit file can be written
    where asked: before anything runs, so that an hour of work cannot end in
    "cannot write report"."""
    from asyncbatch.output.report import check_output_writable

    for destination in (options.output, options.junit):
        if destination is not None:
            check_output_writable(destination)


def run_session(
    config: BatchConfig,
    options: RunOptions,
    *,
    stderr: TextIO | None = None,
    warn: Callable[[str], None] | None = None,
) -> Outcome:
    """Run ``config`` with ``options`` from start to final writes; see the module doc.

    Raises ``OutputError`` (an output cannot be written, the report is locked
    by another run) or ``ExecutorUnavailable`` (the Dask scheduler cannot be
    reached) before any job starts. The live progress and ``-v`` lines go to
    ``stderr`` (default: ``sys.stderr`` as it is at each write, so that lines print
    above the live display); ``warn`` gets warnings for people (default: lines there)."""
    check_outputs(options)
    err = _Stderr(stderr)
    say = warn or (lambda message: err.line(f"warning: {message}"))
    return anyio.run(
        functools.partial(_signalled_session, config, options, err, say), backend="asyncio"
    )


async def _signalled_session(
    config: BatchConfig, options: RunOptions, stderr: _Stderr, warn: Callable[[str], None]
) -> Outcome:
    """The session under signal handling: a first signal sets ``stop``."""
    from asyncbatch.errors import AsyncbatchError

    stop = anyio.Event()
    received: list[signal.Signals] = []
    refused: AsyncbatchError | None = None
    async with anyio.create_task_group() as group:
        await group.start(_watch_signals, stop, received)
        try:
            outcome = await _session(config, options, stderr, warn, stop)
        except AsyncbatchError as exc:  # raised as is, not in a task group's ExceptionGroup
            refused = exc
        group.cancel_scope.cancel()
    if refused is not None:
        raise refused
    if received:
        outcome.exit_code = EXIT_CODES[received[0]]
    return outcome


async def _session(
    config: BatchConfig,
    options: RunOptions,
    stderr: _Stderr,
    warn: Callable[[str], None],
    stop: anyio.Event,
) -> Outcome:
    """Open, run, close, write. Closing goes in reverse: the progress display is
    erased, the journal synced and closed, the report and JUnit file written, and
    the executor closed last (a Dask cluster takes a while to stop)."""
    from asyncbatch.engine import run_batch

    finals = _FinalWrites(options, warn)
    async with contextlib.AsyncExitStack() as stack:
        executor = await _open_executor(stack, options)
        stack.callback(finals.write)
        journal = _open_journal(stack, config, options, warn)
        listener = _open_display(stack, config, options, stderr)
        finals.report = await run_batch(
            config,
            max_concurrency=options.max_concurrency,
            default_timeout=options.timeout,
            default_retries=options.retries,
            max_failures=options.max_failures,
            stop=stop,
            listener=listener,
            journal=journal,
            executor=executor,
        )
    return finals.outcome()


async def _open_executor(stack: contextlib.AsyncExitStack, options: RunOptions) -> Executor:
    """The executor the options name, open until the stack closes."""
    from asyncbatch.engine import LocalExecutor

    if options.executor == "local":
        return LocalExecutor()
    from asyncbatch.engine.dask import open_dask_executor

    return await stack.enter_async_context(
        open_dask_executor(options.scheduler, connect_timeout=options.scheduler_timeout)
    )


def _open_journal(
    stack: contextlib.AsyncExitStack,
    config: BatchConfig,
    options: RunOptions,
    warn: Callable[[str], None],
) -> Recorder | None:
    """The journal beside the report (and its lock), when there is a report."""
    if options.output is None:
        return None
    from asyncbatch.files._confine import real_root
    from asyncbatch.output.journal import journaled

    root = None if config.root is None else real_root(config.root)
    journal, warnings = stack.enter_context(
        journaled(options.output, resume=options.resume, root=root)
    )
    for warning in warnings:
        warn(warning)
    stack.callback(_close_journal, journal, warn)  # before the lock is released
    return journal


def _close_journal(journal: Journal, warn: Callable[[str], None]) -> None:
    """Sync and close the journal; a disk or folder that fails it is a warning (what
    was written stays; the report, written next, says whether the run's end is lost)."""
    try:
        journal.close()
    except OSError as exc:
        warn(f"cannot finish the journal {journal.path}: {exc.strerror or exc}")


def _open_display(
    stack: contextlib.AsyncExitStack, config: BatchConfig, options: RunOptions, stderr: _Stderr
) -> RunListener | None:
    """Live progress and ``-v`` lines on ``stderr``, as the options ask."""
    from asyncbatch.output.progress import (
        ProgressListener,
        ProgressState,
        live_progress,
        progress_wanted,
    )

    lines = stderr.line if options.verbose else None
    state = None
    stream = stderr.stream()
    if progress_wanted(options.progress, quiet=options.quiet, stream=stream, environ=os.environ):
        state = stack.enter_context(live_progress(ProgressState(len(config.jobs))))
    if state is None and lines is None:
        return None
    return ProgressListener(state, lines)


class _FinalWrites:
    """The report and the JUnit file, written once the run has a report, whatever
    way the run ends. A failure is a reason for exit 2, never a traceback."""

    def __init__(self, options: RunOptions, warn: Callable[[str], None]) -> None:
        self._options = options
        self._warn = warn
        self.report: Report | None = None
        self._failed: list[str] = []

    def write(self) -> None:
        if self.report is None:
            return
        from asyncbatch.output.junit import write_junit
        from asyncbatch.output.report import write_report

        for path, writer, what in (
            (self._options.output, write_report, "report"),
            (self._options.junit, write_junit, "JUnit report"),
        ):
            if path is None:
                continue
            try:
                writer(self.report, path)
            except OSError as exc:
                self._failed.append(f"cannot write {what} {path}: {exc.strerror or exc}")

    def outcome(self) -> Outcome:
        assert self.report is not None
        if self._failed:
            code = EXIT_USAGE  # the summary is still printed; the reasons go to stderr
        elif self.report.ok:
            code = EXIT_OK
        else:
            code = EXIT_FAILED
        return Outcome(self.report, code, list(self._failed))


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


class _Stderr:
    """Where lines for people go: the stream given, else ``sys.stderr`` looked up at
    each write (a live display redirects it to print above itself)."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def line(self, text: str) -> None:
        from asyncbatch.output.terminal import write_line

        write_line(self.stream(), text)
