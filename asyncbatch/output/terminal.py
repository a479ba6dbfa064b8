"""Text for people on standard error: job lines (``-v``), the end-of-run summary
and its table of problems, every field made inert first (:func:`sanitize`).

Text from jobs (names, error messages: file names can hold any byte but ``/``) goes
through :func:`sanitize` before it reaches a terminal: an ESC in a file name is
shown as ``\\x1b``, never obeyed.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from asyncbatch.output.report import JobResult, Report

NAME_WIDTH = 40
"""End-of-run table: names are aligned up to this width; longer ones overflow
(plain text) or are cut (terminal)."""
_INDENT = 2

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
    """The ``-v`` line of a finished job: status, name, time, result or error."""
    took = "" if result.duration_ms is None else f" in {result.duration_ms:.1f} ms"
    detail = (
        json.dumps(result.result)
        if result.error is None
        else f"{result.error['type']}: {result.error['message']}"
    )
    return f"{result.status:<9} {result.name}{took}: {detail}"


def print_end_of_run(report: Report, *, quiet: bool, stream: TextIO) -> None:
    """Counts and wall time, why the run halted, then the jobs that failed or were
    skipped (the first failure first); cancelled jobs are counted, not listed."""
    if quiet and report.ok:
        return
    summary = report.summary
    write_line(
        stream,
        f"{summary.succeeded} succeeded, {summary.failed} failed, {summary.skipped} skipped, "
        f"{summary.cancelled} cancelled in {report.duration_ms / 1000:.2f} s",
    )
    if report.halted:
        write_line(stream, f"stopped: {report.halted}")
    listed = [job for job in report.jobs if job.status in ("failed", "skipped")]
    listed.sort(key=lambda job: job.name != report.first_failure)
    rows = [(job.status, job.name, *_error_of(job)) for job in listed]
    print_problems(rows, stream=stream, terminal=_isatty(stream))
    cancelled = [job.name for job in report.jobs if job.status == "cancelled"]
    if cancelled:
        shown = ", ".join(cancelled[:5]) + (", ..." if len(cancelled) > 5 else "")
        write_line(stream, f"  CANCELLED {len(cancelled)} job(s): {shown}")


def _error_of(job: JobResult) -> tuple[str, str]:
    error = job.error or {"type": "?", "message": ""}
    return error["type"], error["message"]


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False


# --- the end-of-run table -----------------------------------------------------------------


def print_problems(
    rows: Sequence[tuple[str, str, str, str]], *, stream: TextIO, terminal: bool
) -> None:
    """The jobs that did not succeed, one per row: (status, name, error type,
    message), in the order given. On a terminal a rich table, cut to its width;
    elsewhere plain aligned lines (``  FAILED    name:  Type: message``), whole.
    Every field is sanitized."""
    clean = [tuple(sanitize(field) for field in row) for row in rows]
    if not clean:
        return
    if terminal:
        _print_problem_table(clean, stream)
        return
    width = min(NAME_WIDTH, max(len(row[1]) for row in clean)) + 1
    for status, name, error_type, message in clean:
        stream.write(f"  {status.upper():<9} {name + ':':<{width}} {error_type}: {message}\n")


_STATUS_STYLES = {"failed": "bold red", "skipped": "yellow", "cancelled": "red"}


def _print_problem_table(rows: Sequence[tuple[str, ...]], stream: TextIO) -> None:
    """Fixed column widths that add up to the terminal's width: status and error
    type whole, the name up to :data:`NAME_WIDTH`, the message takes what is left;
    anything longer is cut with an ellipsis."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=stream, highlight=False)
    status_width = max(len("status"), *(len(row[0]) for row in rows))
    type_width = min(24, max(len("error"), *(cell_len(row[2]) for row in rows)))
    longest_name = max(cell_len(row[1]) for row in rows)
    longest_message = max(len("message"), *(cell_len(row[3]) for row in rows))
    # The line: indent, then four columns with a space after each but the last.
    room = max(16, console.width - _INDENT - status_width - type_width - 3)
    name_width = max(4, min(longest_name, max(room - longest_message, room * 2 // 5)))
    message_width = max(4, min(longest_message, room - name_width))
    table = Table(box=None, header_style="bold", padding=(0, 1, 0, 0), pad_edge=False)
    table.add_column("", width=_INDENT - 1)
    table.add_column("status", no_wrap=True, width=status_width)
    table.add_column("job", no_wrap=True, overflow="ellipsis", width=name_width)
    table.add_column("error", no_wrap=True, overflow="ellipsis", width=type_width)
    table.add_column("message", no_wrap=True, overflow="ellipsis", width=message_width)
    for status, name, error_type, message in rows:
        table.add_row(
            "",
            Text(status.upper(), style=_STATUS_STYLES.get(status, "")),
            Text(name),
            Text(error_type),
            Text(message),
        )
    console.print(table)
