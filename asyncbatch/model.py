"""The domain's nouns: what happened to each job (:class:`JobResult`), the counts
(:class:`Summary`) and the whole run (:class:`Report`), with the report's exact JSON
encoding.

Below everything that produces or presents them: the engine builds them, the
output package writes and shows them, the session hands them to the command line.
Imports only the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any, Literal

from asyncbatch._version import __version__

__all__ = [
    "STATUSES",
    "JobResult",
    "Measured",
    "Report",
    "Resources",
    "Status",
    "Summary",
    "__version__",
    "now",
]

Status = Literal["succeeded", "failed", "skipped", "cancelled"]
STATUSES: tuple[Status, ...] = ("succeeded", "failed", "skipped", "cancelled")


@dataclass(slots=True)
class Resources:
    """What a job's work used, as far as it could be measured (None: not known)."""

    cpu_s: float | None = None
    """CPU seconds, user and system."""
    max_rss_kb: int | None = None
    """Peak resident memory of the program, in kilobytes as the kernel reports it."""
    read_bytes: int | None = None
    """Bytes of input read."""
    write_bytes: int | None = None
    """Bytes written."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_s": self.cpu_s,
            "max_rss_kb": self.max_rss_kb,
            "read_bytes": self.read_bytes,
            "write_bytes": self.write_bytes,
        }


@dataclass(frozen=True, slots=True)
class Measured:
    """An action's result with what its work used: what an awaited action returns
    when it can say (the ``command`` action: its program's ``os.wait4`` usage). An
    exception it raises may carry a ``resources`` attribute the same way, for a
    failed attempt."""

    result: dict[str, Any]
    resources: Resources


def measured(value: Any) -> tuple[Any, Resources]:
    """An action's return value as ``(result, resources)``: a :class:`Measured`
    unwrapped, anything else with nothing measured."""
    if isinstance(value, Measured):
        return value.result, value.resources
    return value, Resources()


def resources_of(error: BaseException) -> Resources | None:
    """What a failed attempt used, when its exception says (``error.resources``)."""
    found = getattr(error, "resources", None)
    return found if isinstance(found, Resources) else None


@dataclass(slots=True)
class JobResult:
    """What happened to one job; ``error`` is ``{"type", "message"}`` (a failed
    command's adds ``"details"``: its exit code or signal and its output) or None."""

    name: str
    action: str
    input: str
    status: Status
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    attempts: int = 0
    reused: bool = False
    started_ms: float | None = None
    """Milliseconds from the run's start to the job's first start (None: it never
    started in this run), so that a timeline can be drawn."""
    resources: Resources | None = None
    """What its last attempt used (None: it never started; a reused job's, what
    the run that computed it recorded)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "input": self.input,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "reused": self.reused,
            "started_ms": self.started_ms,
            "resources": None if self.resources is None else self.resources.to_dict(),
        }


@dataclass(slots=True)
class Summary:
    """Counts by status; ``total_jobs`` is their sum."""

    total_jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0

    @classmethod
    def of(cls, jobs: list[JobResult]) -> Summary:
        summary = cls(total_jobs=len(jobs))
        for job in jobs:
            setattr(summary, job.status, getattr(summary, job.status) + 1)
        return summary

    def to_dict(self) -> dict[str, int]:
        return {
            "total_jobs": self.total_jobs,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "cancelled": self.cancelled,
        }


@dataclass(slots=True)
class Report:
    """The whole run: jobs in config order (globs expanded in place)."""

    config: str
    started_at: datetime
    finished_at: datetime
    max_concurrency: int
    jobs: list[JobResult] = field(default_factory=list)
    halted: str | None = None
    """Why the run stopped early (a halt rule, a signal), or None."""
    first_failure: str | None = None
    """Name of the job that failed first, in time."""
    halt: str | None = None
    """The ``--halt`` rule that stopped the run (``now,fail=1``), or None."""
    halted_on_success: bool = False
    """The run was stopped by a rule on successes (``--halt now,success=1``): the
    jobs it cancelled do not make the run fail."""

    @property
    def summary(self) -> Summary:
        return Summary.of(self.jobs)

    @property
    def duration_ms(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds() * 1000, 3)

    @property
    def ok(self) -> bool:
        """True when no job failed or was cancelled (exit code 0); jobs cancelled by a
        halt on success do not count."""
        bad = ("failed",) if self.halted_on_success else ("failed", "cancelled")
        return not any(job.status in bad for job in self.jobs)

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "jobs": [job.to_dict() for job in self.jobs]}

    def _head(self) -> dict[str, Any]:
        """Everything but the jobs (which come last)."""
        return {
            "asyncbatch_version": __version__,
            "config": self.config,
            "started_at": _timestamp(self.started_at),
            "finished_at": _timestamp(self.finished_at),
            "duration_ms": self.duration_ms,
            "max_concurrency": self.max_concurrency,
            "summary": self.summary.to_dict(),
            "halted": None if self.halted is None else {"halt": self.halt, "reason": self.halted},
        }

    def json_chunks(self) -> Iterator[str]:
        """``json.dumps(self.to_dict(), indent=2) + "\\n"``, one job at a time."""
        head = json.dumps(self._head(), indent=2)
        assert head.endswith("\n}")
        if not self.jobs:
            yield head[:-2] + ',\n  "jobs": []\n}\n'
            return
        yield head[:-2] + ',\n  "jobs": ['
        separator = "\n    "
        for job in self.jobs:
            yield separator + _indented(job.to_dict(), 2)
            separator = ",\n    "
        yield "\n  ]\n}\n"


def now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _indented(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(value, indent=2)`` writes it ``level`` levels deep:
    the same checks in the same order as the standard library's encoder, without
    its generators; what is rarer (keys that are not strings, other types) is left
    to the standard library itself."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    inner = "\n" + "  " * (level + 1)
    outer = "\n" + "  " * level
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [_indented(item, level + 1) for item in value]
        return "[" + inner + ("," + inner).join(items) + outer + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for key, item in value.items():
            if not isinstance(key, str):
                break
            scalar = _SCALARS.get(type(item))
            text = scalar(item) if scalar is not None else _indented(item, level + 1)
            parts.append(encode_basestring_ascii(key) + ": " + text)
        else:
            return "{" + inner + ("," + inner).join(parts) + outer + "}"
    return json.dumps(value, indent=2).replace("\n", outer)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


_SCALARS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    float: _float,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
}
"""How the values of exactly these types are written (a shortcut of :func:`_indented`)."""
