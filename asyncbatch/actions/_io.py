"""The built-in actions' only I/O: stat a regular file, then stream it in chunks.

Nothing that is not a regular file is ever opened for reading: a FIFO with no
writer would block a worker thread forever (and keep the process from exiting),
a device may never end. Chunked reads keep memory flat and give cancellation a
checkpoint per chunk.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncGenerator
from pathlib import Path

import aiofiles
import aiofiles.os

from asyncbatch.errors import NotARegularFile

CHUNK_SIZE = 1 << 20
"""Bytes per read. Read at call time, so tests can shrink it to stress boundaries."""

_OPEN_FLAGS = os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
"""Added to every open: if the path was swapped for a FIFO or a terminal between
``stat`` and ``open``, the open returns at once instead of blocking (or acquiring a
controlling terminal), and the ``fstat`` re-check then rejects it."""


def _kind(mode: int) -> str | None:
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


def _require_regular(path: Path, mode: int) -> None:
    kind = _kind(mode)
    if kind is not None:
        raise NotARegularFile(path=str(path), kind=kind)


async def stat_regular(path: Path) -> os.stat_result:
    """``stat`` (following symlinks) and insist on a regular file.

    Raises ``NotARegularFile``; ``FileNotFoundError`` and ``PermissionError``
    propagate untouched, so the report names them as such."""
    result = await aiofiles.os.stat(path)
    _require_regular(path, result.st_mode)
    return result


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | _OPEN_FLAGS)


async def iter_chunks(path: Path) -> AsyncGenerator[bytes, None]:
    """Yield the file's bytes in chunks of at most ``CHUNK_SIZE``, until EOF.

    Checks the file is regular before opening it and again (``fstat``) after, so a
    swap between the two cannot make a read hang. Consume it under
    ``contextlib.aclosing`` so the file is closed as soon as the consumer stops."""
    await stat_regular(path)
    async with aiofiles.open(str(path), "rb", opener=_open_nonblocking) as file:
        _require_regular(path, os.fstat(file.fileno()).st_mode)
        while chunk := await file.read(CHUNK_SIZE):
            yield chunk
