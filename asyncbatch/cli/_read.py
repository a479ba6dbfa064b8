"""The commands that read rather than run: ``show`` (a saved report), ``actions``
and ``schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from asyncbatch.cli._app import Command, command_app
from asyncbatch.cli._out import err, exit_error, print_json, print_text
from asyncbatch.errors import OutputError

if TYPE_CHECKING:
    from asyncbatch.registry import ActionSpec

commands = command_app()

SHOW_EXAMPLES = """\
[bold]Examples[/bold]

  asyncbatch show report.json
  asyncbatch show report.json --failed
  asyncbatch show report.json --results
  asyncbatch show report.json --results --tsv | sort -t$'\\t' -k4 -n
  asyncbatch show report.json --html report.html
  asyncbatch show report.json --json | jq .failed
"""


@commands.command(
    cls=Command,
    epilog=SHOW_EXAMPLES,
    short_help="Read a saved report: a summary, the failures, or an HTML page.",
)
def show(
    report: Annotated[
        Path,
        typer.Argument(metavar="REPORT", help="A report written by run -o.", show_default=False),
    ],
    failed: Annotated[
        bool,
        typer.Option("--failed", help="List every failed job, whole, with its stderr's end."),
    ] = False,
    results: Annotated[
        bool,
        typer.Option(
            "--results", help="The jobs' results: a table per action (--tsv, --json: for tools)."
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the summary object (with --failed: the failed jobs; with --results: "
            "the results) as JSON.",
        ),
    ] = False,
    as_tsv: Annotated[
        bool,
        typer.Option("--tsv", help="With --results: a header line, then a line per job."),
    ] = False,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write one self-contained HTML page there: a sortable table and a timeline.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a saved report for a person: counts, failures by error type, skipped and
    cancelled jobs by reason, the slowest jobs and those that used most CPU and
    memory. Exit 2 if it is not a report."""
    from asyncbatch.errors import NotAReport
    from asyncbatch.output import show as shown

    if failed and results:
        exit_error("--failed and --results: give only one of them")
    if as_tsv and not results:
        exit_error("--tsv needs --results")
    if as_tsv and as_json:
        exit_error("--tsv and --json: give only one of them")
    try:
        saved = shown.load_report(report)
        if html is not None:
            from asyncbatch.output.page import write_page

            write_page(saved, _file_path("--html", html))
    except (NotAReport, OutputError) as exc:
        exit_error(str(exc))
    if results:
        from asyncbatch.output import results as made

        text = (
            made.results_tsv if as_tsv else made.results_json if as_json else made.results_table
        )(saved.jobs)
    elif as_json:
        text = shown.failed_json(saved) if failed else shown.summary_json(saved)
    else:
        text = shown.failed_text(saved) if failed else shown.summary_text(saved)
    print_text(text)


def _file_path(option: str, text: str) -> Path:
    """``text`` as a path that names a file (not a folder, not empty), or exit 2."""
    from asyncbatch.options import file_path

    try:
        return file_path(text)
    except ValueError as exc:
        exit_error(f"{option}: {exc}")


@commands.command("actions", cls=Command)
def list_actions(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the available actions (built-ins and plugins) and their parameters."""
    from asyncbatch.actions import default_registry

    registry = default_registry()
    registry.load_plugins()
    for warning in registry.plugin_warnings:
        err(f"warning: {warning}")
    described = [_describe_action(spec) for spec in registry]
    if as_json:
        print_json(described)
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


@commands.command(cls=Command)
def schema() -> None:
    """Print the JSON Schema of the config format (for editors' "$schema")."""
    from asyncbatch.actions import default_registry
    from asyncbatch.config.schema import config_schema

    registry = default_registry()
    registry.load_plugins()  # plugin actions and their params belong in it too
    for warning in registry.plugin_warnings:
        err(f"warning: {warning}")
    print_json(config_schema(registry))


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
