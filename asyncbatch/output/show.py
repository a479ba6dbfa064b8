"""Reading a saved report as a person (``asyncbatch show``): a summary in text,
every failed job, or the summary object as JSON (the HTML page is :mod:`.page`).

:func:`load_report` reads and checks the JSON that ``run -o`` writes: a file that
is not such a report (not JSON, not an object, no ``jobs`` list, a field of the
wrong type or out of range, more than :data:`MAX_REPORT_BYTES`) raises
:class:`NotAReport`, whose message names the file and says why.
"""

from __future__ import annotations

import heapq
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from asyncbatch.errors import NotAReport
from asyncbatch.model import STATUSES, JobResult, Resources, Summary
from asyncbatch.output.results import format_cpu, format_kb, heaviest, stream_tail, tail_lines
from asyncbatch.output.terminal import (
    attempts_note,
    counts_line,
    error_of,
    failed_in_order,
    group_jobs,
    group_lines,
    reason_of,
    sanitize,
)

MAX_REPORT_BYTES = 1 << 30
"""Reports larger than this (1 GiB) are refused rather than read."""
ERROR_TYPES_SHOWN = 10
"""Error types listed in the summary; the failures of the others are counted."""
FAILURES_SHOWN = 5
"""Failed jobs listed under each error type in the summary."""
SLOWEST_SHOWN = 5
MESSAGE_WIDTH = 200
"""Messages in the summary are cut to this many characters (``--failed`` keeps them whole)."""
MAX_MS = 1e12
"""Longest time a report may hold (about 31 years, in milliseconds): a longer one, or
a negative one, is no time a run measured (a report edited, or a corrupt journal
line carried into it) and the report is refused."""
MAX_COUNT = 10**12
"""Largest count (jobs, attempts, concurrency) a report may hold."""


@dataclass(slots=True)
class SavedReport:
    """A report read back from its JSON: the head, and the jobs in report order."""

    path: str
    config: str
    started_at: str
    duration_ms: float
    max_concurrency: int | None
    version: str
    summary: Summary
    jobs: list[JobResult]


# --- reading ---------------------------------------------------------------------------------


def load_report(path: str | os.PathLike[str]) -> SavedReport:
    """Read and check the report at ``path``; raise :class:`NotAReport` when it
    cannot be read or is not an asyncbatch report."""
    label = os.fspath(path)
    data = _read_bounded(label)
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # ValueError: not JSON, not UTF-8
        raise _not_a_report(label, "not JSON") from None
    try:
        return _parse(label, value)
    except _Invalid as exc:
        raise _not_a_report(label, str(exc)) from None


def _not_a_report(path: str, why: str) -> NotAReport:
    return NotAReport(path=path, reason=f"not an asyncbatch report ({why})")


def _read_bounded(path: str) -> bytes:
    """The file's bytes; never blocks on a FIFO, never reads past the bound."""
    from asyncbatch.files.scan import file_kind

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise NotAReport(path=path, reason=f"cannot read it: {exc.strerror or exc}") from None
    kind = file_kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise NotAReport(path=path, reason=f"is a {kind}, not a report file")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_REPORT_BYTES + 1)
        except OSError as exc:
            raise NotAReport(path=path, reason=f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_REPORT_BYTES:
        raise NotAReport(path=path, reason="is larger than 1 GiB; refused")
    return data


class _Invalid(Exception):
    """Why a JSON value is not a report (internal to :func:`load_report`)."""


def _parse(path: str, value: object) -> SavedReport:
    if not isinstance(value, dict):
        raise _Invalid("not a JSON object")
    jobs = value.get("jobs")
    if not isinstance(jobs, list):
        raise _Invalid('no "jobs" list')
    summary = value.get("summary")
    if not isinstance(summary, dict):
        raise _Invalid('no "summary" object')
    counts = {}
    for key in ("total_jobs", *STATUSES):
        count = summary.get(key)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise _Invalid(f'"summary" has no count "{key}"')
        if count > MAX_COUNT:
            raise _Invalid(f'"summary": "{key}" is out of range (at most {_shown(MAX_COUNT)})')
        counts[key] = count
    return SavedReport(
        path=path,
        config=_optional(value, "config", str, "", "report"),
        started_at=_optional(value, "started_at", str, "", "report"),
        duration_ms=_number(value.get("duration_ms"), "duration_ms", "report") or 0.0,
        max_concurrency=_optional(value, "max_concurrency", int, None, "report"),
        version=_optional(value, "asyncbatch_version", str, "", "report"),
        summary=Summary(**counts),
        jobs=[_job(entry, index) for index, entry in enumerate(jobs)],
    )


def _job(entry: object, index: int) -> JobResult:
    where = f"jobs[{index}]"
    if not isinstance(entry, dict):
        raise _Invalid(f"{where} is not an object")
    status = entry.get("status")
    if status not in STATUSES:
        raise _Invalid(f'{where}: "status" is not one of {", ".join(STATUSES)}')
    error = entry.get("error")
    if error is not None and not (
        isinstance(error, dict)
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    ):
        raise _Invalid(f'{where}: "error" is neither null nor a type and a message')
    result = entry.get("result")
    return JobResult(
        name=_required(entry, "name", where),
        action=_required(entry, "action", where),
        input=_optional(entry, "input", str, "", where),
        status=status,
        result=result if isinstance(result, dict) else None,
        # As the report holds it: a failed command's has its output in "details".
        error=None if error is None else cast("dict[str, str]", error),
        duration_ms=_number(entry.get("duration_ms"), "duration_ms", where),
        attempts=_optional(entry, "attempts", int, 0, where),
        reused=_optional(entry, "reused", bool, False, where),
        started_ms=_number(entry.get("started_ms"), "started_ms", where),
        resources=_resources(entry.get("resources"), where),
    )


def _resources(value: object, where: str) -> Resources | None:
    """What a job used: null or absent (a report written before jobs were measured)
    is None; each measure is a number or null."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(f'{where}: "resources" is neither null nor an object')
    where = f"{where}.resources"
    counts = {}
    for key in ("max_rss_kb", "read_bytes", "write_bytes"):
        count = _number(value.get(key), key, where)
        counts[key] = None if count is None else max(0, min(int(count), 1 << 62))
    return Resources(cpu_s=_number(value.get("cpu_s"), "cpu_s", where), **counts)


def _required(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise _Invalid(f'{where}: "{key}" is not a string')
    return value


def _optional(entry: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    """``entry[key]`` when it is of ``kind`` (a bool is no int), ``default`` when
    absent or null."""
    value = entry.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Invalid(f'{where}: "{key}" is not {_KINDS[kind]}')
    if isinstance(value, int) and not 0 <= value <= MAX_COUNT:
        raise _Invalid(f'{where}: "{key}" is out of range (0 to {_shown(MAX_COUNT)})')
    return value


_KINDS: dict[type, str] = {str: "a string", int: "an integer", bool: "true or false"}


def _number(value: object, key: str, where: str) -> float | None:
    """Milliseconds from 0 to :data:`MAX_MS`, or None (null, absent, NaN, infinite);
    any other number is out of range (an integer of 400 digits included)."""
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _Invalid(f'{where}: "{key}" is not a number')
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not 0 <= value <= MAX_MS:
        raise _Invalid(f'{where}: "{key}" is out of range (0 to {_shown(MAX_MS)} ms)')
    return float(value)


def _shown(bound: float) -> str:
    """``1e12``."""
    return f"{bound:.0e}".replace("+", "")


# --- text -----------------------------------------------------------------------------------


def summary_text(report: SavedReport) -> str:
    """For a person: what ran and for how long, the counts, the failures by error
    type, the skipped and cancelled jobs by reason, and the slowest jobs."""
    reused = sum(1 for job in report.jobs if job.reused)
    lines = [
        headline(report),
        counts_line(report.summary, reused=reused, duration_ms=report.duration_ms),
    ]
    failed = failed_in_order(report.jobs)
    if failed:
        lines += ["", f"Failed ({len(failed):,}), by error type:", *_failure_lines(failed)]
    not_run = (job for job in report.jobs if job.status in ("skipped", "cancelled"))
    grouped = group_lines(group_jobs(not_run, reason_of))
    if grouped:
        lines += ["", "Skipped and cancelled, by reason:", *(text for _, text in grouped)]
    slowest = slowest_jobs(report.jobs)
    lines += _ranked("Slowest:", slowest, lambda job: format_ms(job.duration_ms))
    cpu = heaviest(report.jobs, "cpu_s")
    lines += _ranked("Most CPU time:", cpu, lambda job: format_cpu(_used(job).cpu_s))
    memory = heaviest(report.jobs, "max_rss_kb")
    lines += _ranked(
        "Most memory (peak RSS):", memory, lambda job: format_kb(_used(job).max_rss_kb)
    )
    return "\n".join(sanitize(line) for line in lines) + "\n"


def _ranked(title: str, jobs: list[JobResult], measure: Callable[[JobResult], str]) -> list[str]:
    """A titled list of ``jobs`` with their ``measure`` aligned: nothing for no job."""
    if not jobs:
        return []
    width = max(len(measure(job)) for job in jobs)
    return ["", title, *(f"  {measure(job):>{width}}  {job.name}" for job in jobs)]


def _used(job: JobResult) -> Resources:
    return job.resources or Resources()


def headline(report: SavedReport) -> str:
    head = f"{report.path}: {jobs_phrase(report.summary.total_jobs)}"
    parts = [f"{head} from {report.config}" if report.config else head]
    if report.started_at:
        parts.append(f"started {human_time(report.started_at)}")
    if report.max_concurrency is not None:
        parts.append(f"at most {report.max_concurrency} at once")
    return ", ".join(parts)


def human_time(timestamp: str) -> str:
    """A report's timestamp for people: ``2026-11-28 19:00:00 UTC`` (as written, if
    it is not one of ours)."""
    try:
        moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return timestamp
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _failure_lines(failed: list[JobResult]) -> list[str]:
    groups = group_jobs(failed, lambda job: error_of(job)[0], keep=FAILURES_SHOWN)
    lines = []
    for group in groups[:ERROR_TYPES_SHOWN]:
        lines.append(f"  {group.key} ({jobs_phrase(group.count)})")
        for job in group.first:
            message = _cut(error_of(job)[1], MESSAGE_WIDTH)
            lines.append(f"    {job.name}: {message}{attempts_note(job)}")
        if group.count > len(group.first):
            lines.append(f"    ... and {group.count - len(group.first):,} more")
    if len(groups) > ERROR_TYPES_SHOWN:
        others = groups[ERROR_TYPES_SHOWN:]
        rest = sum(group.count for group in others)
        lines.append(f"  ... and {jobs_phrase(rest)} of {len(others):,} other error types")
    if len(failed) > sum(len(group.first) for group in groups):
        lines.append("  (--failed lists every one)")
    return lines


def failed_text(report: SavedReport) -> str:
    """Every failed job, in report order: ``name: Type: message``, whole, then
    `` (after 4 attempts)`` for a retried job; under it, indented, the end of its
    standard error as the report keeps it (a command's), whole."""
    failed = failed_in_order(report.jobs)
    if not failed:
        return "no job failed\n"
    width = min(40, max(len(job.name) for job in failed)) + 1
    lines = []
    for job in failed:
        error_type, message = error_of(job)
        line = f"{job.name + ':':<{width}} {error_type}: {message}{attempts_note(job)}"
        lines.append(sanitize(line))
        stderr = stream_tail(job, "stderr")
        if stderr:
            lines += [f"    {line}" for line in tail_lines(stderr)]
    return "\n".join(lines) + "\n"


def summary_json(report: SavedReport) -> str:
    """The summary object, as ``run`` prints it."""
    return json.dumps(report.summary.to_dict(), indent=2) + "\n"


def failed_json(report: SavedReport) -> str:
    """The failed jobs, as the report holds them, in a JSON list."""
    return json.dumps([job.to_dict() for job in failed_in_order(report.jobs)], indent=2) + "\n"


def slowest_jobs(jobs: Iterable[JobResult], count: int = SLOWEST_SHOWN) -> list[JobResult]:
    """The ``count`` jobs that took longest (those that ran in this run)."""
    timed = (job for job in jobs if job.duration_ms is not None and not job.reused)
    return heapq.nlargest(count, timed, key=lambda job: job.duration_ms or 0.0)


def format_ms(milliseconds: float | None) -> str:
    """``0.4 ms``, ``120.4 ms``, ``2.31 s``, ``12.5 min``, ``5.2 h``, ``3.0 d``; empty
    when unknown."""
    if milliseconds is None:
        return ""
    if milliseconds < 1000:
        return f"{milliseconds:.1f} ms"
    if milliseconds < 60_000:
        return f"{milliseconds / 1000:.2f} s"
    if milliseconds < 3_600_000:
        return f"{milliseconds / 60_000:.1f} min"
    if milliseconds < 172_800_000:
        return f"{milliseconds / 3_600_000:.1f} h"
    return f"{milliseconds / 86_400_000:,.1f} d"


def jobs_phrase(count: int) -> str:
    return "1 job" if count == 1 else f"{count:,} jobs"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"
