"""One run's whole lifecycle, in one exit stack: the executor, the journal, the
progress display and signal handling are opened around the run and closed after it,
and every way out (success, failure, a signal) passes the same final writes.

:func:`run_session` is what ``asyncbatch run`` calls once the config is loaded:
it takes the typed :class:`RunOptions` and returns the report with its exit code.
Signals (:mod:`asyncbatch.interrupts`): the first SIGINT or SIGTERM stops the run
cleanly (running jobs are cancelled, every unfinished job is ``cancelled``, the report
is still written) and the exit code is 130 or 143; a second SIGINT means "now": the
process exits at once with 130, every finished job already in the journal.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

import anyio

from asyncbatch.interrupts import Interruptions
from asyncbatch.engine._hooks import RunListener
from asyncbatch.errors import RemoteError, describe_error

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig, Job
    from asyncbatch.engine import Executor, Recorder
    from asyncbatch.model import Report
    from asyncbatch.output.journal import Journal

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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
    debug: bool = False
    """Print each failed attempt's traceback on stderr."""

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


def check_outputs(options: RunOptions, config: BatchConfig) -> None:
    """Raise ``OutputError`` unless the report and JUnit file can be written where
    asked without destroying anything: before anything runs, so that an hour of
    work cannot end in "cannot write report". Each must be a regular file or absent
    (never a directory, device, FIFO or socket: ``-o /dev/stdout`` would replace the
    device), and neither may name the config file, an input of the batch, or the
    report's journal or lock."""
    if options.output is None and options.junit is None:
        return  # nothing to check, and nothing of the output modules to import
    from asyncbatch.output.report import check_destination

    taken = _files_of_the_run(options, config)
    for destination in (options.output, options.junit):
        if destination is not None:
            check_destination(
                destination,
                what="reports",
                taken=taken,
                taken_file=functools.partial(_input_at, config=config),
            )


def _files_of_the_run(options: RunOptions, config: BatchConfig) -> dict[str, str]:
    """Real paths an output may not name: the config file, the report's journal and
    lock."""
    taken = {}
    if config.source != "-":
        taken[os.path.realpath(config.source)] = "the config file"
    if options.output is not None:
        from asyncbatch.output._lock import lock_path
        from asyncbatch.output.journal import journal_path

        taken[os.path.realpath(journal_path(options.output))] = "the report's journal"
        taken[os.path.realpath(lock_path(options.output))] = "the report's lock"
    return taken


def _input_at(identity: tuple[int, int] | None, *, config: BatchConfig) -> str | None:
    """``an input of the batch (job NAME)`` when a job reads the file ``identity``
    names (links and other names of the same file included)."""
    if identity is None:
        return None
    seen: set[Path] = set()
    for job in config.jobs:
        if job.path in seen:
            continue
        seen.add(job.path)
        try:
            info = os.stat(job.path)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == identity:
            return f"an input of the batch (job {job.name!r})"
    return None


def run_session(
    config: BatchConfig,
    options: RunOptions,
    *,
    stderr: TextIO | None = None,
    warn: Callable[[str], None] | None = None,
    interruptions: Interruptions | None = None,
) -> Outcome:
    """Run ``config`` with ``options`` from start to final writes; see the module doc.

    Raises ``OutputError`` (an output cannot be written, the report is locked
    by another run) or ``ExecutorUnavailable`` (the Dask scheduler cannot be
    reached) before any job starts. The live progress and ``-v`` lines go to
    ``stderr`` (default: ``sys.stderr`` as it is at each write, so that lines print
    above the live display); ``warn`` gets warnings for people (default: lines there).
    ``interruptions`` is the command's signal handling (default: installed for the
    session only)."""
    if interruptions is None:
        with Interruptions() as own:
            return run_session(config, options, stderr=stderr, warn=warn, interruptions=own)
    check_outputs(options, config)
    err = _Stderr(stderr)
    say = warn or (lambda message: err.line(f"warning: {message}"))
    session = functools.partial(_signalled_session, config, options, err, say, interruptions)
    return anyio.run(session, backend="asyncio")


async def _signalled_session(
    config: BatchConfig,
    options: RunOptions,
    stderr: _Stderr,
    warn: Callable[[str], None],
    interruptions: Interruptions,
) -> Outcome:
    """The session, stopped cleanly by a first signal; the exit code it asks for."""
    stop = anyio.Event()
    with interruptions.stopping(stop.set):
        outcome = await _session(config, options, stderr, warn, stop)
    if interruptions.exit_code is not None:
        outcome.exit_code = interruptions.exit_code
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
        listeners = [_open_display(stack, config, options, stderr)]
        if options.debug:
            listeners.append(_Tracebacks(stderr.line))
        finals.report = await run_batch(
            config,
            max_concurrency=options.max_concurrency,
            default_timeout=options.timeout,
            default_retries=options.retries,
            max_failures=options.max_failures,
            stop=stop,
            listener=[each for each in listeners if each is not None],
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
        journaled(options.output, resume=options.resume, root=root, warn=warn)
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


class _Tracebacks(RunListener):
    """``--debug``: each failed attempt's traceback, as Python prints it, on stderr."""

    def __init__(self, line: Callable[[str], None]) -> None:
        self._line = line

    def job_attempt_failed(self, job: Job, attempt: int, error: BaseException) -> None:
        import traceback

        if isinstance(error, RemoteError):
            text = f"{describe_error(error)['message']}\n(raised in a worker: no traceback)"
        else:
            text = "".join(traceback.format_exception(error)).rstrip("\n")
        self._line(f"traceback of {job.name} (attempt {attempt}):")
        for line in text.splitlines():  # one at a time: a line is escaped whole
            self._line(line)


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
        writes: list[tuple[Path, Callable[[Report, Path], None], str]] = []
        if self._options.output is not None:
            from asyncbatch.output.report import write_report

            writes.append((self._options.output, write_report, "report"))
        if self._options.junit is not None:  # xml.etree is imported only for --junit
            from asyncbatch.output.junit import write_junit

            writes.append((self._options.junit, write_junit, "JUnit report"))
        for path, writer, what in writes:
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


class _Stderr:
    """Where lines for people go: the stream given, else ``sys.stderr`` looked up at
    each write (a live display redirects it to print above itself)."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def stream(self) -> TextIO | None:
        """None when the process started with its stderr closed."""
        return self._stream if self._stream is not None else sys.stderr

    def line(self, text: str) -> None:
        from asyncbatch.output.terminal import write_line

        write_line(self.stream(), text)
