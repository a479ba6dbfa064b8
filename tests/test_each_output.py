"""What ``each`` (and ``run --show-output``) prints: each command job's stdout and
stderr as one block when the job ends, never interleaved with another's; ``-k``,
``--line-buffer``, ``--tag``, ``--json``, ``--results DIR``, the JSON lines of
``--action``; failed command jobs keeping their output in ``error.details``.

Real programs (``sh``) on real files in ``tmp_path``, through the command in process
(``invoke``). Order is forced with files the programs wait for, never with timings.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import invoke, read_json, summary, write_json

from asyncbatch.output._capture import MEMORY_BYTES, Part
from asyncbatch.output.blocks import result_folder_name

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX programs")

COUNTED = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n"; '
"""Shell lines that count their runs in the file ``count`` and print the count."""
WAIT_FOR = 'i=0; while [ ! -e "$1" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done'
"""A shell loop that waits (10 s at most) until the file named by $1 exists."""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text(f"{name}\n", encoding="utf-8")
    return tmp_path


def each(*args: str, code: int = 0, stdin: str | None = None) -> Any:
    result = invoke(["each", "-q", *args], stdin=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def test_each_prints_a_block_per_job_on_stdout_and_stderr_never_interleaved(here: Path) -> None:
    # Every job prints its first line, then waits until every other job has printed
    # its first: ungrouped, the lines would interleave.
    script = (
        'echo "$1 one"; echo "$1 err" >&2; touch "started-$1"; '
        'for o in a b c; do i=0; while [ ! -e "started-$o" ] && [ $i -lt 1000 ]; '
        'do sleep 0.01; i=$((i+1)); done; done; echo "$1 two"'
    )
    result = each("-j", "3", "--args", "a", "b", "c", "--", "sh", "-c", script, "sh")
    lines = result.stdout.splitlines()
    assert sorted(lines) == sorted(f"{n} {w}" for n in "abc" for w in ("one", "two"))
    for first in range(0, 6, 2):  # each job's two lines together
        assert lines[first].split()[0] == lines[first + 1].split()[0]
    assert sorted(result.stderr.splitlines()) == ["a err", "b err", "c err"]


def test_keep_order_prints_in_input_order_when_the_first_job_ends_last(here: Path) -> None:
    # The first job waits until the last one has ended (its marker): it ends last.
    script = (
        f'if [ "$1" = a ]; then {WAIT_FOR.replace("$1", "c.done")}; fi; echo "$1"; '
        'if [ "$1" = c ]; then touch c.done; fi'
    )
    args = ["-j", "3", "--args", "a", "b", "c", "--", "sh", "-c", script, "sh"]
    assert each("-k", *args).stdout.splitlines() == ["a", "b", "c"]
    (here / "c.done").unlink()
    assert each(*args).stdout.splitlines()[-1] == "a", "without -k: the order jobs end in"


def test_line_buffer_writes_each_line_whole_as_soon_as_it_ends(here: Path) -> None:
    # a prints a line, then waits for b's first line to be out; b waits for a's.
    script = (
        'if [ "$1" = a ]; then echo a1; touch a1; '
        + WAIT_FOR.replace("$1", "b1")
        + "; echo a2; else "
        + WAIT_FOR.replace("$1", "a1")
        + "; echo b1; touch b1; fi"
    )
    result = each("--line-buffer", "-j", "2", "--args", "a", "b", "--", "sh", "-c", script, "sh")
    assert result.stdout.splitlines() == ["a1", "b1", "a2"]
    last = each("--line-buffer", "--args", "x", "--", "printf", "no newline")
    assert last.stdout == "no newline"  # a last line without a newline: at the job's end


def test_tag_prefixes_every_line_of_both_streams_with_the_name(here: Path) -> None:
    result = each(
        "--tag",
        "--args",
        "x y",
        "--",
        "sh",
        "-c",
        'printf "1\\n2\\n"; printf "e\\n" >&2; printf z',
        "sh",
    )
    assert result.stdout == "x y\t1\nx y\t2\nx y\tz"
    assert result.stderr == "x y\te\n"


def test_json_puts_the_summary_back_and_the_output_goes_to_the_report_only(here: Path) -> None:
    result = each("--json", "-o", "r.json", "a.txt", "--", "cat")
    assert summary(result.stdout)["succeeded"] == 1
    assert read_json(here / "r.json")["jobs"][0]["result"]["stdout"] == "a\n"


def test_action_prints_a_json_line_per_finished_job_and_keep_order_orders_them(here: Path) -> None:
    result = each("-k", "c.txt", "a.txt", "gone.txt", "--action", "count_lines", code=1)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[:2] == [
        {"name": "c.txt", "status": "succeeded", "result": {"lines": 1}},
        {"name": "a.txt", "status": "succeeded", "result": {"lines": 1}},
    ]
    assert lines[2]["name"] == "gone.txt"
    assert lines[2]["error"]["type"] == "FileNotFoundError"
    assert "result" not in lines[2]


def test_a_failed_command_keeps_its_output_and_exit_code_in_error_details(here: Path) -> None:
    script = 'echo "to out"; echo "to err" >&2; exit 3'
    result = each("-o", "r.json", "a.txt", "--", "sh", "-c", script, code=1)
    assert result.stdout == "to out\n"  # printed although the job failed
    error = read_json(here / "r.json")["jobs"][0]["error"]
    assert error == {
        "type": "CommandFailed",
        "message": "exit status 3: to err",
        "details": {
            "exit_code": 3,
            "stdout": "to out\n",
            "stderr": "to err\n",
            "stdout_bytes": 7,
            "stderr_bytes": 7,
        },
    }


def test_a_timed_out_or_cancelled_command_keeps_what_it_printed(here: Path) -> None:
    script = 'echo "before $1"; touch "$1.started"; exec sleep 30'
    each("--timeout", "0.3", "-o", "r.json", "--args", "t", "--", "sh", "-c", script, "sh", code=1)
    error = read_json(here / "r.json")["jobs"][0]["error"]
    assert error["type"] == "Timeout"
    assert (error["details"]["signal"], error["details"]["stdout"]) == ("SIGTERM", "before t\n")
    stopper = f"{WAIT_FOR.replace('$1', 'long.started')}; exit 1"
    line = f"if [ {{input}} = long ]; then sh -c {shlex.quote(script)} sh long; else {stopper}; fi"
    result = each("--fail-fast", "-o", "r2.json", "--args", "long", "stop", "--shell", line, code=1)
    jobs = {job["name"]: job for job in read_json(here / "r2.json")["jobs"]}
    assert jobs["long"]["status"] == "cancelled"
    assert jobs["long"]["error"]["details"]["stdout"] == "before long\n"
    assert "before long" in result.stdout  # a cancelled job's block is printed too


def test_only_the_last_attempt_prints(here: Path) -> None:
    script = COUNTED + "test $n -ge 3"
    result = each("--retries", "3", "--args", "x", "--", "sh", "-c", script)
    assert result.stdout == "attempt 3\n"


def test_results_keeps_each_jobs_complete_streams_named_in_the_report(here: Path) -> None:
    script = 'head -c 10000 /dev/zero | tr "\\0" x; echo; echo "err $1" >&2; test "$1" = ok'
    args = [
        "--results",
        "out",
        "-o",
        "r.json",
        "--args",
        "ok",
        "no/pe",
        "--",
        "sh",
        "-c",
        script,
        "sh",
    ]
    each(*args, code=1)
    jobs = {job["name"]: job for job in read_json(here / "r.json")["jobs"]}
    ok_folder = here / "out" / "ok"
    assert jobs["ok"]["result"]["stdout_file"] == str(ok_folder / "stdout")
    assert jobs["ok"]["result"]["stderr_file"] == str(ok_folder / "stderr")
    assert (ok_folder / "stdout").read_text() == "x" * 10000 + "\n"  # whole, not the 4 KiB end
    assert len(jobs["ok"]["result"]["stdout"]) == 4096
    failed = jobs["no/pe"]["error"]["details"]
    assert failed["stderr_file"] == str(here / "out" / "no%2Fpe" / "stderr")
    assert Path(failed["stderr_file"]).read_text() == "err no/pe\n"


def test_results_start_afresh_with_each_attempt_and_reused_jobs_keep_theirs(here: Path) -> None:
    script = COUNTED + "test $n -ge 2"
    args = ["--results", "out", "-o", "r.json", "a.txt", "--", "sh", "-c", script]
    each("--retries", "1", *args)
    assert (here / "out" / "a.txt" / "stdout").read_text() == "attempt 2\n"
    result = each("--resume", *args)
    assert result.stdout == ""  # a reused job prints nothing
    assert (here / "count").read_text() == "2\n"
    job = read_json(here / "r.json")["jobs"][0]
    assert (job["reused"], job["result"]["stdout_file"]) == (True, str(here / "out/a.txt/stdout"))
    assert (here / "out" / "a.txt" / "stdout").read_text() == "attempt 2\n"


@pytest.mark.parametrize(
    ("folder", "why"),
    [
        ("a.txt", "is not a folder"),
        ("inputs", "is an input of the batch"),
        ("out", "holds the report"),
    ],
)
def test_a_results_folder_that_is_a_file_an_input_or_holds_the_report_is_refused(
    here: Path, folder: str, why: str
) -> None:
    (here / "inputs").mkdir()
    args = ["--results", folder, "-o", "out/r.json", "inputs", "a.txt", "--", "touch", "ran"]
    (here / "out").mkdir()
    result = invoke(["each", *args])
    assert result.exit_code == 2
    assert why in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (here / "ran").exists()


def test_keep_order_with_line_buffer_and_shaping_options_without_output_are_usage_errors(
    here: Path,
) -> None:
    result = invoke(["each", "-k", "--line-buffer", "a.txt", "--", "true"])
    assert result.exit_code == 2
    assert "-k/--keep-order and --line-buffer: give only one of them" in result.stderr
    result = invoke(["each", "--json", "--tag", "a.txt", "--", "true"])
    assert result.exit_code == 2
    config = write_json(here / "batch.json", {"jobs": []})
    result = invoke(["run", str(config), "-k"])
    assert result.exit_code == 2
    assert "shape what --show-output prints" in result.stderr


def test_run_show_output_prints_command_jobs_output_instead_of_the_summary(here: Path) -> None:
    config = write_json(
        here / "batch.json",
        {
            "jobs": [
                {"name": "lines", "action": "count_lines", "input": "a.txt"},
                {
                    "name": "say",
                    "action": "command",
                    "input": ".",
                    "params": {"argv": ["echo", "hi"]},
                },
                {
                    "name": "cat",
                    "action": "command",
                    "input": "b.txt",
                    "params": {"argv": ["cat", "{input}"]},
                },
            ]
        },
    )
    result = invoke(["run", str(config), "-q", "--show-output", "-k", "--tag"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "say\thi\ncat\tb\n"


def test_a_block_past_the_memory_bound_waits_in_a_temporary_file(tmp_path: Path) -> None:
    part = Part()
    data = os.urandom(MEMORY_BYTES + 12345)
    part.add(data[:1000])
    assert not part.spilled
    part.add(data[1000:])
    assert part.spilled
    assert b"".join(part.chunks()) == data
    part.clear()
    assert not part.spilled
    assert b"".join(part.chunks()) == b""


def test_a_big_block_is_printed_whole(here: Path) -> None:
    result = each("--args", "x", "--", "sh", "-c", "head -c 300000 /dev/zero | tr '\\0' y")
    assert result.stdout == "y" * 300000


def test_result_folder_names_are_safe_and_distinct() -> None:
    names = ["a.txt", "logs/a.txt", "logs%2Fa.txt", ".hidden", "..", "a\nb", "x" * 300, "x" * 301]
    folders = [result_folder_name(name) for name in names]
    assert len(set(folders)) == len(names)
    assert folders[:3] == ["a.txt", "logs%2Fa.txt", "logs%252Fa.txt"]
    assert all("/" not in folder and not folder.startswith(".") for folder in folders)
    assert all(len(folder) < 200 for folder in folders)


# --- bounded memory, temporary files (a process of its own) ------------------------------

MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump([usage.ru_maxrss, os.waitstatus_to_exitcode(status)], out)
"""
"""Run ARGV and write its peak RSS (KiB) and exit code to a file (started by this
small process, so that the peak is the command's own, not inherited)."""


@pytest.mark.slow  # a gibibyte through a pipe and a temporary file
def test_a_command_printing_a_gibibyte_costs_at_most_64_mib(tmp_path: Path) -> None:
    printer = (
        "import sys\nchunk = b'x' * (1 << 20)\nfor _ in range(1024): sys.stdout.buffer.write(chunk)"
    )
    measured = tmp_path / "peak.json"
    command = [
        sys.executable,
        "-m",
        "asyncbatch",
        "each",
        "-q",
        "--args",
        "x",
        "--",
        sys.executable,
        "-c",
        printer,
    ]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(measured), *command],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        check=False,
    )
    peak_kib, code = json.loads(measured.read_text(encoding="utf-8"))
    assert (code, done.stderr) == (0, "")
    assert peak_kib * 1024 <= 64 << 20, f"{peak_kib / 1024:.1f} MiB"
    assert sorted(os.listdir(tmp_path)) == ["peak.json"], "no temporary file is left"


@pytest.mark.slow  # a run interrupted by a signal
def test_an_interrupted_run_removes_its_temporary_files(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    # a prints past the memory bound and waits; b does too and ends: held back by -k.
    script = 'head -c 300000 /dev/zero; touch "printed-$1"; if [ "$1" = a ]; then exec sleep 60; fi'
    with open(tmp_path / "out", "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "asyncbatch",
                "each",
                "-k",
                "-q",
                "--args",
                "a",
                "b",
                "--",
                "sh",
                "-c",
                script,
                "sh",
            ],
            cwd=tmp_path,
            env={**os.environ, "TMPDIR": str(spool)},
            stdout=out,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            printed = [tmp_path / "printed-a", tmp_path / "printed-b"]
            while time.monotonic() < deadline and not (
                all(marker.exists() for marker in printed) and len(spooled(proc.pid, spool)) >= 2
            ):
                time.sleep(0.05)
            assert len(spooled(proc.pid, spool)) >= 2, "a's block and b's held one"
            assert os.listdir(spool) == [], "anonymous: no name to leave behind"
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 143, stderr
    assert os.listdir(spool) == []
    assert (tmp_path / "out").read_bytes() == b"\0" * 600000  # both blocks, whole, in order


def spooled(pid: int, folder: Path) -> list[str]:
    """The files in ``folder`` process ``pid`` holds open."""
    found = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(folder)):
                found.append(target)
    except OSError:
        pass
    return found
