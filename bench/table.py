"""The benchmark's tables in README.md and docs/benchmarks.md, regenerated from
bench/results.json: each page holds its table between ``<!-- bench:start -->`` and
``<!-- bench:end -->``, and this module writes what goes there (``--check``: says
which page is stale, writes nothing). Standard library only, so that the tests can
load it alone.

    python bench/table.py [--results bench/results.json] [--check]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
README = ROOT / "README.md"
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
GENERATED = (
    "<!-- generated from bench/results.json by `python bench/run.py --write-docs`: do not edit -->"
)


def fmt(value: float | None, unit: str | None) -> str:
    """A measured figure with its unit, to three significant digits or so."""
    if value is None:
        return "-"
    if unit == "jobs/s":
        return f"{value:,.0f} jobs/s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:.3g} {unit}" if unit else f"{value:.3g}"


def verdict(row: dict[str, Any]) -> str:
    """What the met column says: met, not met, not measured, or for information."""
    if row["met"] is True:
        return "met"
    if row["met"] is False:
        return "**not met**"
    if row["ours"] is None:
        return "not measured"
    return "for information"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _tool(row: dict[str, Any]) -> str:
    if not row["tool"]:
        return ""
    if row["tool_value"] is None:
        return str(row["tool"])
    return f"{row['tool']}: {fmt(row['tool_value'], row['unit'])}"


def rows_table(rows: list[dict[str, Any]], *, notes: bool) -> list[str]:
    """A Markdown table of rows: work, ours, tool, ratio, target, met (and notes)."""
    head = ["work", "ours", "tool", "ratio", "target", "met"]
    if notes:
        head.append("note")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
        cells = [row["work"], fmt(row["ours"], row["unit"]), _tool(row), ratio]
        cells += [row["target"] or "none", verdict(row)]
        if notes:
            cells.append(row["note"] or "")
        lines.append("| " + " | ".join(_cell(str(cell)) for cell in cells) + " |")
    return lines


def machine_line(machine: dict[str, Any]) -> str:
    """Where and how the figures were measured, in one line."""
    load = machine.get("load_average") or []
    parts = [
        f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores",
        f"Python {machine.get('python', '?')}",
        str(machine.get("os", "?")),
        str(machine.get("date", "?")),
        f"load average {load[0]:.2f} at start" if load else "load average unknown",
        f"`{machine.get('command', 'python bench/run.py')}`",
    ]
    line = "Machine: " + "; ".join(parts) + "."
    if machine.get("quick"):
        line += " **A quick run (small corpora, a smoke test): not figures to quote.**"
    return line


def cases_table(cases: list[dict[str, Any]]) -> list[str]:
    """Every command of every case: median seconds, ratio to the case's baseline,
    peak RSS."""
    lines = ["| case | command | median | ratio to baseline | peak RSS |", "|---|---|---|---|---|"]
    for case in cases:
        for i, row in enumerate(case["rows"]):
            title = case["case"] if i == 0 else ""
            rss = f"{row['peak_rss_mb']:.0f} MB" if row.get("peak_rss_mb") else ""
            baseline = " (baseline)" if row["command"] == case["baseline"] else ""
            cells = [title, row["command"] + baseline, fmt(row["median_s"], "s")]
            cells += [f"{row['ratio']:.2f}x", rss]
            lines.append("| " + " | ".join(_cell(str(cell)) for cell in cells) + " |")
    return lines


def readme_block(results: dict[str, Any]) -> str:
    """The README's table: the headline rows, compact."""
    lines = [machine_line(results["machine"]), "", *rows_table(results["rows"], notes=False)]
    return "\n".join(lines)


def docs_block(results: dict[str, Any]) -> str:
    """docs/benchmarks.md's tables: the headline rows with notes, the other targets,
    and every command measured."""
    lines = [machine_line(results["machine"]), "", *rows_table(results["rows"], notes=True)]
    if results.get("extra_rows"):
        lines += ["", "Other targets:", "", *rows_table(results["extra_rows"], notes=True)]
    if results.get("cases"):
        lines += ["", "Every command, medians:", "", *cases_table(results["cases"])]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between the markers replaced by ``block``."""
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise ValueError(f"no {START} ... {END} markers")
    return f"{before}{START}\n{GENERATED}\n\n{block}\n\n{END}{after}"


def rendered(results: dict[str, Any]) -> dict[Path, str]:
    """Each page as it should be, given ``results``."""
    pages = {README: readme_block(results), DOCS: docs_block(results)}
    return {
        path: replace_block(path.read_text(encoding="utf-8"), block)
        for path, block in pages.items()
    }


def write_docs(results_path: Path = RESULTS, *, check: bool = False) -> list[Path]:
    """Regenerate the pages' tables from ``results_path``; return the pages that
    changed (with ``check``: that would change, writing nothing)."""
    results = json.loads(results_path.read_text(encoding="utf-8"))
    stale = []
    for path, text in rendered(results).items():
        if path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="bench/results.json")
    parser.add_argument("--check", action="store_true", help="fail if a page is stale")
    args = parser.parse_args()
    stale = write_docs(args.results, check=args.check)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path.relative_to(ROOT)}")
    if args.check and stale:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
