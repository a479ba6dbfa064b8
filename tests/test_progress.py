"""Live progress and the end-of-run summary on stderr: the real command under a
pseudo-terminal (``os.openpty``) and on pipes, and the progress state on its own."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from asyncbatch.output.progress import (
    ProgressState,
    describe,
    format_seconds,
    print_problems,
    progress_wanted,
    running_under_ci,
    sanitize,
)
from asyncbatch.output.report import JobResult, Status

TIMEOUT = 30
SUMMARY_KEYS = ["total_jobs", "succeeded", "failed", "skipped", "cancelled"]
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
PROGRESS_LINE = re.compile(r"(\d[\d,]*)/(\d[\d,]*) done, (?:\u2264)?\d+ running, \d+ failed")
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
    completed = subprocess.run(
        [sys.executable, "-m", "asyncbatch", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert "Traceback" not in completed.stderr
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


def summary(stdout: str) -> dict[str, int]:
    """stdout is exactly the summary object, indented by 2, and nothing else."""
    value = json.loads(stdout)
    assert stdout == json.dumps(value, indent=2) + "\n"
    assert list(value) == SUMMARY_KEYS
    return dict(value)


def colour_codes(output: str) -> list[str]:
    """SGR sequences that set a foreground or background colour."""
    found = []
    for match in SGR.finditer(output):
        codes = [int(code) for code in match.group(1).split(";") if code]
        if any(30 <= c <= 49 or 90 <= c <= 107 for c in codes):
            found.append(match.group())
    return found


def progress_frames(output: str) -> list[tuple[int, int]]:
    return [
        (int(done.replace(",", "")), int(total.replace(",", "")))
        for done, total in PROGRESS_LINE.findall(output)
    ]


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """Three small inputs and a config of twelve file_size jobs over them."""
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text("hello\n", encoding="utf-8")
    jobs = [
        {"name": f"job{i}", "action": "file_size", "input": f"{'abc'[i % 3]}.txt"}
        for i in range(12)
    ]
    return write(tmp_path / "batch.json", {"jobs": jobs})


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
    return write(tmp_path / "failing.json", {"jobs": jobs})


def write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


# --- live progress: when it shows -------------------------------------------------------------


def test_progress_shows_on_a_terminal_then_gives_way_to_the_summary(batch: Path) -> None:
    result = run_on_terminal(["run", str(batch)], cwd=batch.parent, env=environment())
    assert result.returncode == 0
    assert summary(result.stdout)["succeeded"] == 12
    frames = progress_frames(result.stderr)
    assert frames, result.stderr
    assert all(total == 12 for _, total in frames)
    assert frames[-1] == (12, 12)
    assert "elapsed, ETA " in result.stderr
    # Erased in place: what is left on screen is the summary alone.
    visible = [line for line in result.stderr_lines if line.strip()]
    assert len(visible) == 1, visible
    assert re.fullmatch(r"12 succeeded, 0 failed, 0 skipped, 0 cancelled in [\d.]+ s", visible[0])


def test_no_progress_when_stderr_is_a_pipe(batch: Path) -> None:
    result = run_on_pipes(["run", str(batch)], cwd=batch.parent, env=environment())
    assert result.returncode == 0
    assert progress_frames(result.stderr) == []
    assert "\x1b" not in result.stderr
    assert result.stderr_lines[0].startswith("12 succeeded, 0 failed")
    assert len(result.stderr_lines) == 1


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


def test_no_progress_turns_it_off_on_a_terminal(batch: Path) -> None:
    result = run_on_terminal(
        ["run", str(batch), "--no-progress"], cwd=batch.parent, env=environment()
    )
    assert result.returncode == 0
    assert progress_frames(result.stderr) == []
    assert "12 succeeded" in result.stderr


@pytest.mark.parametrize("value", ["true", "1", "True"])
def test_ci_turns_progress_off_on_a_terminal(batch: Path, value: str) -> None:
    result = run_on_terminal(["run", str(batch)], cwd=batch.parent, env=environment(CI=value))
    assert result.returncode == 0
    assert progress_frames(result.stderr) == []
    assert "12 succeeded" in result.stderr


def test_ci_false_leaves_progress_on(batch: Path) -> None:
    result = run_on_terminal(["run", str(batch)], cwd=batch.parent, env=environment(CI="false"))
    assert progress_frames(result.stderr)


def test_the_progress_option_wins_over_ci(batch: Path) -> None:
    result = run_on_terminal(
        ["run", str(batch), "--progress"], cwd=batch.parent, env=environment(CI="true")
    )
    assert result.returncode == 0
    assert progress_frames(result.stderr)[-1] == (12, 12)


def test_quiet_turns_progress_off_even_when_forced(batch: Path) -> None:
    result = run_on_terminal(
        ["run", str(batch), "-q", "--progress"], cwd=batch.parent, env=environment()
    )
    assert result.returncode == 0
    assert result.stderr == ""
    assert summary(result.stdout)["succeeded"] == 12


def test_quiet_on_a_terminal_still_shows_the_failures(failing: Path) -> None:
    result = run_on_terminal(["run", str(failing), "-q"], cwd=failing.parent, env=environment())
    assert result.returncode == 1
    assert progress_frames(result.stderr) == []
    assert "1 succeeded, 1 failed, 1 skipped" in result.stderr
    assert "FileNotFoundError" in result.stderr


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


def test_verbose_lines_print_above_the_live_progress(batch: Path) -> None:
    result = run_on_terminal(["run", str(batch), "-v"], cwd=batch.parent, env=environment())
    assert result.returncode == 0
    assert progress_frames(result.stderr)
    job_lines = [line for line in result.stderr_lines if line.startswith("succeeded")]
    assert sorted(line.split()[1] for line in job_lines) == sorted(f"job{i}" for i in range(12))
    assert result.stderr_lines[-2].startswith("12 succeeded")


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


def test_the_terminal_table_lists_the_failure_first_with_aligned_columns(failing: Path) -> None:
    result = run_on_terminal(["run", str(failing)], cwd=failing.parent, env=environment())
    rows = [line for line in result.stderr_lines if line.strip()]
    assert rows[0].startswith("1 succeeded, 1 failed, 1 skipped, 0 cancelled in ")
    header, first, second = rows[1:]
    assert header.split() == ["status", "job", "error", "message"]
    assert first.split()[:3] == ["FAILED", "evil\\x1b[2Jjob", "FileNotFoundError"]
    assert second.split()[:3] == ["SKIPPED", "after", "DependencyFailed"]
    for column in ("job", "error", "message"):
        start = header.index(column)
        assert first[start - 1] == second[start - 1] == " "
        assert first[start] != " "
        assert second[start] != " "


def test_the_terminal_table_cuts_long_messages_at_the_terminal_width(tmp_path: Path) -> None:
    missing = "x" * 150 + ".txt"
    config = write(
        tmp_path / "long.json",
        {"jobs": [{"name": "long", "action": "count_lines", "input": missing}]},
    )
    result = run_on_terminal(["run", str(config)], cwd=tmp_path, env=environment(), columns=60)
    table = [line for line in result.stderr_lines if "long" in line]
    assert table
    assert all(len(line) <= 60 for line in result.stderr_lines)
    assert table[0].rstrip().endswith("\u2026")


def test_the_plain_summary_keeps_whole_messages_and_aligns_the_columns(tmp_path: Path) -> None:
    missing = "y" * 150 + ".txt"
    config = write(
        tmp_path / "plain.json",
        {
            "jobs": [
                {"name": "unknown", "action": "no_such_action", "input": "a.txt"},
                {"name": "a-much-longer-name", "action": "count_lines", "input": missing},
            ]
        },
    )
    result = run_on_pipes(["run", str(config), "-j", "1"], cwd=tmp_path, env=environment())
    assert result.returncode == 1
    rows = [line for line in result.stderr_lines if line.startswith("  ")]
    assert rows[0].startswith("  FAILED    a-much-longer-name: FileNotFoundError: ")
    assert rows[0].endswith(f"{missing}: no such file")
    assert rows[1].startswith("  SKIPPED   unknown:")
    assert rows[0].index("FileNotFoundError") == rows[1].index("UnknownAction")


def test_print_problems_writes_nothing_for_no_rows() -> None:
    stream = io.StringIO()
    print_problems([], stream=stream, terminal=False)
    print_problems([], stream=stream, terminal=True)
    assert stream.getvalue() == ""


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


@dataclass
class Spec:
    name: str
    depends_on: tuple[str, ...] = ()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def result(name: str, status: Status = "succeeded", *, reused: bool = False) -> JobResult:
    return JobResult(name=name, action="file_size", input="x", status=status, reused=reused)


def flat(count: int) -> list[Spec]:
    return [Spec(f"j{i}") for i in range(count)]


def test_the_state_counts_jobs_by_status() -> None:
    state = ProgressState(flat(5), limit=2)
    for name, status in [("j0", "succeeded"), ("j1", "failed"), ("j2", "skipped")]:
        state.job_done(result(name, status))  # type: ignore[arg-type]
    state.job_done(result("j3", "cancelled"))
    assert (state.total, state.done) == (5, 4)
    assert (state.failed, state.skipped, state.cancelled) == (1, 1, 1)


def test_the_eta_is_unknown_before_the_first_job_ends() -> None:
    clock = Clock()
    state = ProgressState(flat(4), limit=2, clock=clock)
    clock.now += 10
    assert state.eta() is None
    assert state.elapsed() == 10


def test_the_eta_is_the_remaining_jobs_at_the_average_pace_so_far() -> None:
    clock = Clock()
    state = ProgressState(flat(20), limit=4, clock=clock)
    for i in range(5):
        state.job_done(result(f"j{i}"))
    clock.now += 10.0
    assert state.eta() == pytest.approx(30.0)  # 5 jobs in 10 s, 15 to go


def test_the_eta_leaves_reused_results_out_of_the_pace() -> None:
    clock = Clock()
    state = ProgressState(flat(20), limit=4, clock=clock)
    for i in range(10):
        state.job_done(result(f"j{i}", reused=True))
    assert state.eta() is None
    for i in range(10, 15):
        state.job_done(result(f"j{i}"))
    clock.now += 10.0
    assert state.reused == 10
    assert state.eta() == pytest.approx(10.0)  # 5 jobs did work in 10 s, 5 to go


def test_the_eta_is_zero_when_every_job_is_done() -> None:
    state = ProgressState(flat(2), limit=4)
    state.job_done(result("j0"))
    state.job_done(result("j1"))
    assert state.eta() == 0.0


def test_running_is_capped_by_the_limit_in_a_flat_batch() -> None:
    state = ProgressState(flat(10), limit=4)
    assert state.running == 4
    for i in range(7):
        state.job_done(result(f"j{i}"))
    assert state.running == 3
    assert state.running_is_exact is False


def test_running_leaves_out_jobs_waiting_for_their_dependencies() -> None:
    chain = [Spec("a"), Spec("b", ("a",)), Spec("c", ("b",))]
    state = ProgressState(chain, limit=4)
    assert state.running == 1
    state.job_done(result("a"))
    assert state.running == 1
    state.job_done(result("b"))
    assert state.running == 1
    state.job_done(result("c"))
    assert state.running == 0


def test_running_counts_a_job_once_all_its_dependencies_succeeded() -> None:
    diamond = [Spec("a"), Spec("b", ("a",)), Spec("c", ("a",)), Spec("d", ("b", "c"))]
    state = ProgressState(diamond, limit=4)
    state.job_done(result("a"))
    assert state.running == 2
    state.job_done(result("b"))
    assert state.running == 1
    state.job_done(result("c"))
    assert state.running == 1


def test_dependents_of_a_failed_job_never_count_as_running() -> None:
    chain = [Spec("a"), Spec("b", ("a",)), Spec("c", ("b",)), Spec("free")]
    state = ProgressState(chain, limit=4)
    assert state.running == 2
    state.job_done(result("a", "failed"))
    state.job_done(result("b", "skipped"))
    state.job_done(result("c", "skipped"))
    assert state.running == 1
    state.job_done(result("free"))
    assert state.running == 0


def test_reported_starts_make_running_exact() -> None:
    state = ProgressState(flat(10), limit=4)
    state.job_started("j0")
    state.job_started("j1")
    assert (state.running, state.running_is_exact) == (2, True)
    state.job_done(result("j0"))
    assert state.running == 1


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-:--"), (0, "0:00"), (4.6, "0:05"), (75, "1:15"), (3725, "1:02:05")],
)
def test_format_seconds_is_minutes_and_seconds_under_an_hour(
    seconds: float | None, shown: str
) -> None:
    assert format_seconds(seconds) == shown


def test_the_status_line_marks_running_as_a_bound_until_starts_are_reported() -> None:
    clock = Clock()
    state = ProgressState(flat(10), limit=4, clock=clock)
    state.job_done(result("j0", "failed"))
    clock.now += 3
    text = ", ".join(part for part, _ in describe(state))
    assert text == "1/10 done, \u22644 running, 1 failed, 0:03 elapsed, ETA 0:27"
    assert ", ".join(part for part, _ in describe(state, ascii_only=True)).startswith(
        "1/10 done, <=4 running"
    )
    state.job_started("j1")
    assert [part for part, _ in describe(state)][1] == "1 running"
