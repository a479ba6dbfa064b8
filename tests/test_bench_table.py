"""The benchmark tables in README.md and docs/benchmarks.md are generated from
bench/results.json by bench/table.py: a stale table fails here, as does a row of the
results without the shared keys."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
ROW_KEYS = {"key", "work", "ours", "unit", "tool", "tool_value", "ratio", "target", "met", "note"}
MACHINE_KEYS = {"cpu", "cores", "python", "os", "date", "load_average", "quick"}


def load_table() -> ModuleType:
    """bench/table.py, which imports nothing but the standard library."""
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "bench" / "table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RESULTS.read_text(encoding="utf-8"))
    return loaded


def row(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "key": "big_count_lines",
        "work": "count_lines, 8 x 128 MiB",
        "ours": 0.2,
        "unit": "s",
        "tool": "`wc -l`, xargs -P2",
        "tool_value": 0.1,
        "ratio": 0.5,
        "target": ">= 0.5",
        "met": True,
        "note": "",
    }
    return {**base, **changes}


@pytest.mark.parametrize("page", ["README.md", "docs/benchmarks.md"])
def test_the_page_table_is_what_the_renderer_makes_of_the_results(page: str) -> None:
    """Regenerate with `python bench/run.py --write-docs` when this fails."""
    table = load_table()
    expected = table.rendered(results())[ROOT / page]
    assert (ROOT / page).read_text(encoding="utf-8") == expected


def test_the_saved_rows_and_machine_have_the_shared_keys() -> None:
    saved = results()
    assert saved["rows"]
    assert [set(found) for found in saved["rows"] + saved["extra_rows"]] == [ROW_KEYS] * (
        len(saved["rows"]) + len(saved["extra_rows"])
    )
    assert set(saved["machine"]) >= MACHINE_KEYS


def test_a_row_that_missed_its_target_is_marked_not_met() -> None:
    table = load_table()
    lines = table.rows_table([row(ratio=0.1, met=False)], notes=False)
    assert lines[-1].endswith("| >= 0.5 | **not met** |")


def test_the_met_column_tells_met_not_measured_and_for_information_apart() -> None:
    table = load_table()
    rows = [
        row(),
        row(ours=None, ratio=None, met=None, note="not measured: it failed"),
        row(target=None, met=None),
    ]
    cells = [line.split(" | ")[-1] for line in table.rows_table(rows, notes=False)[2:]]
    assert cells == ["met |", "not measured |", "for information |"]


def test_a_pipe_in_a_cell_is_escaped_so_the_table_keeps_its_columns() -> None:
    table = load_table()
    line = table.rows_table([row(work="search `ERROR|FATAL`")], notes=False)[-1]
    assert "`ERROR\\|FATAL`" in line


def test_a_quick_run_is_marked_in_the_machine_line() -> None:
    table = load_table()
    machine = {"cpu": "CPU", "cores": 2, "python": "3.11", "os": "Linux", "quick": True}
    assert "quick run" in table.machine_line(machine)
    assert "quick run" not in table.machine_line({**machine, "quick": False})


def test_a_page_without_the_markers_is_refused() -> None:
    table = load_table()
    with pytest.raises(ValueError, match="markers"):
        table.replace_block("# A page\n", "| a |")


@pytest.mark.slow
def test_a_quick_startup_run_writes_rows_with_the_shared_keys(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "startup", "--json", str(out)],
        capture_output=True,
        check=False,
        cwd=ROOT,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert [found["key"] for found in saved["rows"]] == ["startup_version", "startup_sample"]
    assert all(set(found) == ROW_KEYS for found in saved["rows"])
    assert all(found["met"] in (True, False) for found in saved["rows"])
    assert saved["machine"]["quick"] is True
    assert "| `asyncbatch --version` |" in done.stdout
