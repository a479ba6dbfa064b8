"""Text for people on standard error: job lines (``-v``), the end-of-run summary
and its table of failures, every field made inert first (:func:`sanitize`).

Text from jobs (names, error messages: file names can hold any byte but ``/``) goes
through :func:`sanitize` before it reaches a terminal: an ESC in a file name is
shown as ``\\x1b``, never obeyed.

The end of a run is one screenful whatever the size of the batch: the counts, the
skipped and cancelled jobs grouped by reason (:func:`group_jobs`, one line per
reason), then at most :data:`FAILED_SHOWN` failed jobs, last, so that they stay in
view at the bottom of the terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TextIO, TypeVar

from asyncbatch.output._cells import shorten

if TYPE_CHECKING:
    from asyncbatch.model import JobResult, Report, Summary

NAME_WIDTH = 40
"""End-of-run table: names are aligned up to this width; longer ones overflow
(plain text) or are cut (terminal)."""
FAILED_SHOWN = 20
"""Failed jobs listed at the end of a run; the others are counted."""
NAMES_SHOWN = 5
"""Names listed on the line of a group of skipped or cancelled jobs."""
REASONS_SHOWN = 10
"""Lines of skipped (and of cancelled) jobs at the end of a run, one per reason;
rarer reasons are counted on one more line."""
_INDENT = 2
_SAID_APART_MS = 500.0
"""The end of a run says the jobs' own time apart from the whole when they differ by
this much (a Dask cluster's start and stop)."""
_WHOLE_ENOUGH = 72
"""End-of-run table: the error type gets a column when this many cells (or the
longest name and message, if less) are left for the name and the message."""

K = TypeVar("K", bound=Hashable)

# C0 and C1 controls, DEL, bidirectional overrides and isolates ("Trojan Source"),
# line/paragraph separators and lone surrogates (undecodable bytes of file names).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def sanitize(text: str) -> str:
    """``text`` with each control character written as a visible escape (ESC as
    ``\\x1b``, a newline as ``\\x0a``, RLO as ``\\u202e``): one inert line."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def write_line(stream: TextIO | None, message: str) -> None:
    """One line for people on ``stream``, control characters shown as escapes. A
    closed or full stream (or none: the process started without it) loses the line,
    never the run: the report and the exit code still say what happened."""
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # ValueError: a closed stream
        stream.write(sanitize(message) + "\n")


def job_line(result: JobResult) -> str:
    """The ``-v`` line of a finished job: status, name, time, result or error; a
    result reused from an earlier run (``--resume``) is marked ``reused`` instead of
    a time, which was that run's."""
    if result.reused:
        took = " (reused)"
    else:
        took = "" if result.duration_ms is None else f" in {result.duration_ms:.1f} ms"
    detail = (
        json.dumps(result.result)
        if result.error is None
        else f"{result.error['type']}: {result.error['message']}"
    )
    return f"{result.status:<9} {result.name}{took}: {detail}"


# --- grouping jobs (the end of a run, and `show`) ------------------------------------------


@dataclass(slots=True)
class JobGroup(Generic[K]):
    """Jobs that share a key (a reason, an error type): how many, and the first few
    in the order given."""

    key: K
    count: int = 0
    first: list[JobResult] = field(default_factory=list)


def group_jobs(
    jobs: Iterable[JobResult], key: Callable[[JobResult], K], *, keep: int = NAMES_SHOWN
) -> list[JobGroup[K]]:
    """``jobs`` grouped by ``key``, the largest group first (ties: the group met
    first first), each keeping its first ``keep`` jobs. One pass, memory bounded by
    the number of groups, not of jobs."""
    groups: dict[K, JobGroup[K]] = {}
    for job in jobs:
        value = key(job)
        group = groups.get(value)
        if group is None:
            group = groups[value] = JobGroup(value)
        group.count += 1
        if len(group.first) < keep:
            group.first.append(job)
    return sorted(groups.values(), key=lambda group: -group.count)


def reason_of(job: JobResult) -> tuple[str, str, str]:
    """Why a job did not succeed: (status, error type, message)."""
    error_type, message = error_of(job)
    return job.status, error_type, message


def error_of(job: JobResult) -> tuple[str, str]:
    """A job's (error type, message); ``("?", "")`` for a job without an error."""
    error = job.error or {"type": "?", "message": ""}
    return error.get("type", "?"), error.get("message", "")


def counts_line(summary: Summary, *, reused: int, duration_ms: float, brief: bool = False) -> str:
    """``7 succeeded (5 reused), 1 failed, 0 skipped, 0 cancelled in 1.20 s``;
    ``brief``, without the counts that are 0 (but for succeeded)."""
    succeeded = f"{summary.succeeded:,} succeeded"
    if reused:
        succeeded += f" ({reused:,} reused)"
    counts = [succeeded]
    for status in ("failed", "skipped", "cancelled"):
        count = getattr(summary, status)
        if count or not brief:
            counts.append(f"{count:,} {status}")
    return f"{', '.join(counts)} in {format_duration(duration_ms)}"


def format_duration(milliseconds: float) -> str:
    """``1.20 s`` (to the hundredth of a second)."""
    return f"{milliseconds / 1000:.2f} s"


def group_lines(
    groups: Sequence[JobGroup[tuple[str, str, str]]], *, shown: int = REASONS_SHOWN
) -> list[tuple[str, str]]:
    """One line per reason, ``(status, text)``, the text sanitized:
    ``SKIPPED   3 jobs  DependencyFailed: dependency 'a' failed  (b, c, d)``. At
    most ``shown`` lines per status, then one counting the other reasons."""
    rows: list[tuple[str, str, str]] = []  # (status, count, rest)
    for status in ("skipped", "cancelled"):
        mine = [group for group in groups if group.key[0] == status]
        for group in mine[:shown]:
            _, error_type, message = group.key
            names = ", ".join(job.name for job in group.first)
            if group.count > len(group.first):
                names += ", ..."
            rows.append((status, _jobs(group.count), f"{error_type}: {message}  ({names})"))
        if len(mine) > shown:
            rest = sum(group.count for group in mine[shown:])
            rows.append((status, _jobs(rest), f"... for {len(mine) - shown:,} other reasons"))
    width = max((len(count) for _, count, _ in rows), default=0)
    return [
        (status, sanitize(f"  {status.upper():<9} {count:<{width}}  {rest}"))
        for status, count, rest in rows
    ]


def _jobs(count: int) -> str:
    return "1 job" if count == 1 else f"{count:,} jobs"


def failed_in_order(jobs: Iterable[JobResult], first: str | None = None) -> list[JobResult]:
    """The failed jobs, the one named ``first`` (the first failure in time) first,
    then in report order."""
    failed = [job for job in jobs if job.status == "failed"]
    if first is not None:
        failed.sort(key=lambda job: job.name != first)
    return failed


def attempts_note(job: JobResult) -> str:
    """`` (after 4 attempts)`` for a job that was retried, else nothing."""
    return f" (after {job.attempts} attempts)" if job.attempts > 1 else ""


# --- the end of a run ----------------------------------------------------------------------


def print_end_of_run(
    report: Report, *, quiet: bool, stream: TextIO, took_ms: float | None = None
) -> None:
    """Counts (results reused by ``--resume`` among them) and wall time, why the run
    halted, the skipped and cancelled jobs grouped by reason, then the failed jobs,
    last (the first failure first, at most :data:`FAILED_SHOWN`).

    ``took_ms`` is the whole command's time when it was more than the run's (a Dask
    cluster started and stopped around it): that is the time said, the run's after
    it. On a terminal too narrow for the counts, those that are 0 are left out."""
    if quiet and report.ok:
        return
    terminal = _isatty(stream)
    reused = sum(1 for job in report.jobs if job.reused)
    whole = report.duration_ms if took_ms is None else max(took_ms, report.duration_ms)
    counts = counts_line(report.summary, reused=reused, duration_ms=whole)
    if terminal and len(counts) > _width(stream):
        counts = counts_line(report.summary, reused=reused, duration_ms=whole, brief=True)
    if whole - report.duration_ms >= _SAID_APART_MS:
        counts += f" (running the jobs: {format_duration(report.duration_ms)})"
    write_line(stream, counts)
    if report.halted:
        write_line(stream, f"stopped: {report.halted}")
    not_run = (job for job in report.jobs if job.status in ("skipped", "cancelled"))
    print_group_lines(group_lines(group_jobs(not_run, reason_of)), stream=stream, terminal=terminal)
    failed = failed_in_order(report.jobs, report.first_failure)
    rows = [("failed", job.name, *error_of(job), job.attempts) for job in failed[:FAILED_SHOWN]]
    print_problems(rows, stream=stream, terminal=terminal)
    if len(failed) > FAILED_SHOWN:
        write_line(stream, f"  ... and {len(failed) - FAILED_SHOWN:,} more failed")
    hint = _where_inputs_resolve(report, failed)
    if hint is not None:
        write_line(stream, hint)


def _width(stream: TextIO) -> int:
    """The terminal's width, as rich finds it (``COLUMNS`` first)."""
    from rich.console import Console

    return Console(file=stream).width


def _where_inputs_resolve(report: Report, failed: Sequence[JobResult]) -> str | None:
    """A hint when a relative input was not found: it resolved against the config
    file's folder, which may not be where the user ran from."""
    missing = [
        job
        for job in failed
        if job.error is not None
        and job.error.get("type") == "FileNotFoundError"
        and not os.path.isabs(job.input)
    ]
    if not missing or not os.path.isfile(report.config):
        return None
    folder = os.path.dirname(os.path.abspath(report.config))
    if folder == os.getcwd():
        return None  # where the user is: nothing to point out
    return f"note: inputs are relative to the config file's folder, {folder}"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False


_STATUS_STYLES = {"failed": "bold red", "skipped": "yellow", "cancelled": "red"}


def print_group_lines(lines: Sequence[tuple[str, str]], *, stream: TextIO, terminal: bool) -> None:
    """Lines from :func:`group_lines`: whole on a pipe; on a terminal, the status
    coloured and each line cut at the terminal's width."""
    if not lines:
        return
    if not terminal:
        for _, text in lines:
            stream.write(text + "\n")
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False)
    for status, text in lines:
        line = Text(text, no_wrap=True, overflow="ellipsis")
        start = _INDENT
        line.stylize(_STATUS_STYLES.get(status, ""), start, start + len(status))
        console.print(line, no_wrap=True, overflow="ellipsis", crop=True)


# --- the end-of-run table of failures ------------------------------------------------------

Problem = tuple[str, str, str, str, int]
"""A job that did not succeed, in the end-of-run table: (status, name, error type,
message, attempts)."""


def print_problems(rows: Sequence[Problem], *, stream: TextIO, terminal: bool) -> None:
    """The jobs that did not succeed, one per row, in the order given. On a
    terminal a rich table, cut to its width (an ``attempts`` column when a job was
    retried); elsewhere plain aligned lines (``  FAILED    name:  Type: message``,
    then `` (after 4 attempts)`` for a retried job), whole. Every field is
    sanitized."""
    if not rows:
        return
    clean = [
        (sanitize(status), sanitize(name), sanitize(kind), sanitize(message), attempts)
        for status, name, kind, message, attempts in rows
    ]
    if terminal:
        _print_problem_table(clean, stream)
        return
    width = min(NAME_WIDTH, max(len(row[1]) for row in clean)) + 1
    for status, name, error_type, message, attempts in clean:
        note = f" (after {attempts} attempts)" if attempts > 1 else ""
        stream.write(f"  {status.upper():<9} {name + ':':<{width}} {error_type}: {message}{note}\n")


def _print_problem_table(rows: Sequence[Problem], stream: TextIO) -> None:
    """Columns by importance, their widths adding up to the terminal's: the name, cut
    in the middle (:func:`shorten`: the file name stays), then the message, cut at
    its end; the attempts of a retried job; the error type last, left out where the
    name and the message need its room. The status heads the name column when every
    row shares it (the failures at the end of a run), else it has a column first."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=stream, highlight=False)
    statuses = {row[0] for row in rows}
    shared = statuses.pop() if len(statuses) == 1 else None
    status_width = 0 if shared else max(len("status"), *(len(row[0]) for row in rows)) + 2
    longest_name = max(len(shared or "job"), *(cell_len(row[1]) for row in rows))
    longest_message = max(len("message"), *(cell_len(row[3]) for row in rows))
    wanted = min(longest_name + longest_message, _WHOLE_ENOUGH)
    room = console.width - _INDENT - status_width - 2  # 2: after the name
    attempts_width = len("attempts") + 2 if any(row[4] > 1 for row in rows) else 0
    if room - attempts_width < wanted:
        attempts_width = 0  # said before the message instead
    room -= attempts_width
    type_width = min(24, max(len("error"), *(cell_len(row[2]) for row in rows))) + 2
    if room - type_width < wanted:
        type_width = 0  # the name and the message first
    room = max(8, room - type_width)
    name_width = max(4, min(longest_name, max(room - longest_message, room // 2)))
    message_width = max(4, min(longest_message, room - name_width))
    table = Table(box=None, header_style="bold", padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column("", width=_INDENT - 2)  # the indent, with the padding after it
    if not shared:
        table.add_column("status", no_wrap=True, width=status_width - 2)
    head = Text(shared.upper(), style=_STATUS_STYLES.get(shared, "")) if shared else "job"
    table.add_column(head, no_wrap=True, width=name_width)
    table.add_column("message", no_wrap=True, overflow="ellipsis", width=message_width)
    if attempts_width:
        table.add_column("attempts", no_wrap=True, width=attempts_width - 2, justify="right")
    if type_width:
        table.add_column("error", no_wrap=True, overflow="ellipsis", width=type_width - 2)
    for status, name, error_type, message, attempts in rows:
        cells: list[Text | str] = [""]
        if not shared:
            cells.append(Text(status.upper(), style=_STATUS_STYLES.get(status, "")))
        said = message if attempts_width or attempts < 2 else f"({attempts} attempts) {message}"
        cells += [Text(shorten(name, name_width)), Text(said)]
        if attempts_width:
            cells.append(Text(str(attempts) if attempts > 1 else ""))
        if type_width:
            cells.append(Text(error_type))
        table.add_row(*cells)
    console.print(table)
