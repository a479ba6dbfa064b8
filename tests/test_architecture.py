"""The structure the code keeps, checked on its source (import-linter checks the
layers in ``make lint``; these check what it cannot):

- no module imports another package's private (``_name``) module;
- no layer above the actions names one of them: what the loader, the plan, the
  journal and the engine need to know about an action is a declared capability;
- modules stay under 400 lines;
- every option of ``run`` and ``each`` is a field of ``RunOptions`` (or one of the
  inputs ``each`` describes), and every field of ``RunOptions`` is an option.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import typer

import asyncbatch
from asyncbatch.cli import app
from asyncbatch.options import RunOptions

PACKAGE = Path(asyncbatch.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(name: str, path: Path) -> str:
    """The package a module belongs to (a package's ``__init__`` is its own)."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported(path: Path) -> list[str]:
    """Every module of asyncbatch that ``path`` imports, at any depth of its code,
    ``TYPE_CHECKING`` blocks included (a type is an import too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.split(".")[0] == "asyncbatch"]


def test_no_module_imports_another_packages_private_module() -> None:
    reaching = []
    for path in MODULES:
        name = module_name(path)
        own = package_of(name, path)
        for target in imported(path):
            parts = target.split(".")
            for depth in range(1, len(parts)):
                if parts[depth].startswith("_") and not parts[depth].startswith("__"):
                    owner = ".".join(parts[:depth])
                    if owner != own:
                        reaching.append(f"{name} -> {'.'.join(parts[: depth + 1])}")
                    break
    assert reaching == []


OUTSIDE_ACTIONS = [path for path in MODULES if "actions" not in path.relative_to(PACKAGE).parts]
KNOWLEDGE_OF_ONE_ACTION = re.compile(
    r"CommandParams|is_command|actions\.command|origin\s*!=\s*\"builtin\"|\.kernel\.reads"
    r"|[\"']command[\"']"
)


def test_no_module_outside_the_actions_names_one_of_them() -> None:
    """``command`` is an ordinary action: what it can do it declares, like any."""
    named = [
        f"{module_name(path)}:{number}: {line.strip()}"
        for path in OUTSIDE_ACTIONS
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if KNOWLEDGE_OF_ONE_ACTION.search(line)
    ]
    allowed = {"asyncbatch.cli._each"}  # `-- PROGRAM` builds command jobs, through its module
    assert [line for line in named if line.split(":")[0] not in allowed] == []


def test_the_engine_and_the_output_import_no_action_and_the_engine_no_output() -> None:
    found = [
        f"{module_name(path)} -> {target}"
        for path in MODULES
        for target in imported(path)
        if (
            (module_name(path).startswith(("asyncbatch.engine", "asyncbatch.output")))
            and target.startswith("asyncbatch.actions")
        )
        or (
            module_name(path).startswith("asyncbatch.engine")
            and target.startswith("asyncbatch.output")
        )
    ]
    assert found == []


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_a_module_stays_under_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < 400, f"{lines} lines"


# --- options are declared once ----------------------------------------------------------

EACH_OWN = {
    "inputs",
    "action",
    "params",
    "shell",
    "ok_exit",
    "null",
    "arg_file",
    "link",
    "args",
    "colsep",
    "csv",
    "header",
    "max_args",
}
"""What ``each`` takes besides the run's options: the inputs (where they come from,
how they are split and grouped) and what runs on them."""
RUN_OWN = {"config"}
PLAN_OWN = {"config", "as_json"}


def command_parameters(name: str) -> dict[str, object]:
    """The command line parameters of ``asyncbatch NAME``, by their Python name."""
    group = typer.main.get_command(app)
    command = group.commands[name]  # type: ignore[attr-defined]  # a TyperGroup
    return {param.name or "": param for param in command.params if param.name != "help"}


def spelled_fields() -> dict[str, str]:
    """Each command line parameter name of a spelling, and the field it sets."""
    return {
        spelling.name: field.name
        for field in dataclasses.fields(RunOptions)
        for spelling in field.metadata.get("spellings", ())
    }


@pytest.mark.parametrize(
    ("command", "own"), [("run", RUN_OWN), ("each", EACH_OWN), ("plan", PLAN_OWN)]
)
def test_every_option_of_a_command_sets_a_field_of_run_options(command: str, own: set[str]) -> None:
    parameters = command_parameters(command)
    fields = spelled_fields()
    unmapped = [name for name in parameters if name not in fields and name not in own]
    assert unmapped == []
    assert own <= set(parameters)


def test_every_field_of_run_options_is_an_option_of_run() -> None:
    """``run`` takes them all; ``each`` all but those about a config file."""
    set_by_run = {spelled_fields()[name] for name in command_parameters("run") if name != "config"}
    assert set_by_run == {field.name for field in dataclasses.fields(RunOptions)}
    set_by_each = {
        spelled_fields()[name] for name in command_parameters("each") if name not in EACH_OWN
    }
    assert set_by_run - set_by_each == {"only", "strict", "root"}


def test_an_option_given_twice_through_two_spellings_is_a_usage_error(tmp_path: Path) -> None:
    from support import invoke, write_json

    config = write_json(tmp_path / "c.json", {"jobs": []})
    result = invoke(["run", str(config), "--fail-fast", "--max-failures", "3"])
    assert result.exit_code == 2
    assert "error: --fail-fast and --max-failures: give only one of them" in result.stderr
