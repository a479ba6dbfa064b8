"""Writing the report (and any output) atomically, and checking where it goes.

A reader of ``--output`` never sees half a report: it is written to a temporary
file in the same directory, fsync'd, then renamed over the target. It is written one
job at a time (the same bytes as the whole report dumped at once), so memory does
not grow with a second copy of every job.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from asyncbatch.errors import OutputError

if TYPE_CHECKING:
    from asyncbatch.model import Report


def write_report(report: Report, path: str | os.PathLike[str]) -> None:
    """Write the JSON report to ``path`` atomically, one job at a time."""
    write_atomically(Path(path), report.json_chunks())


def write_atomically(path: Path, text: str | Iterable[str]) -> None:
    """Write ``text`` (or its chunks, one after the other) to ``path`` atomically:
    temp file in the target's directory (created exclusively, so a planted symlink
    is never followed), fsync, rename. Mode follows the umask."""
    with _atomic_file(path) as handle:
        for chunk in (text,) if isinstance(text, str) else text:
            handle.write(chunk.encode("utf-8"))


def write_bytes_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """As :func:`write_atomically`, with chunks of bytes."""
    with _atomic_file(path) as handle:
        for chunk in chunks:
            handle.write(chunk)


@contextmanager
def _atomic_file(path: Path) -> Iterator[IO[bytes]]:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def check_output_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputError` unless a report can be written at ``path``:
    checked before any job starts, by creating (and removing) a file there."""
    target = Path(path)
    label = os.fspath(path)
    if target.is_dir():
        raise OutputError(path=label, reason="is a directory")
    parent = target.parent
    if not parent.is_dir():
        reason = (
            "its folder does not exist" if not parent.exists() else "its parent is not a folder"
        )
        raise OutputError(path=label, reason=reason)
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".probe")
    except OSError as exc:
        raise OutputError(path=label, reason=exc.strerror or str(exc)) from None
    os.close(fd)
    os.unlink(probe)


Identity = tuple[int, int]
"""A file's (device, inode): the same file under any name or link."""


def check_destination(
    path: Path,
    *,
    what: str,
    taken: Mapping[str, str] | None = None,
    taken_file: Callable[[Identity], str | None] | None = None,
) -> None:
    """Raise :class:`OutputError` unless writing ``what`` (``"reports"``,
    ``"pages"``) at ``path`` destroys nothing: it must be a regular file or absent
    (never a directory, device, FIFO or socket), outside ``/dev`` and ``/proc``
    even through links, not one of the real paths in ``taken`` nor a file
    ``taken_file`` names (each maps to what it is, for the message), and its
    folder must accept a new file."""
    label = os.fspath(path)
    if reaches_system_files(path):
        reason = "is a system path (a device or a process's stream); it would be replaced"
        raise OutputError(path=label, reason=reason)
    try:
        info = os.stat(path)
    except OSError:  # absent (or unreachable: the write check says why)
        info = None
    if info is not None:
        from asyncbatch.files._scan import file_kind

        kind = file_kind(info.st_mode)
        if kind is not None:
            raise OutputError(
                path=label, reason=f"is a {kind}; {what} are written to regular files only"
            )
    found = (taken or {}).get(os.path.realpath(path))
    if found is None and info is not None and taken_file is not None:
        found = taken_file((info.st_dev, info.st_ino))
    if found is not None:
        raise OutputError(path=label, reason=f"is {found}; it would be overwritten")
    check_output_writable(path)


SYSTEM_FOLDERS = ("/dev", "/proc")
"""Where an output never goes: ``-o /dev/stdout`` with stdout redirected to a file is
a link to a regular file, and renaming the report over it would replace the link,
for every program on the machine."""


def reaches_system_files(path: Path) -> bool:
    """Whether ``path``, or any symbolic link on the way to what it names, lies in a
    system folder (``/dev/stdout``, ``/dev/fd/1``, ``/proc/self/fd/1``)."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if any(current == top or current.startswith(top + os.sep) for top in SYSTEM_FOLDERS):
            return True
        try:
            target = os.readlink(current)
        except OSError:  # not a link (or gone): the end of the chain
            return False
        current = os.path.abspath(os.path.join(os.path.dirname(current), target))
    return False


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
