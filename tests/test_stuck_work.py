"""Timeouts that really stop work (SPEC 6): a built-in stuck in CPU-bound work (a
catastrophic regex) or in blocking I/O fails with ``Timeout`` on time, and nothing it
started (worker process or thread) outlives the run.

The end-to-end tests run the real CLI in a new session and then look in /proc for
any process left in that session (Linux only). Their time bounds are "does not
hang" bounds: the stuck work would otherwise run for minutes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from support import add_module, read_json, run, write_json

from asyncbatch import load_config
from asyncbatch.actions import builtins
from asyncbatch.actions._params import ChecksumParams, NoParams, SearchPatternParams
from asyncbatch.actions._search import PatternSearch
from asyncbatch.engine import LocalExecutor
from asyncbatch.errors import (
    AsyncbatchError,
    LineTooLong,
    NotARegularFile,
    OutsideRoot,
    describe_error,
)
from asyncbatch.files import _threads
from asyncbatch.files.scan import scan_file
from asyncbatch.files.stream import scan_in_process
from asyncbatch.kernel import Kernel, Scanner, Tuning

CATASTROPHIC = "(a+)+$"
"""Backtracks for minutes in ``re`` over STUCK_LINE, holding the GIL throughout."""
STUCK_LINE = "a" * 30 + "!\n"
HANG_BOUND = 8.0
"""Seconds within which a run with a 1 s timeout must be over: not a timing claim."""

pytestmark = pytest.mark.anyio

needs_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/self/stat").exists(),
    reason="finds processes through Linux's /proc",
)

# --- processes, seen through /proc ---------------------------------------------------


def _processes() -> list[dict[str, Any]]:
    """Every live (not zombie) process: pid, ppid, session and command line."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            data = stat_file.read_text()
            cmdline = (stat_file.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # it ended while we looked
            continue
        # The command name is in parentheses and may hold spaces or parentheses.
        state, ppid, _pgrp, session = data[data.rindex(")") + 2 :].split()[:4]
        if state != "Z":
            found.append(
                {
                    "pid": int(stat_file.parent.name),
                    "ppid": int(ppid),
                    "session": int(session),
                    "cmdline": cmdline.decode(errors="replace").strip(),
                }
            )
    return found


def _session(sid: int) -> list[dict[str, Any]]:
    return [proc for proc in _processes() if proc["session"] == sid]


def _workers(*, ppid: int | None = None, sid: int | None = None) -> list[int]:
    """pids of anyio worker processes, children of ``ppid`` or in session ``sid``."""
    return [
        proc["pid"]
        for proc in _processes()
        if "anyio.to_process" in proc["cmdline"]
        and (ppid is None or proc["ppid"] == ppid)
        and (sid is None or proc["session"] == sid)
    ]


def _ignores(pid: int, signum: int) -> bool:
    """Whether process ``pid`` ignores signal ``signum`` (SigIgn in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    found = re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.MULTILINE)
    return found is not None and bool(int(found.group(1), 16) & (1 << (signum - 1)))


def _poll(get: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``get()`` once it is truthy, polling; its last (falsy) value after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := get()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


# --- the real CLI ---------------------------------------------------------------------


def _start_cli(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "asyncbatch", "run", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish_cli(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for the CLI (killing its whole session if it hangs) and check it left
    nothing running in its session."""
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the CLI hung")
    # A process the CLI left behind would still be in its session (sid == its pid);
    # one the kernel is killing (PR_SET_PDEATHSIG) gets a moment to go.
    assert _poll(lambda: not _session(proc.pid), timeout=2), _session(proc.pid)
    return stdout, stderr


def _stuck_batch(tmp_path: Path, stuck_job: dict[str, Any]) -> Path:
    """A config with ``stuck_job`` (timeout 1 s) and a search that must succeed."""
    (tmp_path / "normal.txt").write_text("a\nb a\n")
    normal = {
        "name": "normal",
        "action": "search_pattern",
        "input": "normal.txt",
        "params": {"pattern": "a"},
    }
    return write_json(tmp_path / "batch.json", {"jobs": [{"timeout": 1, **stuck_job}, normal]})


def _statuses(report_path: Path) -> dict[str, tuple[str, str | None]]:
    report = read_json(report_path)
    return {
        job["name"]: (job["status"], job["error"] and job["error"]["type"])
        for job in report["jobs"]
    }


@pytest.mark.slow
@needs_proc
def test_catastrophic_regex_times_out_on_time_and_leaves_no_process_behind(
    tmp_path: Path,
) -> None:
    (tmp_path / "stuck.txt").write_text(STUCK_LINE)
    stuck = {
        "name": "stuck",
        "action": "search_pattern",
        "input": "stuck.txt",
        "params": {"pattern": CATASTROPHIC},
    }
    config = _stuck_batch(tmp_path, stuck)
    started = time.monotonic()
    proc = _start_cli(config, "-o", str(tmp_path / "report.json"))
    stdout, stderr = _finish_cli(proc)
    assert time.monotonic() - started < HANG_BOUND
    assert proc.returncode == 1, stderr
    assert json.loads(stdout)["failed"] == 1
    assert _statuses(tmp_path / "report.json") == {
        "stuck": ("failed", "Timeout"),
        "normal": ("succeeded", None),
    }


STUCK_IO_MODULE = '''
import time

from asyncbatch.files._threads import run_blocking


async def sleep_in_blocking_io(path, params):
    """Stuck, as a built-in's read would be, in a call that never returns (a hung
    NFS mount, say), in one of asyncbatch's daemon threads."""
    await run_blocking(time.sleep, 60)
    return {}
'''


@pytest.mark.slow
@needs_proc
def test_action_stuck_in_blocking_io_times_out_and_the_process_exits_promptly(
    tmp_path: Path,
) -> None:
    """The stuck call's thread is a daemon: neither the end of the event loop nor
    the interpreter's exit waits for it."""
    module = add_module(tmp_path, STUCK_IO_MODULE, prefix="stuck_io")
    stuck = {"name": "stuck", "action": f"{module}:sleep_in_blocking_io", "input": "normal.txt"}
    config = _stuck_batch(tmp_path, stuck)
    started = time.monotonic()
    proc = _start_cli(config, "-o", str(tmp_path / "report.json"))
    _, stderr = _finish_cli(proc)
    assert time.monotonic() - started < HANG_BOUND
    assert proc.returncode == 1, stderr
    assert _statuses(tmp_path / "report.json") == {
        "stuck": ("failed", "Timeout"),
        "normal": ("succeeded", None),
    }


def _start_stuck_search(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """The CLI running a catastrophic search without a timeout, and its worker's pid
    once the worker is scanning (it then ignores SIGINT)."""
    (tmp_path / "stuck.txt").write_text(STUCK_LINE)
    job = {"name": "stuck", "action": "search_pattern", "input": "stuck.txt"}
    config = write_json(
        tmp_path / "batch.json", {"jobs": [{**job, "params": {"pattern": CATASTROPHIC}}]}
    )
    proc = _start_cli(config, "-o", str(tmp_path / "report.json"))
    scanning = _poll(
        lambda: [pid for pid in _workers(sid=proc.pid) if _ignores(pid, signal.SIGINT)]
    )
    assert len(scanning) == 1, _session(proc.pid)
    worker: int = scanning[0]
    return proc, worker


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_ctrl_c_to_the_process_group_stops_the_run_and_its_workers(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    """Ctrl-C in a terminal (or the SIGHUP of a terminal that closes) reaches the
    worker too; it ignores it, and the parent, which decides what to cancel, kills
    it."""
    proc, worker = _start_stuck_search(tmp_path)
    assert _ignores(worker, signum)
    os.killpg(proc.pid, signum)
    started = time.monotonic()
    _finish_cli(proc)
    assert time.monotonic() - started < HANG_BOUND
    assert proc.returncode == code
    assert _statuses(tmp_path / "report.json") == {"stuck": ("cancelled", "Cancelled")}
    assert worker not in _workers()


@pytest.mark.slow
@needs_proc
def test_a_worker_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path: Path) -> None:
    """No cleanup runs after SIGKILL; the kernel kills the worker (PR_SET_PDEATHSIG),
    which would otherwise run the catastrophic regex for minutes."""
    proc, worker = _start_stuck_search(tmp_path)
    proc.kill()
    _finish_cli(proc)
    assert worker not in _workers()


ORPHANED_WORKER = """
import os, subprocess, sys

worker = '''
import os, sys, time
from asyncbatch.actions.builtins import SEARCH
from asyncbatch.files.scan import scan_file_in_worker
from asyncbatch.kernel import Tuning

while os.getppid() == int(sys.argv[3]):  # until the parent is gone
    time.sleep(0.01)
print("scanning", file=sys.stderr, flush=True)
parent = int(sys.argv[3])  # as a real parent passes its pid along with the scan
scan_file_in_worker(SEARCH, sys.argv[1], {"pattern": sys.argv[2]}, Tuning(), None, parent)
'''
subprocess.Popen([sys.executable, "-c", worker, *sys.argv[1:], str(os.getpid())])
"""


@pytest.mark.slow
@needs_proc
def test_a_worker_whose_parent_died_before_it_started_scanning_does_not_scan_on(
    tmp_path: Path,
) -> None:
    """The parent was killed after handing the worker its scan, before the worker
    made the kernel kill it with its parent (PR_SET_PDEATHSIG is not retroactive):
    the worker must notice it is orphaned and stop, not run the catastrophic regex
    for minutes. (Without this, the test above fails now and then under load.)"""
    stuck = tmp_path / "stuck.txt"
    stuck.write_text(STUCK_LINE)
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as errors:
        parent = subprocess.Popen(
            [sys.executable, "-c", ORPHANED_WORKER, str(stuck), CATASTROPHIC],
            stderr=errors,
            start_new_session=True,
        )
        try:
            assert parent.wait(timeout=30) == 0
            left = _poll(lambda: not _session(parent.pid), timeout=5)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(parent.pid, signal.SIGKILL)  # an orphan still scanning
    assert stderr.read_text() == "scanning\n"  # it got to the scan (and no traceback)
    assert left, "the orphaned worker went on scanning"


# --- search_pattern's worker process, in this process's event loop -------------------


async def _search(path: Path, pattern: str) -> dict[str, Any]:
    return await builtins.search_pattern(path, SearchPatternParams(pattern=pattern))


@pytest.mark.slow
@needs_proc
def test_cancelled_search_returns_promptly_and_no_worker_outlives_the_run(
    tmp_path: Path,
) -> None:
    """A cancelled search kills its worker at once; an idle one is killed when the
    event loop ends (anyio's process pool shutdown)."""
    stuck = tmp_path / "stuck.txt"
    stuck.write_text(STUCK_LINE)
    normal = tmp_path / "normal.txt"
    normal.write_text("ab\na\n")
    me = os.getpid()
    seen: dict[str, Any] = {}

    async def main() -> None:
        assert await _search(normal, "a+") == {"matches": 2, "matching_lines": 2}
        seen["idle"] = _workers(ppid=me)
        started = time.monotonic()
        with anyio.move_on_after(0.5):
            await _search(stuck, CATASTROPHIC)
        seen["cancel_took"] = time.monotonic() - started
        seen["after_cancel"] = _workers(ppid=me)
        assert await _search(normal, "b+") == {"matches": 1, "matching_lines": 1}
        seen["at_end"] = _workers(ppid=me)

    anyio.run(main, backend="asyncio")
    assert len(seen["idle"]) == 1
    assert seen["cancel_took"] < 5
    assert seen["after_cancel"] == []  # the idle worker was reused, then killed
    assert len(seen["at_end"]) == 1
    assert _workers(ppid=me) == []


@pytest.mark.slow
@needs_proc
def test_a_search_for_plain_literals_needs_no_worker_process(tmp_path: Path) -> None:
    """Literals are counted in linear time, so nothing has to be killable: no worker
    process is started for them, in the action function or in a run."""
    normal = tmp_path / "normal.txt"
    normal.write_text("ERROR ab\nFATAL\nok\n")
    me = os.getpid()
    seen: dict[str, Any] = {}

    async def main() -> None:
        for pattern in ("ERROR", "ERROR|FATAL", "(?:ERROR|FATAL)"):
            assert await _search(normal, pattern) != {}
        seen["literals"] = _workers(ppid=me)
        assert await _search(normal, "ERR?OR") == {"matches": 1, "matching_lines": 1}
        seen["regex"] = _workers(ppid=me)

    anyio.run(main, backend="asyncio")
    assert seen["literals"] == []
    assert len(seen["regex"]) == 1


@needs_proc
def test_search_worker_ignores_sigint_and_sigterm(tmp_path: Path) -> None:
    stuck = tmp_path / "stuck.txt"
    stuck.write_text(STUCK_LINE)
    me = os.getpid()
    survived: list[int] = []

    def scanning_workers() -> list[int]:  # a worker ignores SIGINT once it scans
        return [pid for pid in _workers(ppid=me) if _ignores(pid, signal.SIGINT)]

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(_search, stuck, CATASTROPHIC)
            # Polled in a thread, so the event loop can start the worker meanwhile.
            scanning = await anyio.to_thread.run_sync(_poll, scanning_workers)
            (worker,) = scanning
            # SIGTERM is ignored right after SIGINT: poll across that instant.
            assert await anyio.to_thread.run_sync(_poll, lambda: _ignores(worker, signal.SIGTERM))
            os.kill(worker, signal.SIGINT)
            os.kill(worker, signal.SIGTERM)
            await anyio.sleep(0.2)
            survived.extend(_workers(ppid=me))
            group.cancel_scope.cancel()

    anyio.run(main, backend="asyncio")
    assert len(survived) == 1
    assert _workers(ppid=me) == []


# Kernels that do their mischief when started: after the worker's ``stat``, before its
# open (module level: the worker process imports them by reference).


def fifo_then_search(path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> Scanner:
    """Swaps the input for a FIFO with no writer (opening it to read would block)."""
    os.unlink(path)
    os.mkfifo(path)
    return PatternSearch(path, size, params, tuning)


def remove_then_search(path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> Scanner:
    os.unlink(path)
    return PatternSearch(path, size, params, tuning)


def refuse(path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> Scanner:
    """As an open without read permission fails (root cannot provoke a real EACCES)."""
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)


async def test_input_swapped_for_a_fifo_before_the_workers_open_is_not_a_regular_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "input.txt"
    path.write_text("regular at stat time\n")
    kernel = Kernel(fifo_then_search, isolated=True)
    with anyio.fail_after(10), pytest.raises(NotARegularFile) as caught:
        await scan_in_process(kernel, path, {"pattern": "x"})
    assert str(caught.value) == f"{path}: is a FIFO, not a regular file"
    assert path.is_fifo()  # the swap happened, and the open did not block


async def test_input_removed_before_the_workers_open_is_file_not_found_naming_it(
    tmp_path: Path,
) -> None:
    """The worker's OSError crosses the process boundary intact (pickled), and a run
    reports it naming the input as the config wrote it."""
    path = tmp_path / "input.txt"
    path.write_text("there at stat time\n")
    kernel = Kernel(remove_then_search, isolated=True)
    with anyio.fail_after(10), pytest.raises(FileNotFoundError) as caught:
        await scan_in_process(kernel, path, {"pattern": "x"})
    assert (caught.value.errno, caught.value.filename) == (errno.ENOENT, str(path))
    assert describe_error(caught.value) == {
        "type": "FileNotFoundError",
        "message": f"{path}: no such file",
    }


def _same_error(copy: BaseException, original: BaseException) -> None:
    """``copy`` is ``original`` as it was raised: type, message, attributes."""
    assert type(copy) is type(original)
    assert str(copy) == str(original)
    assert copy.args == original.args
    assert describe_error(copy) == describe_error(original)
    if isinstance(original, AsyncbatchError):
        assert vars(copy) == vars(original)
    if isinstance(original, OSError):
        assert isinstance(copy, OSError)
        assert (copy.errno, copy.strerror, copy.filename) == (
            original.errno,
            original.strerror,
            original.filename,
        )


async def test_errors_raised_in_a_worker_process_reach_the_parent_as_raised(
    tmp_path: Path,
) -> None:
    """What crosses the process boundary is the exception itself (pickled): the
    same type, message and attributes as the same scan raises in this process."""
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"ERROR x ERROR\n" + b"y" * 20 + b"\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(lines)
    search = builtins.SEARCH
    cases: list[tuple[type[BaseException], Kernel, Path, dict[str, Any], Tuning, str | None]] = [
        (NotARegularFile, search, tmp_path, {"pattern": "x"}, Tuning(), None),
        (OutsideRoot, search, root / "out", {"pattern": "x"}, Tuning(), str(root)),
        (LineTooLong, search, lines, {"pattern": "x"}, Tuning(max_line_bytes=10), None),
        (PermissionError, Kernel(refuse), lines, {}, Tuning(), None),
    ]
    for kind, kernel, path, params, tuning, confined in cases:
        with pytest.raises(kind) as here:
            scan_file(kernel, str(path), params, tuning, confined)
        with anyio.fail_after(30), pytest.raises(kind) as there:
            await scan_in_process(kernel, path, params, tuning, confined)
        _same_error(there.value, here.value)
    found, _ = await scan_in_process(search, lines, {"pattern": "error", "ignore_case": True})
    assert found == {
        "matches": 2,
        "matching_lines": 1,
    }


WORKER_SIDE = [
    "asyncbatch.files.scan",
    "asyncbatch.files.confine",
    "asyncbatch.actions._kernels",
    "asyncbatch.actions._search",
    "asyncbatch.actions._regexplan",
    "asyncbatch.errors",
    "asyncbatch.registry",
]


def test_worker_side_modules_import_neither_pydantic_aiofiles_anyio_nor_asyncio() -> None:
    """A worker process (or a Dask worker) imports them to unpickle a scan: they
    must stay cheap to import. Checked in a fresh interpreter."""
    code = (
        "import json, sys\n"
        f"for name in {WORKER_SIDE!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    imported = set(json.loads(done.stdout))
    assert set(WORKER_SIDE) <= imported
    heavy = {"pydantic", "aiofiles", "anyio", "asyncio"}
    assert {name for name in imported if name.split(".")[0] in heavy} == set()


# --- the daemon-thread executor of blocking calls ------------------------------------

ROUTES: dict[str, tuple[Tuning, int]] = {
    "batch": (Tuning(), 2),
    "streamed": (Tuning(chunk_bytes=4096, small_file_bytes=0), 1),
    "worker": (Tuning(chunk_bytes=4096, small_file_bytes=0, process_min_bytes=1), 2),
}


def _non_daemon_threads() -> list[str]:
    return [
        thread.name
        for thread in threading.enumerate()
        if not thread.daemon and thread is not threading.main_thread()
    ]


@pytest.mark.parametrize("route", list(ROUTES))
async def test_builtins_block_only_in_daemon_threads(tmp_path: Path, route: str) -> None:
    """Not in asyncio's default executor, whose threads the end of the run joins:
    neither awaited as action functions nor run by the local executor, on each of
    its routes."""
    path = tmp_path / "input.txt"
    path.write_text("one ERROR\ntwo\n")
    await builtins.count_lines(path, NoParams())
    await builtins.count_words(path, NoParams())
    await builtins.checksum(path, ChecksumParams())
    await builtins.file_size(path, NoParams())
    await _search(path, "ERROR")
    assert _non_daemon_threads() == []
    params: dict[str, dict[str, Any]] = {"search_pattern": {"pattern": "ERROR"}}
    jobs = [
        {"name": name, "action": name, "input": "input.txt", "params": params.get(name, {})}
        for name in ("count_lines", "count_words", "checksum", "file_size", "search_pattern")
    ]
    config = load_config(write_json(tmp_path / "batch.json", {"jobs": jobs}))
    tuning, cpus = ROUTES[route]
    report = await run(config, executor=LocalExecutor(tuning, cpus=cpus))
    assert [job.status for job in report.jobs] == ["succeeded"] * 5
    assert _non_daemon_threads() == []


async def test_run_blocking_returns_raises_and_stops_waiting_when_cancelled() -> None:
    assert await _threads.run_blocking(sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError):
        await _threads.run_blocking(divmod, 1, 0)
    release = threading.Event()
    started = time.monotonic()
    with anyio.move_on_after(0.1):
        await _threads.run_blocking(release.wait, 30)
    assert time.monotonic() - started < 5
    release.set()


def test_executor_starts_threads_on_demand_up_to_its_cap_and_idle_ones_exit() -> None:
    executor = _threads.DaemonThreadExecutor(max_workers=2, idle_seconds=0.05)
    release = threading.Event()
    threads: list[threading.Thread] = []

    def blocked(i: int) -> int:
        threads.append(threading.current_thread())
        release.wait(10)
        return i

    futures = [executor.submit(blocked, i) for i in range(5)]
    assert _poll(lambda: len(threads) == 2)
    assert not any(future.done() for future in futures)  # the other three wait for a thread
    release.set()
    assert [future.result(timeout=10) for future in futures] == [0, 1, 2, 3, 4]
    assert len(set(threads)) == 2  # five calls, two threads
    assert all(thread.daemon and thread.name == "asyncbatch-io" for thread in threads)
    assert _poll(lambda: not any(thread.is_alive() for thread in threads))  # idle: they exit
    assert executor.submit(pow, 2, 10).result(timeout=10) == 1024  # starts one again


def test_executor_runs_a_call_even_if_its_future_is_cancelled() -> None:
    """A cancelled caller stops waiting; a close submitted while cancelled still runs."""
    executor = _threads.DaemonThreadExecutor(max_workers=1, idle_seconds=1)
    gate = threading.Event()
    ran = threading.Event()
    executor.submit(gate.wait, 10)
    queued = executor.submit(ran.set)
    assert not queued.cancel()
    gate.set()
    assert ran.wait(10)
