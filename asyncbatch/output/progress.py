"""Live progress on standard error while a run goes on (``--progress``).

A rich ``Live`` display on stderr, redrawn in place by rich's own thread
:data:`REFRESH_PER_SECOND` times a second, however fast jobs end. The run's events
(:class:`ProgressListener`) only bump counters on a :class:`ProgressState` (no
rendering, no lock; about 0.1 µs a job), and a redraw costs about 0.5 ms, so the
display adds about 1% to a run. rich is imported only when the display starts, so
``--version`` and runs on a pipe never load it. Standard output is never touched.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple, Protocol

from asyncbatch.output._cells import shorten
from asyncbatch.output._eta import HistoryEta
from asyncbatch.output.terminal import error_of, job_line, sanitize

if TYPE_CHECKING:
    from asyncbatch.model import JobResult

REFRESH_PER_SECOND = 8
"""Redraws per second of the live display, whatever the rate at which jobs end."""

RATE_WINDOW = 30.0
"""Seconds of recent results the rate (and from it the ETA) is measured over."""
MIN_SPAN = 1.0
"""Seconds between the first and last result of the window for the window to set
the rate; closer together, the rate is the average since the start."""
ETA_SMOOTHING = 5.0
"""Time constant (seconds) with which the shown ETA follows new estimates."""
LONGEST_SHOWN_AFTER = 5.0
"""A running job is named as the longest once it has run this long (seconds)."""

BAR_WIDTH = 30
"""Columns of the live display's bar; the counts follow it, cut to the terminal."""
MIN_BAR_WIDTH = 12
"""Narrower than this, the bar is left out to keep room for the counts."""

# --- what progress counts -----------------------------------------------------------------


class ProgressState:
    """Counters the live display reads; the run's events write them. ``running``
    is exact: attempts that started and have not ended (a job waiting for a
    retry is not running)."""

    def __init__(self, total: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.cancelled = 0
        self.reused = 0
        self.retries = 0
        self._running: dict[str, float] = {}  # name -> when its attempt started
        self._clock = clock
        self.started_at = clock()
        self._worked: deque[tuple[float, int]] = deque()  # (when, jobs that did work)
        self.bytes_read = 0
        self._read: deque[tuple[float, int]] = deque()  # (when, bytes read by then)
        self._eta: tuple[float, float] | None = None  # (when, seconds left then)
        self._history: HistoryEta | None = None
        self.held: str | None = None
        """Why starts are held back (``--load``, ``--memfree``, ``--delay``), if they are."""

    def job_started(self, name: str) -> None:
        """An attempt of job ``name`` began."""
        self._running[name] = self._clock()

    def job_waiting(self, name: str) -> None:
        """An attempt of job ``name`` failed; it waits for its next one."""
        self._running.pop(name, None)
        self.retries += 1

    def job_done(self, result: JobResult) -> None:
        """A job has its final result."""
        self.done += 1
        if self._history is not None:
            self._history.job_done(result)
        self._running.pop(result.name, None)
        if not result.reused and result.status != "skipped":
            self._worked.append((self._clock(), self.done - self.reused - self.skipped))
        used = result.resources
        read = None if used is None or result.reused else used.read_bytes
        if read:  # measured where the input was read: a scan's bytes
            self.bytes_read += read
            self._read.append((self._clock(), self.bytes_read))
        status = result.status
        if status == "failed":
            self.failed += 1
        elif status == "skipped":
            self.skipped += 1
        elif status == "cancelled":
            self.cancelled += 1
        if result.reused:
            self.reused += 1

    @property
    def running(self) -> int:
        return len(self._running)

    def longest_running(self) -> tuple[str, float] | None:
        """The job whose attempt has run longest, and for how long (seconds)."""
        running = list(self._running.items())  # one step: the run's thread changes it
        if not running:
            return None
        name, since = min(running, key=lambda item: item[1])
        return name, max(0.0, self._clock() - since)

    def rate(self) -> float | None:
        """Jobs that did work per second: between the first and the last of them to
        end within the last :data:`RATE_WINDOW` seconds (so results that come in
        bursts give a steady rate), else since the start; None before the first."""
        total = self.done - self.reused - self.skipped
        return _windowed(self._worked, self._clock(), total, self.elapsed())

    def byte_rate(self) -> float | None:
        """Bytes read per second by the jobs that read a file (the built-ins that
        scan their input), measured as :meth:`rate` is; None when none has ended."""
        if not self._read:
            return None
        return _windowed(self._read, self._clock(), self.bytes_read, self.elapsed())

    def elapsed(self) -> float:
        """Seconds since the state was made (the run's start)."""
        return max(0.0, self._clock() - self.started_at)

    def expect(self, names: Sequence[str], durations: Mapping[str, float], slots: int) -> None:
        """From now on the ETA counts the jobs' recorded ``durations`` (see
        :class:`~asyncbatch.output._eta.HistoryEta`)."""
        self._history = HistoryEta(names, durations, slots)

    def eta(self) -> float | None:
        """Seconds left at the recent pace (:meth:`rate`), smoothed so that it counts
        down steadily instead of jumping with each burst of results: a new estimate
        moves the shown one a little, with a time constant of :data:`ETA_SMOOTHING`
        seconds. None before the first job that did work ends. Results reused by
        ``--resume`` and skipped jobs arrive at once and are left out of the pace,
        or they would promise an end far too soon. With recorded durations
        (:meth:`expect`), from them instead, from the first second."""
        remaining = self.total - self.done
        if remaining <= 0:
            return 0.0
        if self._history is not None:
            return self._history.seconds_left(self._running, self._clock())
        rate = self.rate()
        if not rate:
            return None
        now = self._clock()
        estimate = remaining / rate
        if self._eta is not None:
            when, previous = self._eta
            expected = max(0.0, previous - (now - when))  # the last one, counted down
            weight = 1 - math.exp(-(now - when) / ETA_SMOOTHING)
            estimate = expected + (estimate - expected) * weight
        self._eta = (now, estimate)
        return estimate


def _windowed(
    points: deque[tuple[float, int]], now: float, total: int, elapsed: float
) -> float | None:
    """Per second, from ``points`` (when, running total): between the first and the
    last point of the last :data:`RATE_WINDOW` seconds (a burst of points at one
    moment counts as its last) when they lie :data:`MIN_SPAN` apart or more, else
    ``total`` over ``elapsed`` (a few results a moment apart say little)."""
    while points and points[0][0] < now - RATE_WINDOW:
        points.popleft()
    if len(points) >= 2 and points[-1][0] - points[0][0] >= MIN_SPAN:
        first, before = points[0]
        for when, count in itertools.islice(points, 1, None):  # the rest of its burst
            if when > first:
                break
            before = count
        last, after = points[-1]
        return (after - before) / (last - first)
    return total / elapsed if total and elapsed > 0 else None


class ProgressListener:
    """The run's events (an ``asyncbatch.engine.RunListener``) as counts on a
    :class:`ProgressState` and, with ``lines``, a ``-v`` line per finished job
    (``lines`` prints one line for people).

    Jobs cancelled by a halt get one line between them, for the first: a halted run
    of 10,000 jobs cancels thousands at once, and the end of the run groups them."""

    def __init__(self, state: ProgressState | None, lines: Callable[[str], None] | None) -> None:
        self._state = state
        self._lines = lines
        self._cancelled = 0

    def job_started(self, job: _Named, attempt: int) -> None:
        if self._state is not None:
            self._state.job_started(job.name)

    def job_retrying(self, job: _Named, error: dict[str, str], delay: float) -> None:
        if self._state is not None:
            self._state.job_waiting(job.name)

    def starts_held(self, reason: str | None) -> None:
        if self._state is not None:
            self._state.held = reason

    def job_done(self, result: JobResult) -> None:
        if self._state is not None:
            self._state.job_done(result)
        if self._lines is None:
            return
        if result.status != "cancelled":
            self._lines(job_line(result))
            return
        self._cancelled += 1
        if self._cancelled == 1:
            _, reason = error_of(result)
            self._lines(f"cancelled the unfinished jobs: {reason} (counted at the end)")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def format_bytes(count: float) -> str:
    """``512 B``, ``12.3 KiB``, ``4.0 MiB``, ``1.2 GiB``."""
    units = ("B", "KiB", "MiB", "GiB")
    step = 0
    while count >= 1024 and step < len(units) - 1:
        count /= 1024
        step += 1
    return f"{count:,.0f} B" if step == 0 else f"{count:,.1f} {units[step]}"


def format_seconds(seconds: float | None) -> str:
    """``M:SS`` under an hour, else ``H:MM:SS``; ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Part(NamedTuple):
    """A piece of the status line: its text, its rich style, and its rank (0 first):
    on a narrow terminal the pieces of the highest ranks are left out first."""

    text: str
    style: str
    rank: int


BAR_RANK = 3
"""The rank of the bar among the status line's :class:`Part` s: after the counts of
jobs done, the ETA and the failures, before the rest."""


def status_parts(state: ProgressState) -> list[Part]:
    """The status line, in the order shown: done/total, running, failed, skipped,
    cancelled and retried (when any), the rate (jobs, and bytes read where known),
    elapsed and ETA. By rank, what a narrow terminal keeps: done/total, the ETA, the
    failures (when any), the bar, cancelled, running, the rest."""
    failed = state.failed
    parts = [
        Part(f"{state.done:,}/{state.total:,} done", "", 0),
        Part(f"{state.running} running", "", 5),
        Part(f"{failed:,} failed", "red" if failed else "", 2 if failed else 6),
    ]
    if state.skipped:
        parts.append(Part(f"{state.skipped:,} skipped", "yellow", 8))
    if state.cancelled:
        parts.append(Part(f"{state.cancelled:,} cancelled", "red", 4))
    if state.retries:
        parts.append(Part(f"{state.retries:,} retried", "yellow", 9))
    rate = state.rate()
    if rate is not None:
        text = f"{rate:,.1f} jobs/s" if rate < 100 else f"{rate:,.0f} jobs/s"
        parts.append(Part(text, "", 10))
    byte_rate = state.byte_rate()
    if byte_rate:
        parts.append(Part(f"{format_bytes(byte_rate)}/s", "", 11))
    parts.append(Part(f"{format_seconds(state.elapsed())} elapsed", "", 7))
    parts.append(Part(f"ETA {format_seconds(state.eta())}", "", 1))
    return parts


def describe(state: ProgressState) -> list[tuple[str, str]]:
    """The status line as (text, rich style) parts, in the order shown (see
    :func:`status_parts`)."""
    return [(part.text, part.style) for part in status_parts(state)]


def notes(state: ProgressState, width: int = 1 << 16) -> list[tuple[str, str]]:
    """The lines under the status line, as (text, rich style), for a terminal
    ``width`` cells wide: why starts are held back, while they are; the job running
    longest, once it has run :data:`LONGEST_SHOWN_AFTER` seconds (a stuck job shows
    itself), its name cut in the middle to fit
    (:func:`~asyncbatch.output.terminal.shorten`)."""
    found = []
    if state.held is not None:
        found.append((shorten(f"held: {state.held}", width), "yellow"))
    longest = state.longest_running()
    if longest is not None and longest[1] >= LONGEST_SHOWN_AFTER:
        name, seconds = longest
        head, tail = "running longest: ", f" {format_seconds(seconds)}"
        name = shorten(sanitize(name), width - len(head) - len(tail))
        found.append((f"{head}{name}{tail}", "yellow"))
    return found


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

    from asyncbatch.output._live import ProgressLine

    # Forced: the caller decided (a terminal, or --progress on a pipe).
    console = Console(stderr=True, force_terminal=True, highlight=False)
    live = Live(
        ProgressLine(state),
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
        with contextlib.suppress(OSError):  # a terminal that hung up (SIGHUP): EIO
            live.stop()


def fit_parts(parts: list[Part], width: int) -> tuple[list[Part], int]:
    """The parts that fit in ``width`` cells with the bar, and the bar's width (0:
    none): the parts of the highest ranks, and the bar at its rank
    (:data:`BAR_RANK`), are left out until the rest fit, the bar at least
    :data:`MIN_BAR_WIDTH` wide. The parts keep their order."""
    kept = sorted(parts, key=lambda part: part.rank)
    with_bar = True
    while True:
        length = sum(len(part.text) for part in kept) + 2 * max(0, len(kept) - 1)
        bar_room = width - length - 1
        if (with_bar and bar_room >= MIN_BAR_WIDTH) or (not with_bar and length <= width):
            break
        if len(kept) <= 1 and not with_bar:
            break
        if with_bar and (not kept or kept[-1].rank < BAR_RANK):
            with_bar = False  # the bar is the least needed of what is left
        else:
            kept.pop()
    shown = [part for part in parts if part in kept]
    return shown, min(BAR_WIDTH, bar_room) if with_bar else 0
