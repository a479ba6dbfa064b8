"""``each``: one job per input given on the command line, no config file; run or
planned as ``run`` does (:mod:`asyncbatch.cli._run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from asyncbatch.cli._app import Command, command_app
from asyncbatch.cli._options import (
    EACH_EXAMPLES,
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
from asyncbatch.cli._out import EXIT_USAGE, err, err_capped, exit_error, print_json
from asyncbatch.cli._run import load_and_run, run_options
from asyncbatch.errors import ConfigError

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig

commands = command_app()

_PROGRAM = "asyncbatch.each.program"
"""Where ``each`` keeps the words after ``--`` (in the click context's meta)."""


class _EachCommand(Command):
    """``each``: the words after the first ``--`` are the program and its
    arguments, set aside before the options are parsed (click would take them for
    more INPUTs)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click
        if "--" in args:
            cut = args.index("--")
            ctx.meta[_PROGRAM] = args[cut + 1 :]
            args = args[:cut]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return ["[OPTIONS] INPUT... (--action NAME [-p KEY=VALUE]... | -- PROGRAM [ARG]...)"]


@commands.command(
    cls=_EachCommand,
    epilog=EACH_EXAMPLES,
    short_help="Run a program or an action once per input file, without a config.",
)
def each(
    ctx: typer.Context,
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            help="Files to run on, relative to the current directory; a quoted glob "
            "('logs/*.log') is expanded as in configs.",
            show_default=False,
        ),
    ],
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            metavar="NAME",
            help="Run this built-in or plugin action on each input (instead of -- PROGRAM).",
            show_default=False,
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "-p",
            "--param",
            metavar="KEY=VALUE",
            help="A param of --action (repeatable); VALUE is parsed as JSON when it "
            "parses, else taken as a string.",
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
    junit: Junit = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    progress: Progress = None,
    debug: Debug = False,
    executor: Executor = "local",
    scheduler: Scheduler = None,
    scheduler_timeout: SchedulerTimeout = 10.0,
) -> None:
    """Run a program (after --) or an action (--action) once per INPUT, without a
    config file: the summary as JSON on stdout, exit codes as for run. Without a
    placeholder such as {input} in its arguments, the program gets the input as
    its last argument."""
    program: list[str] | None = ctx.meta.get(_PROGRAM)
    if (action is None) == (program is None):
        exit_error("give exactly one of --action NAME and -- PROGRAM [ARG]...")
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

    def load() -> BatchConfig:
        from asyncbatch.config._each import each_config, parse_params

        try:
            parsed = parse_params(params or [])
            return each_config(inputs, action=action, params=parsed, argv=program)
        except ConfigError as exc:
            if dry_run:
                print_json({"valid": False, "errors": exc.problems})
            err_capped([f"error: {problem}" for problem in exc.problems], "problems")
            err("error: nothing was run")
            raise typer.Exit(EXIT_USAGE) from None

    load_and_run(load, options, dry_run, "the inputs")
