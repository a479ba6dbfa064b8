"""What ``run --resume`` would do with each job, and why (``asyncbatch plan``): from
the journal beside the report and a ``stat`` of each input, without reading one.

A job is reused exactly when ``--resume`` reuses it: its last recorded success has
the fingerprint the job has now (name, action, params, resolved input, its size and
modification time, the asyncbatch version), the outputs it declares are as that
success left them, and nothing it depends on runs. Otherwise it runs, for the first
reason that applies: ``cannot run`` (refused before starting: unknown action, a glob
that matched nothing, an input outside ``--root``), ``new job``, ``failed last time``
(its error type), ``not run last time`` (skipped or cancelled), ``action changed``,
``params changed``, ``input changed`` (what changed: its size, its modification time,
another file), ``output missing`` or ``output changed`` (which), and, for a job that
would be reused itself, ``dependency runs`` (which).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncbatch.errors import describe_error
from asyncbatch.output._fingerprints import Fingerprints, Mark
from asyncbatch.output._journal_read import read_journal
from asyncbatch.output.journal import journal_path, output_states

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig, Job

REUSE = "unchanged"
RUN_REASONS = (
    "cannot run",
    "new job",
    "failed last time",
    "not run last time",
    "action changed",
    "params changed",
    "input changed",
    "output missing",
    "output changed",
    "dependency runs",
)
"""Why a job runs, in the order they are looked for."""
_STATUS_CODES = {"succeeded": 0, "failed": 1, "skipped": 2, "cancelled": 3}


@dataclass(frozen=True, slots=True)
class Decision:
    """One job's fate in a resumed run."""

    name: str
    decision: str
    """``"run"`` or ``"reuse"``."""
    reason: str
    """One of :data:`RUN_REASONS`, or ``"unchanged"`` for a job reused."""
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "decision": self.decision,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(slots=True)
class _Last:
    """What the journal says of one job: its last entry's status (and error type),
    and its last success with a fingerprint (the one ``--resume`` reuses)."""

    status: str
    error_type: str | None
    success: tuple[str, Any, Any, str] | None = None
    """(digest, basis or None, outputs or None, action)."""


class ResumePlan:
    """The decisions for the jobs of a config, in config order; see the module doc."""

    def __init__(self, jobs: Sequence[Job], decisions: list[Decision], warnings: list[str]):
        self.jobs = jobs
        self.decisions = decisions
        self.warnings = warnings

    @property
    def reused(self) -> int:
        return sum(1 for decision in self.decisions if decision.decision == "reuse")

    def counts(self) -> dict[str, int]:
        """Jobs by reason, reused first, then the reasons to run in their order."""
        counted = dict.fromkeys((REUSE, *RUN_REASONS), 0)
        for decision in self.decisions:
            counted[decision.reason] += 1
        return {reason: count for reason, count in counted.items() if count}

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_jobs": len(self.decisions),
            "reuse": self.reused,
            "run": len(self.decisions) - self.reused,
            "jobs": [decision.to_dict() for decision in self.decisions],
        }


def plan_resume(config: BatchConfig, report: Path, *, root: str | None = None) -> ResumePlan:
    """What ``run CONFIG -o REPORT --resume`` would do with each job of ``config``
    now; ``root`` (a real path) confines the ``stat`` of inputs as the run would."""
    history, warnings = load_history(journal_path(report))
    fingerprints = Fingerprints(root)
    own = [_own(job, history.get(job.name), fingerprints) for job in config.jobs]
    return ResumePlan(config.jobs, _with_dependencies(config.jobs, own), warnings)


def load_history(path: Path) -> tuple[dict[str, _Last], list[str]]:
    """For each job the journal at ``path`` names: see :class:`_Last`."""
    from asyncbatch.output._journal_read import recorded_success

    history: dict[str, _Last] = {}

    def collect(entry: Any, start: int, length: int) -> None:
        found = recorded_success(entry)  # raises ValueError for what is no entry
        job = entry["job"]
        error = job.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        status = sys.intern(job["status"])
        last = history.get(job["name"])
        if last is None:
            last = history[job["name"]] = _Last(status, kind)
        else:
            last.status, last.error_type = status, kind
        if found is not None:
            action = sys.intern(str(job.get("action")))
            last.success = (found[1].hex(), entry.get("basis"), entry.get("outputs"), action)

    return history, read_journal(path, collect)


def _own(job: Job, last: _Last | None, fingerprints: Fingerprints) -> Decision:
    """The job's decision from its own history, before its dependencies count."""
    if job.start_error is not None:
        error = describe_error(job.start_error)
        return Decision(job.name, "run", "cannot run", f"{error['type']}: {error['message']}")
    mark = fingerprints.mark(job)
    success = last.success if last is not None else None
    if success is not None and mark is not None and success[0] == mark.digest:
        outputs = job.outputs()
        if outputs and output_states(outputs) != success[2]:
            reason, output = _output_change(outputs, success[2])
            shown = os.path.relpath(output, job.config_dir) if output else ""
            shown = output if shown.startswith("..") else shown
            return Decision(job.name, "run", reason, shown)
        return Decision(job.name, "reuse", REUSE)
    if last is None:
        return Decision(job.name, "run", "new job")
    if last.status != "succeeded" or success is None:
        if last.status == "failed":
            return Decision(job.name, "run", "failed last time", last.error_type or "")
        return Decision(job.name, "run", "not run last time", last.status)
    return Decision(job.name, "run", *_what_changed(job, success, mark))


def _what_changed(
    job: Job, success: tuple[str, Any, Any, str], mark: Mark | None
) -> tuple[str, str]:
    """Why a recorded success no longer matches the job: the first difference."""
    _, basis, _, action = success
    if action != job.action:
        return "action changed", f"{action} -> {job.action}"
    if mark is None:
        return "input changed", "it cannot be read now"
    if not (isinstance(basis, list) and len(basis) == len(mark.basis)):
        return "input changed", "or its params: recorded without details by an earlier version"
    path, size, mtime, params, version = basis
    if version != mark.basis[4]:
        return "action changed", f"asyncbatch {version} -> {mark.basis[4]}"
    if params != mark.basis[3]:
        return "params changed", ""
    if path != mark.basis[0]:
        return "input changed", f"now {mark.basis[0]}"
    if size != mark.basis[1]:
        return "input changed", f"size {_count(size)} -> {_count(mark.basis[1])} bytes"
    if mtime != mark.basis[2]:
        return "input changed", "modification time"
    return "input changed", ""


def _output_change(outputs: list[str], recorded: Any) -> tuple[str, str]:
    """Which declared output is missing, or not as its job left it."""
    states = {item[0]: item[1:] for item in (recorded or []) if isinstance(item, list) and item}
    for output in outputs:
        try:
            info = os.stat(output)
        except OSError:
            return "output missing", output
        if states.get(output) != [info.st_size, info.st_mtime_ns]:
            return "output changed", output
    return "output changed", ""


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _with_dependencies(jobs: Sequence[Job], own: list[Decision]) -> list[Decision]:
    """``own`` with every job that would be reused but depends on a job that runs
    (through groups too) turned into ``dependency runs``, dependencies first."""
    members: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        members.setdefault(job.group, []).append(index)
    index_of = {job.name: index for index, job in enumerate(jobs)}
    waits_for: list[list[int]] = []
    dependents: list[list[int]] = [[] for _ in jobs]
    for index, job in enumerate(jobs):
        needed = list(dict.fromkeys(_named(job.depends_on, index_of, members)))
        waits_for.append(needed)
        for dependency in needed:
            dependents[dependency].append(index)
    decided = list(own)
    for index in _dependencies_first(waits_for, dependents):
        if decided[index].decision != "reuse":
            continue
        running = next((d for d in waits_for[index] if decided[d].decision == "run"), None)
        if running is not None:
            decided[index] = Decision(
                jobs[index].name, "run", "dependency runs", jobs[running].name
            )
    return decided


def _named(
    names: Sequence[str], index_of: dict[str, int], members: dict[str, list[int]]
) -> Iterator[int]:
    for name in names:  # a config job's name (a glob's: all its matches), or a match's
        if name in members:
            yield from members[name]
        elif name in index_of:
            yield index_of[name]


def _dependencies_first(waits_for: list[list[int]], dependents: list[list[int]]) -> list[int]:
    """The jobs in an order where each comes after all it waits for (the config's
    dependencies have no cycle: the loader refused any)."""
    waiting = [len(needed) for needed in waits_for]
    ready = deque(index for index, count in enumerate(waiting) if count == 0)
    order = []
    while ready:
        index = ready.popleft()
        order.append(index)
        for dependent in dependents[index]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    return order
