"""What ``asyncbatch show`` says of what jobs produced and used: ``--results`` (a table
per action for people, TSV and JSON for tools), the end of each failure's stderr
under ``--failed`` (as this version's reports keep it, in ``error.details``, and as
older ones did, in ``error.stderr``), and the jobs that used most CPU and memory.
Reports are written here as JSON, with and without ``resources``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import invoke, write_json

from asyncbatch.errors import NotAReport
from asyncbatch.output.results import results_tsv, stream_tail
from asyncbatch.output.show import failed_text, load_report, summary_text

SUMMARY_KEYS = ("total_jobs", "succeeded", "failed", "skipped", "cancelled")
EVIL = "evil\x1b[2J\tname"


def job(name: str, action: str = "count_lines", **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "action": action,
        "input": f"{name}.txt",
        "status": "succeeded",
        "result": None,
        "error": None,
        "duration_ms": 1.5,
        "attempts": 1,
        "reused": False,
        "started_ms": 0.0,
    }
    return entry | fields


def used(cpu_s: float | None, max_rss_kb: int | None, read: int | None = None) -> dict[str, Any]:
    return {"cpu_s": cpu_s, "max_rss_kb": max_rss_kb, "read_bytes": read, "write_bytes": None}


def report_file(path: Path, jobs: list[dict[str, Any]]) -> Path:
    counts = dict.fromkeys(SUMMARY_KEYS, 0)
    counts["total_jobs"] = len(jobs)
    for entry in jobs:
        counts[entry["status"]] += 1
    return write_json(
        path,
        {
            "asyncbatch_version": "0.1.0",
            "config": "batch.json",
            "started_at": "2026-11-28T19:00:00.000000Z",
            "finished_at": "2026-11-28T19:00:02.500000Z",
            "duration_ms": 2500.0,
            "max_concurrency": 4,
            "summary": counts,
            "jobs": jobs,
        },
    )


def command_failure(name: str, *, details: bool) -> dict[str, Any]:
    stderr = "cc: warning: x\ncc: error: missing.h: no such file\n\n"
    if details:  # as this version writes it
        error = {
            "type": "CommandFailed",
            "message": "exit status 1: cc: error: missing.h: no such file",
            "details": {
                "exit_code": 1,
                "stdout": "compiling\n",
                "stderr": stderr,
                "stdout_bytes": 10,
                "stderr_bytes": 48,
            },
        }
    else:  # as older versions wrote it
        error = {"type": "CommandFailed", "message": "exit status 1", "stderr": stderr}
    return job(name, "command", status="failed", error=error)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Results of three actions (one name to escape, a command's streams, a float,
    a list), two command failures (new and old form), a skip; some jobs measured."""
    jobs = [
        job("a", result={"lines": 1200}, resources=used(0.5, 2048, 4096)),
        job(EVIL, result={"lines": 3}),
        job("sum", "checksum", result={"algorithm": "sha256", "digest": "ab" * 32}),
        job(
            "build",
            "command",
            result={
                "exit_code": 0,
                "stdout": "step 1\nstep 2\ndone: 3 files\n",
                "stderr": "",
                "stdout_bytes": 28,
                "stderr_bytes": 0,
            },
            resources=used(12.25, 512_000),
        ),
        job("ratio", "custom", result={"ratio": 0.125, "tags": ["x", "y"], "ok": True}),
        command_failure("new-form", details=True),
        command_failure("old-form", details=False),
        job(
            "later",
            status="skipped",
            duration_ms=None,
            started_ms=None,
            attempts=0,
            error={"type": "DependencyFailed", "message": "dependency 'new-form' failed"},
        ),
        job("reused", result={"lines": 9}, reused=True, resources=used(99.0, 9_999_999)),
    ]
    return report_file(tmp_path / "report.json", jobs)


def show(*args: str) -> tuple[str, str, int]:
    result = invoke(["show", *args])
    return result.stdout, result.stderr, result.exit_code


# --- --results --------------------------------------------------------------------------------


def test_results_are_a_table_per_action_for_people(mixed: Path) -> None:
    text, _, code = show(str(mixed), "--results")
    assert code == 0
    blocks = text.rstrip("\n").split("\n\n")
    assert blocks[0].splitlines() == [
        "count_lines (3 jobs)",
        "  job                  lines",
        "  a                    1,200",
        "  evil\\x1b[2J\\x09name      3",
        "  reused                   9",
    ]
    assert blocks[1].splitlines() == [
        "checksum (1 job)",
        "  job  algorithm  digest",
        f"  sum  sha256     {'ab' * 32}",
    ]
    command = blocks[2].splitlines()
    assert command[0] == "command (1 job)"
    assert command[1].split() == [
        "job",
        "exit_code",
        "stdout",
        "stderr",
        "stdout_bytes",
        "stderr_bytes",
    ]
    assert command[2].split() == ["build", "0", "\u2026done:", "3", "files", "28", "0"]
    assert blocks[3].splitlines()[2].split() == ["ratio", "0.125", '["x","y"]', "true"]
    assert (
        blocks[4] == "3 jobs have no result (failed, skipped or cancelled): --failed lists failures"
    )
    assert "\x1b" not in text


def test_results_as_tsv_keep_every_value_whole_and_escaped_as_jq_does(mixed: Path) -> None:
    text, _, code = show(str(mixed), "--results", "--tsv")
    assert code == 0
    header, *rows = text.splitlines()
    assert header.split("\t") == [
        "name",
        "input",
        "action",
        "lines",
        "algorithm",
        "digest",
        "exit_code",
        "stdout",
        "stderr",
        "stdout_bytes",
        "stderr_bytes",
        "ratio",
        "tags",
        "ok",
    ]
    assert all(row.count("\t") == header.count("\t") for row in rows)
    by_name = {row.split("\t")[0]: row.split("\t") for row in rows}
    assert set(by_name) == {"a", "evil\\x1b[2J\\tname", "sum", "build", "ratio", "reused"}
    assert by_name["a"][:4] == ["a", "a.txt", "count_lines", "1200"]
    assert by_name["build"][7] == "step 1\\nstep 2\\ndone: 3 files\\n"
    assert by_name["ratio"][11:] == ["0.125", '["x","y"]', "true"]
    assert by_name["sum"][5] == "ab" * 32


def test_results_as_json_are_the_jobs_with_a_result_as_the_report_holds_them(
    mixed: Path,
) -> None:
    text, _, code = show(str(mixed), "--results", "--json")
    assert code == 0
    found = json.loads(text)
    assert [entry["name"] for entry in found] == ["a", EVIL, "sum", "build", "ratio", "reused"]
    assert found[0] == {
        "name": "a",
        "input": "a.txt",
        "action": "count_lines",
        "result": {"lines": 1200},
    }
    assert found[3]["result"]["stdout"] == "step 1\nstep 2\ndone: 3 files\n"


def test_a_report_without_results_says_so(tmp_path: Path) -> None:
    path = report_file(tmp_path / "r.json", [command_failure("f", details=True)])
    text, _, _ = show(str(path), "--results")
    assert text == (
        "no job has a result\n\n"
        "1 job has no result (failed, skipped or cancelled): --failed lists failures\n"
    )
    assert results_tsv(load_report(path).jobs) == "name\tinput\taction\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--failed", "--results"], "error: --failed and --results: give only one of them"),
        (["--tsv"], "error: --tsv needs --results"),
        (["--results", "--tsv", "--json"], "error: --tsv and --json: give only one of them"),
    ],
)
def test_views_that_do_not_go_together_are_a_usage_error(
    mixed: Path, args: list[str], message: str
) -> None:
    text, stderr, code = show(str(mixed), *args)
    assert (text, stderr, code) == ("", message + "\n", 2)


# --- --failed: the end of stderr -----------------------------------------------------------------


def test_failed_shows_the_end_of_each_failures_stderr_in_either_form(mixed: Path) -> None:
    lines = failed_text(load_report(mixed)).splitlines()
    assert lines == [
        "new-form: CommandFailed: exit status 1: cc: error: missing.h: no such file",
        "    cc: warning: x",
        "    cc: error: missing.h: no such file",
        "old-form: CommandFailed: exit status 1",
        "    cc: warning: x",
        "    cc: error: missing.h: no such file",
    ]


def test_failed_as_json_keeps_the_details_as_the_report_holds_them(mixed: Path) -> None:
    text, _, _ = show(str(mixed), "--failed", "--json")
    new, old = json.loads(text)
    assert new["error"]["details"]["exit_code"] == 1
    assert new["error"]["details"]["stdout"] == "compiling\n"
    assert old["error"]["stderr"].startswith("cc: warning")


def test_stream_tails_come_from_a_result_the_details_or_the_older_top_level() -> None:
    saved_jobs = {
        job.name: job
        for job in load_report_of(
            [
                job("ok", "command", result={"stdout": "out\n", "stderr": "err\n"}),
                command_failure("new", details=True),
                command_failure("old", details=False),
                job("plain", result={"lines": 1}),
            ]
        )
    }
    assert stream_tail(saved_jobs["ok"], "stdout") == "out\n"
    assert stream_tail(saved_jobs["new"], "stdout") == "compiling\n"
    assert stream_tail(saved_jobs["old"], "stderr").startswith("cc: warning")  # type: ignore[union-attr]
    assert stream_tail(saved_jobs["old"], "stdout") is None
    assert stream_tail(saved_jobs["plain"], "stderr") is None


def load_report_of(jobs: list[dict[str, Any]]) -> list[Any]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return load_report(report_file(Path(folder) / "r.json", jobs)).jobs


# --- resources ------------------------------------------------------------------------------


def test_the_summary_lists_the_jobs_that_used_most_cpu_and_memory(mixed: Path) -> None:
    lines = summary_text(load_report(mixed)).splitlines()
    cpu = lines.index("Most CPU time:")
    assert lines[cpu + 1 : cpu + 3] == ["  12.25 s  build", "  0.500 s  a"]
    memory = lines.index("Most memory (peak RSS):")
    assert lines[memory + 1 : memory + 3] == ["  500.0 MiB  build", "    2.0 MiB  a"]
    assert all("reused" not in line for line in lines[cpu:]), "this run's jobs only"


def test_a_report_without_resources_is_read_and_lists_no_heaviest(tmp_path: Path) -> None:
    path = report_file(tmp_path / "old.json", [job("a", result={"lines": 1})])
    text = summary_text(load_report(path))
    assert "Most CPU time" not in text
    assert load_report(path).jobs[0].resources is None


def test_resources_are_read_with_nulls_where_nothing_was_measured(tmp_path: Path) -> None:
    path = report_file(tmp_path / "r.json", [job("a", resources=used(None, 100, 4096))])
    (saved,) = load_report(path).jobs
    assert saved.resources is not None
    assert (saved.resources.cpu_s, saved.resources.max_rss_kb) == (None, 100)
    assert (saved.resources.read_bytes, saved.resources.write_bytes) == (4096, None)


@pytest.mark.parametrize(
    ("resources", "reason"),
    [
        ("lots", 'jobs[0]: "resources" is neither null nor an object'),
        ({"cpu_s": "1"}, 'jobs[0].resources: "cpu_s" is not a number'),
        ({"max_rss_kb": True}, 'jobs[0].resources: "max_rss_kb" is not a number'),
    ],
)
def test_resources_of_the_wrong_type_are_not_a_report(
    tmp_path: Path, resources: object, reason: str
) -> None:
    path = report_file(tmp_path / "r.json", [job("a", resources=resources)])
    with pytest.raises(NotAReport) as caught:
        load_report(path)
    assert str(caught.value) == f"{path}: not an asyncbatch report ({reason})"
