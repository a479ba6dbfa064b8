"""The one composition root: what a run needs is built here, from one
:class:`~asyncbatch.options.RunOptions`, and one run's whole lifecycle is held in one
exit stack.

- :func:`load_config` (``asyncbatch.load_config``) loads a config with the default
  registry (the built-ins, ``@action`` declarations, the installed plugins) unless
  given another;
- :func:`run_batch` (``asyncbatch.run_batch``) runs a loaded config from any running
  asyncio program, with an executor built from the options (local, or Dask) unless
  given one;
- :func:`run_session` is what ``asyncbatch run`` and ``each`` call once the config is
  loaded: the executor, the journal, the progress display and signal handling are
  opened around the run and closed after it, and every way out (success, failure, a
  signal) passes the same final writes; it returns the report with its exit code.

Signals (:mod:`asyncbatch.interrupts`): the first SIGINT, SIGTERM or SIGHUP stops the
run cleanly (running jobs are cancelled, every unfinished job is ``cancelled``, the
report is still written) and the exit code is 130, 143 or 129; a second SIGINT means
"now": the
running programs are killed and the process exits at once with 130, every finished
job already in the journal.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from asyncbatch.engine import RunListener
from asyncbatch.interrupts import Interruptions
from asyncbatch.kernel import DEFAULT_TUNING, Tuning
from asyncbatch.options import RunOptions
from asyncbatch.output.display import Stderr, Tracebacks, open_display

if TYPE_CHECKING:
    import anyio

    from asyncbatch.config import BatchConfig, LoadLimits
    from asyncbatch.engine import Backoff, Executor, Machine, Recorder
    from asyncbatch.model import JobResult, Report
    from asyncbatch.output.blocks import Printer
    from asyncbatch.output.journal import Journal
    from asyncbatch.registry import ActionRegistry

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def default_registry() -> ActionRegistry:
    """The actions a config may name: the built-ins, those user code declared with
    ``@asyncbatch.action``, then (looked up on a miss) the installed plugins."""
    from asyncbatch.actions import default_registry as composed

    return composed()


def load_config(
    source: str | os.PathLike[str],
    *,
    registry: ActionRegistry | None = None,
    strict: bool = False,
    stdin: TextIO | BinaryIO | None = None,
    root: str | os.PathLike[str] | None = None,
    limits: LoadLimits | None = None,
) -> BatchConfig:
    """Read, validate and expand a config (``asyncbatch.load_config``); raise
    ``ConfigError`` listing every problem. Its actions are looked up in ``registry``
    (default: :func:`default_registry`); ``strict`` makes unknown actions errors;
    ``"-"`` reads JSON from ``stdin`` (default: ``sys.stdin``); ``root`` confines
    its inputs; ``limits`` bounds what loading may cost. See
    :func:`asyncbatch.config.load_config`."""
    from asyncbatch.config import load_config as load

    return load(
        source,
        registry=registry if registry is not None else default_registry(),
        strict=strict,
        stdin=stdin,
        root=root,
        limits=limits,
    )


async def run_batch(
    config: BatchConfig,
    options: RunOptions | None = None,
    *,
    executor: Executor | None = None,
    tuning: Tuning = DEFAULT_TUNING,
    listener: RunListener | Sequence[RunListener] | None = None,
    on_job_done: Callable[[JobResult], None] | None = None,
    journal: Recorder | None = None,
    stop: anyio.Event | None = None,
    backoff: Backoff | None = None,
    machine: Machine | None = None,
    history: Mapping[str, float] | None = None,
    **fields: Any,
) -> Report:
    """Run every job of ``config`` and return the report (``asyncbatch.run_batch``):
    a coroutine that starts no event loop of its own.

    ``options`` (default: ``RunOptions()``), with ``fields`` changed (any field of
    :class:`~asyncbatch.options.RunOptions`: ``max_concurrency=4``, ``timeout=30``,
    ``retries=2``, ``halt=Halt.parse("now,fail=1")``...), shape the run. ``executor`` runs the
    attempts (default: the one ``options.executor`` names, built with ``tuning``);
    ``listener`` (one, or several) hears of starts, failed attempts, retries and
    results, and ``on_job_done`` is called with each result as its job ends;
    ``journal`` records results and offers earlier ones for reuse; ``stop`` halts the
    run once set; ``backoff`` spaces retries; ``machine`` is what ``load`` and
    ``memfree`` read; ``history`` the recorded durations ``order="history"`` sorts by
    (default: read from the journal or report at ``options.output``). See
    :func:`asyncbatch.engine.run_jobs` for the semantics."""
    from asyncbatch.engine import run_jobs

    options = (options or RunOptions()).replace(**fields)
    listeners = (
        []
        if listener is None
        else [listener]
        if not isinstance(listener, Sequence)
        else list(listener)
    )
    if on_job_done is not None:
        listeners.append(_Callback(on_job_done))
    if history is None:
        history = durations_for(options)
    async with contextlib.AsyncExitStack() as stack:
        if executor is None:
            executor = await open_executor(stack, options, tuning)
        return await run_jobs(
            config,
            options,
            executor=executor,
            listeners=listeners,
            journal=journal,
            stop=stop,
            backoff=backoff,
            machine=machine,
            history=history,
        )


def durations_for(options: RunOptions) -> dict[str, float] | None:
    """The recorded durations ``--order history`` sorts by, read before the run's
    journal replaces the earlier one (None: config order)."""
    if options.order != "history" or options.output is None:
        return None
    from asyncbatch.output.journal import recorded_durations

    return recorded_durations(options.output)


@dataclass(slots=True)
class Outcome:
    """What a session ended with: the report and the exit code it asks for."""

    report: Report
    exit_code: int
    failed_writes: list[str] = field(default_factory=list)
    """Why a final write failed (the report or JUnit file); each makes exit 2."""
    stdout_failure: str | None = None
    """Why what the jobs print could not reach standard output (exit 2)."""


def run_session(
    config: BatchConfig,
    options: RunOptions,
    *,
    tuning: Tuning = DEFAULT_TUNING,
    stderr: TextIO | None = None,
    warn: Callable[[str], None] | None = None,
    interruptions: Interruptions | None = None,
) -> Outcome:
    """Run ``config`` with ``options`` from start to final writes; see the module doc.

    Raises ``OutputError`` (an output cannot be written, the report is locked
    by another run), ``ConfigError`` (a job declares the report, its journal or
    lock as an output) or ``ExecutorUnavailable`` (the Dask scheduler cannot be
    reached) before any job starts. ``tuning`` sizes the executor's reads. The live
    progress and ``-v`` lines go to ``stderr`` (default: ``sys.stderr`` as it is at
    each write, so that lines print above the live display); ``warn`` gets warnings
    for people (default: lines there). ``interruptions`` is the command's signal
    handling (default: installed for the session only)."""
    import anyio

    if interruptions is None:
        with Interruptions() as own:
            return run_session(
                config, options, tuning=tuning, stderr=stderr, warn=warn, interruptions=own
            )
    from asyncbatch.output.destinations import check_outputs

    check_outputs(options, config)
    err = Stderr(stderr)
    say = warn or (lambda message: err.line(f"warning: {message}"))
    session = _Session(config, options, tuning, err, say)
    # The loaded jobs live as long as the run: the cyclic collector need not walk
    # them again at every collection the run's allocations set off.
    gc.freeze()
    try:
        return anyio.run(session.run, interruptions, backend="asyncio")
    finally:
        gc.unfreeze()


class _Session:
    """One run of the command, with what it was built from."""

    def __init__(
        self,
        config: BatchConfig,
        options: RunOptions,
        tuning: Tuning,
        stderr: Stderr,
        warn: Callable[[str], None],
    ) -> None:
        self._config = config
        self._options = options
        self._tuning = tuning
        self._stderr = stderr
        self._warn = warn

    async def run(self, interruptions: Interruptions) -> Outcome:
        """The session, stopped cleanly by a first signal (a second SIGINT kills the
        running programs on its way out); the exit code it asks for."""
        import anyio

        from asyncbatch.files.programs import kill_all

        interruptions.before_exit_now(kill_all)
        stop = anyio.Event()
        with interruptions.stopping(stop.set):
            outcome = await self._run(stop)
        if interruptions.exit_code is not None:
            outcome.exit_code = interruptions.exit_code
        return outcome

    async def _run(self, stop: anyio.Event) -> Outcome:
        """Open, run, close, write. Closing goes in reverse: the progress display is
        erased, the journal synced and closed, the report and JUnit file written, and
        the executor closed last (a Dask cluster takes a while to stop)."""
        from asyncbatch.engine import run_jobs
        from asyncbatch.files.stream import close_worker_processes
        from asyncbatch.output.blocks import open_printer

        config, options, stderr = self._config, self._options, self._stderr
        finals = _FinalWrites(options, self._warn)
        history = durations_for(options)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(close_worker_processes)  # last: see its doc
            executor = await open_executor(stack, options, self._tuning)
            stack.callback(finals.write)
            journal = _open_journal(stack, config, options, self._warn)
            finals.printer = printer = open_printer(stack, config, options, self._warn)
            display = open_display(stack, config, options, stderr, history)
            listeners: list[Any] = [printer, display]
            if options.debug:
                listeners.append(Tracebacks(stderr.line))
            finals.report = await run_jobs(
                config,
                options,
                executor=executor,
                listeners=[each for each in listeners if each is not None],
                journal=journal,
                stop=stop,
                history=history,
                streams=None if printer is None else printer.open,
            )
        return finals.outcome()


async def open_executor(
    stack: contextlib.AsyncExitStack, options: RunOptions, tuning: Tuning
) -> Executor:
    """The executor ``options.executor`` names, built with ``tuning``, open until the
    stack closes."""
    from asyncbatch.engine import LocalExecutor

    if options.executor == "local":
        return LocalExecutor(tuning)
    from asyncbatch.engine.dask import open_dask_executor

    return await stack.enter_async_context(
        open_dask_executor(
            options.scheduler, connect_timeout=options.scheduler_timeout, tuning=tuning
        )
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
    from asyncbatch.files.confine import real_root
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


class _Callback(RunListener):
    """``on_job_done`` as a listener."""

    def __init__(self, on_job_done: Callable[[JobResult], None]) -> None:
        self._on_job_done = on_job_done

    def job_done(self, result: JobResult) -> None:
        self._on_job_done(result)


class _FinalWrites:
    """The report and the JUnit file, written once the run has a report, whatever
    way the run ends. A failure is a reason for exit 2, never a traceback."""

    def __init__(self, options: RunOptions, warn: Callable[[str], None]) -> None:
        self._options = options
        self._warn = warn
        self.report: Report | None = None
        self.printer: Printer | None = None
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
        printed = None if self.printer is None else self.printer.failure
        return Outcome(self.report, code, list(self._failed), printed)
