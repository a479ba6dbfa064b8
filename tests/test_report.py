"""JobResult, Summary and Report as SPEC 5 shapes them, and the atomic report write."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import asyncbatch
from asyncbatch.errors import OutputError
from asyncbatch.model import JobResult, Report, Summary
from asyncbatch.output.destinations import check_output_writable
from asyncbatch.output.report import write_report

JOB_KEYS = [
    "name",
    "action",
    "input",
    "status",
    "result",
    "error",
    "duration_ms",
    "attempts",
    "reused",
    "started_ms",
    "resources",
]
REPORT_KEYS = [
    "asyncbatch_version",
    "config",
    "started_at",
    "finished_at",
    "duration_ms",
    "max_concurrency",
    "summary",
    "halted",
    "jobs",
]
START = datetime(2026, 11, 28, 19, 0, 0, tzinfo=UTC)


def succeeded(name: str = "app-lines") -> JobResult:
    return JobResult(
        name=name,
        action="count_lines",
        input="logs/app.log",
        status="succeeded",
        result={"lines": 1200},
        duration_ms=3.1,
        attempts=1,
    )


def failed(name: str = "missing") -> JobResult:
    return JobResult(
        name=name,
        action="count_lines",
        input="logs/none.log",
        status="failed",
        error={"type": "FileNotFoundError", "message": "logs/none.log: no such file"},
        duration_ms=0.4,
        attempts=1,
    )


def skipped(name: str = "after") -> JobResult:
    return JobResult(
        name=name,
        action="count_lines",
        input="x",
        status="skipped",
        error={"type": "DependencyFailed", "message": "dependency 'missing' failed"},
    )


def make_report(*jobs: JobResult) -> Report:
    return Report(
        config="data/batch_config.json",
        started_at=START,
        finished_at=START + timedelta(milliseconds=120.4),
        max_concurrency=4,
        jobs=list(jobs),
    )


@pytest.fixture
def umask_077() -> Iterator[None]:
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def leftovers(folder: Path, keep: str) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.name != keep)


# --- shapes ------------------------------------------------------------------------


def test_job_result_to_dict_has_exactly_the_spec_keys_in_order() -> None:
    assert list(failed().to_dict()) == JOB_KEYS
    assert failed().to_dict() == {
        "name": "missing",
        "action": "count_lines",
        "input": "logs/none.log",
        "status": "failed",
        "result": None,
        "error": {"type": "FileNotFoundError", "message": "logs/none.log: no such file"},
        "duration_ms": 0.4,
        "attempts": 1,
        "reused": False,
        "started_ms": None,
        "resources": None,
    }


def test_a_job_that_never_started_has_null_duration_and_zero_attempts() -> None:
    shown = skipped().to_dict()
    assert shown["duration_ms"] is None
    assert shown["attempts"] == 0
    assert shown["result"] is None
    assert shown["reused"] is False


def test_report_to_dict_has_exactly_the_spec_keys_in_order() -> None:
    shown = make_report(succeeded(), failed()).to_dict()
    assert list(shown) == REPORT_KEYS
    assert shown["asyncbatch_version"] == asyncbatch.__version__
    assert shown["config"] == "data/batch_config.json"
    assert shown["max_concurrency"] == 4
    assert shown["duration_ms"] == pytest.approx(120.4)
    assert shown["summary"] == {
        "total_jobs": 2,
        "succeeded": 1,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
    }
    assert [job["name"] for job in shown["jobs"]] == ["app-lines", "missing"]


def test_report_timestamps_are_utc_with_a_z_suffix_and_parse_back() -> None:
    shown = make_report().to_dict()
    assert shown["started_at"] == "2026-11-28T19:00:00.000000Z"
    assert shown["finished_at"] == "2026-11-28T19:00:00.120400Z"
    for key in ("started_at", "finished_at"):
        parsed = datetime.strptime(shown[key], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert datetime.fromisoformat(shown[key]) == parsed


def test_report_timestamps_are_converted_to_utc_from_other_zones() -> None:
    plus_two = timezone(timedelta(hours=2))
    report = Report(
        config="c.json",
        started_at=datetime(2026, 1, 1, 12, 0, tzinfo=plus_two),
        finished_at=datetime(2026, 1, 1, 12, 0, 1, tzinfo=plus_two),
        max_concurrency=1,
    )
    assert report.to_dict()["started_at"] == "2026-01-01T10:00:00.000000Z"


def test_summary_counts_jobs_by_status() -> None:
    cancelled = JobResult(name="c", action="a", input="i", status="cancelled")
    summary = Summary.of([succeeded("a"), succeeded("b"), failed(), skipped(), cancelled])
    assert summary.to_dict() == {
        "total_jobs": 5,
        "succeeded": 2,
        "failed": 1,
        "skipped": 1,
        "cancelled": 1,
    }
    assert summary.total_jobs == sum(
        (summary.succeeded, summary.failed, summary.skipped, summary.cancelled)
    )


def test_summary_of_no_jobs_is_all_zeros() -> None:
    assert Summary.of([]).to_dict() == dict.fromkeys(
        ("total_jobs", "succeeded", "failed", "skipped", "cancelled"), 0
    )


def test_report_is_ok_unless_a_job_failed_or_was_cancelled() -> None:
    assert make_report(succeeded(), skipped()).ok
    assert not make_report(succeeded(), failed()).ok
    cancelled = JobResult(name="c", action="a", input="i", status="cancelled")
    assert not make_report(cancelled).ok


# --- write_report --------------------------------------------------------------------


def test_write_report_writes_the_report_as_json(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    report = make_report(succeeded(), failed())
    write_report(report, target)
    assert json.loads(target.read_text(encoding="utf-8")) == report.to_dict()
    assert leftovers(tmp_path, keep="report.json") == []


def test_write_report_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("x" * 100_000, encoding="utf-8")
    write_report(make_report(succeeded()), target)
    assert json.loads(target.read_text(encoding="utf-8"))["summary"]["total_jobs"] == 1
    assert leftovers(tmp_path, keep="report.json") == []


def test_write_report_accepts_a_string_path(tmp_path: Path) -> None:
    write_report(make_report(), str(tmp_path / "report.json"))
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["jobs"] == []


def test_write_report_does_not_follow_a_symlink_planted_at_the_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp file's random name is made predictable, and an attacker's symlink
    (one to an existing file, one dangling) sits at each of the first candidates:
    the write must create a fresh file instead of writing through either."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    target = tmp_path / "report.json"
    names = iter(["planted1", "planted2", "fresh"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    (tmp_path / ".report.json.planted1.tmp").symlink_to(victim)
    (tmp_path / ".report.json.planted2.tmp").symlink_to(tmp_path / "dangling.txt")
    write_report(make_report(succeeded()), target)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (tmp_path / "dangling.txt").exists()
    assert not target.is_symlink()
    assert json.loads(target.read_text(encoding="utf-8"))["jobs"][0]["name"] == "app-lines"
    assert next(names, "all used") == "all used", "both planted names were tried"
    assert (tmp_path / ".report.json.planted1.tmp").is_symlink()


@pytest.mark.usefixtures("umask_077")
def test_the_report_file_mode_follows_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_report(make_report(), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_the_report_file_is_readable_by_others_under_the_usual_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_report(make_report(), tmp_path / "report.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644


def test_write_report_into_a_missing_folder_raises_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError):  # noqa: PT011 - any OSError: the CLI pre-checks the folder
        write_report(make_report(), tmp_path / "missing" / "report.json")
    assert list(tmp_path.iterdir()) == []


# --- check_output_writable -------------------------------------------------------------


def test_check_output_writable_passes_for_a_writable_folder_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    check_output_writable(tmp_path / "report.json")
    assert list(tmp_path.iterdir()) == []


def test_check_output_writable_passes_for_an_existing_report_and_keeps_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")
    check_output_writable(str(target))
    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path, keep="report.json") == []


def test_check_output_writable_rejects_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "report.json"
    with pytest.raises(OutputError, match="does not exist") as caught:
        check_output_writable(target)
    assert str(target) in str(caught.value)
    assert not (tmp_path / "nope").exists()


def test_check_output_writable_rejects_a_directory(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        check_output_writable(tmp_path)


def test_check_output_writable_rejects_a_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(OutputError, match="not a folder"):
        check_output_writable(tmp_path / "file" / "report.json")


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root can write into a read-only folder, so it cannot be refused"
)
def test_check_output_writable_rejects_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot write"):
            check_output_writable(folder / "report.json")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.slow
def test_started_ms_places_each_job_on_the_runs_timeline(tmp_path: Path) -> None:
    """With one slot the second job starts after the first has ended; a skipped job
    never started; a job reused by --resume did not start in this run."""
    from support import run_module, write_json

    config = write_json(
        tmp_path / "batch.json",
        {
            "jobs": [
                {
                    "name": "first",
                    "action": "command",
                    "input": ".",
                    "params": {"argv": ["sleep", "0.3"]},
                },
                {
                    "name": "second",
                    "action": "command",
                    "input": ".",
                    "params": {"argv": ["false"]},
                },
                {
                    "name": "never",
                    "action": "command",
                    "input": ".",
                    "params": {"argv": ["true"]},
                    "depends_on": ["second"],
                },
            ]
        },
    )
    out = tmp_path / "r.json"
    done = run_module(["run", str(config), "-j", "1", "-o", str(out)], cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    first, second, never = json.loads(out.read_text(encoding="utf-8"))["jobs"]
    assert 0 <= first["started_ms"] < 1000
    assert second["started_ms"] >= first["started_ms"] + first["duration_ms"] - 1
    assert never["started_ms"] is None
    assert never["duration_ms"] is None

    done = run_module(["run", str(config), "-j", "1", "-o", str(out), "--resume"], cwd=tmp_path)
    first, second, _ = json.loads(out.read_text(encoding="utf-8"))["jobs"]
    assert (first["reused"], first["started_ms"]) == (True, None)
    assert second["started_ms"] is not None
