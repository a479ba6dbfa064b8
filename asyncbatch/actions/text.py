"""Actions over a file's text: lines, words and regex matches, streamed in chunks.

Counts are exact whatever the chunk size: a line, a word, a multi-byte character
or a match straddling two chunks counts once. Text is UTF-8; invalid bytes become
U+FFFD, never an error. ``search_pattern`` scans in a worker process
(:mod:`asyncbatch.linescan`), so a timeout can stop even a catastrophic regex.
"""

from __future__ import annotations

import codecs
import re
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio.to_process
from pydantic import BaseModel, ConfigDict, Field, field_validator

from asyncbatch import linescan
from asyncbatch.actions import _io, fastpath
from asyncbatch.actions.files import NoParams
from asyncbatch.errors import LineTooLong, NotARegularFile, OutsideRoot
from asyncbatch.registry import action

MAX_LINE_BYTES = 32 << 20
"""Longest line (in bytes, without its ``\\n``) ``search_pattern`` will hold in memory.
Read at call time, so tests can shrink it."""


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
@fastpath.batchable("count_lines")
async def count_lines(path: Path, params: NoParams) -> dict[str, Any]:
    """Count lines: each \\n ends one, and a final unterminated line counts too."""
    if fastpath.ENABLED:
        return await fastpath.run_action("count_lines", path, params)
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
@fastpath.batchable("count_words")
async def count_words(path: Path, params: NoParams) -> dict[str, Any]:
    """Count whitespace-separated words, exactly as str.split() does on the text."""
    if fastpath.ENABLED:
        return await fastpath.run_action("count_words", path, params)
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


@action("search_pattern", params=SearchPatternParams)
async def search_pattern(path: Path, params: SearchPatternParams) -> dict[str, Any]:
    """Count regex matches (non-overlapping, each within one line) and matching lines."""
    await _io.stat_regular(path)  # in this process: nothing non-regular is ever opened
    root = _io.ROOT.get()  # passed to the worker, which checks what it opens
    limit = MAX_LINE_BYTES
    # In a worker process, killed if the job is cancelled or times out: ``re`` holds
    # the GIL, so a catastrophic pattern would freeze a thread and the event loop.
    outcome = await anyio.to_process.run_sync(
        linescan.scan_file_in_worker,
        str(path),
        params.pattern,
        re.IGNORECASE if params.ignore_case else 0,
        _io.CHUNK_SIZE,
        limit,
        fastpath.ENABLED,
        root,
        cancellable=True,
    )
    match outcome:
        case ("ok", matches, matching_lines):
            return {"matches": matches, "matching_lines": matching_lines}
        case ("line_too_long",):
            raise LineTooLong(path=str(path), limit=limit)
        case ("not_regular", kind):
            raise NotARegularFile(path=str(path), kind=kind)
        case ("outside_root",):
            raise OutsideRoot(path=str(path), root=root or "")
