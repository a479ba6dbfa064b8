"""What people read on terminals of 50, 80 and 120 columns: the live progress (a
fixed-size rich console draws it), the end-of-run table of failures (a
pseudo-terminal of that size), names cut in the middle so that the file name stays,
and the ``-v`` lines of results reused by ``--resume``."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from support import invoke, write_json
from test_progress import DISPLAY_VARIABLES, Clock, read_terminal

from asyncbatch.model import JobResult, Report
from asyncbatch.output._cells import shorten
from asyncbatch.output._live import ProgressLine
from asyncbatch.output.progress import ProgressState, fit_parts, status_parts
from asyncbatch.output.terminal import job_line, print_end_of_run

FOLDER = "data/incoming/2026/batch-0042/customer-records/normalised"
"""A long folder every input of a glob shares: what a table cut on the right shows."""
WIDTHS = (50, 80, 120)
BAR = "\u2501"


def glob_name(number: int) -> str:
    return f"convert[{FOLDER}/record-{number:04d}.csv]"


def busy_state() -> ProgressState:
    """31 jobs: 30 failed at a steady pace, one still running after 8 s."""
    clock = Clock()
    state = ProgressState(31, clock=clock)
    state.job_started(glob_name(1))
    for number in range(2, 32):
        clock.now += 0.25
        state.job_started(glob_name(number))
        state.job_done(
            JobResult(name=glob_name(number), action="command", input="x", status="failed")
        )
    clock.now += 0.5
    return state


def drawn(state: ProgressState, width: int) -> list[str]:
    """The live display as a console of ``width`` columns draws it."""
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    with console.capture() as capture:
        console.print(ProgressLine(state))
    return capture.get().rstrip("\n").split("\n")


# --- the live progress --------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_live_progress_keeps_the_bar_the_counts_and_the_eta_at_every_width(
    width: int,
) -> None:
    status, longest = drawn(busy_state(), width)
    assert len(status) <= width
    assert len(longest) <= width
    assert status.startswith(BAR), "the bar shows"
    assert "31/31" not in status
    assert "30/31 done" in status
    assert "30 failed" in status
    assert "ETA 0:00" in status
    assert "\u2026" not in status, "parts are left out whole, never cut"
    assert longest.startswith("running longest: convert[")
    assert longest.endswith("record-0001.csv] 0:08"), "the file name and the time stay"


def test_what_a_narrow_terminal_leaves_out_goes_by_rank() -> None:
    state = busy_state()
    wide, middle, narrow = (drawn(state, width)[0] for width in (120, 80, 50))
    for part in ("1 running", "jobs/s", "elapsed"):
        assert part in wide
    assert "1 running" in middle
    assert "elapsed" in middle
    assert "jobs/s" not in middle, "the rate goes before the bar"
    assert "running" not in narrow
    assert "elapsed" not in narrow


def test_the_bar_goes_when_the_counts_and_the_eta_need_its_room() -> None:
    parts = status_parts(busy_state())
    kept, bar = fit_parts(parts, 40)
    assert bar == 0
    assert [part.text for part in kept] == ["30/31 done", "30 failed", "ETA 0:00"]
    kept, bar = fit_parts(parts, 1000)
    assert kept == parts
    assert bar == 30


# --- names cut in the middle ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [
        ("short", 10, "short"),
        ("abcdefghijklmnopqrstuvwxyz", 10, "abcde\u2026wxyz"),
        ("a/very/long/folder/file.txt", 16, "a/very/\u2026file.txt"),
        ("job[a/very/long/folder/file.txt]", 18, "job[a/ve\u2026file.txt]"),
        ("x/a-file-name-longer-than-the-room.txt", 12, "x\u2026e-room.txt"),
        ("\u65e5\u672c\u8a9e\u306e\u540d\u524d", 7, "\u65e5\u2026\u524d"),
        ("anything", 1, "\u2026"),
        ("anything", 0, ""),
    ],
)
def test_shorten_cuts_in_the_middle_and_keeps_the_file_name(
    text: str, width: int, shown: str
) -> None:
    assert shorten(text, width) == shown


# --- the end of a run --------------------------------------------------------------------------


def a_report(jobs: list[JobResult]) -> Report:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return Report(
        config="batch.json",
        started_at=started,
        finished_at=started + timedelta(seconds=9),
        max_concurrency=4,
        jobs=jobs,
    )


def command_failed(number: int, attempts: int = 1) -> JobResult:
    error = {"type": "CommandFailed", "message": "exit status 1: oops, something broke"}
    return JobResult(
        name=glob_name(number),
        action="command",
        input=f"{FOLDER}/record-{number:04d}.csv",
        status="failed",
        error=error,
        attempts=attempts,
        duration_ms=300.0,
        started_ms=0.0,
    )


def end_of_run_on(
    width: int, jobs: list[JobResult], monkeypatch: pytest.MonkeyPatch, **options: float
) -> list[str]:
    for variable in DISPLAY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", str(width))  # rich asks the standard streams, not this one
    report = a_report(jobs)
    lines = read_terminal(
        lambda stream: print_end_of_run(report, quiet=False, stream=stream, **options),
        columns=width,
    )
    return [line for line in lines if line]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_table_of_failures_tells_the_jobs_of_one_glob_apart_at_every_width(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = [command_failed(number) for number in range(1, 6)]
    lines = end_of_run_on(width, jobs, monkeypatch)
    assert all(len(line) <= width for line in lines), lines
    counts, header, *rows = lines
    assert (
        counts == "0 succeeded, 5 failed in 9.00 s"
        if width == 50
        else counts.startswith("0 succeeded, 5 failed, 0 skipped, 0 cancelled in 9.00 s")
    )
    assert header.split()[:2] == ["FAILED", "message"]
    names = [row.split()[0] for row in rows]
    assert len(set(names)) == 5, "every row names its own file"
    for number, name in enumerate(names, 1):
        assert name.endswith(f"record-{number:04d}.csv]") or (
            width == 50 and name.endswith(f"{number:04d}.csv]")
        )
        assert name.startswith("conver")
    assert all("exit status 1: oops" in row for row in rows)
    assert ("CommandFailed" in header + rows[0]) == (width >= 120), "the type goes first"


def test_the_table_keeps_whole_what_fits_and_says_the_attempts_of_a_retried_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = [command_failed(1, attempts=3), command_failed(2)]
    wide = end_of_run_on(160, jobs, monkeypatch)
    assert wide[1].split() == ["FAILED", "message", "attempts", "error"]
    assert glob_name(1) in wide[2], "whole when it fits"
    assert wide[2].split()[-2:] == ["3", "CommandFailed"]
    narrow = end_of_run_on(80, jobs, monkeypatch)
    assert narrow[1].split() == ["FAILED", "message"]
    assert "(3 attempts) exit status 1" in narrow[2]


def test_the_end_of_run_says_the_whole_time_and_the_jobs_time_apart_when_they_differ() -> None:
    stream = io.StringIO()
    print_end_of_run(a_report([command_failed(1)]), quiet=False, stream=stream, took_ms=15_250)
    first = stream.getvalue().splitlines()[0]
    assert first == (
        "0 succeeded, 1 failed, 0 skipped, 0 cancelled in 15.25 s (running the jobs: 9.00 s)"
    )
    stream = io.StringIO()
    print_end_of_run(a_report([command_failed(1)]), quiet=False, stream=stream, took_ms=9_100)
    assert stream.getvalue().splitlines()[0].endswith(" in 9.10 s")


# --- -v after --resume --------------------------------------------------------------------------


def test_a_reused_result_is_marked_in_its_verbose_line_without_the_old_time() -> None:
    reused = JobResult(
        name="lines",
        action="count_lines",
        input="a.txt",
        status="succeeded",
        result={"lines": 3},
        duration_ms=1234.5,
        attempts=1,
        reused=True,
    )
    assert job_line(reused) == 'succeeded lines (reused): {"lines": 3}'


def test_verbose_after_resume_marks_the_reused_jobs_and_times_the_others(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text("one\ntwo\n", encoding="utf-8")
    jobs = [{"name": name, "action": "count_lines", "input": f"{name}.txt"} for name in ("a", "b")]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    report = tmp_path / "report.json"
    assert invoke(["run", str(config), "-o", str(report)]).exit_code == 0
    (tmp_path / "b.txt").write_text("changed\n", encoding="utf-8")
    result = invoke(["run", str(config), "-o", str(report), "--resume", "-v"])
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("succeeded")]
    assert 'succeeded a (reused): {"lines": 2}' in lines
    (fresh,) = [line for line in lines if line.startswith("succeeded b ")]
    assert fresh.startswith("succeeded b in ")
    assert fresh.endswith(' ms: {"lines": 1}')
    assert os.path.exists(report)
