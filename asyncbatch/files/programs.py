"""One program run to its end in the calling (daemon) thread: spawned in a process
group of its own, its two output streams drained together with bounded memory, and
nothing of its group left running once it has exited.

Blocking ``subprocess`` in a thread is the cheapest way to run many short programs
from an event loop: asyncio's child watchers cost a thread or more per child, and
reap by pid, which other code's reaping confuses. The caller stops a run by
:meth:`Child.terminate` (SIGTERM to the group) and :meth:`Child.kill` (SIGKILL);
:func:`supervised` does both for a cancelled coroutine.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 - the futures of run_in_executor
import contextlib
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, TypeVarTuple

import anyio

from asyncbatch.files._threads import DaemonThreadExecutor, start_blocking_in, wait_done
from asyncbatch.model import Resources
from asyncbatch.registry import Streams

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

TAIL_BYTES = 4096
"""Bytes of each stream kept: the last ones."""
GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
_READ = 64 << 10
_POLL_MS = 50
"""Milliseconds between looks at a child's state where no pidfd can wait for it,
and while its group is ended."""


@dataclass(frozen=True, slots=True)
class Finished:
    """How a program ended: ``exit_code`` (negative: killed by that signal), the last
    :data:`TAIL_BYTES` of each stream, the exact byte counts, and what the program
    and the children it waited for used (``os.wait4``)."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    stdout_bytes: int
    stderr_bytes: int
    resources: Resources | None = None


class Child:
    """A program's run, shared between the thread that runs it and the caller who
    may stop it. Stopping before the spawn means it never runs. ``streams`` hears
    what the program prints, as it prints it."""

    def __init__(self, streams: Streams | None = None) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._stopped = False
        self._done = False
        self._streams = streams

    def terminate(self) -> None:
        """SIGTERM to the whole group (or no start at all, if not started yet)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the whole group."""
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        with self._lock:
            self._stopped = True
            if self._pid is not None and not self._done:
                _signal_group(self._pid, number)

    def run(
        self, argv: Sequence[str], cwd: str, env: Mapping[str, str] | None = None
    ) -> Finished | None:
        """Run ``argv`` to its end; None when stopped before it started. Raises
        ``OSError`` when the program cannot be executed (``filename`` says which)."""
        with self._lock:
            if self._stopped:
                return None
            if self._streams is not None:
                self._streams.start()
            process = subprocess.Popen(
                list(argv),
                executable=located(argv[0], env),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a group of its own, with the pid as its id
                close_fds=True,
            )
            self._pid = process.pid
            _LIVE.add(self)
        return self._wait(process)  # which marks it done, whatever happens

    def _wait(self, process: subprocess.Popen[bytes]) -> Finished:
        """Drain both streams until the program has exited and its group is gone."""
        assert process.stdout is not None
        assert process.stderr is not None
        streams = self._streams
        tails = {process.stdout.fileno(): _Tail(1), process.stderr.fileno(): _Tail(2)}
        reading = dict(tails)
        poller = select.poll()  # not select(): descriptors past 1024 are fine
        for fd in reading:
            poller.register(fd, select.POLLIN)
        pidfd = _pidfd(process.pid)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        exited_at: float | None = None
        killed = False
        usage = None
        try:
            while True:
                if exited_at is None and _has_exited(process.pid):
                    # Gone but not reaped, so its pid (the group's id) is not reused
                    # yet: end whatever it left running in its group.
                    exited_at = time.monotonic()
                    _signal_group(process.pid, signal.SIGTERM)
                if exited_at is not None:
                    waited = time.monotonic() - exited_at
                    if not reading or waited >= GRACE + 1.0:
                        break  # past that, the pipe is held outside the group
                    if not killed and waited >= GRACE:
                        _signal_group(process.pid, signal.SIGKILL)
                        killed = True
                blocking = exited_at is None and pidfd is not None
                for fd, _ in poller.poll(None if blocking else _POLL_MS):
                    if fd == pidfd:
                        poller.unregister(fd)
                        _close(fd)
                        pidfd = None
                        continue
                    data = os.read(fd, _READ)
                    if data:
                        tail = reading[fd]
                        tail.add(data)
                        if streams is not None:
                            streams.write(tail.stream, data)
                    else:
                        poller.unregister(fd)
                        del reading[fd]
        finally:
            process.stdout.close()
            process.stderr.close()
            if pidfd is not None:
                _close(pidfd)
            with self._lock:
                self._done = True  # from here on its pid may be another process's
                _LIVE.discard(self)
                usage = _reap(process)
        if exited_at is not None and not killed:
            _end_group(process.pid, exited_at)
        out, err = tails.values()
        return Finished(_exit_code(process), out.data(), err.data(), out.count, err.count, usage)


def _reap(process: subprocess.Popen[bytes]) -> Resources | None:
    """Wait for ``process`` (already exited, or about to be) and say what it and
    the children it waited for used. Its return code is set on it, so that the
    ``subprocess`` module never waits for its pid again."""
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except ChildProcessError:  # reaped already: nothing measured
        if process.returncode is None:
            process.returncode = 255
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    return Resources(
        cpu_s=round(usage.ru_utime + usage.ru_stime, 6),
        max_rss_kb=usage.ru_maxrss,
        read_bytes=usage.ru_inblock * 512,
        write_bytes=usage.ru_oublock * 512,
    )


def _exit_code(process: subprocess.Popen[bytes]) -> int:
    code = process.returncode
    return 255 if code is None else code


def _end_group(pgid: int, exited_at: float) -> None:
    """After the program exited (its group got SIGTERM then) and both its pipes
    closed: whatever of its group still runs holds no pipe of ours (a grandchild
    that closed them, or ignores SIGTERM); it gets SIGKILL :data:`GRACE` seconds
    after the exit unless it is gone by then. Its pid stays its own meanwhile: a
    pid is not reused while a process group of that number lives."""
    pause = 0.001
    while _group_alive(pgid):
        left = exited_at + GRACE - time.monotonic()
        if left <= 0:
            _signal_group(pgid, signal.SIGKILL)
            return
        time.sleep(min(pause, left))
        pause = min(pause * 2, _POLL_MS / 1000)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (a zombie waiting for its new
    parent does not: it runs nothing, and cannot be killed)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: take the signal's word
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False


_FOUND: dict[tuple[str, str], str] = {}
"""Programs found on a PATH: (name, PATH) -> path."""


def located(program: str, env: Mapping[str, str] | None = None) -> str | None:
    """Where ``program`` is on the PATH it will run with, looked up once per run of
    the process: the child then makes one ``execve`` instead of one per PATH entry
    (half the cost of spawning ``true`` here). None leaves the search to the child
    (a name with a slash, or one not found: the child's error says so)."""
    if "/" in program:
        return None
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    key = (program, path)
    found = _FOUND.get(key)
    if found is None:
        found = shutil.which(program, path=path)
        if found is None or not os.path.isabs(found):
            return None  # a relative PATH entry depends on the working directory
        _FOUND[key] = found
    return found


_LIVE: set[Child] = set()
"""The children whose program runs now (for :func:`kill_all`)."""


def kill_all() -> None:
    """SIGKILL every running program's group, at once: for a process about to exit
    without its cleanup (a second Ctrl-C). Takes no lock (a signal handler calls it)."""
    for _ in range(3):  # another thread may change the set while it is copied
        try:
            children = list(_LIVE)
        except RuntimeError:
            continue
        for child in children:
            pid = child._pid
            if pid is not None and not child._done:
                _signal_group(pid, signal.SIGKILL)
        return


def end_all(grace: float = GRACE) -> None:
    """End every running program's group as a cancelled job's is: SIGTERM, then
    SIGKILL to those still running ``grace`` seconds later; return once none runs
    (or ``grace`` more seconds have passed). For a process about to go away with
    programs still running (a Dask worker that closes)."""
    for number, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        children = list(_LIVE)
        if not children:
            return
        for child in children:
            child._signal(number)
        deadline = time.monotonic() + wait
        while _LIVE and time.monotonic() < deadline:
            time.sleep(_POLL_MS / 1000)


class _Tail:
    """The last :data:`TAIL_BYTES` of a stream (``stream``: 1 stdout, 2 stderr), and
    how many bytes it carried."""

    __slots__ = ("_kept", "count", "stream")

    def __init__(self, stream: int) -> None:
        self._kept = bytearray()
        self.count = 0
        self.stream = stream

    def add(self, data: bytes) -> None:
        self.count += len(data)
        self._kept += data[-TAIL_BYTES:]
        if len(self._kept) > TAIL_BYTES:
            del self._kept[:-TAIL_BYTES]

    def data(self) -> bytes:
        return bytes(self._kept)


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _has_exited(pid: int) -> bool:
    """Whether the child ``pid`` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped by someone else already
        return True


def _signal_group(pgid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, number)


PROGRAMS = DaemonThreadExecutor(max_workers=100_000, idle_seconds=10)
"""Threads that run programs: one per program running (a program may run for hours,
so these are not the read threads, of which there are few); idle ones are reused."""


async def supervised(child: Child, func: Callable[[*Ts], T], *args: *Ts) -> T:
    """``func(*args)``, which runs a program through ``child``, in a daemon thread.
    Cancelled, it ends the program's group (SIGTERM, then SIGKILL :data:`GRACE`
    seconds later) and waits for ``func`` to end, shielded, before it lets the
    cancellation through: nothing the program started outlives it, and ``func``
    has cleaned up after it."""
    future = start_blocking_in(PROGRAMS, func, *args)
    future.add_done_callback(_retrieved)  # a cancelled caller never reads its outcome
    try:
        await wait_done(future, None)
    except BaseException:
        with anyio.CancelScope(shield=True):
            child.terminate()
            if not await wait_done(future, GRACE):
                child.kill()
                await wait_done(future, GRACE)
        raise
    return future.result()


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
