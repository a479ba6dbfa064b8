"""``--executor dask`` against a real scheduler and worker started on 127.0.0.1 as
separate processes (``dask scheduler``, ``dask worker``), as a user would run them.
The reports of dask runs must equal local runs apart from timings."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="distributed is not installed (pip install 'asyncbatch[dask]')",
)

DATA = Path(__file__).resolve().parent.parent / "data"
START_TIMEOUT = 30.0
RUN_TIMEOUT = 60.0
SLOW_ACTION = """\
import anyio


async def sleepy(path, params):
    await anyio.sleep(30)
    return {"slept": 30}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"{log.name}: no {text!r} in time:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def plugins_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with an importable ``slow`` module (a ``module:function`` action)."""
    directory = tmp_path_factory.mktemp("plugins")
    (directory / "slow.py").write_text(SLOW_ACTION, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory, plugins_dir: Path) -> Iterator[str]:
    """``dask scheduler`` and one ``dask worker`` (2 threads) on loopback; the worker
    can import the ``slow`` module. Both process groups are killed at the end."""
    logs = tmp_path_factory.mktemp("dask-logs")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(plugins_dir)}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        sched = _start(
            ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            logs / "scheduler.log",
            env,
        )
        processes.append(sched)
        _wait_for(logs / "scheduler.log", "Scheduler at", sched)
        worker = _start(
            ["worker", address, "--nworkers", "1", "--nthreads", "2", "--no-dashboard"],
            logs / "worker.log",
            env,
        )
        processes.append(worker)
        _wait_for(logs / "worker.log", "Registered to", worker)
        yield address
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):  # the group may be gone already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "asyncbatch", "run", "--no-progress", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def _jobs(report: Path) -> list[dict[str, Any]]:
    """The report's jobs without their timings."""
    jobs: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))["jobs"]
    return [{key: value for key, value in job.items() if key != "duration_ms"} for job in jobs]


def _compare(config: Path, tmp_path: Path, *extra: str) -> list[dict[str, Any]]:
    """Run ``config`` locally and with ``extra`` (a dask executor); same exit code
    and the same jobs apart from timings. Returns the jobs."""
    local = _run([str(config), "-o", str(tmp_path / "local.json")], config.parent)
    dask = _run([str(config), "-o", str(tmp_path / "dask.json"), *extra], config.parent)
    assert dask.returncode == local.returncode, dask.stderr
    assert dask.stdout == local.stdout
    jobs = _jobs(tmp_path / "dask.json")
    assert jobs == _jobs(tmp_path / "local.json")
    return jobs


def test_the_sample_config_reports_as_locally(scheduler: str, tmp_path: Path) -> None:
    jobs = _compare(
        DATA / "batch_config.json", tmp_path, "--executor", "dask", "--scheduler", scheduler
    )
    assert [job["status"] for job in jobs] == ["succeeded"] * 4


def test_globs_and_a_missing_file_report_as_locally(scheduler: str, tmp_path: Path) -> None:
    shutil.copytree(DATA / "logs", tmp_path / "logs")
    (tmp_path / "logs" / "extra.log").write_text("one\ntwo ERROR\nthree\n", encoding="utf-8")
    config = tmp_path / "batch.json"
    config.write_text(
        json.dumps(
            {
                "jobs": [
                    {"name": "lines", "action": "count_lines", "input": "logs/*.log"},
                    {
                        "name": "errors",
                        "action": "search_pattern",
                        "input": "logs/*.log",
                        "params": {"pattern": "ERROR"},
                        "depends_on": ["lines"],
                    },
                    {"name": "gone", "action": "count_words", "input": "missing.txt"},
                    {
                        "name": "after-gone",
                        "action": "checksum",
                        "input": "logs/extra.log",
                        "depends_on": ["gone"],
                    },
                ]
            }
        ),
        encoding="utf-8",
    )
    jobs = _compare(config, tmp_path, "--executor", "dask", "--scheduler", scheduler)
    by_name = {job["name"]: job for job in jobs}
    assert by_name["gone"]["status"] == "failed"
    assert by_name["gone"]["error"] == {
        "type": "FileNotFoundError",
        "message": "missing.txt: no such file",
    }
    assert by_name["after-gone"]["status"] == "skipped"
    assert sum(job["status"] == "succeeded" for job in jobs) >= 4


def test_an_unreachable_scheduler_is_exit_2_before_any_job(tmp_path: Path) -> None:
    started = time.monotonic()
    done = _run(
        [
            str(DATA / "batch_config.json"),
            "-o",
            str(tmp_path / "report.json"),
            "--executor",
            "dask",
            "--scheduler",
            f"tcp://127.0.0.1:{_free_port()}",
            "--scheduler-timeout",
            "2",
        ],
        tmp_path,
    )
    assert done.returncode == 2
    assert "cannot reach the Dask scheduler" in done.stderr
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no report, no journal left behind
    assert time.monotonic() - started < 15


def test_a_scheduler_needs_the_dask_executor(tmp_path: Path) -> None:
    done = _run([str(DATA / "batch_config.json"), "--scheduler", "tcp://127.0.0.1:1"], tmp_path)
    assert done.returncode == 2
    assert "--scheduler needs --executor dask" in done.stderr


def test_without_a_scheduler_a_local_cluster_runs_the_jobs(tmp_path: Path) -> None:
    jobs = _compare(DATA / "batch_config.json", tmp_path, "--executor", "dask")
    assert [job["status"] for job in jobs] == ["succeeded"] * 4


def test_a_timeout_on_the_cluster_ends_the_job_promptly(
    scheduler: str, plugins_dir: Path, tmp_path: Path
) -> None:
    """Last in the file: the worker thread stays busy with the sleep (Dask cannot
    interrupt a running task), but the run does not wait for it."""
    config = plugins_dir / "slow.json"
    config.write_text(
        json.dumps(
            {
                "jobs": [
                    {
                        "name": "slow",
                        "action": "slow:sleepy",
                        "input": str(DATA / "logs/app.log"),
                        "timeout": 1,
                    },
                    {"name": "quick", "action": "count_lines", "input": str(DATA / "logs/app.log")},
                ]
            }
        ),
        encoding="utf-8",
    )
    started = time.monotonic()
    done = _run(
        [
            str(config),
            "-o",
            str(tmp_path / "r.json"),
            "--executor",
            "dask",
            "--scheduler",
            scheduler,
        ],
        plugins_dir,
    )
    assert time.monotonic() - started < 15
    assert done.returncode == 1, done.stderr
    by_name = {job["name"]: job for job in _jobs(tmp_path / "r.json")}
    assert by_name["slow"]["status"] == "failed"
    assert by_name["slow"]["error"] == {"type": "Timeout", "message": "timed out after 1 s"}
    assert by_name["quick"]["status"] == "succeeded"
