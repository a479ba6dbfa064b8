"""Properties of the scheduler over random batches, checked on real runs.

Hypothesis draws a batch: a random DAG of jobs (each may depend on earlier ones),
named limits taken by weight, jobs taking one or more of the run's slots, jobs that
fail a number of attempts before they succeed (or, for small-file kernel jobs, fail
outright in their batch thread), retries (with no backoff delay),
``max_concurrency`` and a halt rule (now or soon, on failures or successes). Each
batch runs through ``run_batch`` with the local executor, and the report and what
the actions saw must satisfy the scheduler's contract: every job ends exactly once,
in config order in the report; the slots of the attempts running at once never add
up to more than ``max_concurrency``, nor their weights in a limit to more than its
size; a job starts only once everything it depends on has succeeded; a halt now
leaves at most its count of failed jobs; after a halt no job starts, and a halt soon
lets the jobs running finish as they would have; a skipped job names a dependency
that did not succeed; ``attempts`` never exceeds ``retries + 1``; and, when nothing
halted the run, each job's fate is exactly what its plan says.

A heavy job (more than one slot of a pool) is never starved by the jobs behind it:
on :class:`ReadyJobs` alone, with every job ready at once and running for a random
number of ticks, each heavy job starts within a bound of the last start of the jobs
before it, never depending on how many come after.

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
from asyncbatch.controls import Halt
from asyncbatch.engine import Backoff, LocalExecutor
from asyncbatch.engine._limits import ReadyJobs, needs_of
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
    limits: tuple[tuple[str, int], ...]
    """The named limits it takes, and how many slots of each."""
    failures: int
    """Attempts that fail before one succeeds (a kernel job: 0 succeeds, else fails)."""
    retries: int
    yields: int
    kernel: bool
    slots: int = 1


@dataclass(frozen=True)
class Plan:
    jobs: tuple[JobPlan, ...]
    limits: Mapping[str, int]
    max_concurrency: int
    halt: Halt | None


HALTS = st.none() | st.builds(
    Halt, st.sampled_from(["now", "soon"]), st.sampled_from(["fail", "success"]), st.integers(1, 3)
)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    limits = draw(st.dictionaries(st.sampled_from(LIMITS), st.integers(1, 3), max_size=3))
    max_concurrency = draw(st.integers(1, 5))
    count = draw(st.integers(1, 12))
    jobs = []
    for index in range(count):
        deps = draw(st.lists(st.integers(0, index - 1), unique=True, max_size=3)) if index else []
        names = sorted(limits)
        needs = draw(st.lists(st.sampled_from(names), unique=True, max_size=2)) if names else []
        weights = tuple((name, draw(st.integers(1, limits[name]))) for name in needs)
        kernel = draw(st.booleans())
        jobs.append(
            JobPlan(
                deps=tuple(deps),
                limits=weights,
                failures=draw(st.integers(0, 1) if kernel else st.integers(0, 3)),
                retries=draw(st.integers(0, 1)),
                yields=draw(st.integers(0, 2)),
                kernel=kernel,
                slots=draw(
                    st.sampled_from([1, 1, max_concurrency, draw(st.integers(1, max_concurrency))])
                ),
            )
        )
    return Plan(jobs=tuple(jobs), limits=limits, max_concurrency=max_concurrency, halt=draw(HALTS))


@dataclass
class Observed:
    """What the actions and scans saw, under one lock (scans run in threads), and
    when the run should halt by its rule (counted from the results heard)."""

    limits: Mapping[str, int]
    halt: Halt | None = None
    total: int = 0
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
    steps_running: set[str] = field(default_factory=set)
    halted: bool = False
    running_at_halt: set[str] = field(default_factory=set)
    """The steps (awaited jobs) running when the run halted."""
    late: list[str] = field(default_factory=list)
    """Steps that started after the run halted."""

    def enter(
        self, name: str, limits: Mapping[str, int], deps: list[str], slots: int, step: bool
    ) -> None:
        with self.lock:
            self.running += slots
            self.peak = max(self.peak, self.running)
            for limit, weight in limits.items():
                self.running_in[limit] += weight
                self.peak_in[limit] = max(self.peak_in[limit], self.running_in[limit])
            self.started[name] += 1
            if any(self.status.get(dep) != "succeeded" for dep in deps):
                self.early.append(name)
            if step:
                self.steps_running.add(name)
                if self.halted:
                    self.late.append(name)

    def leave(self, name: str, limits: Mapping[str, int], slots: int) -> None:
        with self.lock:
            self.running -= slots
            for limit, weight in limits.items():
                self.running_in[limit] -= weight
            self.steps_running.discard(name)

    def on_job_done(self, result: JobResult) -> None:
        with self.lock:
            self.done.append(result)
            self.status[result.name] = result.status
            halt = self.halt
            if halt is None or self.halted or len(self.done) == self.total:
                return
            on = "fail" if halt.on == "fail" else "succeeded"
            wanted = "failed" if on == "fail" else "succeeded"
            if result.status != wanted:
                return
            count = sum(1 for done in self.done if done.status == wanted)
            if count >= halt.threshold(self.total):
                self.halted = True
                self.running_at_halt = set(self.steps_running)


class Scan:
    """The kernel of ``scan`` jobs: counts itself in flight, fails if told to."""

    observed: Observed | None = None

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._params = params

    def update(self, data: bytes | bytearray) -> None:
        observed = Scan.observed
        assert observed is not None
        params = self._params
        observed.enter(params["name"], params["limits"], params["deps"], params["slots"], False)
        observed.leave(params["name"], params["limits"], params["slots"])
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
        observed.enter(name, params["limits"], params["deps"], params["slots"], True)
        try:
            for _ in range(params["yields"]):
                await anyio.lowlevel.checkpoint()
        finally:
            observed.leave(name, params["limits"], params["slots"])
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
        observed.enter(path.name, params["limits"], [], 1, False)
        sentinels_in[group] += 1
        try:
            while sentinels_in[group] < params["size"]:
                await anyio.lowlevel.checkpoint()
        finally:
            observed.leave(path.name, params["limits"], 1)
        return {}

    return registry


def config_jobs(plan: Plan) -> list[dict[str, Any]]:
    """The random jobs (``j0``...), then the sentinel groups, each group after the one
    before it."""
    names = [f"j{index}" for index in range(len(plan.jobs))]
    jobs: list[dict[str, Any]] = []
    for index, job in enumerate(plan.jobs):
        deps = [names[dep] for dep in job.deps]
        limits = dict(job.limits)
        params: dict[str, Any] = {
            "name": names[index],
            "limits": limits,
            "deps": deps,
            "slots": job.slots,
        }
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
                "limits": limits,
                "retries": job.retries,
                "slots": job.slots,
            }
        )
    groups = [("all", (), plan.max_concurrency)] + [
        (limit, (limit,), min(size, plan.max_concurrency)) for limit, size in plan.limits.items()
    ]
    previous: list[str] = []
    for group, pools, size in groups:
        members = [f"s-{group}-{i}" for i in range(size)]
        for member in members:
            jobs.append(
                {
                    "name": member,
                    "action": "sentinel",
                    "input": member,
                    "params": {"group": group, "size": size, "limits": dict.fromkeys(pools, 1)},
                    "depends_on": previous,
                    "limits": list(pools),
                    "retries": SENTINEL_RETRIES,
                }
            )
        previous = members
    return jobs


async def run_plan(plan: Plan, folder: Path) -> tuple[Report, Observed, list[dict[str, Any]]]:
    jobs = config_jobs(plan)
    observed = Observed(plan.limits, plan.halt, len(jobs))
    (folder / "small.txt").write_text("x", encoding="utf-8")
    path = folder / "batch.json"
    path.write_text(json.dumps({"limits": dict(plan.limits), "jobs": jobs}), encoding="utf-8")
    config = load_config(path, registry=registry_for(observed, len(plan.jobs)))
    with anyio.fail_after(HANG):
        report = await run_batch(
            config,
            max_concurrency=plan.max_concurrency,
            halt=plan.halt,
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
    # Concurrency: the run's slots and each named limit, by weight.
    assert observed.peak <= plan.max_concurrency
    for limit, size in plan.limits.items():
        assert observed.peak_in[limit] <= size, limit
    # Dependencies: nothing starts before all it depends on succeeded.
    assert observed.early == []
    # Halting: when the rule says, as the rule says.
    halt = plan.halt
    assert report.halt == (str(halt) if observed.halted else None)
    assert observed.late == []  # nothing starts after a halt
    failed = [result for result in report.jobs if result.status == "failed"]
    if halt is not None and halt.when == "now" and halt.on == "fail":
        assert len(failed) <= halt.threshold(len(jobs))
    if halt is not None and halt.when == "soon":
        for name in observed.running_at_halt:  # they finished as they would have
            assert by_name[name].status in ("succeeded", "failed"), by_name[name]
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


def run_checked(plan: Plan) -> Report:
    with tempfile.TemporaryDirectory() as folder:
        report, observed, jobs = anyio.run(run_plan, plan, Path(folder), backend="asyncio")
    check(plan, report, observed, jobs)
    return report


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
        halt=Halt.failures(2),
    )
    report = run_checked(plan)
    assert report.halted is not None
    assert report.summary.failed == 2


def test_a_run_that_halts_soon_with_heavy_jobs_still_checks_out() -> None:
    """A fixed plan that halts soon while weighted jobs run (one of them fails after
    the halt: for good, not retried), and the same halting on success: both
    branches, whatever examples are drawn."""
    slow = JobPlan(deps=(), limits=(("gpu", 2),), failures=0, retries=0, yields=2, kernel=False)
    flaky = JobPlan(deps=(), limits=(), failures=1, retries=1, yields=2, kernel=False)
    failing = JobPlan(deps=(), limits=(), failures=1, retries=0, yields=0, kernel=False)
    heavy = JobPlan(deps=(), limits=(), failures=0, retries=0, yields=1, kernel=False, slots=2)
    jobs = (slow, flaky, failing, heavy, failing, heavy)
    soon = run_checked(Plan(jobs, {"gpu": 2}, max_concurrency=4, halt=Halt.parse("soon,fail=1")))
    assert soon.halt == "soon,fail=1"
    assert [job.status for job in soon.jobs[:3]] == ["succeeded", "failed", "failed"]
    success = Plan(jobs, {"gpu": 2}, max_concurrency=4, halt=Halt.parse("now,success=1"))
    assert run_checked(success).halt == "now,success=1"


# --- no heavy job starves ----------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    capacity: tuple[int, ...]
    """Pool 0 is the run's slots, the others named limits."""
    needs: tuple[tuple[tuple[int, int], ...], ...]
    ticks: tuple[int, ...]
    """How many ticks each job runs."""


@st.composite
def loads(draw: st.DrawFn) -> Load:
    capacity = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    pools = {f"p{number}": number for number in range(1, len(capacity))}
    count = draw(st.integers(1, 40))
    needs, ticks = [], []
    light = st.just(1)
    for _ in range(count):
        # Mostly light jobs, so that a heavy one has many behind it.
        slots = draw(light | light | light | st.integers(1, capacity[0]))
        named = draw(st.lists(st.sampled_from(sorted(pools)), unique=True)) if pools else []
        weights = {
            name: draw(light | light | st.integers(1, capacity[pools[name]])) for name in named
        }
        needs.append(needs_of(slots, weights, pools))
        ticks.append(draw(st.integers(1, 4)))
    return Load(capacity, tuple(needs), tuple(ticks))


def simulate(load: Load) -> list[int]:
    """Every job ready at tick 0; at each tick the jobs whose time is up give their
    slots back, then ready jobs are taken while any can start. The tick each job
    started at; the pools never hold more than their size."""
    ready = ReadyJobs(load.capacity, load.needs)
    for index in range(len(load.needs)):
        ready.push(index)
    started: dict[int, int] = {}
    ends: dict[int, list[int]] = {}
    tick = 0
    while len(started) < len(load.needs):
        for ended in ends.pop(tick, []):
            ready.release(ended)
        while (taken := ready.take()) is not None:
            started[taken] = tick
            ends.setdefault(tick + load.ticks[taken], []).append(taken)
        assert all(used <= size for used, size in zip(ready.in_use, load.capacity, strict=True))
        tick += 1
        assert tick < 10_000, "deadlock"
    return [started[index] for index in range(len(load.needs))]


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(load=loads())
def test_a_heavy_job_waits_for_the_jobs_before_it_never_for_those_after(load: Load) -> None:
    """Once every job before it has started, a heavy job starts within ``(P + 1) *
    D`` ticks (``P`` its pools, ``D`` the longest job), however many jobs come after
    it: each pool it lacks is kept for it, and fills within one round of the jobs
    holding it."""
    started = simulate(load)
    longest = max(load.ticks)
    for index, needs in enumerate(load.needs):
        if any(count > 1 for _, count in needs):
            before = max(started[:index], default=0)
            assert started[index] <= before + (len(needs) + 1) * longest, index


def test_a_heavy_job_behind_many_light_ones_is_not_starved() -> None:
    """The case the rule is for: without it, the heavy job would start last."""
    light, heavy = needs_of(1, {}, {}), needs_of(2, {}, {})
    needs = (light, heavy, *(light,) * 60)
    started = simulate(Load((2,), needs, (3, 1, *(2, 3) * 30)))  # the light ones end apart
    assert started[1] <= 3
