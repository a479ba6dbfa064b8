"""JobResult, Summary and Report, and writing them atomically.

A reader of ``--output`` never sees half a report: it is written to a temporary
file in the same directory, fsync'd, then renamed over the target.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from asyncbatch.errors import OutputError

Status = Literal["succeeded", "failed", "skipped", "cancelled"]
STATUSES: tuple[Status, ...] = ("succeeded", "failed", "skipped", "cancelled")


@dataclass(slots=True)
class JobResult:
    """What happened to one job; ``error`` is ``{"type", "message"}`` or None."""

    name: str
    action: str
    input: str
    status: Status
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    duration_ms: float | None = None
    attempts: int = 0
    reused: bool = False

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
        from asyncbatch import __version__

        return {
            "asyncbatch_version": __version__,
            "config": self.config,
            "started_at": _timestamp(self.started_at),
            "finished_at": _timestamp(self.finished_at),
            "duration_ms": self.duration_ms,
            "max_concurrency": self.max_concurrency,
            "summary": self.summary.to_dict(),
            "jobs": [job.to_dict() for job in self.jobs],
        }


def now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_report(report: Report, path: str | os.PathLike[str]) -> None:
    """Write the JSON report to ``path`` atomically."""
    write_atomically(Path(path), json.dumps(report.to_dict(), indent=2) + "\n")


def write_atomically(path: Path, text: str) -> None:
    """Temp file in the target's directory (created exclusively, so a planted
    symlink is never followed), fsync, rename. Mode follows the umask."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
