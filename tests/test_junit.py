"""The JUnit XML report: ``junit_xml`` on hand-made reports, parsed back with
ElementTree, and ``asyncbatch run --junit`` in process and as a real subprocess.

Neither lxml nor xmlschema is installed, so the schema is not validated with an XSD
engine; ``assert_ant_schema_layout`` checks the rules of the Ant schema
(windyroad's JUnit.xsd) that our document touches, and those are stricter than
Jenkins' junit-10.xsd."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import SAMPLE, add_module, invoke, run_module

from asyncbatch.model import JobResult, Report, Resources
from asyncbatch.output.junit import RESULT_LIMIT, junit_xml, write_junit

SAMPLE_JOBS = ["app-lines", "notes-words", "app-errors", "notes-sha256"]
SUBPROCESS_TIMEOUT = 20
STARTED = datetime(2026, 11, 28, 19, 0, 0, 123456, tzinfo=UTC)

WriteConfig = Callable[..., Path]
needs_posix_signals = pytest.mark.skipif(
    sys.platform == "win32", reason="POSIX signals and sessions"
)


# --- helpers ---------------------------------------------------------------------------


def make_report(*jobs: JobResult, config: str = "ci/batch.json") -> Report:
    return Report(
        config=config,
        started_at=STARTED,
        finished_at=STARTED + timedelta(milliseconds=1500),
        max_concurrency=4,
        jobs=list(jobs),
    )


def job(name: str, status: Any = "succeeded", **fields: Any) -> JobResult:
    defaults: dict[str, Any] = {"action": "count_lines", "input": f"{name}.txt"}
    if status == "succeeded":
        defaults |= {"result": {"lines": 1}, "duration_ms": 2.5, "attempts": 1}
    return JobResult(name=name, status=status, **(defaults | fields))


def error(kind: str, message: str) -> dict[str, str]:
    return {"type": kind, "message": message}


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def cases_of(suite: ET.Element) -> list[ET.Element]:
    return suite.findall("testcase")


def outcomes_of(suite: ET.Element) -> dict[str, list[tuple[str, str | None]]]:
    """Per test case name, the (tag, type) of the elements inside it."""
    return {
        case.attrib["name"]: [(element.tag, element.get("type")) for element in case]
        for case in cases_of(suite)
    }


def counts(suite: ET.Element) -> dict[str, int]:
    return {key: int(suite.attrib[key]) for key in ("tests", "failures", "errors", "skipped")}


DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def assert_ant_schema_layout(suite: ET.Element) -> None:
    """What windyroad's JUnit.xsd requires of a standalone ``<testsuite>``."""
    assert suite.tag == "testsuite"
    assert {"name", "timestamp", "hostname", "tests", "failures", "errors", "time"} <= set(
        suite.attrib
    )
    assert suite.attrib["name"].strip()
    assert suite.attrib["hostname"].strip()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", suite.attrib["timestamp"])
    assert DECIMAL.fullmatch(suite.attrib["time"])
    for key in ("tests", "failures", "errors", "skipped"):
        assert suite.attrib[key].isdigit()
    tags = [child.tag for child in suite]
    cases = tags.count("testcase")
    assert tags == ["properties", *["testcase"] * cases, "system-out", "system-err"]
    for prop in suite.iterfind("properties/*"):
        assert prop.tag == "property"
        assert set(prop.attrib) == {"name", "value"}
    for case in cases_of(suite):
        assert {"name", "classname", "time"} <= set(case.attrib)
        assert DECIMAL.fullmatch(case.attrib["time"])
        assert len(case) <= 1
        for outcome in case:
            assert outcome.tag in ("skipped", "error", "failure")
            assert len(outcome) == 0
            if outcome.tag != "skipped":
                assert "type" in outcome.attrib


TRACE_ACTION = (
    "from pathlib import Path\n\n"
    "async def touch(path, params):\n"
    "    Path(__file__).with_name('trace.txt').write_text(path.name)\n"
    "    return {'touched': path.name}\n"
)

SLOW_ACTION = (
    "from pathlib import Path\n\n"
    "import anyio\n\n"
    "async def slow(path, params):\n"
    "    Path(__file__).with_name('started-' + path.name).touch()\n"
    "    await anyio.sleep(60)\n"
    "    return {}\n"
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("one two\nthree\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("four\n", encoding="utf-8")
    return tmp_path


# --- junit_xml: structure and counts ---------------------------------------------------


def test_one_testsuite_counts_failures_cancellations_as_errors_and_skips() -> None:
    report = make_report(
        job("ok"),
        job("bad", "failed", error=error("FileNotFoundError", "bad.txt: no such file")),
        job("stopped", "cancelled", error=error("Cancelled", "the run was interrupted")),
        job("later", "cancelled", error=error("Cancelled", "the run was interrupted")),
        job("unknown", "skipped", error=error("UnknownAction", "unknown action 'x'")),
    )
    suite = parse(junit_xml(report))
    assert suite.tag == "testsuite"
    assert suite.attrib["name"] == "asyncbatch"
    assert counts(suite) == {"tests": 5, "failures": 1, "errors": 2, "skipped": 1}
    assert_ant_schema_layout(suite)


def test_testcases_follow_report_order_with_the_config_stem_as_classname() -> None:
    names = ["zeta", "alpha", "logs[b.log]", "logs[a.log]"]
    suite = parse(junit_xml(make_report(*(job(name) for name in names))))
    assert [case.attrib["name"] for case in cases_of(suite)] == names
    assert {case.attrib["classname"] for case in cases_of(suite)} == {"batch"}


def test_times_are_seconds_from_duration_ms_and_zero_for_jobs_that_never_started() -> None:
    report = make_report(
        job("quick", duration_ms=2.5),
        job("long", duration_ms=65_432.125),
        job("tiny", duration_ms=0.0004),
        job("never", "skipped", error=error("DependencyFailed", "x"), duration_ms=None),
    )
    suite = parse(junit_xml(report))
    times = [case.attrib["time"] for case in cases_of(suite)]
    assert [Decimal(value) for value in times] == [
        Decimal("0.0025"),
        Decimal("65.432125"),
        Decimal("0"),
        Decimal("0"),
    ]
    assert all("e" not in value.lower() for value in times)
    assert Decimal(suite.attrib["time"]) == Decimal("1.5")


def test_the_suite_carries_timestamp_hostname_and_run_properties() -> None:
    suite = parse(junit_xml(make_report(job("ok"))))
    assert suite.attrib["timestamp"] == "2026-11-28T19:00:00"
    assert suite.attrib["hostname"]
    properties = {prop.attrib["name"]: prop.attrib["value"] for prop in suite.iter("property")}
    assert properties["config"] == "ci/batch.json"
    assert properties["max_concurrency"] == "4"
    assert "asyncbatch_version" in properties


def test_a_failed_job_is_a_failure_with_its_error_type_and_message() -> None:
    failed = job(
        "bad",
        "failed",
        error=error("Timeout", "took longer than 5 s"),
        duration_ms=5001.0,
        attempts=3,
    )
    (case,) = cases_of(parse(junit_xml(make_report(failed))))
    (failure,) = list(case)
    assert failure.tag == "failure"
    assert failure.attrib == {"type": "Timeout", "message": "took longer than 5 s"}
    assert failure.text is not None
    assert failure.text.startswith("took longer than 5 s\n")
    assert "attempts: 3" in failure.text
    assert "input: bad.txt" in failure.text


def test_a_cancelled_job_is_an_error_of_type_cancelled() -> None:
    cancelled = job("stopped", "cancelled", error=error("Cancelled", "the run was interrupted"))
    (case,) = cases_of(parse(junit_xml(make_report(cancelled))))
    (element,) = list(case)
    assert element.tag == "error"
    assert element.attrib == {"type": "Cancelled", "message": "the run was interrupted"}
    assert element.text == "the run was interrupted"


def test_a_skipped_job_is_skipped_with_type_and_message_in_one_attribute() -> None:
    skipped = job("after", "skipped", error=error("DependencyFailed", "dependency 'a' failed"))
    (case,) = cases_of(parse(junit_xml(make_report(skipped))))
    (element,) = list(case)
    assert element.tag == "skipped"
    assert element.attrib == {"message": "DependencyFailed: dependency 'a' failed"}


def test_a_succeeded_job_has_no_outcome_element_and_its_result_is_in_system_out() -> None:
    report = make_report(
        job("first", result={"lines": 12}),
        job("bad", "failed", error=error("ActionError", "boom")),
        job("second", result={"digest": "abc"}),
    )
    suite = parse(junit_xml(report))
    first, _, second = cases_of(suite)
    assert list(first) == []
    assert list(second) == []
    out = suite.findtext("system-out")
    assert out == 'first: {"lines": 12}\nsecond: {"digest": "abc"}\n'


def test_a_large_result_is_cut_short_in_system_out() -> None:
    report = make_report(job("big", result={"blob": "x" * (RESULT_LIMIT * 5)}))
    out = parse(junit_xml(report)).findtext("system-out")
    assert out is not None
    line = out.removesuffix("\n").removeprefix("big: ")
    assert len(line) == RESULT_LIMIT
    assert line.endswith("...")


def test_why_a_run_halted_is_in_system_err() -> None:
    report = make_report(job("ok"))
    report.halted = "the run was interrupted"
    suite = parse(junit_xml(report))
    assert suite.findtext("system-err") == "stopped: the run was interrupted\n"


def test_an_empty_batch_is_an_empty_but_valid_suite() -> None:
    suite = parse(junit_xml(make_report()))
    assert counts(suite) == {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    assert cases_of(suite) == []
    assert_ant_schema_layout(suite)


def test_a_config_from_stdin_gives_the_classname_asyncbatch() -> None:
    (case,) = cases_of(parse(junit_xml(make_report(job("ok"), config="-"))))
    assert case.attrib["classname"] == "asyncbatch"


def test_the_document_starts_with_a_utf8_xml_declaration() -> None:
    assert junit_xml(make_report(job("ok"))).startswith('<?xml version="1.0" encoding="UTF-8"?>\n')


# --- junit_xml: characters XML cannot carry ---------------------------------------------


ODD = "nul\x00 bell\x07 esc\x1b[31m vt\x0b surrogate\udcff nonchar\ufffe"


def test_control_characters_and_lone_surrogates_become_visible_escapes(tmp_path: Path) -> None:
    report = make_report(
        job(f"odd {ODD}", result={"text": ODD}),
        job(f"bad {ODD}", "failed", error=error("ActionError", f"ValueError: {ODD}")),
        job("cut", "cancelled", error=error("Cancelled", ODD)),
        job("skip", "skipped", error=error("UnknownAction", ODD)),
        config=f"odd\x01{ODD}.json",
    )
    path = tmp_path / "junit.xml"
    write_junit(report, path)
    suite = ET.parse(path).getroot()
    visible = r"nul\x00 bell\x07 esc\x1b[31m vt\x0b surrogate\udcff nonchar\ufffe"
    names = [case.attrib["name"] for case in cases_of(suite)]
    assert names == [f"odd {visible}", f"bad {visible}", "cut", "skip"]
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.attrib["message"] == f"ValueError: {visible}"
    cancelled = suite.find("testcase/error")
    assert cancelled is not None
    assert cancelled.attrib["message"] == visible
    skipped = suite.find("testcase/skipped")
    assert skipped is not None
    assert skipped.attrib["message"] == f"UnknownAction: {visible}"
    assert cases_of(suite)[0].attrib["classname"].startswith(r"odd\x01")
    assert_ant_schema_layout(suite)


def test_unicode_markup_and_whitespace_round_trip_unchanged() -> None:
    message = "naïve 日本語 🚀 <tag attr=\"v\"> & 'quote' ]]> tab\there\nnext line"
    report = make_report(job("🚀 <job> & ünïcode", "failed", error=error("ActionError", message)))
    (case,) = cases_of(parse(junit_xml(report)))
    assert case.attrib["name"] == "🚀 <job> & ünïcode"
    failure = case.find("failure")
    assert failure is not None
    assert failure.attrib["message"] == message


# --- write_junit ------------------------------------------------------------------------


def test_write_junit_replaces_an_existing_file_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "junit.xml"
    path.write_text("old, not even XML", encoding="utf-8")
    write_junit(make_report(job("ok")), path)
    assert [case.attrib["name"] for case in cases_of(ET.parse(path).getroot())] == ["ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]


# --- the command ------------------------------------------------------------------------


def test_run_junit_writes_every_job_in_report_order_like_the_json_report(
    data: Path, write_config: WriteConfig
) -> None:
    (data / "logs").mkdir()
    for name in ("b.log", "a.log"):
        (data / "logs" / name).write_text("x\n", encoding="utf-8")
    config = write_config(
        {
            "jobs": [
                {"name": "missing", "action": "count_lines", "input": "none.txt"},
                {"name": "words", "action": "count_words", "input": "a.txt"},
                {"name": "logs", "action": "count_lines", "input": "logs/*.log"},
                {"name": "mystery", "action": "no_such_action", "input": "b.txt"},
                {
                    "name": "after",
                    "action": "count_lines",
                    "input": "b.txt",
                    "depends_on": ["missing"],
                },
            ]
        }
    )
    junit, output = data / "junit.xml", data / "report.json"
    result = invoke(["run", str(config), "--junit", str(junit), "-o", str(output), "-q"])
    assert result.exit_code == 1, result.stderr
    suite = ET.parse(junit).getroot()
    report = json.loads(output.read_text(encoding="utf-8"))
    assert [case.attrib["name"] for case in cases_of(suite)] == [
        entry["name"] for entry in report["jobs"]
    ]
    assert [case.attrib["name"] for case in cases_of(suite)] == [
        "missing",
        "words",
        "logs[logs/a.log]",
        "logs[logs/b.log]",
        "mystery",
        "after",
    ]
    assert counts(suite) == {"tests": 6, "failures": 1, "errors": 0, "skipped": 2}
    outcomes = outcomes_of(suite)
    assert outcomes["missing"] == [("failure", "FileNotFoundError")]
    assert outcomes["words"] == []
    assert outcomes["mystery"] == [("skipped", None)]
    assert outcomes["after"] == [("skipped", None)]
    by_name = {entry["name"]: entry for entry in report["jobs"]}
    for case in cases_of(suite):
        duration_ms = by_name[case.attrib["name"]]["duration_ms"] or 0
        assert float(case.attrib["time"]) == pytest.approx(duration_ms / 1000, abs=1e-6)
    assert_ant_schema_layout(suite)


@pytest.mark.slow
def test_the_sample_run_as_a_module_writes_junit_with_the_config_stem_as_classname(
    tmp_path: Path,
) -> None:
    (tmp_path / "out").mkdir()
    completed = run_module(["run", str(SAMPLE), "--junit", "out/junit.xml"], cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert [case.attrib["name"] for case in cases_of(suite)] == SAMPLE_JOBS
    assert {case.attrib["classname"] for case in cases_of(suite)} == {"batch_config"}
    assert counts(suite) == {"tests": 4, "failures": 0, "errors": 0, "skipped": 0}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["junit.xml"]


def test_run_junit_replaces_an_existing_file(data: Path, write_config: WriteConfig) -> None:
    config = write_config({"jobs": [{"name": "a", "action": "count_lines", "input": "a.txt"}]})
    junit = data / "junit.xml"
    junit.write_text("stale", encoding="utf-8")
    result = invoke(["run", str(config), "--junit", str(junit)])
    assert result.exit_code == 0, result.stderr
    assert [case.attrib["name"] for case in cases_of(ET.parse(junit).getroot())] == ["a"]
    assert not [p for p in data.iterdir() if p.name.startswith(".junit.xml.")]


@pytest.mark.parametrize("where", ["missing/junit.xml", "."])
def test_junit_where_it_cannot_be_written_is_exit_2_before_any_job_runs(
    data: Path, write_config: WriteConfig, where: str
) -> None:
    module = add_module(data, TRACE_ACTION, "junit_actions")
    config = write_config({"jobs": [{"name": "a", "action": f"{module}:touch", "input": "a.txt"}]})
    result = invoke(["run", str(config), "--junit", str(data / where)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error:" in result.stderr
    assert not (data / "trace.txt").exists(), "a job ran although the report cannot be written"
    assert not (data / "missing").exists()


def test_a_config_error_writes_no_junit_file_and_leaves_an_existing_one_alone(
    data: Path, write_config: WriteConfig
) -> None:
    config = write_config({"jobs": [{"name": "a", "action": "count_lines"}]})
    fresh, existing = data / "fresh.xml", data / "existing.xml"
    existing.write_text("previous run", encoding="utf-8")
    for junit in (fresh, existing):
        result = invoke(["run", str(config), "--junit", str(junit)])
        assert result.exit_code == 2
        assert "jobs[0].input" in result.stderr
    assert not fresh.exists()
    assert existing.read_text(encoding="utf-8") == "previous run"


def test_a_dry_run_checks_the_junit_folder_but_writes_nothing(
    data: Path, write_config: WriteConfig
) -> None:
    config = write_config({"jobs": [{"name": "a", "action": "count_lines", "input": "a.txt"}]})
    ok = invoke(["run", str(config), "--dry-run", "--junit", str(data / "junit.xml")])
    assert ok.exit_code == 0, ok.stderr
    assert not (data / "junit.xml").exists()
    bad = invoke(["run", str(config), "--dry-run", "--junit", str(data / "no" / "junit.xml")])
    assert bad.exit_code == 2


def test_junit_and_output_naming_the_same_file_is_exit_2(
    data: Path, write_config: WriteConfig
) -> None:
    module = add_module(data, TRACE_ACTION, "junit_actions")
    config = write_config({"jobs": [{"name": "a", "action": f"{module}:touch", "input": "a.txt"}]})
    result = invoke(["run", str(config), "-o", str(data / "r"), "--junit", str(data / "r")])
    assert result.exit_code == 2
    assert "--junit" in result.stderr
    assert not (data / "trace.txt").exists()


def test_a_config_on_stdin_writes_junit_with_the_classname_asyncbatch(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(data)
    config = {"jobs": [{"name": "a", "action": "count_lines", "input": "a.txt"}]}
    result = invoke(["run", "-", "--junit", "junit.xml"], stdin=json.dumps(config))
    assert result.exit_code == 0, result.stderr
    (case,) = cases_of(ET.parse(data / "junit.xml").getroot())
    assert case.attrib["classname"] == "asyncbatch"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file names as raw bytes")
def test_an_input_file_name_with_control_and_undecodable_bytes_still_gives_parseable_junit(
    data: Path, write_config: WriteConfig
) -> None:
    (data / "odd").mkdir()
    with open(os.fsencode(data / "odd") + b"/x\x1b\x01\xff.log", "wb") as handle:
        handle.write(b"line\n")
    config = write_config({"jobs": [{"name": "g", "action": "count_lines", "input": "odd/*"}]})
    result = invoke(["run", str(config), "--junit", str(data / "junit.xml")])
    assert result.exit_code == 0, result.stderr
    (case,) = cases_of(ET.parse(data / "junit.xml").getroot())
    assert case.attrib["name"] == r"g[odd/x\x1b\x01\xff.log]"  # the byte, as in the report


# --- signals ----------------------------------------------------------------------------


@pytest.mark.slow
@needs_posix_signals
def test_a_run_stopped_by_sigint_still_writes_junit_with_cancelled_jobs_as_errors(
    data: Path, write_config: WriteConfig
) -> None:
    module = add_module(data, SLOW_ACTION, "junit_actions")
    config = write_config(
        {
            "jobs": [
                {"name": "quick", "action": "count_lines", "input": "a.txt"},
                {
                    "name": "slow",
                    "action": f"{module}:slow",
                    "input": "b.txt",
                    "depends_on": ["quick"],
                },
                {"name": "last", "action": "count_lines", "input": "a.txt", "depends_on": ["slow"]},
            ]
        }
    )
    junit = data / "junit.xml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncbatch", "run", str(config), "--junit", str(junit)],
        cwd=data,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not (data / "started-b.txt").exists():
            assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
            assert time.monotonic() < deadline, "the slow job never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    suite = ET.parse(junit).getroot()
    assert counts(suite) == {"tests": 3, "failures": 0, "errors": 2, "skipped": 0}
    outcomes = outcomes_of(suite)
    assert outcomes == {
        "quick": [],
        "slow": [("error", "Cancelled")],
        "last": [("error", "Cancelled")],
    }
    assert suite.findtext("system-err", "").startswith("stopped:")
    assert_ant_schema_layout(suite)


def test_the_cpu_time_jobs_used_is_a_property_and_a_note_on_each_line() -> None:
    """Neither JUnit schema lets a testcase carry it: the suite's properties and
    system-out do."""
    report = make_report(
        job("first", result={"lines": 12}, resources=Resources(cpu_s=0.25, max_rss_kb=10)),
        job(
            "bad",
            "failed",
            error=error("CommandFailed", "exit status 1"),
            resources=Resources(cpu_s=1.5),
        ),
        job("unmeasured", result={"lines": 1}),
        job("old", result={"lines": 2}, reused=True, resources=Resources(cpu_s=100.0)),
        job("never", "skipped", error=error("DependencyFailed", "dependency 'bad' failed")),
    )
    suite = parse(junit_xml(report))
    assert_ant_schema_layout(suite)
    properties = {prop.attrib["name"]: prop.attrib["value"] for prop in suite.iter("property")}
    assert properties["cpu_s"] == "1.75", "the jobs that ran in this run"
    assert suite.findtext("system-out") == (
        'first: {"lines": 12} [cpu 0.25 s]\n'
        "bad: failed [cpu 1.5 s]\n"
        'unmeasured: {"lines": 1}\n'
        'old: {"lines": 2} [cpu 100 s]\n'
    )


def test_a_report_without_resources_has_no_cpu_property() -> None:
    suite = parse(junit_xml(make_report(job("first", result={"lines": 12}))))
    assert "cpu_s" not in {prop.attrib["name"] for prop in suite.iter("property")}
