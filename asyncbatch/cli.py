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
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from asyncbatch import __version__
from asyncbatch.errors import ConfigError, OutputError
from asyncbatch.progress import print_problems, sanitize

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig
    from asyncbatch.journal import Journal
    from asyncbatch.registry import ActionSpec
    from asyncbatch.report import JobResult, Report

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
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


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter("must be greater than 0")
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
        typer.Option(callback=_positive, help="Default per-job timeout in seconds (> 0)."),
    ] = None,
    retries: Annotated[
        int | None, typer.Option(min=0, help="Default retries per failed job.")
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
            callback=_positive,
            help="Seconds to wait for the Dask scheduler before giving up (exit 2).",
        ),
    ] = 10.0,
) -> None:
    """Run a batch: print the summary as JSON on stdout; exit 0, 1 (a job failed
    or was cancelled) or 2 (usage or config error; nothing ran)."""
    import functools

    import anyio

    from asyncbatch.config import load_config, select_jobs
    from asyncbatch.dask_executor import ExecutorUnavailable
    from asyncbatch.journal import journaled
    from asyncbatch.junit import write_junit
    from asyncbatch.plan import dry_run_plan
    from asyncbatch.report import check_output_writable, write_report

    if executor not in ("local", "dask"):
        _exit_error(f"--executor {executor}: expected 'local' or 'dask'")
    if scheduler is not None and executor != "dask":
        _exit_error("--scheduler needs --executor dask")
    if executor == "dask":
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            _exit_error("--executor dask needs the dask extra: install 'asyncbatch[dask]'")
    if resume and output is None:
        _exit_error("--resume needs --output: the journal to resume from lives beside the report")
    if junit is not None and output is not None and junit.resolve() == output.resolve():
        _exit_error("--junit and --output must name different files")
    if root is not None and not root.is_dir():
        _exit_error(f"--root {root}: not a directory")
    source = config if config is not None else _discover_config()
    try:
        batch = load_config(source, strict=strict, root=root)
        if only:
            batch = select_jobs(batch, only)
    except ConfigError as exc:
        if dry_run:
            _print_json({"valid": False, "errors": exc.problems})
        _fail_config(exc)
    _err_capped([f"warning: {warning}" for warning in batch.warnings], "warnings")
    for destination in (output, junit):  # before any job starts (a dry run checks too)
        if destination is not None:
            _checked(check_output_writable, destination)
    if dry_run:
        _print_json(dry_run_plan(batch))
        raise typer.Exit(EXIT_OK)

    with contextlib.ExitStack() as stack:
        journals: list[Journal] = []

        def prepare() -> dict[str, Any]:
            """Open the journal, start the progress display and return run_batch's
            options: once the executor is ready, so an unreachable scheduler leaves
            nothing behind."""
            journal = None
            if output is not None:
                journal, journal_warnings = _checked(
                    stack.enter_context, journaled(output, resume=resume)
                )
                journals.append(journal)
                for warning in journal_warnings:
                    _err(f"warning: {warning}")
            return {
                "max_concurrency": max_concurrency,
                "default_timeout": timeout,
                "default_retries": retries,
                "max_failures": 1 if fail_fast else max_failures,
                "on_job_done": _job_callback(
                    stack, batch, max_concurrency, progress=progress, quiet=quiet, verbose=verbose
                ),
                "journal": journal,
            }

        try:
            report, signal_exit = anyio.run(
                functools.partial(_run_on, executor, scheduler, scheduler_timeout, batch, prepare),
                backend="asyncio",
            )
        except ExecutorUnavailable as exc:
            _exit_error(str(exc))
        if output is not None:
            for journal in journals:
                journal.close()  # synced before the report that supersedes it
            _write_output(write_report, report, output, "report")
        if junit is not None:
            _write_output(write_junit, report, junit, "JUnit report")
    _print_json(report.summary.to_dict())
    _print_end_of_run(report, quiet=quiet)
    if signal_exit is not None:
        raise typer.Exit(signal_exit)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


async def _run_on(
    executor: str,
    scheduler: str | None,
    connect_timeout: float,
    batch: BatchConfig,
    prepare: Callable[[], dict[str, Any]],
) -> tuple[Report, int | None]:
    """The run, on the chosen executor. A Dask one is connected first (unreachable,
    it raises ExecutorUnavailable before ``prepare`` opens anything) and closed after."""
    from asyncbatch.interrupt import run_until_signalled

    if executor == "local":
        return await run_until_signalled(batch, **prepare())
    from asyncbatch.dask_executor import open_dask_executor

    async with open_dask_executor(scheduler, connect_timeout=connect_timeout) as dask:
        return await run_until_signalled(batch, executor=dask, **prepare())


@app.command("actions")
def list_actions(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the available actions (built-ins and plugins) and their parameters."""
    from asyncbatch.registry import default_registry

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
    from asyncbatch.registry import default_registry
    from asyncbatch.schema import config_schema

    registry = default_registry()
    registry.load_plugins()  # plugin actions and their params belong in it too
    for warning in registry.plugin_warnings:
        _err(f"warning: {warning}")
    _print_json(config_schema(registry))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="asyncbatch")


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


def _job_callback(
    stack: contextlib.ExitStack,
    batch: BatchConfig,
    max_concurrency: int | None,
    *,
    progress: bool | None,
    quiet: bool,
    verbose: bool,
) -> Callable[[JobResult], None] | None:
    """What runs as each job ends: the ``-v`` line, the live progress counters
    (the display starts now and ends with ``stack``), both or neither."""
    from asyncbatch.progress import ProgressState, live_progress, progress_wanted
    from asyncbatch.runner import DEFAULT_CONCURRENCY

    line = _print_job_line if verbose else None
    if not progress_wanted(progress, quiet=quiet, stream=sys.stderr, environ=os.environ):
        return line
    limit = max_concurrency or batch.max_concurrency or DEFAULT_CONCURRENCY
    state = stack.enter_context(live_progress(ProgressState(batch.jobs, limit=limit)))
    if line is None:
        return state.job_done

    def count_and_print(result: JobResult) -> None:
        state.job_done(result)
        _print_job_line(result)

    return count_and_print


def _print_job_line(result: JobResult) -> None:
    took = "" if result.duration_ms is None else f" in {result.duration_ms:.1f} ms"
    detail = (
        json.dumps(result.result)
        if result.error is None
        else f"{result.error['type']}: {result.error['message']}"
    )
    _err(f"{result.status:<9} {result.name}{took}: {detail}")


def _print_end_of_run(report: Report, *, quiet: bool) -> None:
    """Counts and wall time, why the run halted, then the jobs that failed or were
    skipped (the first failure first); cancelled jobs are counted, not listed."""
    failing = not report.ok
    if quiet and not failing:
        return
    summary = report.summary
    _err(
        f"{summary.succeeded} succeeded, {summary.failed} failed, {summary.skipped} skipped, "
        f"{summary.cancelled} cancelled in {report.duration_ms / 1000:.2f} s"
    )
    if report.halted:
        _err(f"stopped: {report.halted}")
    listed = [job for job in report.jobs if job.status in ("failed", "skipped")]
    listed.sort(key=lambda job: job.name != report.first_failure)
    rows = [(job.status, job.name, *_error_of(job)) for job in listed]
    print_problems(rows, stream=sys.stderr, terminal=sys.stderr.isatty())
    cancelled = [job.name for job in report.jobs if job.status == "cancelled"]
    if cancelled:
        shown = ", ".join(cancelled[:5]) + (", ..." if len(cancelled) > 5 else "")
        _err(f"  CANCELLED {len(cancelled)} job(s): {shown}")


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


def _write_output(
    write: Callable[[Report, Path], None], report: Report, path: Path, what: str
) -> None:
    """Write an output after the run; a failure now is reported, never a traceback
    (writability was checked before any job started)."""
    try:
        write(report, path)
    except OSError as exc:
        _err(f"error: cannot write {what} {path}: {exc.strerror or exc}")


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
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def _error_of(job: JobResult) -> tuple[str, str]:
    error = job.error or {"type": "?", "message": ""}
    return error["type"], error["message"]


def _err(message: str) -> None:
    """A line for people on stderr, control characters shown as escapes."""
    sys.stderr.write(sanitize(message) + "\n")
