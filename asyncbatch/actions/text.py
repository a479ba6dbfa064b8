"""Actions over a file's text: lines, words and regex matches, streamed in chunks.

Counts are exact whatever the chunk size: a line, a word, a multi-byte character
or a match straddling two chunks counts once. Text is UTF-8; invalid bytes become
U+FFFD, never an error.
"""

from __future__ import annotations

import codecs
import functools
import re
from contextlib import aclosing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from asyncbatch.actions import _io
from asyncbatch.actions.files import NoParams
from asyncbatch.errors import LineTooLong
from asyncbatch.registry import action

MAX_LINE_BYTES = 32 << 20
"""Longest line (in bytes, without its ``\\n``) ``search_pattern`` will hold in memory.
Read at call time, so tests can shrink it."""

_LINE_UNSAFE = ("(?=", "(?!", "(?<=", "(?<!", "\\A", "\\Z")
"""Pattern constructs that see past a line's ends (or anchor at the string's), so
their matches in a block of lines may differ from those in each line alone."""


def _min_width(pattern: str) -> int:
    """The fewest characters ``pattern`` can match (0: it can match the empty string)."""
    # re._parser is CPython's own regex parser; typeshed has no stub for it, and the
    # public alias sre_parse raises a DeprecationWarning.
    from re import _parser  # type: ignore[attr-defined]

    width: int = _parser.parse(pattern).getwidth()[0]
    return width


class SearchPatternParams(BaseModel):
    """Params of ``search_pattern``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pattern: str = Field(
        description="Python regular expression; ^ and $ anchor at each line's start and end."
    )
    ignore_case: bool = Field(default=False, description="Match case-insensitively.")

    @field_validator("pattern")
    @classmethod
    def _pattern_matches_text(cls, pattern: str) -> str:
        """Reject, at config load, a pattern that cannot compile or would match
        the empty string (and so "match" everywhere)."""
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        if _min_width(pattern) == 0:
            raise ValueError(
                f"pattern {pattern!r} can match the empty string, so it would match "
                "everywhere; make it match at least one character"
            )
        return pattern


@action("count_lines", params=NoParams)
async def count_lines(path: Path, params: NoParams) -> dict[str, Any]:
    """Count lines: each \\n ends one, and a final unterminated line counts too."""
    newlines = 0
    last = b"\n"  # an empty file has no unterminated last line
    async with aclosing(_io.iter_chunks(path)) as chunks:
        async for chunk in chunks:
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return {"lines": newlines + int(last != b"\n")}


def _add_words(text: str, in_word: bool) -> tuple[int, bool]:
    """Words in ``text`` not already counted, and whether it ends inside a word.

    A word that began in the previous piece (``in_word``) and goes on at the start
    of this one was counted there."""
    if not text:
        return 0, in_word
    words = len(text.split())
    if in_word and not text[0].isspace():
        words -= 1
    return words, not text[-1].isspace()


@action("count_words", params=NoParams)
async def count_words(path: Path, params: NoParams) -> dict[str, Any]:
    """Count whitespace-separated words, exactly as str.split() does on the text."""
    # Incremental, so a multi-byte character split between chunks decodes as one.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    words = 0
    in_word = False
    async with aclosing(_io.iter_chunks(path)) as chunks:
        async for chunk in chunks:
            added, in_word = _add_words(decoder.decode(chunk), in_word)
            words += added
    added, _ = _add_words(decoder.decode(b"", final=True), in_word)
    return {"words": words + added}


@functools.lru_cache(maxsize=8)
def _line_longer_than(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb"[^\n]{%d}" % (limit + 1))


def _check_line_lengths(path: Path, chunk: bytes, pending: int, first: int, last: int) -> None:
    """Raise ``LineTooLong`` if a line ending in ``chunk`` (the first one continuing
    ``pending`` bytes from earlier chunks) or the partial line after ``chunk[last]``
    is longer than ``MAX_LINE_BYTES``.

    Lines between the first and last newline are shorter than the chunk; they are
    only scanned when the limit is too (in tests), so the outcome never depends on
    the chunk size."""
    limit = MAX_LINE_BYTES
    too_long = (
        pending + first > limit
        or len(chunk) - last - 1 > limit
        or (last - first - 1 > limit and _line_longer_than(limit).search(chunk, first, last))
    )
    if too_long:
        raise LineTooLong(path=str(path), limit=limit)


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


@action("search_pattern", params=SearchPatternParams)
async def search_pattern(path: Path, params: SearchPatternParams) -> dict[str, Any]:
    """Count regex matches (non-overlapping, each within one line) and matching lines."""
    flags = re.MULTILINE | (re.IGNORECASE if params.ignore_case else 0)
    regex = re.compile(params.pattern, flags)
    per_line = any(construct in params.pattern for construct in _LINE_UNSAFE)
    matches = matching_lines = 0
    # The current partial line, in pieces, so a long line is joined once, not per chunk.
    pending: list[bytes | memoryview] = []
    pending_size = 0
    async with aclosing(_io.iter_chunks(path)) as chunks:
        async for chunk in chunks:
            last = chunk.rfind(b"\n")
            if last < 0:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size > MAX_LINE_BYTES:
                    raise LineTooLong(path=str(path), limit=MAX_LINE_BYTES)
                continue
            _check_line_lengths(path, chunk, pending_size, chunk.find(b"\n"), last)
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
    return {"matches": matches, "matching_lines": matching_lines}
