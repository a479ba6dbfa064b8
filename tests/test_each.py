"""``asyncbatch each``: one job per input without a config file, as ``command`` jobs
(``-- PROGRAM ARG...``) or with an action (``--action NAME -p KEY=VALUE``), through
the same loader, session, report and exit codes as ``run``.

Real programs (``sh``, ``awk``, this interpreter) on real files in ``tmp_path``,
through the command in process (``invoke``, the current directory moved to
``tmp_path``); one test runs ``python -m asyncbatch each`` as a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from support import invoke, read_json, run_module, summary

from asyncbatch.config import load_config_data
from asyncbatch.session import default_registry

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX programs")

PY = sys.executable


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the current directory, with ``a.txt``, ``b.txt``, and
    ``logs/`` holding two logs, a dotfile and a text file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("one two\nthree\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("ERROR x\nok\nerror y\n", encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "2.log").write_text("ERROR late\n", encoding="utf-8")
    (logs / "1.log").write_text("fine\n", encoding="utf-8")
    (logs / ".hidden.log").write_text("ERROR hidden\n", encoding="utf-8")
    (logs / "notes.txt").write_text("not a log\n", encoding="utf-8")
    return tmp_path


def each(*args: str, code: int = 0) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """``asyncbatch each -q -o report.json ARGS``: the summary and the report's jobs
    by name (in report order)."""
    result = invoke(["each", "-q", "-o", "report.json", *args])
    assert result.exit_code == code, result.stderr
    jobs = read_json(Path("report.json"))["jobs"]
    return summary(result.stdout), {job["name"]: job for job in jobs}


def stdout_of(job: dict[str, Any]) -> str:
    assert job["status"] == "succeeded", job["error"]
    return str(job["result"]["stdout"])


def usage_error(*args: str) -> str:
    """Run ``each ARGS``, expect exit 2 with nothing on stdout; its stderr, with
    the usage panel's frame and line breaks flattened to single spaces."""
    result = invoke(["each", *args])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())


# --- -- PROGRAM ARG...: command jobs ---------------------------------------------------


def test_without_a_placeholder_the_input_is_appended_as_given(here: Path) -> None:
    (here / "x{y}.txt").write_text("braces\n", encoding="utf-8")
    counts, jobs = each("a.txt", "./b.txt", "x{y}.txt", "--", "echo", "got")
    assert counts["succeeded"] == 3
    assert list(jobs) == ["a.txt", "./b.txt", "x{y}.txt"]
    assert stdout_of(jobs["a.txt"]) == "got a.txt\n"
    assert stdout_of(jobs["./b.txt"]) == "got ./b.txt\n"  # as given, not resolved
    assert stdout_of(jobs["x{y}.txt"]) == "got x{y}.txt\n"  # braces in a path are no template
    assert all(job["action"] == "command" for job in jobs.values())


def test_placeholders_are_filled_as_in_configs_and_nothing_is_appended(here: Path) -> None:
    script = 'printf "%s|" "$@"'
    _, jobs = each(
        "logs/1.log", "--", "sh", "-c", script, "sh", "{name}", "{stem}", "{suffix}", "{input}"
    )
    fields = stdout_of(jobs["logs/1.log"]).split("|")
    assert fields == ["logs/1.log", "1", ".log", str(here / "logs" / "1.log"), ""]
    _, jobs = each("a.txt", "--", "sh", "-c", 'printf "%s" "$1"', "sh", "{parent}")
    assert stdout_of(jobs["a.txt"]) == str(here)


@pytest.mark.skipif(shutil.which("awk") is None, reason="needs awk")
def test_doubled_braces_are_literal_braces_for_an_awk_script(here: Path) -> None:
    _, jobs = each("a.txt", "b.txt", "--", "awk", "{{print $1}}")
    assert stdout_of(jobs["a.txt"]) == "one\nthree\n"
    assert stdout_of(jobs["b.txt"]) == "ERROR\nok\nerror\n"


def test_an_unknown_placeholder_is_a_located_usage_error_and_nothing_runs(here: Path) -> None:
    stderr = usage_error("a.txt", "--", "touch", "{stme}.done")
    assert "error: argv[1] '{stme}.done': unknown placeholder {stme}" in stderr
    assert "nothing was run" in stderr
    assert not list(here.glob("*.done"))
    # awk's braces written single: the message says how to write them
    stderr = usage_error("a.txt", "--", "awk", "{print $1}")
    assert "argv[1] '{print $1}': " in stderr
    assert "write {{ and }} for literal braces" in stderr


def test_the_command_runs_in_the_current_directory(here: Path) -> None:
    _, jobs = each("logs/1.log", "--", "sh", "-c", "pwd -P")
    assert stdout_of(jobs["logs/1.log"]) == os.path.realpath(here) + "\n"


def test_a_failing_command_fails_its_job_and_the_run_exits_1(here: Path) -> None:
    result = invoke(["each", "a.txt", "b.txt", "--", "sh", "-c", 'test "$0" = a.txt || exit 3'])
    assert result.exit_code == 1
    assert summary(result.stdout) == {
        "total_jobs": 2,
        "succeeded": 1,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
    }
    assert "CommandFailed: exit status 3" in result.stderr


def test_a_program_that_cannot_run_fails_its_jobs(here: Path) -> None:
    _, jobs = each("a.txt", "--", "no-such-program-xyz", code=1)
    assert jobs["a.txt"]["error"]["type"] == "CommandFailed"
    assert "cannot execute 'no-such-program-xyz'" in jobs["a.txt"]["error"]["message"]


# --- --action NAME -p KEY=VALUE --------------------------------------------------------


def test_an_action_runs_on_each_input(here: Path) -> None:
    counts, jobs = each("a.txt", "b.txt", "--action", "count_lines")
    assert counts["succeeded"] == 2
    assert jobs["a.txt"]["action"] == "count_lines"
    assert jobs["a.txt"]["result"] == {"lines": 2}
    assert jobs["b.txt"]["result"] == {"lines": 3}


def test_p_values_are_json_when_they_parse_else_strings(here: Path) -> None:
    # 'md5' is no JSON: the string; '"md5"' is JSON: the same string
    md5 = {"algorithm": "md5", "digest": hashlib.md5((here / "a.txt").read_bytes()).hexdigest()}
    _, jobs = each("a.txt", "--action", "checksum", "-p", "algorithm=md5")
    assert jobs["a.txt"]["result"] == md5
    _, jobs = each("a.txt", "--action", "checksum", "-p", 'algorithm="md5"')
    assert jobs["a.txt"]["result"] == md5
    # '1' is JSON: a number, which an algorithm is not
    stderr = usage_error("a.txt", "--action", "checksum", "-p", "algorithm=1")
    assert "error: -p algorithm: " in stderr
    # a JSON list, and JSON that looks like a list but is not: the string
    args = ["a.txt", "--action", "command", "-p", 'argv=["sh", "-c", "exit 3"]']
    _, jobs = each(*args, "-p", "ok_exit_codes=[0, 3]")
    assert jobs["a.txt"]["result"]["exit_code"] == 3
    stderr = usage_error(*args, "-p", "ok_exit_codes=[0, 3")
    assert "error: -p ok_exit_codes: Input should be a valid list" in stderr


@pytest.mark.slow  # search_pattern starts a worker process
def test_the_search_pattern_example_with_json_and_string_values(here: Path) -> None:
    # "ERROR" and "ERROR|error" are no JSON: strings; 'true' is JSON: a boolean
    _, jobs = each("b.txt", "--action", "search_pattern", "-p", "pattern=ERROR")
    assert jobs["b.txt"]["result"]["matches"] == 1
    args = ["b.txt", "--action", "search_pattern", "-p", "pattern=ERROR", "-p", "ignore_case=true"]
    _, jobs = each(*args)
    assert jobs["b.txt"]["result"]["matches"] == 2
    _, jobs = each("b.txt", "--action", "search_pattern", "--param", "pattern=ERROR|error")
    assert jobs["b.txt"]["result"]["matches"] == 2
    _, jobs = each("b.txt", "--action", "search_pattern", "-p", 'pattern="y"')
    assert jobs["b.txt"]["result"]["matches"] == 1


def test_a_command_can_also_be_given_as_an_action_with_json_params(here: Path) -> None:
    argv = json.dumps(["echo", "{stem}"])
    _, jobs = each("a.txt", "--action", "command", "-p", f"argv={argv}")
    assert stdout_of(jobs["a.txt"]) == "a\n"


def test_action_and_param_problems_are_located_on_the_command_line_once(here: Path) -> None:
    stderr = usage_error("a.txt", "b.txt", "--action", "cont_lines")
    assert "error: --action: unknown action 'cont_lines' (did you mean 'count_lines'?)" in stderr
    stderr = usage_error("a.txt", "b.txt", "--action", "search_pattern")
    assert stderr.count("error: -p pattern: Field required") == 1  # not once per input
    stderr = usage_error("a.txt", "--action", "count_lines", "-p", "pattren=x")
    assert "error: -p pattren: unknown key" in stderr
    stderr = usage_error("a.txt", "--action", "search_pattern", "-p", "a=1", "-p", "a=2", "-p", "b")
    assert "error: -p a: given twice" in stderr
    assert "error: -p 'b': expected KEY=VALUE" in stderr


# --- usage -----------------------------------------------------------------------------


def test_at_least_one_input_is_required(here: Path) -> None:
    assert "error: missing argument INPUT" in usage_error("--", "echo")
    assert "error: missing argument INPUT" in usage_error("--action", "count_lines")


def test_exactly_one_of_action_and_a_program_is_required(here: Path) -> None:
    expected = "error: give exactly one of --action NAME and -- PROGRAM [ARG]..."
    assert expected in usage_error("a.txt")
    assert expected in usage_error("a.txt", "--action", "count_lines", "--", "echo")
    assert "-- needs a PROGRAM after it" in usage_error("a.txt", "--")
    assert "-p: needs --action" in usage_error("a.txt", "-p", "x=1", "--", "echo")
    assert "INPUT '': an empty path" in usage_error("", "--", "echo")


def test_the_usage_line_shows_both_forms(here: Path) -> None:
    result = invoke(["each", "--help"])
    assert result.exit_code == 0
    assert "INPUT... (--action NAME [-p KEY=VALUE]... |" in " ".join(result.stdout.split())


def test_run_options_are_checked_as_for_run(here: Path) -> None:
    assert "--resume needs --output" in usage_error("a.txt", "--resume", "--", "true")
    assert "--scheduler needs --executor dask" in usage_error(
        "a.txt", "--scheduler", "tcp://h:1", "--", "true"
    )
    assert "Input should be greater than 0" in usage_error("a.txt", "--timeout", "0", "--", "true")
    # -o may not overwrite an input of the batch
    assert "it would be overwritten" in usage_error("a.txt", "-o", "a.txt", "--", "true")


# --- inputs, globs, names --------------------------------------------------------------


def test_a_quoted_glob_is_expanded_and_its_jobs_named_by_their_paths(here: Path) -> None:
    _, jobs = each("b.txt", "logs/*.log", "a.txt", "--", "cat")
    assert list(jobs) == ["b.txt", "logs/1.log", "logs/2.log", "a.txt"]  # in input order
    assert jobs["logs/2.log"]["input"] == "logs/2.log"
    assert stdout_of(jobs["logs/2.log"]) == "ERROR late\n"  # appended: the matched path
    # ** as in configs; dotfiles are left out
    _, jobs = each("**/*.log", "--action", "count_lines")
    assert list(jobs) == ["logs/1.log", "logs/2.log"]


def test_inputs_resolve_against_the_current_directory(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(here / "logs")
    _, jobs = each("../a.txt", "*.log", "--action", "count_lines")
    assert list(jobs) == ["../a.txt", "1.log", "2.log"]
    assert jobs["../a.txt"]["result"] == {"lines": 2}


def test_a_glob_matching_nothing_is_one_failed_job(here: Path) -> None:
    counts, jobs = each("nothing/*.x", "a.txt", "--", "cat", code=1)
    assert counts["failed"] == 1
    assert jobs["nothing/*.x"]["error"]["type"] == "FileNotFoundError"
    assert jobs["a.txt"]["status"] == "succeeded"


def test_an_input_given_twice_or_matched_twice_runs_once(here: Path) -> None:
    _, jobs = each("a.txt", "*.txt", "a.txt", "logs/*.log", "logs/?.log", "--", "cat")
    assert list(jobs) == ["a.txt", "b.txt", "logs/1.log", "logs/2.log"]


def test_a_missing_input_fails_its_job_only(here: Path) -> None:
    _, jobs = each("gone.txt", "a.txt", "--action", "count_lines", code=1)
    assert jobs["gone.txt"]["error"]["type"] == "FileNotFoundError"
    assert jobs["a.txt"]["status"] == "succeeded"


def test_the_loader_names_glob_matches_by_path_only_when_asked(here: Path) -> None:
    raw = {"jobs": [{"name": "logs", "action": "count_lines", "input": "logs/*.log"}]}
    registry = default_registry()
    default = load_config_data(raw, base_dir=here, label="inline", registry=registry)
    assert [job.name for job in default.jobs] == ["logs[logs/1.log]", "logs[logs/2.log]"]
    by_path = load_config_data(
        raw, base_dir=here, label="inline", registry=registry, name_matches_by_path=True
    )
    assert [job.name for job in by_path.jobs] == ["logs/1.log", "logs/2.log"]
    assert by_path.source == "inline"


# --- the report, the plan, JUnit -------------------------------------------------------


def test_the_report_and_stdout_are_those_of_run(here: Path) -> None:
    result = invoke(["each", "-v", "-o", "out.json", "b.txt", "a.txt", "--", "cat"])
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["succeeded"] == 2  # stdout: the summary, nothing else
    assert "succeeded b.txt" in result.stderr  # -v: a line per job, on stderr
    report = read_json(here / "out.json")
    assert report["config"] == "asyncbatch each"
    assert [job["name"] for job in report["jobs"]] == ["b.txt", "a.txt"]
    assert [job["input"] for job in report["jobs"]] == ["b.txt", "a.txt"]
    assert report["max_concurrency"] == 4  # the default -j, as for run


def test_quiet_prints_nothing_on_stderr_when_all_succeed(here: Path) -> None:
    result = invoke(["each", "-q", "a.txt", "--action", "count_lines"])
    assert result.exit_code == 0
    assert result.stderr == ""


def test_dry_run_prints_the_plan_and_runs_nothing(here: Path) -> None:
    result = invoke(["each", "--dry-run", "a.txt", "logs/*.log", "--", "touch", "{stem}.done"])
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["valid"] is True
    assert [job["name"] for job in plan["jobs"]] == ["a.txt", "logs/1.log", "logs/2.log"]
    assert plan["jobs"][0]["command"] == ["touch", "a.done"]
    assert not list(here.glob("*.done"))
    result = invoke(["each", "--dry-run", "a.txt", "--", "echo", "{stme}"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["valid"] is False


def test_junit_has_a_testcase_per_input_in_order(here: Path) -> None:
    args = ["each", "--junit", "j.xml", "b.txt", "a.txt", "--", "sh", "-c", 'test "$0" = a.txt']
    assert invoke(args).exit_code == 1
    xml = (here / "j.xml").read_text(encoding="utf-8")
    assert xml.index('name="b.txt"') < xml.index('name="a.txt"')
    assert xml.count("<failure") == 1


# --- execution control -----------------------------------------------------------------


def test_fail_fast_cancels_what_has_not_started(here: Path) -> None:
    args = ["-j", "1", "--fail-fast", "a.txt", "b.txt", "logs/*.log", "--", "false"]
    counts, jobs = each(*args, code=1)
    assert counts["failed"] == 1
    assert counts["cancelled"] == 3
    assert jobs["a.txt"]["status"] == "failed"
    args = ["-j", "1", "--max-failures", "2", "a.txt", "b.txt", "logs/1.log", "--", "false"]
    counts, _ = each(*args, code=1)
    assert (counts["failed"], counts["cancelled"]) == (2, 1)


def test_timeout_fails_a_job_that_runs_too_long(here: Path) -> None:
    _, jobs = each("--timeout", "0.2", "a.txt", "--", "sh", "-c", "sleep 30", code=1)
    assert jobs["a.txt"]["error"]["type"] == "Timeout"
    assert jobs["a.txt"]["duration_ms"] < 10_000


def test_retries_rerun_a_failed_command(here: Path) -> None:
    flaky = 'test -e "$0.seen" && exit 0; touch "$0.seen"; exit 1'
    _, jobs = each("--retries", "1", "a.txt", "--", "sh", "-c", flaky)
    assert (jobs["a.txt"]["status"], jobs["a.txt"]["attempts"]) == ("succeeded", 2)


SPAN = """
import time
start = time.monotonic()
time.sleep(0.25)
print(start, time.monotonic())
"""


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of the ``(start, end)`` spans that overlap."""
    events = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.slow  # three rounds of 0.25 s
def test_j_bounds_the_commands_running_at_once(here: Path) -> None:
    """Each command records when it ran (the system's monotonic clock): with -j 2,
    never more than two at once."""
    inputs = ["a.txt", "b.txt", "logs/1.log", "logs/2.log", "logs/notes.txt"]
    _, jobs = each("-j", "2", *inputs, "--", PY, "-c", SPAN)
    spans = []
    for name in inputs:
        start, end = map(float, stdout_of(jobs[name]).split())
        spans.append((start, end))
    assert most_at_once(spans) == 2


def test_resume_skips_the_work_already_done(here: Path) -> None:
    record = 'echo "$0" >> runs.log'
    each("a.txt", "b.txt", "--", "sh", "-c", record)
    assert sorted((here / "runs.log").read_text().split()) == ["a.txt", "b.txt"]
    (here / "b.txt").write_text("changed\n", encoding="utf-8")
    _, jobs = each("--resume", "a.txt", "b.txt", "--", "sh", "-c", record)
    assert (jobs["a.txt"]["reused"], jobs["b.txt"]["reused"]) == (True, False)
    assert sorted((here / "runs.log").read_text().split()) == ["a.txt", "b.txt", "b.txt"]


# --- the real command ------------------------------------------------------------------


@pytest.mark.slow
def test_python_m_asyncbatch_each_expands_a_glob_the_shell_left(here: Path) -> None:
    completed = run_module(["each", "-o", "r.json", "logs/*.log", "--", "cat"], cwd=here)
    assert completed.returncode == 0, completed.stderr
    assert summary(completed.stdout)["succeeded"] == 2
    jobs = read_json(here / "r.json")["jobs"]
    assert [job["result"]["stdout"] for job in jobs] == ["fine\n", "ERROR late\n"]
