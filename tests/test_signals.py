"""SIGINT, SIGTERM and SIGHUP at every moment of ``asyncbatch run``: while the config
loads, while jobs run, after the last job ended, while the report is written and the
summary printed. Each ends in exit 130, 143 or 129, never a traceback; once the jobs
are known, in a whole report and the summary. A terminal that closes under a run (its
SIGHUP, then every write to it failing) is one more way to be stopped. Real processes,
real signals; the moments a test cannot aim at are reached by signalling at many
delays."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import add_module, read_json, summary, write_json

from asyncbatch import load_config
from asyncbatch.options import RunOptions
from asyncbatch.session import run_session

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="POSIX signals and /proc are needed"
)

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}

SELF_SIGNAL = """\
import os, signal


async def kill_self(path, params):
    os.kill(os.getpid(), getattr(signal, params["signal"]))
    return {"sent": params["signal"]}


async def mark(path, params):
    return {"marked": path.name}


async def wait(path, params):
    import anyio

    await anyio.sleep(30)
    return {}
"""


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "asyncbatch", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the run did not exit within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system time the process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def many_jobs(folder: Path, count: int) -> Path:
    (folder / "f.txt").write_text("x\n", encoding="utf-8")
    jobs = [{"name": f"j{i}", "action": "file_size", "input": "f.txt"} for i in range(count)]
    return write_json(folder / "batch.json", {"jobs": jobs})


def assert_whole(report: dict[str, Any], printed: dict[str, int], total: int) -> None:
    """A whole report: every job once, each with a final status, the summary agreeing."""
    assert [job["name"] for job in report["jobs"]] == [f"j{i}" for i in range(total)]
    assert {job["status"] for job in report["jobs"]} <= {"succeeded", "cancelled"}
    assert report["summary"] == printed
    assert printed["total_jobs"] == total


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_config_loads_runs_nothing_and_exits_with_its_code(
    tmp_path: Path, signum: signal.Signals
) -> None:
    config = many_jobs(tmp_path, 100_000)  # a few seconds of loading
    report = tmp_path / "report.json"
    proc = start(["run", str(config), "-o", str(report)], tmp_path)
    while cpu_seconds(proc.pid) < 0.5:  # past the imports, into the loading
        assert proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signum)
    stdout, stderr = finish(proc)
    assert proc.returncode == CODES[signum], stderr
    assert "Traceback" not in stderr
    assert "interrupted while loading the config; nothing ran" in stderr
    assert stdout == ""
    assert not report.exists()
    assert not (tmp_path / "report.json.journal").exists()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_as_the_last_job_ends_still_writes_the_whole_report(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """The last job signals its own process as it returns: the run has ended, the
    report and summary are still written, and the exit code says it was stopped."""
    module = add_module(tmp_path, SELF_SIGNAL, "selfsig")
    jobs = [
        {"name": "first", "action": f"{module}:mark", "input": "."},
        {
            "name": "last",
            "action": f"{module}:kill_self",
            "input": ".",
            "params": {"signal": signum.name},
            "depends_on": ["first"],
        },
    ]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    report = tmp_path / "report.json"
    proc = start(
        ["run", str(config), "-o", str(report), "--junit", str(tmp_path / "j.xml")], tmp_path
    )
    stdout, stderr = finish(proc)
    assert proc.returncode == CODES[signum], stderr
    assert "Traceback" not in stderr
    printed = summary(stdout)
    written = read_json(report)
    assert written["summary"] == printed
    assert [job["status"] for job in written["jobs"]] == ["succeeded", "succeeded"]
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")


@pytest.mark.slow
def test_a_sigterm_at_any_moment_ends_in_a_whole_report_the_summary_and_143(
    tmp_path: Path,
) -> None:
    """Signalled at delays spread over a whole run (loading, running, the last jobs,
    the report being written, the summary being printed): every outcome is one of
    the promised ones, never a traceback or a half report."""
    total = 10_000
    config = many_jobs(tmp_path, total)
    started = time.monotonic()
    clean = start(["run", str(config), "-o", str(tmp_path / "clean.json")], tmp_path)
    finish(clean)
    whole_run = time.monotonic() - started
    moments = [whole_run * step / 8 for step in range(1, 10)]  # a little past the end too
    seen = set()
    for number, delay in enumerate(moments):
        report = tmp_path / f"report-{number}.json"
        proc = start(["run", str(config), "-o", str(report)], tmp_path)
        time.sleep(delay)
        signalled = proc.poll() is None
        if signalled:
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = finish(proc)
        assert "Traceback" not in stderr, (delay, stderr)
        if not signalled or proc.returncode == 0:  # it came once the exit code was decided
            assert summary(stdout) == read_json(report)["summary"]
            assert summary(stdout)["succeeded"] == total
            seen.add("finished before the signal")
            continue
        assert proc.returncode == 143, (delay, stderr)
        if "nothing ran" in stderr:  # the signal came while the config loaded
            assert stdout == ""
            assert not report.exists()
            seen.add("loading")
            continue
        printed = summary(stdout)
        assert_whole(read_json(report), printed, total)
        seen.add("running" if printed["cancelled"] else "after the last job")
    assert {"loading", "running"} <= seen, seen


@pytest.mark.slow
def test_a_second_sigint_while_jobs_are_marked_cancelled_exits_at_once(
    tmp_path: Path,
) -> None:
    """The first SIGINT stops a run of many jobs; the second, sent while the
    unfinished ones are being marked cancelled and the report written, ends the
    process at once with 130."""
    config = many_jobs(tmp_path, 60_000)
    report = tmp_path / "report.json"
    proc = start(["run", str(config), "-o", str(report), "-j", "1"], tmp_path)
    journal = tmp_path / "report.json.journal"
    deadline = time.monotonic() + 60
    while not journal.exists() or journal.stat().st_size < 1000:
        assert proc.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = finish(proc, 5)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    for line in journal.read_text(encoding="utf-8").splitlines()[:-1]:
        json.loads(line)  # every whole line of the journal is intact


def test_a_signal_during_an_in_process_session_stops_it_with_the_exit_code(
    tmp_path: Path,
) -> None:
    """run_session, the Python side of the command: the signal comes from a job."""
    module = add_module(tmp_path, SELF_SIGNAL, "selfsig")
    jobs = [
        {
            "name": "sig",
            "action": f"{module}:kill_self",
            "input": ".",
            "params": {"signal": "SIGINT"},
        },
        {"name": "after", "action": f"{module}:wait", "input": ".", "depends_on": ["sig"]},
    ]
    config = load_config(write_json(tmp_path / "batch.json", {"jobs": jobs}))
    outcome = run_session(config, RunOptions(output=tmp_path / "report.json"))
    assert outcome.exit_code == 130
    statuses = [job.status for job in outcome.report.jobs]
    assert statuses == ["succeeded", "cancelled"]
    assert read_json(tmp_path / "report.json")["summary"]["cancelled"] == 1


SETTLED = """
import signal, sys, threading, time
from asyncbatch.interrupts import Interruptions

worker = threading.Thread(target=time.sleep, args=(0.5,))  # started before, as the run's are
worker.start()
with Interruptions() as interruptions:
    interruptions.settled()
signal.pthread_kill(worker.ident, signal.SIGTERM)  # taken by another thread, after leaving
worker.join()
print("still here")
"""


def test_once_the_exit_code_is_decided_a_signal_to_any_thread_kills_nothing() -> None:
    """A process-wide SIGTERM may be taken by any thread (the progress display's,
    a program's): blocking it in the main thread alone let it kill the process
    between the summary and the exit code (exit -15, seen once on CI)."""
    done = subprocess.run(
        [sys.executable, "-c", SETTLED], capture_output=True, text=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout) == (0, "still here\n"), done.stderr


IN_A_TERMINAL = """\
import fcntl, os, subprocess, sys, termios, time

def controlling_terminal():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

master, slave = os.openpty()
run = subprocess.Popen(
    [sys.executable, "-m", "asyncbatch", *sys.argv[2:]],
    stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling_terminal,
)
os.close(slave)
while not os.path.exists(sys.argv[1]):  # the jobs have started
    time.sleep(0.02)
time.sleep(0.3)
os.close(master)  # the terminal closes, as a window or an ssh session does
print(run.wait(timeout=60))
"""
"""Runs asyncbatch with a pseudo-terminal as its controlling terminal (progress on
it), waits for a file its jobs make, then closes the terminal; prints the exit code."""


@pytest.mark.slow
def test_a_terminal_that_closes_stops_the_run_like_sigterm_and_exits_129(tmp_path: Path) -> None:
    """The kernel's SIGHUP, then EIO on every write to the terminal (the progress
    display's last one included): the running program's group is ended, the report
    written with the unfinished jobs cancelled, exit 129. It was no report, exit 1 (an
    EIO traceback), and the programs ran on."""
    marker = f"{os.getpid()}{time.monotonic_ns() % 10**9}"
    started = tmp_path / "started"
    shell = f"trap '' TERM HUP; touch {started}; exec sleep 1{marker}"
    jobs = [
        {"name": "stubborn", "action": "command", "input": ".", "params": {"shell": shell}},
        {
            "name": "plain",
            "action": "command",
            "input": ".",
            "params": {"argv": ["sleep", f"2{marker}"]},
        },
    ]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    script = tmp_path / "terminal.py"
    script.write_text(IN_A_TERMINAL, encoding="utf-8")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(script), str(started), "run", str(config), "-o", str(report)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        assert done.stdout.strip() == "129", done.stderr
        written = read_json(report)
        assert [job["status"] for job in written["jobs"]] == ["cancelled", "cancelled"]
        assert written["summary"]["cancelled"] == 2
        assert _running(marker) == []
    finally:
        for pid in _running(marker):
            os.kill(pid, signal.SIGKILL)


def _running(marker: str) -> list[int]:
    """Pids of the processes whose command line holds ``marker`` (``pgrep -f``)."""
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]
