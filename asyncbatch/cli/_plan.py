"""``plan``: what ``run --resume`` would do with each job of a config, and why, from
the journal beside the report (:mod:`asyncbatch.output.reuse`); nothing runs and no
input is read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from asyncbatch.cli._app import Command, command_app
from asyncbatch.cli._options import run_options
from asyncbatch.cli._out import err_capped, exit_error, fail_config, print_text
from asyncbatch.errors import ConfigError
from asyncbatch.options import RunOptions

if TYPE_CHECKING:
    from asyncbatch.output.reuse import ResumePlan

commands = command_app()

LISTED = 20
"""Jobs that run listed in the text; the rest are counted (as at the end of a run)."""

PLAN_EXAMPLES = """\
[bold]Examples[/bold]

  asyncbatch plan batch.json -o report.json
  asyncbatch plan batch.json -o report.json --json | jq '.jobs[] | select(.decision == "run")'
  asyncbatch plan -o report.json --only errors

Exit codes: 0, or 2 when the config is invalid.
"""


@commands.command(
    cls=Command,
    epilog=PLAN_EXAMPLES,
    short_help="Say what --resume would reuse and run, and why, before anything runs.",
)
@run_options("plan")
def plan(
    config: Annotated[
        str | None,
        typer.Argument(
            metavar="CONFIG",
            help="Config file, as for run (default: asyncbatch.toml, .yaml, .yml or .json here).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one object per job as JSON.")
    ] = False,
    *,
    options: RunOptions,
) -> None:
    """For each job, what run CONFIG -o REPORT --resume would do now: reuse its
    recorded result, or run, with the reason (new job, input changed, params changed,
    failed last time, output missing, dependency runs, ...). Only the journal beside
    the report is read, and each input stat'ed."""
    from asyncbatch.cli._run import discover_config
    from asyncbatch.config import select_jobs
    from asyncbatch.files.confine import real_root
    from asyncbatch.output.reuse import plan_resume
    from asyncbatch.session import load_config

    if options.output is None:
        exit_error("plan needs -o REPORT: the journal it reads lives beside the report")
    source = config if config is not None else discover_config()
    try:
        batch = load_config(source, strict=options.strict, root=options.root)
        batch = select_jobs(batch, options.only) if options.only else batch
    except ConfigError as exc:
        fail_config(exc)
    root = None if batch.root is None else real_root(batch.root)
    resumed = plan_resume(batch, options.output, root=root)
    err_capped([f"warning: {warning}" for warning in resumed.warnings], "warnings")
    if as_json:
        print_text(json.dumps(resumed.to_dict(), indent=2))
    else:
        print_text(plan_text(resumed))


def plan_text(resumed: ResumePlan) -> str:
    """Counts by reason, then the jobs that run with their reasons (capped)."""
    from asyncbatch.output.terminal import sanitize

    total = len(resumed.decisions)
    running = [decision for decision in resumed.decisions if decision.decision == "run"]
    lines = [f"{total:,} jobs: {resumed.reused:,} reused, {len(running):,} to run"]
    lines += [f"  {count:>8,}  {reason}" for reason, count in resumed.counts().items()]
    if running:
        lines += ["", "To run:"]
        for decision in running[:LISTED]:
            detail = f" ({decision.detail})" if decision.detail else ""
            lines.append(f"  {decision.name}: {decision.reason}{detail}")
        if len(running) > LISTED:
            lines.append(f"  ... and {len(running) - LISTED:,} more (--json lists every job)")
    return "\n".join(sanitize(line) for line in lines) + "\n"
