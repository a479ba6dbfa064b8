"""Start-up stays small: each command imports what it uses and nothing more, so that
``asyncbatch run`` of a few jobs is over before people notice it began.

Each case runs the command in a fresh interpreter, as the ``asyncbatch`` script
does, and reads which modules it had imported when it exited (``sys.modules``:
whatever way they were imported) and, from ``-X importtime``, which import brought
each in. No timings are asserted (a loaded machine would make them flaky); a
module that creeps back onto a hot path fails here whatever the machine.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from support import summary, write_json

import asyncbatch

ENTRY = """\
import atexit, sys
listing = sys.argv.pop(1)

def write_modules():
    with open(listing, "w", encoding="utf-8") as out:
        out.write("\\n".join(sorted(sys.modules)))

atexit.register(write_modules)
sys.argv[0] = "asyncbatch"
from asyncbatch.__main__ import main
main()
"""
"""The console script, which also lists the modules loaded at exit into a file."""

LOADED_ONLY_WHEN_USED = (
    "yaml",  # YAML configs
    "tomllib",  # TOML configs
    "asyncbatch.cli._read",  # show, actions, schema
    "asyncbatch.cli._each",  # each
    "asyncbatch.output.show",
    "asyncbatch.output.page",  # show --html
    "asyncbatch.output.junit",  # --junit
    "xml.etree.ElementTree",
    "asyncbatch.output.journal",  # -o
    "asyncbatch.engine.dask",  # --executor dask
    "distributed",
    "dask",
    "rich",  # live progress (a terminal), --help
    "numpy",  # counting pieces of a big file
    "hyperscan",  # searching a big file
)


class Imports:
    """The modules a process had loaded at exit and, from its ``-X importtime``
    lines, the module whose import brought each in (None: imported at run time)."""

    def __init__(self, loaded: list[str], stderr: str) -> None:
        self.loaded = frozenset(loaded)
        self.importer: dict[str, str | None] = {}
        # A module's line comes after those of the modules its import brought in,
        # indented one level less: read backwards, the open parents are a stack.
        parents: list[str] = []
        for line in reversed(stderr.splitlines()):
            if not line.startswith("import time:") or "|" not in line:
                continue
            field = line.rsplit("|", 1)[1]
            name = field.strip()
            if name == "imported package":
                continue
            depth = (len(field) - len(field.lstrip(" ")) - 1) // 2
            del parents[depth:]
            self.importer[name] = parents[-1] if parents else None
            parents.append(name)

    def __contains__(self, name: object) -> bool:
        return name in self.loaded

    def chain(self, name: str) -> list[str]:
        """``name`` and the modules whose imports led to it, innermost first."""
        found: list[str] = []
        current: str | None = name
        while current is not None:
            found.append(current)
            current = self.importer.get(current)
        return found


def imports_of(args: list[str], cwd: Path) -> tuple[Imports, subprocess.CompletedProcess[str]]:
    """``asyncbatch ARGS`` in a fresh interpreter, and what it imported."""
    listing = cwd / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, str(listing), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    loaded = listing.read_text(encoding="utf-8").splitlines()
    return Imports(loaded, done.stderr), done


def unwanted(imports: Imports, *, allowed: tuple[str, ...] = ()) -> list[str]:
    """The modules of :data:`LOADED_ONLY_WHEN_USED` loaded but not ``allowed``, each
    with the imports that led to it (``yaml <- asyncbatch.config._formats <- ...``)."""
    return [
        " <- ".join(imports.chain(name))
        for name in LOADED_ONLY_WHEN_USED
        if name in imports and name not in allowed
    ]


def small_batch(folder: Path, suffix: str = ".json") -> Path:
    """Two small inputs and a config of three built-in jobs, search included (it
    runs in a worker process)."""
    (folder / "a.log").write_text("INFO start\nERROR one\n", encoding="utf-8")
    (folder / "b.txt").write_text("some words here\n", encoding="utf-8")
    jobs = [
        ("lines", "count_lines", "a.log", ""),
        ("errors", "search_pattern", "a.log", 'pattern = "ERROR"'),
        ("words", "count_words", "b.txt", ""),
    ]
    if suffix == ".json":
        return write_json(
            folder / "batch.json",
            {
                "jobs": [
                    {"name": name, "action": action, "input": path}
                    | ({"params": {"pattern": "ERROR"}} if params else {})
                    for name, action, path, params in jobs
                ]
            },
        )
    if suffix == ".toml":
        text = "".join(
            f'[[jobs]]\nname = "{name}"\naction = "{action}"\ninput = "{path}"\n'
            + (f"params = {{ {params} }}\n" if params else "")
            for name, action, path, params in jobs
        )
    else:
        text = "jobs:\n" + "".join(
            f"  - {{name: {name}, action: {action}, input: {path}"
            + (", params: {pattern: ERROR}}\n" if params else "}\n")
            for name, action, path, params in jobs
        )
    config = folder / f"batch{suffix}"
    config.write_text(text, encoding="utf-8")
    return config


def test_run_of_a_json_config_imports_only_what_running_needs(tmp_path: Path) -> None:
    config = small_batch(tmp_path)
    imports, done = imports_of(["run", str(config), "--no-progress"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout)["succeeded"] == 3
    assert "asyncbatch.engine._runner" in imports  # it did run, in this process
    assert unwanted(imports) == []


TOP_LEVEL_ONLY_IN = {
    "importlib.metadata": (),  # imported where plugins are looked up
    "yaml": ("asyncbatch.config._yaml",),
    "tomllib": ("asyncbatch.config._toml",),
}
"""Modules our code imports only inside the functions that use them, but for these
modules (themselves imported only for their formats)."""


def module_level_imports(path: Path) -> set[str]:
    """The modules a source file imports when it is itself imported: its top-level
    statements, those under a top-level ``if`` or ``try`` too, but not under
    ``if TYPE_CHECKING``."""
    found: set[str] = set()
    pending = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            pending.extend([*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            pending.extend(part for handler in node.handlers for part in handler.body)
    return found


def test_heavy_modules_are_imported_where_they_are_used() -> None:
    """A run imports pydantic, and pydantic's plugin loader imports importlib.metadata
    on its own; so the run-time checks cannot see a module of ours importing it at
    the top. This reads the source instead."""
    package = Path(asyncbatch.__file__).parent
    misplaced = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for name in module_level_imports(path).intersection(TOP_LEVEL_ONLY_IN):
            if module not in TOP_LEVEL_ONLY_IN[name]:
                misplaced.append(f"{module} imports {name}")
    assert misplaced == []


def test_worker_side_modules_import_neither_metadata_nor_the_event_loop() -> None:
    """What a worker process imports to run a kernel: no importlib.metadata (the
    registry's plugins), asyncio, anyio or pydantic."""
    code = (
        "import sys\n"
        "import asyncbatch.registry, asyncbatch.files.scan, asyncbatch.actions._kernels\n"
        "import asyncbatch.actions._search\n"
        "heavy = {'importlib.metadata', 'asyncio', 'anyio', 'pydantic', 'typer'}\n"
        "print(sorted(heavy.intersection(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("suffix", "parser", "other"),
    [(".yaml", "yaml", "tomllib"), (".toml", "tomllib", "yaml")],
    ids=["yaml", "toml"],
)
def test_a_config_format_imports_its_own_parser_only(
    tmp_path: Path, suffix: str, parser: str, other: str
) -> None:
    config = small_batch(tmp_path, suffix)
    imports, done = imports_of(["run", str(config), "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert parser in imports
    assert other not in imports


def test_dry_run_imports_no_scheduler_or_executor(tmp_path: Path) -> None:
    """Only the engine's listener protocols (the session's types)."""
    imports, done = imports_of(["run", str(small_batch(tmp_path)), "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr
    engine = [name for name in imports.loaded if name.startswith("asyncbatch.engine.")]
    assert engine == ["asyncbatch.engine._hooks"]
    assert unwanted(imports) == []


def test_outputs_import_their_writers_only_when_asked_for(tmp_path: Path) -> None:
    config = small_batch(tmp_path)
    args = ["run", str(config), "-o", "r.json", "--junit", "j.xml", "--no-progress"]
    imports, done = imports_of(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "asyncbatch.output.journal" in imports
    assert "asyncbatch.output.junit" in imports
    allowed = ("asyncbatch.output.journal", "asyncbatch.output.junit", "xml.etree.ElementTree")
    assert unwanted(imports, allowed=allowed) == []


def test_each_imports_what_run_imports_and_no_reading_command(tmp_path: Path) -> None:
    small_batch(tmp_path)
    args = ["each", "a.log", "b.txt", "--action", "count_lines", "--no-progress"]
    imports, done = imports_of(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert unwanted(imports, allowed=("asyncbatch.cli._each",)) == []


def test_show_imports_neither_the_session_nor_the_engine(tmp_path: Path) -> None:
    config = small_batch(tmp_path)
    _, made = imports_of(["run", str(config), "-o", "r.json", "-q"], tmp_path)
    assert made.returncode == 0, made.stderr
    imports, done = imports_of(["show", "r.json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "asyncbatch.output.show" in imports
    for name in ("asyncbatch.session", "asyncbatch.engine._runner", "asyncbatch.cli._run"):
        assert name not in imports, name


def test_version_imports_no_command_line_parser_validation_or_event_loop(
    tmp_path: Path,
) -> None:
    imports, done = imports_of(["--version"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("asyncbatch ")
    for name in ("typer", "pydantic", "anyio", "asyncio", "asyncbatch.cli"):
        assert name not in imports, name
