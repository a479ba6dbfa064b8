"""The lock beside a report, ``REPORT.lock``: one run at a time writes a report (and
its journal). An exclusive, non-blocking ``flock``, taken before any job starts."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from asyncbatch.errors import OutputError


def lock_path(report: Path) -> Path:
    return report.with_name(report.name + ".lock")


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<report>.lock`` for one run."""

    def __init__(self, report: Path) -> None:
        self._path = lock_path(report)
        self._fd: int | None = None
        self._identity = (0, 0)

    def acquire(self) -> None:
        try:  # never through a symbolic link planted at this predictable name
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise cannot_write(self._path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                path=str(self._path.with_suffix("")),
                reason="another asyncbatch run is writing this report now",
            ) from None
        info = os.fstat(fd)
        self._fd, self._identity = fd, (info.st_dev, info.st_ino)

    def release(self) -> None:
        """Close the lock (which drops the flock), unless an action closed it already:
        then the kernel dropped the flock, and the number may belong to another file."""
        fd, self._fd = self._fd, None
        if fd is not None and still_refers_to(fd, self._identity):
            os.close(fd)


def still_refers_to(fd: int, identity: tuple[int, int]) -> bool:
    """Whether ``fd`` is still open on the file (device, inode) it was opened on."""
    try:
        info = os.fstat(fd)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == identity


def cannot_write(path: Path, exc: OSError) -> OutputError:
    """The journal or the lock cannot be opened (exit 2, before any job starts)."""
    if exc.errno == errno.ELOOP:
        return OutputError(path=str(path), reason="is a symbolic link; it is not written through")
    return OutputError(path=str(path), reason=exc.strerror or str(exc))
