"""The journal: every finished job, one JSON line each, beside the report.

A killed run loses nothing that finished: each line is written to the file (not
just to a Python buffer) as its job ends, and a thread fsyncs it within half a
second (the event loop never waits for the disk), and again at the end. ``--resume``
reuses each recorded success whose *fingerprint* still matches: the job's name,
action, params, resolved input, the input's size and modification time, and the
asyncbatch version (the built-ins' code). An edited config or input therefore never
reuses a stale result, and an unchanged one is never computed twice: the same
mechanism makes re-runs incremental.

Faults are warnings, never tracebacks: a disk that fills up (or any failed write)
stops the journal where it is, its complete lines kept, while the jobs go on; on
``--resume``, a line that cannot be trusted (not JSON, not an entry, wrong types,
invalid UTF-8, longer than :data:`MAX_LINE_BYTES`) is skipped, and a journal that
cannot be read at all reuses nothing. Memory does not grow with what jobs return:
earlier successes are remembered by fingerprint and place in the file, and read
again only when reused.

A lock beside the report (``flock``, released by the kernel when a process dies,
so a crashed run never leaves it stuck) refuses a second run writing the same
report at the same time.

Fingerprints are computed in :mod:`._fingerprints`; an earlier journal is read in
:mod:`._journal_read`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asyncbatch.config import Job
from asyncbatch.errors import OutputError
from asyncbatch.model import JobResult
from asyncbatch.output._fingerprints import Fingerprints, Mark
from asyncbatch.output._journal_read import (
    Recorded,
    load_journal,
    parse_line,
    read_journal,
    recorded_payload,
    recorded_resources,
    recorded_success,
)
from asyncbatch.output._lock import RunLock, cannot_write, lock_path
from asyncbatch.output.report import write_bytes_atomically

FSYNC_INTERVAL = 0.5
"""Longest a written line waits for its fsync (seconds), plus the fsync's own time."""

Warn = Callable[[str], None]

__all__ = [
    "Journal",
    "journal_path",
    "journaled",
    "lock_path",
    "output_states",
    "recorded_durations",
]


def _ignore(message: str) -> None:
    """The default ``warn``: say nothing."""


def journal_path(report: Path) -> Path:
    return report.with_name(report.name + ".journal")


def recorded_durations(report: Path) -> dict[str, float]:
    """The last recorded duration (milliseconds) of each job, by name: from the
    journal beside ``report``, else from the report itself; none from what cannot
    be read (``--order history`` then keeps config order)."""
    durations: dict[str, float] = {}

    def collect(entry: Any, start: int, length: int) -> None:
        job = entry.get("job") if isinstance(entry, dict) else None
        if not isinstance(job, dict) or not isinstance(name := job.get("name"), str):
            raise ValueError("not a journal entry")
        duration = job.get("duration_ms")
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            durations[name] = float(duration)

    journal = journal_path(report)
    if journal.exists():
        read_journal(journal, collect)
        return durations
    from asyncbatch.errors import NotAReport
    from asyncbatch.output.show import load_report

    try:
        saved = load_report(report)
    except NotAReport:
        return durations
    return {job.name: job.duration_ms for job in saved.jobs if job.duration_ms is not None}


# --- reading an earlier journal ------------------------------------------------------------
def output_states(outputs: list[str]) -> list[list[Any]] | None:
    """Each output's path, size and modification time, as a journal line holds them;
    None when one is missing (such a job is never reused)."""
    states: list[list[Any]] = []
    for output in outputs:
        try:
            info = os.stat(output)
        except OSError:
            return None
        states.append([output, info.st_size, info.st_mtime_ns])
    return states


# --- the journal -------------------------------------------------------------------------


class Journal:
    """Appends finished jobs to ``<report>.journal``; see the module docstring.

    ``warn`` hears, once, that the journal stopped (a full disk, say); ``sync`` is
    the fsync used (the background one and the last one)."""

    def __init__(
        self,
        report: Path,
        previous: Recorded | None = None,
        *,
        root: str | None = None,
        fsync_interval: float = FSYNC_INTERVAL,
        warn: Warn = _ignore,
        sync: Callable[[int], None] = os.fsync,
    ) -> None:
        self.path = journal_path(report)
        self._previous = previous or Recorded()
        self._fingerprints = Fingerprints(root)
        self._marks: dict[str, tuple[Mark | None, list[str]]] = {}
        """Of the jobs looked at and not ended: the fingerprint and declared outputs."""
        self._fsync_interval = fsync_interval
        self._warn = warn
        self._sync = sync
        self._fd: int | None = None
        self._syncer: _Syncer | None = None
        self._writing = False
        self._resume = False
        self._start = self._size = 0  # where this run's lines begin, and end

    def open(self, *, resume: bool) -> None:
        """Start a fresh journal, or append to the previous one when resuming, so
        a resumed run killed early still has every earlier success on disk."""
        self._resume = resume
        fd = _open_for_writing(self.path, resume)
        try:
            size = os.fstat(fd).st_size
            if size and not _ends_with_newline(fd, size):
                _write_all(fd, b"\n")  # keeps this run's first line apart from a torn one
                size += 1
        except OSError as exc:
            os.close(fd)
            raise cannot_write(self.path, exc) from None
        self._fd, self._start, self._size, self._writing = fd, size, size, True
        self._syncer = _Syncer(fd, self._sync, self._fsync_interval)

    def reusable(self, job: Job) -> JobResult | None:
        """The recorded success of ``job`` if its fingerprint still matches (with
        what it used, as recorded).

        Called as the job is about to start (after its dependencies), so a file a
        dependency rewrote is fingerprinted as it now is; the fingerprint is kept
        for the line the job's result makes, reused or not."""
        mark = self._fingerprints.mark(job)
        outputs = job.outputs()
        self._marks[job.name] = (mark, outputs)
        found = self._previous.take(job.name)
        if mark is None or found is None or self._fd is None:
            return None
        digest, offset, length = found
        if digest != bytes.fromhex(mark.digest):
            return None
        try:  # read again, and trusted again only if it still says the same
            entry = parse_line(os.pread(self._fd, length, offset))
            if recorded_success(entry) != (job.name, digest):
                return None
            if outputs and entry.get("outputs") != output_states(outputs):
                return None  # an output was removed or changed since
            result, duration, attempts = recorded_payload(entry["job"])
            used = recorded_resources(entry["job"])
        except (OSError, ValueError):
            return None
        return JobResult(
            name=job.name,
            action=job.action,
            input=job.input,
            status="succeeded",
            result=result,
            duration_ms=duration,
            attempts=attempts,
            reused=True,
            resources=used,
        )

    def record(self, result: JobResult) -> None:
        """Append one finished job and write it through to the file; a failure
        stops the journal (see :meth:`_stop`)."""
        mark, outputs = self._marks.pop(result.name, (None, []))
        if not self._writing:
            return
        assert self._fd is not None
        assert self._syncer is not None
        entry: dict[str, Any] = {
            "fingerprint": None if mark is None else mark.digest,
            "basis": None if mark is None else mark.basis,
            "job": result.to_dict(),
        }
        if outputs and result.status == "succeeded":
            entry["outputs"] = output_states(outputs)
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        try:
            if self._syncer.failure is not None:
                raise self._syncer.failure
            _write_all(self._fd, line)
        except OSError as exc:
            self._stop(exc)
            return
        self._size += len(line)
        self._syncer.written()

    def _stop(self, exc: OSError) -> None:
        """Stop writing, once: a line written in part is cut off, the lines before
        are synced, and ``warn`` hears why. The jobs go on."""
        assert self._fd is not None
        assert self._syncer is not None
        self._writing = False
        self._syncer.stop()
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._size)
            self._sync(self._fd)
        self._warn(
            f"cannot write the journal {self.path}: {exc.strerror or exc}; it stops here "
            "(the lines before stay) and the jobs go on"
        )

    def close(self) -> None:
        """Sync and close; after a resumed run, compact the journal to this run's
        lines so it does not grow with every incremental run. Earlier successes of
        jobs this run never looked at (cut off by a halt, left out by ``--only``)
        are kept: they may still be reused. Raises ``OSError`` when the disk or
        the folder fails it (the lines written before stay on disk)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return  # closed already (a second call is a no-op, even after a failure)
        writing, self._writing = self._writing, False
        try:
            if writing:
                assert self._syncer is not None
                self._syncer.stop()
                self._sync(fd)
                if self._resume:
                    if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                        raise PermissionError(errno.EACCES, "it cannot be read to be compacted")
                    write_bytes_atomically(self.path, self._compacted(fd))
        finally:
            with contextlib.suppress(OSError):  # the descriptor is released either way
                os.close(fd)

    def _compacted(self, fd: int) -> Iterator[bytes]:
        """The earlier successes not looked at, then this run's lines, read back."""
        for offset, length in self._previous.places():
            yield os.pread(fd, length, offset) + b"\n"
        position = self._start
        while position < self._size:
            block = os.pread(fd, min(1 << 20, self._size - position), position)
            if not block:
                raise OSError(errno.EIO, "the journal is shorter than what was written")
            position += len(block)
            yield block


class _Syncer:
    """fsyncs a file in a daemon thread, at most ``interval`` seconds after the first
    line written since its last fsync; idle while nothing is written."""

    def __init__(self, fd: int, sync: Callable[[int], None], interval: float) -> None:
        self._fd = fd
        self._sync = sync
        self._interval = interval
        self._pending = threading.Event()
        self._stopping = threading.Event()
        self.failure: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="asyncbatch-journal", daemon=True)
        self._thread.start()

    def written(self) -> None:
        """A line was written (the set is skipped while one is pending: cheap)."""
        if not self._pending.is_set():
            self._pending.set()

    def _run(self) -> None:
        while not self._stopping.is_set():  # checked after each clear, which may undo stop's set
            self._pending.wait()
            if self._stopping.wait(self._interval):
                return  # the journal syncs its end itself
            self._pending.clear()  # what is written from now on waits for the next round
            try:
                self._sync(self._fd)
            except OSError as exc:
                self.failure = exc  # the next line stops the journal
                return

    def stop(self) -> None:
        self._stopping.set()
        self._pending.set()
        self._thread.join()


def _open_for_writing(path: Path, resume: bool) -> int:
    """The journal's descriptor: read and write when resuming (earlier lines are
    read back), never through a symbolic link, never a FIFO or device."""
    try:
        info = os.lstat(path)
    except OSError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(path=str(path), reason="Is a directory")
    if info is not None and not stat.S_ISREG(info.st_mode) and not stat.S_ISLNK(info.st_mode):
        raise OutputError(path=str(path), reason="is not a regular file")
    base = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    flags = base | (os.O_RDWR | os.O_APPEND if resume else os.O_WRONLY | os.O_TRUNC)
    try:
        try:
            fd = os.open(path, flags, 0o666)
        except PermissionError:
            if not resume:
                raise
            fd = os.open(path, base | os.O_WRONLY | os.O_APPEND, 0o666)  # write-only file
    except OSError as exc:
        raise cannot_write(path, exc) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the lstat
        os.close(fd)
        raise OutputError(path=str(path), reason="is not a regular file")
    return fd


def _ends_with_newline(fd: int, size: int) -> bool:
    try:
        return os.pread(fd, 1, size - 1) == b"\n"
    except OSError:  # a write-only descriptor: assume a torn line
        return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


@contextmanager
def journaled(
    report: Path, *, resume: bool, root: str | None = None, warn: Warn = _ignore
) -> Iterator[tuple[Journal, list[str]]]:
    """Hold the run lock and an open journal for ``report`` (and, with ``resume``,
    the earlier successes); yields the journal and warnings about what was read.
    ``root`` (a real path) confines the stats of fingerprints; ``warn`` hears that
    the journal stopped during the run."""
    lock = RunLock(report)
    lock.acquire()
    try:
        previous, warnings = load_journal(journal_path(report)) if resume else (Recorded(), [])
        journal = Journal(report, previous, root=root, warn=warn)
        journal.open(resume=resume)
        try:
            yield journal, warnings
        finally:
            journal.close()
    finally:
        lock.release()
