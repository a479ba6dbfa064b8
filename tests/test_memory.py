"""Memory of big batches: 100,000 jobs with a report and its journal, then resumed,
each measured as the peak RSS of the command in a subprocess (``os.wait4``'s rusage
of that child alone, started by a small process of its own); and the report, written
one job at a time, byte for byte what ``json.dumps(report.to_dict(), indent=2)`` gives.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import summary, write_json

from asyncbatch.model import JobResult, Report
from asyncbatch.output.report import write_report

SUBPROCESS = 300
"""Generous deadline for one run of the command (s)."""

JOBS = 100_000
BOUND = 300 << 20
"""Peak RSS allowed for 100,000 jobs (bytes): the goal (208 MB measured)."""


MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump([usage.ru_maxrss, os.waitstatus_to_exitcode(status)], out)
"""
"""Run ARGV and write its peak RSS (KiB) and exit code to a file. A forked child's
peak starts at its parent's RSS (kept across ``exec``), so the command is started
by this small process, never by the test's own (which may have grown large)."""


def peak_rss(args: list[str], cwd: Path) -> tuple[int, subprocess.CompletedProcess[str]]:
    """``python -m asyncbatch ARGS`` and its peak RSS in bytes (its worker processes
    included), from the rusage of that child alone; never a traceback."""
    measured = cwd / "peak-rss.json"
    argv = [sys.executable, "-c", MEASURE, str(measured), sys.executable, "-m", "asyncbatch"]
    proc = subprocess.Popen(
        [*argv, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=SUBPROCESS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr
    peak_kib, code = json.loads(measured.read_text(encoding="utf-8"))
    measured.unlink()
    assert "Traceback" not in stderr, stderr
    return peak_kib * 1024, subprocess.CompletedProcess(args, code, stdout, stderr)


@pytest.mark.slow
def test_100000_jobs_with_a_report_and_then_resumed_stay_within_the_memory_bound(
    tmp_path: Path,
) -> None:
    for number in range(5):
        (tmp_path / f"f{number}.txt").write_text("x" * (100 + number) + "\n", encoding="utf-8")
    jobs = [
        {"name": f"j{number}", "action": "file_size", "input": f"f{number % 5}.txt"}
        for number in range(JOBS)
    ]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    out = tmp_path / "out.json"
    args = ["run", str(config), "-j", "4", "-q", "-o", str(out)]

    fresh, completed = peak_rss(args, tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert summary(completed.stdout)["succeeded"] == JOBS
    assert len(json.loads(out.read_text(encoding="utf-8"))["jobs"]) == JOBS

    resumed, completed = peak_rss([*args, "--resume"], tmp_path)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert sum(job["reused"] for job in report["jobs"]) == JOBS
    assert fresh < BOUND, f"fresh run: peak RSS {fresh >> 20} MiB"
    assert resumed < BOUND, f"resumed run: peak RSS {resumed >> 20} MiB"


def odd_jobs() -> list[JobResult]:
    """Results of every shape a report holds: nested, empty, non-ASCII, lone
    surrogates, non-string keys, floats of every kind, errors, nulls."""
    shapes: list[object] = [
        {"lines": 3},
        {},
        {"nested": {"list": [1, [2, [3, []]], {}], "empty": {}}, "t": True, "f": False},
        {"text": 'héllo "wörld"\n\t\\ \u2028 \U0001f600 \udcff'},
        {"floats": [0.1, 1e16, 1e-7, -0.0, 1.5e300, math.nan, math.inf, -math.inf]},
        {1: "int key", 2.5: "float key", False: "bool key", None: "null key"},
        {"big": 10**40, "neg": -7, "tuple": (1, "two")},
        {"mixed": [None, "", [], [{}], [[None]]]},
    ]
    jobs = []
    for number, result in enumerate(shapes):
        jobs.append(
            JobResult(
                name=f"job-{number}-ü",
                action="count_lines",
                input=f"in/{number}.txt",
                status="succeeded",
                result=result,  # type: ignore[arg-type]
                duration_ms=number * 1.25,
                attempts=number,
                reused=bool(number % 2),
            )
        )
    error = {"type": "FileNotFoundError", "message": "in/x.txt: no such file \u00e9"}
    jobs.append(JobResult("failed", "count_lines", "in/x.txt", "failed", None, error, 0.4, 1))
    jobs.append(JobResult("skipped", "nope", "x", "skipped", error={"type": "UnknownAction"}))
    return jobs


@pytest.mark.parametrize("count", [0, 1, 10], ids=["no-job", "one-job", "every-shape"])
def test_the_report_written_job_by_job_is_byte_for_byte_the_whole_report_dumped(
    tmp_path: Path, count: int
) -> None:
    started = datetime(2026, 11, 28, 19, 0, tzinfo=UTC)
    report = Report(
        config="batch.json",
        started_at=started,
        finished_at=started + timedelta(milliseconds=120.4),
        max_concurrency=4,
        jobs=odd_jobs()[:count],
    )
    path = tmp_path / "report.json"
    write_report(report, path)
    assert path.read_bytes() == (json.dumps(report.to_dict(), indent=2) + "\n").encode()


DENSE_BOUND = 150 << 20
"""Peak RSS allowed for four searches over a file where every byte matches (bytes):
holding each match of a 4 MiB chunk took over 300 MB."""


@pytest.mark.slow
def test_searches_where_every_byte_matches_stay_within_the_memory_bound(tmp_path: Path) -> None:
    """Literal patterns are counted from the engine's reports; a chunk with a match
    on every byte must not hold millions of them at once (nor take minutes)."""
    line = b"a" * 999 + b"b\n"
    (tmp_path / "dense.txt").write_bytes(line * 16_000)  # 16 MB
    patterns = ["a", "aa", "a|b", "A"]
    jobs = [
        {"name": p, "action": "search_pattern", "input": "dense.txt", "params": {"pattern": p}}
        for p in patterns
    ]
    write_json(tmp_path / "batch.json", {"jobs": jobs})
    report = tmp_path / "report.json"
    peak, done = peak_rss(["run", "batch.json", "-j", "4", "-o", str(report)], tmp_path)
    assert done.returncode == 0, done.stderr
    results = {job["name"]: job["result"] for job in json.loads(report.read_text())["jobs"]}
    assert results == {
        "a": {"matches": 999 * 16_000, "matching_lines": 16_000},
        "aa": {"matches": 499 * 16_000, "matching_lines": 16_000},
        "a|b": {"matches": 1000 * 16_000, "matching_lines": 16_000},
        "A": {"matches": 0, "matching_lines": 0},
    }
    assert peak < DENSE_BOUND, f"{peak / 2**20:.0f} MB"
