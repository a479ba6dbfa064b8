"""The counting logic of count_lines, count_words, checksum and file_size, written
once as scanners fed a file's bytes in order (:class:`asyncbatch.registry.Scanner`).

Counts are exact however the bytes are cut: a line, a word or a multi-byte
character straddling two chunks counts once. Text is UTF-8; invalid bytes count as
U+FFFD, never an error. Standard library only (worker processes import it), but
for numpy on big pieces when it is installed (:mod:`asyncbatch.actions._vector`).
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Mapping
from typing import Any

from asyncbatch.actions import _vector as vector
from asyncbatch.kernel import Tuning

_NEWLINE = ord("\n")


class LineCount:
    """``{"lines": N}``: each ``\\n`` ends one, plus a final unterminated line."""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._newlines = 0
        self._last = _NEWLINE  # an empty file has no unterminated last line
        self._accelerate = tuning.accelerate

    def update(self, data: bytes | bytearray) -> None:
        if not data:
            return
        np = vector.usable(len(data)) if self._accelerate else None
        if np is not None:
            self._newlines += vector.count_newlines(np, data)
        else:
            self._newlines += data.count(b"\n")
        self._last = data[-1]

    def result(self) -> dict[str, Any]:
        return {"lines": self._newlines + int(self._last != _NEWLINE)}


_ASCII_SPACE = bytes(0x20 if chr(byte).isspace() else 0x78 for byte in range(128)) + bytes(
    0x78 for _ in range(128)
)
"""Maps each ASCII whitespace byte (as ``str.isspace`` sees it: ``\\x1c``-``\\x1f``
too) to a space and every other byte to ``x``."""


class WordCount:
    """``{"words": N}``: ``str.split()``'s count of the UTF-8 text.

    With no multi-byte sequence pending in the decoder, a big piece that holds no
    non-ASCII whitespace is counted by numpy (:func:`vector.count_word_starts`), and
    a piece that is pure ASCII is counted without decoding: mapped to spaces and
    ``x`` (C speed), a word starts at each ``" x"``. Anything else is decoded
    incrementally and split."""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._words = 0
        self._in_word = False
        self._accelerate = tuning.accelerate

    def update(self, data: bytes | bytearray) -> None:
        if not self._decoder.getstate()[0]:
            np = vector.usable(len(data)) if self._accelerate else None
            counted = None if np is None else vector.count_word_starts(np, data, self._in_word)
            if counted is not None:
                words, self._in_word = counted
                self._words += words
                return
            if data.isascii():
                self._add_ascii(data)
                return
        self._add_text(self._decoder.decode(data))

    def result(self) -> dict[str, Any]:
        self._add_text(self._decoder.decode(b"", final=True))
        return {"words": self._words}

    def _add_ascii(self, data: bytes | bytearray) -> None:
        if not data:
            return
        mapped = data.translate(_ASCII_SPACE)
        self._words += mapped.count(b" x") + int(mapped[0] != 0x20 and not self._in_word)
        self._in_word = mapped[-1] != 0x20

    def _add_text(self, text: str) -> None:
        """Words in ``text`` not already counted: one that began in the previous
        piece and goes on at the start of this one was counted there."""
        if not text:
            return
        words = len(text.split())
        if self._in_word and not text[0].isspace():
            words -= 1
        self._words += words
        self._in_word = not text[-1].isspace()


class Checksum:
    """``{"algorithm", "digest"}``: hashlib's hex digest; it releases the GIL on
    big chunks, so several files hash on several cores."""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._algorithm: str = params.get("algorithm", "sha256")
        self._digest = hashlib.new(self._algorithm)

    def update(self, data: bytes | bytearray) -> None:
        self._digest.update(data)

    def result(self) -> dict[str, Any]:
        return {"algorithm": self._algorithm, "digest": self._digest.hexdigest()}


class FileSize:
    """``{"bytes": N}`` from the size ``stat`` gave: nothing is read."""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._size = size

    def update(self, data: bytes | bytearray) -> None:
        raise AssertionError("file_size reads nothing")

    def result(self) -> dict[str, Any]:
        return {"bytes": self._size}
