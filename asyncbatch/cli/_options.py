"""The options ``run`` and ``each`` share, declared once (Typer ``Annotated``
aliases in help panels), and the examples of their help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def positive_seconds(value: float | None) -> float | None:
    """Seconds as a config takes them: finite and greater than 0 (a config's
    messages, word for word)."""
    if value is not None and not abs(value) < float("inf"):  # NaN, inf, 1e400
        raise typer.BadParameter("Input should be a finite number")
    if value is not None and not value > 0:
        raise typer.BadParameter("Input should be greater than 0")
    return value


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
        callback=positive_seconds,
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
        callback=positive_seconds,
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
