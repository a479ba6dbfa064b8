"""Timeouts that really stop work (SPEC 6): a built-in stuck in CPU-bound work (a
catastrophic regex) or in blocking I/O fails with ``Timeout`` on time, and nothing it
started (worker process or thread) outlives the run.

The end-to-end tests run the real CLI in a new session and then look in /proc for
any process left in that session (Linux only). Their time bounds are "does not
hang" bounds: the stuck work would otherwise run for minutes.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_process
import pytest

from asyncbatch import linescan
from asyncbatch.actions import _io, files, text
from asyncbatch.actions._params import ChecksumParams, NoParams
from asyncbatch.actions._params import SearchPatternParams
from asyncbatch.errors import NotARegularFile

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
    config = {
        "jobs": [
            {"timeout": 1, **stuck_job},
            {
                "name": "normal",
                "action": "search_pattern",
                "input": "normal.txt",
                "params": {"pattern": "a"},
            },
        ]
    }
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(config))
    return path


def _statuses(report_path: Path) -> dict[str, tuple[str, str | None]]:
    report = json.loads(report_path.read_text())
    return {
        job["name"]: (job["status"], job["error"] and job["error"]["type"])
        for job in report["jobs"]
    }


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

from asyncbatch.actions import _io


async def sleep_in_blocking_io(path, params):
    """A built-in stuck in a read that never returns (a hung NFS mount, say)."""
    await _io.run_blocking(time.sleep, 60)
    return {}
'''


@needs_proc
def test_action_stuck_in_blocking_io_times_out_and_the_process_exits_promptly(
    tmp_path: Path,
) -> None:
    """The stuck call's thread is a daemon: neither the end of the event loop nor
    the interpreter's exit waits for it."""
    (tmp_path / "stuck_io.py").write_text(STUCK_IO_MODULE)
    stuck = {"name": "stuck", "action": "stuck_io:sleep_in_blocking_io", "input": "normal.txt"}
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
    config = tmp_path / "batch.json"
    job = {"name": "stuck", "action": "search_pattern", "input": "stuck.txt"}
    config.write_text(json.dumps({"jobs": [{**job, "params": {"pattern": CATASTROPHIC}}]}))
    proc = _start_cli(config, "-o", str(tmp_path / "report.json"))
    scanning = _poll(
        lambda: [pid for pid in _workers(sid=proc.pid) if _ignores(pid, signal.SIGINT)]
    )
    assert len(scanning) == 1, _session(proc.pid)
    worker: int = scanning[0]
    return proc, worker


@needs_proc
def test_ctrl_c_to_the_process_group_stops_the_run_and_its_workers(tmp_path: Path) -> None:
    """Ctrl-C in a terminal reaches the worker too; it ignores it, and the parent,
    which decides what to cancel, kills it."""
    proc, worker = _start_stuck_search(tmp_path)
    os.killpg(proc.pid, signal.SIGINT)
    started = time.monotonic()
    _finish_cli(proc)
    assert time.monotonic() - started < HANG_BOUND
    assert proc.returncode == 130
    assert _statuses(tmp_path / "report.json") == {"stuck": ("cancelled", "Cancelled")}
    assert worker not in _workers()


@needs_proc
def test_a_worker_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path: Path) -> None:
    """No cleanup runs after SIGKILL; the kernel kills the worker (PR_SET_PDEATHSIG),
    which would otherwise run the catastrophic regex for minutes."""
    proc, worker = _start_stuck_search(tmp_path)
    proc.kill()
    _finish_cli(proc)
    assert worker not in _workers()


# --- search_pattern's worker process, in this process's event loop -------------------


async def _search(path: Path, pattern: str) -> dict[str, Any]:
    return await text.search_pattern(path, SearchPatternParams(pattern=pattern))


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
        assert await _search(normal, "a") == {"matches": 2, "matching_lines": 2}
        seen["idle"] = _workers(ppid=me)
        started = time.monotonic()
        with anyio.move_on_after(0.5):
            await _search(stuck, CATASTROPHIC)
        seen["cancel_took"] = time.monotonic() - started
        seen["after_cancel"] = _workers(ppid=me)
        assert await _search(normal, "b") == {"matches": 1, "matching_lines": 1}
        seen["at_end"] = _workers(ppid=me)

    anyio.run(main, backend="asyncio")
    assert len(seen["idle"]) == 1
    assert seen["cancel_took"] < 5
    assert seen["after_cancel"] == []  # the idle worker was reused, then killed
    assert len(seen["at_end"]) == 1
    assert _workers(ppid=me) == []


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
            assert _ignores(worker, signal.SIGTERM)
            os.kill(worker, signal.SIGINT)
            os.kill(worker, signal.SIGTERM)
            await anyio.sleep(0.2)
            survived.extend(_workers(ppid=me))
            group.cancel_scope.cancel()

    anyio.run(main, backend="asyncio")
    assert len(survived) == 1
    assert _workers(ppid=me) == []


async def test_input_swapped_for_a_fifo_before_the_workers_open_is_not_a_regular_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "input.txt"
    path.write_text("regular at stat time\n")
    real_stat_regular = _io.stat_regular

    async def stat_then_swap(target: Path) -> os.stat_result:
        result = await real_stat_regular(target)
        os.unlink(target)
        os.mkfifo(target)
        return result

    monkeypatch.setattr(_io, "stat_regular", stat_then_swap)
    with anyio.fail_after(10), pytest.raises(NotARegularFile, match=f"{path}: is a FIFO"):
        await _search(path, "x")


async def test_input_removed_before_the_workers_open_is_file_not_found_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's OSError crosses the process boundary intact (pickled)."""
    path = tmp_path / "input.txt"
    path.write_text("there at stat time\n")
    real_stat_regular = _io.stat_regular

    async def stat_then_remove(target: Path) -> os.stat_result:
        result = await real_stat_regular(target)
        os.unlink(target)
        return result

    monkeypatch.setattr(_io, "stat_regular", stat_then_remove)
    with pytest.raises(FileNotFoundError) as caught:
        await _search(path, "x")
    assert caught.value.filename == str(path)


def test_permission_error_keeps_its_file_name_through_pickling() -> None:
    """As the worker's OSErrors travel (root cannot provoke a real EACCES here)."""
    error = PermissionError(13, "Permission denied", "/data/secret.log")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.errno, copy.filename) == (PermissionError, 13, "/data/secret.log")


def test_scan_outcomes_are_plain_tuples(tmp_path: Path) -> None:
    """What crosses the process boundary must unpickle; our JobErrors would not."""
    path = tmp_path / "input.txt"
    path.write_bytes(b"ERROR x ERROR\n" + b"y" * 20 + b"\n")
    assert linescan.scan_file(str(path), "error", re.IGNORECASE, 4, 100) == ("ok", 2, 1)
    assert linescan.scan_file(str(path), "x", 0, 4, 10) == ("line_too_long",)
    assert linescan.scan_file(str(tmp_path), "x", 0, 4, 10) == ("not_regular", "directory")


def test_linescan_imports_neither_pydantic_aiofiles_anyio_nor_asyncio() -> None:
    """The worker imports it to unpickle the scan: it must stay cheap to import."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import asyncbatch.linescan"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "asyncbatch.linescan" in imported
    heavy = {"pydantic", "aiofiles", "anyio", "asyncio"}
    assert {name for name in imported if name.split(".")[0] in heavy} == set()


# --- the daemon-thread executor of blocking calls ------------------------------------


async def test_builtins_block_only_in_daemon_threads(tmp_path: Path) -> None:
    """Not in asyncio's default executor, whose threads the end of the run joins."""
    path = tmp_path / "input.txt"
    path.write_text("one ERROR\ntwo\n")
    await text.count_lines(path, NoParams())
    await text.count_words(path, NoParams())
    await files.checksum(path, ChecksumParams())
    await files.file_size(path, NoParams())
    await _search(path, "ERROR")
    non_daemon = [
        thread.name
        for thread in threading.enumerate()
        if not thread.daemon and thread is not threading.main_thread()
    ]
    assert non_daemon == []


async def test_run_blocking_returns_raises_and_stops_waiting_when_cancelled() -> None:
    assert await _io.run_blocking(sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError):
        await _io.run_blocking(divmod, 1, 0)
    release = threading.Event()
    started = time.monotonic()
    with anyio.move_on_after(0.1):
        await _io.run_blocking(release.wait, 30)
    assert time.monotonic() - started < 5
    release.set()


def test_executor_starts_threads_on_demand_up_to_its_cap_and_idle_ones_exit() -> None:
    executor = _io._DaemonThreadExecutor(max_workers=2, idle_seconds=0.05)
    release = threading.Event()
    names: list[str] = []

    def blocked(i: int) -> int:
        names.append(threading.current_thread().name)
        release.wait(10)
        return i

    futures = [executor.submit(blocked, i) for i in range(5)]
    assert _poll(lambda: len(names) == 2)
    assert executor._threads == 2  # the other three calls wait for a thread
    release.set()
    assert [future.result(timeout=10) for future in futures] == [0, 1, 2, 3, 4]
    assert all(thread.daemon for thread in threading.enumerate() if thread.name == "asyncbatch-io")
    assert _poll(lambda: executor._threads == 0)
    assert executor.submit(pow, 2, 10).result(timeout=10) == 1024  # starts one again


def test_executor_runs_a_call_even_if_its_future_is_cancelled() -> None:
    """A cancelled caller stops waiting; a close submitted while cancelled still runs."""
    executor = _io._DaemonThreadExecutor(max_workers=1, idle_seconds=1)
    gate = threading.Event()
    ran = threading.Event()
    executor.submit(gate.wait, 10)
    queued = executor.submit(ran.set)
    assert not queued.cancel()
    gate.set()
    assert ran.wait(10)
