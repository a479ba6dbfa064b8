"""An asyncbatch plugin with one action, ``top_words``: the most frequent words of a
text file, counted case-insensitively while the file streams by in chunks.

The action is registered twice over, and both are needed: ``@asyncbatch.action``
attaches the params model (so configs are checked at load time and ``asyncbatch
actions`` shows the params), and the entry point in pyproject.toml lets asyncbatch
find this module at all without anyone importing it.
"""

from __future__ import annotations

import codecs
import heapq
import re
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

import asyncbatch
from asyncbatch.errors import NotARegularFile

__all__ = ["TopWordsParams", "top_words"]

CHUNK_SIZE = 64 * 1024
"""Bytes read at a time: memory stays flat whatever the file's size."""

MAX_WORD_LENGTH = 1000
"""A longer run of letters (base64, minified data) is not a word and is not counted;
it is never held in memory whole either."""

_APOSTROPHES = ("'", "\N{RIGHT SINGLE QUOTATION MARK}")
_LETTERS = r"[^\W\d_]+"  # Unicode letters: word characters but digits and "_"
WORD = re.compile(rf"{_LETTERS}(?:[{''.join(_APOSTROPHES)}]{_LETTERS})*")
"""A word: letters, with apostrophes (straight or typographic) inside: ``don't``."""


class TopWordsParams(BaseModel):
    """Params of ``top_words``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    n: int = Field(default=10, ge=1, description="How many words to report, most frequent first.")
    min_length: int = Field(
        default=1, ge=1, description="Ignore words shorter than this many characters."
    )


@asyncbatch.action("top_words", params=TopWordsParams)
async def top_words(path: Path, params: TopWordsParams) -> dict[str, Any]:
    """The n most frequent words (case-insensitive), with their counts."""
    mode = (await anyio.Path(path).stat()).st_mode
    if not stat.S_ISREG(mode):  # opening a FIFO would block: check before opening
        kind = "directory" if stat.S_ISDIR(mode) else "special file"
        raise NotARegularFile(path=str(path), kind=kind)
    counter = _WordCounter(params.min_length)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    async with await anyio.open_file(path, "rb") as file:
        while chunk := await file.read(CHUNK_SIZE):
            counter.feed(decoder.decode(chunk))
    counter.feed(decoder.decode(b"", final=True), final=True)
    counts = counter.counts
    # most frequent first; equally frequent words in alphabetical order
    top = heapq.nsmallest(params.n, counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "words": counts.total(),
        "distinct": len(counts),
        "top": [{"word": word, "count": count} for word, count in top],
    }


class _WordCounter:
    """Counts words across chunks: a word cut by a chunk's end is held back and
    completed by the next chunk, so counts do not depend on where chunks end."""

    def __init__(self, min_length: int) -> None:
        self.counts: Counter[str] = Counter()
        self._min_length = min_length
        self._carry = ""  # the start of a word the next chunk may continue
        self._too_long = False  # the carry ends a word already over MAX_WORD_LENGTH

    def feed(self, text: str, *, final: bool = False) -> None:
        text = self._carry + text
        matches = list(WORD.finditer(text))
        held = None
        if matches and not final and text[matches[-1].end() :] in ("", *_APOSTROPHES):
            held = matches.pop()  # "...wor" or "...don'": the next chunk may go on
        too_long, self._too_long = self._too_long, False
        for match in matches:
            if too_long and match.start() == 0:
                too_long = False  # the end of an over-long word carried over
                continue
            word = match.group()
            if self._min_length <= len(word) <= MAX_WORD_LENGTH:
                self.counts[word.casefold()] += 1
        self._carry = "" if held is None else text[held.start() :]
        if held is not None and (len(self._carry) > MAX_WORD_LENGTH or too_long):
            # Keep only its last letter (and apostrophe): enough to recognise its
            # continuation at the start of the next chunk, which is then dropped.
            self._carry = self._carry[-2:] if self._carry[-1] in _APOSTROPHES else self._carry[-1]
            self._too_long = True
