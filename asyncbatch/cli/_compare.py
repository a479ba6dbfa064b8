"""``diff``: two saved reports compared job by job (:mod:`asyncbatch.output.diff`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from asyncbatch.cli._app import Command, command_app
from asyncbatch.cli._out import exit_error, print_text
from asyncbatch.errors import NotAReport, OutputError

commands = command_app()

DIFF_EXAMPLES = """\
[bold]Examples[/bold]

  asyncbatch diff yesterday.json today.json
  asyncbatch diff yesterday.json today.json --slower 1.5 --json
  asyncbatch diff yesterday.json today.json --html diff.html
  asyncbatch diff yesterday.json today.json --fail-on new-failure,changed

Exit codes: 0, or 1 when a difference --fail-on names exists; 2 when a file is not a
report or an option is wrong.
"""


def _factor(value: float) -> float:
    if not value >= 1:  # NaN too
        raise typer.BadParameter("a factor of 1 or more (2: twice as long)")
    return value


@commands.command(
    cls=Command,
    epilog=DIFF_EXAMPLES,
    short_help="Compare two reports: new, gone, newly failing, fixed, changed, slower jobs.",
)
def diff(
    old: Annotated[
        Path, typer.Argument(metavar="OLD", help="The earlier report.", show_default=False)
    ],
    new: Annotated[
        Path, typer.Argument(metavar="NEW", help="The later report.", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON.")] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write the differences as one self-contained HTML page there.",
            show_default=False,
        ),
    ] = None,
    slower: Annotated[
        float,
        typer.Option(
            "--slower",
            metavar="FACTOR",
            callback=_factor,
            help="Call a job slower from this factor of its old duration on (only jobs "
            "of 100 ms or more).",
        ),
    ] = 2.0,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            metavar="KINDS",
            help="Exit 1 when any of these differences exists: new-failure, changed, "
            "slower (comma-separated).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare two saved reports job by job (by name): jobs new and gone, newly
    failing and fixed, results that changed, jobs slower, jobs that passed only after
    retries."""
    from asyncbatch.output import diff as compared
    from asyncbatch.output.show import load_report

    kinds: list[str] = []
    if fail_on is not None:
        try:
            kinds = compared.parse_fail_on(fail_on)
        except ValueError as exc:
            exit_error(f"--fail-on {fail_on}: {exc}")
    try:
        found = compared.compare(load_report(old), load_report(new), slower=slower)
        if html is not None:
            _write_page(compared.diff_page(found), html, (old, new))
    except (NotAReport, OutputError) as exc:
        exit_error(str(exc))
    print_text(compared.diff_json(found) if as_json else compared.diff_text(found))
    if found.found(kinds):
        raise typer.Exit(1)


def _write_page(page: str, destination: Path, reports: tuple[Path, Path]) -> None:
    """The page at ``destination``, by the rules of every output: never over a report
    compared, its journal or its lock."""
    from asyncbatch.output.destinations import check_destination
    from asyncbatch.output.journal import journal_path, lock_path
    from asyncbatch.output.report import write_atomically

    taken: dict[str, str] = {}
    for report in reports:
        taken[os.path.realpath(report)] = "a report compared"
        taken[os.path.realpath(journal_path(report))] = "the journal of a report compared"
        taken[os.path.realpath(lock_path(report))] = "the lock of a report compared"
    check_destination(destination, what="pages", taken=taken)
    try:
        write_atomically(destination, page)
    except OSError as exc:
        raise OutputError(path=os.fspath(destination), reason=exc.strerror or str(exc)) from None
