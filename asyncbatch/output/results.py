"""What a report's jobs produced and used, for people and for tools: the results
(``asyncbatch show REPORT --results``: a table per action, TSV, or JSON), the tails of
a command's output streams, and the resources a job used.

Reports of every version are read alike: a failed command's output tails are in
``error.details`` (``stdout``, ``stderr``), or, in older reports, in ``error.stderr``;
a report written before jobs were measured has no ``resources``.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence
from typing import Any

from asyncbatch.model import JobResult
from asyncbatch.output._cells import shorten
from asyncbatch.output.progress import format_bytes
from asyncbatch.output.terminal import sanitize

CELL_WIDTH = 80
"""The results table for people cuts a value to this many characters (a name in
the middle, anything else at its end); TSV and JSON keep every value whole."""
HEAVIEST_SHOWN = 5
"""Jobs listed as those that used most CPU time, and most memory."""

# --- the output streams -------------------------------------------------------------------


def stream_tail(job: JobResult, stream: str) -> str | None:
    """The end of a command's ``stream`` (``"stdout"`` or ``"stderr"``) as the report
    keeps it: in the result of a command that succeeded, in ``error.details`` of one
    that failed, or (older reports) in ``error.stderr``; None when there is none."""
    for holder in (job.result, _details(job), job.error):
        if isinstance(holder, dict):
            text = holder.get(stream)
            if isinstance(text, str):
                return text
    return None


def _details(job: JobResult) -> object:
    return None if job.error is None else job.error.get("details")


def tail_lines(text: str) -> list[str]:
    """A stream's tail as lines for people: control characters made visible, the
    blank lines at its end left out."""
    lines = [sanitize(line) for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


# --- resources -------------------------------------------------------------------------------


def heaviest(jobs: Iterable[JobResult], measure: str) -> list[JobResult]:
    """The :data:`HEAVIEST_SHOWN` jobs that ran in this run (not reused) with the most
    of ``measure`` (a field of :class:`~asyncbatch.model.Resources`), most first."""
    measured = (
        job
        for job in jobs
        if not job.reused and job.resources is not None and _measure(job, measure) is not None
    )
    return heapq.nlargest(HEAVIEST_SHOWN, measured, key=lambda job: _measure(job, measure) or 0)


def _measure(job: JobResult, measure: str) -> float | None:
    value: float | None = getattr(job.resources, measure, None)
    return value


def format_cpu(seconds: float | None) -> str:
    """``0.012 s``, ``3.41 s``, ``12.5 min``; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 60:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def format_kb(kilobytes: int | None) -> str:
    """A ``max_rss_kb`` for people: ``35.2 MiB``."""
    return "" if kilobytes is None else format_bytes(kilobytes * 1024)


# --- the results -------------------------------------------------------------------------------


def with_results(jobs: Iterable[JobResult]) -> list[JobResult]:
    """The jobs that have a result (those that succeeded), in report order."""
    return [job for job in jobs if job.result is not None]


def result_keys(jobs: Iterable[JobResult]) -> list[str]:
    """Every key of the jobs' results, in the order first met."""
    keys: dict[str, None] = {}
    for job in jobs:
        keys.update(dict.fromkeys(job.result or {}))
    return list(keys)


def results_table(jobs: Sequence[JobResult]) -> str:
    """For a person: a table per action (its jobs, a column per key of their
    results), in the order actions are first met; numbers right-aligned, a
    multi-line text as its last line, every value cut to :data:`CELL_WIDTH`."""
    found = with_results(jobs)
    by_action: dict[str, list[JobResult]] = {}
    for job in found:
        by_action.setdefault(job.action, []).append(job)
    blocks = []
    for action, mine in by_action.items():
        keys = result_keys(mine)
        rows = [["job", *keys]]
        rows += [[shorten(sanitize(job.name), CELL_WIDTH), *_cells(job, keys)] for job in mine]
        numeric = [False] + [all(_is_number((j.result or {}).get(k)) for j in mine) for k in keys]
        count = "1 job" if len(mine) == 1 else f"{len(mine):,} jobs"
        blocks.append("\n".join([f"{sanitize(action)} ({count})", *_aligned(rows, numeric)]))
    without = len(jobs) - len(found)
    if without:
        noun = "1 job has" if without == 1 else f"{without:,} jobs have"
        blocks.append(f"{noun} no result (failed, skipped or cancelled): --failed lists failures")
    if not found:
        blocks.insert(0, "no job has a result")
    return "\n\n".join(blocks) + "\n"


def _cells(job: JobResult, keys: Sequence[str]) -> list[str]:
    result = job.result or {}
    return [_for_people(result.get(key)) for key in keys]


def _for_people(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else json.dumps(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        lines = value.rstrip("\n").split("\n")
        text = lines[-1] if len(lines) == 1 else "\u2026" + lines[-1]
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    text = sanitize(text)
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "\u2026"


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _aligned(rows: list[list[str]], numeric: list[bool]) -> list[str]:
    from rich.cells import cell_len

    widths = [max(cell_len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for column, text in enumerate(row):
            pad = " " * (widths[column] - cell_len(text))
            cells.append(pad + text if numeric[column] and row is not rows[0] else text + pad)
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def results_tsv(jobs: Iterable[JobResult]) -> str:
    """For tools: a header line (``name``, ``input``, ``action``, then every key of
    the results), then a line per job with a result. Values as ``jq -r @tsv`` writes
    them (tab, newline, carriage return and backslash as ``\\t``, ``\\n``, ``\\r``,
    ``\\\\``; other control characters as ``\\xNN``); a list or an object as compact
    JSON; null as nothing."""
    found = with_results(jobs)
    keys = result_keys(found)
    lines = ["\t".join(_tsv(value) for value in ("name", "input", "action", *keys))]
    for job in found:
        result = job.result or {}
        values = (job.name, job.input, job.action, *(result.get(key) for key in keys))
        lines.append("\t".join(_tsv(value) for value in values))
    return "\n".join(lines) + "\n"


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _tsv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return sanitize(text.translate(_TSV_ESCAPES))


def results_json(jobs: Iterable[JobResult]) -> str:
    """For tools: ``[{"name", "input", "action", "result"}, ...]``, the jobs with a
    result in report order."""
    found = [
        {"name": job.name, "input": job.input, "action": job.action, "result": job.result}
        for job in with_results(jobs)
    ]
    return json.dumps(found, indent=2, default=str) + "\n"


def result_summary(result: dict[str, Any] | None, width: int = 60) -> str:
    """A result in one short line (the page's result column): ``lines: 1,200``,
    ``algorithm: sha256, digest: 9f86d0…``; a text of several lines as its last one
    (a command's output), empty values left out, cut at ``width`` characters."""
    if not result:
        return ""
    parts = [
        f"{key}: {_for_people(value)}" for key, value in result.items() if value not in ("", None)
    ]
    text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "\u2026"
