"""Finding the lines that hold one of a pattern's required literals, fast.

search_pattern only needs to run its regex on the lines that can match (see
:mod:`asyncbatch.actions._regexplan`): those that hold one of its required literals.
Two engines find them, with the same answer:

- Hyperscan (PyPI ``hyperscan``, SIMD, releases the GIL while it scans): all the
  literals in one pass over a big block, reporting where each occurrence ends;
- Python ``re``: one ``literal[^\\n]*`` pattern per literal, for small blocks (where
  compiling a Hyperscan database would cost more than it saves) and where Hyperscan
  is not installed.

The literals are byte patterns of our own making (escaped bytes, and for
``ignore_case`` classes of the byte sequences that fold together), so both engines
read them the same way: no translation of Python's regex syntax is involved. Both
run in linear time. Standard library only, but for Hyperscan when it is installed.
"""

from __future__ import annotations

import re
from typing import Any

from asyncbatch.actions import _optional as optional

HYPERSCAN_MIN_BYTES = 64 << 10
"""Smaller blocks use ``re``: a Hyperscan database costs ~0.1 ms to compile."""


class LineFinder:
    """The lines of a block that hold one of ``sources`` (byte patterns that never
    match a newline), one engine or the other per block."""

    def __init__(self, sources: tuple[bytes, ...], accelerate: bool) -> None:
        self._sources = sources
        self._finders = tuple(re.compile(source + rb"[^\n]*") for source in sources)
        self._any_line = re.compile(b"(?:%s)[^\n]*" % b"|".join(sources))
        self._accelerate = accelerate and bool(sources)
        self._database: Any = None

    def spans(
        self, data: bytes | bytearray, start: int, end: int, most: int
    ) -> dict[int, int] | None:
        """``{line start: line end}`` of the lines in ``data[start:end]`` (``start``
        is 0 or just after a newline) holding a literal, in order. None when more
        than ``most`` lines (or, with Hyperscan, occurrences) are found: memory
        stays bounded, and the caller searches the block as a whole."""
        database = self._database_for(end - start)
        if database is None:
            return self._spans_re(data, start, end, most)
        ends = self._ends(database, data, start, end, most)
        if ends is None:
            return None
        spans: dict[int, int] = {}
        line_end = -1
        low = max(start - 1, 0)  # data[start - 1] is a newline, or start is 0
        for offset in ends:
            at = start + offset  # just past the occurrence
            if at <= line_end:
                continue  # in the line just counted
            line_end = data.find(b"\n", at, end)
            if line_end < 0:
                line_end = end
            spans[data.rfind(b"\n", low, at) + 1] = line_end
        return spans

    def lines_holding(self, data: bytes | bytearray, start: int, end: int) -> int:
        """How many lines of ``data[start:end]`` hold a literal: one regex step per
        such line, whatever the number of occurrences in it."""
        return sum(1 for _ in self._any_line.finditer(data, start, end))

    def counts_occurrences(self, size: int) -> bool:
        """Whether a block of ``size`` bytes goes to Hyperscan, which counts every
        occurrence (``re`` takes one per line): :meth:`count` then answers."""
        return self._database_for(size) is not None

    def count(
        self, data: bytes | bytearray, start: int, end: int, most: int
    ) -> tuple[int, int] | None:
        """``(lines holding a literal, occurrences)`` in ``data[start:end]``, as
        :meth:`spans` counts them but without the spans (the cheaper question), for
        a block that :meth:`counts_occurrences`; None past ``most`` occurrences."""
        ends = self._ends(self._database_for(end - start), data, start, end, most)
        if ends is None:
            return None
        lines = 0
        line_end = -1
        for offset in ends:
            at = start + offset
            if at > line_end:
                lines += 1
                line_end = data.find(b"\n", at, end)
                if line_end < 0:
                    break  # the block's last line: no occurrence after it is in another
        return lines, len(ends)

    def _ends(
        self, database: Any, data: bytes | bytearray, start: int, end: int, most: int
    ) -> list[int] | None:
        """Where each occurrence in ``data[start:end]`` ends (relative to ``start``),
        in order; None (the scan stopped) past ``most`` of them."""
        ends: list[int] = []

        def found(_id: int, _from: int, to: int, _flags: int, _context: object) -> bool:
            ends.append(to)
            return len(ends) > most  # True stops the scan

        hyperscan: Any = optional.load("hyperscan")  # loaded: it compiled the database
        with memoryview(data) as view:
            try:
                database.scan(view[start:end], match_event_handler=found)
            except hyperscan.ScanTerminated:
                return None
        if len(self._sources) > 1:
            ends.sort()
        return ends

    def _spans_re(
        self, data: bytes | bytearray, start: int, end: int, most: int
    ) -> dict[int, int] | None:
        low = max(start - 1, 0)
        spans: dict[int, int] = {}
        for finder in self._finders:
            for match in finder.finditer(data, start, end):
                found, line_end = match.span()
                spans[data.rfind(b"\n", low, found) + 1] = line_end
                if len(spans) > most:
                    return None
        if len(self._finders) > 1:
            spans = dict(sorted(spans.items()))
        return spans

    def _database_for(self, size: int) -> Any:
        if not self._accelerate or size < HYPERSCAN_MIN_BYTES:
            return None
        if self._database is None:
            self._database = _compile(self._sources)
            if self._database is None:
                self._accelerate = False
        return self._database


def _compile(sources: tuple[bytes, ...]) -> Any:
    """A Hyperscan block-mode database of ``sources``; None without Hyperscan, or if
    it refuses them (then ``re`` does the work)."""
    hyperscan = optional.load("hyperscan")
    if hyperscan is None:
        return None
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        database.compile(
            expressions=list(sources),
            ids=list(range(len(sources))),
            elements=len(sources),
            flags=0,
        )
    except hyperscan.error:
        return None
    return database
