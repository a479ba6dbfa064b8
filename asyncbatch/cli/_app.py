"""The Typer application: its help classes, the root options (``--version``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from asyncbatch import __version__

COMMAND_ORDER = ("run", "each", "show", "actions", "schema")


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
    def list_commands(self, ctx: Any) -> list[str]:
        """In the order people need them, whatever order their modules load in."""
        names: list[str] = super().list_commands(ctx)
        rank = {name: place for place, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


class Command(_Plain, TyperCommand):
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
