"""``each``: one job per input, no config file; run or planned as ``run`` does
(:mod:`asyncbatch.cli._run`). The inputs come from the command line, standard input
or ``-a`` files (:func:`asyncbatch.config.read_entries`); the jobs run a program
(``-- PROGRAM``, ``--shell``: command jobs, :mod:`asyncbatch.actions.command_jobs`)
or an action (``--action``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from asyncbatch.cli._app import Command, command_app
from asyncbatch.cli._options import EACH_EXAMPLES, run_options
from asyncbatch.cli._out import EXIT_USAGE, err, err_capped, exit_error, print_json
from asyncbatch.cli._run import load_and_run
from asyncbatch.errors import ConfigError
from asyncbatch.options import RunOptions

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig, Entry, Sources

commands = command_app()

_PROGRAM = "asyncbatch.each.program"
"""Where ``each`` keeps the words after ``--`` (in the click context's meta)."""
INPUTS, PROGRAMS = "Inputs", "Programs"
"""The help panels of ``each``'s own options."""
NO_INPUT = (
    "no INPUT given, and standard input is a terminal: give INPUT arguments, pipe the "
    "inputs in (find . -name '*.log' | asyncbatch each ...), or read them from a file "
    "with -a FILE"
)


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
        return [
            "[OPTIONS] [INPUT]... (--action NAME [-p KEY=VALUE]... | --shell LINE "
            "| -- PROGRAM [ARG]...)"
        ]


def _flag(flags: tuple[str, ...], text: str, panel: str = INPUTS) -> Any:
    return typer.Option(*flags, help=text, rich_help_panel=panel, show_default=False)


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
    short_help="Run a program or an action once per input, without a config.",
)
@run_options("each")
def each(
    ctx: typer.Context,
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="INPUT",
            help="Files to run on, relative to the current directory (a quoted glob "
            "such as 'logs/*.log' is expanded as in configs); none: one per line of "
            "standard input.",
            show_default=False,
        ),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            metavar="NAME",
            help="Run this built-in or plugin action on each input (instead of -- PROGRAM).",
            show_default=False,
            rich_help_panel=PROGRAMS,
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
            rich_help_panel=PROGRAMS,
        ),
    ] = None,
    shell: Annotated[
        str | None,
        typer.Option(
            "--shell",
            metavar="LINE",
            help="Run LINE with /bin/sh -c, placeholders inserted shell-quoted "
            "(instead of -- PROGRAM).",
            show_default=False,
            rich_help_panel=PROGRAMS,
        ),
    ] = None,
    ok_exit: Annotated[
        str | None,
        typer.Option(
            "--ok-exit",
            metavar="CODES",
            help="Exit codes that count as success, comma-separated (0,1 for grep).",
            show_default=False,
            rich_help_panel=PROGRAMS,
        ),
    ] = None,
    null: Annotated[bool, _flag(("-0", "--null"), "Inputs are separated by NUL bytes.")] = False,
    arg_file: Annotated[
        list[str] | None,
        typer.Option(
            "-a",
            "--arg-file",
            metavar="FILE",
            help="Read the inputs from FILE (- is stdin); given twice or more, one job "
            "per combination, each file a field.",
            show_default=False,
            rich_help_panel=INPUTS,
        ),
    ] = None,
    link: Annotated[
        bool, _flag(("--link",), "Pair the -a files line by line instead of combining them.")
    ] = False,
    args: Annotated[
        bool, _flag(("--args",), "Inputs are plain arguments, not files: no glob, no check.")
    ] = False,
    colsep: Annotated[
        str | None,
        typer.Option(
            "--colsep",
            metavar="SEP",
            help="Split each input into fields {1}, {2}... at SEP (\\t: a tab); implies --args.",
            show_default=False,
            rich_help_panel=INPUTS,
        ),
    ] = None,
    csv: Annotated[
        bool, _flag(("--csv",), "Parse each input line as CSV fields {1}, {2}...; implies --args.")
    ] = False,
    header: Annotated[
        bool, _flag(("--header",), "The first line names the fields, usable as {NAME}.")
    ] = False,
    max_args: Annotated[
        int | None,
        typer.Option(
            "-n",
            "--max-args",
            metavar="N",
            help="Give each job up to N inputs, appended (or where {inputs} stands).",
            show_default=False,
            rich_help_panel=INPUTS,
        ),
    ] = None,
    *,
    options: RunOptions,
) -> None:
    """Run a program (after --, or --shell) or an action (--action) once per INPUT,
    without a config file: what the programs print on stdout and stderr, a block
    per job (--action: a JSON line per job; --json: the summary); exit codes as for
    run. Without a placeholder such as {input} in its arguments, the program gets
    the input as its last argument."""
    from asyncbatch.config import Sources

    program: list[str] | None = ctx.meta.get(_PROGRAM)
    if sum(way is not None for way in (action, shell, program)) != 1:
        exit_error("give exactly one of --action NAME, --shell LINE and -- PROGRAM [ARG]...")
    files = arg_file or []
    fields = colsep is not None or csv or len(files) > 1
    arguments = args or fields
    _check_usage(action, params, ok_exit, arguments, fields, max_args, options)
    if not inputs and not files and _is_terminal(sys.stdin):
        exit_error(NO_INPUT)
    sources = Sources(inputs or (), files, null, link, colsep, csv, header)
    options = options.replace(stdout=options.stdout or ("results" if action else "output"))
    codes = _exit_codes(ok_exit)

    def load() -> BatchConfig:
        try:
            return _each_config(
                sources, action, params or [], program, shell, codes, args, max_args
            )
        except ConfigError as exc:
            from asyncbatch.config import InputsError

            if options.dry_run:
                print_json({"valid": False, "errors": exc.problems})
            err_capped([f"error: {problem}" for problem in exc.problems], "problems")
            if not isinstance(exc, InputsError):  # a usage error: its line says it all
                err("error: nothing was run")
            raise typer.Exit(EXIT_USAGE) from None

    load_and_run(load, options, "the inputs", ctx.obj)


def _check_usage(
    action: str | None,
    params: list[str] | None,
    ok_exit: str | None,
    arguments: bool,
    fields: bool,
    max_args: int | None,
    options: RunOptions,
) -> None:
    """Options that cannot go together, each a one-line usage error (exit 2)."""
    if action is not None and arguments:
        exit_error("--args (and --colsep, --csv, several -a) need a program: an action reads files")
    if action is not None and max_args is not None:
        exit_error("-n/--max-args needs a program: an action takes one input per job")
    if action is not None and ok_exit is not None:
        exit_error("--ok-exit needs a program (-- PROGRAM or --shell)")
    if action is None and params:
        exit_error("-p: needs --action (a program takes its arguments after --)")
    if max_args is not None and (max_args < 1 or fields):
        exit_error("-n/--max-args takes a number of inputs, 1 or more, without fields")
    if options.stdout == "summary" and (options.keep_order or options.line_buffer or options.tag):
        exit_error("--json prints the summary only: -k, --line-buffer and --tag shape nothing")


def _is_terminal(stream: Any) -> bool:
    try:
        return stream is not None and bool(stream.isatty())
    except ValueError:  # closed
        return False


def _each_config(
    sources: Sources,
    action: str | None,
    params: list[str],
    program: list[str] | None,
    shell: str | None,
    codes: list[int] | None,
    arguments: bool,
    max_args: int | None,
) -> BatchConfig:
    """The batch of ``each``: ``action`` with the ``-p`` params on every input, or a
    ``command`` job per input running ``program`` (or the ``shell`` line)."""
    from asyncbatch.config import LABEL, each_config, parse_params, read_entries
    from asyncbatch.registry import ActionRegistry
    from asyncbatch.session import default_registry

    entries = read_entries(sources)
    if action is not None:
        parsed = parse_params(params)
        return each_config(entries, action=action, params=parsed, registry=default_registry())
    from asyncbatch.actions.command_jobs import Program, argument_values, command_spec

    runs = Program(argv=program, line=shell, ok_exit_codes=codes)
    width = max((len(entry.fields) for entry in entries), default=0)
    names = next((entry.names for entry in entries if entry.names), ())
    known = [*map(str, range(1, width + 1)), *names]
    problems = runs.problems(fields=known, grouped=max_args is not None)
    if problems:
        raise ConfigError(problems, source=LABEL)
    arguments = arguments or bool(width)

    def made(entry: Entry, name: str) -> dict[str, Any]:
        values = dict.fromkeys(known, "") | entry.named_fields()
        if arguments:
            values |= argument_values(entry.value)
        group = entry.group or (entry.value,)
        return runs.params(name, values, entry.fields or group, group)

    spec = command_spec(arguments=arguments)
    return each_config(
        entries,
        action=spec.name,
        params=made,
        params_named="--shell" if shell is not None else "-- PROGRAM",
        registry=ActionRegistry([spec]),
        group_size=max_args,
    )


def _exit_codes(text: str | None) -> list[int] | None:
    """``--ok-exit 0,1``: the codes, each 0 to 255 (else exit 2)."""
    if text is None:
        return None
    codes = []
    for item in text.split(","):
        try:
            code = int(item.strip())
        except ValueError:
            code = -1
        if not 0 <= code <= 255:
            exit_error(f"--ok-exit {text!r}: exit codes are numbers from 0 to 255, comma-separated")
        codes.append(code)
    return codes
