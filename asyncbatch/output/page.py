"""The page of ``asyncbatch show --html``: one self-contained HTML file.

It works offline: its style and script are inline, it loads nothing (its content
security policy forbids it), and every string from the report is escaped (names can
hold ``<``, ``&``, quotes and ``</script>``). The table is sortable and filterable,
failures first, with each job's result (or error) and, where the report has them,
the resources it used; a click on a row opens what the job left (its whole result,
its error, the ends of its output streams). The timeline (:mod:`._timeline`) has one
row per concurrent slot, from each job's ``started_ms`` and ``duration_ms``. Opened
with ``#selftest``, its script clicks its own headers, filters and rows and writes
what it saw into the page (the browser test reads it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncbatch.errors import OutputError
from asyncbatch.model import JobResult, Summary
from asyncbatch.output._html import escape
from asyncbatch.output._page_assets import SCRIPT, STYLE
from asyncbatch.output._timeline import TIMELINE_BARS, assign_slots, timeline_html
from asyncbatch.output.destinations import check_page
from asyncbatch.output.progress import format_bytes
from asyncbatch.output.report import write_atomically
from asyncbatch.output.results import (
    format_cpu,
    format_kb,
    heaviest,
    result_summary,
    stream_tail,
    tail_lines,
)
from asyncbatch.output.show import (
    ERROR_TYPES_SHOWN,
    SavedReport,
    format_ms,
    human_time,
    jobs_phrase,
    slowest_jobs,
)
from asyncbatch.output.terminal import (
    attempts_note,
    error_of,
    failed_in_order,
    group_jobs,
    reason_of,
    sanitize,
)

__all__ = ["TABLE_ROWS", "TIMELINE_BARS", "assign_slots", "escape", "html_page", "write_page"]

TABLE_ROWS = 500
"""Rows of the page's table written into the page; its script shows the rest on demand."""


def write_page(report: SavedReport, destination: Path) -> None:
    """Write :func:`html_page` to ``destination`` atomically, after the checks of a
    run's outputs (a regular file or nothing, outside ``/dev`` and ``/proc``), and
    never over the report shown, its journal or lock, its config or its inputs
    (:func:`~asyncbatch.output.destinations.check_page`)."""
    check_page(destination, report)
    page = html_page(report)
    try:
        write_atomically(destination, page)
    except OSError as exc:
        raise OutputError(path=os.fspath(destination), reason=exc.strerror or str(exc)) from None


def html_page(report: SavedReport) -> str:
    """One self-contained HTML page: the summary, failures by error type, skipped
    and cancelled jobs by reason, the slowest jobs and those that used most CPU and
    memory, a timeline with one row per concurrent slot, and a table of every job,
    sortable and filterable, failures first."""
    return "".join(_page_parts(report))


_RANK = {"failed": 0, "cancelled": 1, "skipped": 2, "succeeded": 3}
"""The page's default order: failures first, then cancelled, skipped, succeeded."""


def _page_parts(report: SavedReport) -> Iterable[str]:
    title = escape(f"asyncbatch report: {report.config or report.path}")
    yield (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1>asyncbatch report</h1>\n<p class="meta">{_meta(report)}</p>\n'
    )
    yield _summary_html(report)
    yield _failures_html(report)
    yield _not_run_html(report)
    yield _ranked_html(report)
    yield timeline_html(report.jobs, report.duration_ms, _started(report))
    columns = _columns(report.jobs)
    yield _table_html(report, columns)
    data = {"columns": [[label, index, kind] for label, index, kind in columns]}
    yield f'<script type="application/json" id="job-data">{_job_data(report, data)}</script>\n'
    yield f"<script>{SCRIPT}</script>\n</body>\n</html>\n"


def _meta(report: SavedReport) -> str:
    """The headline: what ran, and when, as a time the viewer's browser shows in its
    own zone (UTC without a script)."""
    head = f"{report.path}: {jobs_phrase(report.summary.total_jobs)}"
    parts = [escape(f"{head} from {report.config}" if report.config else head)]
    if report.started_at:
        when = escape(human_time(report.started_at))
        parts.append(f'started <time datetime="{escape(report.started_at)}">{when}</time>')
    parts.append(f"took {format_ms(report.duration_ms) or '0 ms'}")
    if report.max_concurrency is not None:
        parts.append(f"at most {report.max_concurrency} at once")
    return ", ".join(parts)


def _started(report: SavedReport) -> datetime | None:
    """When the run started, if the report says it as asyncbatch writes it."""
    try:
        return datetime.strptime(report.started_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _summary_html(report: SavedReport) -> str:
    summary = report.summary
    reused = sum(1 for job in report.jobs if job.reused)
    items = [f"<li><b>{summary.total_jobs:,}</b> jobs in {format_ms(report.duration_ms)}</li>"]
    for status in ("succeeded", "failed", "skipped", "cancelled"):
        extra = f" ({reused:,} reused)" if status == "succeeded" and reused else ""
        count = getattr(summary, status)
        items.append(f'<li class="s-{status}"><b>{count:,}</b> {status}{extra}</li>')
    cpu = [job.resources.cpu_s for job in report.jobs if job.resources and not job.reused]
    if any(seconds is not None for seconds in cpu):
        total = sum(seconds or 0.0 for seconds in cpu)
        items.append(f"<li><b>{format_cpu(total)}</b> of CPU time</li>")
    return f'<section id="summary"><ul class="counts">{"".join(items)}</ul></section>\n'


def _failures_html(report: SavedReport) -> str:
    failed = failed_in_order(report.jobs)
    if not failed:
        return ""
    parts = ['<section id="failures"><h2>Failures by error type</h2>\n']
    groups = group_jobs(failed, lambda job: error_of(job)[0], keep=10)
    for group in groups[: ERROR_TYPES_SHOWN * 2]:
        items = [
            f"<li><code>{escape(job.name)}</code>: "
            f"{escape(error_of(job)[1])}{escape(attempts_note(job))}</li>"
            for job in group.first
        ]
        if group.count > len(group.first):
            items.append(f"<li>\u2026 and {group.count - len(group.first):,} more</li>")
        parts.append(
            f'<details open class="group"><summary><b>{escape(group.key)}</b> '
            f"{jobs_phrase(group.count)}</summary><ul>{''.join(items)}</ul></details>\n"
        )
    if len(groups) > ERROR_TYPES_SHOWN * 2:
        parts.append(f"<p>\u2026 and {len(groups) - ERROR_TYPES_SHOWN * 2:,} other types</p>\n")
    return "".join(parts) + "</section>\n"


def _not_run_html(report: SavedReport) -> str:
    not_run = (job for job in report.jobs if job.status in ("skipped", "cancelled"))
    groups = group_jobs(not_run, reason_of)
    if not groups:
        return ""
    items = []
    for group in groups[: ERROR_TYPES_SHOWN * 2]:
        status, error_type, message = group.key
        names = ", ".join(job.name for job in group.first)
        more = ", \u2026" if group.count > len(group.first) else ""
        items.append(
            f'<li><span class="tag s-{status}">{status}</span> {jobs_phrase(group.count)}: '
            f"{escape(error_type)}: {escape(message)} <small>({escape(names)}{more})</small></li>"
        )
    if len(groups) > ERROR_TYPES_SHOWN * 2:
        items.append(f"<li>\u2026 and {len(groups) - ERROR_TYPES_SHOWN * 2:,} other reasons</li>")
    return (
        '<section id="not-run"><h2>Skipped and cancelled, by reason</h2>'
        f"<ul>{''.join(items)}</ul></section>\n"
    )


def _ranked_html(report: SavedReport) -> str:
    """The slowest jobs, and those that used most CPU time and memory, side by side."""
    lists: list[tuple[str, str, list[JobResult], Callable[[JobResult], str]]] = [
        ("slowest", "Slowest jobs", slowest_jobs(report.jobs), lambda j: format_ms(j.duration_ms)),
        ("cpu", "Most CPU time", heaviest(report.jobs, "cpu_s"), lambda j: format_cpu(_cpu(j))),
        ("memory", "Most memory", heaviest(report.jobs, "max_rss_kb"), lambda j: format_kb(_kb(j))),
    ]
    parts = [
        f'<section id="{key}"><h2>{title}</h2><ol>'
        + "".join(f"<li>{measure(job)} <code>{escape(job.name)}</code></li>" for job in jobs)
        + "</ol></section>"
        for key, title, jobs, measure in lists
        if jobs
    ]
    return f'<div class="ranked">{"".join(parts)}</div>\n' if parts else ""


def _cpu(job: JobResult) -> float | None:
    return None if job.resources is None else job.resources.cpu_s


def _kb(job: JobResult) -> int | None:
    return None if job.resources is None else job.resources.max_rss_kb


# --- the table --------------------------------------------------------------------------------

Column = tuple[str, int, str]
"""A column of the table: its label, the index of its value in a job's data row
(:func:`_job_row`), and how the value shows (``text``, ``status``, ``ms``, ``int``,
``outcome``, ``cpu``, ``kb``, ``bytes``)."""


def _columns(jobs: Sequence[JobResult]) -> list[Column]:
    """The table's columns: one for the job and its input when every job is named by
    its input (as ``each`` names them), and the resources when the report has them."""
    same = all(job.name == job.input for job in jobs)
    columns: list[Column] = [("job (input)" if same else "job", 0, "text")]
    if not same:
        columns.append(("input", 2, "text"))
    columns += [
        ("action", 1, "text"),
        ("status", 3, "status"),
        ("duration", 4, "ms"),
        ("attempts", 5, "int"),
        ("result or error", 9, "outcome"),
    ]
    if any(job.resources is not None for job in jobs):
        columns += [("CPU", 10, "cpu"), ("peak RSS", 11, "kb"), ("read", 12, "bytes")]
        columns.append(("written", 13, "bytes"))
    return columns


def _table_html(report: SavedReport, columns: list[Column]) -> str:
    by_status = Summary.of(report.jobs)
    boxes = "".join(
        f'<label><input type="checkbox" class="status" value="{status}" checked> '
        f"{status} ({getattr(by_status, status):,})</label>"
        for status in _RANK
    )
    heads = "".join(
        f'<th data-col="{place}" aria-sort="none" title="sort">{escape(label)}</th>'
        for place, (label, _, _) in enumerate(columns)
    )
    ordered = sorted(range(len(report.jobs)), key=lambda i: _RANK[report.jobs[i].status])
    rows = "".join(_table_row(report.jobs[i], columns) for i in ordered[:TABLE_ROWS])
    shown = min(TABLE_ROWS, len(report.jobs))
    return (
        '<section id="jobs"><h2>Jobs</h2><div class="controls">'
        '<input type="search" id="filter" placeholder="filter: name, action, input, result, '
        f'error" aria-label="filter">{boxes}<span id="shown">showing {shown:,} of '
        f"{len(report.jobs):,} jobs</span></div>"
        '<p class="hint">Click a row for its whole result or error and the end of its output.</p>'
        f'<table id="job-table"><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>'
        '<p><button type="button" id="more" hidden>show more</button></p></section>\n'
    )


def _table_row(job: JobResult, columns: list[Column]) -> str:
    row = _job_row(job, 0)
    cells = []
    for _, index, kind in columns:
        text = _shown(row[index], kind, job)
        css = ' class="num"' if kind in ("ms", "int", "cpu", "kb", "bytes") else ""
        cells.append(f"<td{css}>{escape(text)}</td>")
    return f'<tr class="s-{job.status}">{"".join(cells)}</tr>'


def _shown(value: Any, kind: str, job: JobResult) -> str:
    """A cell's text as the page's script shows it (without a script)."""
    if kind == "status":
        return job.status + (" (reused)" if job.reused else "")
    if kind == "ms":
        return format_ms(value)
    if kind == "cpu":
        return format_cpu(value)
    if kind == "kb":
        return format_kb(value)
    if kind == "bytes":
        return "" if value is None else format_bytes(value)
    return "" if value is None else str(value)


def _job_row(job: JobResult, index: int) -> list[Any]:
    """A job as the page's script reads it: ``[name, action, input, status,
    duration_ms, attempts, error, index, reused, result or error, cpu_s, max_rss_kb,
    read_bytes, write_bytes, details]``, every text made inert; ``details`` is what a
    click on its row opens (None when there is nothing more to see)."""
    error = ": ".join(error_of(job)) if job.error else ""
    used = job.resources
    return [
        sanitize(job.name),
        sanitize(job.action),
        sanitize(job.input),
        job.status,
        job.duration_ms,
        job.attempts,
        sanitize(error),
        index,
        job.reused,
        sanitize(error or result_summary(job.result)),
        None if used is None else used.cpu_s,
        None if used is None else used.max_rss_kb,
        None if used is None else used.read_bytes,
        None if used is None else used.write_bytes,
        _details(job),
    ]


def _details(job: JobResult) -> dict[str, str] | None:
    """What a click on the job's row opens: its whole result and error, as JSON, and
    the ends of its output streams (apart: not repeated inside the JSON)."""
    found = {}
    if job.result:
        found["result"] = json.dumps(
            _without_streams(job.result), indent=2, ensure_ascii=False, default=str
        )
    if job.error:
        found["error"] = json.dumps(
            _without_streams(job.error), indent=2, ensure_ascii=False, default=str
        )
    for stream in ("stdout", "stderr"):
        tail = stream_tail(job, stream)
        if tail:
            found[stream] = "\n".join(tail_lines(tail))
    return {key: sanitize_lines(text) for key, text in found.items()} or None


def _without_streams(value: dict[str, Any]) -> dict[str, Any]:
    """A result or an error without the output streams' text (shown on their own),
    in ``details`` too; their byte counts stay."""
    kept = {key: item for key, item in value.items() if key not in ("stdout", "stderr")}
    if isinstance(kept.get("details"), dict):
        kept["details"] = _without_streams(kept["details"])
    return kept


def sanitize_lines(text: str) -> str:
    """``text`` made inert line by line, its line breaks kept."""
    return "\n".join(sanitize(line) for line in text.split("\n"))


def _job_data(report: SavedReport, data: dict[str, Any]) -> str:
    """The columns and every job (:func:`_job_row`), as JSON that cannot end its
    ``<script>`` element."""
    data["jobs"] = [_job_row(job, index) for index, job in enumerate(report.jobs)]
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
