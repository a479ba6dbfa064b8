"""``--executor dask`` against a real scheduler and worker started on 127.0.0.1 as
separate processes (``dask scheduler``, ``dask worker``), as a user would run them.
The reports of dask runs must equal local runs apart from timings."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import invoke

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("distributed") is None,
        reason="distributed is not installed (pip install 'asyncbatch[dask]')",
    ),
    pytest.mark.slow,  # real scheduler and worker processes
]

DATA = Path(__file__).resolve().parent.parent / "data"
START_TIMEOUT = 30.0
RUN_TIMEOUT = 60.0
SLOW_ACTION = """\
import asyncio
import os

import anyio


async def raises(path, params):
    kind = params["kind"]
    if kind == "SystemExit":
        raise SystemExit(3)
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt
    if kind == "GeneratorExit":
        raise GeneratorExit
    raise asyncio.CancelledError  # a cancelled inner task, let through


async def sleepy(path, params):
    await anyio.sleep(30)
    return {"slept": 30}


async def nap(path, params):
    await anyio.sleep(params["seconds"])
    return {"slept": params["seconds"]}


async def marked(path, params):
    # Tells the test which worker process runs it, then takes a while.
    path.with_name(f"{path.name}.{os.getpid()}.pid").write_text("", encoding="utf-8")
    await anyio.sleep(3)
    return {"pid": os.getpid()}
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


@contextlib.contextmanager
def _cluster(logs: Path, plugins_dir: Path, workers: int, threads: int) -> Iterator[str]:
    """``dask scheduler`` and ``workers`` separate ``dask worker`` processes on
    loopback that can import the ``slow`` module; every process group is killed at
    the end. Yields the scheduler's address."""
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
        for number in range(workers):
            log = logs / f"worker-{number}.log"
            worker = _start(
                [
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nworkers",
                    "1",
                    "--nthreads",
                    str(threads),
                    "--no-dashboard",
                ],
                log,
                env,
            )
            processes.append(worker)
            _wait_for(log, "Registered to", worker)
        yield address
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):  # the group may be gone already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory, plugins_dir: Path) -> Iterator[str]:
    """A scheduler and one worker (2 threads), shared by the tests of this module."""
    with _cluster(tmp_path_factory.mktemp("dask-logs"), plugins_dir, 1, 2) as address:
        yield address


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory: pytest.TempPathFactory, plugins_dir: Path) -> Iterator[str]:
    """A scheduler of its own with one worker of one thread: a second task waits in
    the cluster's queue until the first ends."""
    with _cluster(tmp_path_factory.mktemp("dask-logs-1"), plugins_dir, 1, 1) as address:
        yield address


@pytest.fixture
def two_workers(tmp_path_factory: pytest.TempPathFactory, plugins_dir: Path) -> Iterator[str]:
    """A scheduler of its own with two single-thread workers, for a test that kills
    one of them."""
    with _cluster(tmp_path_factory.mktemp("dask-logs-2"), plugins_dir, 2, 1) as address:
        yield address


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
    """The report's jobs without their timings (the CPU time they used included:
    whether it was measured stays)."""
    jobs: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))["jobs"]
    timings = ("duration_ms", "started_ms")
    found = [{key: value for key, value in job.items() if key not in timings} for job in jobs]
    for job in found:
        used = job["resources"]
        if used is not None:
            used["cpu_s"] = used["cpu_s"] is not None
    return found


def _compare(
    config: Path, tmp_path: Path, *extra: str, both: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Run ``config`` locally and with ``extra`` (a dask executor), both with
    ``both``; same exit code and the same jobs apart from timings. Returns the jobs."""
    local = _run([str(config), "-o", str(tmp_path / "local.json"), *both], config.parent)
    dask = _run([str(config), "-o", str(tmp_path / "dask.json"), *both, *extra], config.parent)
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
                        "params": {"pattern": "ERROR"},  # literals: in a batch
                        "depends_on": ["lines"],
                    },
                    {
                        "name": "errors-regex",
                        "action": "search_pattern",
                        "input": "logs/*.log",
                        "params": {"pattern": "ER+OR"},  # may backtrack: a process
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


def test_fail_fast_the_journal_and_resume_behave_as_locally(scheduler: str, tmp_path: Path) -> None:
    """Halting, the journal and --resume live on the client: the same statuses,
    and a resumed dask run reuses what the halted one recorded."""
    shutil.copytree(DATA / "logs", tmp_path / "logs")
    config = tmp_path / "batch.json"
    config.write_text(
        json.dumps(
            {
                "jobs": [
                    {"name": "first", "action": "file_size", "input": "logs/app.log"},
                    {"name": "gone", "action": "count_lines", "input": "missing.txt"},
                    {"name": "lines", "action": "count_lines", "input": "logs/app.log"},
                    {"name": "sum", "action": "checksum", "input": "logs/app.log"},
                ]
            }
        ),
        encoding="utf-8",
    )
    dask = ("--executor", "dask", "--scheduler", scheduler)
    halted = {}
    for label, extra in (("local", ()), ("dask", dask)):
        out = tmp_path / f"{label}.json"
        done = _run([str(config), "-o", str(out), "-j", "1", "--fail-fast", *extra], tmp_path)
        assert done.returncode == 1, done.stderr
        halted[label] = [(job["name"], job["status"]) for job in _jobs(out)]
    assert (
        halted["dask"]
        == halted["local"]
        == [
            ("first", "succeeded"),
            ("gone", "failed"),
            ("lines", "cancelled"),
            ("sum", "cancelled"),
        ]
    )
    out = tmp_path / "dask.json"
    resumed = _run([str(config), "-o", str(out), "--resume", *dask], tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    jobs = {job["name"]: job for job in _jobs(out)}
    assert jobs["first"]["reused"] is True
    assert [jobs[name]["status"] for name in ("gone", "lines", "sum")] == [
        "failed",
        "succeeded",
        "succeeded",
    ]
    assert not jobs["lines"]["reused"]
    assert not jobs["sum"]["reused"]


def test_an_action_raising_any_base_exception_fails_its_job_as_locally(
    scheduler: str, plugins_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker survives each one: every job after them still runs there."""
    kinds = ["SystemExit", "KeyboardInterrupt", "GeneratorExit", "CancelledError"]
    (tmp_path / "in.txt").write_text("one\ntwo\n", encoding="utf-8")
    jobs: list[dict[str, Any]] = []
    for kind in kinds:
        jobs.append(
            {"name": kind, "action": "slow:raises", "input": "in.txt", "params": {"kind": kind}}
        )
        jobs.append({"name": f"after {kind}", "action": "count_lines", "input": "in.txt"})
    config = tmp_path / "batch.json"
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(plugins_dir))  # the runs import the action too
    reported = _compare(config, tmp_path, "--executor", "dask", "--scheduler", scheduler)
    assert [job["status"] for job in reported] == ["failed", "succeeded"] * len(kinds)
    assert [job["error"]["message"] for job in reported[::2]] == [
        "SystemExit: 3",
        "KeyboardInterrupt",
        "GeneratorExit",
        "CancelledError",
    ]


def test_a_command_runs_on_a_worker_and_its_timeout_ends_its_group_there(
    scheduler: str, plugins_dir: Path, tmp_path: Path
) -> None:
    """The workers were started with PYTHONPATH set to the plugins' folder, this run
    without it: the command's environment says where it ran. The slow command's
    group (a child sleeping in the background) is gone after its timeout."""
    pids = tmp_path / "pids"
    jobs = [
        {
            "name": "where",
            "action": "command",
            "input": ".",
            "params": {"shell": 'echo "${{PYTHONPATH:-client}}"; pwd'},
        },
        {
            "name": "slow",
            "action": "command",
            "input": ".",
            "params": {"shell": f"sleep 300 & echo $! > {pids}; wait"},
            "timeout": 2,
        },
    ]
    config = tmp_path / "batch.json"
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, "-m", "asyncbatch", "run", str(config)]
    command += ["-o", str(tmp_path / "r.json"), "--executor", "dask", "--scheduler", scheduler]
    completed = subprocess.run(
        command,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    where, slow = _jobs(tmp_path / "r.json")
    assert where["result"]["stdout"] == f"{plugins_dir}\n{tmp_path}\n"
    assert slow["error"]["type"] == "Timeout"
    sleeper = int(pids.read_text(encoding="utf-8"))
    deadline = time.monotonic() + 5
    while _running(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(sleeper), "the command's background child outlived its job"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


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


def test_the_end_of_a_run_on_a_local_cluster_says_the_whole_time_not_the_jobs_alone(
    tmp_path: Path,
) -> None:
    """Starting and stopping the cluster takes seconds; the jobs a fraction of one."""
    began = time.monotonic()
    done = _run([str(DATA / "batch_config.json"), "--executor", "dask"], tmp_path)
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("4 succeeded")]
    found = re.fullmatch(r".* in ([\d.]+) s \(running the jobs: ([\d.]+) s\)", line)
    assert found, line
    whole, jobs = float(found.group(1)), float(found.group(2))
    assert jobs < whole <= took
    assert whole > took / 2, "the cluster's start and stop are counted"


def _worker_busy(address: str) -> int:
    """How many tasks the cluster's worker threads are running right now (a task
    Dask forgot after a cancel still counts while its thread runs)."""
    from distributed import Client

    with Client(address, timeout=10) as client:  # type: ignore[no-untyped-call]
        busy = client.run(lambda dask_worker: len(dask_worker.active_threads))
    return sum(busy.values())


def test_a_timeout_stops_a_running_built_in_on_the_worker(scheduler: str, tmp_path: Path) -> None:
    """A catastrophic regex would keep the worker busy for hours; the timeout sets the
    attempt's cancel event, the worker cancels the action (its regex process is
    killed) and the worker thread is free again within seconds."""
    (tmp_path / "evil.txt").write_text("a" * 34 + "!\n", encoding="utf-8")
    config = tmp_path / "evil.json"
    config.write_text(
        json.dumps(
            {
                "jobs": [
                    {
                        "name": "evil",
                        "action": "search_pattern",
                        "input": "evil.txt",
                        "params": {"pattern": "(a+)+$"},
                        "timeout": 1,
                    }
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
        tmp_path,
    )
    assert time.monotonic() - started < 15
    assert done.returncode == 1, done.stderr
    (job,) = _jobs(tmp_path / "r.json")
    assert job["error"] == {"type": "Timeout", "message": "timed out after 1 s"}
    deadline = time.monotonic() + 10
    while (busy := _worker_busy(scheduler)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert busy == 0, "the worker is still running the timed-out search"


def test_a_timeout_on_the_cluster_ends_the_job_promptly(
    scheduler: str, plugins_dir: Path, tmp_path: Path
) -> None:
    """A plugin action times out on the worker as locally; the run does not wait for it
    (its sleep is cancelled on the worker too)."""
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


def test_a_worker_killed_mid_job_is_retried_and_the_run_completes(
    two_workers: str, plugins_dir: Path, tmp_path: Path
) -> None:
    """SIGKILL the worker process running a job: Dask reruns the task on the other
    worker (or, out of workers, the job fails with a clear error); the run ends."""
    data = tmp_path / "input.txt"
    data.write_text("x\n", encoding="utf-8")
    config = tmp_path / "kill.json"
    config.write_text(
        json.dumps({"jobs": [{"name": "victim", "action": "slow:marked", "input": str(data)}]}),
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "asyncbatch", "run", "--no-progress", str(config)]
    command += ["-o", str(tmp_path / "r.json"), "--executor", "dask", "--scheduler", two_workers]
    env = {**os.environ, "PYTHONPATH": str(plugins_dir)}
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        deadline = time.monotonic() + START_TIMEOUT
        while not (markers := list(tmp_path.glob("input.txt.*.pid"))):
            assert time.monotonic() < deadline, "the job never started on a worker"
            assert run.poll() is None, run.communicate()
            time.sleep(0.05)
        killed = int(markers[0].name.split(".")[-2])
        os.kill(killed, signal.SIGKILL)
        try:
            _out, err = run.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            run.kill()
            pytest.fail("the run hung after its worker was killed")
    assert "Traceback" not in err, err
    (job,) = _jobs(tmp_path / "r.json")
    print("after killing worker", killed, ":", job["status"], job["result"] or job["error"])
    if run.returncode == 0:
        assert job["status"] == "succeeded"
        assert job["result"]["pid"] != killed
    else:
        assert run.returncode == 1, err
        assert job["status"] == "failed"
        assert job["error"]["message"], job


def _nap_job(data: Path, name: str, seconds: float, **fields: Any) -> dict[str, Any]:
    """A job of the test plugin's ``slow:nap`` action over ``data``."""
    return {
        "name": name,
        "action": "slow:nap",
        "input": str(data),
        "params": {"seconds": seconds},
        **fields,
    }


def test_a_timeout_counts_from_the_start_on_the_worker_not_the_queue(
    one_thread: str, plugins_dir: Path, tmp_path: Path
) -> None:
    """One worker thread: ``queued`` (timeout 1 s) waits some 2 s behind ``first``
    in the cluster's queue and still succeeds, its timeout counted from its start;
    ``late`` runs past its timeout on the worker and times out."""
    data = tmp_path / "input.txt"
    data.write_text("x\n", encoding="utf-8")

    config = tmp_path / "queue.json"
    jobs = [
        _nap_job(data, "first", 2),
        _nap_job(data, "queued", 0.2, timeout=1),
        _nap_job(data, "late", 5, timeout=1),
    ]
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(plugins_dir)}
    command = [sys.executable, "-m", "asyncbatch", "run", "--no-progress", str(config)]
    command += ["-o", str(out), "-j", "3", "--executor", "dask", "--scheduler", one_thread]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    by_name = {job["name"]: job for job in json.loads(out.read_text(encoding="utf-8"))["jobs"]}
    assert by_name["first"]["status"] == "succeeded"
    assert by_name["queued"]["status"] == "succeeded", by_name["queued"]
    assert by_name["queued"]["duration_ms"] < 1000  # from its start, not its submission
    assert by_name["late"]["status"] == "failed"
    assert by_name["late"]["error"] == {"type": "Timeout", "message": "timed out after 1 s"}


@pytest.mark.parametrize(
    "address", ["tcp://", "tcp://[::1", "/", "", "inproc://x", "tls://127.0.0.1:1", "ucx://x"]
)
def test_a_malformed_scheduler_address_is_exit_2_and_leaves_no_client_behind(
    address: str,
) -> None:
    """A client that could not start is closed, not left to the garbage collector
    (which would warn, in the middle of a later run, of coroutines never awaited)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke(
            [
                "run",
                str(DATA / "batch_config.json"),
                "--executor",
                "dask",
                "--scheduler",
                address,
                "--scheduler-timeout",
                "1",
            ]
        )
        gc.collect()
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error: cannot reach the Dask scheduler " in result.stderr
    assert [str(warning.message) for warning in caught] == []


def _started_tasks(address: str) -> int:
    """How many tasks the cluster's workers have announced starting so far."""
    from distributed import Client

    with Client(address, timeout=10) as client:  # type: ignore[no-untyped-call]
        return len(client.get_events("asyncbatch-started"))


def _small_files(folder: Path, count: int) -> None:
    folder.mkdir()
    for number in range(count):
        (folder / f"f{number:03d}.log").write_text("one\ntwo\n" * (number % 5), encoding="utf-8")


def test_small_jobs_travel_in_batches_and_report_as_locally(scheduler: str, tmp_path: Path) -> None:
    """Hundreds of small files, with a missing file and a directory between them,
    take far fewer tasks than jobs, and every job reports as it does locally."""
    _small_files(tmp_path / "a", 120)
    _small_files(tmp_path / "b", 120)
    (tmp_path / "folder.log").mkdir()
    config = tmp_path / "batch.json"
    jobs = [
        {"name": "a", "action": "count_lines", "input": "a/*.log"},
        {"name": "gone", "action": "count_lines", "input": "missing.log"},
        {"name": "folder", "action": "file_size", "input": "folder.log"},
        {"name": "b", "action": "count_words", "input": "b/*.log"},
    ]
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    before = _started_tasks(scheduler)
    reported = _compare(config, tmp_path, "--executor", "dask", "--scheduler", scheduler)
    tasks = _started_tasks(scheduler) - before
    assert len(reported) == 242
    assert tasks < len(reported) / 4, f"{tasks} tasks for {len(reported)} small jobs"
    failed = {job["name"]: job["error"] for job in reported if job["status"] == "failed"}
    assert failed == {
        "gone": {"type": "FileNotFoundError", "message": "missing.log: no such file"},
        "folder": {
            "type": "NotARegularFile",
            "message": "folder.log: is a directory, not a regular file",
        },
    }
    assert {job["attempts"] for job in reported} == {1}
    durations = [job["duration_ms"] for job in _raw_jobs(tmp_path / "dask.json")]
    assert all(0 <= duration < 5000 for duration in durations)


def _raw_jobs(report: Path) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))["jobs"]
    return jobs


def test_each_job_of_a_batch_has_its_own_timeout_from_its_start_on_the_worker(
    scheduler: str, plugins_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-j 1``: custom actions share tasks once their pace is known. ``ok`` (0.5 s,
    timeout 1 s) runs after ``slow`` (0.8 s) and still succeeds; ``late`` times out
    after 1 s of its own, not after its 5 s nap, and the jobs after it still run."""
    data = tmp_path / "input.txt"
    data.write_text("x\n", encoding="utf-8")

    jobs = [
        _nap_job(data, "warm", 0.05),
        _nap_job(data, "slow", 0.8),
        _nap_job(data, "ok", 0.5, timeout=1),
        _nap_job(data, "late", 5, timeout=1),
        _nap_job(data, "after", 0.05),
    ]
    config = tmp_path / "naps.json"
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(plugins_dir))
    started = time.monotonic()
    dask = ("--executor", "dask", "--scheduler", scheduler)
    reported = _compare(config, tmp_path, *dask, both=("-j", "1"))
    assert time.monotonic() - started < 15  # neither run waited for the 5 s nap
    assert [job["status"] for job in reported] == ["succeeded"] * 3 + ["failed", "succeeded"]
    assert reported[3]["error"] == {"type": "Timeout", "message": "timed out after 1 s"}
    late = _raw_jobs(tmp_path / "dask.json")[3]
    assert 1000 <= late["duration_ms"] < 2500


def test_batched_jobs_are_journaled_and_resumed_as_locally(scheduler: str, tmp_path: Path) -> None:
    """Every job of a batch has its journal line; ``--resume`` reuses them all but
    the one whose input changed."""
    _small_files(tmp_path / "a", 150)
    config = tmp_path / "batch.json"
    jobs = [{"name": "a", "action": "count_lines", "input": "a/*.log"}]
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    dask = ["--executor", "dask", "--scheduler", scheduler]
    out = tmp_path / "r.json"
    assert _run([str(config), "-o", str(out), *dask], tmp_path).returncode == 0
    journal = out.with_name("r.json.journal").read_text(encoding="utf-8").splitlines()
    assert len(journal) == 150
    (tmp_path / "a" / "f007.log").write_text("changed\n", encoding="utf-8")
    assert _run([str(config), "-o", str(out), "--resume", *dask], tmp_path).returncode == 0
    reported = _jobs(out)
    rerun = [job["input"] for job in reported if not job["reused"]]
    assert rerun == ["a/f007.log"]
    assert reported[7]["result"] == {"lines": 1}


def test_fail_fast_starts_nothing_after_a_failure_in_a_batch(
    scheduler: str, tmp_path: Path
) -> None:
    """A missing file in the middle of a batch: the jobs before it succeed, every
    job after it is cancelled, as locally."""
    _small_files(tmp_path / "a", 30)
    _small_files(tmp_path / "b", 30)
    config = tmp_path / "batch.json"
    jobs = [
        {"name": "a", "action": "count_lines", "input": "a/*.log"},
        {"name": "gone", "action": "count_lines", "input": "missing.log"},
        {"name": "b", "action": "count_lines", "input": "b/*.log"},
    ]
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    dask = ("--executor", "dask", "--scheduler", scheduler)
    reported = _compare(config, tmp_path, *dask, both=("-j", "1", "--fail-fast"))
    assert [job["status"] for job in reported] == (
        ["succeeded"] * 30 + ["failed"] + ["cancelled"] * 30
    )


LOCAL_CLUSTER_PROFILER = """
import anyio
from asyncbatch.engine.dask import open_dask_executor


async def main():
    async with open_dask_executor(None) as executor:
        flags = await executor._client.run(
            lambda: __import__("dask").config.get("distributed.worker.profile.enabled")
        )
    print(sorted(set(flags.values())))


if __name__ == "__main__":
    anyio.run(main)
"""


def test_the_local_cluster_runs_no_profiler(tmp_path: Path) -> None:
    """It has no dashboard to show profiles on; its sampling every 10 ms would only
    take CPU from the jobs."""
    script = tmp_path / "profiler.py"  # worker processes are spawned: a real file
    script.write_text(LOCAL_CLUSTER_PROFILER, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[False]"


def test_remote_jobs_report_what_the_workers_measured(
    scheduler: str, plugins_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file in a batch, a file too big for one (a task of its own), a search
    in a worker process and a custom action: each job reports the bytes its worker
    read and whether it measured CPU time, as it does locally."""
    (tmp_path / "small.log").write_text("one ERROR\ntwo\n", encoding="utf-8")
    (tmp_path / "big.log").write_bytes(b"line ERROR here\n" * 40_000)  # 640,000 bytes
    monkeypatch.setenv("PYTHONPATH", str(plugins_dir))
    config = tmp_path / "batch.json"
    jobs = [
        {"name": "small", "action": "count_lines", "input": "small.log"},
        {"name": "big", "action": "count_lines", "input": "big.log"},
        {
            "name": "search",
            "action": "search_pattern",
            "input": "big.log",
            "params": {"pattern": "ER+OR"},
        },
        {"name": "nap", "action": "slow:nap", "input": "small.log", "params": {"seconds": 0}},
    ]
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    reported = _compare(config, tmp_path, "--executor", "dask", "--scheduler", scheduler)
    used = {job["name"]: job["resources"] for job in reported}
    assert used["small"] == {
        "cpu_s": True,
        "max_rss_kb": None,
        "read_bytes": 14,
        "write_bytes": None,
    }
    assert used["big"]["read_bytes"] == 640_000
    assert used["search"]["read_bytes"] == 640_000
    assert used["nap"] == {
        "cpu_s": False,
        "max_rss_kb": None,
        "read_bytes": None,
        "write_bytes": None,
    }


# --- nothing left running ----------------------------------------------------------------

STUBBORN = "trap '' TERM HUP INT; touch {started}; exec sleep {seconds}"
"""A program that ignores SIGTERM (and the terminal's signals): only SIGKILL ends it."""


def _stop_jobs(folder: Path, marker: str, *, failing: bool) -> Path:
    """A config of two programs that run until stopped, each named in ``ps`` by
    ``marker`` (``sleep 1<marker>``, ``sleep 2<marker>``), one of which ignores
    SIGTERM; with ``failing``, the one that ignores SIGTERM and a job that fails
    once it has started (two tasks: as many as the clusters' threads)."""
    jobs: list[dict[str, Any]] = [
        {
            "name": "plain",
            "action": "command",
            "input": ".",
            "params": {"shell": f"touch {folder / 'started-1'}; exec sleep 1{marker}"},
        },
        {
            "name": "stubborn",
            "action": "command",
            "input": ".",
            "params": {
                "shell": STUBBORN.format(started=folder / "started-2", seconds=f"2{marker}")
            },
        },
    ]
    if failing:
        wait = f"while [ ! -e {folder / 'started-2'} ]"
        del jobs[0]
        jobs.append(
            {
                "name": "fails",
                "action": "command",
                "input": ".",
                "params": {"shell": f"{wait}; do sleep 0.05; done; exit 3"},
            }
        )
    config = folder / "batch.json"
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    return config


def _marked(marker: str) -> list[int]:
    """Pids of the processes whose command line holds ``marker`` (``pgrep -f``)."""
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def _new_marker() -> str:
    return f"{os.getpid()}{time.monotonic_ns() % 10**9:09d}"


def _no_program_left(marker: str) -> None:
    """Nothing runs with ``marker`` in its command line (a second later at most: the
    kernel may still be reaping); whatever does is killed, and the test fails."""
    deadline = time.monotonic() + 1.0
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _marked(marker)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == [], "programs outlived their jobs (orphans under init)"


@pytest.mark.parametrize("where", ["local cluster", "scheduler"])
def test_fail_fast_leaves_no_command_program_running(
    where: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """--fail-fast cancels the running command jobs: their process groups get SIGTERM,
    then SIGKILL on the worker, before the run ends (it used to leave them running,
    orphans under init, once the cluster closed)."""
    marker = _new_marker()
    config = _stop_jobs(tmp_path, marker, failing=True)
    extra = ["--executor", "dask"]
    if where == "scheduler":
        extra += ["--scheduler", request.getfixturevalue("scheduler")]
    try:
        done = _run(
            [str(config), "-o", str(tmp_path / "r.json"), "-j", "2", "--fail-fast", *extra],
            tmp_path,
        )
        assert done.returncode == 1, done.stderr
        statuses = {job["name"]: job["status"] for job in _jobs(tmp_path / "r.json")}
        assert statuses == {"stubborn": "cancelled", "fails": "failed"}
    finally:
        _no_program_left(marker)


@pytest.mark.parametrize(
    ("signum", "to_group", "code"),
    [
        (signal.SIGINT, True, 130),  # Ctrl-C in a terminal: the whole process group
        (signal.SIGTERM, False, 143),
        (signal.SIGHUP, True, 129),  # a closed terminal: the whole process group
    ],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_signal_leaves_no_command_program_running_on_a_local_cluster(
    tmp_path: Path, signum: signal.Signals, to_group: bool, code: int
) -> None:
    """The local cluster's workers are in the run's process group: they leave Ctrl-C
    and SIGHUP to the run, which cancels its attempts (their programs' groups ended
    on the workers), writes the report and exits with the signal's code."""
    marker = _new_marker()
    config = _stop_jobs(tmp_path, marker, failing=False)
    report = tmp_path / "r.json"
    command = [sys.executable, "-m", "asyncbatch", "run", str(config), "-o", str(report)]
    process = subprocess.Popen(
        [*command, "-q", "--executor", "dask"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not all((tmp_path / f"started-{n}").exists() for n in (1, 2)):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        if to_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
        assert process.returncode == code, stderr
        assert "Traceback" not in stderr
        assert [job["status"] for job in _jobs(report)] == ["cancelled", "cancelled"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        _no_program_left(marker)


def test_a_worker_that_closes_ends_the_programs_it_runs(tmp_path: Path, plugins_dir: Path) -> None:
    """A worker stopped while a command runs (its cluster shut down under the run)
    ends the program's group first, SIGKILL for what ignores SIGTERM: nothing else
    would, the group being a session of its own."""
    marker = _new_marker()
    started = tmp_path / "started"
    shell = STUBBORN.format(started=started, seconds=f"3{marker}")
    job = {"name": "stubborn", "action": "command", "input": ".", "params": {"shell": shell}}
    config = tmp_path / "batch.json"
    config.write_text(json.dumps({"jobs": [job]}), encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    with _cluster(logs, plugins_dir, 1, 1) as address:
        command = [sys.executable, "-m", "asyncbatch", "run", str(config), "-q"]
        run = subprocess.Popen(
            [*command, "--executor", "dask", "--scheduler", address],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            while not started.exists():
                assert run.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.05)
            (worker,) = _marked(f"dask worker {address}")
            os.kill(worker, signal.SIGTERM)  # the worker closes as it should
            deadline = time.monotonic() + 2 + 3  # SIGKILL 2 s after SIGTERM
            while _marked(marker) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
            _no_program_left(marker)


def test_the_scheduler_variable_is_the_scheduler_of_a_dask_run(
    scheduler: str, tmp_path: Path
) -> None:
    """ASYNCBATCH_SCHEDULER with --executor dask and no --scheduler: the run goes to
    that scheduler; one that is not there is exit 2, saying so."""
    env = {**os.environ, "ASYNCBATCH_SCHEDULER": scheduler}
    command = [sys.executable, "-m", "asyncbatch", "run", str(DATA / "batch_config.json")]
    done = subprocess.run(
        [*command, "--executor", "dask", "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    gone = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "ASYNCBATCH_SCHEDULER": gone}
    done = subprocess.run(
        [*command, "--executor", "dask", "--scheduler-timeout", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert f"cannot reach the Dask scheduler {gone}" in done.stderr
