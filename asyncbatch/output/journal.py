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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncbatch.actions._command import CommandParams
from asyncbatch.config import Job
from asyncbatch.errors import OutputError, OutsideRoot
from asyncbatch.files._confine import stat_confined
from asyncbatch.output.report import STATUSES, JobResult, write_bytes_atomically

FSYNC_INTERVAL = 0.5
"""Longest a written line waits for its fsync (seconds), plus the fsync's own time."""
MAX_LINE_BYTES = 16 << 20
"""Longest journal line read back; a longer one is not trusted (nor held in memory)."""
_LISTED = 10
"""Unreadable lines named one by one in warnings; the rest are counted."""
_HEAVY = 64
"""Part of the params this heavy (about as many values, or 64 bytes of text per unit)
is hashed once per object and run, then stands for its digest wherever it appears
again: params built by YAML aliases cost what was written, not what it expands to."""
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")

Warn = Callable[[str], None]


def _ignore(message: str) -> None:
    """The default ``warn``: say nothing."""


def journal_path(report: Path) -> Path:
    return report.with_name(report.name + ".journal")


def lock_path(report: Path) -> Path:
    return report.with_name(report.name + ".lock")


# --- fingerprints ------------------------------------------------------------------------


class Fingerprints:
    """The fingerprints of one run's jobs (see the module docstring).

    Params are encoded canonically: each value's type and content, dict items in
    the order of their keys' encodings, set members sorted. A heavy part is
    replaced by its SHA-256, computed once per object (and kept, with the object,
    until the run ends): aliases of one big value cost it once. Equal params give
    equal fingerprints whatever objects hold them; different params, different ones."""

    def __init__(self, root: str | None = None) -> None:
        from asyncbatch import __version__

        self._root = root
        self._version = __version__
        self._memo: dict[int, tuple[object, bytes]] = {}

    def of(self, job: Job) -> str | None:
        """The fingerprint of ``job``; None when its input cannot be stat'ed (or,
        under a root, lies outside it) or its params contain themselves: such a
        job is never reused."""
        try:
            info = (
                os.stat(job.path)
                if self._root is None
                else stat_confined(str(job.path), self._root)
            )
            params = _encode_flat(job.raw_params) or self._encode(job.raw_params)
        except (OSError, OutsideRoot, ValueError):
            return None
        size, mtime = info.st_size, info.st_mtime_ns
        if stat.S_ISDIR(info.st_mode):  # a command's folder: it changes with any file in it
            size = mtime = 0
        identity = [job.name, job.action, os.fspath(job.path), size, mtime]
        head = json.dumps([*identity, self._version]).encode()
        return hashlib.sha256(head + params).hexdigest()

    def _encode(self, value: object) -> bytes:
        """The canonical encoding of ``value``, walked without recursion (a deep
        value must not exhaust the stack). Raises ValueError on a cycle."""
        stack: list[_Frame] = []
        open_ids: set[int] = set()
        leaf = self._leaf(value)
        if leaf is not None:
            return leaf[0]
        stack.append(_Frame(value, open_ids))
        while True:
            frame = stack[-1]
            child = next(frame.children, _END)
            if child is not _END:
                leaf = self._leaf(child)
                if leaf is None:
                    stack.append(_Frame(child, open_ids))
                else:
                    frame.add(*leaf)
                continue
            stack.pop()
            open_ids.discard(id(frame.node))
            encoded, weight = frame.encoding()
            if weight >= _HEAVY:
                encoded, weight = self._remember(frame.node, encoded), 1
            if not stack:
                return encoded
            stack[-1].add(encoded, weight)

    def _leaf(self, value: object) -> tuple[bytes, int] | None:
        """(encoding, weight) of a scalar or of a value met before; None for a
        container to walk."""
        known = self._memo.get(id(value))
        if known is not None:
            return known[1], 1
        if isinstance(value, dict | list | tuple | set | frozenset):
            return None
        encoded = _encode_scalar(value)
        weight = 1 + len(encoded) // 64
        if weight >= _HEAVY:
            return self._remember(value, encoded), 1
        return encoded, weight

    def _remember(self, value: object, encoded: bytes) -> bytes:
        digest = b"h" + hashlib.sha256(encoded).digest()
        self._memo[id(value)] = (value, digest)  # the value is kept: its id stays its own
        return digest


def fingerprint(job: Job, root: str | None = None) -> str | None:
    """What the job's result depends on, hashed (see :class:`Fingerprints`); None
    when the input cannot be stat'ed (such a job is never reused)."""
    return Fingerprints(root).of(job)


_END = object()


class _Frame:
    """A container being encoded: its children's encodings so far, and their weight."""

    __slots__ = ("children", "node", "parts", "weight")

    def __init__(self, node: Any, open_ids: set[int]) -> None:
        if id(node) in open_ids:
            raise ValueError("the params contain themselves")
        open_ids.add(id(node))
        self.node = node
        self.children: Iterator[Any] = (
            (part for item in node.items() for part in item)
            if isinstance(node, dict)
            else iter(node)
        )
        self.parts: list[bytes] = []
        self.weight = 1

    def add(self, encoded: bytes, weight: int) -> None:
        self.parts.append(encoded)
        self.weight += weight

    def encoding(self) -> tuple[bytes, int]:
        parts = self.parts
        if isinstance(self.node, dict):
            tag, parts = (
                b"d",
                sorted(key + value for key, value in zip(parts[::2], parts[1::2], strict=True)),
            )
        elif isinstance(self.node, set | frozenset):
            tag, parts = b"S", sorted(parts)
        else:
            tag = b"l"
        return b"%s%d:%s" % (tag, len(parts), b"".join(parts)), self.weight


def _encode_scalar(value: object) -> bytes:
    """A value that is not a container: its type and content, self-delimiting (keys'
    encodings are prefix-free, so sorting items sorts them by key)."""
    if value is None or value is True or value is False:
        return {None: b"N", True: b"T", False: b"F"}[value]
    if isinstance(value, int):
        return b"i%d;" % value
    if isinstance(value, float):
        return b"f%s;" % repr(value).encode()
    if isinstance(value, bytes | bytearray):
        return b"b%d:%s" % (len(value), value)
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return b"s%d:%s" % (len(data), data)
    text = f"{type(value).__qualname__}:{value}".encode("utf-8", "surrogatepass")
    return b"o%d:%s" % (len(text), text)  # dates and times (TOML, YAML), say


_FLAT = frozenset({str, int, float, bool, type(None)})


def _encode_flat(params: object) -> bytes | None:
    """The encoding of light params made of scalars only, the common case, as
    ``Fingerprints._encode`` gives it, without its walk; None for other params."""
    if type(params) is not dict:
        return None
    parts = []
    weight = 1
    for key, value in params.items():
        if type(key) is not str or type(value) not in _FLAT:
            return None
        encoded = _encode_scalar(key) + _encode_scalar(value)
        weight += 2 + len(encoded) // 64  # at least the weight of its two parts
        parts.append(encoded)
    if weight >= _HEAVY:
        return None  # a part of it might be heavy: the walk decides
    parts.sort()
    return b"d%d:%s" % (len(parts), b"".join(parts))


# --- the lock ------------------------------------------------------------------------------


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
            raise _cannot_write(self._path, exc) from None
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
        if fd is not None and _still_refers_to(fd, self._identity):
            os.close(fd)


# --- reading an earlier journal ------------------------------------------------------------


@dataclass(slots=True)
class Recorded:
    """Earlier successes in a journal: for each job name, the fingerprint and the
    place (offset, length) of its last success line."""

    successes: dict[str, tuple[bytes, int, int]] = field(default_factory=dict)

    def take(self, name: str) -> tuple[bytes, int, int] | None:
        """The success of ``name``, forgotten: each job is looked at once a run."""
        return self.successes.pop(name, None)

    def places(self) -> list[tuple[int, int]]:
        """Where the lines of the successes not taken lie, in file order."""
        return sorted((offset, length) for _, offset, length in self.successes.values())


def load_journal(report: Path) -> tuple[Recorded, list[str]]:
    """The last recorded success of each job, and warnings about what was read.

    A torn last line (a run killed mid-write) is skipped with a warning, never
    fatal; so is any other line that cannot be trusted. A journal that cannot be
    read at all is one warning, and nothing in it is reused."""
    path = journal_path(report)
    try:  # O_NONBLOCK: a FIFO planted there must not hang the run
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return Recorded(), []
    except OSError as exc:
        return Recorded(), [_unreadable(path, exc)]
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return Recorded(), [f"{path}: cannot be read (not a regular file); nothing is reused"]
        with open(fd, "rb", closefd=False) as stream:
            return _scan(stream, path)
    except OSError as exc:
        return Recorded(), [_unreadable(path, exc)]
    finally:
        os.close(fd)


def _unreadable(path: Path, exc: OSError) -> str:
    return f"{path}: cannot be read ({exc.strerror or exc}); nothing is reused"


def _scan(stream: Any, path: Path) -> tuple[Recorded, list[str]]:
    """Every line of ``stream`` checked; a later success of the same job wins."""
    recorded = Recorded()
    bad: list[int] = []
    torn = False
    offset = number = 0
    while chunk := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        start = offset
        offset += len(chunk)
        line = chunk[:-1] if chunk.endswith(b"\n") else chunk
        if len(line) > MAX_LINE_BYTES:
            skipped = _skip_line(stream)
            offset += skipped
            bad.append(number)
            continue
        if not line.strip():
            continue
        try:
            found = _success(_parse(line))
        except ValueError:
            if chunk.endswith(b"\n"):
                bad.append(number)
            else:
                torn = True
            continue
        if found is not None:
            name, digest = found
            recorded.successes[name] = (digest, start, len(line))
    warnings = [f"{path}: unreadable line {n} ignored" for n in bad[:_LISTED]]
    if len(bad) > _LISTED:
        warnings.append(f"{path}: {len(bad) - _LISTED} more unreadable lines ignored")
    if torn:
        warnings.append(f"{path}: torn last line ignored")
    return recorded, warnings


def _skip_line(stream: Any) -> int:
    """Read past the rest of a line too long to hold; the number of bytes skipped."""
    skipped = 0
    while chunk := stream.readline(1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def _parse(line: bytes) -> Any:
    """A line as JSON: strict UTF-8, finite numbers only. Raises ValueError."""
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:  # nested deeper than the parser goes
        raise ValueError("nested too deep") from None


def _not_a_number(text: str) -> float:
    raise ValueError(f"{text} is not a number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _success(entry: Any) -> tuple[str, bytes] | None:
    """The name and fingerprint of a success that may be reused; None for any other
    journal entry. Raises ValueError for what is not a journal entry."""
    if not isinstance(entry, dict) or not isinstance(job := entry.get("job"), dict):
        raise ValueError("not a journal entry")
    mark, name, status = entry.get("fingerprint"), job.get("name"), job.get("status")
    if not isinstance(name, str) or not isinstance(status, str) or status not in STATUSES:
        raise ValueError("not a journal entry")
    if mark is not None and not (isinstance(mark, str) and _FINGERPRINT.fullmatch(mark)):
        raise ValueError("not a fingerprint")
    if status != "succeeded" or mark is None:
        return None
    _payload(job)
    return name, bytes.fromhex(mark)


def _payload(job: dict[str, Any]) -> tuple[dict[str, Any], float | None, int]:
    """The result, duration and attempts of a recorded success. Raises ValueError
    when one is of the wrong type."""
    result, duration, attempts = job.get("result"), job.get("duration_ms"), job.get("attempts", 1)
    if not isinstance(result, dict):
        raise ValueError("the result is not an object")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0
    ):
        raise ValueError("the duration is not a number of milliseconds")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError("the attempts are not a count")
    return result, duration, attempts


def declared_outputs(job: Job) -> list[str]:
    """The files a command job declares it creates (absolute paths); none for others."""
    if isinstance(job.params, CommandParams):
        return job.params.output_paths(job.path)
    return []


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
        self._marks: dict[str, tuple[str | None, list[str]]] = {}
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
            raise _cannot_write(self.path, exc) from None
        self._fd, self._start, self._size, self._writing = fd, size, size, True
        self._syncer = _Syncer(fd, self._sync, self._fsync_interval)

    def reusable(self, job: Job) -> JobResult | None:
        """The recorded success of ``job`` if its fingerprint still matches.

        Called as the job is about to start (after its dependencies), so a file a
        dependency rewrote is fingerprinted as it now is."""
        mark = self._fingerprints.of(job)
        outputs = declared_outputs(job)
        self._marks[job.name] = (mark, outputs)
        found = self._previous.take(job.name)
        if mark is None or found is None or self._fd is None:
            return None
        digest, offset, length = found
        if digest != bytes.fromhex(mark):
            return None
        try:  # read again, and trusted again only if it still says the same
            entry = _parse(os.pread(self._fd, length, offset))
            if _success(entry) != (job.name, digest):
                return None
            if outputs and entry.get("outputs") != output_states(outputs):
                return None  # an output was removed or changed since
            result, duration, attempts = _payload(entry["job"])
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
        )

    def record(self, result: JobResult) -> None:
        """Append one finished job and write it through to the file; a failure
        stops the journal (see :meth:`_stop`)."""
        mark, outputs = self._marks.pop(result.name, (None, []))
        if not self._writing:
            return
        assert self._fd is not None
        assert self._syncer is not None
        entry: dict[str, Any] = {"fingerprint": mark, "job": result.to_dict()}
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
        raise _cannot_write(path, exc) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the lstat
        os.close(fd)
        raise OutputError(path=str(path), reason="is not a regular file")
    return fd


def _still_refers_to(fd: int, identity: tuple[int, int]) -> bool:
    """Whether ``fd`` is still open on the file (device, inode) it was opened on."""
    try:
        info = os.fstat(fd)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == identity


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


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    """The journal or the lock cannot be opened (exit 2, before any job starts)."""
    if exc.errno == errno.ELOOP:
        return OutputError(path=str(path), reason="is a symbolic link; it is not written through")
    return OutputError(path=str(path), reason=exc.strerror or str(exc))


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
        previous, warnings = load_journal(report) if resume else (Recorded(), [])
        journal = Journal(report, previous, root=root, warn=warn)
        journal.open(resume=resume)
        try:
            yield journal, warnings
        finally:
            journal.close()
    finally:
        lock.release()
