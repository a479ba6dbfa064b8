"""Live progress and the end-of-run summary on stderr: the real command under a
pseudo-terminal (``os.openpty``) and on pipes, the progress state driven by a run's
events (exact: attempts started and not ended), and the listener that feeds it."""

from __future__ import annotations

import fcntl
import functools
import io
import itertools
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.lowlevel
import pytest
from support import (
    KernelProbe,
    Probe,
    by_name,
    invoke,
    job,
    load,
    run,
    run_module,
    summary,
    write_json,
)

from asyncbatch.config import Job
from asyncbatch.engine import Backoff, RunListener
from asyncbatch.model import JobResult, Report, Resources, Status
from asyncbatch.output.display import progress_wanted, running_under_ci
from asyncbatch.output.progress import (
    ProgressListener,
    ProgressState,
    describe,
    format_seconds,
    notes,
)
from asyncbatch.output.terminal import (
    group_jobs,
    job_line,
    print_end_of_run,
    print_problems,
    sanitize,
)

TIMEOUT = 30
# Variables that change whether or how rich draws: the tests set what they need.
DISPLAY_VARIABLES = (
    "CI",
    "NO_COLOR",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "LINES",
    "TERM",
)
SGR = re.compile(r"\x1b\[([0-9;]*)m")
PROGRESS_LINE = re.compile(r"(\d[\d,]*)/(\d[\d,]*) done, (\d+) running, \d+ failed")
EVIL_NAME = "evil\x1b[2Jjob"
EVIL_INPUT = "gone\x1b]0;pwned\x07.txt"


# --- running the command -------------------------------------------------------------------


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    stderr_lines: list[str] = field(default_factory=list)


def environment(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in DISPLAY_VARIABLES}
    env["TERM"] = "xterm-256color"
    env.update(overrides)
    return env


def run_on_terminal(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], columns: int = 100
) -> Completed:
    """``python -m asyncbatch ARGS`` with stderr on a pseudo-terminal of ``columns``
    columns (stdout stays a pipe), everything written to the terminal collected."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncbatch", *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise AssertionError("the command did not finish in time")
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    stdout, _ = proc.communicate(timeout=TIMEOUT)
    stderr = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    assert "Traceback" not in stderr
    return Completed(proc.returncode, stdout.decode(), stderr, _screen_lines(stderr))


def run_on_pipes(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> Completed:
    completed = run_module(args, cwd=cwd, env=env, timeout=TIMEOUT)
    return Completed(
        completed.returncode, completed.stdout, completed.stderr, completed.stderr.splitlines()
    )


def _screen_lines(output: str) -> list[str]:
    """The lines left on screen once ``output`` is drawn: a minimal terminal that
    knows what rich's live display uses (``\\r``, cursor up, erase line)."""
    screen: list[list[str]] = [[]]
    row = col = 0
    for match in re.finditer(r"\x1b\[([0-9;?]*)([A-Za-z])|(.)", output, re.DOTALL):
        params, final, char = match.groups()
        if final == "A":
            row = max(0, row - int(params or 1))
        elif final == "K":
            screen[row] = [] if params == "2" else screen[row][:col]
        elif final is not None:
            continue  # colours, cursor visibility
        elif char == "\n":
            row, col = row + 1, 0
        elif char == "\r":
            col = 0
        else:
            line = screen[row]
            line.extend(" " * (col - len(line) + 1))
            line[col] = char
            col += 1
        screen.extend([] for _ in range(row - len(screen) + 1))
    return ["".join(line).rstrip() for line in screen]


def colour_codes(output: str) -> list[str]:
    """SGR sequences that set a foreground or background colour."""
    found = []
    for match in SGR.finditer(output):
        codes = [int(code) for code in match.group(1).split(";") if code]
        if any(30 <= c <= 49 or 90 <= c <= 107 for c in codes):
            found.append(match.group())
    return found


def progress_frames(output: str) -> list[tuple[int, int]]:
    """(done, total) of each progress line drawn."""
    return [
        (int(done.replace(",", "")), int(total.replace(",", "")))
        for done, total, _ in PROGRESS_LINE.findall(output)
    ]


def running_counts(output: str) -> list[int]:
    """The running count of each progress line drawn."""
    return [int(running) for _, _, running in PROGRESS_LINE.findall(output)]


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """Three small inputs and a config of twelve file_size jobs over them."""
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text("hello\n", encoding="utf-8")
    jobs = [
        {"name": f"job{i}", "action": "file_size", "input": f"{'abc'[i % 3]}.txt"}
        for i in range(12)
    ]
    return write_json(tmp_path / "batch.json", {"jobs": jobs})


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """One success, one failure whose name and input hold escape sequences, and a
    job skipped because it depends on the failure."""
    (tmp_path / "a.txt").write_text("hello\n", encoding="utf-8")
    jobs = [
        {"name": "fine", "action": "file_size", "input": "a.txt"},
        {"name": EVIL_NAME, "action": "count_lines", "input": EVIL_INPUT},
        {"name": "after", "action": "file_size", "input": "a.txt", "depends_on": [EVIL_NAME]},
    ]
    return write_json(tmp_path / "failing.json", {"jobs": jobs})


# --- live progress: when it shows -------------------------------------------------------------


@pytest.mark.slow
def test_progress_shows_on_a_terminal_then_gives_way_to_the_summary(batch: Path) -> None:
    result = run_on_terminal(["run", str(batch)], cwd=batch.parent, env=environment())
    assert result.returncode == 0
    assert summary(result.stdout)["succeeded"] == 12
    frames = progress_frames(result.stderr)
    assert frames, result.stderr
    assert all(total == 12 for _, total in frames)
    assert frames[-1] == (12, 12)
    assert "elapsed, ETA " in result.stderr
    assert "\u2264" not in result.stderr, "running is exact, never shown as a bound"
    assert all(0 <= running <= 4 for running in running_counts(result.stderr))
    # Erased in place: what is left on screen is the summary alone.
    visible = [line for line in result.stderr_lines if line.strip()]
    assert len(visible) == 1, visible
    assert re.fullmatch(r"12 succeeded, 0 failed, 0 skipped, 0 cancelled in [\d.]+ s", visible[0])


@pytest.mark.slow
def test_no_progress_when_stderr_is_a_pipe(batch: Path) -> None:
    result = run_on_pipes(["run", str(batch)], cwd=batch.parent, env=environment())
    assert result.returncode == 0
    assert progress_frames(result.stderr) == []
    assert "\x1b" not in result.stderr
    assert result.stderr_lines[0].startswith("12 succeeded, 0 failed")
    assert len(result.stderr_lines) == 1


@pytest.mark.slow
def test_progress_forced_on_a_pipe_goes_to_stderr_and_stdout_stays_the_summary(
    batch: Path,
) -> None:
    result = run_on_pipes(["run", str(batch), "--progress"], cwd=batch.parent, env=environment())
    assert result.returncode == 0
    assert summary(result.stdout) == {
        "total_jobs": 12,
        "succeeded": 12,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
    }
    assert progress_frames(result.stderr)[-1] == (12, 12)


@pytest.mark.slow
def test_no_progress_turns_it_off_on_a_terminal(batch: Path) -> None:
    result = run_on_terminal(
        ["run", str(batch), "--no-progress"], cwd=batch.parent, env=environment()
    )
    assert result.returncode == 0
    assert progress_frames(result.stderr) == []
    assert "12 succeeded" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "variables",
    [{"CI": "true"}, {"CI": "1"}, {"CI": "True"}, {"TERM": "dumb"}],
    ids=["CI=true", "CI=1", "CI=True", "TERM=dumb"],
)
def test_ci_or_a_dumb_terminal_turns_progress_off_on_a_terminal(
    batch: Path, variables: dict[str, str]
) -> None:
    result = run_on_terminal(["run", str(batch)], cwd=batch.parent, env=environment(**variables))
    assert result.returncode == 0
    assert progress_frames(result.stderr) == []
    assert "12 succeeded" in result.stderr


@pytest.mark.slow
def test_ci_false_leaves_progress_on(batch: Path) -> None:
    result = run_on_terminal(["run", str(batch)], cwd=batch.parent, env=environment(CI="false"))
    assert progress_frames(result.stderr)


@pytest.mark.slow
def test_the_progress_option_wins_over_ci(batch: Path) -> None:
    result = run_on_terminal(
        ["run", str(batch), "--progress"], cwd=batch.parent, env=environment(CI="true")
    )
    assert result.returncode == 0
    assert progress_frames(result.stderr)[-1] == (12, 12)


@pytest.mark.slow
def test_quiet_turns_progress_off_even_when_forced(batch: Path) -> None:
    result = run_on_terminal(
        ["run", str(batch), "-q", "--progress"], cwd=batch.parent, env=environment()
    )
    assert result.returncode == 0
    assert result.stderr == ""
    assert summary(result.stdout)["succeeded"] == 12


@pytest.mark.slow
def test_quiet_on_a_terminal_still_shows_the_failures(failing: Path) -> None:
    result = run_on_terminal(["run", str(failing), "-q"], cwd=failing.parent, env=environment())
    assert result.returncode == 1
    assert progress_frames(result.stderr) == []
    assert "1 succeeded, 1 failed, 1 skipped" in result.stderr
    assert "FileNotFoundError" in result.stderr


@pytest.mark.slow
def test_a_run_without_progress_never_imports_rich(batch: Path) -> None:
    result = run_on_pipes(
        ["run", str(batch)], cwd=batch.parent, env=environment(PYTHONPROFILEIMPORTTIME="1")
    )
    assert result.returncode == 0
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr_lines
        if line.startswith("import time:") and "|" in line
    }
    assert "asyncbatch" in imported, "the importtime output was parsed"
    assert "rich" not in imported


# --- live progress: what it looks like ----------------------------------------------------------


@pytest.mark.slow
def test_verbose_lines_print_above_the_live_progress(batch: Path) -> None:
    result = run_on_terminal(["run", str(batch), "-v"], cwd=batch.parent, env=environment())
    assert result.returncode == 0
    assert progress_frames(result.stderr)
    job_lines = [line for line in result.stderr_lines if line.startswith("succeeded")]
    assert sorted(line.split()[1] for line in job_lines) == sorted(f"job{i}" for i in range(12))
    assert result.stderr_lines[-2].startswith("12 succeeded")


@pytest.mark.slow
def test_no_color_leaves_no_colour_codes_on_the_terminal(failing: Path) -> None:
    coloured = run_on_terminal(["run", str(failing)], cwd=failing.parent, env=environment())
    assert colour_codes(coloured.stderr), "without NO_COLOR the display has colour"
    plain = run_on_terminal(
        ["run", str(failing)], cwd=failing.parent, env=environment(NO_COLOR="1")
    )
    assert plain.returncode == 1
    assert progress_frames(plain.stderr)
    assert "FileNotFoundError" in plain.stderr
    assert colour_codes(plain.stderr) == []


# --- the end-of-run summary ---------------------------------------------------------------------


@pytest.mark.slow
def test_control_characters_in_names_and_messages_are_escaped_on_a_pipe(failing: Path) -> None:
    result = run_on_pipes(["run", str(failing), "-v"], cwd=failing.parent, env=environment())
    assert result.returncode == 1
    assert "\x1b" not in result.stderr
    assert "\x07" not in result.stderr
    failed = [line for line in result.stderr_lines if line.startswith("  FAILED")]
    assert failed == [
        "  FAILED    evil\\x1b[2Jjob: FileNotFoundError: gone\\x1b]0;pwned\\x07.txt: no such file"
    ]
    (verbose,) = [line for line in result.stderr_lines if line.startswith("failed ")]
    assert re.fullmatch(
        r"failed    evil\\x1b\[2Jjob in [\d.]+ ms: "
        r"FileNotFoundError: gone\\x1b\]0;pwned\\x07\.txt: no such file",
        verbose,
    )


@pytest.mark.slow
def test_control_characters_in_names_and_messages_are_escaped_on_a_terminal(
    failing: Path,
) -> None:
    result = run_on_terminal(["run", str(failing)], cwd=failing.parent, env=environment())
    assert result.returncode == 1
    assert "\x1b[2J" not in result.stderr
    assert "\x1b]0;" not in result.stderr
    assert "\x07" not in result.stderr
    assert "evil\\x1b[2Jjob" in result.stderr
    assert "gone\\x1b]0;pwned\\x07.txt: no such file" in result.stderr


@pytest.mark.slow
def test_the_terminal_shows_skips_by_reason_then_the_failure_table_last(failing: Path) -> None:
    result = run_on_terminal(["run", str(failing)], cwd=failing.parent, env=environment())
    rows = [line for line in result.stderr_lines if line.strip()]
    assert rows[0].startswith("1 succeeded, 1 failed, 1 skipped, 0 cancelled in ")
    skipped, header, failed = rows[1:]
    assert (
        skipped
        == "  SKIPPED   1 job  DependencyFailed: dependency 'evil\\x1b[2Jjob' failed  (after)"
    )
    assert header.split() == ["FAILED", "message", "error"]
    assert failed.split()[:2] == ["evil\\x1b[2Jjob", "gone\\x1b]0;pwned\\x07.txt:"]
    assert failed.split()[-1] == "FileNotFoundError"
    for column in ("message", "error"):
        start = header.index(column)
        assert failed[start - 2 : start] == "  "
        assert failed[start] != " "


@pytest.mark.slow
def test_the_terminal_table_cuts_long_messages_at_the_terminal_width(tmp_path: Path) -> None:
    missing = "x" * 150 + ".txt"
    config = write_json(
        tmp_path / "long.json",
        {"jobs": [{"name": "long", "action": "count_lines", "input": missing}]},
    )
    result = run_on_terminal(["run", str(config)], cwd=tmp_path, env=environment(), columns=60)
    table = [line for line in result.stderr_lines if "long" in line]
    assert table
    assert all(len(line) <= 60 for line in result.stderr_lines)
    assert table[0].rstrip().endswith("\u2026")


@pytest.mark.slow
def test_the_plain_summary_keeps_whole_messages_and_aligns_the_columns(tmp_path: Path) -> None:
    missing = "y" * 150 + ".txt"
    config = write_json(
        tmp_path / "plain.json",
        {
            "jobs": [
                {"name": "unknown", "action": "no_such_action", "input": "a.txt"},
                {"name": "a-much-longer-name", "action": "count_lines", "input": missing},
                {"name": "short", "action": "count_lines", "input": "z.txt"},
            ]
        },
    )
    result = run_on_pipes(["run", str(config), "-j", "1"], cwd=tmp_path, env=environment())
    assert result.returncode == 1
    rows = [line for line in result.stderr_lines if line.startswith("  ")]
    assert rows[0] == "  SKIPPED   1 job  UnknownAction: unknown action 'no_such_action'  (unknown)"
    assert rows[1].startswith("  FAILED    a-much-longer-name: FileNotFoundError: ")
    assert rows[1].endswith(f"{missing}: no such file")
    assert rows[2].startswith("  FAILED    short:")
    assert rows[1].index("FileNotFoundError") == rows[2].index("FileNotFoundError")


def test_print_problems_writes_nothing_for_no_rows() -> None:
    stream = io.StringIO()
    print_problems([], stream=stream, terminal=False)
    print_problems([], stream=stream, terminal=True)
    assert stream.getvalue() == ""


# --- the end of a run, in process ----------------------------------------------------------------


def finished(
    name: str,
    status: Status,
    error: tuple[str, str] | None = None,
    *,
    attempts: int = 1,
    reused: bool = False,
) -> JobResult:
    return JobResult(
        name=name,
        action="count_lines",
        input=f"{name}.txt",
        status=status,
        error=None if error is None else {"type": error[0], "message": error[1]},
        attempts=attempts,
        reused=reused,
    )


def a_report(jobs: list[JobResult], *, first_failure: str | None = None) -> Report:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return Report(
        config="batch.json",
        started_at=started,
        finished_at=started + timedelta(seconds=1.5),
        max_concurrency=4,
        jobs=jobs,
        first_failure=first_failure,
    )


def end_of_run(report: Report, *, quiet: bool = False) -> list[str]:
    stream = FakeStream(tty=False)
    print_end_of_run(report, quiet=quiet, stream=stream)
    return stream.getvalue().splitlines()


def missing(name: str, **fields: Any) -> JobResult:
    return finished(name, "failed", ("FileNotFoundError", f"{name}.txt: no such file"), **fields)


def test_the_end_of_run_lists_20_failures_last_and_counts_the_others() -> None:
    jobs = [missing(f"f{i:02d}") for i in range(25)]
    jobs += [finished("u", "skipped", ("UnknownAction", "unknown action 'x'"))]
    lines = end_of_run(a_report(jobs, first_failure="f07"))
    assert lines[0] == "0 succeeded, 25 failed, 1 skipped, 0 cancelled in 1.50 s"
    assert lines[1] == "  SKIPPED   1 job  UnknownAction: unknown action 'x'  (u)"
    failed = [line.split()[1] for line in lines[2:-1]]
    expected = ["f07", *(f"f{i:02d}" for i in range(25) if i != 7)][:20]
    assert failed == [f"{name}:" for name in expected]
    assert lines[-1] == "  ... and 5 more failed"


def test_the_end_of_run_groups_5000_skips_by_reason_in_a_screenful() -> None:
    jobs = [finished(f"ok{i}", "succeeded") for i in range(4_999)]
    jobs += [missing("build")]
    why = ("DependencyFailed", "dependency 'build' failed")
    jobs += [finished(f"after{i}", "skipped", why) for i in range(4_000)]
    jobs += [
        finished(f"odd{i}", "skipped", ("UnknownAction", "unknown action 'x'"))
        for i in range(1_000)
    ]
    lines = end_of_run(a_report(jobs))
    assert lines == [
        "4,999 succeeded, 1 failed, 5,000 skipped, 0 cancelled in 1.50 s",
        "  SKIPPED   4,000 jobs  DependencyFailed: dependency 'build' failed  "
        "(after0, after1, after2, after3, after4, ...)",
        "  SKIPPED   1,000 jobs  UnknownAction: unknown action 'x'  "
        "(odd0, odd1, odd2, odd3, odd4, ...)",
        "  FAILED    build: FileNotFoundError: build.txt: no such file",
    ]


def test_the_end_of_run_shows_ten_reasons_per_status_and_counts_the_others() -> None:
    jobs = [missing(f"dep{i}") for i in range(15)]
    for i in range(15):
        why = ("DependencyFailed", f"dependency 'dep{i}' failed")
        jobs += [finished(f"after{i}-{j}", "skipped", why) for j in range(20 - i)]
    lines = end_of_run(a_report(jobs))
    skipped = [line for line in lines if line.startswith("  SKIPPED")]
    assert len(skipped) == 11
    assert "dependency 'dep0' failed" in skipped[0]  # the largest group first
    assert "dependency 'dep9' failed" in skipped[9]
    assert skipped[10] == "  SKIPPED   40 jobs  ... for 5 other reasons"  # 10 + 9 + ... + 6


def test_the_end_of_run_groups_cancelled_jobs_by_reason() -> None:
    halt = ("Cancelled", "the run was interrupted")
    jobs = [finished(f"c{i}", "cancelled", halt) for i in range(3_000)]
    jobs += [finished("remote", "cancelled", ("Cancelled", "cancelled"))]
    lines = end_of_run(a_report(jobs))
    assert lines[1:] == [
        "  CANCELLED 3,000 jobs  Cancelled: the run was interrupted  (c0, c1, c2, c3, c4, ...)",
        "  CANCELLED 1 job       Cancelled: cancelled  (remote)",
    ]


def test_the_end_of_run_says_how_many_attempts_a_retried_failure_took() -> None:
    jobs = [missing("flaky", attempts=4), missing("once")]
    lines = end_of_run(a_report(jobs))
    assert (
        lines[1]
        == "  FAILED    flaky: FileNotFoundError: flaky.txt: no such file (after 4 attempts)"
    )
    assert lines[2] == "  FAILED    once:  FileNotFoundError: once.txt: no such file"


def test_the_end_of_run_counts_reused_results() -> None:
    jobs = [finished(f"r{i}", "succeeded", reused=i < 5) for i in range(7)]
    assert end_of_run(a_report([*jobs, missing("m")]))[0] == (
        "7 succeeded (5 reused), 1 failed, 0 skipped, 0 cancelled in 1.50 s"
    )
    assert end_of_run(a_report(jobs[5:]))[0].startswith("2 succeeded, 0 failed")


def test_the_end_of_run_escapes_names_and_reasons_in_groups() -> None:
    why = ("DependencyFailed", "dependency 'a\x1b[2J' failed")
    lines = end_of_run(a_report([finished("b\x07", "skipped", why)]))
    assert (
        lines[1] == "  SKIPPED   1 job  DependencyFailed: dependency 'a\\x1b[2J' failed  (b\\x07)"
    )


def test_quiet_prints_nothing_for_a_good_run_and_everything_for_a_failed_one() -> None:
    assert end_of_run(a_report([finished("a", "succeeded")]), quiet=True) == []
    assert len(end_of_run(a_report([missing("m")]), quiet=True)) == 2


def test_group_jobs_puts_the_largest_group_first_and_keeps_the_first_few() -> None:
    jobs = [finished(f"j{i}", "succeeded") for i in range(10)]
    groups = group_jobs(jobs, lambda job: int(job.name[1:]) % 3, keep=2)
    assert [(group.key, group.count) for group in groups] == [(0, 4), (1, 3), (2, 3)]
    assert [job.name for job in groups[0].first] == ["j0", "j3"]


def read_terminal(write: Callable[[TextIO], None], *, columns: int) -> list[str]:
    """What ``write`` leaves on a pseudo-terminal of ``columns`` columns."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal was closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with open(slave, "w", encoding="utf-8") as stream:
        write(stream)
    reader.join(TIMEOUT)
    os.close(master)
    return _screen_lines(b"".join(chunks).decode().replace("\r\n", "\n"))


def test_the_end_of_run_on_a_terminal_cuts_groups_and_puts_the_table_of_failures_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in DISPLAY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "80")
    why = ("DependencyFailed", "dependency 'build' failed because " + "w" * 100)
    jobs = [finished(f"after{i}", "skipped", why) for i in range(3_000)]
    jobs += [missing("flaky", attempts=4), *(missing(f"m{i}") for i in range(30))]
    report = a_report(jobs, first_failure="flaky")
    lines = [
        line
        for line in read_terminal(
            lambda stream: print_end_of_run(report, quiet=False, stream=stream), columns=80
        )
        if line
    ]
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("0 succeeded, 31 failed, 3,000 skipped")
    assert lines[1].startswith("  SKIPPED   3,000 jobs  DependencyFailed: dependency 'build'")
    assert lines[1].endswith("\u2026")
    assert lines[2].split() == ["FAILED", "message", "attempts", "error"]
    assert lines[3].split() == [
        "flaky",
        "flaky.txt:",
        "no",
        "such",
        "file",
        "4",
        "FileNotFoundError",
    ]
    assert lines[4].split() == ["m0", "m0.txt:", "no", "such", "file", "FileNotFoundError"]
    assert len(lines) == 3 + 20 + 1
    assert lines[-1] == "  ... and 11 more failed"


# --- sanitize -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name", "plain name"),
        ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("two\nlines\ttab\rcr", "two\\x0alines\\x09tab\\x0dcr"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("bidi\u202eevil\u2066", "bidi\\u202eevil\\u2066"),
        ("undecodable\udcff", "undecodable\\udcff"),
    ],
)
def test_sanitize_shows_control_characters_as_visible_escapes(raw: str, shown: str) -> None:
    assert sanitize(raw) == shown


# --- when progress is wanted ----------------------------------------------------------------------


class FakeStream(io.StringIO):
    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("TRUE", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_ci_is_any_value_but_empty_or_false_like(value: str, expected: bool) -> None:
    assert running_under_ci({"CI": value}) is expected


def test_no_ci_variable_is_not_ci() -> None:
    assert running_under_ci({}) is False


@pytest.mark.parametrize(
    ("option", "quiet", "tty", "environ", "expected"),
    [
        (None, False, True, {}, True),
        (None, False, False, {}, False),
        (None, False, True, {"CI": "true"}, False),
        (None, False, True, {"TERM": "dumb"}, False),
        (True, False, False, {"CI": "true"}, True),
        (False, False, True, {}, False),
        (True, True, True, {}, False),
        (None, True, True, {}, False),
    ],
)
def test_progress_wanted_quiet_first_then_the_option_then_terminal_and_ci(
    option: bool | None, quiet: bool, tty: bool, environ: dict[str, str], expected: bool
) -> None:
    stream = FakeStream(tty=tty)
    assert progress_wanted(option, quiet=quiet, stream=stream, environ=environ) is expected


# --- the progress state ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def result(
    name: str, status: Status = "succeeded", *, reused: bool = False, read: int | None = None
) -> JobResult:
    used = None if read is None else Resources(read_bytes=read)
    return JobResult(
        name=name, action="count_lines", input="x", status=status, reused=reused, resources=used
    )


def test_the_state_counts_jobs_by_status() -> None:
    state = ProgressState(6)
    for name, status in [("j0", "succeeded"), ("j1", "failed"), ("j2", "skipped")]:
        state.job_done(result(name, status))  # type: ignore[arg-type]
    state.job_done(result("j3", "cancelled"))
    state.job_done(result("j4", reused=True))
    assert (state.total, state.done) == (6, 5)
    assert (state.failed, state.skipped, state.cancelled, state.reused) == (1, 1, 1, 1)


def test_the_eta_is_unknown_before_the_first_job_ends() -> None:
    clock = Clock()
    state = ProgressState(4, clock=clock)
    state.job_started("j0")
    clock.now += 10
    assert state.eta() is None
    assert state.elapsed() == 10


def test_the_eta_is_the_remaining_jobs_at_the_pace_so_far() -> None:
    clock = Clock()
    state = ProgressState(20, clock=clock)
    for i in range(5):
        state.job_done(result(f"j{i}"))
    clock.now += 10.0
    assert state.eta() == pytest.approx(30.0)  # 5 jobs in 10 s, 15 to go


def test_the_eta_leaves_reused_results_out_of_the_pace() -> None:
    clock = Clock()
    state = ProgressState(20, clock=clock)
    for i in range(10):
        state.job_done(result(f"j{i}", reused=True))
    assert state.eta() is None
    for i in range(10, 15):
        state.job_done(result(f"j{i}"))
    clock.now += 10.0
    assert state.reused == 10
    assert state.eta() == pytest.approx(10.0)  # 5 jobs did work in 10 s, 5 to go


def test_the_rate_is_measured_over_the_recent_window_not_the_whole_run() -> None:
    """A slow start (1 job a minute) followed by a fast stretch (10 jobs a second):
    the rate is the recent one."""
    clock = Clock()
    state = ProgressState(1000, clock=clock)
    for i in range(3):
        clock.now += 60
        state.job_done(result(f"slow{i}"))
    for i in range(400):
        clock.now += 0.1
        state.job_done(result(f"fast{i}"))
    assert state.rate() == pytest.approx(10.0, rel=0.05)


def test_the_eta_counts_down_steadily_through_bursts_of_results() -> None:
    """Jobs end in bursts (ten at once every 10 s: 1 a second on average). Each
    second the shown ETA drops by about a second; it never jumps by more than a
    few seconds, as an estimate from the last burst alone would."""
    clock = Clock()
    state = ProgressState(400, clock=clock)
    shown: list[float] = []
    done = 0
    for second in range(1, 121):
        clock.now += 1
        if second % 10 == 0:
            for _ in range(10):
                state.job_done(result(f"j{done}"))
                done += 1
        eta = state.eta()
        if eta is not None and second > 40:
            shown.append(eta)
    steps = [later - earlier for earlier, later in itertools.pairwise(shown)]
    assert max(abs(step) for step in steps) < 4, steps
    assert shown[-1] == pytest.approx(280, rel=0.15)  # 280 jobs left at 1 a second


def test_the_status_line_names_retries_and_the_job_running_longest() -> None:
    clock = Clock()
    state = ProgressState(10, clock=clock)
    state.job_started("stuck")
    clock.now += 1
    state.job_started("quick")
    state.job_waiting("quick")  # its attempt failed: a retry waits
    texts = [text for text, _ in describe(state)]
    assert "1 retried" in texts
    assert notes(state) == [], "only after 5 s"
    clock.now += 6
    assert notes(state) == [("running longest: stuck 0:07", "yellow")]


def test_the_eta_is_zero_when_every_job_is_done() -> None:
    state = ProgressState(2)
    state.job_done(result("j0"))
    state.job_done(result("j1"))
    assert state.eta() == 0.0


def test_running_is_exactly_the_started_attempts_that_have_not_ended() -> None:
    state = ProgressState(10)
    assert state.running == 0
    for name in ("a", "b", "c"):
        state.job_started(name)
    assert state.running == 3
    state.job_done(result("a"))
    state.job_done(result("b", "failed"))
    assert state.running == 1
    state.job_done(result("c", "cancelled"))
    assert state.running == 0


def test_a_job_waiting_for_its_next_attempt_is_not_running() -> None:
    state = ProgressState(2)
    state.job_started("a")
    state.job_waiting("a")
    assert state.running == 0
    state.job_started("a")
    state.job_started("a")  # a second report of the same attempt counts once
    assert state.running == 1
    state.job_waiting("a")
    state.job_done(result("a", "failed"))  # failed for good while waiting: no start
    assert (state.running, state.done, state.failed) == (0, 1, 1)


def test_jobs_that_end_without_starting_leave_running_alone() -> None:
    """Skipped, reused and cancelled-before-starting jobs have a result, no attempt."""
    state = ProgressState(5)
    state.job_started("busy")
    state.job_done(result("after", "skipped"))
    state.job_done(result("again", reused=True))
    state.job_done(result("never", "cancelled"))
    assert (state.running, state.done) == (1, 3)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-:--"), (0, "0:00"), (4.6, "0:05"), (75, "1:15"), (3725, "1:02:05")],
)
def test_format_seconds_is_minutes_and_seconds_under_an_hour(
    seconds: float | None, shown: str
) -> None:
    assert format_seconds(seconds) == shown


def test_the_status_line_shows_the_exact_running_count() -> None:
    clock = Clock()
    state = ProgressState(10, clock=clock)
    state.job_started("j0")
    state.job_started("j1")
    state.job_done(result("j0", "failed"))
    clock.now += 3
    assert describe(state) == [
        ("1/10 done", ""),
        ("1 running", ""),
        ("1 failed", "red"),
        ("0.3 jobs/s", ""),
        ("0:03 elapsed", ""),
        ("ETA 0:27", ""),
    ]


def test_the_status_line_shows_skipped_and_cancelled_only_when_there_are_some() -> None:
    state = ProgressState(1234, clock=Clock())
    assert [text for text, _ in describe(state)] == [
        "0/1,234 done",
        "0 running",
        "0 failed",
        "0:00 elapsed",
        "ETA -:--",
    ]
    state.job_done(result("s", "skipped"))
    state.job_done(result("c", "cancelled"))
    assert describe(state)[2:5] == [
        ("0 failed", ""),
        ("1 skipped", "yellow"),
        ("1 cancelled", "red"),
    ]


# --- the listener ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Named:
    name: str


def test_the_listener_turns_a_runs_events_into_the_states_counts_and_verbose_lines() -> None:
    state, lines = ProgressState(2), list[str]()
    listener = ProgressListener(state, lines.append)
    listener.job_started(Named("a"), 1)
    listener.job_started(Named("b"), 1)
    assert state.running == 2
    listener.job_retrying(Named("a"), {"type": "ActionError", "message": "no"}, 0.5)
    assert state.running == 1
    listener.job_started(Named("a"), 2)
    done = JobResult(
        name="a", action="x", input="in", status="succeeded", result={"n": 1}, duration_ms=2.0
    )
    listener.job_done(done)
    assert (state.running, state.done) == (1, 1)
    assert lines == [job_line(done)]


def test_the_listener_without_a_state_writes_lines_and_without_lines_only_counts() -> None:
    lines: list[str] = []
    only_lines = ProgressListener(None, lines.append)
    failed = JobResult(
        name="e",
        action="x",
        input="in",
        status="failed",
        error={"type": "ActionError", "message": "bad"},
        duration_ms=1.5,
        attempts=2,
    )
    only_lines.job_started(Named("e"), 1)
    only_lines.job_retrying(Named("e"), {"type": "ActionError", "message": "bad"}, 0.1)
    only_lines.job_done(failed)
    assert lines == ["failed    e in 1.5 ms: ActionError: bad"]
    state = ProgressState(1)
    only_counts = ProgressListener(state, None)
    only_counts.job_started(Named("a"), 1)
    only_counts.job_done(result("a"))
    assert (state.running, state.done) == (0, 1)


def test_verbose_lines_give_the_jobs_cancelled_by_a_halt_one_line() -> None:
    lines: list[str] = []
    listener = ProgressListener(None, lines.append)
    halt = ("Cancelled", "the run was interrupted")
    listener.job_done(missing("m"))
    for i in range(5_000):
        listener.job_done(finished(f"c{i}", "cancelled", halt))
    assert lines[1:] == [
        "cancelled the unfinished jobs: the run was interrupted (counted at the end)"
    ]


def test_verbose_output_after_fail_fast_is_a_screenful(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\n", encoding="utf-8")
    jobs = [{"name": "missing", "action": "count_lines", "input": "nowhere.txt"}]
    jobs += [{"name": f"j{i}", "action": "count_lines", "input": "a.txt"} for i in range(500)]
    config = write_json(tmp_path / "halt.json", {"jobs": jobs})
    result = invoke(["run", str(config), "-v", "-j", "1", "--fail-fast"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    cancelled = [line for line in lines if line.strip().lower().startswith("cancelled")]
    assert len(cancelled) == 2  # the -v line, and the group at the end
    assert cancelled[0] == (
        "cancelled the unfinished jobs: the run halted after 1 failure (first: 'missing') "
        "(counted at the end)"
    )
    assert cancelled[1].startswith(
        "  CANCELLED 500 jobs  Cancelled: the run halted after 1 failure"
    )
    assert lines[-2].startswith("  FAILED    missing: FileNotFoundError")
    assert lines[-1] == f"note: inputs are relative to the config file's folder, {tmp_path}"
    assert len(lines) <= 7


class Watched(RunListener):
    """A run's events, passed on to a ProgressListener, noting after each one what
    the state shows as running."""

    def __init__(self, state: ProgressState) -> None:
        self.state = state
        self.progress = ProgressListener(state, None)
        self.shown: list[int] = []

    def job_started(self, job: Job, attempt: int) -> None:
        self.progress.job_started(job, attempt)
        self.shown.append(self.state.running)

    def job_retrying(self, job: Job, error: dict[str, str], delay: float) -> None:
        self.progress.job_retrying(job, error, delay)
        self.shown.append(self.state.running)

    def job_done(self, result: JobResult) -> None:
        self.progress.job_done(result)
        self.shown.append(self.state.running)


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_a_real_runs_state_never_shows_more_running_than_max_concurrency(
    tmp_path: Path, probe: Probe, limit: int
) -> None:
    """Awaited actions (some retried, one failing with a dependent skipped, an
    unknown action) and kernel jobs (which the local executor batches), under
    ``limit`` slots:
    the state is sampled after every event and at every turn of the event loop
    while the run goes on. It never shows more than ``limit`` running, nor fewer
    than the probe's actions actually running, reaches ``limit``, and ends at 0."""
    scans = KernelProbe("scan")
    probe.registry.register(scans.spec)
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text("x" * i, encoding="utf-8")
    jobs = [
        *(job(f"r{i}", params={"fill": limit}) for i in range(6)),
        *(job(f"flaky{i}", "flaky", params={"failures": 1}, retries=1) for i in range(3)),
        job("bad", "fail"),
        job("after-bad", depends_on=["bad"]),
        job("unknown", "no_such_action"),
        *({"name": f"scan{i}", "action": "scan", "input": f"f{i}.txt"} for i in range(6)),
    ]
    config = load(tmp_path, probe, jobs)
    state = ProgressState(len(config.jobs))
    watched = Watched(state)
    sampled: list[tuple[int, int]] = []
    finished = anyio.Event()

    async def sample() -> None:
        while not finished.is_set():
            sampled.append((state.running, probe.running))
            await anyio.lowlevel.checkpoint()

    async def batch() -> None:
        try:
            reports.append(
                await run(
                    config,
                    probe,
                    max_concurrency=limit,
                    listener=watched,
                    backoff=Backoff(start=0.001),
                )
            )
        finally:
            finished.set()

    reports: list[Report] = []
    async with anyio.create_task_group() as group:
        group.start_soon(sample)
        group.start_soon(batch)
    (report,) = reports
    outcomes = {name: (each.status, each.attempts) for name, each in by_name(report).items()}
    assert outcomes["after-bad"] == ("skipped", 0)
    assert outcomes["unknown"] == ("skipped", 0)
    assert outcomes["bad"] == ("failed", 1)
    assert all(outcomes[f"flaky{i}"] == ("succeeded", 2) for i in range(3))
    assert sorted(scans.scanned) == [f"f{i}.txt" for i in range(6)]
    assert sampled, "the sampler ran during the run"
    assert all(0 <= shown <= limit for shown in watched.shown)
    assert all(actually <= shown <= limit for shown, actually in sampled)
    assert max(watched.shown) == limit
    assert (state.running, state.done, state.total) == (0, len(jobs), len(jobs))
    assert (state.failed, state.skipped) == (1, 2)


@pytest.mark.slow
def test_a_missing_relative_input_names_the_folder_it_was_resolved_in(tmp_path: Path) -> None:
    """Run from elsewhere, the end of the run says where relative inputs resolve;
    run from the config's folder, it does not need to."""
    project = tmp_path / "project"
    project.mkdir()
    config = write_json(
        project / "batch.json",
        {"jobs": [{"name": "a", "action": "count_lines", "input": "logs/a.log"}]},
    )
    elsewhere = run_module(["run", str(config)], cwd=tmp_path)
    assert elsewhere.returncode == 1
    assert elsewhere.stderr.splitlines()[-1] == (
        f"note: inputs are relative to the config file's folder, {project}"
    )
    here = run_module(["run", "batch.json"], cwd=project)
    assert here.returncode == 1
    assert "note:" not in here.stderr


def test_bytes_per_second_count_the_files_the_built_ins_read(tmp_path: Path) -> None:
    """The bytes a file statistic read, measured where it read them, are the rate's;
    a command reads what it likes, unmeasured: it adds nothing. A whole run through
    the executor, the listener reading each result's resources (no stat of its own)."""
    from asyncbatch import load_config, run_batch
    from asyncbatch.output.progress import ProgressListener, format_bytes

    (tmp_path / "big.txt").write_bytes(b"x\n" * (3 << 19))  # 3 MiB
    config = write_json(
        tmp_path / "batch.json",
        {
            "jobs": [
                {
                    "name": "cmd",
                    "action": "command",
                    "input": "big.txt",
                    "params": {"argv": ["true"]},
                },
                {"name": "lines", "action": "count_lines", "input": "big.txt"},
                {"name": "size", "action": "file_size", "input": "big.txt"},
            ]
        },
    )
    state = ProgressState(3)
    listener = ProgressListener(state, None)
    report = anyio.run(functools.partial(run_batch, load_config(config), listener=listener))
    assert [job.status for job in report.jobs] == ["succeeded"] * 3
    assert state.bytes_read == 3 << 20
    clock = Clock()
    state = ProgressState(2, clock=clock)
    clock.now += 2
    state.job_done(result("cmd"))
    assert state.byte_rate() is None, "a command's reads are its own"
    state.job_done(result("lines", read=3 << 20))
    assert state.byte_rate() == pytest.approx((3 << 20) / 2)
    assert (format_bytes(state.byte_rate() or 0) + "/s", "") in describe(state)
    assert [format_bytes(n) for n in (512, 1536, 3 << 20, 5 << 30)] == [
        "512 B",
        "1.5 KiB",
        "3.0 MiB",
        "5.0 GiB",
    ]
