"""The options ``run`` and ``each`` share, as their command lines spell them: built
from the declarations of :class:`asyncbatch.options.RunOptions` (:func:`run_options`),
and the examples of their help."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from asyncbatch.cli._out import exit_error
from asyncbatch.options import SCHEDULER_ENV, PrintingOptions, RunOptions, Spelling

F = TypeVar("F", bound=Callable[..., Any])


def declared(command: str) -> list[tuple[str, Spelling]]:
    """The ``RunOptions`` field and spelling of each option ``command`` takes."""
    fields = dataclasses.fields(RunOptions)
    printing = {field.name for field in dataclasses.fields(PrintingOptions)}
    ordered = [f for f in fields if f.name not in printing]
    ordered += [f for f in fields if f.name in printing]
    return [  # the printing options (a base class, so first in fields) after the others
        (field.name, spelling)
        for field in ordered
        for spelling in field.metadata.get("spellings", ())
        if command in spelling.commands
    ]


def run_options(command: str) -> Callable[[F], F]:
    """The decorated command takes the run options ``command`` declares (``run``,
    ``each``) as parameters of its command line, and receives them as one
    ``options: RunOptions`` keyword. Two spellings of one field given together
    (``--fail-fast --max-failures 3``), or options that cannot run together, are
    usage errors (exit 2)."""
    spelled = declared(command)

    def decorate(func: F) -> F:
        hints = typing.get_type_hints(func, include_extras=True)
        own = [
            parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
            for parameter in inspect.signature(func).parameters.values()
            if parameter.name != "options"
        ]
        generated = [
            inspect.Parameter(
                spelling.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=spelling.unset,
                annotation=_annotation(spelling),
            )
            for _, spelling in spelled
        ]

        @functools.wraps(func)
        def command_function(*args: Any, **kwargs: Any) -> Any:
            given = {spelling.name: kwargs.pop(spelling.name) for _, spelling in spelled}
            return func(*args, options=_options(spelled, given), **kwargs)

        parameters = [*own, *generated]
        shaped: Any = command_function
        del shaped.__wrapped__  # Typer reads this signature, not the function's own
        shaped.__signature__ = inspect.Signature(parameters)
        shaped.__annotations__ = {each.name: each.annotation for each in parameters}
        return typing.cast(F, shaped)

    return decorate


def _options(spelled: list[tuple[str, Spelling]], given: dict[str, Any]) -> RunOptions:
    values: dict[str, Any] = {}
    by: dict[str, str] = {}
    for field, spelling in spelled:
        raw = given[spelling.name]
        if raw is None or raw == spelling.unset:
            continue
        if field in by:
            exit_error(f"{by[field]} and {spelling.shown}: give only one of them")
        by[field] = spelling.shown
        try:
            values[field] = spelling.value(raw) if spelling.value is not None else raw
        except ValueError as exc:  # the spelling's own reading of the value
            exit_error(f"{spelling.shown}: {exc}")
    options = RunOptions(**values)
    for problem in options.problems():
        exit_error(problem)
    if options.executor == "dask" and options.scheduler is None:
        options = options.replace(scheduler=os.environ.get(SCHEDULER_ENV) or None)
    if options.executor == "dask":
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            exit_error("--executor dask needs the dask extra: install 'asyncbatch[dask]'")
    return options


def _annotation(spelling: Spelling) -> Any:
    """The Typer annotation of a spelling: its type (optional unless it has a value
    when not used) and its ``typer.Option``."""
    kind: Any = spelling.kind if spelling.unset is not None else spelling.kind | None
    flag = spelling.kind is bool
    details = typer.Option(
        *spelling.flags,
        help=spelling.help,
        rich_help_panel=spelling.panel,
        metavar="" if flag else spelling.metavar,
        envvar=spelling.env,
        min=spelling.minimum,
        max=spelling.maximum,
        callback=None if spelling.check is None else _checking(spelling.check),
        show_default=spelling.show_default,
        autocompletion=None if spelling.completions is None else _offering(spelling.completions),
    )
    return Annotated[kind, details]


def _checking(check: Callable[[Any], None]) -> Callable[[Any], Any]:
    def callback(value: Any) -> Any:
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
        return value

    return callback


def _offering(values: Callable[[], Any]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return [value for value in values() if value.startswith(incomplete)]

    return complete


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
    "or output error, 130/143/129 interrupted (SIGINT, SIGTERM, SIGHUP).\n\n"
    "Environment: ASYNCBATCH_MAX_CONCURRENCY, ASYNCBATCH_TIMEOUT, ASYNCBATCH_RETRIES, "
    "ASYNCBATCH_EXECUTOR and ASYNCBATCH_DEBUG stand for their options; "
    "ASYNCBATCH_SCHEDULER for --scheduler with --executor dask (ignored otherwise)."
)
EACH_EXAMPLES = """\
[bold]Examples[/bold]

  asyncbatch each *.log -- gzip -k
  asyncbatch each -j 8 'logs/**/*.log' -- wc -l
  find . -name '*.txt' -print0 | asyncbatch each -0 -- wc -l
  asyncbatch each *.py --ok-exit 0,1 -- grep -c 'def '
  asyncbatch each *.txt --shell 'tr a-z A-Z < {input} > {stem}.upper'
  asyncbatch each *.txt -- awk '{{print $1}}'
  asyncbatch each -k --args 1 2 3 -- echo job
  asyncbatch each --csv --header -a jobs.csv -- wc -l {file}
  asyncbatch each *.log --results out -o report.json -- wc -l
  asyncbatch each *.log --action search_pattern -p pattern=ERROR

Without INPUT, the inputs are read from stdin, one per line.
Options go before --; everything after it is the program and its arguments
({{ and }} are literal braces).
"""
