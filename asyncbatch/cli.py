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

app = typer.Typer(
    add_completion=False,
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
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """asyncbatch: config-driven concurrent batch runner."""


@app.command()
def run(
    config: Annotated[
        str | None,
        typer.Argument(
            help="Config file (.json, .toml, .yaml/.yml) or '-' for JSON on stdin. "
            "Default: asyncbatch.{toml,yaml,yml,json} in the current directory.",
            show_default=False,
        ),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            "-j",
            "--max-concurrency",
            min=1,
            help="At most N jobs at once (default: config max_concurrency, else 4).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the JSON report there.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the plan; run nothing.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(callback=_seconds, help="Default per-job timeout in seconds (> 0)."),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(min=0, max=1000, help="Default retries per failed job (0 to 1000)."),
    ] = None,
    fail_fast: Annotated[
        bool,
        typer.Option("--fail-fast", help="After the first failure, start nothing new; cancel."),
    ] = False,
    max_failures: Annotated[
        int | None,
        typer.Option(min=1, help="Halt like --fail-fast after N failed jobs."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Reuse successes recorded at --output whose inputs are unchanged."
        ),
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help="Run this job and what it depends on (repeatable).", show_default=False
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Unknown actions are config errors.")
    ] = False,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Refuse any input that resolves outside DIR (symlinks included); "
            "'module:function' actions are refused.",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Also write a JUnit XML report there.", show_default=False),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Nothing on stderr unless a job fails.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="A line on stderr per finished job.")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Live progress on stderr (default: on when stderr is a terminal and CI "
            "is unset; -q turns it off).",
            show_default=False,
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="Where actions run: 'local' (this process) or 'dask' (a Dask cluster; "
            "needs asyncbatch[dask]).",
            metavar="local|dask",
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Dask scheduler address (tcp://HOST:PORT) for --executor dask "
            "(default: start a local cluster for the run).",
            metavar="ADDRESS",
            show_default=False,
        ),
    ] = None,
    scheduler_timeout: Annotated[
        float,
        typer.Option(
            "--scheduler-timeout",
            callback=_seconds,
            help="Seconds to wait for the Dask scheduler before giving up (exit 2).",
        ),
    ] = 10.0,
) -> None:
    """Run a batch: print the summary as JSON on stdout; exit 0, 1 (a job failed
    or was cancelled) or 2 (usage or config error; nothing ran)."""
    from asyncbatch._interrupts import Interrupted, Interruptions
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
    if root is not None and not root.is_dir():
        _exit_error(f"--root {root}: not a directory")
    with Interruptions() as interruptions:
        try:
            with interruptions.raising():
                source = config if config is not None else _discover_config()
                batch = _load(source, strict, root, only, dry_run)
        except Interrupted:
            _err("interrupted while loading the config; nothing ran")
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


@app.command("actions")
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


@app.command()
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
    """``value`` as indented JSON on stdout. A closed or full stdout is said on
    stderr and the exit code stays the run's: the report file says the rest."""
    stream = sys.stdout
    if stream is None:  # started with its stdout closed
        return
    try:
        stream.write(json.dumps(value, indent=2) + "\n")
        stream.flush()
    except (OSError, ValueError) as exc:  # ValueError: the stream is closed
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _err(f"error: cannot write the summary to standard output: {reason}")
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
