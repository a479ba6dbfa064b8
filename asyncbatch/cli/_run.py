"""``run``: load a batch from a config file, run or plan it through the session,
print the summary, exit with its code; and what ``each`` shares with it (the
options into :class:`RunOptions`, loading under signal handling, the run)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from asyncbatch.cli._app import Command, command_app
from asyncbatch.cli._options import (
    RUN_EXAMPLES,
    RUNNING,
    Debug,
    DryRun,
    Executor,
    FailFast,
    Junit,
    MaxConcurrency,
    MaxFailures,
    Output,
    Progress,
    Quiet,
    Resume,
    Retries,
    Scheduler,
    SchedulerTimeout,
    Timeout,
    Verbose,
)
from asyncbatch.cli._out import (
    EXIT_OK,
    EXIT_USAGE,
    checked,
    err,
    err_capped,
    exit_error,
    fail_config,
    print_json,
)
from asyncbatch.errors import ConfigError, ExecutorUnavailable, OutputError
from asyncbatch.output.terminal import print_end_of_run

if TYPE_CHECKING:
    from asyncbatch.interrupts import Interruptions
    from asyncbatch.config import BatchConfig
    from asyncbatch.session import RunOptions

commands = command_app()


@commands.command(cls=Command, epilog=RUN_EXAMPLES, short_help="Run the jobs of a config file.")
def run(
    config: Annotated[
        str | None,
        typer.Argument(
            metavar="CONFIG",
            help="Config file (.json, .toml, .yaml/.yml), or - for JSON on stdin "
            "(default: asyncbatch.toml, .yaml, .yml or .json here).",
            show_default=False,
        ),
    ] = None,
    max_concurrency: MaxConcurrency = None,
    output: Output = None,
    dry_run: DryRun = False,
    timeout: Timeout = None,
    retries: Retries = None,
    fail_fast: FailFast = False,
    max_failures: MaxFailures = None,
    resume: Resume = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="NAME",
            help="Run this job and what it needs (repeatable).",
            rich_help_panel=RUNNING,
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            metavar="",
            help="Unknown actions are config errors.",
            rich_help_panel=RUNNING,
        ),
    ] = False,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Refuse inputs outside DIR (links followed), and code actions.",
            metavar="DIR",
            rich_help_panel=RUNNING,
            show_default=False,
        ),
    ] = None,
    junit: Junit = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    progress: Progress = None,
    debug: Debug = False,
    executor: Executor = "local",
    scheduler: Scheduler = None,
    scheduler_timeout: SchedulerTimeout = 10.0,
) -> None:
    """Run a batch: print the summary as JSON on stdout; exit 0, 1 (a job failed
    or was cancelled) or 2 (usage or config error; nothing ran)."""
    options = run_options(
        max_concurrency=max_concurrency,
        output=output,
        junit=junit,
        timeout=timeout,
        retries=retries,
        fail_fast=fail_fast,
        max_failures=max_failures,
        resume=resume,
        progress=progress,
        debug=debug,
        quiet=quiet,
        verbose=verbose,
        executor=executor,
        scheduler=scheduler,
        scheduler_timeout=scheduler_timeout,
    )
    if root is not None and not root.is_dir():
        exit_error(f"--root {root}: not a directory")

    def load() -> BatchConfig:
        source = config if config is not None else _discover_config()
        return _load(source, strict, root, only, dry_run)

    load_and_run(load, options, dry_run, "the config")


def run_options(
    *,
    max_concurrency: int | None,
    output: Path | None,
    junit: Path | None,
    timeout: float | None,
    retries: int | None,
    fail_fast: bool,
    max_failures: int | None,
    resume: bool,
    progress: bool | None,
    debug: bool,
    quiet: bool,
    verbose: bool,
    executor: str,
    scheduler: str | None,
    scheduler_timeout: float,
) -> RunOptions:
    """The shared options of ``run`` and ``each`` as RunOptions; a combination that
    cannot run is a usage error (exit 2)."""
    from asyncbatch.session import RunOptions

    if executor not in ("local", "dask"):
        exit_error(f"--executor {executor}: expected 'local' or 'dask'")
    options = RunOptions(
        max_concurrency=max_concurrency,
        output=output,
        junit=junit,
        timeout=timeout,
        retries=retries,
        max_failures=1 if fail_fast else max_failures,
        resume=resume,
        progress=progress,
        debug=debug,
        quiet=quiet,
        verbose=verbose,
        executor="dask" if executor == "dask" else "local",
        scheduler=scheduler,
        scheduler_timeout=scheduler_timeout,
    )
    for problem in options.problems():
        exit_error(problem)
    if executor == "dask":
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            exit_error("--executor dask needs the dask extra: install 'asyncbatch[dask]'")
    return options


def load_and_run(
    load: Callable[[], BatchConfig], options: RunOptions, dry_run: bool, what: str
) -> NoReturn:
    """Load the batch (a signal then stops it: nothing ran), run or plan it, and
    exit with the run's code."""
    from asyncbatch.interrupts import Interrupted, Interruptions

    with Interruptions() as interruptions:
        try:
            with interruptions.raising():
                batch = load()
        except Interrupted:
            err(f"interrupted while loading {what}; nothing ran")
            raise typer.Exit(interruptions.exit_code or EXIT_USAGE) from None
        code = _run_loaded(batch, options, dry_run, interruptions)
        raise typer.Exit(interruptions.exit_code or code)


def _run_loaded(
    batch: BatchConfig, options: RunOptions, dry_run: bool, interruptions: Interruptions
) -> int:
    """Run (or plan) a loaded config and print its summary; the exit code."""
    from asyncbatch.session import check_outputs, run_session

    err_capped([f"warning: {warning}" for warning in batch.warnings], "warnings")
    if dry_run:
        from asyncbatch.output.plan import dry_run_plan

        checked(check_outputs, options, batch)  # a dry run checks the outputs too
        print_json(dry_run_plan(batch))
        return EXIT_OK
    try:
        outcome = run_session(batch, options, interruptions=interruptions)
    except (OutputError, ExecutorUnavailable) as exc:
        exit_error(str(exc))
    for failure in outcome.failed_writes:
        err(f"error: {failure}")
    print_json(outcome.report.summary.to_dict())
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):  # a closed or full stderr
            print_end_of_run(outcome.report, quiet=options.quiet, stream=sys.stderr)
    return outcome.exit_code


def _load(
    source: str, strict: bool, root: Path | None, only: list[str] | None, dry_run: bool
) -> BatchConfig:
    """The config, with ``--only`` applied; a ConfigError is printed and exits 2
    (with ``--dry-run``, also as JSON on stdout)."""
    from asyncbatch.config import load_config, select_jobs

    try:
        batch = load_config(source, strict=strict, root=root)
        return select_jobs(batch, only) if only else batch
    except ConfigError as exc:
        if dry_run:
            print_json({"valid": False, "errors": exc.problems})
        fail_config(exc)


def _discover_config() -> str:
    from asyncbatch.config import DISCOVERED_NAMES, find_config

    found = find_config(Path.cwd())
    if found is None:
        exit_error(f"no config given and none of {', '.join(DISCOVERED_NAMES)} in {Path.cwd()}")
    return str(found)
