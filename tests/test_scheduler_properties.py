"""Properties of the scheduler over random batches, checked on real runs.

Hypothesis draws a batch: a random DAG of jobs (each may depend on earlier ones),
named limits, jobs that fail a number of attempts before they succeed (or, for
small-file kernel jobs, fail outright in their batch thread), retries (with no
backoff delay), ``max_concurrency`` and ``max_failures``. Each batch runs through
``run_batch`` with the local executor, and the report and what the actions saw must
satisfy the scheduler's contract: every job ends exactly once, in config order in
the report; never more than ``max_concurrency`` attempts run at once, never more
than a limit's size hold it; a job starts only once everything it depends on has
succeeded; at most ``max_failures`` jobs fail; a skipped job names a dependency
that did not succeed; ``attempts`` never exceeds ``retries + 1``; and, when nothing
halted the run, each job's fate is exactly what its plan says.

No slot leaks: after every other job has ended, groups of sentinel jobs must run
all at once, one group per limit as large as the limit (and one as large as
``max_concurrency``): a slot that was never given back leaves a group one short,
and the run never ends (``fail_after`` catches that).

The examples are derandomized (the same ones every run: CI-stable) and bounded so
the module runs in a few seconds.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import HANG

from asyncbatch import load_config, run_batch
from asyncbatch.engine import Backoff, LocalExecutor
from asyncbatch.kernel import Kernel, Tuning
from asyncbatch.model import JobResult, Report
from asyncbatch.registry import ActionRegistry, ActionSpec

pytestmark = pytest.mark.slow

LIMITS = ("disk", "net", "gpu")
SENTINEL_RETRIES = 1000
"""A sentinel fails (and is retried at once, holding no slot between attempts) until
every other job has ended."""


@dataclass(frozen=True)
class JobPlan:
    deps: tuple[int, ...]
    limits: tuple[str, ...]
    failures: int
    """Attempts that fail before one succeeds (a kernel job: 0 succeeds, else fails)."""
    retries: int
    yields: int
    kernel: bool


@dataclass(frozen=True)
class Plan:
    jobs: tuple[JobPlan, ...]
    limits: Mapping[str, int]
    max_concurrency: int
    max_failures: int | None


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    limits = draw(st.dictionaries(st.sampled_from(LIMITS), st.integers(1, 3), max_size=3))
    count = draw(st.integers(1, 12))
    jobs = []
    for index in range(count):
        deps = draw(st.lists(st.integers(0, index - 1), unique=True, max_size=3)) if index else []
        names = sorted(limits)
        needs = draw(st.lists(st.sampled_from(names), unique=True, max_size=2)) if names else []
        kernel = draw(st.booleans())
        jobs.append(
            JobPlan(
                deps=tuple(deps),
                limits=tuple(needs),
                failures=draw(st.integers(0, 1) if kernel else st.integers(0, 3)),
                retries=draw(st.integers(0, 1)),
                yields=draw(st.integers(0, 2)),
                kernel=kernel,
            )
        )
    return Plan(
        jobs=tuple(jobs),
        limits=limits,
        max_concurrency=draw(st.integers(1, 5)),
        max_failures=draw(st.none() | st.integers(1, 2)),
    )


@dataclass
class Observed:
    """What the actions and scans saw, under one lock (scans run in threads)."""

    limits: Mapping[str, int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: int = 0
    peak: int = 0
    running_in: Counter[str] = field(default_factory=Counter)
    peak_in: Counter[str] = field(default_factory=Counter)
    started: Counter[str] = field(default_factory=Counter)
    done: list[JobResult] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    early: list[str] = field(default_factory=list)
    """Jobs that started before all their dependencies had succeeded."""

    def enter(self, name: str, limits: list[str], deps: list[str]) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            for limit in limits:
                self.running_in[limit] += 1
                self.peak_in[limit] = max(self.peak_in[limit], self.running_in[limit])
            self.started[name] += 1
            if any(self.status.get(dep) != "succeeded" for dep in deps):
                self.early.append(name)

    def leave(self, limits: list[str]) -> None:
        with self.lock:
            self.running -= 1
            for limit in limits:
                self.running_in[limit] -= 1

    def on_job_done(self, result: JobResult) -> None:
        with self.lock:
            self.done.append(result)
            self.status[result.name] = result.status


class Scan:
    """The kernel of ``scan`` jobs: counts itself in flight, fails if told to."""

    observed: Observed | None = None

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._params = params

    def update(self, data: bytes | bytearray) -> None:
        observed = Scan.observed
        assert observed is not None
        params = self._params
        observed.enter(params["name"], params["limits"], params["deps"])
        observed.leave(params["limits"])
        if params["fail"]:
            raise RuntimeError(f"{params['name']} failed in its scan")

    def result(self) -> dict[str, Any]:
        return {"scanned": True}


async def _never_awaited(path: Path, params: Any) -> dict[str, Any]:
    raise AssertionError("the local executor runs the kernel, not this")


def registry_for(observed: Observed, random_jobs: int) -> ActionRegistry:
    Scan.observed = observed
    registry = ActionRegistry(
        [ActionSpec("scan", _never_awaited, None, origin="tests", kernel=Kernel(Scan))]
    )
    sentinels_in: Counter[str] = Counter()

    @registry.action("step")
    async def step(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        """Fail the first ``failures`` attempts, yielding ``yields`` times in between."""
        name = params["name"]
        observed.enter(name, params["limits"], params["deps"])
        try:
            for _ in range(params["yields"]):
                await anyio.lowlevel.checkpoint()
        finally:
            observed.leave(params["limits"])
        if observed.started[name] <= params["failures"]:
            raise RuntimeError(f"{name}: attempt {observed.started[name]} failed")
        return {"attempts": observed.started[name]}

    @registry.action("sentinel")
    async def sentinel(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        """Wait (failing, so holding no slot) until every random job has ended, then
        run until all of its group run at once."""
        if sum(1 for result in observed.done if result.name.startswith("j")) < random_jobs:
            await anyio.sleep(0.01)  # its retries last 10 s at least, however busy the machine
            raise RuntimeError("not yet")
        group = params["group"]
        observed.enter(path.name, params["limits"], [])
        sentinels_in[group] += 1
        try:
            while sentinels_in[group] < params["size"]:
                await anyio.lowlevel.checkpoint()
        finally:
            observed.leave(params["limits"])
        return {}

    return registry


def config_jobs(plan: Plan) -> list[dict[str, Any]]:
    """The random jobs (``j0``...), then the sentinel groups, each group after the one
    before it."""
    names = [f"j{index}" for index in range(len(plan.jobs))]
    jobs: list[dict[str, Any]] = []
    for index, job in enumerate(plan.jobs):
        deps = [names[dep] for dep in job.deps]
        params: dict[str, Any] = {"name": names[index], "limits": list(job.limits), "deps": deps}
        if job.kernel:
            params["fail"] = job.failures > 0
        else:
            params |= {"failures": job.failures, "yields": job.yields}
        jobs.append(
            {
                "name": names[index],
                "action": "scan" if job.kernel else "step",
                "input": "small.txt" if job.kernel else names[index],
                "params": params,
                "depends_on": deps,
                "limits": list(job.limits),
                "retries": job.retries,
            }
        )
    groups = [("all", (), plan.max_concurrency)] + [
        (limit, (limit,), min(size, plan.max_concurrency)) for limit, size in plan.limits.items()
    ]
    previous: list[str] = []
    for group, limits, size in groups:
        members = [f"s-{group}-{i}" for i in range(size)]
        for member in members:
            jobs.append(
                {
                    "name": member,
                    "action": "sentinel",
                    "input": member,
                    "params": {"group": group, "size": size, "limits": list(limits)},
                    "depends_on": previous,
                    "limits": list(limits),
                    "retries": SENTINEL_RETRIES,
                }
            )
        previous = members
    return jobs


async def run_plan(plan: Plan, folder: Path) -> tuple[Report, Observed, list[dict[str, Any]]]:
    observed = Observed(plan.limits)
    jobs = config_jobs(plan)
    (folder / "small.txt").write_text("x", encoding="utf-8")
    path = folder / "batch.json"
    path.write_text(json.dumps({"limits": dict(plan.limits), "jobs": jobs}), encoding="utf-8")
    config = load_config(path, registry=registry_for(observed, len(plan.jobs)))
    with anyio.fail_after(HANG):
        report = await run_batch(
            config,
            max_concurrency=plan.max_concurrency,
            max_failures=plan.max_failures,
            on_job_done=observed.on_job_done,
            backoff=Backoff(start=0),
            executor=LocalExecutor(Tuning(small_file_bytes=1 << 20)),
        )
    return report, observed, jobs


SKIPPED = re.compile(r"dependency '(?P<name>.+)' (?P<status>\w+)$")


def check(plan: Plan, report: Report, observed: Observed, jobs: list[dict[str, Any]]) -> None:
    names = [job["name"] for job in jobs]
    by_name = {result.name: result for result in report.jobs}
    # Every job ends exactly once, and the report lists them in config order.
    assert [result.name for result in report.jobs] == names
    assert Counter(result.name for result in observed.done) == Counter(names)
    # Concurrency: the global limit and each named limit.
    assert observed.peak <= plan.max_concurrency
    for limit, size in plan.limits.items():
        assert observed.peak_in[limit] <= size, limit
    # Dependencies: nothing starts before all it depends on succeeded.
    assert observed.early == []
    # Failures: at most max_failures, each one the last of its attempts.
    failed = [result for result in report.jobs if result.status == "failed"]
    if plan.max_failures is not None:
        assert len(failed) <= plan.max_failures
    deps_of = {job["name"]: job["depends_on"] for job in jobs}
    for job in jobs:
        result = by_name[job["name"]]
        assert result.attempts <= job["retries"] + 1
        seen = observed.started[job["name"]]
        if result.status == "cancelled" and job["action"] == "scan":
            # A halt may cancel a scan between its start (the file opened) and its
            # first bytes: that last attempt counts, but the scan never ran.
            assert seen <= result.attempts <= seen + 1
        else:
            assert result.attempts == seen or job["action"] == "sentinel"
        if result.status == "skipped":
            assert result.error is not None
            assert result.error["type"] == "DependencyFailed"
            match = SKIPPED.search(result.error["message"])
            assert match is not None, result.error
            cause = by_name[match["name"]]
            assert cause.status != "succeeded"
            assert match["status"] == cause.status
            assert match["name"] in transitive(deps_of, job["name"])
    if report.halted is not None:
        return
    # Nothing halted: every job's fate is its plan's.
    assert not any(result.status == "cancelled" for result in report.jobs)
    for index, job_plan in enumerate(plan.jobs):
        result = by_name[f"j{index}"]
        if any(by_name[f"j{dep}"].status != "succeeded" for dep in job_plan.deps):
            assert (result.status, result.attempts) == ("skipped", 0)
        elif job_plan.failures > job_plan.retries or (job_plan.kernel and job_plan.failures):
            expected = job_plan.retries + 1
            assert (result.status, result.attempts) == ("failed", expected), result
        else:
            assert (result.status, result.attempts) == ("succeeded", job_plan.failures + 1)
    # No slot leaked: every sentinel group ran all at once.
    assert all(by_name[name].status == "succeeded" for name in names if name.startswith("s-"))


def transitive(deps_of: Mapping[str, list[str]], name: str) -> set[str]:
    found: set[str] = set()
    pending = list(deps_of[name])
    while pending:
        dep = pending.pop()
        if dep not in found:
            found.add(dep)
            pending.extend(deps_of[dep])
    return found


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(plan=plans())
def test_random_batches_keep_the_schedulers_contract(plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as folder:
        report, observed, jobs = anyio.run(run_plan, plan, Path(folder), backend="asyncio")
    check(plan, report, observed, jobs)


def test_a_run_that_halts_still_checks_out() -> None:
    """One fixed plan that halts (failures in threads and in the loop at once), so the
    halted branch is always exercised whatever examples are drawn."""
    failing = JobPlan(deps=(), limits=(), failures=1, retries=0, yields=1, kernel=False)
    scan_fails = JobPlan(deps=(), limits=(), failures=1, retries=0, yields=0, kernel=True)
    after = JobPlan(deps=(0,), limits=(), failures=0, retries=0, yields=0, kernel=False)
    plan = Plan(
        jobs=(failing, scan_fails, failing, scan_fails, after, failing),
        limits={"disk": 1},
        max_concurrency=4,
        max_failures=2,
    )
    with tempfile.TemporaryDirectory() as folder:
        report, observed, jobs = anyio.run(run_plan, plan, Path(folder), backend="asyncio")
    check(plan, report, observed, jobs)
    assert report.halted is not None
    assert report.summary.failed == 2
