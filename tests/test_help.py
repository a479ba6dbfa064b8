"""What ``--help`` shows and the options that serve people: readable at 80 columns,
flags without a type, grouped panels, examples, completion, environment variables
for the common options, and ``--debug`` tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import read_json, run_module, write_json

pytestmark = pytest.mark.slow  # each case is a fresh interpreter (help reads COLUMNS)

FAILING = """\
async def boom(path, params):
    def inner():
        raise ValueError("boom in inner")
    inner()
"""


def help_text(tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    env.pop("NO_COLOR", None)
    done = run_module([*args, "--help"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("command", [["run"], ["each"], []], ids=["run", "each", "top"])
def test_help_fits_80_columns_and_no_flag_shows_a_type(tmp_path: Path, command: list[str]) -> None:
    text = help_text(tmp_path, *command)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "<bool>" not in text
    assert "<str>" not in text


@pytest.mark.parametrize("command", ["run", "each"])
def test_run_and_each_group_their_options_and_end_with_examples(
    tmp_path: Path, command: str
) -> None:
    text = help_text(tmp_path, command)
    for panel in ("Running", "Outputs", "Display", "Dask"):
        assert f"─ {panel} " in text, panel
    assert "Examples" in text
    assert f"asyncbatch {command} " in text.split("Examples", 1)[1]
    assert "asyncbatch[dask]" in text, "markup is escaped"
    assert "ASYNCBATCH_MAX_CONCURRENCY" in text


def test_shell_completion_is_offered(tmp_path: Path) -> None:
    text = help_text(tmp_path)
    assert "--install-completion" in text
    assert "--show-completion" in text


@pytest.mark.parametrize(
    ("shell", "installed"),
    [
        ("zsh", ".zfunc/_asyncbatch"),
        ("fish", ".config/fish/completions/asyncbatch.fish"),
        ("bash", ".bash_completions/asyncbatch.sh"),
    ],
)
def test_install_completion_installs_the_shell_named(
    tmp_path: Path, shell: str, installed: str
) -> None:
    """``--install-completion zsh`` installed bash completion (the shell running the
    command), whatever shell was named."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    done = run_module(["--install-completion", shell], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert f"{shell} completion installed" in done.stdout
    assert (home / installed).is_file()
    others = {".zfunc", ".config", ".bash_completions"} - {installed.split("/")[0]}
    assert not any((home / other).exists() for other in others)


def test_show_completion_shows_the_shell_named_and_refuses_an_unknown_one(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    shown = run_module(["--show-completion=zsh"], cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("#compdef asyncbatch")
    unknown = run_module(["--install-completion", "tcsh"], cwd=tmp_path, env=env)
    assert unknown.returncode == 2
    assert "unknown shell 'tcsh'" in unknown.stderr
    assert list(tmp_path.iterdir()) == []


def sample(tmp_path: Path) -> Path:
    for name in "abcd":
        (tmp_path / f"{name}.txt").write_text("x\n", encoding="utf-8")
    return write_json(
        tmp_path / "batch.json",
        {
            "max_concurrency": 3,
            "jobs": [{"name": n, "action": "count_lines", "input": f"{n}.txt"} for n in "abcd"],
        },
    )


def test_environment_variables_stand_for_their_options_and_the_command_line_wins(
    tmp_path: Path,
) -> None:
    config = sample(tmp_path)
    out = tmp_path / "r.json"
    env = {**os.environ, "ASYNCBATCH_MAX_CONCURRENCY": "2", "ASYNCBATCH_RETRIES": "1"}
    done = run_module(["run", str(config), "-o", str(out), "-q"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert read_json(out)["max_concurrency"] == 2
    done = run_module(["run", str(config), "-o", str(out), "-q", "-j", "1"], cwd=tmp_path, env=env)
    assert read_json(out)["max_concurrency"] == 1
    bad = run_module(
        ["run", str(config)], cwd=tmp_path, env={**os.environ, "ASYNCBATCH_MAX_CONCURRENCY": "0"}
    )
    assert bad.returncode == 2
    assert "ASYNCBATCH_MAX_CONCURRENCY" in bad.stderr


def test_debug_prints_each_failed_attempts_traceback(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(FAILING, encoding="utf-8")
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    config = write_json(
        tmp_path / "batch.json",
        {"jobs": [{"name": "b", "action": "failing:boom", "input": "in.txt", "retries": 1}]},
    )
    plain = run_module(["run", str(config), "-q"], cwd=tmp_path)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    debug = subprocess.run(  # not run_module: a traceback is what is asked for here
        [sys.executable, "-m", "asyncbatch", "run", str(config), "-q", "--debug"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert debug.returncode == 1
    lines = debug.stderr.splitlines()
    assert lines.count("Traceback (most recent call last):") == 2  # one per attempt
    assert "traceback of b (attempt 1):" in lines
    assert "traceback of b (attempt 2):" in lines
    assert any(line.strip() == 'raise ValueError("boom in inner")' for line in lines)
    assert "ValueError: boom in inner" in lines
