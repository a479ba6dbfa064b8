"""The ``show --html`` page as people read it: each job's result (or error) in the
table, a row that opens on what the job left (its whole result, its error, the ends
of its output streams), one name column when jobs are named by their inputs, the
resources columns, a timeline that reads for 5 jobs (labelled bars) and for
thousands (stretches of time), ticks at round values and human timestamps.

Reports are written here as JSON; the page is parsed, and opened in a headless
Chromium where it matters (skipped without one)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from support import invoke
from test_show import Page, dump_dom, find_chromium
from test_show_results import command_failure, job, report_file, used

from asyncbatch.output._timeline import TIMELINE_BARS, tick_label, tick_step
from asyncbatch.output.page import html_page
from asyncbatch.output.show import load_report

HOSTILE = "</script><script>alert(1)</script>\x1b]0;pwned\x07"


def page_of(tmp_path: Path, jobs: list[dict[str, Any]]) -> str:
    return html_page(load_report(report_file(tmp_path / "report.json", jobs)))


def data_of(text: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(Page(text).scripts[0])
    return found


def five_jobs() -> list[dict[str, Any]]:
    """A build: five jobs over 3.8 s on two slots, one failed command."""
    jobs = []
    for name, start, took in [
        ("compile-core", 0, 1200),
        ("compile-ui", 0, 800),
        ("link", 1250, 300),
        ("test-unit", 1600, 2200),
        ("package", 1600, 400),
    ]:
        if name == "test-unit":
            entry = command_failure(name, details=True)
        else:
            result = {"exit_code": 0, "stdout": f"step 1\nbuilt {name}\n", "stderr": ""}
            entry = job(name, "command", result=result)
        entry |= {"started_ms": float(start), "duration_ms": float(took)}
        entry["resources"] = used(took / 1000, 50_000, 4096)
        jobs.append(entry)
    return jobs


# --- the table ---------------------------------------------------------------------------------


def test_the_table_shows_each_jobs_result_or_error(tmp_path: Path) -> None:
    page = Page(page_of(tmp_path, five_jobs()))
    by_name = {row[0]: row for row in page.rows}
    assert by_name["link"][6] == "exit_code: 0, stdout: \u2026built link"
    assert by_name["test-unit"][6] == (
        "CommandFailed: exit status 1: cc: error: missing.h: no such file"
    )


def test_jobs_named_by_their_inputs_get_one_column(tmp_path: Path) -> None:
    same = [job(name, input=name, result={"lines": 1}) for name in ("a.txt", "b/c.txt")]
    data = data_of(page_of(tmp_path, same))
    assert [label for label, _, _ in data["columns"]][:2] == ["job (input)", "action"]
    different = [job("a", result={"lines": 1})]
    data = data_of(page_of(tmp_path, different))
    assert [label for label, _, _ in data["columns"]][:3] == ["job", "input", "action"]


def test_the_resources_get_columns_when_the_report_has_them(tmp_path: Path) -> None:
    text = page_of(tmp_path, five_jobs())
    labels = [label for label, _, _ in data_of(text)["columns"]]
    assert labels[-4:] == ["CPU", "peak RSS", "read", "written"]
    row = next(row for row in Page(text).rows if row[0] == "test-unit")
    assert row[-4:] == ["2.20 s", "48.8 MiB", "4.0 KiB", ""]
    older = [job("a", result={"lines": 1})]  # a report written before jobs were measured
    assert "CPU" not in [label for label, _, _ in data_of(page_of(tmp_path, older))["columns"]]
    assert "Most CPU time" in text
    assert "of CPU time" in text


def test_a_row_opens_on_the_whole_result_the_error_and_the_output(tmp_path: Path) -> None:
    rows = {row[0]: row for row in data_of(page_of(tmp_path, five_jobs()))["jobs"]}
    failed = rows["test-unit"][14]
    assert failed["stderr"] == "cc: warning: x\ncc: error: missing.h: no such file"
    assert failed["stdout"] == "compiling"
    assert json.loads(failed["error"])["details"]["exit_code"] == 1
    assert "result" not in failed
    assert "stderr" not in json.loads(failed["error"])["details"], "shown apart, once"
    done = rows["link"][14]
    assert json.loads(done["result"]) == {"exit_code": 0}
    assert done["stdout"] == "step 1\nbuilt link"


def test_what_a_job_left_is_escaped_wherever_it_shows(tmp_path: Path) -> None:
    entry = command_failure(HOSTILE, details=True)
    entry["error"]["details"]["stderr"] = HOSTILE
    entry["error"]["message"] = HOSTILE
    done = job("ok", "command", result={"stdout": HOSTILE, "note": HOSTILE})
    text = page_of(tmp_path, [entry, done])
    assert text.count("</script>") == 2  # the page's own two scripts
    assert "<script>alert" not in text
    assert "\x1b" not in text
    assert "\x07" not in text
    rows = {row[0]: row for row in data_of(text)["jobs"]}
    assert rows["ok"][14]["stdout"] == "</script><script>alert(1)</script>\\x1b]0;pwned\\x07"


# --- the timeline ----------------------------------------------------------------------------


def test_a_few_jobs_are_labelled_bars_on_an_axis_at_round_values(tmp_path: Path) -> None:
    text = page_of(tmp_path, five_jobs())
    timeline = text[text.index('id="timeline"') : text.index('id="jobs"')]
    labels = re.findall(r'<div class="bar s-\w+"[^>]*><span>([^<]*)</span>', timeline)
    assert sorted(labels) == ["compile-core", "compile-ui", "link", "package", "test-unit"]
    ticks = re.findall(r'<span style="left:[\d.]+%">([^<]*)</span>', timeline)
    assert ticks == ["0", "500 ms", "1 s", "1.5 s", "2 s", "2.5 s", "3 s", "3.5 s"]
    assert "(at 19:00:01.600 UTC)" in timeline  # the bars' tooltips say the time of day


def test_thousands_of_jobs_are_drawn_as_stretches_of_time(tmp_path: Path) -> None:
    jobs = [
        job(f"j{i}", started_ms=i * 1.0, duration_ms=4.0, result={"lines": i})
        for i in range(TIMELINE_BARS + 1_000)
    ]
    jobs[100] = job(
        "bad",
        status="failed",
        started_ms=100.0,
        duration_ms=4.0,
        error={"type": "X", "message": "m"},
    )
    text = page_of(tmp_path, jobs)
    page = Page(text)
    assert page.bars == []
    cells = re.findall(r'<div class="cell s-(\w+)"[^>]*title="([^"]*)"', text)
    assert 4 * 200 >= len(cells) >= 200
    assert sum(1 for status, _ in cells if status == "failed") >= 1
    assert any("(1 failed)" in html.unescape(title) for _, title in cells)
    assert "2,000 jobs over 2.50 s, one row per slot (4 slots), too many to draw one" in text


@pytest.mark.parametrize(
    ("span_ms", "labels"),
    [
        (3.8, ["0", "1 ms", "2 ms", "3 ms"]),
        (3_800, ["0", "500 ms", "1 s", "1.5 s", "2 s", "2.5 s", "3 s", "3.5 s"]),
        (60_000, ["0", "10 s", "20 s", "30 s", "40 s", "50 s", "60 s"]),
        (7_260_000, ["0", "30 min", "60 min", "90 min", "120 min"]),
        (30 * 3_600_000, ["0", "6 h", "12 h", "18 h", "24 h", "30 h"]),
    ],
)
def test_ticks_fall_on_round_values(span_ms: float, labels: list[str]) -> None:
    step = tick_step(span_ms)
    at = [k * step for k in range(int(span_ms // step) + 1)]
    assert [tick_label(each, step) for each in at] == labels


def test_the_start_is_a_human_timestamp(tmp_path: Path) -> None:
    text = page_of(tmp_path, five_jobs())
    assert '<time datetime="2026-11-28T19:00:00.000000Z">2026-11-28 19:00:00 UTC</time>' in text


# --- in a browser ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_reads_for_5_jobs_and_for_thousands_in_a_browser(tmp_path: Path) -> None:
    browser = find_chromium()
    if browser is None:
        pytest.skip("no Chromium found (apt-get install chromium)")
    small = report_file(tmp_path / "small.json", five_jobs())
    assert invoke(["show", str(small), "--html", str(tmp_path / "small.html")]).exit_code == 0
    dom = dump_dom(browser, tmp_path / "small.html", "#selftest", tmp_path / "profile")
    found = re.search(r'<pre id="selftest">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["bars"] == 5
    assert seen["labels"] == [True] * 5, "every bar wide enough to read its name whole"
    assert seen["rows"][0] == "test-unit"
    assert "stderr (the end)" in seen["opened"]
    assert "cc: error: missing.h: no such file" in seen["opened"]
    assert seen["closed"] == 0
    assert seen["heads"][:2] == ["job", "input"]
    assert re.search(r"2026", seen["started"])
    assert "UTC" not in seen["started"], "the viewer's own zone, by the script"
    many = [
        job(f"j{i}", started_ms=i * 1.0, duration_ms=4.0, result={"lines": i}) for i in range(2_500)
    ]
    big = report_file(tmp_path / "big.json", many)
    assert invoke(["show", str(big), "--html", str(tmp_path / "big.html")]).exit_code == 0
    dom = dump_dom(browser, tmp_path / "big.html", "#selftest", tmp_path / "profile")
    found = re.search(r'<pre id="selftest">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["bars"] == 0
    assert seen["cells"] >= 200
