"""numpy versions of the byte loops of count_lines and count_words: the same counts at
memory speed, with the GIL released, so that threads count on every core.

``bytes.count`` and ``bytes.translate`` hold the GIL and run at a fraction of memory
speed; numpy's comparisons and reductions do neither. numpy is optional: it is
imported on the first piece big enough to pay for it, and without it (or with
``Tuning.accelerate`` off) the kernels keep their plain loops, which count the same.

Work goes through 1 MiB slices with reused scratch arrays, so the temporaries stay in
the cache and memory stays flat whatever the piece's size.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from asyncbatch.actions import _optional as optional

MIN_BYTES = 64 << 10
"""Smaller pieces are counted by the plain loops: numpy's per-call cost would win."""

_SLICE = 1 << 20


def usable(size: int) -> ModuleType | None:
    """numpy, when a piece of ``size`` bytes is worth counting with it."""
    return optional.load("numpy") if size >= MIN_BYTES else None


def count_newlines(np: Any, data: bytes | bytearray, slice_bytes: int = _SLICE) -> int:
    """``data.count(b"\\n")``."""
    view = np.frombuffer(data, np.uint8)
    scratch = np.empty(min(slice_bytes, len(view)), np.bool_)
    total = 0
    for start in range(0, len(view), slice_bytes):
        piece = view[start : start + slice_bytes]
        found = scratch[: len(piece)]
        np.equal(piece, 10, out=found)
        total += int(np.count_nonzero(found))
    return total


def count_word_starts(
    np: Any, data: bytes | bytearray, in_word: bool, slice_bytes: int = _SLICE
) -> tuple[int, bool] | None:
    """``(words that start in data, whether data ends inside a word)`` given whether
    the byte before ``data`` was inside one.

    Whitespace is what ``str.isspace`` says of the decoded text. Every ASCII byte
    decodes to itself, and every other byte belongs to a non-ASCII character (or
    to U+FFFD): so the ASCII whitespace bytes are exactly the whitespace, unless a
    non-ASCII whitespace character is there (U+0085, U+00A0, U+1680, U+2000-U+200A,
    U+2028, U+2029, U+202F, U+205F, U+3000), whose UTF-8 starts with 0xC2, 0xE1, 0xE2
    or 0xE3. None when one of those bytes occurs: only decoding tells then."""
    view = np.frombuffer(data, np.uint8)
    size = min(slice_bytes, len(view))
    space = np.empty(size, np.bool_)
    other = np.empty(size, np.bool_)
    shifted = np.empty(size, np.uint8)
    starts = 0
    before_is_space = not in_word
    for start in range(0, len(view), slice_bytes):
        piece = view[start : start + slice_bytes]
        n = len(piece)
        if int(piece.max()) >= 0xC2 and _may_hold_unicode_space(np, piece, shifted[:n]):
            return None
        is_space, scratch = space[:n], other[:n]
        np.equal(piece, 0x20, out=is_space)
        for low, count in ((0x09, 5), (0x1C, 4)):  # \t\n\v\f\r, then \x1c-\x1f
            np.subtract(piece, np.uint8(low), out=shifted[:n])
            np.less(shifted[:n], np.uint8(count), out=scratch)
            np.logical_or(is_space, scratch, out=is_space)
        # A word starts at each non-space byte after a space byte.
        np.greater(is_space[:-1], is_space[1:], out=scratch[: n - 1])
        starts += int(np.count_nonzero(scratch[: n - 1]))
        starts += int(before_is_space and not is_space[0])
        before_is_space = bool(is_space[-1])
    return starts, not before_is_space


def _may_hold_unicode_space(np: Any, piece: Any, shifted: Any) -> bool:
    if np.any(piece == 0xC2):
        return True
    np.subtract(piece, np.uint8(0xE1), out=shifted)
    return bool(np.any(shifted < 3))
