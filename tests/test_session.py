"""The session (``asyncbatch.session``): the options that cannot run together, a run
from start to final writes with its exit code, and a report or JUnit file that
cannot be written once the run is over: exit 2, the summary still printed, the
reason on stderr, and every finished job kept in the journal.

The report's folder is taken away *during* the run by the batch's last job (it
depends on all the others), so the check made before the run passes and the final
write fails, deterministically: the folder is moved elsewhere (with the journal
open inside it, which keeps growing there), moved and replaced by a file, or made
read-only (refused only when not running as root)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    Probe,
    add_module,
    invoke,
    job,
    load,
    read_json,
    run_module,
    summary,
    write_json,
)

from asyncbatch.config import BatchConfig
from asyncbatch.controls import Halt
from asyncbatch.errors import OutputError
from asyncbatch.model import Report
from asyncbatch.options import RunOptions
from asyncbatch.session import Outcome, run_session

IS_ROOT = os.geteuid() == 0
REASONS = {
    "moved": "No such file or directory",
    "replaced": "Not a directory",
    "read-only": "Permission denied",
}
WAYS = [
    "moved",
    "replaced",
    pytest.param(
        "read-only",
        marks=pytest.mark.skipif(
            IS_ROOT, reason="root can write into a read-only folder, so it cannot be refused"
        ),
    ),
]


# --- RunOptions.problems ------------------------------------------------------------------


def test_the_default_options_have_no_problem() -> None:
    assert RunOptions().problems() == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (RunOptions(scheduler="tcp://127.0.0.1:8786"), "--scheduler needs --executor dask"),
        (
            RunOptions(resume=True),
            "--resume needs --output: the journal to resume from lives beside the report",
        ),
        (
            RunOptions(output=Path("r.json"), junit=Path("r.json")),
            "--junit and --output must name different files",
        ),
        (
            RunOptions(output=Path("out/r.json"), junit=Path("out/../out/./r.json")),
            "--junit and --output must name different files",
        ),
    ],
    ids=["scheduler-without-dask", "resume-without-output", "same-file", "same-file-spelled"],
)
def test_options_that_cannot_run_together_are_problems(options: RunOptions, problem: str) -> None:
    assert options.problems() == [problem]


@pytest.mark.parametrize(
    "options",
    [
        RunOptions(executor="dask", scheduler="tcp://127.0.0.1:8786"),
        RunOptions(resume=True, output=Path("r.json")),
        RunOptions(output=Path("r.json"), junit=Path("r.xml")),
        RunOptions(junit=Path("r.xml")),
    ],
    ids=["scheduler-with-dask", "resume-with-output", "different-files", "junit-alone"],
)
def test_options_that_fit_together_have_no_problem(options: RunOptions) -> None:
    assert options.problems() == []


def test_every_problem_is_listed_at_once() -> None:
    assert RunOptions(scheduler="tcp://x:1", resume=True, junit=Path("j.xml")).problems() == [
        "--scheduler needs --executor dask",
        "--resume needs --output: the journal to resume from lives beside the report",
    ]
    assert RunOptions(
        scheduler="tcp://x:1", resume=True, output=Path("same"), junit=Path("same")
    ).problems() == [
        "--scheduler needs --executor dask",
        "--junit and --output must name different files",
    ]


TRACE = (
    "from pathlib import Path\n\n"
    "async def touch(path, params):\n"
    "    Path(__file__).with_name('trace.txt').write_text(path.name)\n"
    "    return {}\n"
)


def test_scheduler_without_the_dask_executor_is_a_usage_error_that_runs_nothing(
    tmp_path: Path,
) -> None:
    module = add_module(tmp_path, TRACE, "session_trace")
    jobs = [{"name": "a", "action": f"{module}:touch", "input": "a.txt"}]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    result = invoke(["run", str(config), "--scheduler", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error: --scheduler needs --executor dask" in result.stderr
    assert not (tmp_path / "trace.txt").exists()


# --- run_session ----------------------------------------------------------------------------


def session(config: BatchConfig, options: RunOptions) -> tuple[Outcome, str, list[str]]:
    """run_session with stderr and warnings captured: (outcome, stderr, warnings)."""
    stderr = io.StringIO()
    warnings: list[str] = []
    outcome = run_session(config, options, stderr=stderr, warn=warnings.append)
    return outcome, stderr.getvalue(), warnings


def statuses(report: Report) -> dict[str, str]:
    return {result.name: result.status for result in report.jobs}


def test_a_session_that_succeeds_is_exit_0_and_writes_both_reports(
    tmp_path: Path, probe: Probe
) -> None:
    config = load(tmp_path, probe, [job("a"), job("b"), job("odd", "no_such_action")])
    out, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    outcome, stderr, warnings = session(config, RunOptions(output=out, junit=junit))
    assert (outcome.exit_code, outcome.failed_writes) == (0, [])
    assert statuses(outcome.report) == {"a": "succeeded", "b": "succeeded", "odd": "skipped"}
    assert read_json(out) == outcome.report.to_dict()
    assert junit.read_text(encoding="utf-8").startswith("<?xml")
    assert (stderr, warnings) == ("", [])


def test_a_session_with_a_failed_job_is_exit_1(tmp_path: Path, probe: Probe) -> None:
    config = load(tmp_path, probe, [job("a"), job("bad", "fail")])
    outcome, _, _ = session(config, RunOptions(output=tmp_path / "report.json"))
    assert (outcome.exit_code, outcome.failed_writes) == (1, [])
    assert statuses(outcome.report) == {"a": "succeeded", "bad": "failed"}
    assert read_json(tmp_path / "report.json")["summary"]["failed"] == 1


def test_a_session_without_outputs_writes_nothing_and_verbose_lines_go_to_its_stderr(
    tmp_path: Path, probe: Probe
) -> None:
    config = load(tmp_path, probe, [job("a"), job("b")])
    before = sorted(tmp_path.iterdir())
    outcome, stderr, _ = session(config, RunOptions(verbose=True, progress=False))
    assert outcome.exit_code == 0
    assert sorted(line.split()[1] for line in stderr.splitlines()) == ["a", "b"]
    assert all(line.startswith("succeeded ") for line in stderr.splitlines())
    assert sorted(tmp_path.iterdir()) == before


def test_the_options_reach_the_run(tmp_path: Path, probe: Probe) -> None:
    config = load(
        tmp_path,
        probe,
        [
            job("flaky", "flaky", params={"failures": 1}),
            job("stuck", "hang"),
            *(job(f"r{i}") for i in range(3)),
        ],
    )
    outcome, _, _ = session(config, RunOptions(max_concurrency=2, retries=1, timeout=0.2))
    assert outcome.report.max_concurrency == 2
    jobs = {result.name: result for result in outcome.report.jobs}
    assert (jobs["flaky"].status, jobs["flaky"].attempts) == ("succeeded", 2)
    assert jobs["stuck"].error == {"type": "Timeout", "message": "timed out after 0.2 s"}
    assert probe.peak <= 2
    assert outcome.exit_code == 1


def test_max_failures_halts_the_session_and_is_exit_1(tmp_path: Path, probe: Probe) -> None:
    config = load(tmp_path, probe, [job("bad", "fail"), job("later")])
    outcome, _, _ = session(config, RunOptions(max_concurrency=1, halt=Halt.failures(1)))
    assert statuses(outcome.report) == {"bad": "failed", "later": "cancelled"}
    assert outcome.exit_code == 1
    assert probe.started == ["bad"]


def test_an_output_that_cannot_be_written_is_refused_before_any_job_starts(
    tmp_path: Path, probe: Probe
) -> None:
    config = load(tmp_path, probe, [job("a")])
    for options in (
        RunOptions(output=tmp_path / "missing" / "report.json"),
        RunOptions(junit=tmp_path / "missing" / "junit.xml"),
        RunOptions(output=tmp_path),
    ):
        with pytest.raises(OutputError):
            run_session(config, options, stderr=io.StringIO())
    assert probe.started == []
    assert not (tmp_path / "missing").exists()


def test_journal_warnings_on_resume_go_to_warn_or_else_to_stderr(
    tmp_path: Path, probe: Probe
) -> None:
    config = load(tmp_path, probe, [job("a")])
    out = tmp_path / "report.json"
    journal = tmp_path / "report.json.journal"
    journal.write_text("this is not JSON\n", encoding="utf-8")
    outcome, stderr, warnings = session(config, RunOptions(output=out, resume=True))
    assert outcome.exit_code == 0
    assert warnings == [f"{journal}: unreadable line 1 ignored"]
    assert stderr == ""
    journal.write_text("this is not JSON either\n", encoding="utf-8")
    stream = io.StringIO()
    run_session(config, RunOptions(output=out, resume=True), stderr=stream)
    assert stream.getvalue() == f"warning: {journal}: unreadable line 1 ignored\n"


# --- a report that cannot be written at the end ------------------------------------------


def take_away(folder: Path, way: str) -> None:
    """What the last job does to ``folder``: its files are then in :func:`now_in`."""
    if way == "read-only":
        folder.chmod(0o555)
        return
    folder.rename(now_in(folder, way))
    if way == "replaced":
        folder.write_text("a file where the folder was", encoding="utf-8")


def now_in(folder: Path, way: str) -> Path:
    """Where the files of ``folder`` are once the last job took it away."""
    return folder if way == "read-only" else folder.with_name(folder.name + "-moved")


@pytest.fixture
def restore(tmp_path: Path) -> Iterator[None]:
    """Folders made read-only by a test are made writable again (for the cleanup)."""
    yield
    for folder in tmp_path.rglob("*"):
        if folder.is_dir():
            folder.chmod(0o755)


def journal_entries(folder: Path, report_name: str) -> list[dict[str, Any]]:
    path = folder / f"{report_name}.journal"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "the journal ends with a complete line"
    return [json.loads(line) for line in text.splitlines()]


def session_taking_away(
    tmp_path: Path, probe: Probe, folder: Path, way: str, *, failing: bool = True
) -> BatchConfig:
    """A config of four jobs (``bad`` fails, if ``failing``) whose last job takes
    ``folder`` away."""

    @probe.registry.action("take_away")
    async def take(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        take_away(folder, way)
        return {"took": way}

    jobs = [
        job("a"),
        job("bad", "fail" if failing else "record"),
        job("c"),
        job("last", "take_away", depends_on=["a", "c"]),
    ]
    return load(tmp_path, probe, jobs)


@pytest.mark.usefixtures("restore")
@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
@pytest.mark.parametrize("way", WAYS)
def test_a_report_that_cannot_be_written_at_the_end_is_exit_2_and_the_journal_keeps_every_job(
    tmp_path: Path, probe: Probe, way: str, resume: bool
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "report.json"
    config = session_taking_away(tmp_path, probe, folder, way)
    options = RunOptions(output=out, max_concurrency=1, resume=resume)
    outcome, _, warnings = session(config, options)
    assert outcome.exit_code == 2
    reason = f"cannot write report {out}: {REASONS[way]}"
    assert reason in outcome.failed_writes
    if not resume:  # a resumed run also compacts its journal, which may be said to fail
        assert outcome.failed_writes == [reason]
    expected = {"a": "succeeded", "bad": "failed", "c": "succeeded", "last": "succeeded"}
    assert statuses(outcome.report) == expected
    assert not (now_in(folder, way) / "report.json").exists()
    entries = journal_entries(now_in(folder, way), "report.json")
    assert [entry["job"] for entry in entries] == [r.to_dict() for r in outcome.report.jobs]
    if resume:  # its compaction, at the journal's old place, is a warning, not a traceback
        assert len(warnings) == 1
        assert warnings[0].startswith(f"cannot finish the journal {out}.journal: ")
    else:
        assert warnings == []


@pytest.mark.usefixtures("restore")
@pytest.mark.parametrize("way", WAYS)
def test_a_junit_file_that_cannot_be_written_at_the_end_is_exit_2_and_the_report_is_written(
    tmp_path: Path, probe: Probe, way: str
) -> None:
    """Every job succeeded: the run alone would be exit 0."""
    folder = tmp_path / "xml"
    folder.mkdir()
    junit, out = folder / "junit.xml", tmp_path / "report.json"
    config = session_taking_away(tmp_path, probe, folder, way, failing=False)
    outcome, _, _ = session(config, RunOptions(output=out, junit=junit, max_concurrency=1))
    assert outcome.report.ok
    assert outcome.exit_code == 2
    assert outcome.failed_writes == [f"cannot write JUnit report {junit}: {REASONS[way]}"]
    assert read_json(out) == outcome.report.to_dict()
    assert len(journal_entries(tmp_path, "report.json")) == 4


@pytest.mark.usefixtures("restore")
def test_when_both_final_writes_fail_both_reasons_are_given(tmp_path: Path, probe: Probe) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out, junit = folder / "report.json", folder / "junit.xml"
    config = session_taking_away(tmp_path, probe, folder, "moved")
    outcome, _, _ = session(config, RunOptions(output=out, junit=junit, max_concurrency=1))
    assert outcome.exit_code == 2
    assert outcome.failed_writes == [
        f"cannot write report {out}: No such file or directory",
        f"cannot write JUnit report {junit}: No such file or directory",
    ]


# --- the same through the command -------------------------------------------------------------

TAKE_AWAY = """\
import os
from pathlib import Path


async def take_away(path, params):
    folder = Path(params["folder"])
    if params["way"] == "read-only":
        folder.chmod(0o555)
    else:
        folder.rename(folder.with_name(folder.name + "-moved"))
        if params["way"] == "replaced":
            folder.write_text("a file where the folder was", encoding="utf-8")
    return {"took": params["way"]}
"""


def command_batch(tmp_path: Path, folder: Path, way: str) -> Path:
    """Four jobs over real files (one input is missing); the last takes ``folder``
    away. Returns the config's path."""
    (tmp_path / "a.txt").write_text("one\ntwo\n", encoding="utf-8")
    module = add_module(tmp_path, TAKE_AWAY, "session_take")
    jobs = [
        {"name": "a", "action": "count_lines", "input": "a.txt"},
        {"name": "bad", "action": "count_lines", "input": "missing.txt"},
        {"name": "c", "action": "count_words", "input": "a.txt"},
        {
            "name": "last",
            "action": f"{module}:take_away",
            "input": "a.txt",
            "params": {"folder": str(folder), "way": way},
            "depends_on": ["a", "c"],
        },
    ]
    return write_json(tmp_path / "batch.json", {"jobs": jobs})


SUMMARY = {"total_jobs": 4, "succeeded": 3, "failed": 1, "skipped": 0, "cancelled": 0}


@pytest.mark.usefixtures("restore")
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("what", ["report", "JUnit report"])
def test_the_command_prints_the_summary_and_the_reason_and_exits_2_when_a_final_write_fails(
    tmp_path: Path, way: str, what: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    config = command_batch(tmp_path, folder, way)
    out = (folder if what == "report" else tmp_path) / "report.json"
    junit = (folder if what == "JUnit report" else tmp_path) / "junit.xml"
    result = invoke(["run", str(config), "-j", "1", "-o", str(out), "--junit", str(junit)])
    assert result.exit_code == 2
    assert summary(result.stdout) == SUMMARY
    failed = junit if what == "JUnit report" else out
    assert f"error: cannot write {what} {failed}: {REASONS[way]}\n" in result.stderr
    assert "3 succeeded, 1 failed, 0 skipped, 0 cancelled" in result.stderr
    journal_folder = now_in(folder, way) if what == "report" else tmp_path
    names = [entry["job"]["name"] for entry in journal_entries(journal_folder, "report.json")]
    assert names == ["a", "bad", "c", "last"]


@pytest.mark.usefixtures("restore")
@pytest.mark.parametrize("way", WAYS)
def test_a_resumed_command_whose_report_folder_went_away_exits_2_without_a_traceback(
    tmp_path: Path, way: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    config = command_batch(tmp_path, folder, way)
    out = folder / "report.json"
    result = invoke(["run", str(config), "-j", "1", "-o", str(out), "--resume"])
    assert result.exit_code == 2
    assert summary(result.stdout) == SUMMARY
    assert f"error: cannot write report {out}: {REASONS[way]}\n" in result.stderr
    names = [entry["job"]["name"] for entry in journal_entries(now_in(folder, way), "report.json")]
    assert names == ["a", "bad", "c", "last"]


@pytest.mark.slow
def test_python_m_asyncbatch_exits_2_with_the_summary_when_the_report_folder_went_away(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    config = command_batch(tmp_path, folder, "moved")
    out = folder / "report.json"
    completed = run_module(["run", str(config), "-j", "1", "-o", str(out)], cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert summary(completed.stdout) == SUMMARY
    assert f"error: cannot write report {out}: No such file or directory" in completed.stderr
    entries = journal_entries(tmp_path / "out-moved", "report.json")
    assert {entry["job"]["name"]: entry["job"]["status"] for entry in entries} == {
        "a": "succeeded",
        "bad": "failed",
        "c": "succeeded",
        "last": "succeeded",
    }
