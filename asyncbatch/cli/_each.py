"""``each``: one job per input given on the command line, no config file; run or
planned as ``run`` does (:mod:`asyncbatch.cli._run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from asyncbatch.cli._app import Command, command_app
from asyncbatch.cli._options import EACH_EXAMPLES, run_options
from asyncbatch.cli._out import EXIT_USAGE, err, err_capped, exit_error, print_json
from asyncbatch.cli._run import load_and_run
from asyncbatch.errors import ConfigError
from asyncbatch.options import RunOptions

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


def _action_names(incomplete: str) -> list[str]:
    """What shell completion offers after --action: the actions' names (built-ins and
    installed plugins)."""
    from asyncbatch.session import default_registry

    registry = default_registry()
    registry.load_plugins()
    return sorted(spec.name for spec in registry if spec.name.startswith(incomplete))


@commands.command(
    cls=_EachCommand,
    epilog=EACH_EXAMPLES,
    short_help="Run a program or an action once per input file, without a config.",
)
@run_options("each")
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
            autocompletion=_action_names,
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
    *,
    options: RunOptions,
) -> None:
    """Run a program (after --) or an action (--action) once per INPUT, without a
    config file: the summary as JSON on stdout, exit codes as for run. Without a
    placeholder such as {input} in its arguments, the program gets the input as
    its last argument."""
    program: list[str] | None = ctx.meta.get(_PROGRAM)
    if (action is None) == (program is None):
        exit_error("give exactly one of --action NAME and -- PROGRAM [ARG]...")

    def load() -> BatchConfig:
        try:
            return _each_config(inputs, action, params or [], program)
        except ConfigError as exc:
            if options.dry_run:
                print_json({"valid": False, "errors": exc.problems})
            err_capped([f"error: {problem}" for problem in exc.problems], "problems")
            err("error: nothing was run")
            raise typer.Exit(EXIT_USAGE) from None

    load_and_run(load, options, "the inputs", ctx.obj)


def _each_config(
    inputs: list[str], action: str | None, params: list[str], program: list[str] | None
) -> BatchConfig:
    """The batch of ``each``: ``action`` with the ``-p`` params on every input, or a
    ``command`` job per input running ``program``."""
    from asyncbatch.config import LABEL, each_config, is_glob, parse_params
    from asyncbatch.session import default_registry

    registry = default_registry()
    if program is None:
        assert action is not None
        parsed = parse_params(params)
        return each_config(inputs, action=action, params=parsed, registry=registry)
    from asyncbatch.actions.command import COMMAND, program_params, program_problems

    problems = program_problems(program)
    if params:
        problems.insert(0, "-p: needs --action (a command takes its arguments after --)")
    if problems:
        raise ConfigError(problems, source=LABEL)
    return each_config(
        inputs,
        action=COMMAND.name,
        params=lambda given: program_params(program, given, matched=is_glob(given)),
        params_named="-- PROGRAM",
        registry=registry,
    )
