"""What a person watching standard error sees: live progress during a run and the
table of problems at its end. Standard output is never touched here.

Live progress (``--progress``) is a rich ``Live`` display on stderr, redrawn in place
by rich's own thread :data:`REFRESH_PER_SECOND` times a second, however fast jobs
end. The runner's per-job callback only bumps counters on a :class:`ProgressState`
(no rendering, no lock; about 0.1 µs a job), and a redraw costs about 0.5 ms, so the
display adds about 1% to a run. rich is imported only when the display starts
(or a failure table is drawn on a terminal), so ``--version`` and runs on a pipe
never load it.

Text from jobs (names, error messages: file names can hold any byte but ``/``) goes
through :func:`sanitize` before it reaches a terminal: an ESC in a file name is shown
as ``\\x1b``, never obeyed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

    from asyncbatch.report import JobResult

REFRESH_PER_SECOND = 8
"""Redraws per second of the live display, whatever the rate at which jobs end."""

BAR_WIDTH = 30
"""Columns of the live display's bar; the counts follow it, cut to the terminal."""
MIN_BAR_WIDTH = 8
"""Narrower than this, the bar is left out to keep room for the counts."""

NAME_WIDTH = 40
"""End-of-run table: names are aligned up to this width; longer ones overflow
(plain text) or are cut (terminal)."""
_INDENT = 2

_FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})

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


# --- when progress shows -----------------------------------------------------------------


def running_under_ci(environ: Mapping[str, str]) -> bool:
    """True when ``CI`` is set to anything but an empty or false-like value
    (``0``, ``false``, ``no``, ``off``): GitHub Actions, GitLab CI, CircleCI, Travis,
    Buildkite, Bitbucket, Drone and AppVeyor all set it (``true`` or ``1``)."""
    return environ.get("CI", "").strip().lower() not in _FALSE_VALUES


def progress_wanted(
    option: bool | None, *, quiet: bool, stream: TextIO, environ: Mapping[str, str]
) -> bool:
    """Whether to show live progress on ``stream``.

    ``--quiet`` wins over everything (its promise is a silent stderr); then an
    explicit ``--progress``/``--no-progress``; otherwise progress shows when
    ``stream`` is a terminal (not ``TERM=dumb``) and not under CI."""
    if quiet:
        return False
    if option is not None:
        return option
    if environ.get("TERM") == "dumb" or running_under_ci(environ):
        return False
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False


# --- what progress counts -----------------------------------------------------------------


class _JobLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def depends_on(self) -> Sequence[str]: ...


class ProgressState:
    """Counters the live display reads; the runner's callbacks write them.

    Without a "job started" event from the runner, the number of running jobs is
    not known exactly; :attr:`running` is then an upper bound: unfinished jobs whose
    dependencies have all succeeded, capped by ``limit`` (``-j``). It is exact for
    plain batches; a job waiting for a retry or for a named limit's slot counts as
    running. Once :meth:`job_started` is called, :attr:`running` is exact and
    :attr:`running_is_exact` says so.
    """

    def __init__(
        self,
        jobs: Iterable[_JobLike],
        *,
        limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.total = 0
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.cancelled = 0
        self.reused = 0
        self.running_is_exact = False
        self._clock = clock
        self._started_names: set[str] = set()
        # Only jobs with dependencies take room here: a flat batch of 100,000 jobs
        # costs two empty dicts.
        self._waiting: dict[str, int] = {}
        self._dependents: dict[str, list[str]] = {}
        self._startable = 0
        for job in jobs:
            self.total += 1
            if job.depends_on:
                self._waiting[job.name] = len(job.depends_on)
                for dependency in job.depends_on:
                    self._dependents.setdefault(dependency, []).append(job.name)
            else:
                self._startable += 1
        self._graph = bool(self._waiting)
        self.started_at = clock()

    def job_started(self, name: str) -> None:
        """A job's first attempt began (for a runner that reports starts)."""
        self.running_is_exact = True
        self._started_names.add(name)

    def job_done(self, result: JobResult) -> None:
        """A job ended; the runner's ``on_job_done`` callback. A success in a
        batch without dependencies costs two attribute reads and an increment."""
        self.done += 1
        status = result.status
        if status != "succeeded":
            if status == "failed":
                self.failed += 1
            elif status == "skipped":
                self.skipped += 1
            elif status == "cancelled":
                self.cancelled += 1
        if result.reused:
            self.reused += 1
        if self._graph or self.running_is_exact:
            self._release(result.name, status)

    def _release(self, name: str, status: str) -> None:
        """Bookkeeping for :attr:`running`: the job is no longer startable, and its
        dependents may now be."""
        self._started_names.discard(name)
        if self._waiting.pop(name, None) is None:
            self._startable -= 1
        dependents = self._dependents.get(name)
        if dependents and status == "succeeded":
            for dependent in dependents:
                left = self._waiting.get(dependent)
                if left == 1:
                    del self._waiting[dependent]
                    self._startable += 1
                elif left is not None:
                    self._waiting[dependent] = left - 1

    @property
    def running(self) -> int:
        """Jobs running now: exact once starts are reported, else an upper bound."""
        if self.running_is_exact:
            return len(self._started_names)
        startable = self._startable if self._graph else self.total - self.done
        return max(0, min(self.limit, startable))

    def elapsed(self) -> float:
        """Seconds since the state was made (the run's start)."""
        return max(0.0, self._clock() - self.started_at)

    def eta(self) -> float | None:
        """Seconds left at the average pace so far, None before the first job that
        did work ends. Results reused by ``--resume`` arrive at once and are left
        out of the pace, or they would promise an end far too soon."""
        remaining = self.total - self.done
        if remaining <= 0:
            return 0.0
        worked = self.done - self.reused
        if worked <= 0:
            return None
        return self.elapsed() / worked * remaining


def format_seconds(seconds: float | None) -> str:
    """``M:SS`` under an hour, else ``H:MM:SS``; ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def describe(state: ProgressState, *, ascii_only: bool = False) -> list[tuple[str, str]]:
    """The status line as (text, rich style) parts: done/total, running (``≤N``
    while it is an upper bound), failed, skipped and cancelled (when any), elapsed
    and ETA."""
    bound = "" if state.running_is_exact else ("<=" if ascii_only else "\u2264")
    parts = [
        (f"{state.done:,}/{state.total:,} done", ""),
        (f"{bound}{state.running} running", ""),
        (f"{state.failed:,} failed", "red" if state.failed else ""),
    ]
    if state.skipped:
        parts.append((f"{state.skipped:,} skipped", "yellow"))
    if state.cancelled:
        parts.append((f"{state.cancelled:,} cancelled", "red"))
    parts.append((f"{format_seconds(state.elapsed())} elapsed", ""))
    parts.append((f"ETA {format_seconds(state.eta())}", ""))
    return parts


# --- the live display ----------------------------------------------------------------------


@contextmanager
def live_progress(state: ProgressState) -> Iterator[ProgressState]:
    """Show ``state`` on stderr, redrawn in place, until the block ends; the
    display is then erased, leaving the end-of-run summary alone on screen.

    While it shows, writes to ``sys.stderr`` (``-v`` lines, warnings) print above
    it. The cursor stays visible: a second Ctrl-C exits at once, with no chance to
    show a hidden cursor again."""
    from rich.console import Console
    from rich.live import Live

    # Forced: the caller decided (a terminal, or --progress on a pipe).
    console = Console(stderr=True, force_terminal=True, highlight=False)
    live = Live(
        _ProgressLine(state),
        console=console,
        refresh_per_second=REFRESH_PER_SECOND,
        transient=True,
        redirect_stdout=False,  # stdout is JSON only, and never ours
        redirect_stderr=True,
    )
    live.start(refresh=True)
    console.show_cursor(True)
    try:
        yield state
    finally:
        live.stop()


class _ProgressLine:
    """The live display: a bar, then the counts. On a narrow terminal the bar
    shrinks, down to nothing, before the counts are cut at the edge; it keeps
    room for the counts to grow, so it does not jitter as they do."""

    def __init__(self, state: ProgressState) -> None:
        self.state = state
        self._bar_width = (0, BAR_WIDTH)  # (terminal width, bar width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        state = self.state
        parts = describe(state, ascii_only=options.ascii_only)
        text = Text(", ").join(Text(part, style=style) for part, style in parts)
        growth = len(f"{state.total:,}") - len(f"{state.done:,}") + 2
        bar_width = min(BAR_WIDTH, options.max_width - text.cell_len - 1 - growth)
        if self._bar_width[0] == options.max_width:
            bar_width = min(bar_width, self._bar_width[1])
        self._bar_width = (options.max_width, bar_width)
        grid = Table.grid(padding=(0, 1, 0, 0))
        cells: list[RenderableType] = []
        if bar_width >= MIN_BAR_WIDTH:
            grid.add_column(width=bar_width, no_wrap=True)
            total = max(state.total, 1)
            cells.append(ProgressBar(total=total, completed=state.done, width=bar_width))
        grid.add_column(no_wrap=True, overflow="ellipsis")
        cells.append(text)
        grid.add_row(*cells)
        yield grid


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
