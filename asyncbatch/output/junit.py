"""The JUnit XML report (``--junit PATH``), for CI systems that show test results.

One ``<testsuite>`` is the document's root; each job is a ``<testcase>`` in report
order. The layout satisfies both schemas CI readers are built around: the Apache Ant
schema (windyroad's ``JUnit.xsd``: a ``<properties>`` element first, then the test
cases, then ``<system-out>`` and ``<system-err>``; ``timestamp`` without fraction or
zone; ``hostname`` required; at most one of ``<skipped>``, ``<error>``,
``<failure>`` per test case) and Jenkins' more lenient ``junit-10.xsd``.

=========  ==========================================================
status     inside ``<testcase>``
=========  ==========================================================
succeeded  nothing; its result is a line of the suite's ``<system-out>``
failed     ``<failure type="ERROR_TYPE" message="...">`` (a command's stderr tail inside)
cancelled  ``<error type="Cancelled" message="...">``
skipped    ``<skipped message="ERROR_TYPE: message"/>``
=========  ==========================================================

The CPU time jobs used (where the report has it) is the suite's ``cpu_s`` property
(the jobs that ran, in seconds) and, per job, `` [cpu 0.25 s]`` at the end of its
line of ``<system-out>`` (a job that did not succeed gets a line for it too):
neither schema lets a ``<testcase>`` carry more than its name, class and time.

Text that XML 1.0 cannot carry (control characters such as NUL or ESC, lone
surrogates from undecodable file names) is written as a visible ``\\xNN`` or
``\\uNNNN`` escape, so the file always parses.
"""

from __future__ import annotations

import json
import os
import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC
from pathlib import Path
from typing import Any

from asyncbatch.model import JobResult, Report
from asyncbatch.output.report import write_atomically

SUITE_NAME = "asyncbatch"
RESULT_LIMIT = 1000
"""Longest result JSON shown per job in ``<system-out>``; longer is cut with '...'."""

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_xml(report: Report) -> str:
    """The JUnit XML document for ``report``, declaration included."""
    summary = report.summary
    suite = ET.Element(
        "testsuite",
        {
            "name": SUITE_NAME,
            "tests": str(summary.total_jobs),
            "failures": str(summary.failed),
            "errors": str(summary.cancelled),
            "skipped": str(summary.skipped),
            "time": _seconds(report.duration_ms),
            "timestamp": report.started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": _clean(socket.gethostname()) or "localhost",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(report):
        ET.SubElement(properties, "property", name=name, value=_clean(value))
    classname = _classname(report.config)
    results = []
    for job in report.jobs:
        _add_testcase(suite, job, classname)
        cpu = "" if job.resources is None else _cpu_note(job.resources.cpu_s)
        if job.status == "succeeded":
            results.append(f"{job.name}: {_result_text(job.result)}{cpu}")
        elif cpu:
            results.append(f"{job.name}: {job.status}{cpu}")
    ET.SubElement(suite, "system-out").text = _clean("".join(f"{line}\n" for line in results))
    ET.SubElement(suite, "system-err").text = _clean(
        f"stopped: {report.halted}\n" if report.halted else ""
    )
    ET.indent(suite)
    body = ET.tostring(suite, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def write_junit(report: Report, path: str | os.PathLike[str]) -> None:
    """Write the JUnit XML report to ``path`` atomically."""
    write_atomically(Path(path), junit_xml(report))


def _add_testcase(suite: ET.Element, job: JobResult, classname: str) -> None:
    duration_ms = job.duration_ms or 0.0
    case = ET.SubElement(
        suite,
        "testcase",
        name=_clean(job.name),
        classname=classname,
        time=_seconds(duration_ms),
    )
    error = job.error or {"type": "", "message": ""}
    kind, message = _clean(error["type"]), _clean(error["message"])
    if job.status == "failed":
        failure = ET.SubElement(case, "failure", type=kind or "ActionError", message=message)
        stderr = _stderr_of(error)  # a failed command's last output there
        failure.text = _clean(
            f"{message}\naction: {job.action}\ninput: {job.input}\nattempts: {job.attempts}\n"
            + (f"stderr (the end of it):\n{stderr}" if stderr else "")
        )
    elif job.status == "cancelled":
        cancelled = ET.SubElement(case, "error", type=kind or "Cancelled", message=message)
        cancelled.text = message
    elif job.status == "skipped":
        ET.SubElement(case, "skipped", message=f"{kind}: {message}" if kind else message)


def _properties(report: Report) -> list[tuple[str, str]]:
    from asyncbatch.model import __version__

    found = [
        ("asyncbatch_version", __version__),
        ("config", report.config),
        ("max_concurrency", str(report.max_concurrency)),
    ]
    cpu = [job.resources.cpu_s for job in report.jobs if job.resources and not job.reused]
    if any(seconds is not None for seconds in cpu):
        found.append(("cpu_s", _seconds(sum(seconds or 0.0 for seconds in cpu) * 1000)))
    return found


def _cpu_note(seconds: float | None) -> str:
    """`` [cpu 0.25 s]``: the CPU time a job used, in its line of ``<system-out>``."""
    return "" if seconds is None else f" [cpu {_seconds(seconds * 1000)} s]"


def _classname(config: str) -> str:
    """The config file's stem (``batch`` for ``ci/batch.toml``); ``asyncbatch``
    for a config read from stdin."""
    stem = _clean(Path(config).stem) if config != "-" else ""
    return stem or SUITE_NAME


def _result_text(result: dict[str, Any] | None) -> str:
    text = json.dumps(result, ensure_ascii=False, default=str)
    return text if len(text) <= RESULT_LIMIT else text[: RESULT_LIMIT - 3] + "..."


def _seconds(milliseconds: float) -> str:
    """Seconds as a plain decimal (never exponent notation), to the microsecond."""
    return f"{max(milliseconds, 0.0) / 1000:.6f}".rstrip("0").rstrip(".") or "0"


def _clean(text: str) -> str:
    """``text`` with every character XML 1.0 forbids written as a visible escape."""
    return _NOT_XML.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _stderr_of(error: dict[str, object]) -> str | None:
    """The end of a failed command's stderr: in ``details`` (or, in reports of
    earlier versions, beside the message)."""
    details = error.get("details")
    stderr = details.get("stderr") if isinstance(details, dict) else error.get("stderr")
    return stderr if isinstance(stderr, str) else None
