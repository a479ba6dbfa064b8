"""The ``command`` action, with real programs: argv and shell, placeholders, the
working directory, stdin, process groups, bounded output, failures, timeouts and
signals that end every process a job started, outputs like make's, resume, the dry
run, ``--root``, JUnit and the action's description.

Most runs go through the command in process (``invoke``); those that send signals
or measure memory run ``python -m asyncbatch`` as a subprocess.
"""

from __future__ import annotations

import contextlib
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
from support import invoke, read_json, run_module, summary, write_json

from asyncbatch import load_config
from asyncbatch.actions.command import CommandParams
from asyncbatch.placeholders import fill, template_problem

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX programs and groups")

SUBPROCESS = 60


def batch(folder: Path, *jobs: dict[str, Any], **top: Any) -> Path:
    """A config in ``folder`` with ``jobs``; each job's input, unless it is ``.`` or
    a glob, is created as a small file when it does not exist."""
    for entry in jobs:
        source = entry.setdefault("input", ".")
        entry.setdefault("action", "command")
        if source != "." and not any(c in source for c in "*?[") and "missing" not in source:
            path = folder / source
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("one\ntwo\n", encoding="utf-8")
    return write_json(folder / "batch.json", {**top, "jobs": list(jobs)})


def run(config: Path, *args: str, code: int | None = None) -> dict[str, dict[str, Any]]:
    """Run ``config`` in process with a report; the report's jobs by name."""
    out = config.parent / "report.json"
    result = invoke(["run", str(config), "-o", str(out), "-q", *args])
    if code is not None:
        assert result.exit_code == code, result.stderr
    jobs = read_json(out)["jobs"]
    return {job["name"]: job for job in jobs}


def py(code: str) -> list[str]:
    """argv running ``code`` with this interpreter."""
    return [sys.executable, "-c", code]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its (new) parent is gone for our purposes
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Pids a test started through a command: killed at the end whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- placeholders ---------------------------------------------------------------------


def test_every_placeholder_is_filled_in_and_double_braces_are_braces(tmp_path: Path) -> None:
    config = batch(
        tmp_path,
        {
            "name": "show",
            "input": "logs/app.log",
            "params": {
                "argv": [
                    "printf",
                    "%s|",
                    "{input}",
                    "{name}",
                    "{stem}",
                    "{suffix}",
                    "{parent}",
                    "{config_dir}",
                    "{{input}}",
                ]
            },
        },
    )
    jobs = run(config, code=0)
    folder = str(tmp_path)
    expected = [
        f"{folder}/logs/app.log",
        "show",
        "app",
        ".log",
        f"{folder}/logs",
        folder,
        "{input}",
    ]
    assert jobs["show"]["result"]["stdout"] == "|".join(expected) + "|"


def test_a_glob_fills_each_expansion_with_its_own_name_and_input(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    config = batch(
        tmp_path,
        {"name": "each", "input": "*.txt", "params": {"argv": ["echo", "{name}", "{stem}"]}},
    )
    jobs = run(config, code=0)
    assert {name: job["result"]["stdout"] for name, job in jobs.items()} == {
        "each[a.txt]": "each[a.txt] a\n",
        "each[b.txt]": "each[b.txt] b\n",
    }


@pytest.mark.parametrize(
    ("where", "params", "located"),
    [
        ("argv", {"argv": ["echo", "{stme}"]}, "jobs[1].params.argv: unknown placeholder {stme}"),
        ("shell", {"shell": "echo {inptu}"}, "jobs[1].params.shell: unknown placeholder {inptu}"),
        (
            "outputs",
            {"argv": ["true"], "outputs": ["{dir}/x"]},
            "jobs[1].params.outputs: unknown placeholder {dir}",
        ),
        (
            "env",
            {"argv": ["true"], "env": {"A": "{0}"}},
            "jobs[1].params.env: unknown placeholder {0}",
        ),
        (
            "format spec",
            {"argv": ["echo", "{input:>9}"]},
            "jobs[1].params.argv: unknown placeholder {input:>9}",
        ),
        ("lone brace", {"argv": ["awk", "{print $1}"]}, "jobs[1].params.argv: "),
        ("both", {"argv": ["true"], "shell": "true"}, "jobs[1].params: "),
        ("neither", {"env": {}}, "jobs[1].params: "),
    ],
)
def test_a_bad_template_is_a_located_config_error_and_nothing_runs(
    tmp_path: Path, where: str, params: dict[str, Any], located: str
) -> None:
    marker = tmp_path / "ran"
    config = batch(
        tmp_path,
        {"name": "first", "params": {"argv": ["touch", str(marker)]}},
        {"name": "bad", "params": params},
    )
    result = invoke(["run", str(config)])
    assert result.exit_code == 2
    prefix = f"error: {config}: "
    problems = [
        line.removeprefix(prefix) for line in result.stderr.splitlines() if line.startswith(prefix)
    ]
    assert len(problems) == 1, result.stderr
    assert problems[0].startswith(located), problems
    assert not marker.exists()


def test_templates_are_checked_and_filled_as_documented() -> None:
    assert template_problem("gzip -k {input} {{x}}") is None
    assert template_problem("{") is not None
    assert template_problem("}") is not None
    assert template_problem("{input.name}") is not None
    assert template_problem("{input!r}") is not None
    values = {"input": "/d/a b;$(touch x).txt", "stem": "a"}
    assert fill("cat {input} > {stem}.out", values) == "cat /d/a b;$(touch x).txt > a.out"
    assert fill("cat {input}", values, quote=True) == "cat '/d/a b;$(touch x).txt'"


# --- argv, shell, env, working directory, stdin, group ---------------------------------


def test_argv_runs_without_a_shell_and_shell_quotes_every_placeholder(tmp_path: Path) -> None:
    """A file named to inject code is one argument under argv and under shell alike."""
    hostile = "a b;$(touch pwned).txt"
    (tmp_path / hostile).write_text("1\n2\n3\n", encoding="utf-8")
    config = batch(
        tmp_path,
        {"name": "argv", "input": hostile, "params": {"argv": ["wc", "-l", "{input}"]}},
        {"name": "shell", "input": hostile, "params": {"shell": "wc -l < {input}; echo $0"}},
        {"name": "glob", "input": "a b*", "params": {"shell": "cat {input} | wc -l"}},
    )
    jobs = run(config, code=0)
    assert jobs["argv"]["result"]["stdout"] == f"3 {tmp_path / hostile}\n"
    assert jobs["shell"]["result"]["stdout"] == "3\n/bin/sh\n"
    assert jobs[f"glob[{hostile}]"]["result"]["stdout"].strip() == "3"
    assert not (tmp_path / "pwned").exists()
    assert not Path("pwned").exists()


def test_env_adds_to_the_environment_with_placeholders(tmp_path: Path) -> None:
    config = batch(
        tmp_path,
        {
            "name": "env",
            "input": "in.txt",
            "params": {
                "shell": 'echo "$GREETING|$WHERE|${{PATH:+path kept}}"',
                "env": {"GREETING": "hello {name}", "WHERE": "{stem}{suffix}"},
            },
        },
    )
    assert run(config, code=0)["env"]["result"]["stdout"] == "hello env|in.txt|path kept\n"


def test_the_working_directory_is_the_configs_and_stdin_is_empty(tmp_path: Path) -> None:
    """Run from elsewhere: ``pwd`` is the config's folder; ``cat`` reads /dev/null."""
    folder = tmp_path / "project"
    folder.mkdir()
    config = batch(
        folder,
        {"name": "pwd", "params": {"argv": ["pwd"]}},
        {"name": "stdin", "params": {"shell": "cat; echo end"}},
    )
    done = run_module(
        ["run", str(config), "-o", str(folder / "r.json")], cwd=tmp_path, timeout=SUBPROCESS
    )
    assert done.returncode == 0, done.stderr
    jobs = {job["name"]: job for job in read_json(folder / "r.json")["jobs"]}
    assert jobs["pwd"]["result"]["stdout"] == f"{folder}\n"
    assert jobs["stdin"]["result"]["stdout"] == "end\n"


def test_each_command_runs_in_a_process_group_of_its_own(tmp_path: Path) -> None:
    config = batch(
        tmp_path,
        {"name": "group", "params": {"argv": py("import os; print(os.getpgid(0) == os.getpid())")}},
    )
    assert run(config, code=0)["group"]["result"]["stdout"] == "True\n"


def test_ok_exit_codes_decide_success(tmp_path: Path) -> None:
    config = batch(
        tmp_path,
        {"name": "three-ok", "params": {"shell": "exit 3", "ok_exit_codes": [0, 3]}},
        {"name": "zero-not-ok", "params": {"argv": ["true"], "ok_exit_codes": [1]}},
    )
    jobs = run(config, code=1)
    assert jobs["three-ok"]["status"] == "succeeded"
    assert jobs["three-ok"]["result"]["exit_code"] == 3
    assert jobs["zero-not-ok"]["error"]["type"] == "CommandFailed"
    assert jobs["zero-not-ok"]["error"]["message"] == "exit status 0"


# --- what a command prints ------------------------------------------------------------


def test_the_result_keeps_the_last_4096_bytes_of_each_stream_and_exact_counts(
    tmp_path: Path,
) -> None:
    code = (
        "import sys\n"
        "sys.stdout.write(''.join('%07d\\n' % i for i in range(100000)))\n"
        "sys.stderr.buffer.write(b'\\xff bad utf-8\\n' + 'é'.encode() * 3000 + b'x')\n"
    )
    config = batch(tmp_path, {"name": "loud", "params": {"argv": py(code)}})
    result = run(config, code=0)["loud"]["result"]
    assert result["stdout_bytes"] == 800_000
    assert result["stdout"] == "".join(f"{i:07}\n" for i in range(100000 - 512, 100000))
    assert result["stderr_bytes"] == len(b"\xff bad utf-8\n") + 6001
    # the last 4,096 bytes start in the middle of an é: that byte is replaced
    assert result["stderr"] == "\ufffd" + "é" * 2047 + "x"
    assert set(result) == {"exit_code", "stdout", "stderr", "stdout_bytes", "stderr_bytes"}


def test_invalid_utf8_is_replaced_never_fatal(tmp_path: Path) -> None:
    config = batch(tmp_path, {"name": "bytes", "params": {"shell": "printf 'a\\377b\\n'"}})
    assert run(config, code=0)["bytes"]["result"]["stdout"] == "a\ufffdb\n"


def test_a_command_filling_both_pipes_at_once_never_blocks(tmp_path: Path) -> None:
    """1 MiB to stderr before anything to stdout: a reader of one stream at a time
    would wait for ever on a full stderr pipe."""
    code = (
        "import sys\n"
        "sys.stderr.write('e' * (1 << 20)); sys.stderr.flush()\n"
        "sys.stdout.write('o' * (1 << 20))\n"
    )
    config = batch(tmp_path, {"name": "both", "params": {"argv": py(code)}, "timeout": 20})
    result = run(config, code=0)["both"]["result"]
    assert (result["stdout_bytes"], result["stderr_bytes"]) == (1 << 20, 1 << 20)


@pytest.mark.slow
def test_a_command_printing_gigabytes_keeps_memory_bounded(tmp_path: Path) -> None:
    from test_memory import peak_rss

    gib = 1 << 30
    config = batch(
        tmp_path,
        {
            "name": "flood",
            "params": {"shell": f"head -c {gib} /dev/zero; head -c {gib} /dev/zero >&2"},
        },
    )
    peak, done = peak_rss(["run", str(config), "-o", str(tmp_path / "r.json")], tmp_path)
    assert done.returncode == 0, done.stderr
    result = read_json(tmp_path / "r.json")["jobs"][0]["result"]
    assert (result["stdout_bytes"], result["stderr_bytes"]) == (gib, gib)
    assert len(result["stdout"]) == 4096
    assert peak < 150 << 20, f"peak RSS {peak >> 20} MiB"


# --- inputs and failures --------------------------------------------------------------


def test_the_input_may_be_any_file_or_folder_but_must_exist(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    marker = tmp_path / "started"
    config = batch(
        tmp_path,
        {"name": "dir", "input": "folder", "params": {"argv": ["test", "-d", "{input}"]}},
        {"name": "dot", "input": ".", "params": {"argv": ["test", "-d", "{input}"]}},
        {"name": "gone", "input": "missing.txt", "params": {"argv": ["touch", str(marker)]}},
    )
    jobs = run(config, code=1)
    assert jobs["dir"]["status"] == jobs["dot"]["status"] == "succeeded"
    assert jobs["gone"]["error"] == {
        "type": "FileNotFoundError",
        "message": "missing.txt: no such file",
    }
    assert not marker.exists(), "nothing is started for a missing input"


def test_failures_say_which_exit_status_signal_or_missing_program(tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n", encoding="utf-8")
    config = batch(
        tmp_path,
        {"name": "status", "params": {"shell": "echo warming >&2; echo 'it broke' >&2; exit 3"}},
        {"name": "quiet", "params": {"shell": "exit 4"}},
        {"name": "signal", "params": {"shell": "kill -KILL $$"}},
        {"name": "nosuch", "params": {"argv": ["./nosuch-program-for-asyncbatch"]}},
        {"name": "denied", "input": "in.txt", "params": {"argv": [str(script)]}},
    )
    jobs = run(config, code=1)
    assert {name: job["error"]["type"] for name, job in jobs.items()} == dict.fromkeys(
        jobs, "CommandFailed"
    )
    assert jobs["status"]["error"] == {
        "type": "CommandFailed",
        "message": "exit status 3: it broke",
        "details": {
            "exit_code": 3,
            "stdout": "",
            "stderr": "warming\nit broke\n",
            "stdout_bytes": 0,
            "stderr_bytes": 17,
        },
    }
    assert jobs["quiet"]["error"]["message"] == "exit status 4"
    assert jobs["signal"]["error"]["message"] == "killed by SIGKILL"
    assert jobs["signal"]["error"]["details"]["signal"] == "SIGKILL"
    assert "exit_code" not in jobs["signal"]["error"]["details"]
    assert jobs["nosuch"]["error"] == {
        "type": "CommandFailed",
        "message": "cannot execute './nosuch-program-for-asyncbatch': no such file",
    }
    assert jobs["denied"]["error"]["message"] == f"cannot execute '{script}': permission denied"


def test_a_failed_command_is_retried_like_any_job(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    config = batch(
        tmp_path,
        {
            "name": "flaky",
            "params": {"shell": f'echo x >> {counter}; test "$(wc -l < {counter})" -ge 3'},
            "retries": 3,
        },
    )
    job = run(config, "--retries", "3", code=0)["flaky"]
    assert (job["status"], job["attempts"]) == ("succeeded", 3)


# --- nothing outlives its job ---------------------------------------------------------

SPAWNER = """\
import os, subprocess, sys, time
pids = sys.argv[1]
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
grandchild = subprocess.Popen(
    ["sh", "-c", "trap '' TERM; sleep 600 & echo $! >> " + pids + "; wait"]
)
with open(pids, "a") as out:
    out.write(f"{os.getpid()}\\n{child.pid}\\n{grandchild.pid}\\n")
if sys.argv[2] == "wait":
    time.sleep(600)
"""
"""Starts a child and a grandchild that ignores SIGTERM (both sleep for ten
minutes), writes their pids, then waits or exits at once."""


def spawner(folder: Path, how: str) -> list[str]:
    script = folder / "spawner.py"
    script.write_text(SPAWNER, encoding="utf-8")
    return [sys.executable, str(script), str(folder / "pids"), how]


def started_pids(folder: Path, count: int, reaper: list[int]) -> list[int]:
    deadline = time.monotonic() + 20
    path = folder / "pids"
    while time.monotonic() < deadline:
        if path.exists():
            pids = [int(line) for line in path.read_text(encoding="utf-8").split()]
            if len(pids) >= count:
                reaper.extend(pids)
                return pids
        time.sleep(0.02)
    pytest.fail("the command never wrote its pids")


@pytest.mark.slow
def test_a_timeout_ends_the_whole_group_sigkill_for_what_ignores_sigterm(
    tmp_path: Path, reaper: list[int]
) -> None:
    config = batch(
        tmp_path, {"name": "slow", "params": {"argv": spawner(tmp_path, "wait")}, "timeout": 1}
    )
    began = time.monotonic()
    jobs = run(config, code=1)
    took = time.monotonic() - began
    assert jobs["slow"]["error"]["type"] == "Timeout"
    pids = started_pids(tmp_path, 4, reaper)
    assert wait_gone(pids, 1.0) == [], "every process of the group is gone when the job ends"
    assert took < 1 + 2 + 3, "SIGKILL follows SIGTERM after 2 s"


@pytest.mark.slow
def test_what_a_command_leaves_running_in_its_group_is_ended_when_it_exits(
    tmp_path: Path, reaper: list[int]
) -> None:
    config = batch(tmp_path, {"name": "quick", "params": {"argv": spawner(tmp_path, "exit")}})
    jobs = run(config, code=0)
    assert jobs["quick"]["status"] == "succeeded"
    assert wait_gone(started_pids(tmp_path, 4, reaper), 1.0) == []


@pytest.mark.slow
def test_fail_fast_ends_a_running_commands_group(tmp_path: Path, reaper: list[int]) -> None:
    config = batch(
        tmp_path,
        {"name": "long", "params": {"argv": spawner(tmp_path, "wait")}},
        {
            "name": "fails",
            "params": {"shell": f"while [ ! -s {tmp_path / 'pids'} ]; do sleep 0.05; done; exit 1"},
        },
    )
    jobs = run(config, "--fail-fast", "-j", "2", code=1)
    assert jobs["long"]["status"] == "cancelled"
    assert wait_gone(started_pids(tmp_path, 4, reaper), 1.0) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signals", "code"),
    [
        ([signal.SIGINT], 130),
        ([signal.SIGTERM], 143),
        ([signal.SIGHUP], 129),
        ([signal.SIGINT, signal.SIGINT], 130),
    ],
    ids=["sigint", "sigterm", "sighup", "second-sigint"],
)
def test_a_signal_to_the_run_ends_every_commands_group(
    tmp_path: Path, reaper: list[int], signals: list[signal.Signals], code: int
) -> None:
    config = batch(tmp_path, {"name": "long", "params": {"argv": spawner(tmp_path, "wait")}})
    out = tmp_path / "r.json"
    with subprocess.Popen(
        [sys.executable, "-m", "asyncbatch", "run", str(config), "-o", str(out), "-q"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        pids = started_pids(tmp_path, 4, reaper)
        for number in signals:
            process.send_signal(number)
            time.sleep(0.1)
        _, err = process.communicate(timeout=SUBPROCESS)
    assert process.returncode == code, err
    assert "Traceback" not in err
    assert wait_gone(pids, 1.0) == []
    if len(signals) == 1:
        assert read_json(out)["jobs"][0]["status"] == "cancelled"


# --- outputs --------------------------------------------------------------------------


def test_output_folders_are_made_first_and_outputs_must_exist_after_success(
    tmp_path: Path,
) -> None:
    config = batch(
        tmp_path,
        {
            "name": "makes",
            "input": "in.txt",
            "params": {
                "shell": "cp {input} out/deep/{stem}.copy",
                "outputs": ["out/deep/{stem}.copy"],
            },
        },
        {
            "name": "forgets",
            "input": "in.txt",
            "params": {"argv": ["true"], "outputs": ["out/never.txt"]},
        },
    )
    jobs = run(config, code=1)
    assert jobs["makes"]["status"] == "succeeded"
    assert (tmp_path / "out/deep/in.copy").read_text(encoding="utf-8") == "one\ntwo\n"
    assert jobs["forgets"]["error"] == {
        "type": "MissingOutput",
        "message": "out/never.txt: not created by the command",
        "details": {
            "exit_code": 0,
            "stdout": "",
            "stderr": "",
            "stdout_bytes": 0,
            "stderr_bytes": 0,
        },
    }


@pytest.mark.parametrize("how", ["fails", "times out"])
def test_a_failed_attempt_removes_what_it_created_or_changed_and_keeps_the_rest(
    tmp_path: Path, how: str
) -> None:
    (tmp_path / "kept.txt").write_text("untouched\n", encoding="utf-8")
    (tmp_path / "changed.txt").write_text("before\n", encoding="utf-8")
    end = "exit 1" if how == "fails" else "sleep 30"
    config = batch(
        tmp_path,
        {
            "name": "half",
            "params": {
                "shell": f"echo half > new.txt; echo after > changed.txt; {end}",
                "outputs": ["new.txt", "changed.txt", "kept.txt"],
            },
            "timeout": 1,
        },
    )
    jobs = run(config, code=1)
    assert jobs["half"]["error"]["type"] == ("CommandFailed" if how == "fails" else "Timeout")
    assert not (tmp_path / "new.txt").exists()
    assert not (tmp_path / "changed.txt").exists()
    assert (tmp_path / "kept.txt").read_text(encoding="utf-8") == "untouched\n"


def test_a_failed_attempt_removes_a_folder_output_it_created_with_its_contents(
    tmp_path: Path,
) -> None:
    """A folder output the attempt created goes, with what it holds; one that was
    there before stays (its files may be another job's); the folders made for its
    outputs go when left empty, and one another job made first stays."""
    (tmp_path / "old.d").mkdir()
    (tmp_path / "old.d" / "keep").write_text("mine\n", encoding="utf-8")
    config = batch(
        tmp_path,
        {
            "name": "neighbour",
            "params": {"shell": "mkdir -p shared && echo hi > shared/theirs.txt"},
        },
        {
            "name": "half",
            "params": {
                "shell": "mkdir new.d && touch new.d/part old.d/part && exit 3",
                "outputs": ["new.d", "old.d", "made/deeper/result.txt", "shared/result.txt"],
            },
            "depends_on": ["neighbour"],
        },
    )
    jobs = run(config, code=1)
    assert jobs["half"]["error"]["type"] == "CommandFailed"
    assert not (tmp_path / "new.d").exists()
    assert (tmp_path / "old.d" / "keep").read_text(encoding="utf-8") == "mine\n"
    assert not (tmp_path / "made").exists(), "the folders made for it, left empty, go"
    assert (tmp_path / "shared" / "theirs.txt").read_text(encoding="utf-8") == "hi\n"


def test_resume_reuses_a_command_only_while_its_outputs_are_as_recorded(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text(name, encoding="utf-8")
    config = batch(
        tmp_path,
        {
            "name": "copy",
            "input": "*.txt",
            "params": {
                "shell": f"echo {{stem}} >> {counter}; cp {{input}} {{stem}}.out",
                "outputs": ["{stem}.out"],
            },
        },
    )

    def runs() -> list[str]:
        return counter.read_text(encoding="utf-8").split()

    run(config, code=0)
    assert sorted(runs()) == ["a", "b", "c"]
    jobs = run(config, "--resume", code=0)
    assert all(job["reused"] for job in jobs.values())
    assert sorted(runs()) == ["a", "b", "c"], "nothing ran again"
    (tmp_path / "a.out").unlink()
    (tmp_path / "b.out").write_text("edited by hand", encoding="utf-8")
    jobs = run(config, "--resume", code=0)
    assert {name: job["reused"] for name, job in jobs.items()} == {
        "copy[a.txt]": False,
        "copy[b.txt]": False,
        "copy[c.txt]": True,
    }
    assert sorted(runs()) == ["a", "a", "b", "b", "c"]
    assert (tmp_path / "b.out").read_text(encoding="utf-8") == "b"


# --- everywhere else ------------------------------------------------------------------


def test_the_dry_run_shows_each_command_after_placeholders(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    config = batch(
        tmp_path,
        {"name": "argv", "input": "in.txt", "params": {"argv": ["gzip", "-k", "{input}"]}},
        {"name": "shell", "input": "in.txt", "params": {"shell": "wc -l {input} > {stem}.n"}},
        {"name": "dir", "input": "folder", "params": {"argv": ["du", "-s", "{input}"]}},
    )
    result = invoke(["run", str(config), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    jobs = {job["name"]: job for job in json.loads(result.stdout)["jobs"]}
    data = str(tmp_path / "in.txt")
    assert jobs["argv"]["command"] == ["gzip", "-k", data]
    assert jobs["shell"]["command"] == ["/bin/sh", "-c", f"wc -l {data} > in.n"]
    assert jobs["dir"]["command"] == ["du", "-s", str(tmp_path / "folder")]
    assert jobs["dir"]["warnings"] == [], "a folder is a fine input for a command"
    assert not (tmp_path / "in.txt.gz").exists()


def test_root_refuses_command_jobs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = batch(tmp_path, {"name": "cmd", "params": {"argv": ["touch", str(marker)]}})
    result = invoke(["run", str(config), "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "jobs[0].action: 'command' is refused with --root" in result.stderr
    assert not marker.exists()


def test_junit_carries_a_failed_commands_stderr(tmp_path: Path) -> None:
    config = batch(
        tmp_path, {"name": "bad", "params": {"shell": "echo 'disk on fire' >&2; exit 2"}}
    )
    junit = tmp_path / "junit.xml"
    result = invoke(["run", str(config), "--junit", str(junit), "-q"])
    assert result.exit_code == 1
    text = junit.read_text(encoding="utf-8")
    assert 'type="CommandFailed"' in text
    assert 'message="exit status 2: disk on fire"' in text
    assert "stderr (the end of it):\ndisk on fire" in text


def test_actions_and_schema_describe_the_command_action() -> None:
    listed = invoke(["actions", "--json"])
    assert listed.exit_code == 0
    actions = json.loads(listed.stdout)
    text = json.dumps(actions)
    for param in ("argv", "shell", "env", "ok_exit_codes", "outputs"):
        assert param in text
    schema = invoke(["schema"])
    assert schema.exit_code == 0
    assert "CommandParams" in schema.stdout


def test_the_job_context_fills_the_placeholders_and_survives_pickling(tmp_path: Path) -> None:
    """The params are shared as validated; what a job adds (its name, number, folder
    and slot) travels beside them, to a worker process or a Dask worker too."""
    import pickle

    from asyncbatch.placeholders import job_values

    config = batch(
        tmp_path,
        {"name": "c", "input": "in.txt", "params": {"argv": ["echo", "{name}", "{#}", "{%}"]}},
    )
    (job,) = load_config(config).jobs
    assert isinstance(job.params, CommandParams)
    params, context = pickle.loads(pickle.dumps((job.params, job.context(slot=3))))
    assert params.command_line(job_values(job.path, context)) == ["echo", "c", "1", "3"]
    assert context.config_dir == tmp_path


def test_summary_counts_commands_like_any_job(tmp_path: Path) -> None:
    config = batch(
        tmp_path,
        {"name": "ok", "params": {"argv": ["true"]}},
        {"name": "bad", "params": {"argv": ["false"]}},
        {"name": "after", "params": {"argv": ["true"]}, "depends_on": ["bad"]},
    )
    result = invoke(["run", str(config), "-q"])
    assert result.exit_code == 1
    assert summary(result.stdout) == {
        "total_jobs": 3,
        "succeeded": 1,
        "failed": 1,
        "skipped": 1,
        "cancelled": 0,
    }


def test_job_number_and_slot_placeholders_fill_in_and_running_jobs_never_share_a_slot(
    tmp_path: Path,
) -> None:
    """``{#}`` counts jobs from 1 in config order; ``{%}`` is the slot (1 to -j): two
    jobs running at once hold different slots, checked on the intervals they ran."""
    log = tmp_path / "log"
    log.mkdir()
    for index in range(6):
        (tmp_path / f"in{index}.txt").write_text("x\n", encoding="utf-8")
    config = batch(
        tmp_path,
        {
            "name": "slotted",
            "input": "in*.txt",
            "params": {
                "shell": f"s=$(date +%s.%N); sleep 0.2; e=$(date +%s.%N); "
                f"echo {{#}} {{%}} $s $e > {log}/{{stem}}"
            },
        },
    )
    run(config, "-j", "2", code=0)
    rows = [(log / f"in{index}").read_text(encoding="utf-8").split() for index in range(6)]
    assert [int(number) for number, *_ in rows] == [1, 2, 3, 4, 5, 6]
    spans = [(int(slot), float(start), float(end)) for _, slot, start, end in rows]
    assert {slot for slot, _, _ in spans} <= {1, 2}
    for one in spans:
        for other in spans:
            if one is not other and one[0] == other[0]:
                assert one[2] <= other[1] or other[2] <= one[1], (one, other)
