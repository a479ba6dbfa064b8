"""Comparing two runs as data (``asyncbatch diff OLD NEW``): yesterday's report
against today's, job by job, by name.

- new and gone jobs;
- newly failing: failed or cancelled in NEW, and succeeded in OLD or new in NEW;
- fixed: succeeded in NEW, failed or cancelled in OLD;
- changed results: succeeded in both, with a different result (old and new values);
- slower: at least ``slower`` times the old duration, among jobs that ran in NEW (not
  reused) for :data:`MIN_SLOW_MS` or more;
- retried: succeeded in NEW only after more than one attempt (not reused).

As text for people (each list capped as the end of a run is), as JSON for tools, as
an HTML page with the look of ``show --html``; ``--fail-on`` turns chosen differences
into exit 1, for CI.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncbatch.model import JobResult
from asyncbatch.output._page_assets import STYLE
from asyncbatch.output.show import SavedReport, format_ms
from asyncbatch.output.terminal import sanitize

MIN_SLOW_MS = 100.0
"""Jobs faster than this in NEW are never called slower: their times are noise."""
DEFAULT_SLOWER = 2.0
LISTED = 20
"""Names listed per kind of difference in the text; the rest are counted."""
FAIL_ON = ("new-failure", "changed", "slower")
"""What ``--fail-on`` may name."""
_FAILING = ("failed", "cancelled")


@dataclass(slots=True)
class Changed:
    name: str
    old: Any
    new: Any


@dataclass(slots=True)
class Slower:
    name: str
    old_ms: float
    new_ms: float

    @property
    def factor(self) -> float:
        return round(self.new_ms / self.old_ms, 2)


@dataclass(slots=True)
class Differences:
    """What changed from OLD to NEW; every list in NEW's order (gone jobs: OLD's)."""

    old: str
    new: str
    new_jobs: list[str] = field(default_factory=list)
    gone_jobs: list[str] = field(default_factory=list)
    new_failures: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    changed: list[Changed] = field(default_factory=list)
    slower: list[Slower] = field(default_factory=list)
    retried: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "new_jobs": self.new_jobs,
            "gone_jobs": self.gone_jobs,
            "new_failures": self.new_failures,
            "fixed": self.fixed,
            "changed": [{"name": c.name, "old": c.old, "new": c.new} for c in self.changed],
            "slower": [
                {"name": s.name, "old_ms": s.old_ms, "new_ms": s.new_ms, "factor": s.factor}
                for s in self.slower
            ],
            "retried": [{"name": name, "attempts": count} for name, count in self.retried],
        }

    def found(self, kinds: Iterable[str]) -> list[str]:
        """Those of ``kinds`` (:data:`FAIL_ON` names) that have a difference."""
        present = {
            "new-failure": bool(self.new_failures),
            "changed": bool(self.changed),
            "slower": bool(self.slower),
        }
        return [kind for kind in kinds if present[kind]]


def parse_fail_on(text: str) -> list[str]:
    """``new-failure,slower`` as a list; raise ValueError naming an unknown one."""
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [kind for kind in kinds if kind not in FAIL_ON]
    if unknown or not kinds:
        raise ValueError(
            f"unknown {', '.join(repr(k) for k in unknown) or 'nothing'} "
            f"(choose among {', '.join(FAIL_ON)})"
        )
    return kinds


def compare(old: SavedReport, new: SavedReport, *, slower: float = DEFAULT_SLOWER) -> Differences:
    """The differences from ``old`` to ``new`` (see the module doc)."""
    before = {job.name: job for job in old.jobs}
    now = {job.name for job in new.jobs}
    found = Differences(old.path, new.path)
    found.gone_jobs = [job.name for job in old.jobs if job.name not in now]
    for job in new.jobs:
        earlier = before.get(job.name)
        if earlier is None:
            found.new_jobs.append(job.name)
        if job.status in _FAILING and (earlier is None or earlier.status == "succeeded"):
            found.new_failures.append(job.name)
        if earlier is None:
            continue
        if job.status == "succeeded" and earlier.status in _FAILING:
            found.fixed.append(job.name)
        if job.status == earlier.status == "succeeded" and job.result != earlier.result:
            found.changed.append(Changed(job.name, earlier.result, job.result))
        if _slower(earlier, job, slower):
            assert earlier.duration_ms is not None
            assert job.duration_ms is not None
            found.slower.append(Slower(job.name, earlier.duration_ms, job.duration_ms))
    found.retried = [
        (job.name, job.attempts)
        for job in new.jobs
        if job.status == "succeeded" and job.attempts > 1 and not job.reused
    ]
    return found


def _slower(old: JobResult, new: JobResult, factor: float) -> bool:
    if new.reused or old.duration_ms is None or new.duration_ms is None:
        return False
    return (
        new.duration_ms >= MIN_SLOW_MS
        and old.duration_ms > 0
        and (new.duration_ms >= factor * old.duration_ms)
    )


# --- for people ----------------------------------------------------------------------------


def diff_text(found: Differences) -> str:
    """Each kind of difference with its count and the first names; ``no
    differences`` when there are none."""
    lines = [f"{found.old} -> {found.new}"]
    sections = [
        ("New jobs", found.new_jobs),
        ("Gone jobs", found.gone_jobs),
        ("Newly failing", found.new_failures),
        ("Fixed", found.fixed),
        ("Changed results", [_changed_line(c) for c in found.changed]),
        ("Slower", [_slower_line(s) for s in found.slower]),
        ("Passed only after retries", [f"{n} ({a} attempts)" for n, a in found.retried]),
    ]
    shown = False
    for title, items in sections:
        if not items:
            continue
        shown = True
        lines += ["", f"{title} ({len(items):,}):"]
        lines += [f"  {item}" for item in items[:LISTED]]
        if len(items) > LISTED:
            lines.append(f"  ... and {len(items) - LISTED:,} more")
    if not shown:
        lines.append("no differences")
    return "\n".join(sanitize(line) for line in lines) + "\n"


def _changed_line(change: Changed) -> str:
    return f"{change.name}: {_short(change.old)} -> {_short(change.new)}"


def _slower_line(slow: Slower) -> str:
    return f"{slow.name}: {format_ms(slow.old_ms)} -> {format_ms(slow.new_ms)} (x{slow.factor})"


def _short(value: Any, width: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def diff_json(found: Differences) -> str:
    return json.dumps(found.to_dict(), indent=2) + "\n"


def diff_page(found: Differences) -> str:
    """One self-contained HTML page (the look of ``show --html``): a table per kind of
    difference, every entry listed."""
    title = _escape(f"asyncbatch diff: {found.old} -> {found.new}")
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1>asyncbatch diff</h1>\n<p class="meta">{_escape(found.old)} &rarr; '
        f"{_escape(found.new)}</p>\n"
    ]
    counts = found.to_dict()
    parts.append(
        '<table class="summary"><tr>'
        + "".join(f"<th>{_escape(key.replace('_', ' '))}</th>" for key in counts)
        + "</tr><tr>"
        + "".join(f"<td>{len(value):,}</td>" for value in counts.values())
        + "</tr></table>\n"
    )
    parts.append(_names_html("New jobs", found.new_jobs))
    parts.append(_names_html("Gone jobs", found.gone_jobs))
    parts.append(_names_html("Newly failing", found.new_failures))
    parts.append(_names_html("Fixed", found.fixed))
    parts.append(
        _rows_html(
            "Changed results",
            ("name", "old", "new"),
            ([c.name, _short(c.old, 400), _short(c.new, 400)] for c in found.changed),
        )
    )
    parts.append(
        _rows_html(
            "Slower",
            ("name", "old", "new", "factor"),
            (
                [s.name, format_ms(s.old_ms), format_ms(s.new_ms), f"x{s.factor}"]
                for s in found.slower
            ),
        )
    )
    parts.append(
        _rows_html(
            "Passed only after retries",
            ("name", "attempts"),
            ([name, str(count)] for name, count in found.retried),
        )
    )
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _names_html(title: str, names: Sequence[str]) -> str:
    return _rows_html(title, ("name",), ([name] for name in names))


def _rows_html(title: str, columns: Sequence[str], rows: Iterable[list[str]]) -> str:
    body = "".join(
        "<tr>" + "".join(f"<td>{_escape(cell)}</td>" for cell in row) + "</tr>\n" for row in rows
    )
    if not body:
        return ""
    head = "".join(f"<th>{_escape(column)}</th>" for column in columns)
    return f"<h2>{_escape(title)}</h2>\n<table>\n<tr>{head}</tr>\n{body}</table>\n"


def _escape(text: str) -> str:
    return html.escape(sanitize(text), quote=True)
