"""The synchronous core of ``search_pattern``: count a regex's matches line by line
in a file read in chunks, plus the never-blocking open every built-in uses.

``search_pattern`` runs :func:`scan_file_in_worker` in a worker process
(``anyio.to_process``) that is killed when the job times out or is cancelled: ``re``
holds the GIL, so a catastrophic pattern in a thread would freeze the event loop and
no timeout could fire. This module therefore imports only the standard library and
:mod:`asyncbatch.errors` (not pydantic, aiofiles or anyio), and it returns outcomes as
plain tagged tuples: our ``JobError`` subclasses take keyword-only arguments and
cannot be unpickled, so the parent raises them itself. ``OSError`` pickles intact
(errno, message and file name) and is simply raised.

Counts are exact whatever the chunk size: a line, a multi-byte character or a match
straddling two chunks counts once. Text is UTF-8; invalid bytes become U+FFFD.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import stat
import sys
from typing import AnyStr, Literal, TypeAlias

from asyncbatch import regexplan
from asyncbatch.confine import check_fd
from asyncbatch.errors import NotARegularFile, OutsideRoot

ScanOutcome: TypeAlias = (
    tuple[Literal["ok"], int, int]
    | tuple[Literal["line_too_long"]]
    | tuple[Literal["not_regular"], str]
    | tuple[Literal["outside_root"]]
)
"""What :func:`scan_file` found: ``("ok", matches, matching_lines)``,
``("line_too_long",)``, ``("not_regular", kind)`` or ``("outside_root",)``."""

OPEN_FLAGS = os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
"""Added to every open: if the path was swapped for a FIFO or a terminal after the
caller's ``stat``, the open returns at once instead of blocking (or acquiring a
controlling terminal), and the ``fstat`` check then refuses it."""

_LINE_UNSAFE = ("(?=", "(?!", "(?<=", "(?<!", "\\A", "\\Z")
"""Pattern constructs that see past a line's ends (or anchor at the string's), so
their matches in a block of lines may differ from those in each line alone."""


def file_kind(mode: int) -> str | None:
    """What a non-regular file is, in the words of the error message; None if regular."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def open_regular(path: str, flags: int = os.O_RDONLY, *, root: str | None = None) -> int:
    """Open ``path`` without ever blocking, and return the descriptor of a regular file.

    Raises ``NotARegularFile`` (after closing it) for anything else, and with
    ``root`` (a real path, see :mod:`asyncbatch.confine`) ``OutsideRoot`` when the
    file actually opened is outside it, symbolic links included. Also usable as the
    ``opener`` of ``open()`` (bind ``root`` with ``functools.partial``)."""
    fd = os.open(path, flags | OPEN_FLAGS)
    try:
        if root is not None:
            check_fd(fd, path, root)
        kind = file_kind(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if kind is not None:
        os.close(fd)
        raise NotARegularFile(path=path, kind=kind)
    return fd


def scan_file(
    path: str,
    pattern: str,
    flags: int,
    chunk_size: int,
    max_line_bytes: int,
    fast: bool = True,
    root: str | None = None,
) -> ScanOutcome:
    """Count ``pattern``'s matches (non-overlapping, each within one line) and the
    lines with a match, reading ``chunk_size`` bytes at a time.

    ``flags`` are ``re`` flags (``re.IGNORECASE``); ``re.MULTILINE`` is always added,
    so ``^`` and ``$`` anchor at each line. A line longer than ``max_line_bytes``
    (without its ``\\n``) stops the scan: memory stays bounded. With ``fast`` off,
    every block is decoded and searched as text: the plain path that the
    optimised one (:mod:`asyncbatch.regexplan`) is tested against. With ``root``,
    a file opened outside it is ``("outside_root",)``."""
    try:
        fd = open_regular(path, root=root)
    except NotARegularFile as exc:
        return ("not_regular", exc.kind)
    except OutsideRoot:
        return ("outside_root",)
    try:
        plan = regexplan.plan_for(pattern, flags)
        if not fast:
            plan = regexplan.Plan(plan.text_regex, None, (), ())
        per_line = any(construct in pattern for construct in _LINE_UNSAFE)
        counted = _scan(fd, plan, per_line, chunk_size, max_line_bytes)
    finally:
        os.close(fd)
    if counted is None:
        return ("line_too_long",)
    return ("ok", *counted)


def scan_file_in_worker(
    path: str,
    pattern: str,
    flags: int,
    chunk_size: int,
    max_line_bytes: int,
    fast: bool = True,
    root: str | None = None,
) -> ScanOutcome:
    """:func:`scan_file`, in a worker process made to take orders from its parent only."""
    become_worker()
    return scan_file(path, pattern, flags, chunk_size, max_line_bytes, fast, root)


@functools.cache
def become_worker() -> None:
    """Once per worker process: ignore SIGINT and SIGTERM, and die with the parent.

    Ctrl-C in a terminal (or ``timeout``'s SIGTERM) reaches the whole process group;
    the parent decides what to cancel and kills the workers it no longer needs. A
    worker must not act on its own: its KeyboardInterrupt would travel back pickled
    and be raised in the parent's job, crashing the run instead of cancelling it,
    and one killed by SIGTERM would fail its job instead. Ignoring signals must not
    make an orphan immortal (a second Ctrl-C ends the parent with ``os._exit``), so
    on Linux the kernel kills the worker when its parent dies, however abruptly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(AttributeError, OSError):  # no prctl: no safety net
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _scan(
    fd: int, plan: regexplan.Plan, per_line: bool, chunk_size: int, limit: int
) -> tuple[int, int] | None:
    """Matches and matching lines in the file open at ``fd``; None if a line is
    longer than ``limit`` bytes.

    Each chunk is read into one reused buffer and cut at its first and last
    newline: the partial line carried over from earlier chunks plus the head of this
    one is one block, the complete lines between are searched in place (never
    across a UTF-8 sequence: a newline is ASCII), the tail is carried over."""
    counter = _BlockCounter(plan, per_line)
    pending: list[bytes] = []  # the current partial line, in pieces: joined once
    pending_size = 0
    buf = bytearray(chunk_size)
    with memoryview(buf) as view:
        while size := os.readv(fd, [view]):
            first = buf.find(b"\n", 0, size)
            if first < 0:
                pending.append(bytes(view[:size]))
                pending_size += size
                if pending_size > limit:
                    return None
                continue
            last = buf.rfind(b"\n", 0, size)
            if _has_long_line(buf, size, pending_size, first, last, limit):
                return None
            pending.append(bytes(view[:first]))
            counter.add(b"".join(pending), 0, pending_size + first)
            if last > first:
                counter.add(buf, first + 1, last)
            pending = [bytes(view[last + 1 : size])] if last + 1 < size else []
            pending_size = size - last - 1
    if pending:
        counter.add(b"".join(pending), 0, pending_size)
    return counter.matches, counter.matching_lines


class _BlockCounter:
    """Totals over blocks of complete lines, with the cheapest exact method."""

    PREFILTER_DENSITY = 512
    """Give the literal prefilter up on a block with more than one candidate line
    per this many bytes: there, searching the whole block is cheaper."""

    def __init__(self, plan: regexplan.Plan, per_line: bool) -> None:
        self._plan = plan
        self._per_line = per_line
        self._prefilter = bool(plan.finders)
        self.matches = 0
        self.matching_lines = 0

    def add(self, data: bytes | bytearray, start: int, end: int) -> None:
        """Count the lines ``data[start:end]`` (``start`` is 0 or just after a newline)."""
        if self._prefilter:
            spans = _candidate_spans(self._plan, data, start, end, self.PREFILTER_DENSITY)
            if spans is not None:
                self._count_candidates(data, spans)
                return
            self._prefilter = False  # dense: not worth it for this file
        if isinstance(data, bytes):
            self._count(data[start:end])
        else:
            with memoryview(data) as view:
                self._count(bytes(view[start:end]))

    def _count_candidates(self, data: bytes | bytearray, spans: dict[int, int]) -> None:
        """Count in the candidate lines only: ``spans`` maps a line's start to the
        end of the line (each holds a literal), in order."""
        if not spans:
            return
        if self._plan.exact:  # the literals' occurrences are the matches
            self.matching_lines += len(spans)
            for literal in self._plan.literals:
                self.matches += sum(data.count(literal, s, e) for s, e in spans.items())
            return
        self._count(b"\n".join([data[s:e] for s, e in spans.items()]))

    def _count(self, block: bytes) -> None:
        plan = self._plan
        if plan.byte_regex is not None:
            found, lines = _count_in_block(plan.byte_regex, block, self._per_line)
        else:
            text = block.decode("utf-8", "replace")
            found, lines = _count_in_block(plan.text_regex, text, self._per_line)
        self.matches += found
        self.matching_lines += lines


def _candidate_spans(
    plan: regexplan.Plan, data: bytes | bytearray, start: int, end: int, density: int
) -> dict[int, int] | None:
    """``{line start: line end}`` of the lines in ``data[start:end]`` holding one of
    the plan's literals, in order; None when there are more than one per
    ``density`` bytes."""
    budget = (end - start) // density + 1
    low = max(start - 1, 0)  # data[start - 1] is a newline, or start is 0
    spans: dict[int, int] = {}
    for finder in plan.finders:
        for match in finder.finditer(data, start, end):
            found, line_end = match.span()
            spans[data.rfind(b"\n", low, found) + 1] = line_end
            if len(spans) > budget:
                return None
    if len(plan.finders) > 1:
        spans = dict(sorted(spans.items()))
    return spans


@functools.lru_cache(maxsize=8)
def _line_longer_than(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb"[^\n]{%d}" % (limit + 1))


def _has_long_line(
    chunk: bytes | bytearray, size: int, pending: int, first: int, last: int, limit: int
) -> bool:
    """Whether a line ending in ``chunk[:size]`` (the first one continuing ``pending``
    bytes from earlier chunks) or the partial line after ``chunk[last]`` is longer
    than ``limit``.

    Lines between the first and last newline are shorter than the chunk; they are
    only scanned when the limit is too (in tests), so the outcome never depends on
    the chunk size."""
    return bool(
        pending + first > limit
        or size - last - 1 > limit
        or (last - first - 1 > limit and _line_longer_than(limit).search(chunk, first, last))
    )


def _count_across_lines(regex: re.Pattern[AnyStr], text: AnyStr) -> tuple[int, int] | None:
    """Matches and matching lines in a block of lines, searched in one pass.

    None when a match spans a newline: then per-line matching may differ."""
    newline = _newline(text)
    matches = matching_lines = 0
    line = pos = 0
    last_matched_line = -1
    for match in regex.finditer(text):
        start, end = match.span()
        if text.find(newline, start, end) >= 0:
            return None
        line += text.count(newline, pos, start)
        pos = start
        if line != last_matched_line:
            matching_lines += 1
            last_matched_line = line
        matches += 1
    return matches, matching_lines


def _count_line_by_line(regex: re.Pattern[AnyStr], text: AnyStr) -> tuple[int, int]:
    """Matches and matching lines, each line searched on its own (the reference)."""
    matches = matching_lines = 0
    for line in text.split(_newline(text)):
        found = len(regex.findall(line))
        if found:
            matches += found
            matching_lines += 1
    return matches, matching_lines


def _count_in_block(regex: re.Pattern[AnyStr], text: AnyStr, per_line: bool) -> tuple[int, int]:
    """Matches and matching lines in ``text``, complete lines joined by ``\\n``."""
    if not per_line:
        counted = _count_across_lines(regex, text)
        if counted is not None:
            return counted
    return _count_line_by_line(regex, text)


def _newline(text: AnyStr) -> AnyStr:
    return "\n" if isinstance(text, str) else b"\n"
