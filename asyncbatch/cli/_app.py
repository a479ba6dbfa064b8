"""The Typer application: its help classes, the root options (``--version``), and
the commands, each loaded when it is used.

The root group knows every command by name, but imports a command's module and
builds its click command (one parameter object per option) only when that command
is asked for: ``run`` does not pay for ``show``'s imports, nor for building the
options of ``each``. ``--help`` and shell completion ask for all of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from asyncbatch import __version__

COMMAND_MODULES: dict[str, str] = {
    "run": "asyncbatch.cli._run",
    "each": "asyncbatch.cli._each",
    "plan": "asyncbatch.cli._plan",
    "show": "asyncbatch.cli._read",
    "diff": "asyncbatch.cli._compare",
    "actions": "asyncbatch.cli._read",
    "schema": "asyncbatch.cli._read",
}
"""Each command's module (its ``commands`` app declares it), in the order people
need them (the order of ``--help``)."""
COMMAND_ORDER = tuple(COMMAND_MODULES)


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


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
"""The shells ``--install-completion`` and ``--show-completion`` know."""
_COMPLETION_FLAGS = {"--install-completion": "install", "--show-completion": "show"}


class _Group(_Plain, TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # Typer looks commands up in this mapping (to run one, and to suggest a
        # name for a typo); the lazy one answers every name and builds on demand.
        self.commands = _LazyCommands(self.commands)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """``--install-completion SHELL`` (and ``--show-completion SHELL``) for the shell
        named: Typer's flags only detect the shell that runs the command, so ``zsh``
        after them was ignored and bash completion installed."""
        if args:
            flag, equals, value = args[0].partition("=")
            if flag in _COMPLETION_FLAGS:
                following = args[1] if len(args) > 1 and not args[1].startswith("-") else None
                shell = value if equals else following
                if shell is not None:
                    _complete(ctx, _COMPLETION_FLAGS[flag], shell)
        return super().parse_args(ctx, args)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if param.name in ("install_completion", "show_completion"):
                verb = "Install" if param.name == "install_completion" else "Show"
                param.help = (
                    f"{verb} completion for the current shell, or for the SHELL named after "
                    f"it ({', '.join(SHELLS)})."
                )
        return params

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """As Typer's, but a usage error (Typer's own: an unknown option, a missing
        argument, a bad value) is one ``error:`` line on stderr and exit 2, as ours
        are (:mod:`asyncbatch.cli._usage`), instead of a boxed excerpt of the help."""
        given = (args, prog_name, complete_var, False, windows_expand_args)
        if not standalone_mode:
            return super().main(*given, **extra)
        from asyncbatch.cli._usage import ClickException, usage_line

        try:
            code = super().main(*given, **extra)
        except ClickException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # the help was printed
                from asyncbatch.cli._out import err

                err(usage_line(exc))
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx: Any) -> list[str]:
        """In the order people need them, whatever order their modules load in."""
        rank = {name: place for place, name in enumerate(COMMAND_ORDER)}
        return sorted(self.commands, key=lambda name: (rank.get(name, len(rank)), name))


def _complete(ctx: Any, what: str, shell: str) -> None:
    """Install or show the completion of ``shell``, then exit (Typer's own callbacks,
    given the shell); an unknown shell is a usage error."""
    from typer import completion

    if shell not in SHELLS:
        typer.echo(f"error: unknown shell {shell!r} (known: {', '.join(SHELLS)})", err=True)
        raise SystemExit(2)
    callback = completion.install_callback if what == "install" else completion.show_callback
    with ctx:  # Typer looks the command's name up in the current context
        callback(ctx, None, shell)  # type: ignore[arg-type]


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands by name: a command's module is imported, and its
    click command built, the first time the command is looked up."""

    def __init__(self, built: MutableMapping[str, Any]) -> None:
        self._built = dict(built)

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            module = COMMAND_MODULES.get(name)
            if module is None:
                raise KeyError(name)
            self._built.update(_build(module))
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMAND_MODULES, *self._built]))

    def __len__(self) -> int:
        return len(set(COMMAND_MODULES).union(self._built))

    def __contains__(self, name: object) -> bool:
        return name in COMMAND_MODULES or name in self._built


def _build(module: str) -> dict[str, Any]:
    """The click commands of the ``commands`` app of ``module``, by name."""
    built = typer.main.get_command(importlib.import_module(module).commands)
    if isinstance(built, TyperGroup):
        return dict(built.commands)
    return {built.name or "": built}


def command_app() -> typer.Typer:
    """Where a command module declares its commands (``@commands.command()``), with
    the help settings of the root application."""
    return typer.Typer(
        rich_markup_mode="rich", pretty_exceptions_enable=False, add_completion=False
    )


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
