"""The real ``asyncbatch`` command: in process with Typer's CliRunner (stdout and
stderr kept apart) and as a real subprocess (``python -m asyncbatch``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import SAMPLE, add_module, invoke, read_json, run_module, summary

SAMPLE_JOBS = ["app-lines", "notes-words", "app-errors", "notes-sha256"]
ALL_SUCCEEDED = {"total_jobs": 4, "succeeded": 4, "failed": 0, "skipped": 0, "cancelled": 0}
BUILTINS = ["checksum", "count_lines", "count_words", "file_size", "search_pattern"]
SUBPROCESS_TIMEOUT = 20

WriteConfig = Callable[..., Path]

TRACE_ACTION = (
    "from pathlib import Path\n\n"
    "async def touch(path, params):\n"
    "    with open(Path(__file__).with_name('trace.txt'), 'a') as trace:\n"
    "        trace.write(path.name + '\\n')\n"
    "    return {'touched': path.name}\n"
)


def add_trace_module(folder: Path) -> str:
    """A module next to the config with an action that leaves a trace when it runs
    (not when it is imported); returns the ``module:function`` reference."""
    return f"{add_module(folder, TRACE_ACTION, 'trace')}:touch"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A folder with two small inputs."""
    (tmp_path / "a.txt").write_text("one two\nthree\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("four\n", encoding="utf-8")
    return tmp_path


def count_lines(name: str, input_: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "action": "count_lines", "input": input_, **fields}


# --- the sample ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_sample_runs_from_another_directory_and_writes_the_report(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    completed = run_module(["run", str(SAMPLE), "-o", str(report_path)], cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert summary(completed.stdout) == ALL_SUCCEEDED
    report = read_json(report_path)
    assert report["summary"] == ALL_SUCCEEDED
    assert [job["name"] for job in report["jobs"]] == SAMPLE_JOBS
    assert all(job["status"] == "succeeded" for job in report["jobs"])
    assert "4 succeeded" in completed.stderr


def test_the_sample_runs_in_process_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["run", str(SAMPLE), "-o", "report.json"])
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout) == ALL_SUCCEEDED
    assert [job["name"] for job in read_json(tmp_path / "report.json")["jobs"]] == SAMPLE_JOBS


@pytest.mark.slow
def test_python_m_asyncbatch_run_matches_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("asyncbatch")
    if not script.exists():
        pytest.skip("the asyncbatch console script is not installed next to this Python")
    by_module = run_module(["run", str(SAMPLE)], cwd=tmp_path)
    by_script = subprocess.run(
        [str(script), "run", str(SAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert by_module.returncode == by_script.returncode == 0
    assert by_module.stdout == by_script.stdout
    assert summary(by_script.stdout) == ALL_SUCCEEDED


# --- streams and exit codes --------------------------------------------------------------


@pytest.mark.slow
def test_a_failing_job_exits_1_with_the_failure_on_stderr_and_the_report_written(
    data: Path, write_config: WriteConfig
) -> None:
    config = write_config(
        {
            "jobs": [
                count_lines("a", "a.txt"),
                count_lines("gone", "gone.txt"),
                count_lines("b", "b.txt"),
            ]
        }
    )
    report_path = data / "report.json"
    completed = run_module(["run", str(config), "-o", str(report_path)], cwd=data)
    assert completed.returncode == 1
    assert summary(completed.stdout) == {
        "total_jobs": 3,
        "succeeded": 2,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
    }
    assert "gone" in completed.stderr
    assert "gone.txt: no such file" in completed.stderr
    report = read_json(report_path)
    assert [job["status"] for job in report["jobs"]] == ["succeeded", "failed", "succeeded"]
    assert report["jobs"][1]["error"] == {
        "type": "FileNotFoundError",
        "message": "gone.txt: no such file",
    }


def test_a_config_error_exits_2_with_located_messages_and_touches_no_report(
    data: Path, write_config: WriteConfig
) -> None:
    reference = add_trace_module(data)
    config = write_config(
        {
            "jobs": [
                {"name": "ran", "action": reference, "input": "a.txt"},
                {"name": "grep", "action": "search_pattern", "input": "a.txt"},
                {"name": "typo", "action": "count_lines", "input": "a.txt", "timeuot": 3},
            ]
        }
    )
    report_path = data / "report.json"
    report_path.write_text("previous report", encoding="utf-8")
    result = invoke(["run", str(config), "-o", str(report_path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "jobs[1].params.pattern" in result.stderr
    assert "jobs[2].timeuot" in result.stderr
    assert report_path.read_text(encoding="utf-8") == "previous report"
    assert not (data / "trace.txt").exists()


def test_a_config_that_does_not_parse_exits_2_naming_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "batch.json"
    config.write_text('{\n  "jobs": [\n    {"name": "a",}\n  ]\n}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = invoke(["run", "batch.json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "line 3" in result.stderr


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = invoke(["run", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "absent.json" in result.stderr


def test_an_output_into_a_missing_folder_exits_2_before_anything_runs(
    data: Path, write_config: WriteConfig
) -> None:
    reference = add_trace_module(data)
    config = write_config({"jobs": [{"name": "ran", "action": reference, "input": "a.txt"}]})
    result = invoke(["run", str(config), "-o", str(data / "missing" / "report.json")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "missing" in result.stderr
    assert not (data / "trace.txt").exists()
    assert not (data / "missing").exists()


def test_the_trace_action_leaves_a_trace_when_it_runs(
    data: Path, write_config: WriteConfig
) -> None:
    """The control for the tests that prove nothing ran."""
    reference = add_trace_module(data)
    config = write_config({"jobs": [{"name": "ran", "action": reference, "input": "a.txt"}]})
    result = invoke(["run", str(config), "-q"])
    assert result.exit_code == 0, result.stderr
    assert (data / "trace.txt").read_text(encoding="utf-8") == "a.txt\n"


def test_an_output_that_is_a_directory_exits_2(data: Path, write_config: WriteConfig) -> None:
    config = write_config({"jobs": [count_lines("a", "a.txt")]})
    result = invoke(["run", str(config), "-o", str(data)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "is a directory" in result.stderr


def test_an_unknown_action_warns_skips_the_job_and_exits_0(
    data: Path, write_config: WriteConfig
) -> None:
    config = write_config(
        {"jobs": [count_lines("a", "a.txt"), {"name": "odd", "action": "cuont", "input": "b.txt"}]}
    )
    result = invoke(["run", str(config), "-o", str(data / "report.json")])
    assert result.exit_code == 0
    assert "warning" in result.stderr
    assert "'cuont'" in result.stderr
    assert summary(result.stdout)["skipped"] == 1
    odd = read_json(data / "report.json")["jobs"][1]
    assert (odd["status"], odd["error"]["type"]) == ("skipped", "UnknownAction")


def test_strict_turns_an_unknown_action_into_a_config_error(
    data: Path, write_config: WriteConfig
) -> None:
    config = write_config({"jobs": [{"name": "odd", "action": "cuont", "input": "a.txt"}]})
    result = invoke(["run", str(config), "--strict"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "jobs[0].action" in result.stderr


@pytest.mark.parametrize(
    "option",
    [
        ["-j", "0"],
        ["--max-concurrency=-3"],
        ["--timeout", "0"],
        ["--timeout=-1"],
        ["--timeout", "nan"],
        ["--retries=-1"],
        ["--no-such-option"],
    ],
)
def test_a_bad_option_is_a_usage_error_with_exit_2(option: list[str]) -> None:
    result = invoke(["run", str(SAMPLE), *option])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_timeout_option_sets_the_default_per_job_timeout(
    data: Path, write_config: WriteConfig
) -> None:
    name = add_module(
        data,
        "import anyio\n\nasync def hang(path, params):\n    await anyio.sleep(10)\n    return {}\n",
        "slow",
    )
    config = write_config(
        {
            "defaults": {"timeout": 30},
            "jobs": [{"name": "stuck", "action": f"{name}:hang", "input": "a.txt"}],
        }
    )
    result = invoke(["run", str(config), "--timeout", "0.2", "-o", str(data / "report.json")])
    assert result.exit_code == 1
    stuck = read_json(data / "report.json")["jobs"][0]
    assert stuck["error"]["type"] == "Timeout"


def test_retries_option_sets_the_default_retries(data: Path, write_config: WriteConfig) -> None:
    name = add_module(
        data,
        "from pathlib import Path\n\n"
        "async def once(path, params):\n"
        "    marker = Path(__file__).with_name('failed-once')\n"
        "    if not marker.exists():\n"
        "        marker.touch()\n"
        "        raise RuntimeError('first attempt fails')\n"
        "    return {'ok': True}\n",
        "flaky",
    )
    config = write_config({"jobs": [{"name": "flaky", "action": f"{name}:once", "input": "a.txt"}]})
    result = invoke(["run", str(config), "--retries", "1", "-o", str(data / "report.json")])
    assert result.exit_code == 0, result.stderr
    flaky = read_json(data / "report.json")["jobs"][0]
    assert (flaky["status"], flaky["attempts"]) == ("succeeded", 2)


def test_max_concurrency_option_is_recorded_in_the_report(tmp_path: Path) -> None:
    result = invoke(["run", str(SAMPLE), "-j", "2", "-o", str(tmp_path / "report.json")])
    assert result.exit_code == 0
    assert read_json(tmp_path / "report.json")["max_concurrency"] == 2


# --- config discovery and stdin -----------------------------------------------------------


def test_run_without_a_config_prefers_asyncbatch_toml_over_asyncbatch_json(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (data / "asyncbatch.toml").write_text(
        '[[jobs]]\nname = "from-toml"\naction = "count_lines"\ninput = "a.txt"\n',
        encoding="utf-8",
    )
    (data / "asyncbatch.json").write_text(
        json.dumps({"jobs": [count_lines("x", "a.txt"), count_lines("y", "b.txt")]}),
        encoding="utf-8",
    )
    monkeypatch.chdir(data)
    result = invoke(["run", "-o", "report.json"])
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["total_jobs"] == 1
    assert read_json(data / "report.json")["jobs"][0]["name"] == "from-toml"


def test_run_without_a_config_finds_asyncbatch_json_alone(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (data / "asyncbatch.json").write_text(
        json.dumps({"jobs": [count_lines("x", "a.txt")]}), encoding="utf-8"
    )
    monkeypatch.chdir(data)
    result = invoke(["run"])
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["succeeded"] == 1


def test_run_without_a_config_and_none_found_says_so_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["run"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no config" in result.stderr
    assert "asyncbatch.toml" in result.stderr
    assert "asyncbatch.json" in result.stderr


def test_a_dash_reads_the_config_as_json_from_stdin_relative_to_the_cwd(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(data)
    stdin = json.dumps({"jobs": [count_lines("a", "a.txt"), count_lines("b", "b.txt")]})
    result = invoke(["run", "-", "-o", "report.json"], stdin=stdin)
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["succeeded"] == 2
    report = read_json(data / "report.json")
    assert [job["result"] for job in report["jobs"]] == [{"lines": 2}, {"lines": 1}]


@pytest.mark.slow
def test_a_dash_reads_stdin_in_a_subprocess(data: Path) -> None:
    stdin = json.dumps({"jobs": [count_lines("a", "a.txt")]})
    completed = run_module(["run", "-", "-q"], cwd=data, stdin=stdin)
    assert completed.returncode == 0, completed.stderr
    assert summary(completed.stdout)["succeeded"] == 1
    assert completed.stderr == ""


# --- dry run --------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_writes_no_report_and_runs_nothing(
    data: Path, write_config: WriteConfig
) -> None:
    reference = add_trace_module(data)
    config = write_config(
        {
            "jobs": [
                {"name": "traced", "action": reference, "input": "a.txt"},
                count_lines("gone", "gone.txt", depends_on=["traced"]),
                {"name": "odd", "action": "cuont", "input": "b.txt"},
            ]
        }
    )
    result = invoke(["run", str(config), "--dry-run", "-o", str(data / "report.json")])
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["valid"] is True
    assert plan["total_jobs"] == 3
    assert [list(job) for job in plan["jobs"]] == [
        ["name", "action", "input", "depends_on", "warnings"]
    ] * 3
    traced, gone, odd = plan["jobs"]
    assert traced == {
        "name": "traced",
        "action": reference,
        "input": "a.txt",
        "depends_on": [],
        "warnings": [],
    }
    assert gone["depends_on"] == ["traced"]
    assert any("FileNotFoundError" in warning for warning in gone["warnings"])
    assert any("UnknownAction" in warning for warning in odd["warnings"])
    assert not (data / "report.json").exists()
    assert not (data / "trace.txt").exists()


def test_dry_run_never_opens_an_input_so_a_fifo_cannot_hang_it(
    data: Path, write_config: WriteConfig
) -> None:
    os.mkfifo(data / "pipe")
    config = write_config({"jobs": [count_lines("pipe", "pipe"), count_lines("a", "a.txt")]})
    completed = run_module(["run", str(config), "--dry-run"], cwd=data)  # timeout=20
    assert completed.returncode == 0, completed.stderr
    plan = json.loads(completed.stdout)
    assert any("NotARegularFile" in warning for warning in plan["jobs"][0]["warnings"])
    assert plan["jobs"][1]["warnings"] == []


def test_dry_run_on_an_invalid_config_exits_2(data: Path, write_config: WriteConfig) -> None:
    config = write_config(
        {"jobs": [{"name": "grep", "action": "search_pattern", "input": "a.txt"}]}
    )
    result = invoke(["run", str(config), "--dry-run"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["valid"] is False
    assert "jobs[0].params.pattern" in result.stderr


# --- verbosity --------------------------------------------------------------------------------


def test_quiet_prints_nothing_on_stderr_when_every_job_succeeds() -> None:
    result = invoke(["run", str(SAMPLE), "-q"])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert summary(result.stdout) == ALL_SUCCEEDED


def test_quiet_still_reports_a_failure_on_stderr(data: Path, write_config: WriteConfig) -> None:
    config = write_config({"jobs": [count_lines("gone", "gone.txt")]})
    result = invoke(["run", str(config), "-q"])
    assert result.exit_code == 1
    assert "gone.txt" in result.stderr


def test_verbose_prints_a_line_per_finished_job_on_stderr() -> None:
    result = invoke(["run", str(SAMPLE), "-v"])
    assert result.exit_code == 0
    job_lines = [line for line in result.stderr.splitlines() if line.startswith("succeeded")]
    assert sorted(line.split()[1] for line in job_lines) == sorted(SAMPLE_JOBS)
    assert summary(result.stdout) == ALL_SUCCEEDED


# --- other commands ----------------------------------------------------------------------------


def test_actions_lists_the_five_builtins() -> None:
    result = invoke(["actions"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert [name for name in listed if name in BUILTINS] == BUILTINS


def test_actions_json_shows_each_actions_params() -> None:
    result = invoke(["actions", "--json"])
    assert result.exit_code == 0
    actions = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert set(BUILTINS) <= set(actions)
    params = {param["name"]: param for param in actions["search_pattern"]["params"]}
    assert params["pattern"]["required"] is True
    assert params["ignore_case"]["required"] is False
    assert params["ignore_case"]["default"] is False
    assert actions["count_lines"]["params"] == []


def test_schema_prints_a_json_schema() -> None:
    result = invoke(["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "$schema" in schema
    assert "jobs" in schema["properties"]


def test_version_prints_the_name_and_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.stdout == "asyncbatch 0.1.0\n"


def test_version_does_not_import_the_runtime_stack(tmp_path: Path) -> None:
    completed = run_module(["--version"], cwd=tmp_path, python_flags=["-X", "importtime"])
    assert completed.returncode == 0
    assert completed.stdout == "asyncbatch 0.1.0\n"
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "asyncbatch" in imported, "the importtime output was parsed"
    assert imported.isdisjoint({"asyncio", "anyio", "aiofiles", "pydantic"})


def test_the_scheduler_variable_alone_does_not_break_a_local_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ASYNCBATCH_SCHEDULER, set for the cluster in a shell profile, made every local
    run exit 2 (--scheduler needs --executor dask): a local run now ignores it."""
    monkeypatch.setenv("ASYNCBATCH_SCHEDULER", "tcp://127.0.0.1:1")
    result = invoke(["run", str(SAMPLE), "-q"])
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["succeeded"] == 4
    given = invoke(["run", str(SAMPLE), "-q", "--scheduler", "tcp://127.0.0.1:1"])
    assert given.exit_code == 2
    assert given.stderr == "error: --scheduler needs --executor dask\n"
    assert "ASYNCBATCH_SCHEDULER" in invoke(["run", "--help"]).stdout
