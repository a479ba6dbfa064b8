"""Control for real workloads as a user meets it on the command line: the options
of ``run`` and ``each`` (bad values are one located line and exit 2, nothing run),
a halt on success exiting 0, the report's ``halted`` and ``resources``, and
``--resume`` running again what depends on a job that ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import invoke, read_json, summary, write_json

TRACE = "echo {name} >> trace.txt"


def trace(folder: Path) -> list[str]:
    path = folder / "trace.txt"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def traced_job(name: str, **fields: Any) -> dict[str, Any]:
    """A command job that writes its name to trace.txt when it runs."""
    return {"name": name, "action": "command", "input": ".", "params": {"shell": TRACE}, **fields}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text("one\ntwo\n", encoding="utf-8")
    return tmp_path


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--halt", "soon,fail=150%"], "error: --halt: expected WHEN,COND=N"),
        (["--halt", "now,fail=0"], "error: --halt: expected WHEN,COND=N"),
        (["--memfree", "12Q"], "error: --memfree: '12Q' is not a size"),
        (["--fail-fast", "--halt", "now,fail=2"], "error: --halt and --fail-fast: give only one"),
        (["--max-failures", "2", "--halt", "soon,fail=1"], "--max-failures: give only one"),
        (["--delay", "-1"], "--delay"),
        (["--load", "0"], "--load"),
        (["--retry-delay", "0"], "--retry-delay"),
    ],
)
@pytest.mark.parametrize("command", ["run", "each"])
def test_a_bad_control_value_is_exit_2_and_nothing_runs(
    folder: Path, monkeypatch: pytest.MonkeyPatch, command: str, args: list[str], message: str
) -> None:
    monkeypatch.chdir(folder)
    write_json(folder / "batch.json", {"jobs": [traced_job("a")]})
    if command == "run":
        result = invoke(["run", "batch.json", *args])
    else:
        result = invoke(["each", "a.txt", *args, "--", "sh", "-c", TRACE])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert trace(folder) == []


@pytest.mark.parametrize(
    ("config", "args", "problem"),
    [
        (
            {"jobs": [traced_job("a"), traced_job("b", slots=3)]},
            ["-j", "2"],
            "jobs[1].slots: takes 3 slots, more than the run's 2 (-j, else max_concurrency)",
        ),
        (
            {"max_concurrency": 2, "jobs": [traced_job("b", slots=3)]},
            [],
            "jobs[0].slots: takes 3 slots, more than the run's 2 (-j, else max_concurrency)",
        ),
        (
            {"jobs": [traced_job("a", retry_on=["OSErorr"], retries=1)]},
            [],
            "jobs[0].retry_on[0]: unknown error type 'OSErorr' (did you mean 'OSError'?)",
        ),
        (
            {"defaults": {"retry_on": [1000]}, "jobs": [traced_job("a")]},
            [],
            "defaults.retry_on[0]: exit code 1000 is not between 0 and 255",
        ),
        (
            {"defaults": {"retry_delay": -1}, "jobs": [traced_job("a")]},
            [],
            "defaults.retry_delay: Input should be greater than 0",
        ),
        (
            {"limits": {"gpu": 1}, "jobs": [traced_job("a", limits={"gpu": 2})]},
            [],
            "jobs[0].limits.gpu: takes 2 slots of 'gpu', which has 1",
        ),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_bad_config_key_is_one_located_line_exit_2_and_nothing_runs(
    folder: Path, config: dict[str, Any], args: list[str], problem: str, dry_run: bool
) -> None:
    path = write_json(folder / "batch.json", config)
    result = invoke(["run", str(path), *args, *(["--dry-run"] if dry_run else [])])
    assert result.exit_code == 2
    (line, last) = result.stderr.splitlines()
    assert line.startswith(f"error: {path}: {problem}")
    assert last == "error: the config is invalid; nothing was run"
    if dry_run:
        (error,) = json.loads(result.stdout)["errors"]
        assert error.startswith(problem)
    assert trace(folder) == []


def test_an_unknown_error_type_lists_the_known_ones(folder: Path) -> None:
    path = write_json(folder / "batch.json", {"jobs": [traced_job("a", retry_on=["Nope"])]})
    result = invoke(["run", str(path)])
    assert result.exit_code == 2
    assert "known: FileNotFoundError, PermissionError, NotARegularFile" in result.stderr
    assert "or a built-in exception such as OSError" in result.stderr


def test_more_slots_than_the_config_allows_are_fine_with_a_larger_j(folder: Path) -> None:
    path = write_json(
        folder / "batch.json", {"max_concurrency": 1, "jobs": [traced_job("a", slots=2)]}
    )
    result = invoke(["run", str(path), "-j", "2"])
    assert result.exit_code == 0, result.stderr
    assert trace(folder) == ["a"]


# --- halting ---------------------------------------------------------------------------------


def test_a_halt_on_success_exits_0_and_names_itself(folder: Path) -> None:
    jobs = [{"name": "lines", "action": "count_lines", "input": "*.txt"}]
    path = write_json(folder / "batch.json", {"jobs": jobs})
    out = folder / "report.json"
    result = invoke(["run", str(path), "-j", "1", "--halt", "now,success=1", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["cancelled"] == 2
    assert "stopped: halted by --halt now,success=1" in result.stderr
    report = read_json(out)
    assert report["halted"] == {"halt": "now,success=1", "reason": "halted by --halt now,success=1"}
    assert [job["status"] for job in report["jobs"]] == ["succeeded", "cancelled", "cancelled"]


def test_fail_fast_is_a_halt_now_on_the_first_failure_in_the_report(folder: Path) -> None:
    jobs = [{"name": "gone", "action": "count_lines", "input": "none.txt"}, traced_job("a")]
    path = write_json(folder / "batch.json", {"jobs": jobs})
    out = folder / "report.json"
    result = invoke(["run", str(path), "-j", "1", "--fail-fast", "-o", str(out)])
    assert result.exit_code == 1
    assert read_json(out)["halted"] == {
        "halt": "now,fail=1",
        "reason": "the run halted after 1 failure (first: 'gone')",
    }


def test_each_takes_the_controls(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder)
    controls = ["--halt", "soon,success=2", "--delay", "0", "--load", "1000"]
    controls += ["--memfree", "1K", "--retry-delay", "0.01", "-j", "1", "-o", "report.json"]
    result = invoke(["each", "a.txt", "b.txt", "c.txt", *controls, "--action", "count_lines"])
    assert result.exit_code == 0, result.stderr
    statuses = [job["status"] for job in read_json(folder / "report.json")["jobs"]]
    assert statuses == ["succeeded", "succeeded", "cancelled"]


@pytest.mark.parametrize("command", ["run", "each"])
def test_help_shows_every_control(command: str) -> None:
    result = invoke([command, "--help"])
    for flag in ("--halt", "--delay", "--load", "--memfree", "--retry-delay", "--fail-fast"):
        assert flag in result.stdout


def test_the_schema_has_the_new_keys_on_jobs_and_defaults() -> None:
    schema = json.loads(invoke(["schema"]).stdout)
    for model in ("JobConfig", "Defaults"):
        properties = schema["$defs"][model]["properties"]
        assert {"retry_on", "retry_delay", "slots"} <= set(properties)
        assert properties["slots"]["anyOf"][0]["minimum"] == 1


# --- resources and resume ---------------------------------------------------------------------


def test_the_report_says_what_each_job_used_and_a_reused_job_keeps_it(folder: Path) -> None:
    jobs = [{"name": "lines", "action": "count_lines", "input": "a.txt"}]
    path = write_json(folder / "batch.json", {"jobs": jobs})
    out = folder / "report.json"
    assert invoke(["run", str(path), "-o", str(out)]).exit_code == 0
    first = read_json(out)["jobs"][0]
    assert first["resources"]["read_bytes"] == 8
    assert list(first)[-1] == "resources"
    assert invoke(["run", str(path), "-o", str(out), "--resume"]).exit_code == 0
    again = read_json(out)["jobs"][0]
    assert again["reused"] is True
    assert again["resources"] == first["resources"]


def test_resume_runs_again_what_depends_on_a_job_that_ran(folder: Path) -> None:
    jobs = [
        {"name": "a", "action": "count_lines", "input": "a.txt"},
        traced_job("b", depends_on=["a"]),
        traced_job("c", depends_on=["b"]),
        traced_job("d"),
    ]
    path = write_json(folder / "batch.json", {"jobs": jobs})
    out = folder / "report.json"
    assert invoke(["run", str(path), "-o", str(out), "-j", "1"]).exit_code == 0
    assert trace(folder) == ["b", "c", "d"]
    (folder / "trace.txt").unlink()
    assert invoke(["run", str(path), "-o", str(out), "--resume"]).exit_code == 0
    assert trace(folder) == []  # nothing changed: everything reused
    (folder / "a.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    assert invoke(["run", str(path), "-o", str(out), "--resume", "-j", "1"]).exit_code == 0
    assert trace(folder) == ["b", "c"]  # a ran again: what depends on it too, d not
    reused = {job["name"]: job["reused"] for job in read_json(out)["jobs"]}
    assert reused == {"a": False, "b": False, "c": False, "d": True}


def test_resume_runs_again_what_depends_on_a_glob_one_of_whose_files_changed(
    folder: Path,
) -> None:
    jobs = [
        {"name": "lines", "action": "count_lines", "input": "*.txt"},
        traced_job("all", depends_on=["lines"]),
        traced_job("only-c", depends_on=["lines[c.txt]"]),
    ]
    path = write_json(folder / "batch.json", {"jobs": jobs})
    out = folder / "report.json"
    assert invoke(["run", str(path), "-o", str(out)]).exit_code == 0
    (folder / "trace.txt").unlink()
    (folder / "b.txt").write_text("changed\n", encoding="utf-8")
    assert invoke(["run", str(path), "-o", str(out), "--resume"]).exit_code == 0
    assert trace(folder) == ["all"]  # only-c waits for c.txt alone, which did not run
