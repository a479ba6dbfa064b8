"""Writing the report (and any output) atomically, and checking where it goes.

A reader of ``--output`` never sees half a report: it is written to a temporary
file in the same directory, fsync'd, then renamed over the target. It is written one
job at a time (the same bytes as the whole report dumped at once), so memory does
not grow with a second copy of every job.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
