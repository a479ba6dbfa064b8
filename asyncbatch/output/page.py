"""The page of ``asyncbatch show --html``: one self-contained HTML file.

It works offline: its style and script are inline, it loads nothing (its content
security policy forbids it), and every string from the report is escaped (names can
hold ``<``, ``&``, quotes and ``</script>``). The table is sortable and filterable,
failures first; the timeline has one row per concurrent slot, from each job's
``started_ms`` and ``duration_ms``. Opened with ``#selftest``, its script clicks its
own headers and filters and writes what it saw into the page (the browser test reads it).
"""

from __future__ import annotations

import heapq
import html
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from asyncbatch.errors import OutputError
from asyncbatch.model import JobResult, Summary
from asyncbatch.output._page_assets import SCRIPT, STYLE
from asyncbatch.output.destinations import check_page
from asyncbatch.output.report import write_atomically
from asyncbatch.output.show import (
    ERROR_TYPES_SHOWN,
    SavedReport,
    format_ms,
    headline,
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

TABLE_ROWS = 500
"""Rows of the page's table written into the page; its script shows the rest on demand."""
TIMELINE_BARS = 10_000
"""Jobs drawn on the page's timeline (the first to start); the others are counted."""
_OVERLAP_MS = 0.002
"""Times in a report are rounded to the microsecond: a job that starts within this of
another's end can take its slot."""


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
    and cancelled jobs by reason, the slowest jobs, a timeline with one row per
    concurrent slot, and a table of every job, sortable and filterable, failures
    first."""
    return "".join(_page_parts(report))


def assign_slots(jobs: Sequence[JobResult]) -> list[tuple[int, JobResult]]:
    """(slot, job) for each job that started in this run (reused results did not),
    by start time: each takes the lowest slot free when it starts (interval
    partitioning: as few slots as jobs ever ran at once)."""
    started = sorted(
        (job for job in jobs if job.started_ms is not None and not job.reused),
        key=lambda job: (job.started_ms, job.duration_ms or 0.0),
    )
    busy: list[tuple[float, int]] = []  # (end, slot)
    free: list[int] = []
    placed = []
    for job in started:
        start = job.started_ms or 0.0
        while busy and busy[0][0] <= start + _OVERLAP_MS:
            heapq.heappush(free, heapq.heappop(busy)[1])
        slot = heapq.heappop(free) if free else len(busy)
        heapq.heappush(busy, (start + (job.duration_ms or 0.0), slot))
        placed.append((slot, job))
    return placed


def escape(text: str) -> str:
    """``text`` for HTML text or a quoted attribute: controls made visible, then
    ``<``, ``>``, ``&`` and quotes escaped."""
    return html.escape(sanitize(text), quote=True)


_RANK = {"failed": 0, "cancelled": 1, "skipped": 2, "succeeded": 3}
"""The page's default order: failures first, then cancelled, skipped, succeeded."""
_COLUMNS = ("name", "action", "input", "status", "duration", "attempts", "error")


def _page_parts(report: SavedReport) -> Iterable[str]:
    title = escape(f"asyncbatch report: {report.config or report.path}")
    yield (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1>asyncbatch report</h1>\n<p class="meta">{escape(headline(report))}</p>\n'
    )
    yield _summary_html(report)
    yield _failures_html(report)
    yield _not_run_html(report)
    yield _slowest_html(report)
    yield _timeline_html(report)
    yield _table_html(report)
    yield f'<script type="application/json" id="job-data">{_job_data(report)}</script>\n'
    yield f"<script>{SCRIPT}</script>\n</body>\n</html>\n"


def _summary_html(report: SavedReport) -> str:
    summary = report.summary
    reused = sum(1 for job in report.jobs if job.reused)
    items = [f"<li><b>{summary.total_jobs:,}</b> jobs in {format_ms(report.duration_ms)}</li>"]
    for status in ("succeeded", "failed", "skipped", "cancelled"):
        extra = f" ({reused:,} reused)" if status == "succeeded" and reused else ""
        count = getattr(summary, status)
        items.append(f'<li class="s-{status}"><b>{count:,}</b> {status}{extra}</li>')
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


def _slowest_html(report: SavedReport) -> str:
    slowest = slowest_jobs(report.jobs)
    if not slowest:
        return ""
    items = "".join(
        f"<li>{format_ms(job.duration_ms)} <code>{escape(job.name)}</code></li>" for job in slowest
    )
    return f'<section id="slowest"><h2>Slowest jobs</h2><ol>{items}</ol></section>\n'


def _timeline_html(report: SavedReport) -> str:
    placed = assign_slots(report.jobs)
    notes = []
    absent = len(report.jobs) - len(placed)
    if absent:
        notes.append(
            f"{jobs_phrase(absent)} did not run in this run (skipped, reused, or cancelled "
            "before starting): not on the timeline."
        )
    if len(placed) > TIMELINE_BARS:
        notes.append(f"The first {TIMELINE_BARS:,} of {len(placed):,} jobs to start are drawn.")
        placed = placed[:TIMELINE_BARS]
    ends = ((job.started_ms or 0.0) + (job.duration_ms or 0.0) for _, job in placed)
    span = max(report.duration_ms, *ends, 0.001) if placed else max(report.duration_ms, 0.001)
    lanes: list[list[str]] = [[] for _ in range(max((slot for slot, _ in placed), default=-1) + 1)]
    for slot, job in placed:
        start, took = job.started_ms or 0.0, job.duration_ms or 0.0
        error = f", {error_of(job)[0]}" if job.error else ""
        tip = f"{job.name}: {job.status}{error}, {format_ms(took)} from {format_ms(start)}"
        lanes[slot].append(
            f'<div class="bar s-{job.status}" style="left:{start / span * 100:.4f}%;'
            f'width:{took / span * 100:.4f}%" title="{escape(tip)}"></div>'
        )
    ticks = "".join(
        f'<span style="left:{share * 25}%">{format_ms(span * share / 4) or "0"}</span>'
        for share in range(5)
    )
    rows = "".join(f'<div class="lane">{"".join(bars)}</div>' for bars in lanes)
    slots = f"{len(lanes):,} slot" + ("" if len(lanes) == 1 else "s")
    notes.insert(0, f"{len(placed):,} jobs over {format_ms(span)}, one row per slot ({slots}).")
    text = "".join(f"<p>{note}</p>" for note in notes)
    return (
        f'<section id="timeline"><h2>Timeline</h2>{text}<div class="axis">{ticks}</div>'
        f'<div class="lanes">{rows}</div></section>\n'
    )


def _table_html(report: SavedReport) -> str:
    by_status = Summary.of(report.jobs)
    boxes = "".join(
        f'<label><input type="checkbox" class="status" value="{status}" checked> '
        f"{status} ({getattr(by_status, status):,})</label>"
        for status in _RANK
    )
    heads = "".join(
        f'<th data-col="{index}" aria-sort="none" title="sort">{name}</th>'
        for index, name in enumerate(_COLUMNS)
    )
    ordered = sorted(range(len(report.jobs)), key=lambda i: _RANK[report.jobs[i].status])
    rows = "".join(_table_row(report.jobs[index]) for index in ordered[:TABLE_ROWS])
    shown = min(TABLE_ROWS, len(report.jobs))
    return (
        '<section id="jobs"><h2>Jobs</h2><div class="controls">'
        '<input type="search" id="filter" placeholder="filter: name, action, input, error" '
        f'aria-label="filter">{boxes}<span id="shown">showing {shown:,} of '
        f"{len(report.jobs):,} jobs</span></div>"
        f'<table id="job-table"><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>'
        '<p><button type="button" id="more" hidden>show more</button></p></section>\n'
    )


def _table_row(job: JobResult) -> str:
    status = job.status + (" (reused)" if job.reused else "")
    error = ": ".join(error_of(job)) if job.error else ""
    cells = (job.name, job.action, job.input, status, format_ms(job.duration_ms))
    tds = "".join(f"<td>{escape(cell)}</td>" for cell in cells)
    return (
        f'<tr class="s-{job.status}">{tds}<td class="num">{job.attempts}</td>'
        f"<td>{escape(error)}</td></tr>"
    )


def _job_data(report: SavedReport) -> str:
    """Every job as ``[name, action, input, status, duration_ms, attempts, error,
    index, reused]``, as JSON that cannot end its ``<script>`` element."""
    rows = []
    for index, job in enumerate(report.jobs):
        error = ": ".join(error_of(job)) if job.error else ""
        rows.append(
            [
                sanitize(job.name),
                sanitize(job.action),
                sanitize(job.input),
                job.status,
                job.duration_ms,
                job.attempts,
                sanitize(error),
                index,
                job.reused,
            ]
        )
    text = json.dumps(rows, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
