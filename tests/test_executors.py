"""The executor seam: run_batch(executor=...) hands every attempt to the executor,
which starts and ends it (``run_timed``), may give it back, and may take more ready
attempts into the same slot (``more``). An executor's own failure fails its
attempts, never the run; an error described elsewhere is reported as described."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from support import SAMPLE, Probe, by_name, file_statistics, job, load, outcome, run, run_module

from asyncbatch.config import BatchConfig, Job
from asyncbatch.controls import Halt
from asyncbatch.engine import Attempt, Backoff, RunListener, TakeMore, run_timed
from asyncbatch.errors import RemoteError

pytestmark = pytest.mark.anyio


def action_of(attempt: Attempt) -> Callable[[], Any]:
    """The attempt's action function, called here (no kernel, no fast path)."""
    spec = attempt.job.spec
    assert spec is not None
    return functools.partial(spec.func, attempt.job.path, attempt.job.params)


class Recording:
    """Runs each attempt's action function here with run_timed, one attempt per
    slot, recording every attempt it is handed (job name, the attempt's timeout,
    root and whether a failure may halt). ``remote`` names inputs whose action
    fails elsewhere: the awaited call raises RemoteError, as a Dask worker's would."""

    def __init__(self, remote: dict[str, dict[str, str]] | None = None) -> None:
        self.calls: list[str] = []
        self.seen: dict[str, tuple[float | None, str | None, bool]] = {}
        self._remote = remote or {}

    async def run(self, attempt: Attempt, more: TakeMore) -> None:
        name = attempt.job.name
        self.calls.append(name)
        self.seen[name] = (attempt.timeout, attempt.root, attempt.failure_may_halt)
        if attempt.job.path.name in self._remote:
            error = self._remote[attempt.job.path.name]

            async def fails_elsewhere() -> dict[str, Any]:
                raise RemoteError(error=error)

            await run_timed(attempt, fails_elsewhere)
            return
        await run_timed(attempt, action_of(attempt))


class Starts(RunListener):
    """How many attempts of each job started, as the run reported them."""

    def __init__(self) -> None:
        self.started: Counter[str] = Counter()

    def job_started(self, job: Job, attempt: int) -> None:
        self.started[job.name] += 1


def realpath(path: Path) -> str:
    """The path with every symbolic link resolved, as a run's root is kept."""
    return os.path.realpath(path)


def with_builtins(probe: Probe) -> Probe:
    for spec in file_statistics():
        probe.registry.register(spec)
    return probe


# --- every attempt goes through the executor ---------------------------------------------


async def test_a_custom_executor_is_handed_every_attempt_of_every_job(
    tmp_path: Path, probe: Probe
) -> None:
    """Built-ins too (no fast path around the executor), retries and timeouts
    included; jobs skipped before starting never reach it."""
    with_builtins(probe)
    names = [f"f{i}.txt" for i in range(20)]
    for name in names:
        (tmp_path / name).write_text("a b\nc\n", encoding="utf-8")
    jobs = [{"name": name, "action": "count_lines", "input": name} for name in names]
    jobs += [
        job("flaky", "flaky", params={"failures": 2}, retries=2),
        job("stuck", "hang", timeout=0.05, retries=1),
        job("unknown", "no_such_action"),
        job("after", depends_on=["unknown"]),
    ]
    executor = Recording()
    starts = Starts()
    report = await run(
        load(tmp_path, probe, jobs),
        executor=executor,
        listener=starts,
        backoff=Backoff(start=0.001),
    )
    results = by_name(report)
    assert Counter(executor.calls) == {**dict.fromkeys(names, 1), "flaky": 3, "stuck": 2}
    assert starts.started == Counter(executor.calls)
    assert all(results[name].result == {"lines": 2} for name in names)
    assert outcome(results["flaky"]) == ("succeeded", None, 3)
    assert outcome(results["stuck"]) == ("failed", "Timeout", 2)
    assert outcome(results["unknown"]) == ("skipped", "UnknownAction", 0)
    assert outcome(results["after"]) == ("skipped", "DependencyFailed", 0)


async def test_an_attempt_carries_its_timeout_the_runs_root_and_whether_a_failure_may_halt(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("own", timeout=7.5), job("default")]
    config = load(tmp_path, probe, jobs, defaults={"timeout": 30})
    unconfined = Recording()
    await run(config, executor=unconfined)
    assert unconfined.seen == {"own": (7.5, None, False), "default": (30.0, None, False)}
    confined = Recording()
    await run(config, executor=confined, root=tmp_path, timeout=2, halt=Halt.failures(3))
    real = realpath(tmp_path)
    assert confined.seen == {"own": (7.5, real, True), "default": (2.0, real, True)}


# --- remote errors -----------------------------------------------------------------------


@pytest.mark.parametrize("raised_by", ["the awaited call", "the executor"])
async def test_a_remote_error_is_reported_as_described_naming_the_input_as_written(
    tmp_path: Path, probe: Probe, raised_by: str
) -> None:
    """The description made elsewhere (type and message) is the job's error, with
    the path the worker saw replaced by the input as the config wrote it."""
    denied = {"type": "PermissionError", "message": f"{tmp_path / 'remote-fail'}: denied"}
    quota = {"type": "QuotaExceeded", "message": "quota of 3 exceeded"}
    remote = {"remote-fail": denied, "over-quota": quota}
    jobs = [job("remote-fail"), job("over-quota"), job("fine")]

    class RaisesItself:
        async def run(self, attempt: Attempt, more: TakeMore) -> None:
            attempt.start()
            if attempt.job.path.name in remote:
                raise RemoteError(error=remote[attempt.job.path.name])
            await run_timed(attempt, action_of(attempt))

    executor = Recording(remote) if raised_by == "the awaited call" else RaisesItself()
    report = await run(load(tmp_path, probe, jobs), executor=executor)
    results = by_name(report)
    assert results["remote-fail"].error == {
        "type": "PermissionError",
        "message": "remote-fail: denied",
    }
    assert results["over-quota"].error == quota
    assert [outcome(result)[::2] for result in report.jobs] == [
        ("failed", 1),
        ("failed", 1),
        ("succeeded", 1),
    ]


# --- an executor's own failures ----------------------------------------------------------


@pytest.mark.parametrize("when", ["before starting", "after starting"])
async def test_an_executor_that_raises_fails_its_attempt_and_the_run_goes_on(
    tmp_path: Path, probe: Probe, when: str
) -> None:
    """The executor's exception is the attempt's error (retried like any other);
    the run and the other jobs are unaffected."""

    class Faulty:
        def __init__(self) -> None:
            self.raised: Counter[str] = Counter()

        async def run(self, attempt: Attempt, more: TakeMore) -> None:
            name = attempt.job.name
            if name.startswith("boom") and self.raised[name] < 1:
                self.raised[name] += 1
                if when == "after starting":
                    attempt.start()
                    await anyio.lowlevel.checkpoint()
                raise RuntimeError(f"executor bug on {name}")
            await run_timed(attempt, action_of(attempt))

    jobs = [job("ok1"), job("boom"), job("boom-retried", retries=1), job("ok2")]
    starts = Starts()
    report = await run(
        load(tmp_path, probe, jobs),
        probe,
        executor=Faulty(),
        listener=starts,
        backoff=Backoff(start=0.001),
    )
    results = by_name(report)
    assert outcome(results["boom"]) == ("failed", "ActionError", 1)
    assert results["boom"].error == {
        "type": "ActionError",
        "message": "RuntimeError: executor bug on boom",
    }
    assert outcome(results["boom-retried"]) == ("succeeded", None, 2)
    assert outcome(results["ok1"]) == outcome(results["ok2"]) == ("succeeded", None, 1)
    assert probe.started == ["ok1", "ok2", "boom-retried"]
    assert starts.started == {"ok1": 1, "boom": 1, "boom-retried": 2, "ok2": 1}
    assert report.halted is None


async def test_an_executor_that_raises_fails_every_attempt_it_started_and_gives_back_the_rest(
    tmp_path: Path, probe: Probe
) -> None:
    """One slot: the executor takes three more attempts, starts two of them and
    raises. The first and the two started fail with its error; the one never
    started goes back and runs later, with one attempt."""

    class TakesMoreThenRaises:
        def __init__(self) -> None:
            self.raised = False

        async def run(self, attempt: Attempt, more: TakeMore) -> None:
            if self.raised:
                await run_timed(attempt, action_of(attempt))
                return
            self.raised = True
            taken = more(lambda job: True, 3)
            assert [each.job.name for each in taken] == ["b", "c", "d"]
            taken[0].start()
            taken[1].start()
            raise RuntimeError("the batch broke")

    jobs = [job(name) for name in "abcde"]
    report = await run(
        load(tmp_path, probe, jobs), probe, max_concurrency=1, executor=TakesMoreThenRaises()
    )
    broke = ("failed", "ActionError", 1)
    assert [outcome(result) for result in report.jobs] == [
        broke,
        broke,
        broke,
        ("succeeded", None, 1),
        ("succeeded", None, 1),
    ]
    assert {result.name: (result.error or {}).get("message") for result in report.jobs} == {
        "a": "RuntimeError: the batch broke",
        "b": "RuntimeError: the batch broke",
        "c": "RuntimeError: the batch broke",
        "d": None,
        "e": None,
    }
    assert probe.started == ["d", "e"]


async def test_an_executor_that_returns_without_running_the_job_fails_it(
    tmp_path: Path, probe: Probe
) -> None:
    class Idle:
        async def run(self, attempt: Attempt, more: TakeMore) -> None:
            if attempt.job.name != "ignored":
                await run_timed(attempt, action_of(attempt))

    jobs = [job("ignored"), job("fine")]
    report = await run(load(tmp_path, probe, jobs), executor=Idle())
    results = by_name(report)
    assert outcome(results["ignored"]) == ("failed", "ActionError", 1)
    assert results["ignored"].error == {
        "type": "ActionError",
        "message": "RuntimeError: the executor returned without running the job",
    }
    assert outcome(results["fine"]) == ("succeeded", None, 1)
    assert probe.started == ["fine"]


# --- giving attempts back ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["given back", "left untouched"])
async def test_attempts_taken_and_not_started_run_later_as_their_first_attempt(
    tmp_path: Path, probe: Probe, how: str
) -> None:
    """Giving back is not an attempt: the job runs later, once, with attempts 1.
    The first time it is handed ``a`` and three more, the executor runs only b,
    gives back a, and gives back (or leaves alone) c and d."""

    class Picky:
        def __init__(self) -> None:
            self.handed: list[list[str]] = []

        async def run(self, attempt: Attempt, more: TakeMore) -> None:
            taken = [attempt, *more(lambda job: True, 3)] if not self.handed else [attempt]
            self.handed.append([each.job.name for each in taken])
            if len(self.handed) > 1:
                await run_timed(attempt, action_of(attempt))
                return
            await run_timed(taken[1], action_of(taken[1]))
            attempt.give_back()
            if how == "given back":
                for each in taken[2:]:
                    each.give_back()

    executor = Picky()
    starts = Starts()
    jobs = [job(name) for name in "abcde"]
    report = await run(
        load(tmp_path, probe, jobs),
        probe,
        max_concurrency=1,
        executor=executor,
        listener=starts,
    )
    assert executor.handed == [["a", "b", "c", "d"], ["a"], ["c"], ["d"], ["e"]]
    assert probe.started == ["b", "a", "c", "d", "e"]
    assert [outcome(result) for result in report.jobs] == [("succeeded", None, 1)] * 5
    assert starts.started == dict.fromkeys("abcde", 1)


# --- more: extra attempts for the same slot ----------------------------------------------


class Greedy:
    """Takes up to ``most`` more attempts for every slot, noting for each call how
    many jobs without limits were waiting (not yet handed to any slot); runs the
    attempts one after another. Counts the slots busy at once."""

    def __init__(self, config: BatchConfig, most: int) -> None:
        self._most = most
        self._unlimited_waiting = {j.name for j in config.jobs if not j.limits}
        self.calls: list[tuple[Job, int, list[Job]]] = []
        self.busy = 0
        self.peak = 0

    async def run(self, attempt: Attempt, more: TakeMore) -> None:
        self._unlimited_waiting.discard(attempt.job.name)
        waiting = len(self._unlimited_waiting)
        taken = more(lambda job: True, self._most)
        self._unlimited_waiting -= {each.job.name for each in taken}
        self.calls.append((attempt.job, waiting, [each.job for each in taken]))
        self.busy += 1
        self.peak = max(self.peak, self.busy)
        try:
            for each in (attempt, *taken):
                await run_timed(each, action_of(each))
        finally:
            self.busy -= 1


@pytest.mark.parametrize("most", [2, 1000])
async def test_more_never_hands_out_jobs_with_limits_nor_more_than_a_fair_share(
    tmp_path: Path, probe: Probe, most: int
) -> None:
    """Four slots, 24 jobs without limits and 8 with: ``more`` gives no job that
    needs a named limit, nothing at all to a slot whose job holds one, at most
    ``most``, and at most an equal share (among the slots) of the jobs waiting, so
    that every slot gets work."""
    jobs = [
        job(f"d{i}", limits=["disk"], params={"limits": ["disk"]})
        if i % 4 == 1
        else job(f"p{i:02}", params={"yields": 5})
        for i in range(32)
    ]
    config = load(tmp_path, probe, jobs, limits={"disk": 2})
    executor = Greedy(config, most)
    report = await run(config, probe, max_concurrency=4, executor=executor)
    assert [result.status for result in report.jobs] == ["succeeded"] * 32
    assert sorted(probe.started) == sorted(j["name"] for j in jobs)
    assert probe.peak_in["disk"] <= 2
    for first, waiting, taken in executor.calls:
        assert all(not each.limits for each in taken), first.name
        if first.limits:
            assert taken == [], first.name
        assert len(taken) <= min(most, waiting // 4), (first.name, waiting)
    assert any(taken for _, _, taken in executor.calls)
    assert executor.peak == 4


async def test_more_hands_out_jobs_in_config_order_while_accept_holds(
    tmp_path: Path, probe: Probe
) -> None:
    """One slot; the executor accepts more jobs of the first one's action only: a
    job it does not accept ends the batch, later jobs are not skipped over."""

    class SameAction:
        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        async def run(self, attempt: Attempt, more: TakeMore) -> None:
            action = attempt.job.action
            taken = [attempt, *more(lambda job: job.action == action, 10)]
            self.batches.append([each.job.name for each in taken])
            for each in taken:
                await run_timed(each, action_of(each))

    jobs = [
        job("r0"),
        job("r1"),
        job("t0", "trivial"),
        job("r2"),
        job("r3"),
        job("t1", "trivial"),
        job("t2", "trivial"),
    ]
    executor = SameAction()
    report = await run(load(tmp_path, probe, jobs), max_concurrency=1, executor=executor)
    assert executor.batches == [["r0", "r1"], ["t0"], ["r2", "r3"], ["t1", "t2"]]
    assert report.summary.succeeded == 7


async def test_more_never_hands_out_a_job_that_ends_before_starting(
    tmp_path: Path, probe: Probe
) -> None:
    """An unknown action (skipped) or a glob that matched nothing (failed at once)
    is settled by the scheduler, never handed to an executor."""
    jobs = [job("r0"), job("unknown", "no_such_action"), job("nothing", input="*.none"), job("r1")]
    config = load(tmp_path, probe, jobs)
    executor = Greedy(config, 10)
    report = await run(config, max_concurrency=1, executor=executor)
    assert [
        ([first.name, *(each.name for each in taken)]) for first, _, taken in executor.calls
    ] == [
        ["r0"],
        ["r1"],
    ]
    assert [outcome(result) for result in report.jobs] == [
        ("succeeded", None, 1),
        ("skipped", "UnknownAction", 0),
        ("failed", "FileNotFoundError", 1),
        ("succeeded", None, 1),
    ]


async def test_a_halt_cancels_the_attempts_of_a_slot_that_took_more(
    tmp_path: Path, probe: Probe
) -> None:
    """The first slot holds ``hold`` (hanging) and ``p0``, taken with it; ``bad``
    (kept out of ``more`` by its limit) fails in the other slot. What the slot took
    ends cancelled, ``p0`` with no attempt."""
    jobs = [
        job("hold", "hang", params={"set": "holding"}),
        job("bad", "fail", params={"wait": "holding"}, limits=["one"]),
        *(job(f"p{i}") for i in range(3)),
    ]
    config = load(tmp_path, probe, jobs, limits={"one": 1})

    executor = Greedy(config, 3)
    report = await run(config, probe, max_concurrency=2, halt=Halt.failures(1), executor=executor)
    assert [(first.name, [each.name for each in taken]) for first, _, taken in executor.calls] == [
        ("hold", ["p0"]),
        ("bad", []),
    ]
    assert [outcome(result) for result in report.jobs] == [
        ("cancelled", "Cancelled", 1),
        ("failed", "ActionError", 1),
        ("cancelled", "Cancelled", 0),
        ("cancelled", "Cancelled", 0),
        ("cancelled", "Cancelled", 0),
    ]
    assert probe.started == ["hold", "bad"]


# --- the Dask executor without its extra -------------------------------------------------


@pytest.mark.slow
def test_without_the_extra_the_dask_executor_is_exit_2(tmp_path: Path) -> None:
    """``distributed`` that will not import (as when the extra is missing): exit 2,
    saying what to install, and nothing ran."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "distributed.py").write_text("raise ImportError('not installed')\n")
    report = tmp_path / "report.json"
    args = ["run", str(SAMPLE), "-o", str(report), "--executor", "dask"]
    done = run_module(args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(fake)})
    assert done.returncode == 2
    assert "install 'asyncbatch[dask]'" in done.stderr
    assert done.stdout == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fake"]
