"""Execution control through the command line and real processes: ``--fail-fast``
and ``--max-failures``, ``--only``, named limits in the config and the plan, and
signals (SIGINT, SIGTERM) on a real subprocess.

How the scheduler halts, retries and shares named slots is tested through
run_batch in ``test_runner.py``; here is what a user sees: exit codes, the summary
on stdout, the lines on stderr, the report file. Nothing here asserts wall-clock
time: "does not hang" is a generous subprocess timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Probe, add_module, invoke, job, load, read_json, run, summary, write_json
from typer.testing import Result

from asyncbatch.config import BatchConfig, select_jobs
from asyncbatch.errors import ConfigError

pytestmark = pytest.mark.anyio

SUBPROCESS_START = 20
"""Deadline for a subprocess to import everything and start its jobs (seconds)."""


TRACE_SOURCE = (
    "from pathlib import Path\n\n"
    "async def touch(path, params):\n"
    "    with open(Path(__file__).with_name('trace.txt'), 'a') as trace:\n"
    "        trace.write(path.name + '\\n')\n"
    "    return {'touched': path.name}\n"
)


def traced(folder: Path) -> list[str]:
    trace = folder / "trace.txt"
    return trace.read_text(encoding="utf-8").splitlines() if trace.exists() else []


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text("one\ntwo\n", encoding="utf-8")
    return tmp_path


def lines_job(name: str, input_: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "action": "count_lines", "input": input_, **fields}


def test_cli_fail_fast_exits_1_naming_the_first_failure_and_counting_cancelled(
    inputs: Path,
) -> None:
    config = write_json(
        inputs / "batch.json",
        {
            "jobs": [
                {"name": "early", "action": "no_such_action", "input": "a.txt"},
                lines_job("missing", "nowhere.txt"),
                lines_job("after-missing", "a.txt", depends_on=["missing"]),
                lines_job("b", "b.txt"),
                lines_job("c", "c.txt"),
            ]
        },
    )
    report_path = inputs / "report.json"
    result = invoke(["run", str(config), "-j", "1", "--fail-fast", "-o", str(report_path)])
    assert result.exit_code == 1
    assert summary(result.stdout) == {
        "total_jobs": 5,
        "succeeded": 0,
        "failed": 1,
        "skipped": 2,
        "cancelled": 2,
    }
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert lines[0].startswith("0 succeeded, 1 failed, 2 skipped, 2 cancelled in ")
    assert lines[1] == "stopped: the run halted after 1 failure (first: 'missing')"
    assert lines[2:5] == [
        "  SKIPPED   1 job   UnknownAction: unknown action 'no_such_action'  (early)",
        "  SKIPPED   1 job   DependencyFailed: dependency 'missing' failed  (after-missing)",
        "  CANCELLED 2 jobs  Cancelled: the run halted after 1 failure (first: 'missing')  (b, c)",
    ]
    assert lines[5].split()[:3] == ["FAILED", "missing:", "FileNotFoundError:"]
    # run from elsewhere, a missing relative input gets the hint, last
    assert lines[6:] == [f"note: inputs are relative to the config file's folder, {inputs}"]
    jobs = read_json(report_path)["jobs"]
    assert [entry["status"] for entry in jobs] == [
        "skipped",
        "failed",
        "skipped",
        "cancelled",
        "cancelled",
    ]
    assert [entry["attempts"] for entry in jobs] == [0, 1, 0, 0, 0]
    assert jobs[3]["error"]["type"] == "Cancelled"
    assert jobs[3]["duration_ms"] is None


def test_cli_max_failures_2_runs_on_after_the_first_failure(inputs: Path) -> None:
    config = write_json(
        inputs / "batch.json",
        {
            "jobs": [
                lines_job("miss1", "nowhere1.txt"),
                lines_job("a", "a.txt"),
                lines_job("miss2", "nowhere2.txt"),
                lines_job("b", "b.txt"),
            ]
        },
    )
    result = invoke(["run", str(config), "-j", "1", "--max-failures", "2"])
    assert result.exit_code == 1
    assert summary(result.stdout) == {
        "total_jobs": 4,
        "succeeded": 1,
        "failed": 2,
        "skipped": 0,
        "cancelled": 1,
    }
    assert "stopped: the run halted after 2 failures (first: 'miss1')" in result.stderr


def test_cli_without_fail_fast_runs_every_job_and_says_nothing_about_stopping(
    inputs: Path,
) -> None:
    config = write_json(
        inputs / "batch.json",
        {"jobs": [lines_job("miss", "nowhere.txt"), lines_job("a", "a.txt")]},
    )
    result = invoke(["run", str(config), "-j", "1"])
    assert result.exit_code == 1
    assert summary(result.stdout)["succeeded"] == 1
    assert "stopped:" not in result.stderr
    assert "CANCELLED" not in result.stderr


def test_cli_fail_fast_reads_no_file_batched_after_the_one_that_failed(inputs: Path) -> None:
    """One slot: the small files go to one thread hop together; the missing one
    fails, and the files after it in that batch are never read (no attempt)."""
    config = write_json(
        inputs / "batch.json",
        {
            "jobs": [
                lines_job("a", "a.txt"),
                lines_job("b", "b.txt"),
                lines_job("missing", "nowhere.txt"),
                lines_job("c", "c.txt"),
                lines_job("a-again", "a.txt"),
            ]
        },
    )
    report_path = inputs / "report.json"
    result = invoke(["run", str(config), "-j", "1", "--fail-fast", "-o", str(report_path)])
    assert result.exit_code == 1
    assert summary(result.stdout) == {
        "total_jobs": 5,
        "succeeded": 2,
        "failed": 1,
        "skipped": 0,
        "cancelled": 2,
    }
    assert "stopped: the run halted after 1 failure (first: 'missing')" in result.stderr
    jobs = read_json(report_path)["jobs"]
    assert [(entry["status"], entry["attempts"]) for entry in jobs] == [
        ("succeeded", 1),
        ("succeeded", 1),
        ("failed", 1),
        ("cancelled", 0),
        ("cancelled", 0),
    ]
    assert jobs[0]["result"] == {"lines": 2}


def test_cli_retries_never_retry_an_input_refused_at_load(inputs: Path) -> None:
    """A glob that matched nothing and an input outside --root fail at once with
    one attempt, whatever --retries says; the file inside runs."""
    root = inputs / "root"
    root.mkdir()
    (root / "inside.txt").write_text("one\n", encoding="utf-8")
    config = write_json(
        root / "batch.json",
        {
            "jobs": [
                lines_job("nothing", "logs/*.none"),
                lines_job("outside", "../a.txt"),
                lines_job("inside", "inside.txt"),
            ]
        },
    )
    report_path = inputs / "report.json"
    args = ["run", str(config), "--root", str(root), "--retries", "3", "-o", str(report_path)]
    result = invoke(args)
    assert result.exit_code == 1
    assert summary(result.stdout)["failed"] == 2
    jobs = {entry["name"]: entry for entry in read_json(report_path)["jobs"]}
    assert (jobs["nothing"]["status"], jobs["nothing"]["attempts"]) == ("failed", 1)
    assert jobs["nothing"]["error"] == {
        "type": "FileNotFoundError",
        "message": "logs/*.none: no file matches",
    }
    assert (jobs["outside"]["status"], jobs["outside"]["attempts"]) == ("failed", 1)
    assert jobs["outside"]["error"]["type"] == "OutsideRoot"
    assert (jobs["inside"]["status"], jobs["inside"]["result"]) == ("succeeded", {"lines": 1})


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_cli_max_failures_below_one_is_a_usage_error(inputs: Path, value: str) -> None:
    module = add_module(inputs, TRACE_SOURCE, "execmod")
    config = write_json(
        inputs / "batch.json",
        {"jobs": [{"name": "a", "action": f"{module}:touch", "input": "a.txt"}]},
    )
    result = invoke(["run", str(config), "--max-failures", value])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert traced(inputs) == []


def test_cli_dry_run_shows_limits_at_the_top_and_on_jobs_that_need_them(inputs: Path) -> None:
    config = write_json(
        inputs / "batch.json",
        {
            "limits": {"disk": 1, "net": 3},
            "jobs": [
                lines_job("a", "a.txt", limits=["net", "disk"]),
                lines_job("b", "b.txt"),
            ],
        },
    )
    result = invoke(["run", str(config), "--dry-run"])
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["limits"] == {"disk": 1, "net": 3}
    assert list(plan) == ["valid", "total_jobs", "limits", "jobs"]
    first, second = plan["jobs"]
    assert first["limits"] == ["net", "disk"]
    assert "limits" not in second


def test_cli_dry_run_without_limits_shows_none(inputs: Path) -> None:
    config = write_json(inputs / "batch.json", {"jobs": [lines_job("a", "a.txt")]})
    plan = json.loads(invoke(["run", str(config), "--dry-run"]).stdout)
    assert "limits" not in plan
    assert "limits" not in plan["jobs"][0]


def test_cli_an_unknown_limit_and_a_size_of_zero_exit_2_with_locations(inputs: Path) -> None:
    module = add_module(inputs, TRACE_SOURCE, "execmod")
    config = write_json(
        inputs / "batch.json",
        {
            "limits": {"disk": 0},
            "jobs": [
                {"name": "a", "action": f"{module}:touch", "input": "a.txt", "limits": ["nt"]}
            ],
        },
    )
    result = invoke(["run", str(config)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "limits.disk: " in result.stderr
    assert "jobs[0].limits[0]: unknown limit 'nt'" in result.stderr
    assert "nothing was run" in result.stderr
    assert traced(inputs) == []


def test_cli_schema_describes_limits_at_the_top_and_on_jobs() -> None:
    result = invoke(["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    limits = schema["properties"]["limits"]
    assert limits["type"] == "object"
    assert limits["additionalProperties"]["minimum"] == 1
    job_limits = schema["$defs"]["JobConfig"]["properties"]["limits"]
    names, weights = job_limits["anyOf"]
    assert (names["type"], names["items"]["type"]) == ("array", "string")
    assert (weights["type"], weights["additionalProperties"]["minimum"]) == ("object", 1)


# --- named limits in the config ------------------------------------------------------


def test_an_unknown_limit_name_is_a_located_config_error(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("a"), job("b", limits=["disk", "nett"])]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, jobs, limits={"disk": 1, "net": 2})
    assert caught.value.problems == [
        "jobs[1].limits[1]: unknown limit 'nett' (declared: disk, net)"
    ]


def test_a_limit_named_without_any_declared_is_a_config_error(tmp_path: Path, probe: Probe) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, [job("a", limits=["disk"])])
    assert caught.value.problems == ["jobs[0].limits[0]: unknown limit 'disk' (declared: none)"]


@pytest.mark.parametrize("size", [0, -1])
def test_a_limit_size_below_one_is_a_located_config_error(
    tmp_path: Path, probe: Probe, size: int
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, [job("a", limits=["disk"])], limits={"disk": size})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("limits.disk: ")
    assert "greater than or equal to 1" in caught.value.problems[0]


def test_limit_problems_are_reported_together_with_other_problems(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a", limits=["nope"]), job("b", depends_on=["ghost"])]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, jobs, limits={"disk": 0})
    problems = caught.value.problems
    assert any(problem.startswith("limits.disk: ") for problem in problems)
    assert any(
        problem.startswith("jobs[0].limits[0]: unknown limit 'nope'") for problem in problems
    )
    assert any(
        problem.startswith("jobs[1].depends_on[0]: unknown job 'ghost'") for problem in problems
    )


# --- --only: select_jobs -----------------------------------------------------------------


def names(config: BatchConfig) -> list[str]:
    return [job.name for job in config.jobs]


@pytest.fixture
def chain(tmp_path: Path, probe: Probe) -> BatchConfig:
    """a <- b <- c, d alone, e <- f."""
    jobs = [
        job("a"),
        job("b", depends_on=["a"]),
        job("c", depends_on=["b"]),
        job("d"),
        job("e"),
        job("f", depends_on=["e"]),
    ]
    return load(tmp_path, probe, jobs)


def test_select_jobs_takes_a_job_and_everything_it_depends_on_transitively(
    chain: BatchConfig,
) -> None:
    assert names(select_jobs(chain, ["c"])) == ["a", "b", "c"]


def test_select_jobs_takes_no_dependents_of_a_selected_job(chain: BatchConfig) -> None:
    assert names(select_jobs(chain, ["a"])) == ["a"]


def test_select_jobs_keeps_config_order_whatever_order_the_names_come_in(
    chain: BatchConfig,
) -> None:
    assert names(select_jobs(chain, ["f", "d", "b"])) == ["a", "b", "d", "e", "f"]


def test_select_jobs_with_a_name_given_twice_selects_it_once(chain: BatchConfig) -> None:
    assert names(select_jobs(chain, ["d", "d"])) == ["d"]


def test_select_jobs_leaves_the_original_config_untouched(chain: BatchConfig) -> None:
    select_jobs(chain, ["d"])
    assert names(chain) == ["a", "b", "c", "d", "e", "f"]


def test_select_jobs_with_unknown_names_raises_one_config_error_naming_each(
    chain: BatchConfig,
) -> None:
    with pytest.raises(ConfigError) as caught:
        select_jobs(chain, ["a", "x", "ccc"])
    assert caught.value.problems[0] == "--only: unknown job 'x'"
    assert caught.value.problems[1].startswith("--only: unknown job 'ccc'")
    assert len(caught.value.problems) == 2


@pytest.fixture
def globbed(tmp_path: Path, probe: Probe) -> BatchConfig:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("a.log", "b.log", "c.log"):
        (logs / name).write_text("x\n", encoding="utf-8")
    jobs = [
        job("first"),
        {"name": "logs", "action": "record", "input": "logs/*.log"},
        job("after-logs", depends_on=["logs"]),
    ]
    return load(tmp_path, probe, jobs)


def test_select_jobs_naming_a_glob_job_selects_all_its_expansions(globbed: BatchConfig) -> None:
    assert names(select_jobs(globbed, ["logs"])) == [
        "logs[logs/a.log]",
        "logs[logs/b.log]",
        "logs[logs/c.log]",
    ]


def test_select_jobs_naming_one_expansion_selects_only_it(globbed: BatchConfig) -> None:
    assert names(select_jobs(globbed, ["logs[logs/b.log]"])) == ["logs[logs/b.log]"]


def test_select_jobs_through_a_dependency_on_a_glob_job_takes_every_expansion(
    globbed: BatchConfig,
) -> None:
    assert names(select_jobs(globbed, ["after-logs"])) == [
        "logs[logs/a.log]",
        "logs[logs/b.log]",
        "logs[logs/c.log]",
        "after-logs",
    ]


async def test_a_selected_batch_runs_only_its_jobs_and_reports_only_them(
    chain: BatchConfig, probe: Probe
) -> None:
    report = await run(select_jobs(chain, ["c", "d"]), probe)
    assert sorted(probe.started) == ["a", "b", "c", "d"]
    assert [result.name for result in report.jobs] == ["a", "b", "c", "d"]
    assert report.summary.total_jobs == 4
    assert report.summary.succeeded == 4


# --- --only on the command line ----------------------------------------------------------


@pytest.fixture
def only_config(inputs: Path) -> Path:
    """A traced batch: a <- b <- c, d alone, and a glob job over logs/."""
    module = add_module(inputs, TRACE_SOURCE, "execmod")
    logs = inputs / "logs"
    logs.mkdir()
    for name in ("x.log", "y.log"):
        (logs / name).write_text("x\n", encoding="utf-8")

    def touch(name: str, input_: str, **fields: Any) -> dict[str, Any]:
        return {"name": name, "action": f"{module}:touch", "input": input_, **fields}

    return write_json(
        inputs / "batch.json",
        {
            "jobs": [
                touch("a", "a.txt"),
                touch("b", "b.txt", depends_on=["a"]),
                touch("c", "c.txt", depends_on=["b"]),
                touch("d", "a.txt"),
                touch("logs", "logs/*.log"),
            ]
        },
    )


def run_only(config: Path, *names: str) -> tuple[Result, dict[str, Any] | None]:
    report_path = config.with_name("report.json")
    args = ["run", str(config), "-o", str(report_path)]
    for name in names:
        args += ["--only", name]
    result = invoke(args)
    return result, read_json(report_path) if report_path.exists() else None


def test_cli_only_runs_the_job_and_its_dependencies_and_reports_only_them(
    only_config: Path,
) -> None:
    result, report = run_only(only_config, "c")
    assert result.exit_code == 0
    assert summary(result.stdout)["total_jobs"] == 3
    assert report is not None
    assert [entry["name"] for entry in report["jobs"]] == ["a", "b", "c"]
    assert report["summary"]["total_jobs"] == 3
    assert traced(only_config.parent) == ["a.txt", "b.txt", "c.txt"]


def test_cli_only_is_repeatable(only_config: Path) -> None:
    result, report = run_only(only_config, "d", "b")
    assert result.exit_code == 0
    assert report is not None
    assert [entry["name"] for entry in report["jobs"]] == ["a", "b", "d"]
    assert sorted(traced(only_config.parent)) == ["a.txt", "a.txt", "b.txt"]


def test_cli_only_a_glob_job_runs_all_its_expansions(only_config: Path) -> None:
    result, report = run_only(only_config, "logs")
    assert result.exit_code == 0
    assert report is not None
    assert [entry["name"] for entry in report["jobs"]] == ["logs[logs/x.log]", "logs[logs/y.log]"]
    assert sorted(traced(only_config.parent)) == ["x.log", "y.log"]


def test_cli_only_one_expansion_runs_only_it(only_config: Path) -> None:
    result, report = run_only(only_config, "logs[logs/y.log]")
    assert result.exit_code == 0
    assert report is not None
    assert [entry["name"] for entry in report["jobs"]] == ["logs[logs/y.log]"]
    assert traced(only_config.parent) == ["y.log"]


def test_cli_only_an_unknown_name_exits_2_with_a_located_message_and_runs_nothing(
    only_config: Path,
) -> None:
    result, report = run_only(only_config, "a", "x")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"error: {only_config}: --only: unknown job 'x'" in result.stderr.splitlines()
    assert report is None
    assert traced(only_config.parent) == []


def test_cli_only_with_dry_run_plans_only_the_selection(only_config: Path) -> None:
    result = invoke(["run", str(only_config), "--dry-run", "--only", "b"])
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["total_jobs"] == 2
    assert [entry["name"] for entry in plan["jobs"]] == ["a", "b"]
    assert traced(only_config.parent) == []


# --- signals: a real subprocess --------------------------------------------------------

SIGNAL_ACTIONS = """\
from pathlib import Path

import anyio


def _mark(path):
    Path(__file__).with_name('started-' + path.name).write_text('started')


async def quick(path, params):
    return {'quick': path.name}


async def slow(path, params):
    _mark(path)
    await anyio.sleep(60)
    return {'slow': path.name}


async def stubborn(path, params):
    _mark(path)
    with anyio.CancelScope(shield=True):
        await anyio.sleep(60)
    return {'stubborn': path.name}
"""

needs_posix_signals = pytest.mark.skipif(
    sys.platform == "win32", reason="POSIX signals to a process session"
)


def signal_batch(folder: Path, kind: str) -> tuple[Path, list[str]]:
    """Config: a quick job, then three ``kind`` jobs; with -j 2 the quick job and
    two ``kind`` jobs start, the last never does. Returns the config and the names
    of the jobs that will be running when the signal comes."""
    module = add_module(folder, SIGNAL_ACTIONS, "execmod")
    jobs = [{"name": "quick", "action": f"{module}:quick", "input": "q"}]
    jobs += [{"name": f"s{i}", "action": f"{module}:{kind}", "input": f"s{i}"} for i in (1, 2, 3)]
    return write_json(folder / "batch.json", {"jobs": jobs}), ["s1", "s2"]


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "asyncbatch", "run", str(config), "-j", "2", *args],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_markers(proc: subprocess.Popen[str], folder: Path, running: list[str]) -> None:
    deadline = time.monotonic() + SUBPROCESS_START
    markers = [folder / f"started-{name}" for name in running]
    while not all(marker.exists() for marker in markers):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended early ({proc.returncode}): {out}\n{err}")
        if time.monotonic() > deadline:
            kill_session(proc)
            pytest.fail("the jobs never started")
        time.sleep(0.02)


def kill_session(proc: subprocess.Popen[str]) -> None:
    """Clean-up after a failed test: the child started its own session."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def session_members(session: int) -> list[int]:
    """Live processes (zombies included) whose session id is ``session``."""
    members = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # the process ended while we looked
        fields = stat.rpartition(")")[2].split()
        if int(fields[3]) == session:  # after comm: state, ppid, pgrp, session
            members.append(int(stat_path.parent.name))
    return members


@pytest.fixture
def session_check() -> Iterator[list[int]]:
    """Tests append the child's pid; afterwards nothing of its session may remain."""
    pids: list[int] = []
    yield pids
    if not sys.platform.startswith("linux"):
        return
    for pid in pids:
        assert session_members(pid) == [], f"processes of session {pid} outlived the run"


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(proc)
        pytest.fail(f"the run did not exit within {timeout} s")


@pytest.mark.slow
@needs_posix_signals
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_the_running_jobs_writes_the_report_and_exits_with_its_code(
    tmp_path: Path, session_check: list[int], signum: signal.Signals, code: int
) -> None:
    config, running = signal_batch(tmp_path, "slow")
    report_path = tmp_path / "report.json"
    proc = start(config, "-o", str(report_path))
    session_check.append(proc.pid)
    wait_for_markers(proc, tmp_path, running)
    proc.send_signal(signum)
    stdout, stderr = finish(proc, 5)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert summary(stdout) == {
        "total_jobs": 4,
        "succeeded": 1,
        "failed": 0,
        "skipped": 0,
        "cancelled": 3,
    }
    assert "stopped: the run was interrupted" in stderr
    report = read_json(report_path)
    assert report["summary"] == summary(stdout)
    statuses = {entry["name"]: entry for entry in report["jobs"]}
    assert statuses["quick"]["status"] == "succeeded"
    for name in ("s1", "s2", "s3"):
        assert statuses[name]["status"] == "cancelled"
        assert statuses[name]["error"]["type"] == "Cancelled"
    assert [statuses[name]["attempts"] for name in ("s1", "s2", "s3")] == [1, 1, 0]
    assert statuses["s3"]["duration_ms"] is None
    assert not (tmp_path / "started-s3").exists()


@pytest.mark.slow
@needs_posix_signals
def test_a_second_sigint_exits_at_once_even_when_jobs_ignore_cancellation(
    tmp_path: Path, session_check: list[int]
) -> None:
    config, running = signal_batch(tmp_path, "stubborn")
    report_path = tmp_path / "report.json"
    proc = start(config, "-o", str(report_path))
    session_check.append(proc.pid)
    wait_for_markers(proc, tmp_path, running)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None, "the shielded jobs cannot let the first SIGINT end the run"
    proc.send_signal(signal.SIGINT)
    _, stderr = finish(proc, 3)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not report_path.exists()


@pytest.mark.slow
def test_a_verbose_run_whose_stderr_nobody_reads_still_ends(inputs: Path) -> None:
    """``asyncbatch run -v ... 2>&1 | head -1``: once the reader is gone every ``-v``
    line fails (EPIPE). Whatever the exit code, the run must end, not hang."""
    config = write_json(
        inputs / "batch.json",
        {
            "jobs": [
                lines_job("a", "a.txt"),
                lines_job("b", "b.txt", depends_on=["a"]),
                lines_job("c", "c.txt", depends_on=["b"]),
            ]
        },
    )
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read stderr
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "asyncbatch", "run", "-v", str(config)],
            cwd=inputs,
            stdout=subprocess.PIPE,
            stderr=write_end,
            text=True,
            start_new_session=True,
        )
    finally:
        os.close(write_end)
    finish(proc, 10)  # a normal run takes well under a second


@pytest.mark.slow
@needs_posix_signals
def test_a_run_that_ends_normally_leaves_no_process_in_its_session(
    tmp_path: Path, session_check: list[int]
) -> None:
    config = write_json(
        tmp_path / "batch.json",
        {"jobs": [lines_job(f"j{i}", "batch.json") for i in range(4)]},
    )
    proc = start(config)
    session_check.append(proc.pid)
    stdout, stderr = finish(proc, SUBPROCESS_START)
    assert proc.returncode == 0, stderr
    assert summary(stdout)["succeeded"] == 4
