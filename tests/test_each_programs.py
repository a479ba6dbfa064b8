"""Programs and shells, in ``each`` and in configs: ``--shell`` and ``sh -c`` scripts
with quoted placeholders (no file name runs code), ``--ok-exit``, programs checked on
PATH before anything runs, NUL bytes and exit codes refused when the config loads,
every way a program cannot start failing alike, what a program used (``os.wait4``),
a grandchild that ignores SIGTERM killed anyway, the help's examples, and output that
cannot reach stdout (exit 2).

Real programs on real files in ``tmp_path``; what needs a process of its own (signals,
a closed stdout, memory) runs ``python -m asyncbatch`` as a subprocess.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import invoke, read_json, run_module, summary, write_json

from asyncbatch import load_config, run_batch
from asyncbatch.actions.command import shell_script_index
from asyncbatch.cli._options import EACH_EXAMPLES

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX programs")

PY = sys.executable
CRAFTED = ["a b.txt", "x$(touch pwned-1).txt", "y`touch pwned-2`.txt", "z';touch pwned-3;'.txt"]
"""File names that would run code if a shell saw them unquoted."""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("one\ntwo\n", encoding="utf-8")
    return tmp_path


def each(*args: str, code: int = 0) -> tuple[str, dict[str, Any]]:
    result = invoke(["each", "-q", "-k", "-o", "r.json", *args])
    assert result.exit_code == code, (result.stdout, result.stderr)
    jobs = read_json(Path("r.json"))["jobs"]
    return result.stdout, {job["name"]: job for job in jobs}


def config_error(folder: Path, params: dict[str, Any]) -> list[str]:
    """Load (and dry-run) a config of one command job: exit 2, its error lines."""
    config = write_json(
        folder / "batch.json",
        {"jobs": [{"name": "j", "action": "command", "input": ".", "params": params}]},
    )
    result = invoke(["run", str(config), "--dry-run"])
    assert result.exit_code == 2, result.stdout
    return [line for line in result.stderr.splitlines() if "jobs[0]" in line]


# --- shells ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [
        ["--shell", "wc -l < {input}"],
        ["--shell", "wc -l <"],  # no placeholder: the quoted input appended
        ["--", "sh", "-c", "wc -l < {input}"],
        ["--", "bash", "-ec", "wc -l < {name}"],
        ["--", "sh", "-o", "errexit", "-c", "wc -l < {name}"],
    ],
)
def test_a_crafted_file_name_never_runs_code_through_a_shell(here: Path, how: list[str]) -> None:
    for name in CRAFTED:
        (here / name).write_text("1\n2\n3\n", encoding="utf-8")
    stdout, jobs = each(*CRAFTED, *how)
    assert [job["status"] for job in jobs.values()] == ["succeeded"] * len(CRAFTED)
    assert stdout.split() == ["3"] * len(CRAFTED)
    assert not list(here.glob("pwned-*"))


def test_arguments_after_a_shell_script_are_not_quoted_again(here: Path) -> None:
    stdout, _ = each("a.txt", "--", "sh", "-c", 'printf "[%s]" "$1"', "sh", "{name}")
    assert stdout == "[a.txt]"


def test_which_argument_is_a_shell_script() -> None:
    assert shell_script_index(["sh", "-c", "s", "x"]) == 2
    assert shell_script_index(["/bin/bash", "-e", "-c", "s"]) == 3
    assert shell_script_index(["bash", "-o", "pipefail", "-ec", "s"]) == 4
    assert shell_script_index(["zsh", "--norc", "-c", "s"]) == 3
    assert shell_script_index(["sh", "script.sh", "-c"]) is None
    assert shell_script_index(["python", "-c", "s"]) is None
    assert shell_script_index(["sh", "-e"]) is None


def test_a_config_argv_running_sh_c_has_its_script_quoted_too(here: Path) -> None:
    (here / CRAFTED[1]).write_text("x\n", encoding="utf-8")
    config = write_json(
        here / "batch.json",
        {
            "jobs": [
                {
                    "name": "j",
                    "action": "command",
                    "input": CRAFTED[1],
                    "params": {"argv": ["sh", "-c", "cat {input}"]},
                }
            ]
        },
    )
    result = invoke(["run", str(config), "-q", "-o", "r.json"])
    assert result.exit_code == 0, result.stderr
    assert read_json(here / "r.json")["jobs"][0]["result"]["stdout"] == "x\n"
    assert not list(here.glob("pwned-*"))


def test_ok_exit_makes_more_exit_codes_success(here: Path) -> None:
    (here / "b.txt").write_text("nothing\n", encoding="utf-8")
    _, jobs = each("--ok-exit", "0,1", "a.txt", "b.txt", "--", "grep", "-c", "one")
    assert [(job["status"], job["result"]["exit_code"]) for job in jobs.values()] == [
        ("succeeded", 0),
        ("succeeded", 1),
    ]
    each("a.txt", "b.txt", "--", "grep", "-c", "one", code=1)


# --- programs checked before anything runs ------------------------------------------------


def test_a_config_program_not_on_path_is_located_at_argv_0(here: Path) -> None:
    lines = config_error(here, {"argv": ["wcc-not-installed", "-l"]})
    where = "jobs[0].params.argv[0]"
    assert lines == [
        f"error: {here / 'batch.json'}: {where}: program 'wcc-not-installed' not found on PATH"
    ]


def test_the_program_is_looked_for_on_the_path_the_job_runs_with(here: Path) -> None:
    tools = here / "tools"
    tools.mkdir()
    tool = tools / "my-tool"
    tool.write_text("#!/bin/sh\necho tool ran\n", encoding="utf-8")
    tool.chmod(0o755)
    params = {"argv": ["my-tool"], "env": {"PATH": f"{tools}:/usr/bin:/bin"}}
    config = write_json(
        here / "batch.json",
        {"jobs": [{"name": "j", "action": "command", "input": ".", "params": params}]},
    )
    result = invoke(["run", str(config), "-q", "-o", "r.json"])
    assert result.exit_code == 0, result.stderr
    assert read_json(here / "r.json")["jobs"][0]["result"]["stdout"] == "tool ran\n"


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"argv": ["echo", "a\0b"]}, "jobs[0].params.argv[1]: holds a NUL byte"),
        ({"shell": "echo a\0b"}, "jobs[0].params.shell: holds a NUL byte"),
        ({"argv": ["true"], "env": {"X": "a\0b"}}, "jobs[0].params.env.X: holds a NUL byte"),
    ],
)
def test_a_nul_byte_is_a_located_config_error(
    here: Path, params: dict[str, Any], where: str
) -> None:
    lines = config_error(here, params)
    assert len(lines) == 1
    assert where in lines[0]


def test_negative_or_out_of_range_exit_codes_are_refused(here: Path) -> None:
    """``[-9]`` once meant "killed by SIGKILL" without saying so: a signal is no exit
    code, and a job killed by one always fails."""
    lines = config_error(here, {"argv": ["true"], "ok_exit_codes": [0, -9]})
    assert len(lines) == 1
    assert "jobs[0].params.ok_exit_codes[1]: -9 is no exit code" in lines[0]
    assert "killed by a signal has none" in lines[0]
    lines = config_error(here, {"argv": ["true"], "ok_exit_codes": [256]})
    assert "jobs[0].params.ok_exit_codes[0]: 256 is no exit code" in lines[0]


# --- a program that cannot start ---------------------------------------------------------


def test_every_way_a_program_cannot_start_is_command_failed(here: Path) -> None:
    tools = here / "tools"
    tools.mkdir()
    script = tools / "orphan-script"
    script.write_text("#!/nonexistent/interpreter\n", encoding="utf-8")
    broken = tools / "broken-elf"
    broken.write_bytes(b"\x7fELF" + os.urandom(64))
    for each_file in (script, broken):
        each_file.chmod(each_file.stat().st_mode | stat.S_IXUSR)
    path = f"{tools}:{os.environ['PATH']}"
    long = "x" * (200 << 10)  # past the kernel's bound on one argument
    jobs = [
        {"name": "interpreter", "params": {"argv": ["orphan-script"], "env": {"PATH": path}}},
        {"name": "elf", "params": {"argv": [str(broken)]}},
        {"name": "argv", "params": {"argv": ["echo", long]}},
        {"name": "shell", "params": {"shell": f"echo {long}"}},
    ]
    config = write_json(
        here / "batch.json", {"jobs": [{**job, "action": "command", "input": "."} for job in jobs]}
    )
    result = invoke(["run", str(config), "-q", "-o", "r.json"])
    assert result.exit_code == 1
    errors = {job["name"]: job["error"] for job in read_json(here / "r.json")["jobs"]}
    assert {name: error["type"] for name, error in errors.items()} == dict.fromkeys(
        errors, "CommandFailed"
    )
    assert errors["interpreter"]["message"] == (
        "cannot execute 'orphan-script': its interpreter (the #! line) was not found"
    )
    # (the input's path, the config's folder here, is shown as the config writes it: ".")
    assert errors["elf"]["message"] == "cannot execute './tools/broken-elf': exec format error"
    assert errors["argv"]["message"] == "cannot execute 'echo': argument list too long"
    assert errors["shell"]["message"] == "cannot execute '/bin/sh': argument list too long"


# --- what a program used -----------------------------------------------------------------


@pytest.mark.anyio
async def test_a_command_jobs_resources_are_its_programs_rusage(here: Path) -> None:
    burn = "import time\nend = time.process_time() + 0.2\nwhile time.process_time() < end: pass"
    jobs: list[dict[str, Any]] = [
        {"name": "ok", "params": {"argv": [PY, "-c", burn]}},
        {"name": "fails", "params": {"argv": [PY, "-c", burn + "\nraise SystemExit(3)"]}},
        {"name": "slow", "params": {"argv": ["sleep", "30"]}, "timeout": 0.3},
    ]
    config = write_json(
        here / "batch.json", {"jobs": [{**job, "action": "command", "input": "."} for job in jobs]}
    )
    with anyio.fail_after(30):
        report = await run_batch(load_config(config))
    used = {job.name: job.resources for job in report.jobs}
    for name in ("ok", "fails"):
        resources = used[name]
        assert resources is not None
        assert resources.cpu_s is not None
        assert resources.cpu_s >= 0.15
        assert resources.max_rss_kb is not None
        assert resources.max_rss_kb > 1000
        assert resources.read_bytes is not None
        assert resources.write_bytes is not None
    timed_out = used["slow"]
    assert timed_out is not None
    assert timed_out.cpu_s is not None
    assert timed_out.cpu_s < 0.2


# --- nothing left running ----------------------------------------------------------------


def running_with(marker: str) -> list[int]:
    """The processes whose command line holds ``marker`` (zombies left out)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_bytes().rpartition(b")")[2].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry))
    return found


@pytest.mark.slow  # the SIGKILL comes 2 s after the program's exit
def test_a_grandchild_that_ignores_sigterm_and_holds_no_pipe_is_killed(here: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    program = f"{shlex.quote(PY)} -c {shlex.quote(stubborn)} {marker}"
    line = f"{program} </dev/null >/dev/null 2>&1 & echo started # {{input}}"
    try:
        stdout, _ = each("--args", "x", "--shell", line)
        assert stdout == "started\n"
        deadline = time.monotonic() + 5
        while running_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running_with(marker) == []
    finally:
        for pid in running_with(marker):
            os.kill(pid, signal.SIGKILL)


REAPING = """
import os, sys, threading, time
waitpid = os.waitpid
def slow_waitpid(pid, options):
    if options == 0 and threading.current_thread().name.startswith("asyncio-waitpid"):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # until it exits, not reaped
        time.sleep(0.3)  # asyncio's waiting thread, late: what a loaded machine does
    return waitpid(pid, options)
os.waitpid = slow_waitpid
sys.argv = ["asyncbatch", *sys.argv[1:]]
from asyncbatch.__main__ import main
main()
"""


@pytest.mark.slow  # worker processes
def test_no_stray_unknown_child_process_warning_when_worker_processes_end(tmp_path: Path) -> None:
    for number in range(4):
        (tmp_path / f"f{number}.log").write_text("ERROR x\n" * 2000, encoding="utf-8")
    config = write_json(
        tmp_path / "batch.json",
        {
            "jobs": [
                {
                    "name": "s",
                    "action": "search_pattern",
                    "input": "*.log",
                    "params": {"pattern": "(E|R)+O"},
                },
                {"name": "sh", "action": "command", "input": ".", "params": {"shell": "echo hi"}},
            ]
        },
    )
    done = subprocess.run(
        [PY, "-c", REAPING, "run", str(config), "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Unknown child process" not in done.stderr
    assert "Traceback" not in done.stderr


# --- the help's examples run as written ----------------------------------------------------


def help_examples() -> list[str]:
    return [line.strip() for line in EACH_EXAMPLES.splitlines() if "asyncbatch each" in line]


@pytest.mark.slow  # one subprocess per example
@pytest.mark.parametrize("example", help_examples())
def test_each_help_example_runs_as_written(tmp_path: Path, example: str) -> None:
    for name in ("app.log", "db.log", "notes.txt", "todo.txt", "tool.py"):
        (tmp_path / name).write_text("def f():\n    ERROR 1\n", encoding="utf-8")
    (tmp_path / "jobs.csv").write_text(
        "file,note\napp.log,first\ndb.log,second\n", encoding="utf-8"
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "x.log").write_text("ERROR\n", encoding="utf-8")
    command = example.replace("asyncbatch each", f"{shlex.quote(PY)} -m asyncbatch each -q")
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (example, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr


def test_the_help_examples_cover_the_common_forms() -> None:
    examples = " ".join(help_examples())
    for form in ("-0", "--shell", "--ok-exit", "--args", "--action", "-k", "--results", "{{"):
        assert form in examples, form
    assert not re.search(r"(?<!\{)\{\{input\}\}", examples), "a doubled placeholder is a literal"


# --- output that cannot reach stdout -----------------------------------------------------


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("stdout", [">&-", ">/dev/full"])
@pytest.mark.parametrize(
    "command", ["each --args x -- echo hi", "each --json --args x -- true", "run {config}"]
)
def test_output_that_cannot_reach_stdout_is_exit_2(
    tmp_path: Path, stdout: str, command: str
) -> None:
    config = write_json(
        tmp_path / "batch.json",
        {"jobs": [{"name": "j", "action": "command", "input": ".", "params": {"argv": ["true"]}}]},
    )
    line = f"{shlex.quote(PY)} -m asyncbatch {command.format(config=config)} 1{stdout}"
    done = subprocess.run(
        ["/bin/sh", "-c", line],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "error: cannot write" in done.stderr
    assert "standard output" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_each_on_a_normal_stdout_exits_0(tmp_path: Path) -> None:
    done = run_module(["each", "--json", "--args", "x", "--", "true"], cwd=tmp_path)
    assert done.returncode == 0
    assert summary(done.stdout)["succeeded"] == 1
