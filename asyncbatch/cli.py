"""The ``asyncbatch`` command: parse options, call the library, map the Report to
an exit code. Standard output carries JSON only; everything for people goes to
standard error. Heavy modules are imported inside the commands, so ``--version``
starts fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from asyncbatch import __version__
from asyncbatch.errors import ConfigError, ExecutorUnavailable, OutputError
from asyncbatch.output.terminal import print_end_of_run, write_line

if TYPE_CHECKING:
    from asyncbatch._interrupts import Interruptions
    from asyncbatch.config import BatchConfig
    from asyncbatch.registry import ActionSpec
    from asyncbatch.session import RunOptions

EXIT_OK, EXIT_USAGE = 0, 2
MAX_PRINTED = 50
"""Config problems (and warnings) printed on stderr; the rest are counted. The
dry run's JSON on stdout lists every problem."""
T = TypeVar("T")


class _Plain:
    """Help that shows what to type: no type beside a flag (rich shows ``<bool>``, as
    if it took a value) or an argument (its metavar says it)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                param.metavar = ""
            elif isinstance(param, TyperArgument):
                param.display_type_rich = _no_type  # type: ignore[method-assign]
        return params


def _no_type(ctx: Any) -> None:
    return None


class _Group(_Plain, TyperGroup):
    pass


class _Command(_Plain, TyperCommand):
    pass


app = typer.Typer(
    cls=_Group,
    add_completion=True,
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run a batch of file jobs described in a config file, concurrently, and report.",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"asyncbatch {__version__}")
        raise typer.Exit()


def _seconds(value: float | None) -> float | None:
    """Seconds as a config takes them: finite and greater than 0 (a config's
    messages, word for word)."""
    if value is not None and not abs(value) < float("inf"):  # NaN, inf, 1e400
        raise typer.BadParameter("Input should be a finite number")
    if value is not None and not value > 0:
        raise typer.BadParameter("Input should be greater than 0")
    return value


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            metavar="",
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """asyncbatch: config-driven concurrent batch runner."""


# The options `run` and `each` share, declared once, in help panels. A flag has no
# metavar (rich would show "<bool>", as if it took a value); env vars stand for
# the option on the command line.
RUNNING, OUTPUTS, DISPLAY, DASK = "Running", "Outputs", "Display", "Dask"
MaxConcurrency = Annotated[
    int | None,
    typer.Option(
        "-j",
        "--max-concurrency",
        min=1,
        metavar="N",
        envvar="ASYNCBATCH_MAX_CONCURRENCY",
        help="At most N jobs at once (default: the config's, else 4).",
        rich_help_panel=RUNNING,
        show_default=False,
    ),
]
Output = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        metavar="PATH",
        help="Write the JSON report (and its journal) there.",
        rich_help_panel=OUTPUTS,
        show_default=False,
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        metavar="",
        help="Validate, print the plan, run nothing.",
        rich_help_panel=OUTPUTS,
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        callback=_seconds,
        metavar="SECONDS",
        envvar="ASYNCBATCH_TIMEOUT",
        help="Default per-job timeout.",
        rich_help_panel=RUNNING,
        show_default=False,
    ),
]
Retries = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=1000,
        metavar="N",
        envvar="ASYNCBATCH_RETRIES",
        help="Default retries of a failed job.",
        rich_help_panel=RUNNING,
        show_default=False,
    ),
]
FailFast = Annotated[
    bool,
    typer.Option(
        "--fail-fast",
        metavar="",
        help="Stop at the first failure: start nothing new, cancel the rest.",
        rich_help_panel=RUNNING,
    ),
]
MaxFailures = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="N",
        help="Stop like --fail-fast after N failures.",
        rich_help_panel=RUNNING,
        show_default=False,
    ),
]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        metavar="",
        help="Reuse the successes recorded at --output whose inputs are unchanged.",
        rich_help_panel=OUTPUTS,
    ),
]
Junit = Annotated[
    Path | None,
    typer.Option(
        "--junit",
        metavar="PATH",
        help="Also write a JUnit XML report there.",
        rich_help_panel=OUTPUTS,
        show_default=False,
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "-q",
        "--quiet",
        metavar="",
        help="Nothing on stderr unless a job fails.",
        rich_help_panel=DISPLAY,
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "-v", "--verbose", metavar="", help="A line per finished job.", rich_help_panel=DISPLAY
    ),
]
Progress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        metavar="",
        help="Live progress (default: on a terminal, unless CI is set).",
        rich_help_panel=DISPLAY,
        show_default=False,
    ),
]
Debug = Annotated[
    bool,
    typer.Option(
        "--debug",
        envvar="ASYNCBATCH_DEBUG",
        help="Print each failed attempt's traceback.",
        rich_help_panel=DISPLAY,
    ),
]
Executor = Annotated[
    str,
    typer.Option(
        "--executor",
        metavar="local|dask",
        envvar="ASYNCBATCH_EXECUTOR",
        help="Where actions run: here, or on Dask (needs asyncbatch\\[dask]).",
        rich_help_panel=DASK,
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        envvar="ASYNCBATCH_SCHEDULER",
        help="Dask scheduler (tcp://HOST:PORT; default: a local cluster).",
        rich_help_panel=DASK,
        show_default=False,
    ),
]
SchedulerTimeout = Annotated[
    float,
    typer.Option(
        "--scheduler-timeout",
        callback=_seconds,
        metavar="SECONDS",
        help="Wait this long for the scheduler (then exit 2).",
        rich_help_panel=DASK,
    ),
]

RUN_EXAMPLES = (
    """\
[bold]Examples[/bold]

  asyncbatch run batch.json -j 8 -o report.json
  asyncbatch run batch.json --dry-run
  asyncbatch run batch.json -o report.json --resume
  asyncbatch run --only errors --fail-fast
  cat batch.json | asyncbatch run - --junit junit.xml

"""
    + "Exit codes: 0 all succeeded, 1 a job failed or was cancelled, 2 usage, config "
    "or output error, 130/143 interrupted.\n\n"
    "Environment: ASYNCBATCH_MAX_CONCURRENCY, ASYNCBATCH_TIMEOUT, ASYNCBATCH_RETRIES, "
    "ASYNCBATCH_EXECUTOR, ASYNCBATCH_SCHEDULER and ASYNCBATCH_DEBUG stand for their options."
)
EACH_EXAMPLES = """\
[bold]Examples[/bold]

  asyncbatch each logs/*.log -j 8 -- gzip -k
  asyncbatch each 'photos/*.jpg' -- convert {{input}} -resize 50% small/{{stem}}.jpg
  asyncbatch each *.txt --action count_lines -o report.json
  asyncbatch each 'logs/**/*.log' --action search_pattern -p pattern=ERROR

Options go before --; everything after it is the program and its arguments.
"""


@app.command(cls=_Command, epilog=RUN_EXAMPLES, short_help="Run the jobs of a config file.")
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
    options = _run_options(
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
        _exit_error(f"--root {root}: not a directory")

    def load() -> BatchConfig:
        source = config if config is not None else _discover_config()
        return _load(source, strict, root, only, dry_run)

    _load_and_run(load, options, dry_run, "the config")


_PROGRAM = "asyncbatch.each.program"
"""Where ``each`` keeps the words after ``--`` (in the click context's meta)."""


class _EachCommand(_Command):
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


@app.command(
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
        _exit_error("give exactly one of --action NAME and -- PROGRAM [ARG]...")
    options = _run_options(
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
                _print_json({"valid": False, "errors": exc.problems})
            _err_capped([f"error: {problem}" for problem in exc.problems], "problems")
            _err("error: nothing was run")
            raise typer.Exit(EXIT_USAGE) from None

    _load_and_run(load, options, dry_run, "the inputs")


def _run_options(
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
        _exit_error(f"--executor {executor}: expected 'local' or 'dask'")
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
        _exit_error(problem)
    if executor == "dask":
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            _exit_error("--executor dask needs the dask extra: install 'asyncbatch[dask]'")
    return options


def _load_and_run(
    load: Callable[[], BatchConfig], options: RunOptions, dry_run: bool, what: str
) -> NoReturn:
    """Load the batch (a signal then stops it: nothing ran), run or plan it, and
    exit with the run's code."""
    from asyncbatch._interrupts import Interrupted, Interruptions

    with Interruptions() as interruptions:
        try:
            with interruptions.raising():
                batch = load()
        except Interrupted:
            _err(f"interrupted while loading {what}; nothing ran")
            raise typer.Exit(interruptions.exit_code or EXIT_USAGE) from None
        code = _run_loaded(batch, options, dry_run, interruptions)
        raise typer.Exit(interruptions.exit_code or code)


def _run_loaded(
    batch: BatchConfig, options: RunOptions, dry_run: bool, interruptions: Interruptions
) -> int:
    """Run (or plan) a loaded config and print its summary; the exit code."""
    from asyncbatch.session import check_outputs, run_session

    _err_capped([f"warning: {warning}" for warning in batch.warnings], "warnings")
    if dry_run:
        from asyncbatch.output.plan import dry_run_plan

        _checked(check_outputs, options, batch)  # a dry run checks the outputs too
        _print_json(dry_run_plan(batch))
        return EXIT_OK
    try:
        outcome = run_session(batch, options, interruptions=interruptions)
    except (OutputError, ExecutorUnavailable) as exc:
        _exit_error(str(exc))
    for failure in outcome.failed_writes:
        _err(f"error: {failure}")
    _print_json(outcome.report.summary.to_dict())
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
            _print_json({"valid": False, "errors": exc.problems})
        _fail_config(exc)


SHOW_EXAMPLES = """\
[bold]Examples[/bold]

  asyncbatch show report.json
  asyncbatch show report.json --failed
  asyncbatch show report.json --html report.html
  asyncbatch show report.json --json | jq .failed
"""


@app.command(
    cls=_Command,
    epilog=SHOW_EXAMPLES,
    short_help="Read a saved report: a summary, the failures, or an HTML page.",
)
def show(
    report: Annotated[
        Path,
        typer.Argument(metavar="REPORT", help="A report written by run -o.", show_default=False),
    ],
    failed: Annotated[bool, typer.Option("--failed", help="List every failed job, whole.")] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the summary object (with --failed: the failed jobs) as JSON."
        ),
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write one self-contained HTML page there: a sortable table and a timeline.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a saved report for a person: counts, failures by error type, skipped and
    cancelled jobs by reason, the slowest jobs. Exit 2 if it is not a report."""
    from asyncbatch.errors import NotAReport
    from asyncbatch.output import show as shown

    try:
        saved = shown.load_report(report)
        if html is not None:
            from asyncbatch.output._page import write_page

            write_page(saved, html)
    except (NotAReport, OutputError) as exc:
        _exit_error(str(exc))
    if as_json:
        text = shown.failed_json(saved) if failed else shown.summary_json(saved)
    else:
        text = shown.failed_text(saved) if failed else shown.summary_text(saved)
    _print_text(text)


@app.command("actions", cls=_Command)
def list_actions(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the available actions (built-ins and plugins) and their parameters."""
    from asyncbatch.actions import default_registry

    registry = default_registry()
    registry.load_plugins()
    for warning in registry.plugin_warnings:
        _err(f"warning: {warning}")
    described = [_describe_action(spec) for spec in registry]
    if as_json:
        _print_json(described)
        return
    for entry in described:
        typer.echo(f"{entry['name']}  ({entry['origin']})")
        if entry["description"]:
            typer.echo(f"    {entry['description']}")
        if not entry["params"]:
            typer.echo("    params: none")
        for param in entry["params"]:
            need = "required" if param["required"] else f"default {json.dumps(param['default'])}"
            text = f"    {param['name']}: {param['type']}, {need}"
            typer.echo(f"{text}. {param['description']}" if param["description"] else text)


@app.command(cls=_Command)
def schema() -> None:
    """Print the JSON Schema of the config format (for editors' "$schema")."""
    from asyncbatch.actions import default_registry
    from asyncbatch.config.schema import config_schema

    registry = default_registry()
    registry.load_plugins()  # plugin actions and their params belong in it too
    for warning in registry.plugin_warnings:
        _err(f"warning: {warning}")
    _print_json(config_schema(registry))


def _discover_config() -> str:
    from asyncbatch.config import DISCOVERED_NAMES, find_config

    found = find_config(Path.cwd())
    if found is None:
        _exit_error(f"no config given and none of {', '.join(DISCOVERED_NAMES)} in {Path.cwd()}")
    return str(found)


def _describe_action(spec: ActionSpec) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    if spec.params is not None:
        model_schema = spec.params.model_json_schema()
        required = set(model_schema.get("required", []))
        for name, prop in model_schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "type": _type_name(prop),
                    "required": name in required,
                    "default": prop.get("default"),
                    "description": prop.get("description", ""),
                }
            )
    return {
        "name": spec.name,
        "description": spec.description,
        "origin": spec.origin,
        "params": params,
    }


def _type_name(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(str(value) for value in prop["enum"])
    if "anyOf" in prop:
        return " | ".join(_type_name(option) for option in prop["anyOf"])
    return str(prop.get("type", "any"))


def _fail_config(exc: ConfigError) -> NoReturn:
    where = f"{exc.source}: " if exc.source else ""
    _err_capped([f"error: {where}{problem}" for problem in exc.problems], "problems")
    _err("error: the config is invalid; nothing was run")
    raise typer.Exit(EXIT_USAGE)


def _err_capped(lines: list[str], what: str) -> None:
    """The first :data:`MAX_PRINTED` lines on stderr, then how many more there are."""
    for line in lines[:MAX_PRINTED]:
        _err(line)
    if len(lines) > MAX_PRINTED:
        _err(f"... and {len(lines) - MAX_PRINTED} more {what}")


def _checked(func: Callable[..., T], *args: Any) -> T:
    """Call ``func``; an OutputError (cannot write there, report locked) is exit 2."""
    try:
        return func(*args)
    except OutputError as exc:
        _exit_error(str(exc))


def _exit_error(message: str) -> NoReturn:
    _err(f"error: {message}")
    raise typer.Exit(EXIT_USAGE)


def _print_json(value: object) -> None:
    """``value`` as indented JSON on stdout (see :func:`_print_text`)."""
    _print_text(json.dumps(value, indent=2) + "\n", "the summary")


def _print_text(text: str, what: str = "the text") -> None:
    """``text`` on stdout. A closed or full stdout is said on stderr and the exit
    code stays the command's: the report file says the rest."""
    stream = sys.stdout
    if stream is None:  # started with its stdout closed
        return
    try:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
    except (OSError, ValueError) as exc:  # ValueError: the stream is closed
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _err(f"error: cannot write {what} to standard output: {reason}")
        _discard(stream)


def _err(message: str) -> None:
    """A line for people on stderr, control characters shown as escapes."""
    write_line(sys.stderr, message)


def _discard(stream: TextIO) -> None:
    """Point a broken stream's descriptor at /dev/null, so that the interpreter's
    last flush at exit neither fails nor prints an "Exception ignored" warning."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
