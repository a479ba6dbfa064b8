"""Every usage error of every command, Typer's own included, is one ``error:`` line
on stderr naming what was wrong, and exit 2: never a boxed excerpt of the help.
The environment variable behind a value is named only when the value came from it.
A warning about the config (an unknown action) is located as its errors are."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from support import SAMPLE, invoke, run_module
from typer.testing import Result

BOX = re.compile("[\u2500-\u257f]")


def one_error_line(args: Sequence[str], env: dict[str, str] | None = None) -> str:
    result = invoke_with(args, env)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert not BOX.search(result.stderr), result.stderr
    assert "Usage:" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return str(line).replace("'root", "'asyncbatch")  # in process, the program has no name


def invoke_with(args: Sequence[str], env: dict[str, str] | None) -> Result:
    if not env:
        return invoke(args)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return invoke(args)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["run", str(SAMPLE), "-j", "x"],
            "error: -j/--max-concurrency: Input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        (
            ["run", str(SAMPLE), "-j", "0"],
            "error: -j/--max-concurrency: Input should be greater than or equal to 1",
        ),
        (
            ["run", str(SAMPLE), "--timeout", "0"],
            "error: --timeout: Input should be greater than 0",
        ),
        (
            ["run", str(SAMPLE), "--executor", "ray"],
            "error: --executor: expected 'local' or 'dask'",
        ),
        (["run", str(SAMPLE), "--timeout"], "error: --timeout: needs a value"),
        (
            ["run", "--fial-fast"],
            "error: no such option --fial-fast (did you mean --fail-fast?); "
            "see 'asyncbatch run --help'",
        ),
        (
            ["run", "--frobnicate"],
            "error: no such option --frobnicate; see 'asyncbatch run --help'",
        ),
        (
            ["run", "a.json", "b.json"],
            "error: got unexpected extra argument(s) (b.json); see 'asyncbatch run --help'",
        ),
        (["run", "--progress=yes"], "error: --progress: takes no value"),
        (["show"], "error: missing argument REPORT; see 'asyncbatch show --help'"),
        (["show", "r.json", "--html"], "error: --html: needs a value"),
        (
            ["each", "a.txt", "--retries", "-1", "--", "echo"],
            "error: --retries: Input should be greater than or equal to 0",
        ),
        (["actions", "--yaml"], "error: no such option --yaml; see 'asyncbatch actions --help'"),
        (
            ["schema", "extra"],
            "error: got unexpected extra argument(s) (extra); see 'asyncbatch schema --help'",
        ),
        (["frob"], "error: no such command 'frob'; see 'asyncbatch --help'"),
        (["--frob"], "error: no such option --frob; see 'asyncbatch --help'"),
    ],
)
def test_a_usage_error_is_one_line_naming_what_was_wrong(args: list[str], line: str) -> None:
    assert one_error_line(args) == line


def test_an_option_typed_is_named_without_its_environment_variable() -> None:
    line = one_error_line(["run", str(SAMPLE), "--max-concurrency", "x"])
    assert line.startswith("error: -j/--max-concurrency: ")
    assert "ASYNCBATCH" not in line


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "ASYNCBATCH_MAX_CONCURRENCY",
            "x",
            "error: -j/--max-concurrency (from ASYNCBATCH_MAX_CONCURRENCY): Input should be "
            "a valid integer, unable to parse string as an integer",
        ),
        (
            "ASYNCBATCH_TIMEOUT",
            "-1",
            "error: --timeout (from ASYNCBATCH_TIMEOUT): Input should be greater than 0",
        ),
        (
            "ASYNCBATCH_EXECUTOR",
            "ray",
            "error: --executor (from ASYNCBATCH_EXECUTOR): expected 'local' or 'dask'",
        ),
    ],
)
def test_a_bad_value_from_the_environment_names_its_variable(
    variable: str, value: str, line: str
) -> None:
    assert one_error_line(["run", str(SAMPLE)], {variable: value}) == line


def test_our_own_usage_errors_keep_the_same_form(tmp_path: Path) -> None:
    assert one_error_line(["run", str(SAMPLE), "--resume"]) == (
        "error: --resume needs --output: the journal to resume from lives beside the report"
    )
    assert one_error_line(["run", str(SAMPLE), "--fail-fast", "--max-failures", "2"]) == (
        "error: --fail-fast and --max-failures: give only one of them"
    )


def test_no_arguments_prints_the_help_and_exits_2() -> None:
    result = invoke([])
    assert result.exit_code == 2
    assert "Usage: " in result.stdout
    assert "error" not in result.stderr


@pytest.mark.slow
def test_the_installed_command_says_usage_errors_in_one_line(tmp_path: Path) -> None:
    done = run_module(["run", str(SAMPLE), "-j", "0"], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "error: -j/--max-concurrency: Input should be greater than or equal to 1\n"
    )
    done = run_module(["show"], cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "error: missing argument REPORT; see 'asyncbatch show --help'\n",
    )


def test_the_unknown_action_warning_names_the_config_file_as_errors_do(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n", encoding="utf-8")
    config = tmp_path / "batch.json"
    jobs = [{"name": "lines", "action": "count_line", "input": "a.txt"}]
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    result = invoke(["run", str(config)])
    assert result.exit_code == 0, "a skipped job does not fail the run"
    assert result.stderr.splitlines()[0] == (
        f"warning: {config}: jobs[0].action: unknown action 'count_line' (did you mean "
        "'count_lines'?); job 'lines' is skipped (--strict makes it an error)"
    )
    strict = invoke(["run", str(config), "--strict"])
    assert strict.exit_code == 2
    assert strict.stderr.splitlines()[0] == (
        f"error: {config}: jobs[0].action: unknown action 'count_line' (did you mean "
        "'count_lines'?)"
    )
