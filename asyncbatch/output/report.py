"""JobResult, Summary and Report, and writing them atomically.

A reader of ``--output`` never sees half a report: it is written to a temporary
file in the same directory, fsync'd, then renamed over the target. It is written one
job at a time (the same bytes as the whole report dumped at once), so memory does
not grow with a second copy of every job.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO, Any, Literal

from asyncbatch.errors import OutputError

Status = Literal["succeeded", "failed", "skipped", "cancelled"]
STATUSES: tuple[Status, ...] = ("succeeded", "failed", "skipped", "cancelled")


@dataclass(slots=True)
class JobResult:
    """What happened to one job; ``error`` is ``{"type", "message"}`` (a failed
    command's adds ``"stderr"``) or None."""

    name: str
    action: str
    input: str
    status: Status
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    duration_ms: float | None = None
    attempts: int = 0
    reused: bool = False
    started_ms: float | None = None
    """Milliseconds from the run's start to the job's first start (None: it never
    started in this run), so that a timeline can be drawn."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "input": self.input,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "reused": self.reused,
            "started_ms": self.started_ms,
        }


@dataclass(slots=True)
class Summary:
    """Counts by status; ``total_jobs`` is their sum."""

    total_jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0

    @classmethod
    def of(cls, jobs: list[JobResult]) -> Summary:
        summary = cls(total_jobs=len(jobs))
        for job in jobs:
            setattr(summary, job.status, getattr(summary, job.status) + 1)
        return summary

    def to_dict(self) -> dict[str, int]:
        return {
            "total_jobs": self.total_jobs,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "cancelled": self.cancelled,
        }


@dataclass(slots=True)
class Report:
    """The whole run: jobs in config order (globs expanded in place)."""

    config: str
    started_at: datetime
    finished_at: datetime
    max_concurrency: int
    jobs: list[JobResult] = field(default_factory=list)
    halted: str | None = None
    """Why the run stopped early (fail-fast, a signal), or None."""
    first_failure: str | None = None
    """Name of the job that failed first, in time."""

    @property
    def summary(self) -> Summary:
        return Summary.of(self.jobs)

    @property
    def duration_ms(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds() * 1000, 3)

    @property
    def ok(self) -> bool:
        """True when no job failed or was cancelled (exit code 0)."""
        return not any(job.status in ("failed", "cancelled") for job in self.jobs)

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "jobs": [job.to_dict() for job in self.jobs]}

    def _head(self) -> dict[str, Any]:
        """Everything but the jobs (which come last)."""
        from asyncbatch import __version__

        return {
            "asyncbatch_version": __version__,
            "config": self.config,
            "started_at": _timestamp(self.started_at),
            "finished_at": _timestamp(self.finished_at),
            "duration_ms": self.duration_ms,
            "max_concurrency": self.max_concurrency,
            "summary": self.summary.to_dict(),
        }

    def json_chunks(self) -> Iterator[str]:
        """``json.dumps(self.to_dict(), indent=2) + "\\n"``, one job at a time."""
        head = json.dumps(self._head(), indent=2)
        assert head.endswith("\n}")
        if not self.jobs:
            yield head[:-2] + ',\n  "jobs": []\n}\n'
            return
        yield head[:-2] + ',\n  "jobs": ['
        separator = "\n    "
        for job in self.jobs:
            yield separator + _indented(job.to_dict(), 2)
            separator = ",\n    "
        yield "\n  ]\n}\n"


def now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _indented(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(value, indent=2)`` writes it ``level`` levels deep:
    the same checks in the same order as the standard library's encoder, without
    its generators; what is rarer (keys that are not strings, other types) is left
    to the standard library itself."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    inner = "\n" + "  " * (level + 1)
    outer = "\n" + "  " * level
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [_indented(item, level + 1) for item in value]
        return "[" + inner + ("," + inner).join(items) + outer + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for key, item in value.items():
            if not isinstance(key, str):
                break
            scalar = _SCALARS.get(type(item))
            text = scalar(item) if scalar is not None else _indented(item, level + 1)
            parts.append(encode_basestring_ascii(key) + ": " + text)
        else:
            return "{" + inner + ("," + inner).join(parts) + outer + "}"
    return json.dumps(value, indent=2).replace("\n", outer)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


_SCALARS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    float: _float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
}
"""How the values of exactly these types are written (a shortcut of :func:`_indented`)."""


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
