"""Reading a saved report (``asyncbatch show``): real reports written by real runs,
shown as text, as JSON and as one HTML page (parsed here, and run in a headless
Chromium when one is installed); files that are not reports are refused clearly."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from support import invoke, read_json, summary, write_json

from asyncbatch.errors import NotAReport
from asyncbatch.model import JobResult, Report
from asyncbatch.output import show as show_module
from asyncbatch.output.page import TABLE_ROWS, TIMELINE_BARS, assign_slots, html_page
from asyncbatch.output.report import write_report
from asyncbatch.output.show import failed_text, load_report, summary_text
from asyncbatch.output.terminal import sanitize

ODD_NAME = '<b>&"quoted"</script><script>alert(1)</script>'
ESC_NAME = "esc\x1b[2Jname"


@pytest.fixture
def real_report(tmp_path: Path) -> Path:
    """A report written by ``asyncbatch run -o``: successes, failures of two error
    types (one retried), skips of two reasons, and names that need escaping."""
    (tmp_path / "a.txt").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    jobs = [
        {"name": "ok", "action": "count_lines", "input": "a.txt"},
        {"name": ODD_NAME, "action": "count_lines", "input": "gone.txt"},
        {"name": ESC_NAME, "action": "count_lines", "input": "gone2.txt", "retries": 1},
        {"name": "dir", "action": "count_lines", "input": "folder"},
        {"name": "after1", "action": "count_lines", "input": "a.txt", "depends_on": [ODD_NAME]},
        {"name": "after2", "action": "count_lines", "input": "a.txt", "depends_on": [ODD_NAME]},
        {"name": "unknown", "action": "no_such_action", "input": "a.txt"},
        {"name": "ok2", "action": "file_size", "input": "a.txt"},
    ]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    out = tmp_path / "report.json"
    result = invoke(["run", str(config), "-o", str(out)])
    assert result.exit_code == 1
    assert summary(result.stdout)["failed"] == 3
    return out


def show(report: Path, *args: str, html: Path | None = None) -> tuple[str, int]:
    """``asyncbatch show REPORT ARGS [--html FILE]``, in process: stdout and exit code."""
    extra = [] if html is None else ["--html", str(html)]
    result = invoke(["show", str(report), *args, *extra])
    return result.stdout, result.exit_code


def synthetic(path: Path, jobs: list[JobResult], *, seconds: float = 10.0) -> Path:
    """A report file as ``run`` writes it, of the jobs given."""
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    report = Report(
        config="batch.json",
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        max_concurrency=4,
        jobs=jobs,
    )
    write_report(report, path)
    return path


def failure(name: str, error_type: str = "FileNotFoundError", **fields: Any) -> JobResult:
    error = {"type": error_type, "message": f"{name}: went wrong"}
    return JobResult(
        name=name, action="x", input=f"{name}.txt", status="failed", error=error, **fields
    )


def succeeded(name: str, started_ms: float | None, duration_ms: float) -> JobResult:
    return JobResult(
        name=name,
        action="x",
        input="in",
        status="succeeded",
        duration_ms=duration_ms,
        started_ms=started_ms,
        attempts=1,
    )


# --- text -----------------------------------------------------------------------------------


def test_summary_text_shows_counts_failures_by_type_skips_by_reason_and_the_slowest(
    real_report: Path,
) -> None:
    text = summary_text(load_report(real_report))
    lines = text.splitlines()
    assert lines[0].startswith(f"{real_report}: 8 jobs from ")
    assert re.fullmatch(r"2 succeeded, 3 failed, 3 skipped, 0 cancelled in [\d.]+ s", lines[1])
    assert "Failed (3), by error type:" in lines
    start = lines.index("Failed (3), by error type:")
    assert lines[start + 1 : start + 5] == [
        "  FileNotFoundError (2 jobs)",
        f"    {ODD_NAME}: gone.txt: no such file",
        "    esc\\x1b[2Jname: gone2.txt: no such file (after 2 attempts)",
        "  NotARegularFile (1 job)",
    ]
    assert "Skipped and cancelled, by reason:" in lines
    assert (
        f"  SKIPPED   2 jobs  DependencyFailed: dependency '{ODD_NAME}' failed  (after1, after2)"
        in lines
    )
    assert "  SKIPPED   1 job   UnknownAction: unknown action 'no_such_action'  (unknown)" in lines
    after = lines[lines.index("Slowest:") + 1 :]
    slowest = after[: after.index("")] if "" in after else after
    assert 1 <= len(slowest) <= 5
    assert all(re.fullmatch(r"  +[\d.]+ (ms|s|min)  \S.*", line) for line in slowest)
    assert "\x1b" not in text


def test_summary_text_caps_the_failures_and_points_to_failed(tmp_path: Path) -> None:
    jobs = [failure(f"f{i}") for i in range(30)]
    jobs += [failure(f"t{i}", f"Type{i}") for i in range(12)]
    text = summary_text(load_report(synthetic(tmp_path / "r.json", jobs)))
    lines = text.splitlines()
    assert "  FileNotFoundError (30 jobs)" in lines
    assert "    ... and 25 more" in lines
    types = [line for line in lines if re.fullmatch(r"  \w+ \(\d+ jobs?\)", line)]
    assert len(types) == 10
    assert "  ... and 3 jobs of 3 other error types" in lines
    assert "  (--failed lists every one)" in lines


def test_summary_text_cuts_long_messages_and_failed_text_keeps_them_whole(tmp_path: Path) -> None:
    job = failure("long")
    assert job.error is not None
    job.error["message"] = "m" * 1000
    saved = load_report(synthetic(tmp_path / "r.json", [job]))
    assert "m" * 1000 not in summary_text(saved)
    assert "m" * 199 + "\u2026" in summary_text(saved)
    assert failed_text(saved) == "long: FileNotFoundError: " + "m" * 1000 + "\n"


def test_failed_text_lists_every_failed_job_aligned_with_its_attempts(tmp_path: Path) -> None:
    jobs = [failure(f"f{i}") for i in range(100)] + [failure("retried-one", attempts=4)]
    lines = failed_text(load_report(synthetic(tmp_path / "r.json", jobs))).splitlines()
    assert len(lines) == 101
    assert lines[0] == "f0:          FileNotFoundError: f0: went wrong"
    assert lines[-1] == "retried-one: FileNotFoundError: retried-one: went wrong (after 4 attempts)"


def test_failed_text_says_so_when_nothing_failed(tmp_path: Path) -> None:
    report = synthetic(tmp_path / "r.json", [succeeded("a", 0.0, 1.0)])
    assert failed_text(load_report(report)) == "no job failed\n"


def test_show_prints_the_summary_object_as_run_does(real_report: Path) -> None:
    text, code = show(real_report, "--json")
    assert code == 0
    assert summary(text) == read_json(real_report)["summary"]


def test_show_failed_as_json_gives_the_failed_jobs_as_the_report_holds_them(
    real_report: Path,
) -> None:
    text, code = show(real_report, "--failed", "--json")
    assert code == 0
    failed = [job for job in read_json(real_report)["jobs"] if job["status"] == "failed"]
    assert sorted(json.loads(text), key=lambda job: job["name"]) == sorted(
        failed, key=lambda job: job["name"]
    )


def test_show_defaults_to_the_summary_and_failed_to_every_failure(real_report: Path) -> None:
    saved = load_report(real_report)
    assert show(real_report) == (summary_text(saved), 0)
    assert show(real_report, "--failed") == (failed_text(saved), 0)


def test_a_report_of_reused_results_counts_them(tmp_path: Path) -> None:
    jobs = [succeeded(f"s{i}", None, 1.0) for i in range(3)]
    for job in jobs[:2]:
        job.reused = True
    text = summary_text(load_report(synthetic(tmp_path / "r.json", jobs)))
    assert "3 succeeded (2 reused), 0 failed, 0 skipped, 0 cancelled in 10.00 s" in text


# --- not a report ---------------------------------------------------------------------------

REPORT = {"summary": {"total_jobs": 0, "succeeded": 0, "failed": 0, "skipped": 0, "cancelled": 0}}
GOOD_JOB = {"name": "a", "action": "x", "input": "a", "status": "succeeded", "error": None}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "not JSON"),
        ("{not json", "not JSON"),
        ("\xff\xfe", "not JSON"),
        ("[" * 100_000, "not JSON"),
        ("[]", "not a JSON object"),
        ('"jobs"', "not a JSON object"),
        (json.dumps(REPORT), 'no "jobs" list'),
        (json.dumps({**REPORT, "jobs": {}}), 'no "jobs" list'),
        (json.dumps({"jobs": []}), 'no "summary" object'),
        (json.dumps({"jobs": [], "summary": {}}), '"summary" has no count "total_jobs"'),
        (
            json.dumps({"jobs": [], "summary": {**REPORT["summary"], "failed": "1"}}),
            '"summary" has no count "failed"',
        ),
        (json.dumps({**REPORT, "jobs": [1]}), "jobs[0] is not an object"),
        (
            json.dumps({**REPORT, "jobs": [GOOD_JOB, {**GOOD_JOB, "status": "done"}]}),
            'jobs[1]: "status" is not one of succeeded, failed, skipped, cancelled',
        ),
        (
            json.dumps({**REPORT, "jobs": [{**GOOD_JOB, "name": 3}]}),
            'jobs[0]: "name" is not a string',
        ),
        (
            json.dumps({**REPORT, "jobs": [{**GOOD_JOB, "error": "boom"}]}),
            'jobs[0]: "error" is neither null nor a type and a message',
        ),
        (
            json.dumps({**REPORT, "jobs": [{**GOOD_JOB, "duration_ms": "3"}]}),
            'jobs[0]: "duration_ms" is not a number',
        ),
        (
            json.dumps({**REPORT, "jobs": [{**GOOD_JOB, "attempts": True}]}),
            'jobs[0]: "attempts" is not an integer',
        ),
        (json.dumps({**REPORT, "jobs": [], "config": 1}), 'report: "config" is not a string'),
    ],
    ids=lambda value: str(value)[:30],
)
def test_a_file_that_is_not_a_report_is_refused_saying_why(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(NotAReport) as caught:
        load_report(path)
    assert str(caught.value) == f"{path}: not an asyncbatch report ({reason})"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"duration_ms": int("9" * 400)}, 'jobs[0]: "duration_ms" is out of range (0 to 1e12 ms)'),
        ({"duration_ms": 1e308}, 'jobs[0]: "duration_ms" is out of range (0 to 1e12 ms)'),
        ({"duration_ms": -5}, 'jobs[0]: "duration_ms" is out of range (0 to 1e12 ms)'),
        ({"started_ms": 1e300}, 'jobs[0]: "started_ms" is out of range (0 to 1e12 ms)'),
        ({"attempts": int("9" * 400)}, 'jobs[0]: "attempts" is out of range (0 to 1e12)'),
        ({"attempts": -1}, 'jobs[0]: "attempts" is out of range (0 to 1e12)'),
    ],
    ids=lambda value: str(value)[:30],
)
def test_a_report_with_a_time_or_count_of_no_sane_size_is_refused_by_show(
    tmp_path: Path, entry: dict[str, Any], reason: str
) -> None:
    """A journal line can carry any number into a report: show says which, exit 2,
    no OverflowError, no 300-digit duration."""
    counts = {**REPORT["summary"], "total_jobs": 1, "succeeded": 1}
    path = tmp_path / "report.json"
    path.write_text(
        json.dumps({"summary": counts, "jobs": [{**GOOD_JOB, **entry}]}), encoding="utf-8"
    )
    for args in ([], ["--failed"], ["--html", str(tmp_path / "page.html")]):
        result = invoke(["show", str(path), *args])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == f"error: {path}: not an asyncbatch report ({reason})\n"
    assert not (tmp_path / "page.html").exists()


def test_a_summary_count_of_400_digits_is_refused_by_show(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    counts = {**REPORT["summary"], "failed": int("9" * 400)}
    path.write_text(json.dumps({"summary": counts, "jobs": []}), encoding="utf-8")
    result = invoke(["show", str(path)])
    assert result.exit_code == 2
    assert '"summary": "failed" is out of range (at most 1e12)' in result.stderr


def test_long_but_sane_durations_print_in_hours_and_days(tmp_path: Path) -> None:
    """A three-day job reads as days, in the text and on the page's axis."""
    days = 3 * 86_400_000.0
    jobs = [succeeded("long", 0.0, days), succeeded("hours", 10.0, 5 * 3_600_000.0)]
    path = synthetic(tmp_path / "r.json", jobs, seconds=days / 1000)
    text, code = show(path)
    assert code == 0
    assert "3.0 d  long" in text
    assert "5.0 h  hours" in text
    page = tmp_path / "page.html"
    assert show(path, html=page)[1] == 0
    axis = page.read_text(encoding="utf-8").split('class="axis">')[1].split("</div>")[0]
    assert "nan" not in axis
    assert "72 h" in axis, "ticks at round values, in hours"


def test_a_report_missing_optional_fields_is_read_with_defaults(tmp_path: Path) -> None:
    counts = {**REPORT["summary"], "total_jobs": 1, "succeeded": 1}
    path = write_json(tmp_path / "old.json", {"summary": counts, "jobs": [GOOD_JOB]})
    saved = load_report(path)
    assert (saved.jobs[0].attempts, saved.jobs[0].started_ms, saved.duration_ms) == (0, None, 0.0)
    assert "1 succeeded" in summary_text(saved)


def test_a_missing_file_a_directory_and_a_fifo_are_refused_without_blocking(
    tmp_path: Path,
) -> None:
    with pytest.raises(NotAReport, match="cannot read it: No such file or directory"):
        load_report(tmp_path / "none.json")
    with pytest.raises(NotAReport, match="is a directory, not a report file"):
        load_report(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotAReport, match="is a FIFO, not a report file"):
        load_report(fifo)


def test_a_report_over_the_size_bound_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = synthetic(tmp_path / "r.json", [succeeded("a", 0.0, 1.0)])
    monkeypatch.setattr(show_module, "MAX_REPORT_BYTES", path.stat().st_size - 1)
    with pytest.raises(NotAReport, match="is larger than 1 GiB; refused"):
        load_report(path)


def test_a_job_report_from_run_without_o_is_not_a_report(real_report: Path) -> None:
    """The summary object that ``run`` prints is not a report either."""
    path = real_report.with_name("summary.json")
    path.write_text(json.dumps(read_json(real_report)["summary"]), encoding="utf-8")
    with pytest.raises(NotAReport, match=r'\(no "jobs" list\)'):
        load_report(path)


# --- the page, parsed -----------------------------------------------------------------------


class Page(HTMLParser):
    """The parts of the page the tests read: table rows (cells' text), timeline
    bars (their titles), script elements, every attribute value."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.bars: list[str] = []
        self.scripts: list[str] = []
        self.attributes: list[str] = []
        self._in_body = self._in_cell = self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.attributes += [value for value in found.values() if value]
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._in_cell = True
            self.rows[-1].append("")
        elif tag == "div" and "bar" in (found.get("class") or "").split():
            self.bars.append(found.get("title") or "")
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._in_cell = False
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data
        if self._in_script:
            self.scripts[-1] += data


def test_the_page_has_a_row_per_job_failures_first_and_a_bar_per_job_that_started(
    real_report: Path,
) -> None:
    saved = load_report(real_report)
    page = Page(html_page(saved))
    assert len(page.rows) == len(saved.jobs) == 8
    statuses = [row[3] for row in page.rows]
    assert statuses == sorted(statuses, key=["failed", "cancelled", "skipped", "succeeded"].index)
    assert {row[0] for row in page.rows} == {sanitize(job.name) for job in saved.jobs}
    started = [job for job in saved.jobs if job.started_ms is not None]
    assert len(started) == 5
    assert len(page.bars) == len(started)
    for job in started:
        assert any(bar.startswith(f"{sanitize(job.name)}: {job.status}") for bar in page.bars)


def test_the_page_escapes_every_name_and_embeds_its_data_safely(real_report: Path) -> None:
    text = html_page(load_report(real_report))
    assert ODD_NAME not in text
    assert "<script>alert" not in text
    assert text.count("</script>") == 2  # the page's own two scripts
    assert "\x1b" not in text
    page = Page(text)
    data, script = page.scripts
    rows = json.loads(data)["jobs"]
    assert {row[0] for row in rows} == {
        ODD_NAME,
        "esc\\x1b[2Jname",
        "ok",
        "ok2",
        "dir",
        "after1",
        "after2",
        "unknown",
    }
    assert "location.hash" in script
    assert html.escape(ODD_NAME) in text


def test_the_page_loads_nothing_from_a_network(real_report: Path) -> None:
    text = html_page(load_report(real_report))
    assert "http://" not in text
    assert "https://" not in text
    assert "//" not in "".join(Page(text).attributes).replace("'none'", "")
    assert "default-src 'none'" in text


def test_the_page_groups_failures_by_type_and_skips_by_reason(real_report: Path) -> None:
    text = html_page(load_report(real_report))
    failures = text[text.index('id="failures"') : text.index('id="not-run"')]
    assert "<b>FileNotFoundError</b> 2 jobs" in failures
    assert "<b>NotARegularFile</b> 1 job" in failures
    assert "(after 2 attempts)" in failures
    not_run = text[text.index('id="not-run"') : text.index('id="slowest"')]
    assert not_run.count("<li>") == 2
    assert "3 jobs did not run in this run" in text


def test_the_timeline_puts_jobs_in_as_few_slots_as_ran_at_once() -> None:
    jobs = [
        succeeded("a", 0.0, 10.0),
        succeeded("b", 1.0, 3.0),
        succeeded("c", 2.0, 1.0),
        succeeded("d", 4.0, 5.0),  # b ended at 4: takes its slot
        succeeded("e", 3.0, 1.0),  # c ended at 3: takes its slot
        succeeded("skipped", None, 0.0),
    ]
    placed = {job.name: slot for slot, job in assign_slots(jobs)}
    assert placed == {"a": 0, "b": 1, "c": 2, "e": 2, "d": 1}


def test_the_timeline_leaves_reused_results_out() -> None:
    reused = succeeded("r", 5.0, 1.0)
    reused.reused = True
    assert assign_slots([reused, succeeded("a", 0.0, 1.0)]) == [
        (
            0,
            reused.__class__(
                name="a",
                action="x",
                input="in",
                status="succeeded",
                duration_ms=1.0,
                started_ms=0.0,
                attempts=1,
            ),
        )
    ]


@pytest.mark.slow
def test_the_page_of_100000_jobs_caps_its_rows_and_bars(tmp_path: Path) -> None:
    jobs = [succeeded(f"job{i}", i * 0.5, 2.0) for i in range(100_000)]
    jobs += [failure(f"fail{i}", started_ms=1.0, duration_ms=1.0) for i in range(10)]
    path = synthetic(tmp_path / "big.json", jobs, seconds=60)
    _, code = show(path, html=tmp_path / "big.html")
    assert code == 0
    text = (tmp_path / "big.html").read_text(encoding="utf-8")
    page = Page(text)
    assert len(page.rows) == TABLE_ROWS
    assert all(row[3] == "failed" for row in page.rows[:10])
    assert page.bars == [], f"more than {TIMELINE_BARS:,} jobs: stretches of time, not bars"
    assert "100,010 jobs over 1.0 min, one row per slot (14 slots), too many to draw" in text
    assert len(json.loads(page.scripts[0])["jobs"]) == 100_010


# --- writing the page -----------------------------------------------------------------------


def test_show_writes_the_page_atomically_and_still_prints_the_summary(
    real_report: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "page.html"
    destination.write_text("old", encoding="utf-8")
    text, code = show(real_report, html=destination)
    assert (text, code) == (summary_text(load_report(real_report)), 0)
    assert destination.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


@pytest.mark.parametrize("where", ["directory", "fifo", "device", "the report", "no folder"])
def test_show_refuses_a_page_destination_that_would_destroy_something(
    real_report: Path, tmp_path: Path, where: str
) -> None:
    destination = {
        "directory": tmp_path,
        "fifo": tmp_path / "fifo",
        "device": Path("/dev/null"),
        "the report": real_report,
        "no folder": tmp_path / "none" / "page.html",
    }[where]
    if where == "fifo":
        os.mkfifo(destination)
    before = real_report.read_bytes()
    result = invoke(["show", str(real_report), "--html", str(destination)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: cannot write {destination}: "), result.stderr
    assert real_report.read_bytes() == before


@pytest.mark.parametrize("where", ["journal", "lock", "config", "input", "link to input"])
def test_show_never_writes_its_page_over_what_the_report_names(
    real_report: Path, tmp_path: Path, where: str
) -> None:
    """The journal, the lock, the config and the inputs named in the report: a page
    written there would lose the next --resume its journal, or destroy a file."""
    (tmp_path / "report.json.lock").touch()
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    destination, reason = {
        "journal": (tmp_path / "report.json.journal", "is the report's journal"),
        "lock": (tmp_path / "report.json.lock", "is the report's lock"),
        "config": (tmp_path / "batch.json", "is the report's config"),
        "input": (tmp_path / "a.txt", "is an input named in the report (job 'ok')"),
        "link to input": (tmp_path / "link.txt", "is an input named in the report (job 'ok')"),
    }[where]
    before = {path: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    result = invoke(["show", str(real_report), "--html", str(destination)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        result.stderr == f"error: cannot write {destination}: {reason}; it would be overwritten\n"
    )
    assert {path: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()} == before


def test_show_finds_the_config_and_inputs_named_relative_to_where_the_run_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run from the config's folder names it ``batch.json`` and its input ``a.txt``:
    show, from the same folder, refuses both as the page."""
    (tmp_path / "a.txt").write_text("one\n", encoding="utf-8")
    write_json(
        tmp_path / "batch.json",
        {"jobs": [{"name": "n", "action": "count_lines", "input": "a.txt"}]},
    )
    monkeypatch.chdir(tmp_path)
    assert invoke(["run", "batch.json", "-o", "out/report.json"]).exit_code == 2  # no folder
    (tmp_path / "out").mkdir()
    assert invoke(["run", "batch.json", "-o", "out/report.json", "-q"]).exit_code == 0
    for target in ("batch.json", "a.txt"):
        result = invoke(["show", "out/report.json", "--html", target])
        assert result.exit_code == 2, result.stderr
        assert "it would be overwritten" in result.stderr
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "one\n"


@pytest.mark.parametrize("target", [".", "/", "", "./", "sub/.", "sub/", ".."])
def test_show_html_naming_a_folder_or_nothing_is_one_line_and_exit_2(
    real_report: Path, tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["show", str(real_report), "--html", target])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --html: ")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "sub").exists()


def test_show_does_not_write_the_page_of_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("[]", encoding="utf-8")
    result = invoke(["show", str(path), "--html", str(tmp_path / "page.html")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: not an asyncbatch report (not a JSON object)\n"
    assert not (tmp_path / "page.html").exists()


# --- the page, in a browser -----------------------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def dump_dom(browser: str, page: Path, fragment: str, profile: Path) -> str:
    """The page's DOM once its scripts ran, in a headless browser with no network."""
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no name resolves
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_sorts_filters_and_draws_its_timeline_in_a_browser(
    real_report: Path, tmp_path: Path
) -> None:
    browser = find_chromium()
    if browser is None:
        pytest.skip("no Chromium found (apt-get install chromium)")
    page = tmp_path / "page.html"
    show(real_report, html=page)
    dom = dump_dom(browser, page, "#selftest", tmp_path / "profile")
    found = re.search(r'<pre id="selftest">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    result = json.loads(html.unescape(found.group(1)))
    saved = load_report(real_report)
    names = {job.name: sanitize(job.name) for job in saved.jobs}
    by_status = {
        status: [names[job.name] for job in saved.jobs if job.status == status]
        for status in ("failed", "cancelled", "skipped", "succeeded")
    }
    assert result["rows"] == [name for group in by_status.values() for name in group]
    assert result["bars"] == sum(1 for job in saved.jobs if job.started_ms is not None)
    assert result["byName"] == sorted(names.values())
    assert result["byNameDescending"] == sorted(names.values(), reverse=True)
    timed = sorted(
        (job for job in saved.jobs if job.duration_ms is not None),
        key=lambda job: job.duration_ms or 0.0,
    )
    assert result["byDuration"][: len(timed)] == [names[job.name] for job in timed]
    assert sorted(result["filtered"]) == ["ok", "ok2"]  # the first job's name, as a filter
    assert sorted(result["onlyFailed"]) == sorted(by_status["failed"])
    # Without the hook, the page still renders every job, failures first.
    plain = dump_dom(browser, page, "", tmp_path / "profile")
    assert "selftest" not in plain.split("<script", 1)[0]
    assert plain.count('<tr class="s-') == len(saved.jobs)
