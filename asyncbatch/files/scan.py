"""Opening inputs safely and running a kernel over them, synchronously.

The one code path that reads a file for a kernel, wherever it runs: a daemon thread
(a batch of small files), a worker process (a big count, a regex search), a Dask
worker. Nothing that is not a regular file is ever opened for reading: a FIFO with
no writer would block a thread for ever, a device may never end. Every open is
non-blocking and checked again on the descriptor (``fstat``), so a swap after the
``stat`` cannot make a read hang; under ``--root`` the descriptor is checked to be
inside the root (:mod:`asyncbatch.files.confine`).

Standard library (and :mod:`asyncbatch.errors`) only: worker processes import it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from asyncbatch.errors import NotARegularFile, RemoteError, describe_error
from asyncbatch.files.confine import check_fd, stat_confined
from asyncbatch.model import Resources

if TYPE_CHECKING:
    from asyncbatch.kernel import Kernel, Tuning

OPEN_FLAGS = os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
"""Added to every open: if the path was swapped for a FIFO or a terminal after the
caller's ``stat``, the open returns at once instead of blocking (or acquiring a
controlling terminal), and the ``fstat`` check then refuses it."""


Scanned: TypeAlias = tuple[dict[str, Any], Resources]
"""A kernel's result over a file, and what scanning it used: the bytes read and the
CPU time of the thread that scanned them."""


class StopFlag(Protocol):
    """Set by whoever stopped waiting for the scan (a timeout, a cancellation)."""

    def is_set(self) -> bool: ...


class Stopped(Exception):
    """Raised in a scan whose caller stopped waiting: checked between chunks."""


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


def stat_regular(path: str, root: str | None = None) -> os.stat_result:
    """``stat`` (links followed) and insist on a regular file, before anything is
    opened for reading. ``FileNotFoundError`` and ``PermissionError`` propagate
    untouched; with ``root``, the stat is of an ``O_PATH`` descriptor checked to be
    inside it (``OutsideRoot`` otherwise)."""
    result = os.stat(path) if root is None else stat_confined(path, root)
    kind = file_kind(result.st_mode)
    if kind is not None:
        raise NotARegularFile(path=path, kind=kind)
    return result


def open_regular(path: str, flags: int = os.O_RDONLY, *, root: str | None = None) -> int:
    """Open ``path`` without ever blocking, and return the descriptor of a regular file.

    Raises ``NotARegularFile`` (after closing it) for anything else, and with
    ``root`` (a real path) ``OutsideRoot`` when the file actually opened is outside
    it, symbolic links included. Also usable as the ``opener`` of ``open()`` (bind
    ``root`` with ``functools.partial``)."""
    fd = os.open(path, flags | OPEN_FLAGS)
    try:
        if root is not None:
            check_fd(fd, path, root)
        kind = file_kind(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if kind is not None:
        os.close(fd)
        raise NotARegularFile(path=path, kind=kind)
    return fd


def scan_file(
    kernel: Kernel,
    path: str,
    params: Mapping[str, Any],
    tuning: Tuning,
    root: str | None = None,
    stop: StopFlag | None = None,
) -> Scanned:
    """``kernel`` over the whole file at ``path``, streamed in ``tuning.chunk_bytes``
    chunks read into one reused buffer; ``stop`` is checked between chunks."""
    began = time.thread_time()
    size = stat_regular(path, root).st_size
    scanner = kernel.start(path, size, params, tuning)
    if not kernel.reads:
        return scanner.result(), used(began, 0)
    read = 0
    fd = open_regular(path, root=root)
    try:
        for chunk in _chunks(fd, tuning.chunk_bytes, stop):
            read += len(chunk)
            scanner.update(chunk)
    finally:
        os.close(fd)
    return scanner.result(), used(began, read)


def scan_small_file(
    kernel: Kernel, path: str, params: Mapping[str, Any], tuning: Tuning, root: str | None
) -> Scanned | int:
    """``kernel`` over the whole of a small file, read in one go; or, for a file
    bigger than ``tuning.small_file_bytes``, its size (nothing read): it is worth
    streaming instead."""
    began = time.thread_time()
    size = stat_regular(path, root).st_size
    if not kernel.reads:
        return kernel.start(path, size, params, tuning).result(), used(began, 0)
    limit = min(tuning.small_file_bytes, tuning.chunk_bytes)
    if size > limit:
        return size
    fd = open_regular(path, root=root)
    try:
        data = _read_whole(fd, size, limit)
    finally:
        os.close(fd)
    if data is None:  # it grew past the limit since the stat
        return limit + 1
    scanner = kernel.start(path, size, params, tuning)
    scanner.update(data)
    return scanner.result(), used(began, len(data))


def used(began: float, read: int) -> Resources:
    """What a scan in this thread used since ``time.thread_time()`` was ``began``."""
    return Resources(round(time.thread_time() - began, 6), None, read)  # positional: cheaper


def scan_file_in_worker(
    kernel: Kernel,
    path: str,
    params: Mapping[str, Any],
    tuning: Tuning,
    root: str | None,
    parent: int | None = None,
) -> Scanned:
    """:func:`scan_file`, in a worker process made to take orders from its parent
    only; ``parent`` is the parent's pid, as the parent passes it."""
    become_worker(parent)
    try:
        return scan_file(kernel, path, params, tuning, root)
    except Exception:
        raise
    except BaseException as exc:  # noqa: BLE001 - a SystemExit here would end the worker
        raise RemoteError(error=describe_error(exc)) from None


@functools.cache
def become_worker(parent: int | None = None) -> None:
    """Once per worker process: die with the parent, and ignore SIGINT, SIGTERM and
    SIGHUP.

    Ctrl-C in a terminal (or ``timeout``'s SIGTERM, or the SIGHUP of a terminal that
    closes) reaches the whole process group;
    the parent decides what to cancel and kills the workers it no longer needs. A
    worker must not act on its own: its KeyboardInterrupt would travel back pickled
    and be raised in the parent's job, crashing the run instead of cancelling it,
    and one killed by SIGTERM would fail its job instead. Ignoring signals must not
    make an orphan immortal (a second Ctrl-C ends the parent with ``os._exit``), so
    on Linux the kernel kills the worker when its parent dies, however abruptly. That
    request does not reach back to a parent that died before it was made: a worker
    whose ``parent`` is already gone exits at once."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(AttributeError, OSError):  # no prctl: no safety net
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    if parent is not None and os.getppid() != parent:  # orphaned before the request
        os._exit(1)


def _chunks(fd: int, chunk_size: int, stop: StopFlag | None) -> Iterator[bytes | bytearray]:
    """The file's bytes until EOF, read into one reused buffer: the buffer itself
    for a full chunk (valid until the next one), a copy for a short last one."""
    buf = bytearray(chunk_size)
    with memoryview(buf) as view:
        while length := os.readv(fd, [view]):
            yield buf if length == chunk_size else buf[:length]
            if stop is not None and stop.is_set():
                raise Stopped


def _read_whole(fd: int, size: int, limit: int) -> bytes | None:
    """The whole of a small file (``stat`` said ``size`` bytes), in one read plus
    the read that confirms EOF; None if it has grown past ``limit`` since."""
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
