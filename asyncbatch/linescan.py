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
from typing import Literal, TypeAlias

from asyncbatch.errors import NotARegularFile

ScanOutcome: TypeAlias = (
    tuple[Literal["ok"], int, int]
    | tuple[Literal["line_too_long"]]
    | tuple[Literal["not_regular"], str]
)
"""What :func:`scan_file` found: ``("ok", matches, matching_lines)``,
``("line_too_long",)`` or ``("not_regular", kind)``."""

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


def open_regular(path: str, flags: int = os.O_RDONLY) -> int:
    """Open ``path`` without ever blocking, and return the descriptor of a regular file.

    Raises ``NotARegularFile`` (after closing it) for anything else. Also usable as
    the ``opener`` of ``open()``."""
    fd = os.open(path, flags | OPEN_FLAGS)
    try:
        kind = file_kind(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if kind is not None:
        os.close(fd)
        raise NotARegularFile(path=path, kind=kind)
    return fd


def scan_file(
    path: str, pattern: str, flags: int, chunk_size: int, max_line_bytes: int
) -> ScanOutcome:
    """Count ``pattern``'s matches (non-overlapping, each within one line) and the
    lines with a match, reading ``chunk_size`` bytes at a time.

    ``flags`` are ``re`` flags (``re.IGNORECASE``); ``re.MULTILINE`` is always added,
    so ``^`` and ``$`` anchor at each line. A line longer than ``max_line_bytes``
    (without its ``\\n``) stops the scan: memory stays bounded."""
    try:
        fd = open_regular(path)
    except NotARegularFile as exc:
        return ("not_regular", exc.kind)
    try:
        regex = re.compile(pattern, flags | re.MULTILINE)
        per_line = any(construct in pattern for construct in _LINE_UNSAFE)
        counted = _scan(fd, regex, per_line, chunk_size, max_line_bytes)
    finally:
        os.close(fd)
    if counted is None:
        return ("line_too_long",)
    return ("ok", *counted)


def scan_file_in_worker(
    path: str, pattern: str, flags: int, chunk_size: int, max_line_bytes: int
) -> ScanOutcome:
    """:func:`scan_file`, in a worker process made to take orders from its parent only."""
    _become_worker()
    return scan_file(path, pattern, flags, chunk_size, max_line_bytes)


@functools.cache
def _become_worker() -> None:
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
    fd: int, regex: re.Pattern[str], per_line: bool, chunk_size: int, limit: int
) -> tuple[int, int] | None:
    """Matches and matching lines in the file open at ``fd``; None if a line is
    longer than ``limit`` bytes."""
    matches = matching_lines = 0
    # The current partial line, in pieces, so a long line is joined once, not per chunk.
    pending: list[bytes | memoryview] = []
    pending_size = 0
    while chunk := os.read(fd, chunk_size):
        last = chunk.rfind(b"\n")
        if last < 0:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size > limit:
                return None
            continue
        if _has_long_line(chunk, pending_size, chunk.find(b"\n"), last, limit):
            return None
        # Cut at a newline: never inside a UTF-8 sequence, so decoding is exact.
        pending.append(memoryview(chunk)[:last])
        found, lines = _count_in_block(regex, _decode(pending), per_line)
        matches += found
        matching_lines += lines
        pending = [chunk[last + 1 :]] if last + 1 < len(chunk) else []
        pending_size = len(chunk) - last - 1
    if pending:
        found, lines = _count_in_block(regex, _decode(pending), per_line)
        matches += found
        matching_lines += lines
    return matches, matching_lines


@functools.lru_cache(maxsize=8)
def _line_longer_than(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb"[^\n]{%d}" % (limit + 1))


def _has_long_line(chunk: bytes, pending: int, first: int, last: int, limit: int) -> bool:
    """Whether a line ending in ``chunk`` (the first one continuing ``pending`` bytes
    from earlier chunks) or the partial line after ``chunk[last]`` is longer than
    ``limit``.

    Lines between the first and last newline are shorter than the chunk; they are
    only scanned when the limit is too (in tests), so the outcome never depends on
    the chunk size."""
    return bool(
        pending + first > limit
        or len(chunk) - last - 1 > limit
        or (last - first - 1 > limit and _line_longer_than(limit).search(chunk, first, last))
    )


def _count_across_lines(regex: re.Pattern[str], text: str) -> tuple[int, int] | None:
    """Matches and matching lines in a block of lines, searched in one pass.

    None when a match spans a newline: then per-line matching may differ."""
    matches = matching_lines = 0
    line = pos = 0
    last_matched_line = -1
    for match in regex.finditer(text):
        start, end = match.span()
        if text.find("\n", start, end) >= 0:
            return None
        line += text.count("\n", pos, start)
        pos = start
        if line != last_matched_line:
            matching_lines += 1
            last_matched_line = line
        matches += 1
    return matches, matching_lines


def _count_line_by_line(regex: re.Pattern[str], text: str) -> tuple[int, int]:
    """Matches and matching lines, each line searched on its own (the reference)."""
    matches = matching_lines = 0
    for line in text.split("\n"):
        found = len(regex.findall(line))
        if found:
            matches += found
            matching_lines += 1
    return matches, matching_lines


def _count_in_block(regex: re.Pattern[str], text: str, per_line: bool) -> tuple[int, int]:
    """Matches and matching lines in ``text``, complete lines joined by ``\\n``."""
    if not per_line:
        counted = _count_across_lines(regex, text)
        if counted is not None:
            return counted
    return _count_line_by_line(regex, text)


def _decode(pieces: list[bytes | memoryview]) -> str:
    return b"".join(pieces).decode("utf-8", "replace")
