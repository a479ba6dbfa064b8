"""The timeline of the ``show --html`` page: the jobs over the run, one row per
concurrent slot (:func:`assign_slots`), under an axis ticked at round values.

Up to :data:`TIMELINE_BARS` jobs each get a bar, labelled with its name where the
bar is wide enough to show it (a run of 5 jobs reads as 5 labelled bars). More jobs
than that would be bars a pixel wide: the rows are then cut into
:data:`BUCKETS` stretches of time, each shaded by the share of its slot that was in
use and red where a job that failed ran; a run of thousands of jobs reads as where
the time went. A run of many slots groups them, :data:`MAX_ROWS` rows at most.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from asyncbatch.model import JobResult
from asyncbatch.output._html import escape
from asyncbatch.output.show import format_ms, jobs_phrase

TIMELINE_BARS = 1_000
"""Jobs drawn one bar each; a run that started more is drawn as stretches of time."""
BUCKETS = 200
"""Stretches of time a row is cut into when the jobs are too many to draw one by one."""
MAX_ROWS = 64
"""Rows of the aggregated timeline at most: more slots than that share rows."""
_OVERLAP_MS = 0.002
"""Times in a report are rounded to the microsecond: a job that starts within this of
another's end can take its slot."""
_STEPS_MS = (
    *(unit * scale for scale in (1, 10, 100) for unit in (1, 2, 5)),
    *(1000 * s for s in (1, 2, 5, 10, 15, 30)),
    *(60_000 * m for m in (1, 2, 5, 10, 15, 30)),
    *(3_600_000 * h for h in (1, 2, 3, 6, 12, 24)),
)
"""Round steps between ticks, in milliseconds: 1, 2, 5 ms ... 30 s, 1 min ... 1 day."""
MAX_TICKS = 8


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


def tick_step(span_ms: float) -> float:
    """The smallest round step that cuts ``span_ms`` into at most :data:`MAX_TICKS`."""
    for step in _STEPS_MS:
        if span_ms / step <= MAX_TICKS:
            return step
    return 86_400_000 * math.ceil(span_ms / 86_400_000 / MAX_TICKS)


def tick_label(at_ms: float, step_ms: float) -> str:
    """A tick's time from the start, in the unit of the step: ``250 ms``, ``1.5 s``,
    ``2 min``, ``6 h``; ``0`` at the start."""
    if at_ms == 0:
        return "0"
    if step_ms < 1000 and at_ms < 1000:
        return f"{at_ms:g} ms"
    if step_ms < 60_000:
        return f"{at_ms / 1000:g} s"
    if step_ms < 3_600_000:
        return f"{at_ms / 60_000:g} min"
    return f"{at_ms / 3_600_000:g} h"


def timeline_html(jobs: Sequence[JobResult], duration_ms: float, started: datetime | None) -> str:
    """The timeline section: bars, or stretches of time past :data:`TIMELINE_BARS`."""
    placed = assign_slots(jobs)
    ends = [(job.started_ms or 0.0) + (job.duration_ms or 0.0) for _, job in placed]
    span = max(duration_ms, *ends, 0.001) if ends else max(duration_ms, 0.001)
    slots = max((slot for slot, _ in placed), default=-1) + 1
    notes = []
    absent = len(jobs) - len(placed)
    if absent:
        notes.append(
            f"{jobs_phrase(absent)} did not run in this run (skipped, reused, or cancelled "
            "before starting): not on the timeline."
        )
    slot_words = f"{slots:,} slot" + ("" if slots == 1 else "s")
    if len(placed) <= TIMELINE_BARS:
        rows = _bars(placed, slots, span, started)
        head = f"{len(placed):,} jobs over {format_ms(span)}, one row per slot ({slot_words})."
    else:
        per_row = math.ceil(slots / MAX_ROWS)
        rows = _stretches(placed, slots, per_row, span)
        rows_of = "one row per slot" if per_row == 1 else f"one row per {per_row} slots"
        head = (
            f"{len(placed):,} jobs over {format_ms(span)}, {rows_of} ({slot_words}), too many "
            f"to draw one by one: each row is cut into {BUCKETS} stretches of "
            f"{format_ms(span / BUCKETS)}, darker the more of its slots were in use, red "
            "where a job that failed ran."
        )
    notes.insert(0, head)
    step = tick_step(span)
    ticks = "".join(
        f'<span style="left:{at / span * 100:.4f}%">{tick_label(at, step)}</span>'
        for at in (k * step for k in range(int(span // step) + 1))
    )
    text = "".join(f"<p>{note}</p>" for note in notes)
    kind = "bars" if len(placed) <= TIMELINE_BARS else "stretches"
    return (
        f'<section id="timeline"><h2>Timeline</h2>{text}<div class="axis">{ticks}</div>'
        f'<div class="lanes {kind}">{rows}</div></section>\n'
    )


def _bars(
    placed: list[tuple[int, JobResult]], slots: int, span: float, started: datetime | None
) -> str:
    lanes: list[list[str]] = [[] for _ in range(slots)]
    for slot, job in placed:
        start, took = job.started_ms or 0.0, job.duration_ms or 0.0
        error = f", {job.error.get('type', '?')}" if job.error else ""
        clock = ""
        if started is not None:
            moment = started + timedelta(milliseconds=start)
            clock = f" (at {moment:%H:%M:%S}.{moment.microsecond // 1000:03d} UTC)"
        tip = f"{job.name}: {job.status}{error}, {format_ms(took)} from {format_ms(start) or '0'}"
        lanes[slot].append(
            f'<div class="bar s-{job.status}" style="left:{start / span * 100:.4f}%;'
            f'width:{took / span * 100:.4f}%" title="{escape(tip + clock)}">'
            f"<span>{escape(job.name)}</span></div>"
        )
    return "".join(f'<div class="lane">{"".join(bars)}</div>' for bars in lanes)


def _stretches(placed: list[tuple[int, JobResult]], slots: int, per_row: int, span: float) -> str:
    """Each row's busy time and failures per stretch of time, as shaded cells."""
    rows = math.ceil(slots / per_row)
    width = span / BUCKETS
    busy = [[0.0] * BUCKETS for _ in range(rows)]
    failed = [[0] * BUCKETS for _ in range(rows)]
    counted = [[0] * BUCKETS for _ in range(rows)]
    for slot, job in placed:
        row = slot // per_row
        start = job.started_ms or 0.0
        end = start + (job.duration_ms or 0.0)
        first = min(BUCKETS - 1, int(start / width))
        last = min(BUCKETS - 1, int(end / width))
        for bucket in range(first, last + 1):
            overlap = min(end, (bucket + 1) * width) - max(start, bucket * width)
            busy[row][bucket] += max(0.0, overlap)
            counted[row][bucket] += 1
            if job.status == "failed":
                failed[row][bucket] += 1
    lines = []
    for row in range(rows):
        in_row = min(per_row, slots - row * per_row)
        cells = []
        for bucket in range(BUCKETS):
            if not counted[row][bucket]:
                continue
            share = min(1.0, busy[row][bucket] / (width * in_row))
            status = "failed" if failed[row][bucket] else "succeeded"
            tip = (
                f"{format_ms(bucket * width) or '0'} to {format_ms((bucket + 1) * width)}: "
                f"{share:.0%} in use, {jobs_phrase(counted[row][bucket])}"
                + (f" ({failed[row][bucket]:,} failed)" if failed[row][bucket] else "")
            )
            cells.append(
                f'<div class="cell s-{status}" style="left:{bucket / BUCKETS * 100:.3f}%;'
                f'width:{100 / BUCKETS + 0.05:.3f}%;opacity:{0.15 + 0.85 * share:.2f}" '
                f'title="{escape(tip)}"></div>'
            )
        lines.append(f'<div class="lane">{"".join(cells)}</div>')
    return "".join(lines)
