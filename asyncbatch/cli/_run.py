"""``run``: load a batch from a config file, run or plan it through the session,
print the summary, exit with its code; and what ``each`` shares with it (the
options into :class:`RunOptions`, loading under signal handling, the run)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from asyncbatch.cli._app import Command, command_app
from asyncbatch.cli._options import RUN_EXAMPLES, run_options
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
from asyncbatch.options import RunOptions
from asyncbatch.output.terminal import print_end_of_run

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig
    from asyncbatch.interrupts import Interruptions

commands = command_app()


@commands.command(cls=Command, epilog=RUN_EXAMPLES, short_help="Run the jobs of a config file.")
@run_options("run")
def run(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Argument(
            metavar="CONFIG",
            help="Config file (.json, .toml, .yaml/.yml), or - for JSON on stdin "
            "(default: asyncbatch.toml, .yaml, .yml or .json here).",
            show_default=False,
        ),
    ] = None,
    *,
    options: RunOptions,
) -> None:
    """Run a batch: print the summary as JSON on stdout (--show-output: what its
    command jobs print); exit 0, 1 (a job failed or was cancelled) or 2 (usage or
    config error; nothing ran)."""
    if options.root is not None and not options.root.is_dir():
        exit_error(f"--root {options.root}: not a directory")
    if options.stdout != "output" and (options.keep_order or options.line_buffer or options.tag):
        exit_error("-k/--keep-order, --line-buffer and --tag shape what --show-output prints")

    def load() -> BatchConfig:
        source = config if config is not None else discover_config()
        return _load(source, options)

    load_and_run(load, options, "the config", ctx.obj)


def load_and_run(
    load: Callable[[], BatchConfig],
    options: RunOptions,
    what: str,
    interruptions: Interruptions | None,
) -> NoReturn:
    """Load the batch (a signal then stops it: nothing ran), run or plan it, and
    exit with the run's code. ``interruptions`` is the signal handling the command's
    entry point installed (None: the command makes its own, as when called in
    process)."""
    from asyncbatch.interrupts import Interrupted, Interruptions

    with interruptions or Interruptions() as handling:
        try:
            with handling.raising():
                batch = load()
        except Interrupted:
            err(f"interrupted while loading {what}; nothing ran")
            raise typer.Exit(handling.exit_code or EXIT_USAGE) from None
        code = _run_loaded(batch, options, handling)
        raise typer.Exit(handling.exit_code or code)


def _run_loaded(batch: BatchConfig, options: RunOptions, interruptions: Interruptions) -> int:
    """Run (or plan) a loaded config and print its summary; the exit code."""
    from asyncbatch.output.destinations import check_outputs
    from asyncbatch.session import run_session

    err_capped([f"warning: {warning}" for warning in batch.warnings], "warnings")
    if options.results is not None:
        from asyncbatch.output.blocks import check_results_folder

        reports = [options.output, options.junit]
        checked(check_results_folder, options.results, batch.jobs, reports, not options.dry_run)
    if options.dry_run:
        from asyncbatch.output.plan import dry_run_plan

        try:
            checked(check_outputs, options, batch)  # a dry run checks the outputs too
        except ConfigError as exc:  # a job's output is the report, its journal or lock
            print_json({"valid": False, "errors": exc.problems})
            fail_config(exc)
        return EXIT_OK if print_json(dry_run_plan(batch), "the plan") else EXIT_USAGE
    began = time.monotonic()  # a Dask cluster's start and stop are part of the run too
    try:
        outcome = run_session(batch, options, interruptions=interruptions)
    except (OutputError, ExecutorUnavailable) as exc:
        exit_error(str(exc))
    except ConfigError as exc:  # a job's output is the report, its journal or lock
        fail_config(exc)
    for failure in outcome.failed_writes:
        err(f"error: {failure}")
    code = outcome.exit_code
    if outcome.stdout_failure is not None:
        err(f"error: {outcome.stdout_failure} (the report and --results keep it all)")
        code = EXIT_USAGE
    if options.stdout in (None, "summary") and not print_json(outcome.report.summary.to_dict()):
        code = EXIT_USAGE
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):  # a closed or full stderr
            took_ms = (time.monotonic() - began) * 1000 if options.executor != "local" else None
            print_end_of_run(
                outcome.report, quiet=options.quiet, stream=sys.stderr, took_ms=took_ms
            )
    return code


def _load(source: str, options: RunOptions) -> BatchConfig:
    """The config, with ``--only`` applied; a ConfigError is printed and exits 2
    (with ``--dry-run``, also as JSON on stdout)."""
    from asyncbatch.config import check_slots, select_jobs
    from asyncbatch.session import load_config

    try:
        batch = load_config(source, strict=options.strict, root=options.root)
        batch = select_jobs(batch, options.only) if options.only else batch
        check_slots(batch, options.max_concurrency)  # -j is known only now
        return batch
    except ConfigError as exc:
        if options.dry_run:
            print_json({"valid": False, "errors": exc.problems})
        fail_config(exc)


def discover_config() -> str:
    from asyncbatch.config import DISCOVERED_NAMES, find_config

    found = find_config(Path.cwd())
    if found is None:
        exit_error(f"no config given and none of {', '.join(DISCOVERED_NAMES)} in {Path.cwd()}")
    return str(found)
