"""search_pattern's kernel: count a regex's matches, and the lines holding one, in
a file fed in chunks.

Counts are exact whatever the chunk size: a line, a multi-byte character or a match
straddling two chunks counts once. Text is UTF-8; invalid bytes become U+FFFD. The
scan cuts each chunk at its first and last newline: the partial line carried over
from earlier chunks plus the head of this one is one block, the complete lines
between are searched in place, the tail is carried over. How a block is searched
(raw bytes, a literal prefilter, decoded text) is chosen by
:mod:`asyncbatch.actions._regexplan`, always with the same counts.

``re`` holds the GIL and a catastrophic pattern may never return, so the executor
runs this kernel in a worker process that a timeout kills (``isolated``), unless
the pattern is plain literals (``is_bounded``): those are counted without ``re``'s
backtracking, so the executor may run them in this process. Standard library (and
our errors) only, but for Hyperscan: worker processes import it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, AnyStr

from asyncbatch.actions import _regexplan as regexplan
from asyncbatch.actions._prefilter import LineFinder
from asyncbatch.errors import LineTooLong
from asyncbatch.kernel import Tuning


def is_bounded(params: Mapping[str, Any]) -> bool:
    """Whether the search for these params runs in linear time: a pattern that is
    its literals is counted without a general regex (``Plan.exact``), so it needs
    no worker process to be stopped."""
    flags = re.IGNORECASE if params.get("ignore_case") else 0
    return regexplan.plan_for(params["pattern"], flags).exact


class PatternSearch:
    """``{"matches": N, "matching_lines": M}`` of ``params["pattern"]`` (with
    ``params["ignore_case"]``): non-overlapping matches, each within one line;
    ``^`` and ``$`` anchor at each line. A line longer than
    ``tuning.max_line_bytes`` raises ``LineTooLong``: memory stays bounded.

    ``optimise=False`` searches every block as decoded text with the ``str``
    pattern: the reference the optimised scan is tested against."""

    def __init__(
        self,
        path: str,
        size: int,
        params: Mapping[str, Any],
        tuning: Tuning,
        *,
        optimise: bool = True,
    ) -> None:
        pattern: str = params["pattern"]
        flags = re.IGNORECASE if params.get("ignore_case") else 0
        plan = regexplan.plan_for(pattern, flags)
        if not optimise:
            plan = regexplan.Plan(plan.text_regex, None, (), (), per_line=plan.per_line)
        self._counter = _BlockCounter(plan, plan.per_line, tuning.accelerate)
        self._path = path
        self._limit = tuning.max_line_bytes
        self._pending: list[bytes] = []  # the current partial line, in pieces: joined once
        self._pending_size = 0

    def update(self, data: bytes | bytearray) -> None:
        size = len(data)
        first = data.find(b"\n")
        if first < 0:
            self._pending.append(bytes(data))
            self._pending_size += size
            if self._pending_size > self._limit:
                raise LineTooLong(path=self._path, limit=self._limit)
            return
        last = data.rfind(b"\n")
        if _has_long_line(data, size, self._pending_size, first, last, self._limit):
            raise LineTooLong(path=self._path, limit=self._limit)
        self._pending.append(bytes(data[:first]))
        self._counter.add(b"".join(self._pending), 0, self._pending_size + first)
        if last > first:
            self._counter.add(data, first + 1, last)
        self._pending = [bytes(data[last + 1 :])] if last + 1 < size else []
        self._pending_size = size - last - 1

    def result(self) -> dict[str, Any]:
        if self._pending:
            self._counter.add(b"".join(self._pending), 0, self._pending_size)
            self._pending = []
        return {"matches": self._counter.matches, "matching_lines": self._counter.matching_lines}


class _BlockCounter:
    """Totals over blocks of complete lines, with the cheapest exact method."""

    PREFILTER_DENSITY = 512
    """Give the literal prefilter up on a block with more than one candidate line
    (or, with Hyperscan, occurrence) per this many bytes: searching the whole block
    is then cheaper, and streams its matches instead of holding them."""

    def __init__(self, plan: regexplan.Plan, per_line: bool, accelerate: bool) -> None:
        self._plan = plan
        self._per_line = per_line
        self._finder = LineFinder(plan.prefilter, accelerate) if plan.prefilter else None
        self.matches = 0
        self.matching_lines = 0

    def add(self, data: bytes | bytearray, start: int, end: int) -> None:
        """Count the lines ``data[start:end]`` (``start`` is 0 or just after a newline)."""
        finder = self._finder
        if finder is not None:
            if self._plan.exact:
                self._count_literals(finder, data, start, end)
                return
            spans = finder.spans(data, start, end, (end - start) // self.PREFILTER_DENSITY + 1)
            if spans is not None:
                if spans:
                    self._count(b"\n".join([data[s:e] for s, e in spans.items()]))
                return
            self._finder = None  # dense: not worth it for this file
        if isinstance(data, bytes):
            self._count(data[start:end])
        else:
            with memoryview(data) as view:
                self._count(bytes(view[start:end]))

    def _count_literals(
        self, finder: LineFinder, data: bytes | bytearray, start: int, end: int
    ) -> None:
        """A pattern that is its literals: their occurrences are its matches. Where
        Hyperscan scans, its reports give both counts (up to one occurrence per
        ``PREFILTER_DENSITY`` bytes, so that memory stays bounded); else
        ``bytes.count`` counts them in C, and one regex step per line finds the
        lines holding one."""
        plan = self._plan
        size = end - start
        if plan.countable and finder.counts_occurrences(size):
            counted = finder.count(data, start, end, size // self.PREFILTER_DENSITY + 1)
            if counted is not None:
                self.matching_lines += counted[0]
                self.matches += counted[1]
                return
        self.matches += sum(data.count(literal, start, end) for literal in plan.literals)
        self.matching_lines += finder.lines_holding(data, start, end)

    def _count(self, block: bytes) -> None:
        plan = self._plan
        if plan.byte_regex is not None:
            found, lines = _count_in_block(plan.byte_regex, block, self._per_line)
        else:
            text = block.decode("utf-8", "replace")
            found, lines = _count_in_block(plan.text_regex, text, self._per_line)
        self.matches += found
        self.matching_lines += lines


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
