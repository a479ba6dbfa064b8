"""The journal: every finished job, one JSON line each, beside the report.

A killed run loses nothing that finished: each line is written to the file (not
just to a Python buffer) as its job ends, and fsync'd at least once a second and at
the end. ``--resume`` reuses each recorded success whose *fingerprint* still
matches: the job's name, action, params, resolved input, the input's size and
modification time, and the asyncbatch version (the built-ins' code). An edited
config or input therefore never reuses a stale result, and an unchanged one is
never computed twice: the same mechanism makes re-runs incremental.

A lock beside the report (``flock``, released by the kernel when a process dies,
so a crashed run never leaves it stuck) refuses a second run writing the same
report at the same time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from asyncbatch.config import Job
from asyncbatch.errors import OutputError, OutsideRoot
from asyncbatch.files._confine import stat_confined
from asyncbatch.output.report import JobResult, write_atomically

FSYNC_INTERVAL = 1.0
"""Default seconds between fsyncs of the journal; every line is written immediately."""


def journal_path(report: Path) -> Path:
    return report.with_name(report.name + ".journal")


def lock_path(report: Path) -> Path:
    return report.with_name(report.name + ".lock")


def fingerprint(job: Job, root: str | None = None) -> str | None:
    """What the job's result depends on, hashed; None when the input cannot be
    stat'ed (such a job is never reused)."""
    from asyncbatch import __version__

    try:  # under a root, a file outside it is never stat'ed, so never reused
        info = os.stat(job.path) if root is None else stat_confined(str(job.path), root)
    except (OSError, OutsideRoot):
        return None
    identity = {
        "name": job.name,
        "action": job.action,
        "params": job.raw_params,
        "input": os.fspath(job.path),  # absolute already: config dir / input
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "version": __version__,
    }
    encoded = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<report>.lock`` for one run."""

    def __init__(self, report: Path) -> None:
        self._path = lock_path(report)
        self._fd: int | None = None

    def acquire(self) -> None:
        try:  # never through a symbolic link planted at this predictable name
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise _cannot_write(self._path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                path=str(self._path.with_suffix("")),
                reason="another asyncbatch run is writing this report now",
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class Journal:
    """Appends finished jobs to ``<report>.journal``; see the module docstring."""

    def __init__(
        self,
        report: Path,
        previous: dict[str, dict[str, Any]] | None = None,
        *,
        root: str | None = None,
        fsync_interval: float = FSYNC_INTERVAL,
    ) -> None:
        self.path = journal_path(report)
        self._root = root
        self._fsync_interval = fsync_interval
        self._previous = previous or {}
        self._fingerprints: dict[str, str | None] = {}
        self._entries: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        self._resume = False
        self._last_sync = time.monotonic()

    def open(self, *, resume: bool) -> None:
        """Start a fresh journal, or append to the previous one when resuming, so
        a resumed run killed early still has every earlier success on disk."""
        self._resume = resume
        torn = resume and _ends_mid_line(self.path)
        # O_NOFOLLOW: never write through a symbolic link planted at this predictable name.
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if resume else os.O_TRUNC)
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None
        self._file = os.fdopen(fd, "a" if resume else "w", encoding="utf-8")
        if torn:
            self._file.write("\n")  # keeps this run's first line apart from a torn one

    def reusable(self, job: Job) -> JobResult | None:
        """The recorded success of ``job`` if its fingerprint still matches.

        Called as the job is about to start (after its dependencies), so a file a
        dependency rewrote is fingerprinted as it now is."""
        mark = fingerprint(job, self._root)
        self._fingerprints[job.name] = mark
        entry = self._previous.get(job.name)
        if mark is None or entry is None or entry.get("fingerprint") != mark:
            return None
        recorded = entry["job"]
        return JobResult(
            name=job.name,
            action=job.action,
            input=job.input,
            status="succeeded",
            result=recorded.get("result"),
            duration_ms=recorded.get("duration_ms"),
            attempts=recorded.get("attempts", 1),
            reused=True,
        )

    def record(self, result: JobResult) -> None:
        """Append one finished job and write it through to the file."""
        if self._file is None:
            return
        entry = {"fingerprint": self._fingerprints.get(result.name), "job": result.to_dict()}
        self._entries.append(entry)
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._file.flush()
        now = time.monotonic()
        if now - self._last_sync >= self._fsync_interval:
            os.fsync(self._file.fileno())
            self._last_sync = now

    def close(self) -> None:
        """Sync and close; after a resumed run, compact the journal to this run's
        lines so it does not grow with every incremental run. Earlier successes of
        jobs this run never looked at (cut off by a halt, left out by ``--only``)
        are kept: they may still be reused. Raises ``OSError`` when the disk or
        the folder fails it (the lines written before stay on disk)."""
        file, self._file = self._file, None
        if file is None:
            return  # closed already (a second call is a no-op, even after a failure)
        try:
            file.flush()
            os.fsync(file.fileno())
        finally:
            with contextlib.suppress(OSError):  # the descriptor is released either way
                file.close()
        if self._resume:
            unseen = [e for name, e in self._previous.items() if name not in self._fingerprints]
            entries = [*unseen, *self._entries]
            text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
            write_atomically(self.path, text)


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    """The journal or the lock cannot be opened (exit 2, before any job starts)."""
    if exc.errno == errno.ELOOP:
        return OutputError(path=str(path), reason="is a symbolic link; it is not written through")
    return OutputError(path=str(path), reason=exc.strerror or str(exc))


def _ends_mid_line(path: Path) -> bool:
    """True when ``path``'s last line has no newline: a run was cut off mid-write."""
    try:
        with path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except OSError:  # no file, or an empty one
        return False


def load_journal(report: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The last recorded success of each job, by name, and warnings.

    A torn last line (a run killed mid-write) is skipped with a warning, never
    fatal; so is any other line that does not parse."""
    path = journal_path(report)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        return {}, []
    successes: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    last = len(lines) - 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            job = entry["job"]
            name = job["name"]
        except (ValueError, KeyError, TypeError):
            torn = number - 1 == last
            what = "torn last line" if torn else f"unreadable line {number}"
            warnings.append(f"{path}: {what} ignored")
            continue
        if job.get("status") == "succeeded" and entry.get("fingerprint"):
            successes[name] = entry  # a later success of the same job wins
    return successes, warnings


@contextmanager
def journaled(
    report: Path, *, resume: bool, root: str | None = None
) -> Iterator[tuple[Journal, list[str]]]:
    """Hold the run lock and an open journal for ``report`` (and, with ``resume``,
    the earlier successes); yields the journal and warnings about what was read.
    ``root`` (a real path) confines the stats of fingerprints."""
    lock = RunLock(report)
    lock.acquire()
    try:
        previous, warnings = load_journal(report) if resume else ({}, [])
        journal = Journal(report, previous, root=root)
        journal.open(resume=resume)
        try:
            yield journal, warnings
        finally:
            journal.close()
    finally:
        lock.release()
