"""Execution control: retries and backoff, halting (fail-fast, max failures), named
limits, ``--only``, and signals (SIGINT, SIGTERM) on a real subprocess.

In-process tests use a registry of their own (a seam, not a mock) whose actions
record what they see in a :class:`Probe`. Nothing here asserts wall-clock time:
order is proved with events and counters, and "does not hang" is a generous
``fail_after`` or subprocess timeout. Durations are only checked against lower
bounds that follow from the code's own logic (an attempt that sleeps 50 ms takes
at least 50 ms).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from typer.testing import CliRunner, Result

import asyncbatch.runner
from asyncbatch.cli import app
from asyncbatch.config import BatchConfig, load_config, select_jobs
from asyncbatch.errors import ConfigError
from asyncbatch.engine._limits import ReadyJobs
from asyncbatch.registry import ActionRegistry
from asyncbatch.output.report import JobResult, Report
from asyncbatch.engine import _Scheduler, run_batch

pytestmark = pytest.mark.anyio

HANG = 10
"""Generous bound on anything that must not hang (seconds)."""

SUBPROCESS_START = 20
"""Deadline for a subprocess to import everything and start its jobs (seconds)."""


class Probe:
    """Test actions and what they observed. A job's input doubles as its identity
    (``path.name``); actions that use named limits list them in ``params["limits"]``
    so the probe can count slots in use."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.running_in: dict[str, int] = defaultdict(int)
        self.peak_in: dict[str, int] = defaultdict(int)
        self.started: list[str] = []
        self.finished: list[str] = []
        self.attempts: dict[str, int] = defaultdict(int)
        self.events: dict[str, anyio.Event] = defaultdict(anyio.Event)
        self.done: list[str] = []
        """Names of jobs with a final result, in the order they got it (on_job_done)."""
        self.seen: dict[str, dict[str, Any]] = {}
        """What an action saw of the run when it started (``params["observe"]``)."""
        self.registry = ActionRegistry()
        self._register()

    def on_job_done(self, result: JobResult) -> None:
        self.done.append(result.name)

    def _enter(self, path: Path, params: dict[str, Any]) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        for limit in params.get("limits", []):
            self.running_in[limit] += 1
            self.peak_in[limit] = max(self.peak_in[limit], self.running_in[limit])
        self.attempts[path.name] += 1
        self.started.append(path.name)
        if "observe" in params:
            other = params["observe"]
            self.seen[path.name] = {
                "attempts": self.attempts[other],
                "finished": other in self.done,
            }

    def _leave(self, path: Path, params: dict[str, Any]) -> None:
        self.running -= 1
        for limit in params.get("limits", []):
            self.running_in[limit] -= 1
        self.finished.append(path.name)

    def _register(self) -> None:
        action = self.registry.action

        @action("record")
        async def record(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Count itself running; optionally wait until ``fill`` actions run at
            once, wait for an event, set an event; yield a few times."""
            self._enter(path, params)
            try:
                if "fill" in params and self.running >= params["fill"]:
                    self.events["full"].set()
                if "fill" in params:
                    await self.events["full"].wait()
                if "wait" in params:
                    await self.events[params["wait"]].wait()
                for _ in range(params.get("yields", 3)):
                    await anyio.lowlevel.checkpoint()
                if "set" in params:
                    self.events[params["set"]].set()
            finally:
                self._leave(path, params)
            return {"input": path.name}

        @action("fail")
        async def fail(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Fail, after waiting for ``params["wait"]`` and setting ``params["set"]``
            if given."""
            self._enter(path, params)
            try:
                if "wait" in params:
                    await self.events[params["wait"]].wait()
            finally:
                self._leave(path, params)
            if "set" in params:
                self.events[params["set"]].set()
            raise RuntimeError(f"{path.name} failed")

        @action("flaky")
        async def flaky(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Sleep ``params["sleep"]`` seconds if given, then fail the first
            ``params["failures"]`` attempts and succeed after that."""
            self._enter(path, params)
            try:
                if "sleep" in params:
                    await anyio.sleep(params["sleep"])
            finally:
                self._leave(path, params)
            attempt = self.attempts[path.name]
            if attempt <= params["failures"]:
                if "set" in params:
                    self.events[params["set"]].set()
                raise RuntimeError(f"attempt {attempt} failed")
            return {"attempt": attempt}

        @action("hang")
        async def hang(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Block forever on the first ``params.get("hangs", 1000)`` attempts
            (an event nobody sets: only a timeout or a halt ends it)."""
            self._enter(path, params)
            try:
                if self.attempts[path.name] <= params.get("hangs", 1000):
                    if "set" in params:
                        self.events[params["set"]].set()
                    await anyio.Event().wait()
            finally:
                self._leave(path, params)
            return {"attempt": self.attempts[path.name]}


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back off 1 ms (doubling) instead of 100 ms, to keep retry tests quick."""
    monkeypatch.setattr(asyncbatch.runner, "BACKOFF_START", 0.001)


def job(name: str, action: str = "record", **fields: Any) -> dict[str, Any]:
    """A job whose input is its own name (test actions identify themselves by it)."""
    return {"name": name, "action": action, "input": name, **fields}


def load(tmp_path: Path, probe: Probe, jobs: list[dict[str, Any]], **top: Any) -> BatchConfig:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({**top, "jobs": jobs}), encoding="utf-8")
    return load_config(path, registry=probe.registry)


async def run(config: BatchConfig, probe: Probe, **options: Any) -> Report:
    with anyio.fail_after(HANG):
        return await run_batch(config, on_job_done=probe.on_job_done, **options)


def by_name(report: Report) -> dict[str, JobResult]:
    return {result.name: result for result in report.jobs}


def outcome(result: JobResult) -> tuple[str, str | None, int]:
    """(status, error type, attempts): the part of a result most tests check."""
    return result.status, None if result.error is None else result.error["type"], result.attempts


# --- retries ---------------------------------------------------------------------------


async def test_a_job_backing_off_holds_no_slot_so_another_runs_meanwhile(
    tmp_path: Path, probe: Probe, fast_backoff: None
) -> None:
    """One slot: ``other`` starts after a's first attempt failed and before a has
    a final result, which is only possible if a's backoff left the slot free."""
    jobs = [
        job("a", "flaky", params={"failures": 1}, retries=1),
        job("other", params={"observe": "a"}),
    ]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1)
    assert probe.started == ["a", "other", "a"]
    assert probe.seen["other"] == {"attempts": 1, "finished": False}
    assert probe.done == ["other", "a"]
    assert [outcome(result) for result in report.jobs] == [
        ("succeeded", None, 2),
        ("succeeded", None, 1),
    ]
    assert report.jobs[0].result == {"attempt": 2}


@pytest.mark.parametrize(("failures", "retries"), [(0, 3), (1, 3), (3, 3), (2, 5)])
async def test_a_job_that_succeeds_within_its_retries_counts_every_attempt(
    tmp_path: Path, probe: Probe, fast_backoff: None, failures: int, retries: int
) -> None:
    jobs = [job("a", "flaky", params={"failures": failures}, retries=retries)]
    result = (await run(load(tmp_path, probe, jobs), probe)).jobs[0]
    assert outcome(result) == ("succeeded", None, failures + 1)
    assert probe.attempts["a"] == failures + 1


@pytest.mark.parametrize("retries", [0, 1, 4])
async def test_a_job_that_always_fails_makes_exactly_retries_plus_one_attempts(
    tmp_path: Path, probe: Probe, fast_backoff: None, retries: int
) -> None:
    jobs = [job("a", "fail", retries=retries)]
    result = (await run(load(tmp_path, probe, jobs), probe)).jobs[0]
    assert outcome(result) == ("failed", "ActionError", retries + 1)
    assert probe.attempts["a"] == retries + 1
    assert result.error is not None
    assert result.error["message"] == "RuntimeError: a failed"


async def test_a_timeout_on_the_first_attempt_is_retried_and_can_succeed(
    tmp_path: Path, probe: Probe, fast_backoff: None
) -> None:
    jobs = [job("a", "hang", params={"hangs": 1}, timeout=0.2, retries=1)]
    result = (await run(load(tmp_path, probe, jobs), probe)).jobs[0]
    assert outcome(result) == ("succeeded", None, 2)
    assert result.result == {"attempt": 2}
    assert result.duration_ms is not None
    assert result.duration_ms >= 200  # the first attempt ran until its 0.2 s timeout


async def test_a_job_timing_out_on_every_attempt_fails_with_timeout_after_all_of_them(
    tmp_path: Path, probe: Probe, fast_backoff: None
) -> None:
    jobs = [job("a", "hang", timeout=0.05, retries=2)]
    result = (await run(load(tmp_path, probe, jobs), probe)).jobs[0]
    assert outcome(result) == ("failed", "Timeout", 3)
    assert probe.attempts["a"] == 3


async def test_skipped_jobs_are_never_retried_and_never_started(
    tmp_path: Path, probe: Probe, fast_backoff: None
) -> None:
    jobs = [
        job("unknown", "no_such_action", retries=3),
        job("after-unknown", depends_on=["unknown"], retries=3),
        job("bad", "fail"),
        job("after-bad", depends_on=["bad"], retries=3),
    ]
    results = by_name(await run(load(tmp_path, probe, jobs), probe))
    assert outcome(results["unknown"]) == ("skipped", "UnknownAction", 0)
    assert outcome(results["after-unknown"]) == ("skipped", "DependencyFailed", 0)
    assert outcome(results["after-bad"]) == ("skipped", "DependencyFailed", 0)
    for name in ("unknown", "after-unknown", "after-bad"):
        assert results[name].duration_ms is None
    assert probe.started == ["bad"]


async def test_duration_spans_every_attempt_and_the_backoffs_between_them(
    tmp_path: Path, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three attempts of 50 ms each, and backoffs of at least 0.5 * (20 + 40) ms:
    the duration from the first start to the end is at least 180 ms."""
    monkeypatch.setattr(asyncbatch.runner, "BACKOFF_START", 0.02)
    jobs = [job("a", "flaky", params={"failures": 2, "sleep": 0.05}, retries=2)]
    result = (await run(load(tmp_path, probe, jobs), probe)).jobs[0]
    assert outcome(result) == ("succeeded", None, 3)
    assert result.duration_ms is not None
    assert result.duration_ms >= 3 * 50 + 0.5 * (20 + 40)


async def test_backoff_doubles_from_backoff_start_with_jitter_between_half_and_full(
    tmp_path: Path, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jitter factor is drawn from [0.5, 1.0] for each retry; with the factor
    pinned to 1.0 and a 30 ms start, two retries wait at least 30 + 60 ms."""
    drawn: list[tuple[float, float]] = []

    class PinnedRandom:
        @staticmethod
        def uniform(low: float, high: float) -> float:
            drawn.append((low, high))
            return high

    monkeypatch.setattr(asyncbatch.runner, "random", PinnedRandom)
    monkeypatch.setattr(asyncbatch.runner, "BACKOFF_START", 0.03)
    jobs = [job("a", "flaky", params={"failures": 2}, retries=2)]
    result = (await run(load(tmp_path, probe, jobs), probe)).jobs[0]
    assert outcome(result) == ("succeeded", None, 3)
    assert drawn == [(0.5, 1.0), (0.5, 1.0)]
    assert result.duration_ms is not None
    assert result.duration_ms >= 30 + 60


def test_backoff_constants_are_those_of_the_spec() -> None:
    assert asyncbatch.runner.BACKOFF_START == 0.1
    assert asyncbatch.runner.BACKOFF_CAP == 10.0


# --- halting -----------------------------------------------------------------------------


async def test_fail_fast_starts_nothing_after_the_first_failure_and_cancels_running_jobs(
    tmp_path: Path, probe: Probe
) -> None:
    """Two slots: ``blocked`` runs until cancelled; ``bad`` fails; the later jobs
    would be started by the freed slot if the run did not halt."""
    jobs = [
        job("blocked", "hang", params={"set": "blocked-running"}),
        job("bad", "fail"),
        *(job(f"later{i}") for i in range(4)),
    ]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=2, max_failures=1)
    assert probe.started == ["blocked", "bad"]
    results = by_name(report)
    assert outcome(results["bad"]) == ("failed", "ActionError", 1)
    assert outcome(results["blocked"]) == ("cancelled", "Cancelled", 1)
    assert results["blocked"].duration_ms is not None
    for i in range(4):
        later = results[f"later{i}"]
        assert outcome(later) == ("cancelled", "Cancelled", 0)
        assert later.duration_ms is None
        assert later.result is None
    assert report.first_failure == "bad"
    assert report.halted is not None
    assert "1 failure" in report.halted
    assert "'bad'" in report.halted
    assert report.summary.to_dict() == {
        "total_jobs": 6,
        "succeeded": 0,
        "failed": 1,
        "skipped": 0,
        "cancelled": 5,
    }
    assert not report.ok


async def test_a_job_made_ready_in_the_instant_of_the_halt_is_not_started(
    tmp_path: Path, probe: Probe
) -> None:
    """One slot: the failure frees the slot and the worker that ran it is the one
    that would take the next job; after a halt it must not start it."""
    jobs = [job("bad", "fail"), job("next", "fail"), job("last")]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, max_failures=1)
    assert probe.started == ["bad"]
    assert [outcome(result) for result in report.jobs] == [
        ("failed", "ActionError", 1),
        ("cancelled", "Cancelled", 0),
        ("cancelled", "Cancelled", 0),
    ]
    assert report.summary.failed == 1


async def test_the_cancelled_error_says_why_the_run_stopped(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("bad", "fail"), job("never")]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, max_failures=1)
    never = by_name(report)["never"]
    assert never.error is not None
    assert never.error["type"] == "Cancelled"
    assert "'bad'" in never.error["message"]


async def test_max_failures_two_halts_only_after_the_second_failure(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("bad1", "fail"),
        job("ok1"),
        job("bad2", "fail"),
        job("ok2"),
        job("ok3"),
    ]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, max_failures=2)
    assert probe.started == ["bad1", "ok1", "bad2"]
    assert [result.status for result in report.jobs] == [
        "failed",
        "succeeded",
        "failed",
        "cancelled",
        "cancelled",
    ]
    assert report.first_failure == "bad1"
    assert report.halted is not None
    assert "2 failures" in report.halted
    assert "'bad1'" in report.halted


async def test_first_failure_names_the_job_that_failed_first_in_time_not_in_config_order(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("late-bad", "fail", params={"wait": "go"}),
        job("early-bad", "fail", params={"set": "go"}),
    ]
    report = await run(load(tmp_path, probe, jobs), probe)
    assert report.first_failure == "early-bad"
    assert probe.finished == ["early-bad", "late-bad"]


async def test_a_job_waiting_to_retry_when_the_halt_comes_ends_cancelled_not_failed(
    tmp_path: Path, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backoff is made 50 s or more: only the halt can end the run in time."""
    monkeypatch.setattr(asyncbatch.runner, "BACKOFF_START", 100.0)
    jobs = [
        job("flaky", "flaky", params={"failures": 1}, retries=1),
        job("bad", "fail"),
    ]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, max_failures=1)
    results = by_name(report)
    assert outcome(results["flaky"]) == ("cancelled", "Cancelled", 1)
    assert results["flaky"].duration_ms is not None
    assert outcome(results["bad"]) == ("failed", "ActionError", 1)
    assert report.first_failure == "bad"
    assert probe.started == ["flaky", "bad"]


async def test_a_failure_being_retried_does_not_count_towards_max_failures(
    tmp_path: Path, probe: Probe, fast_backoff: None
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 2}, retries=2), job("ok")]
    report = await run(load(tmp_path, probe, jobs), probe, max_failures=1)
    assert [outcome(result) for result in report.jobs] == [
        ("succeeded", None, 3),
        ("succeeded", None, 1),
    ]
    assert report.halted is None
    assert report.first_failure is None


async def test_dependents_of_the_failed_job_are_skipped_not_cancelled(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("bad", "fail"),
        job("child", depends_on=["bad"]),
        job("grandchild", depends_on=["child"]),
        job("unrelated"),
    ]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, max_failures=1)
    results = by_name(report)
    assert outcome(results["child"]) == ("skipped", "DependencyFailed", 0)
    assert outcome(results["grandchild"]) == ("skipped", "DependencyFailed", 0)
    assert outcome(results["unrelated"]) == ("cancelled", "Cancelled", 0)
    assert results["child"].error is not None
    assert "'bad'" in results["child"].error["message"]


async def test_dependents_of_a_cancelled_job_end_cancelled(tmp_path: Path, probe: Probe) -> None:
    jobs = [
        job("blocked", "hang", params={"set": "blocked-running"}),
        job("bad", "fail", params={"wait": "blocked-running"}),
        job("after-blocked", depends_on=["blocked"]),
    ]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=2, max_failures=1)
    assert [result.status for result in report.jobs] == ["cancelled", "failed", "cancelled"]


async def test_without_max_failures_every_job_runs_despite_failures(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job(f"bad{i}", "fail") if i % 2 == 0 else job(f"ok{i}") for i in range(8)]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=2)
    assert sorted(probe.started) == sorted(j["name"] for j in jobs)
    assert report.summary.failed == 4
    assert report.summary.succeeded == 4
    assert report.summary.cancelled == 0
    assert report.halted is None
    assert report.first_failure == "bad0"


async def test_the_last_job_failing_under_fail_fast_leaves_nothing_to_cancel(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("ok"), job("bad", "fail")]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, max_failures=1)
    assert [result.status for result in report.jobs] == ["succeeded", "failed"]
    assert report.summary.cancelled == 0
    assert report.first_failure == "bad"


async def test_setting_the_stop_event_cancels_everything_unfinished(
    tmp_path: Path, probe: Probe
) -> None:
    stop = anyio.Event()
    jobs = [
        job("done"),
        job("blocked", "hang", params={"set": "blocked-running"}, depends_on=["done"]),
        job("never", depends_on=["blocked"]),
    ]
    config = load(tmp_path, probe, jobs)
    async with anyio.create_task_group() as group:

        async def stop_once_blocked() -> None:
            await probe.events["blocked-running"].wait()
            stop.set()

        group.start_soon(stop_once_blocked)
        report = await run(config, probe, stop=stop)
    assert [outcome(result) for result in report.jobs] == [
        ("succeeded", None, 1),
        ("cancelled", "Cancelled", 1),
        ("cancelled", "Cancelled", 0),
    ]
    assert report.halted == "the run was interrupted"


@pytest.mark.parametrize("bad", [0, -1])
async def test_max_failures_below_one_is_a_value_error(
    tmp_path: Path, probe: Probe, bad: int
) -> None:
    with pytest.raises(ValueError, match="max_failures"):
        await run_batch(load(tmp_path, probe, [job("a")]), max_failures=bad)
    assert probe.started == []


# --- named limits: ReadyJobs -------------------------------------------------------------


def take_all(ready: ReadyJobs) -> list[int]:
    taken = []
    while (index := ready.take()) is not None:
        taken.append(index)
    return taken


def test_ready_jobs_take_and_release_return_every_limit_to_zero() -> None:
    needs = [("disk",), ("net",), ("disk", "net"), (), ("net", "disk")]
    ready = ReadyJobs({"disk": 2, "net": 2}, needs)
    for index in range(len(needs)):
        ready.push(index)
    first = take_all(ready)
    assert first == [0, 1, 2, 3]
    assert ready.in_use == {"disk": 2, "net": 2}
    for index in first:
        ready.release(index)
    assert ready.in_use == {"disk": 0, "net": 0}
    assert take_all(ready) == [4]
    ready.release(4)
    assert ready.in_use == {"disk": 0, "net": 0}


def test_ready_jobs_are_taken_in_config_order_among_those_that_can_run() -> None:
    needs = [("disk",), (), ("disk",), ("net",), (), ("disk",)]
    ready = ReadyJobs({"disk": 1, "net": 1}, needs)
    for index in reversed(range(len(needs))):
        ready.push(index)
    assert take_all(ready) == [0, 1, 3, 4]
    ready.release(0)
    assert take_all(ready) == [2]
    ready.release(2)
    assert take_all(ready) == [5]


def test_a_ready_job_pushed_back_keeps_its_config_order_place() -> None:
    ready = ReadyJobs({}, [(), (), ()])
    ready.push(2)
    ready.push(1)
    assert ready.take() == 1
    ready.push(0)
    assert take_all(ready) == [0, 2]


def test_a_job_needing_two_limits_never_takes_one_while_the_other_is_full() -> None:
    ready = ReadyJobs({"a": 1, "b": 1}, [("b",), ("a", "b"), ("a",)])
    ready.push(0)
    assert ready.take() == 0
    ready.push(1)
    assert ready.take() is None
    assert ready.in_use == {"a": 0, "b": 1}
    ready.push(2)
    assert ready.take() == 2  # a is free: the job needing both did not hold it
    ready.release(0)
    assert ready.take() is None  # b is free now but a is not
    ready.release(2)
    assert ready.take() == 1
    assert ready.in_use == {"a": 1, "b": 1}


def test_a_limit_named_twice_by_one_job_takes_one_slot() -> None:
    ready = ReadyJobs({"disk": 2}, [("disk", "disk"), ("disk",)])
    ready.push(0)
    ready.push(1)
    assert take_all(ready) == [0, 1]
    assert ready.in_use == {"disk": 2}


def test_a_job_needing_no_limit_is_never_held_back_by_full_limits() -> None:
    ready = ReadyJobs({"disk": 1}, [("disk",), ("disk",), ()])
    for index in range(3):
        ready.push(index)
    assert take_all(ready) == [0, 2]


# --- named limits: the runner ------------------------------------------------------------


async def test_each_limits_peak_is_its_size_while_other_jobs_fill_the_global_slots(
    tmp_path: Path, probe: Probe
) -> None:
    """The first four runnable jobs wait until four actions run at once (a deadlock,
    caught by fail_after, if the scheduler did not fill every slot); the rest mix
    every combination of limits."""
    kinds: list[list[str]] = [["disk"], ["net"], ["disk", "net"], ["net", "disk"], []]
    first = [job("f-disk", limits=["disk"], params={"limits": ["disk"], "fill": 4})]
    first += [
        job(f"f-net{i}", limits=["net"], params={"limits": ["net"], "fill": 4}) for i in (1, 2)
    ]
    first += [job("f-free", params={"fill": 4})]
    rest = [
        job(f"j{i:02}", limits=kind, params={"limits": kind, "yields": 5})
        for i, kind in enumerate(kinds[i % 5] for i in range(8))
    ]
    limits = {"disk": 1, "net": 2}
    report = await run(
        load(tmp_path, probe, [*first, *rest], limits=limits), probe, max_concurrency=4
    )
    assert report.summary.succeeded == 12
    assert dict(probe.peak_in) == {"disk": 1, "net": 2}
    assert probe.peak == 4


async def test_a_limit_slot_is_released_after_failure_and_timeout_so_later_jobs_run(
    tmp_path: Path, probe: Probe
) -> None:
    disk = {"limits": ["disk"]}
    jobs = [
        job("succeeds", limits=["disk"], params=disk),
        job("fails", "fail", limits=["disk"], params=disk),
        job("times-out", "hang", limits=["disk"], params=disk, timeout=0.2),
        job("last", limits=["disk"], params=disk),
    ]
    report = await run(load(tmp_path, probe, jobs, limits={"disk": 1}), probe, max_concurrency=4)
    assert [outcome(result) for result in report.jobs] == [
        ("succeeded", None, 1),
        ("failed", "ActionError", 1),
        ("failed", "Timeout", 1),
        ("succeeded", None, 1),
    ]
    assert probe.started == ["succeeds", "fails", "times-out", "last"]
    assert probe.peak_in["disk"] == 1


async def test_a_limit_slot_is_released_when_a_running_job_is_cancelled(
    tmp_path: Path, probe: Probe
) -> None:
    """The scheduler's own bookkeeping after a halt: no slot stays taken."""
    jobs = [
        job("holder", "hang", limits=["disk", "net"], params={"set": "holding"}),
        job("bad", "fail", params={"wait": "holding"}),
        job("waiting", limits=["disk"]),
    ]
    config = load(tmp_path, probe, jobs, limits={"disk": 1, "net": 1})
    scheduler = _Scheduler(
        config,
        default_timeout=None,
        default_retries=0,
        max_failures=1,
        on_job_done=None,
        journal=None,
    )
    with anyio.fail_after(HANG):
        await scheduler.run(3, None)
    assert [result.status for result in scheduler.results()] == [
        "cancelled",
        "failed",
        "cancelled",
    ]
    assert scheduler._ready.in_use == {"disk": 0, "net": 0}


async def test_jobs_naming_limits_in_opposite_orders_never_deadlock(
    tmp_path: Path, probe: Probe
) -> None:
    orders = [["a", "b"], ["b", "a"]] * 6
    jobs = [
        job(f"j{i:02}", limits=order, params={"limits": order, "yields": 5})
        for i, order in enumerate(orders)
    ]
    report = await run(
        load(tmp_path, probe, jobs, limits={"a": 1, "b": 1}), probe, max_concurrency=4
    )
    assert report.summary.succeeded == 12
    assert dict(probe.peak_in) == {"a": 1, "b": 1}


async def test_a_job_waiting_for_a_named_slot_holds_no_global_slot(
    tmp_path: Path, probe: Probe
) -> None:
    """Two global slots, disk of size 1: d1 holds disk until free2 has run. Were d2
    holding a global slot while it waits for disk, free1 and free2 could never run
    and d1 would never be released (fail_after ends the deadlock)."""
    disk = {"limits": ["disk"]}
    jobs = [
        job("d1", limits=["disk"], params={**disk, "wait": "free2-done"}),
        job("d2", limits=["disk"], params=disk),
        job("free1"),
        job("free2", params={"set": "free2-done"}),
    ]
    report = await run(load(tmp_path, probe, jobs, limits={"disk": 1}), probe, max_concurrency=2)
    assert report.summary.succeeded == 4
    assert probe.started == ["d1", "free1", "free2", "d2"]
    assert probe.finished.index("free2") < probe.finished.index("d1")
    assert probe.peak == 2


async def test_a_limit_size_above_max_concurrency_is_bounded_by_max_concurrency(
    tmp_path: Path, probe: Probe
) -> None:
    net = {"limits": ["net"], "yields": 5}
    jobs = [job(f"n{i}", limits=["net"], params=net) for i in range(6)]
    await run(load(tmp_path, probe, jobs, limits={"net": 10}), probe, max_concurrency=3)
    assert probe.peak_in["net"] <= 3


def test_an_unknown_limit_name_is_a_located_config_error(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("a"), job("b", limits=["disk", "nett"])]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, jobs, limits={"disk": 1, "net": 2})
    assert caught.value.problems == [
        "jobs[1].limits[1]: unknown limit 'nett' (declared: disk, net)"
    ]


def test_a_limit_named_without_any_declared_is_a_config_error(tmp_path: Path, probe: Probe) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, [job("a", limits=["disk"])])
    assert caught.value.problems == ["jobs[0].limits[0]: unknown limit 'disk' (declared: none)"]


@pytest.mark.parametrize("size", [0, -1])
def test_a_limit_size_below_one_is_a_located_config_error(
    tmp_path: Path, probe: Probe, size: int
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, [job("a", limits=["disk"])], limits={"disk": size})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("limits.disk: ")
    assert "greater than or equal to 1" in caught.value.problems[0]


def test_limit_problems_are_reported_together_with_other_problems(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a", limits=["nope"]), job("b", depends_on=["ghost"])]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, jobs, limits={"disk": 0})
    problems = caught.value.problems
    assert any(problem.startswith("limits.disk: ") for problem in problems)
    assert any(
        problem.startswith("jobs[0].limits[0]: unknown limit 'nope'") for problem in problems
    )
    assert any(
        problem.startswith("jobs[1].depends_on[0]: unknown job 'ghost'") for problem in problems
    )


# --- --only: select_jobs -------------------------------------------------------------


def names(config: BatchConfig) -> list[str]:
    return [job.name for job in config.jobs]


@pytest.fixture
def chain(tmp_path: Path, probe: Probe) -> BatchConfig:
    """a <- b <- c, d alone, e <- f."""
    jobs = [
        job("a"),
        job("b", depends_on=["a"]),
        job("c", depends_on=["b"]),
        job("d"),
        job("e"),
        job("f", depends_on=["e"]),
    ]
    return load(tmp_path, probe, jobs)


def test_select_jobs_takes_a_job_and_everything_it_depends_on_transitively(
    chain: BatchConfig,
) -> None:
    assert names(select_jobs(chain, ["c"])) == ["a", "b", "c"]


def test_select_jobs_takes_no_dependents_of_a_selected_job(chain: BatchConfig) -> None:
    assert names(select_jobs(chain, ["a"])) == ["a"]


def test_select_jobs_keeps_config_order_whatever_order_the_names_come_in(
    chain: BatchConfig,
) -> None:
    assert names(select_jobs(chain, ["f", "d", "b"])) == ["a", "b", "d", "e", "f"]


def test_select_jobs_with_a_name_given_twice_selects_it_once(chain: BatchConfig) -> None:
    assert names(select_jobs(chain, ["d", "d"])) == ["d"]


def test_select_jobs_leaves_the_original_config_untouched(chain: BatchConfig) -> None:
    select_jobs(chain, ["d"])
    assert names(chain) == ["a", "b", "c", "d", "e", "f"]


def test_select_jobs_with_unknown_names_raises_one_config_error_naming_each(
    chain: BatchConfig,
) -> None:
    with pytest.raises(ConfigError) as caught:
        select_jobs(chain, ["a", "x", "ccc"])
    assert caught.value.problems[0] == "--only: unknown job 'x'"
    assert caught.value.problems[1].startswith("--only: unknown job 'ccc'")
    assert len(caught.value.problems) == 2


@pytest.fixture
def globbed(tmp_path: Path, probe: Probe) -> BatchConfig:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("a.log", "b.log", "c.log"):
        (logs / name).write_text("x\n", encoding="utf-8")
    jobs = [
        job("first"),
        {"name": "logs", "action": "record", "input": "logs/*.log"},
        job("after-logs", depends_on=["logs"]),
    ]
    return load(tmp_path, probe, jobs)


def test_select_jobs_naming_a_glob_job_selects_all_its_expansions(globbed: BatchConfig) -> None:
    assert names(select_jobs(globbed, ["logs"])) == [
        "logs[logs/a.log]",
        "logs[logs/b.log]",
        "logs[logs/c.log]",
    ]


def test_select_jobs_naming_one_expansion_selects_only_it(globbed: BatchConfig) -> None:
    assert names(select_jobs(globbed, ["logs[logs/b.log]"])) == ["logs[logs/b.log]"]


def test_select_jobs_through_a_dependency_on_a_glob_job_takes_every_expansion(
    globbed: BatchConfig,
) -> None:
    assert names(select_jobs(globbed, ["after-logs"])) == [
        "logs[logs/a.log]",
        "logs[logs/b.log]",
        "logs[logs/c.log]",
        "after-logs",
    ]


async def test_a_selected_batch_runs_only_its_jobs_and_reports_only_them(
    chain: BatchConfig, probe: Probe
) -> None:
    report = await run(select_jobs(chain, ["c", "d"]), probe)
    assert sorted(probe.started) == ["a", "b", "c", "d"]
    assert [result.name for result in report.jobs] == ["a", "b", "c", "d"]
    assert report.summary.total_jobs == 4
    assert report.summary.succeeded == 4


# --- CLI ---------------------------------------------------------------------------------


def invoke(args: Sequence[str]) -> Result:
    """Run the CLI in process; never a Python traceback, whatever the outcome."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the CLI raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.stderr
    return result


def summary(stdout: str) -> dict[str, int]:
    """stdout is exactly the summary object, indented by 2, and nothing else."""
    value = json.loads(stdout)
    assert stdout == json.dumps(value, indent=2) + "\n"
    return dict(value)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def add_module(folder: Path, source: str) -> str:
    """A module next to the config with a unique name (the import cache never hands
    over another test's module); returns its name."""
    name = f"execmod_{uuid.uuid4().hex}"
    (folder / f"{name}.py").write_text(source, encoding="utf-8")
    return name


TRACE_SOURCE = (
    "from pathlib import Path\n\n"
    "async def touch(path, params):\n"
    "    with open(Path(__file__).with_name('trace.txt'), 'a') as trace:\n"
    "        trace.write(path.name + '\\n')\n"
    "    return {'touched': path.name}\n"
)


def traced(folder: Path) -> list[str]:
    trace = folder / "trace.txt"
    return trace.read_text(encoding="utf-8").splitlines() if trace.exists() else []


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text("one\ntwo\n", encoding="utf-8")
    return tmp_path


def lines_job(name: str, input_: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "action": "count_lines", "input": input_, **fields}


def test_cli_fail_fast_exits_1_naming_the_first_failure_first_and_counting_cancelled(
    inputs: Path,
) -> None:
    config = write_json(
        inputs / "batch.json",
        {
            "jobs": [
                {"name": "early", "action": "no_such_action", "input": "a.txt"},
                lines_job("missing", "nowhere.txt"),
                lines_job("after-missing", "a.txt", depends_on=["missing"]),
                lines_job("b", "b.txt"),
                lines_job("c", "c.txt"),
            ]
        },
    )
    report_path = inputs / "report.json"
    result = invoke(["run", str(config), "-j", "1", "--fail-fast", "-o", str(report_path)])
    assert result.exit_code == 1
    assert summary(result.stdout) == {
        "total_jobs": 5,
        "succeeded": 0,
        "failed": 1,
        "skipped": 2,
        "cancelled": 2,
    }
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert lines[0].startswith("0 succeeded, 1 failed, 2 skipped, 2 cancelled in ")
    assert lines[1] == "stopped: the run halted after 1 failure (first: 'missing')"
    assert lines[2].split()[:3] == ["FAILED", "missing:", "FileNotFoundError:"]
    assert {line.split()[1] for line in lines[3:5]} == {"early:", "after-missing:"}
    assert lines[5] == "  CANCELLED 2 job(s): b, c"
    assert len(lines) == 6
    jobs = read_json(report_path)["jobs"]
    assert [entry["status"] for entry in jobs] == [
        "skipped",
        "failed",
        "skipped",
        "cancelled",
        "cancelled",
    ]
    assert [entry["attempts"] for entry in jobs] == [0, 1, 0, 0, 0]
    assert jobs[3]["error"]["type"] == "Cancelled"
    assert jobs[3]["duration_ms"] is None


def test_cli_max_failures_2_runs_on_after_the_first_failure(inputs: Path) -> None:
    config = write_json(
        inputs / "batch.json",
        {
            "jobs": [
                lines_job("miss1", "nowhere1.txt"),
                lines_job("a", "a.txt"),
                lines_job("miss2", "nowhere2.txt"),
                lines_job("b", "b.txt"),
            ]
        },
    )
    result = invoke(["run", str(config), "-j", "1", "--max-failures", "2"])
    assert result.exit_code == 1
    assert summary(result.stdout) == {
        "total_jobs": 4,
        "succeeded": 1,
        "failed": 2,
        "skipped": 0,
        "cancelled": 1,
    }
    assert "stopped: the run halted after 2 failures (first: 'miss1')" in result.stderr


def test_cli_without_fail_fast_runs_every_job_and_says_nothing_about_stopping(
    inputs: Path,
) -> None:
    config = write_json(
        inputs / "batch.json",
        {"jobs": [lines_job("miss", "nowhere.txt"), lines_job("a", "a.txt")]},
    )
    result = invoke(["run", str(config), "-j", "1"])
    assert result.exit_code == 1
    assert summary(result.stdout)["succeeded"] == 1
    assert "stopped:" not in result.stderr
    assert "CANCELLED" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_cli_max_failures_below_one_is_a_usage_error(inputs: Path, value: str) -> None:
    module = add_module(inputs, TRACE_SOURCE)
    config = write_json(
        inputs / "batch.json",
        {"jobs": [{"name": "a", "action": f"{module}:touch", "input": "a.txt"}]},
    )
    result = invoke(["run", str(config), "--max-failures", value])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert traced(inputs) == []


def test_cli_dry_run_shows_limits_at_the_top_and_on_jobs_that_need_them(inputs: Path) -> None:
    config = write_json(
        inputs / "batch.json",
        {
            "limits": {"disk": 1, "net": 3},
            "jobs": [
                lines_job("a", "a.txt", limits=["net", "disk"]),
                lines_job("b", "b.txt"),
            ],
        },
    )
    result = invoke(["run", str(config), "--dry-run"])
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["limits"] == {"disk": 1, "net": 3}
    assert list(plan) == ["valid", "total_jobs", "limits", "jobs"]
    first, second = plan["jobs"]
    assert first["limits"] == ["net", "disk"]
    assert "limits" not in second


def test_cli_dry_run_without_limits_shows_none(inputs: Path) -> None:
    config = write_json(inputs / "batch.json", {"jobs": [lines_job("a", "a.txt")]})
    plan = json.loads(invoke(["run", str(config), "--dry-run"]).stdout)
    assert "limits" not in plan
    assert "limits" not in plan["jobs"][0]


def test_cli_an_unknown_limit_and_a_size_of_zero_exit_2_with_locations(inputs: Path) -> None:
    module = add_module(inputs, TRACE_SOURCE)
    config = write_json(
        inputs / "batch.json",
        {
            "limits": {"disk": 0},
            "jobs": [
                {"name": "a", "action": f"{module}:touch", "input": "a.txt", "limits": ["nt"]}
            ],
        },
    )
    result = invoke(["run", str(config)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "limits.disk: " in result.stderr
    assert "jobs[0].limits[0]: unknown limit 'nt'" in result.stderr
    assert "nothing was run" in result.stderr
    assert traced(inputs) == []


def test_cli_schema_describes_limits_at_the_top_and_on_jobs() -> None:
    result = invoke(["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    limits = schema["properties"]["limits"]
    assert limits["type"] == "object"
    assert limits["additionalProperties"]["minimum"] == 1
    job_limits = schema["$defs"]["JobConfig"]["properties"]["limits"]
    assert job_limits["type"] == "array"
    assert job_limits["items"]["type"] == "string"


# --- --only on the command line ----------------------------------------------------------


@pytest.fixture
def only_config(inputs: Path) -> Path:
    """A traced batch: a <- b <- c, d alone, and a glob job over logs/."""
    module = add_module(inputs, TRACE_SOURCE)
    logs = inputs / "logs"
    logs.mkdir()
    for name in ("x.log", "y.log"):
        (logs / name).write_text("x\n", encoding="utf-8")

    def touch(name: str, input_: str, **fields: Any) -> dict[str, Any]:
        return {"name": name, "action": f"{module}:touch", "input": input_, **fields}

    return write_json(
        inputs / "batch.json",
        {
            "jobs": [
                touch("a", "a.txt"),
                touch("b", "b.txt", depends_on=["a"]),
                touch("c", "c.txt", depends_on=["b"]),
                touch("d", "a.txt"),
                touch("logs", "logs/*.log"),
            ]
        },
    )


def run_only(config: Path, *names: str) -> tuple[Result, dict[str, Any] | None]:
    report_path = config.with_name("report.json")
    args = ["run", str(config), "-o", str(report_path)]
    for name in names:
        args += ["--only", name]
    result = invoke(args)
    return result, read_json(report_path) if report_path.exists() else None


def test_cli_only_runs_the_job_and_its_dependencies_and_reports_only_them(
    only_config: Path,
) -> None:
    result, report = run_only(only_config, "c")
    assert result.exit_code == 0
    assert summary(result.stdout)["total_jobs"] == 3
    assert report is not None
    assert [entry["name"] for entry in report["jobs"]] == ["a", "b", "c"]
    assert report["summary"]["total_jobs"] == 3
    assert traced(only_config.parent) == ["a.txt", "b.txt", "c.txt"]


def test_cli_only_is_repeatable(only_config: Path) -> None:
    result, report = run_only(only_config, "d", "b")
    assert result.exit_code == 0
    assert report is not None
    assert [entry["name"] for entry in report["jobs"]] == ["a", "b", "d"]
    assert sorted(traced(only_config.parent)) == ["a.txt", "a.txt", "b.txt"]


def test_cli_only_a_glob_job_runs_all_its_expansions(only_config: Path) -> None:
    result, report = run_only(only_config, "logs")
    assert result.exit_code == 0
    assert report is not None
    assert [entry["name"] for entry in report["jobs"]] == ["logs[logs/x.log]", "logs[logs/y.log]"]
    assert sorted(traced(only_config.parent)) == ["x.log", "y.log"]


def test_cli_only_one_expansion_runs_only_it(only_config: Path) -> None:
    result, report = run_only(only_config, "logs[logs/y.log]")
    assert result.exit_code == 0
    assert report is not None
    assert [entry["name"] for entry in report["jobs"]] == ["logs[logs/y.log]"]
    assert traced(only_config.parent) == ["y.log"]


def test_cli_only_an_unknown_name_exits_2_with_a_located_message_and_runs_nothing(
    only_config: Path,
) -> None:
    result, report = run_only(only_config, "a", "x")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"error: {only_config}: --only: unknown job 'x'" in result.stderr.splitlines()
    assert report is None
    assert traced(only_config.parent) == []


def test_cli_only_with_dry_run_plans_only_the_selection(only_config: Path) -> None:
    result = invoke(["run", str(only_config), "--dry-run", "--only", "b"])
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["total_jobs"] == 2
    assert [entry["name"] for entry in plan["jobs"]] == ["a", "b"]
    assert traced(only_config.parent) == []


# --- signals: a real subprocess --------------------------------------------------------

SIGNAL_ACTIONS = """\
from pathlib import Path

import anyio


def _mark(path):
    Path(__file__).with_name('started-' + path.name).write_text('started')


async def quick(path, params):
    return {'quick': path.name}


async def slow(path, params):
    _mark(path)
    await anyio.sleep(60)
    return {'slow': path.name}


async def stubborn(path, params):
    _mark(path)
    with anyio.CancelScope(shield=True):
        await anyio.sleep(60)
    return {'stubborn': path.name}
"""

needs_posix_signals = pytest.mark.skipif(
    sys.platform == "win32", reason="POSIX signals to a process session"
)


def signal_batch(folder: Path, kind: str) -> tuple[Path, list[str]]:
    """Config: a quick job, then three ``kind`` jobs; with -j 2 the quick job and
    two ``kind`` jobs start, the last never does. Returns the config and the names
    of the jobs that will be running when the signal comes."""
    module = add_module(folder, SIGNAL_ACTIONS)
    jobs = [{"name": "quick", "action": f"{module}:quick", "input": "q"}]
    jobs += [{"name": f"s{i}", "action": f"{module}:{kind}", "input": f"s{i}"} for i in (1, 2, 3)]
    return write_json(folder / "batch.json", {"jobs": jobs}), ["s1", "s2"]


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "asyncbatch", "run", str(config), "-j", "2", *args],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_markers(proc: subprocess.Popen[str], folder: Path, running: list[str]) -> None:
    deadline = time.monotonic() + SUBPROCESS_START
    markers = [folder / f"started-{name}" for name in running]
    while not all(marker.exists() for marker in markers):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended early ({proc.returncode}): {out}\n{err}")
        if time.monotonic() > deadline:
            kill_session(proc)
            pytest.fail("the jobs never started")
        time.sleep(0.02)


def kill_session(proc: subprocess.Popen[str]) -> None:
    """Clean-up after a failed test: the child started its own session."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def session_members(session: int) -> list[int]:
    """Live processes (zombies included) whose session id is ``session``."""
    members = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # the process ended while we looked
        fields = stat.rpartition(")")[2].split()
        if int(fields[3]) == session:  # after comm: state, ppid, pgrp, session
            members.append(int(stat_path.parent.name))
    return members


@pytest.fixture
def session_check() -> Iterator[list[int]]:
    """Tests append the child's pid; afterwards nothing of its session may remain."""
    pids: list[int] = []
    yield pids
    if not sys.platform.startswith("linux"):
        return
    for pid in pids:
        assert session_members(pid) == [], f"processes of session {pid} outlived the run"


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(proc)
        pytest.fail(f"the run did not exit within {timeout} s")


@needs_posix_signals
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_the_running_jobs_writes_the_report_and_exits_with_its_code(
    tmp_path: Path, session_check: list[int], signum: signal.Signals, code: int
) -> None:
    config, running = signal_batch(tmp_path, "slow")
    report_path = tmp_path / "report.json"
    proc = start(config, "-o", str(report_path))
    session_check.append(proc.pid)
    wait_for_markers(proc, tmp_path, running)
    proc.send_signal(signum)
    stdout, stderr = finish(proc, 5)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert summary(stdout) == {
        "total_jobs": 4,
        "succeeded": 1,
        "failed": 0,
        "skipped": 0,
        "cancelled": 3,
    }
    assert "stopped: the run was interrupted" in stderr
    report = read_json(report_path)
    assert report["summary"] == summary(stdout)
    statuses = {entry["name"]: entry for entry in report["jobs"]}
    assert statuses["quick"]["status"] == "succeeded"
    for name in ("s1", "s2", "s3"):
        assert statuses[name]["status"] == "cancelled"
        assert statuses[name]["error"]["type"] == "Cancelled"
    assert [statuses[name]["attempts"] for name in ("s1", "s2", "s3")] == [1, 1, 0]
    assert statuses["s3"]["duration_ms"] is None
    assert not (tmp_path / "started-s3").exists()


@needs_posix_signals
def test_a_second_sigint_exits_at_once_even_when_jobs_ignore_cancellation(
    tmp_path: Path, session_check: list[int]
) -> None:
    config, running = signal_batch(tmp_path, "stubborn")
    report_path = tmp_path / "report.json"
    proc = start(config, "-o", str(report_path))
    session_check.append(proc.pid)
    wait_for_markers(proc, tmp_path, running)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None, "the shielded jobs cannot let the first SIGINT end the run"
    proc.send_signal(signal.SIGINT)
    _, stderr = finish(proc, 3)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not report_path.exists()


@needs_posix_signals
def test_a_run_that_ends_normally_leaves_no_process_in_its_session(
    tmp_path: Path, session_check: list[int]
) -> None:
    config = write_json(
        tmp_path / "batch.json",
        {"jobs": [lines_job(f"j{i}", "batch.json") for i in range(4)]},
    )
    proc = start(config)
    session_check.append(proc.pid)
    stdout, stderr = finish(proc, SUBPROCESS_START)
    assert proc.returncode == 0, stderr
    assert summary(stdout)["succeeded"] == 4
