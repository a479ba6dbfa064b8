"""The built-in actions' work as plain synchronous functions over one open file.

:mod:`asyncbatch.fastpath` runs them in a daemon thread (a whole small file, or a
whole batch of them, per thread hop; a whole big file per hop, hashing with the GIL
released) or in a worker process (line and word counts of big files, so both cores
count). Each gives exactly what the plain path in :mod:`asyncbatch.actions` gives:
``tests/test_fastpaths.py`` holds them to it.

Big files are read into one reused buffer per call (no allocation, no page faults
per chunk); between chunks a ``stop`` flag is checked, so a job that timed out
stops its thread at the next chunk. Standard library only: workers import it.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Callable
from typing import Any, Protocol

from asyncbatch.confine import stat_confined
from asyncbatch.errors import NotARegularFile, OutsideRoot
from asyncbatch.linescan import file_kind, open_regular


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


class Stopped(Exception):
    """Raised in a thread whose caller stopped waiting (a timeout, a cancellation)."""


Kernel = Callable[[int, int, Any, StopFlag | None], dict[str, Any]]
"""``kernel(fd, chunk_size, params, stop)`` -> the action's result."""

_NEWLINE = ord("\n")


def stat_regular(path: str, root: str | None = None) -> os.stat_result:
    """``stat`` and insist on a regular file, before anything is opened for
    reading; with ``root``, on an ``O_PATH`` descriptor checked to be inside it
    (``OutsideRoot`` otherwise)."""
    result = os.stat(path) if root is None else stat_confined(path, root)
    kind = file_kind(result.st_mode)
    if kind is not None:
        raise NotARegularFile(path=path, kind=kind)
    return result


def run_on_file(
    kernel: Kernel,
    path: str,
    chunk_size: int,
    params: Any,
    stop: StopFlag | None,
    root: str | None = None,
) -> dict[str, Any]:
    """stat, open (never blocking; confined to ``root`` if given), run ``kernel``,
    close: one thread hop's work."""
    stat_regular(path, root)
    fd = open_regular(path, root=root)
    try:
        return kernel(fd, chunk_size, params, stop)
    finally:
        os.close(fd)


def _chunks(fd: int, chunk_size: int, stop: StopFlag | None) -> Any:
    """(buffer, length) pairs: the file read into one reused buffer until EOF."""
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    try:
        while length := os.readv(fd, [view]):
            yield buf, length
            if stop is not None and stop.is_set():
                raise Stopped
    finally:
        view.release()


def count_lines(fd: int, chunk_size: int, params: Any, stop: StopFlag | None) -> dict[str, Any]:
    """``{"lines": N}``: each ``\\n`` ends one, plus a final unterminated line."""
    newlines = 0
    last = _NEWLINE
    for buf, length in _chunks(fd, chunk_size, stop):
        newlines += buf.count(b"\n", 0, length)
        last = buf[length - 1]
    return {"lines": newlines + int(last != _NEWLINE)}


_ASCII_SPACE = bytes(0x20 if chr(byte).isspace() else 0x78 for byte in range(128)) + bytes(
    0x78 for _ in range(128)
)
"""Maps each ASCII whitespace byte (as ``str.isspace`` sees it: ``\\x1c``-``\\x1f``
too) to a space and every other byte to ``x``."""


class WordCounter:
    """``str.split()``'s word count of UTF-8 text fed in pieces.

    A piece that is pure ASCII, with no multi-byte sequence pending from the one
    before, is counted without decoding: mapped to spaces and ``x`` (C speed), a
    word starts at each ``" x"``. Anything else is decoded incrementally and split,
    as the plain path does."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.words = 0
        self._in_word = False

    def feed(self, data: bytes | bytearray) -> None:
        if data.isascii() and not self._decoder.getstate()[0]:
            self._feed_ascii(data)
        else:
            self._feed_text(self._decoder.decode(data))

    def _feed_ascii(self, data: bytes | bytearray) -> None:
        if not data:
            return
        mapped = data.translate(_ASCII_SPACE)
        self.words += mapped.count(b" x") + int(mapped[0] != 0x20 and not self._in_word)
        self._in_word = mapped[-1] != 0x20

    def _feed_text(self, text: str) -> None:
        if not text:
            return
        words = len(text.split())
        if self._in_word and not text[0].isspace():
            words -= 1
        self.words += words
        self._in_word = not text[-1].isspace()

    def result(self) -> int:
        self._feed_text(self._decoder.decode(b"", final=True))
        return self.words


def count_words(fd: int, chunk_size: int, params: Any, stop: StopFlag | None) -> dict[str, Any]:
    """``{"words": N}``: whitespace-separated tokens, as ``str.split()`` counts."""
    counter = WordCounter()
    for buf, length in _chunks(fd, chunk_size, stop):
        counter.feed(buf if length == len(buf) else buf[:length])
    return {"words": counter.result()}


def checksum(fd: int, chunk_size: int, params: Any, stop: StopFlag | None) -> dict[str, Any]:
    """``{"algorithm", "digest"}``; hashlib releases the GIL on each chunk."""
    algorithm: str = params.algorithm
    digest = hashlib.new(algorithm)
    for buf, length in _chunks(fd, chunk_size, stop):
        with memoryview(buf) as view:
            digest.update(view[:length])
    return {"algorithm": algorithm, "digest": digest.hexdigest()}


def read_small(fd: int, size: int, limit: int) -> bytes | None:
    """The whole of a small file (``stat`` said ``size`` bytes), in one read plus
    the read that confirms EOF, as the plain path does; None if it has grown past
    ``limit`` since (then stream it)."""
    data = os.read(fd, size + 1)
    if not data:
        return data
    pieces = [data]
    total = len(data)
    while piece := os.read(fd, max(size, 1 << 16)):
        total += len(piece)
        if total > limit:
            return None
        pieces.append(piece)
    return data if len(pieces) == 1 else b"".join(pieces)


def on_bytes(name: str, data: bytes, params: Any) -> dict[str, Any]:
    """Built-in ``name``'s result on the whole content ``data`` of a file."""
    if name == "count_lines":
        return {"lines": data.count(b"\n") + int(bool(data) and data[-1] != _NEWLINE)}
    if name == "count_words":
        counter = WordCounter()
        counter.feed(data)
        return {"words": counter.result()}
    if name == "checksum":
        algorithm: str = params.algorithm
        return {"algorithm": algorithm, "digest": hashlib.new(algorithm, data).hexdigest()}
    raise ValueError(f"no kernel for {name!r}")


def small_job(
    name: str, path: str, params: Any, limit: int, root: str | None = None
) -> dict[str, Any] | None:
    """Built-in ``name`` on the file at ``path``, whole, in this thread; None when
    the file is bigger than ``limit`` (it then takes the single-file route). With
    ``root``, a file outside it raises ``OutsideRoot``."""
    size = stat_regular(path, root).st_size
    if name == "file_size":
        return {"bytes": size}
    if size > limit:
        return None
    fd = open_regular(path, root=root)
    try:
        data = read_small(fd, size, limit)
    finally:
        os.close(fd)
    return None if data is None else on_bytes(name, data, params)


KERNELS: dict[str, Kernel] = {
    "count_lines": count_lines,
    "count_words": count_words,
    "checksum": checksum,
}


def count_in_worker(
    name: str, path: str, chunk_size: int, root: str | None = None
) -> tuple[Any, ...]:
    """``count_lines``/``count_words`` of a big file in a worker process:
    ``("ok", result)``, ``("not_regular", kind)`` or ``("outside_root",)`` (our
    errors do not unpickle)."""
    from asyncbatch.linescan import become_worker

    become_worker()
    try:
        return ("ok", run_on_file(KERNELS[name], path, chunk_size, None, None, root))
    except NotARegularFile as exc:
        return ("not_regular", exc.kind)
    except OutsideRoot:
        return ("outside_root",)
