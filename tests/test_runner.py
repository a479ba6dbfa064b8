"""run_batch(): scheduling, dependencies, failures as values, retries and backoff,
timeouts, halting, what a RunListener hears, and named limits.

Test actions live in a registry of their own (a seam, not a mock) and record what
they see in a :class:`~support.Probe`. Concurrency is checked by counting running
actions and by events that would deadlock (caught by ``fail_after``) if the
scheduler were wrong, never by wall-clock time; durations are only checked against
lower bounds that follow from the code's own logic.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import KernelProbe, Probe, by_name, job, load, outcome, run, write_json

from asyncbatch import load_config, run_batch
from asyncbatch.config import Job
from asyncbatch.controls import Halt
from asyncbatch.engine import (
    DEFAULT_CONCURRENCY,
    Backoff,
    LocalExecutor,
    RunListener,
)
from asyncbatch.engine._limits import ReadyJobs, needs_of
from asyncbatch.files.batch import REPORT_AFTER
from asyncbatch.kernel import Tuning
from asyncbatch.model import JobResult
from asyncbatch.registry import ActionRegistry

pytestmark = pytest.mark.anyio


def fast() -> Backoff:
    """Back off 1 ms (doubling) instead of 100 ms, to keep retry tests quick."""
    return Backoff(start=0.001)


class Events(RunListener):
    """A listener that keeps what it heard and notes every event out of place: a
    start of a job already running or done, a retry or an end of a job not
    running, more attempts running than ``limit``. ``running`` holds the jobs with
    an attempt started and not yet ended."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.started: dict[str, list[int]] = defaultdict(list)
        self.retrying: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        self.done: dict[str, JobResult] = {}
        self.order: list[str] = []
        """Names of jobs as their attempts started."""
        self.running: set[str] = set()
        self.peak = 0
        self.problems: list[str] = []

    def job_started(self, job: Job, attempt: int) -> None:
        name = job.name
        if name in self.running:
            self.problems.append(f"{name}: attempt {attempt} started while one runs")
        if name in self.done:
            self.problems.append(f"{name}: attempt {attempt} started after job_done")
        self.running.add(name)
        self.peak = max(self.peak, len(self.running))
        if self.limit is not None and len(self.running) > self.limit:
            self.problems.append(f"{name}: started while {sorted(self.running)} run")
        self.started[name].append(attempt)
        self.order.append(name)

    def job_retrying(self, job: Job, error: dict[str, str], delay: float) -> None:
        if job.name not in self.running:
            self.problems.append(f"{job.name}: job_retrying without a running attempt")
        self.running.discard(job.name)
        self.retrying[job.name].append((error, delay))

    def job_done(self, result: JobResult) -> None:
        if result.name in self.done:
            self.problems.append(f"{result.name}: job_done twice")
        self.running.discard(result.name)
        self.done[result.name] = result

    def delays(self, name: str) -> list[float]:
        return [delay for _, delay in self.retrying[name]]


# --- concurrency -------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
async def test_running_actions_reach_max_concurrency_and_never_exceed_it(
    tmp_path: Path, probe: Probe, limit: int
) -> None:
    """The first ``limit`` jobs wait until ``limit`` actions run at once (a deadlock,
    caught by fail_after, if a slot stayed empty); ``peak`` would show one more."""
    jobs = [job(f"j{i:02}", params={"fill": limit, "yields": 5}) for i in range(20)]
    report = await run(load(tmp_path, probe, jobs), max_concurrency=limit)
    assert probe.peak == limit
    assert report.max_concurrency == limit
    assert report.summary.succeeded == 20


async def test_max_concurrency_comes_from_the_config_when_not_passed(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job(f"j{i:02}", params={"fill": 2}) for i in range(8)]
    report = await run(load(tmp_path, probe, jobs, max_concurrency=2))
    assert probe.peak == 2
    assert report.max_concurrency == 2


async def test_the_argument_overrides_the_config_max_concurrency(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job(f"j{i:02}", params={"yields": 5}) for i in range(8)]
    report = await run(load(tmp_path, probe, jobs, max_concurrency=5), max_concurrency=1)
    assert probe.peak == 1
    assert report.max_concurrency == 1


async def test_max_concurrency_defaults_to_four(tmp_path: Path, probe: Probe) -> None:
    assert DEFAULT_CONCURRENCY == 4
    jobs = [job(f"j{i:02}", params={"fill": 4}) for i in range(10)]
    report = await run(load(tmp_path, probe, jobs))
    assert probe.peak == 4
    assert report.max_concurrency == 4


@pytest.mark.parametrize("bad", [0, -1])
async def test_max_concurrency_below_one_is_a_value_error_and_nothing_runs(
    tmp_path: Path, probe: Probe, bad: int
) -> None:
    config = load(tmp_path, probe, [job("a")], max_concurrency=3)
    with pytest.raises(ValueError, match="max_concurrency"):
        await run_batch(config, max_concurrency=bad)
    assert probe.started == []


@pytest.mark.parametrize("bad", [0, -1])
def test_a_halt_after_fewer_than_one_failure_is_a_value_error(bad: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Halt.failures(bad)


async def test_with_one_slot_jobs_start_in_config_order(tmp_path: Path, probe: Probe) -> None:
    names = ["zeta", "alpha", "mid", "beta", "omega", "gamma"]
    await run(load(tmp_path, probe, [job(name) for name in names]), max_concurrency=1)
    assert probe.started == names


async def test_free_slots_go_to_ready_jobs_in_config_order(tmp_path: Path, probe: Probe) -> None:
    """b waits for a; c, d, e are ready at once: with two slots, after a the free slot
    goes to b (now ready, first in config order) before d and e."""
    jobs = [
        job("a"),
        job("b", depends_on=["a"]),
        job("c", params={"wait": "release-c"}),
        job("d"),
        job("e", params={"set": "release-c"}),
    ]
    await run(load(tmp_path, probe, jobs), max_concurrency=2)
    assert probe.started == ["a", "c", "b", "d", "e"]


# --- dependencies ------------------------------------------------------------------------


async def test_a_job_starts_as_soon_as_its_own_dependencies_succeed(
    tmp_path: Path, probe: Probe
) -> None:
    """c cannot finish until b has run, so b must not wait for c's "level" to end."""
    jobs = [
        job("a"),
        job("c", params={"wait": "b-ran"}),
        job("b", depends_on=["a"], params={"set": "b-ran"}),
    ]
    report = await run(load(tmp_path, probe, jobs), max_concurrency=2)
    assert probe.finished.index("b") < probe.finished.index("c")
    assert [result.status for result in report.jobs] == ["succeeded"] * 3


async def test_a_dependent_waits_for_its_dependency_to_finish(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("b", depends_on=["a"]), job("a", params={"yields": 20})]
    await run(load(tmp_path, probe, jobs), max_concurrency=4)
    assert probe.finished.index("a") < probe.started.index("b")


async def test_a_failed_dependency_skips_its_dependent_naming_it(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a", "raise", params={"kind": "ValueError"}), job("b", depends_on=["a"])]
    result = by_name(await run(load(tmp_path, probe, jobs)))["b"]
    assert result.status == "skipped"
    assert result.error is not None
    assert result.error["type"] == "DependencyFailed"
    assert "'a'" in result.error["message"]
    assert result.duration_ms is None
    assert result.attempts == 0
    assert result.result is None
    assert "b" not in probe.started


async def test_skips_propagate_through_a_chain_of_dependencies(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("a", "raise", params={"kind": "ValueError"}),
        job("b", depends_on=["a"]),
        job("c", depends_on=["b"]),
        job("unrelated"),
    ]
    results = by_name(await run(load(tmp_path, probe, jobs)))
    assert results["a"].status == "failed"
    assert results["b"].status == "skipped"
    assert results["c"].status == "skipped"
    assert results["c"].error is not None
    assert results["c"].error["type"] == "DependencyFailed"
    assert "'b'" in results["c"].error["message"]
    assert results["unrelated"].status == "succeeded"
    assert probe.started == ["a", "unrelated"]


async def test_a_job_whose_dependency_was_skipped_is_skipped_too(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a", "no_such_action"), job("b", depends_on=["a"])]
    config = load(tmp_path, probe, jobs)
    assert any("no_such_action" in warning for warning in config.warnings)
    results = by_name(await run(config))
    assert results["a"].status == "skipped"
    assert results["a"].error is not None
    assert results["a"].error["type"] == "UnknownAction"
    assert results["b"].status == "skipped"
    assert results["b"].error is not None
    assert results["b"].error["type"] == "DependencyFailed"
    assert "'a'" in results["b"].error["message"]
    for name in ("a", "b"):
        assert results[name].duration_ms is None
        assert results[name].attempts == 0
    assert probe.started == []


async def test_a_job_with_several_dependencies_runs_once_after_all_succeed(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a"), job("b"), job("c", depends_on=["a", "b"])]
    results = by_name(await run(load(tmp_path, probe, jobs)))
    assert results["c"].status == "succeeded"
    assert probe.started.count("c") == 1
    assert probe.started.index("c") > max(probe.finished.index("a"), probe.finished.index("b"))


# --- failures are values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error_type", "message"),
    [
        ("ValueError", "ActionError", "ValueError: bad value in the input"),
        ("KeyError", "ActionError", "KeyError"),
        ("FileNotFoundError", "FileNotFoundError", "broken: no such file"),
        ("PermissionError", "PermissionError", "broken: permission denied"),
        ("LineTooLong", "LineTooLong", "broken: a line is longer than 10 bytes"),
        ("QuotaExceeded", "QuotaExceeded", "quota of 3 exceeded"),
    ],
)
async def test_an_exception_raised_by_an_action_becomes_that_jobs_error(
    tmp_path: Path, probe: Probe, kind: str, error_type: str, message: str
) -> None:
    jobs = [job("ok1"), job("broken", "raise", params={"kind": kind}), job("ok2")]
    report = await run(load(tmp_path, probe, jobs))
    results = by_name(report)
    broken = results["broken"]
    assert broken.status == "failed"
    assert broken.result is None
    assert broken.error is not None
    assert broken.error["type"] == error_type
    assert message in broken.error["message"]
    assert str(tmp_path) not in broken.error["message"], "the input is named as written"
    assert broken.attempts == 1
    assert results["ok1"].status == results["ok2"].status == "succeeded"
    assert report.summary.failed == 1
    assert not report.ok


async def test_an_action_raising_the_builtin_timeout_error_is_an_action_error(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("slow", "raise", params={"kind": "TimeoutError"}, timeout=30)]
    result = (await run(load(tmp_path, probe, jobs))).jobs[0]
    assert result.error == {
        "type": "ActionError",
        "message": "TimeoutError: upstream did not answer",
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("list", "expected a dict"),
        ("none", "expected a dict"),
        ("set_in_dict", "not JSON-serialisable"),
        ("object_in_dict", "not JSON-serialisable"),
        ("nan_in_dict", "not JSON-serialisable"),
    ],
)
async def test_an_action_result_that_is_not_a_json_object_fails_the_job(
    tmp_path: Path, probe: Probe, kind: str, expected: str
) -> None:
    jobs = [job("odd", "returns", params={"kind": kind}), job("fine")]
    report = await run(load(tmp_path, probe, jobs))
    odd, fine = report.jobs
    assert odd.status == "failed"
    assert odd.result is None
    assert odd.error is not None
    assert odd.error["type"] == "ActionError"
    assert expected in odd.error["message"]
    assert fine.status == "succeeded"
    json.dumps(report.to_dict(), allow_nan=False)  # the report stays strict JSON


async def test_report_lists_jobs_in_config_order_whatever_the_finish_order(
    tmp_path: Path, probe: Probe
) -> None:
    """Each job waits for the next one to finish, so they finish in reverse order."""
    names = [f"j{i}" for i in range(6)]
    jobs = [
        job(name, params={"wait": f"done-{i + 1}", "set": f"done-{i}"})
        if i + 1 < len(names)
        else job(name, params={"set": f"done-{i}"})
        for i, name in enumerate(names)
    ]
    report = await run(load(tmp_path, probe, jobs), max_concurrency=len(names))
    assert probe.finished == names[::-1]
    assert [result.name for result in report.jobs] == names
    assert [result.input for result in report.jobs] == names


async def test_every_job_that_ran_has_a_duration_and_its_result(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a"), job("b", "raise", params={"kind": "ValueError"})]
    report = await run(load(tmp_path, probe, jobs))
    for result in report.jobs:
        assert result.duration_ms is not None
        assert result.duration_ms >= 0
        assert result.attempts == 1
        assert result.reused is False
    assert report.jobs[0].result == {"input": "a"}
    assert report.jobs[0].error is None
    assert report.jobs[0].action == "record"


# --- inputs refused at load: failed at once, never retried -------------------------------


async def test_a_glob_that_matched_nothing_fails_at_once_and_is_never_retried(
    tmp_path: Path, probe: Probe
) -> None:
    """Retries from the job, the config's defaults and the argument: none applies,
    since nothing would change between attempts."""
    jobs = [
        job("nothing", input="logs/*.log", retries=3),
        job("inherits", input="other/*.txt"),
        job("after", depends_on=["nothing"]),
        job("fine"),
    ]
    config = load(tmp_path, probe, jobs, defaults={"retries": 2})
    report = await run(config, probe, retries=4, backoff=fast())
    results = by_name(report)
    assert outcome(results["nothing"]) == ("failed", "FileNotFoundError", 1)
    assert results["nothing"].error == {
        "type": "FileNotFoundError",
        "message": "logs/*.log: no file matches",
    }
    assert results["nothing"].input == "logs/*.log"
    assert outcome(results["inherits"]) == ("failed", "FileNotFoundError", 1)
    assert outcome(results["after"]) == ("skipped", "DependencyFailed", 0)
    assert outcome(results["fine"]) == ("succeeded", None, 1)
    assert probe.started == ["fine"]


async def test_an_input_outside_the_root_fails_at_once_and_is_never_retried(
    tmp_path: Path, probe: Probe
) -> None:
    """Each glob match is judged on its own: the link out of the root fails with
    one attempt, the file inside runs."""
    root = tmp_path / "root"
    (root / "logs").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret\n", encoding="utf-8")
    (root / "logs" / "inside.log").write_text("x\n", encoding="utf-8")
    (root / "logs" / "link.log").symlink_to(tmp_path / "secret.txt")
    jobs = [
        job("secret", input="../secret.txt", retries=3),
        job("logs", input="logs/*.log", retries=3),
    ]
    config_path = write_json(root / "batch.json", {"defaults": {"retries": 2}, "jobs": jobs})
    config = load_config(config_path, registry=probe.registry, root=root)
    report = await run(config, probe, retries=4, backoff=fast())
    results = by_name(report)
    assert outcome(results["secret"]) == ("failed", "OutsideRoot", 1)
    assert results["secret"].error is not None
    assert results["secret"].error["message"].startswith("../secret.txt: resolves outside")
    assert outcome(results["logs[logs/link.log]"]) == ("failed", "OutsideRoot", 1)
    assert outcome(results["logs[logs/inside.log]"]) == ("succeeded", None, 1)
    assert probe.started == ["inside.log"]


async def test_the_listener_hears_an_input_refused_at_load_start_as_often_as_its_attempts(
    tmp_path: Path, probe: Probe
) -> None:
    """The report counts one attempt for a job whose input was refused at load; a
    listener counting attempts (job_started) must count the same."""
    jobs = [job("nothing", input="logs/*.log"), job("fine")]
    events = Events()
    report = await run(load(tmp_path, probe, jobs), probe, listener=events)
    assert {name: len(events.started[name]) for name in ("nothing", "fine")} == {
        result.name: result.attempts for result in report.jobs
    }
    assert events.problems == []


# --- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize(("failures", "retries"), [(0, 3), (1, 3), (2, 2), (3, 3), (2, 5)])
async def test_a_job_that_succeeds_within_its_retries_counts_every_attempt(
    tmp_path: Path, probe: Probe, failures: int, retries: int
) -> None:
    jobs = [job("a", "flaky", params={"failures": failures}, retries=retries)]
    result = (await run(load(tmp_path, probe, jobs), probe, backoff=fast())).jobs[0]
    assert outcome(result) == ("succeeded", None, failures + 1)
    assert result.result == {"attempt": failures + 1}
    assert probe.attempts["a"] == failures + 1


@pytest.mark.parametrize("retries", [None, 0, 1, 2, 4])
async def test_a_job_that_always_fails_makes_retries_plus_one_attempts_and_keeps_the_last_error(
    tmp_path: Path, probe: Probe, retries: int | None
) -> None:
    """Without ``retries`` (no default either) a failure is final."""
    own = {} if retries is None else {"retries": retries}
    attempts = (retries or 0) + 1
    jobs = [job("a", "flaky", params={"failures": 100}, **own)]
    result = (await run(load(tmp_path, probe, jobs), probe, backoff=fast())).jobs[0]
    assert outcome(result) == ("failed", "ActionError", attempts)
    assert probe.attempts["a"] == attempts
    assert result.error == {
        "type": "ActionError",
        "message": f"RuntimeError: attempt {attempts} failed",
    }


async def test_config_default_retries_apply_to_jobs_without_their_own(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("inherits", "flaky", params={"failures": 1}),
        job("own", "flaky", params={"failures": 1}, retries=0),
    ]
    config = load(tmp_path, probe, jobs, defaults={"retries": 1})
    results = by_name(await run(config, backoff=fast()))
    assert outcome(results["inherits"]) == ("succeeded", None, 2)
    assert outcome(results["own"]) == ("failed", "ActionError", 1)


async def test_default_retries_argument_overrides_the_config_default(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 1})]
    config = load(tmp_path, probe, jobs, defaults={"retries": 3})
    result = (await run(config, retries=0, backoff=fast())).jobs[0]
    assert (result.status, result.attempts) == ("failed", 1)


async def test_default_retries_argument_applies_when_the_config_has_none(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 1})]
    result = (await run(load(tmp_path, probe, jobs), retries=1, backoff=fast())).jobs[0]
    assert (result.status, result.attempts) == ("succeeded", 2)


async def test_a_job_backing_off_holds_no_slot_so_another_runs_meanwhile(
    tmp_path: Path, probe: Probe
) -> None:
    """One slot: ``other`` starts after a's first attempt failed and before a has
    a final result, which is only possible if a's backoff left the slot free."""
    jobs = [
        job("a", "flaky", params={"failures": 1}, retries=1),
        job("other", params={"observe": "a"}),
    ]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, backoff=fast())
    assert probe.started == ["a", "other", "a"]
    assert probe.seen["other"] == {"attempts": 1, "finished": False}
    assert probe.done == ["other", "a"]
    assert [outcome(result) for result in report.jobs] == [
        ("succeeded", None, 2),
        ("succeeded", None, 1),
    ]
    assert report.jobs[0].result == {"attempt": 2}


async def test_skipped_jobs_are_never_retried_and_never_started(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("unknown", "no_such_action", retries=3),
        job("after-unknown", depends_on=["unknown"], retries=3),
        job("bad", "fail"),
        job("after-bad", depends_on=["bad"], retries=3),
    ]
    results = by_name(await run(load(tmp_path, probe, jobs), probe, backoff=fast()))
    assert outcome(results["unknown"]) == ("skipped", "UnknownAction", 0)
    assert outcome(results["after-unknown"]) == ("skipped", "DependencyFailed", 0)
    assert outcome(results["after-bad"]) == ("skipped", "DependencyFailed", 0)
    for name in ("unknown", "after-unknown", "after-bad"):
        assert results[name].duration_ms is None
    assert probe.started == ["bad"]


# --- backoff -----------------------------------------------------------------------------


def test_backoff_defaults_are_those_of_the_spec() -> None:
    backoff = Backoff()
    assert (backoff.start, backoff.cap, backoff.jitter) == (0.1, 10.0, 0.5)


def test_backoff_doubles_from_its_start_up_to_its_cap() -> None:
    """With jitter 1.0 the factor is exactly 1: the delays are the bare doubling."""
    backoff = Backoff(start=0.1, cap=1.0, jitter=1.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.delay(10_000) == 1.0  # no overflow, however many attempts


def test_backoff_jitter_is_one_factor_per_delay_between_jitter_and_one_from_its_rng() -> None:
    backoff = Backoff(start=0.1, cap=10.0, rng=random.Random(1234))
    reference = random.Random(1234)
    delays = [backoff.delay(n) for n in range(1, 9)]
    bases = [min(10.0, 0.1 * 2**n) for n in range(8)]
    assert delays == [base * reference.uniform(0.5, 1.0) for base in bases]
    assert all(0.5 * base <= delay <= base for delay, base in zip(delays, bases, strict=True))
    assert len(set(delays)) == len(delays)


async def test_each_retry_waits_the_backoff_delay_told_to_the_listener(
    tmp_path: Path, probe: Probe
) -> None:
    """The run draws one delay per retry from the backoff (doubling from its start,
    one jitter factor each from its rng) and waits it: the duration spans the three
    50 ms attempts and both delays."""
    reference = random.Random(99)
    expected = [0.02 * reference.uniform(0.5, 1.0), 0.04 * reference.uniform(0.5, 1.0)]
    events = Events()
    jobs = [job("a", "flaky", params={"failures": 2, "sleep": 0.05}, retries=2)]
    backoff = Backoff(start=0.02, rng=random.Random(99))
    result = (await run(load(tmp_path, probe, jobs), listener=events, backoff=backoff)).jobs[0]
    assert outcome(result) == ("succeeded", None, 3)
    assert events.delays("a") == expected
    assert result.duration_ms is not None
    assert result.duration_ms >= 3 * 50 + 1000 * sum(expected)


# --- timeouts ----------------------------------------------------------------------------


async def test_a_job_over_its_timeout_fails_with_timeout_on_time(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("stuck", "hang", timeout=0.2), job("quick")]
    report = await run(load(tmp_path, probe, jobs))  # fail_after: the hang was ended
    stuck, quick = report.jobs
    assert stuck.status == "failed"
    assert stuck.error is not None
    assert stuck.error["type"] == "Timeout"
    assert "0.2" in stuck.error["message"]
    assert stuck.duration_ms is not None
    assert stuck.duration_ms >= 200
    assert quick.status == "succeeded"


async def test_the_config_default_timeout_applies_to_jobs_without_their_own(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("stuck", "hang")]
    report = await run(load(tmp_path, probe, jobs, defaults={"timeout": 0.1}))
    assert report.jobs[0].error is not None
    assert report.jobs[0].error["type"] == "Timeout"


async def test_default_timeout_argument_applies(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("stuck", "hang")]
    report = await run(load(tmp_path, probe, jobs), timeout=0.1)
    assert report.jobs[0].error is not None
    assert report.jobs[0].error["type"] == "Timeout"


async def test_a_timeout_on_the_first_attempt_is_retried_and_can_succeed(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a", "hang", params={"hangs": 1}, timeout=0.2, retries=1)]
    result = (await run(load(tmp_path, probe, jobs), probe, backoff=fast())).jobs[0]
    assert outcome(result) == ("succeeded", None, 2)
    assert result.result == {"attempt": 2}
    assert result.duration_ms is not None
    assert result.duration_ms >= 200  # the first attempt ran until its 0.2 s timeout


async def test_a_job_timing_out_on_every_attempt_fails_with_timeout_after_all_of_them(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a", "hang", timeout=0.05, retries=2)]
    result = (await run(load(tmp_path, probe, jobs), probe, backoff=fast())).jobs[0]
    assert outcome(result) == ("failed", "Timeout", 3)
    assert probe.attempts["a"] == 3


# --- halting: max_failures and the stop event --------------------------------------------


async def test_fail_fast_starts_nothing_after_the_first_failure_and_cancels_running_jobs(
    tmp_path: Path, probe: Probe
) -> None:
    """Two slots: ``blocked`` runs until cancelled; ``bad`` fails; the later jobs
    would be started by the freed slot if the run did not halt. Each cancelled job
    says why the run stopped."""
    jobs = [
        job("blocked", "hang", params={"set": "blocked-running"}),
        job("bad", "fail"),
        *(job(f"later{i}") for i in range(4)),
    ]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=2, halt=Halt.failures(1))
    assert probe.started == ["blocked", "bad"]
    results = by_name(report)
    assert outcome(results["bad"]) == ("failed", "ActionError", 1)
    assert outcome(results["blocked"]) == ("cancelled", "Cancelled", 1)
    assert results["blocked"].duration_ms is not None
    for name in ["blocked", *(f"later{i}" for i in range(4))]:
        error = results[name].error
        assert error is not None
        assert "'bad'" in error["message"]
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


@pytest.mark.parametrize(
    ("bad", "error_type"),
    [
        (job("bad", "fail"), "ActionError"),
        (job("bad", input="nothing/*.log"), "FileNotFoundError"),  # refused at load
    ],
    ids=["fails-when-run", "refused-at-load"],
)
async def test_a_job_made_ready_in_the_instant_of_the_halt_is_not_started(
    tmp_path: Path, probe: Probe, bad: dict[str, Any], error_type: str
) -> None:
    """One slot: the failure frees the slot and the worker that ran it (or settled
    it without running it) is the one that would take the next job; after a halt
    it must not start it."""
    jobs = [bad, job("next", "fail"), job("last")]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, halt=Halt.failures(1))
    assert [name for name in probe.started if name != "bad"] == []
    assert [outcome(result) for result in report.jobs] == [
        ("failed", error_type, 1),
        ("cancelled", "Cancelled", 0),
        ("cancelled", "Cancelled", 0),
    ]
    assert report.summary.failed == 1
    assert report.halted is not None
    assert "(first: 'bad')" in report.halted


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
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, halt=Halt.failures(2))
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
    tmp_path: Path, probe: Probe
) -> None:
    """The backoff is 50 s or more: only the halt can end the run in time."""
    jobs = [
        job("flaky", "flaky", params={"failures": 1}, retries=1),
        job("bad", "fail"),
    ]
    backoff = Backoff(start=100.0, cap=100.0)
    report = await run(
        load(tmp_path, probe, jobs),
        probe,
        max_concurrency=1,
        halt=Halt.failures(1),
        backoff=backoff,
    )
    results = by_name(report)
    assert outcome(results["flaky"]) == ("cancelled", "Cancelled", 1)
    assert results["flaky"].duration_ms is not None
    assert outcome(results["bad"]) == ("failed", "ActionError", 1)
    assert report.first_failure == "bad"
    assert probe.started == ["flaky", "bad"]


async def test_a_failure_being_retried_does_not_count_towards_max_failures(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 2}, retries=2), job("ok")]
    report = await run(load(tmp_path, probe, jobs), probe, halt=Halt.failures(1), backoff=fast())
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
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, halt=Halt.failures(1))
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
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=2, halt=Halt.failures(1))
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
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=1, halt=Halt.failures(1))
    assert [result.status for result in report.jobs] == ["succeeded", "failed"]
    assert report.summary.cancelled == 0
    assert report.halted is None
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


# --- what a RunListener hears ------------------------------------------------------------


async def test_a_listener_hears_each_attempt_start_before_its_end_and_each_retry(
    tmp_path: Path, probe: Probe
) -> None:
    """Every attempt: job_started (counting from 1) while no other attempt of the
    job runs, then job_retrying or job_done; never more attempts running than
    max_concurrency, and that many once the first three fill the slots."""
    jobs = [
        *(job(f"fill{i}", params={"fill": 3}) for i in range(3)),
        job("flaky", "flaky", params={"failures": 2}, retries=2),
        job("bad", "fail", retries=1),
        job("slow", "hang", params={"hangs": 1}, timeout=0.05, retries=1),
        job("after", depends_on=["flaky", "slow"]),
        job("skipped", depends_on=["bad"]),
        job("unknown", "no_such_action"),
        *(job(f"plain{i}", params={"yields": 5}) for i in range(6)),
    ]
    events = Events(limit=3)
    backoff = Backoff(start=0.001, jitter=1.0)
    report = await run(
        load(tmp_path, probe, jobs), probe, max_concurrency=3, listener=events, backoff=backoff
    )
    assert events.problems == []
    assert events.peak == 3
    assert events.running == set()
    assert events.done == by_name(report)
    for result in report.jobs:
        assert events.started[result.name] == list(range(1, result.attempts + 1))
        retries = max(result.attempts - 1, 0)
        assert len(events.retrying[result.name]) == retries, result.name
    assert outcome(events.done["flaky"]) == ("succeeded", None, 3)
    assert events.retrying["flaky"] == [
        ({"type": "ActionError", "message": "RuntimeError: attempt 1 failed"}, 0.001),
        ({"type": "ActionError", "message": "RuntimeError: attempt 2 failed"}, 0.002),
    ]
    assert events.retrying["bad"] == [
        ({"type": "ActionError", "message": "RuntimeError: bad failed"}, 0.001)
    ]
    assert events.retrying["slow"] == [
        ({"type": "Timeout", "message": "timed out after 0.05 s"}, 0.001)
    ]
    assert outcome(events.done["bad"]) == ("failed", "ActionError", 2)
    assert outcome(events.done["after"]) == ("succeeded", None, 1)
    assert outcome(events.done["skipped"]) == ("skipped", "DependencyFailed", 0)
    assert outcome(events.done["unknown"]) == ("skipped", "UnknownAction", 0)


async def test_a_listener_hears_running_jobs_cancelled_by_a_halt_end(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("blocked", "hang", params={"set": "blocked-running"}),
        job("bad", "fail", params={"wait": "blocked-running"}),
        job("never"),
    ]
    events = Events(limit=2)
    report = await run(
        load(tmp_path, probe, jobs),
        probe,
        max_concurrency=2,
        halt=Halt.failures(1),
        listener=events,
    )
    assert events.problems == []
    assert events.running == set()
    assert events.done == by_name(report)
    assert dict(events.started) == {"blocked": [1], "bad": [1]}
    assert [events.done[name].status for name in ("blocked", "bad", "never")] == [
        "cancelled",
        "failed",
        "cancelled",
    ]


async def test_on_job_done_is_called_once_per_job(tmp_path: Path, probe: Probe) -> None:
    jobs = [
        job("ok"),
        job("bad", "raise", params={"kind": "ValueError"}),
        job("dependent", depends_on=["bad"]),
        job("unknown", "no_such_action"),
        job("flaky", "flaky", params={"failures": 1}, retries=1),
    ]
    seen: list[JobResult] = []
    report = await run(load(tmp_path, probe, jobs), on_job_done=seen.append, backoff=fast())
    assert sorted(result.name for result in seen) == sorted(job["name"] for job in jobs)
    assert {result.name: result for result in seen} == by_name(report)


async def test_on_job_done_and_a_listener_both_hear_every_result(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("ok"), job("bad", "fail"), job("after", depends_on=["bad"])]
    events = Events()
    report = await run(load(tmp_path, probe, jobs), probe, listener=events)
    assert sorted(probe.done) == ["after", "bad", "ok"]
    assert events.done == by_name(report)


class Raising(RunListener):
    """A listener whose ``event`` raises for job ``a``, as writing ``-v`` lines to a
    stderr nobody reads any more does (EPIPE)."""

    def __init__(self, event: str) -> None:
        self.event = event

    def _maybe_raise(self, event: str, name: str) -> None:
        if event == self.event and name == "a":
            raise BrokenPipeError(32, "Broken pipe")

    def job_started(self, job: Job, attempt: int) -> None:
        self._maybe_raise("job_started", job.name)

    def job_retrying(self, job: Job, error: dict[str, str], delay: float) -> None:
        self._maybe_raise("job_retrying", job.name)

    def job_done(self, result: JobResult) -> None:
        self._maybe_raise("job_done", result.name)


@pytest.mark.parametrize("event", ["job_started", "job_retrying", "job_done"])
async def test_a_listener_that_raises_never_hangs_the_run(
    tmp_path: Path, probe: Probe, event: str
) -> None:
    """b waits for a, whose events raise. The listener's error may end the run or
    fail the job, but the run must end (a normal run here takes milliseconds)."""
    jobs = [
        job("a", "flaky", params={"failures": 1}, retries=1),
        job("b", depends_on=["a"]),
        job("c"),
    ]
    config = load(tmp_path, probe, jobs)
    ended = False
    with anyio.move_on_after(2):
        try:
            await run_batch(config, listener=Raising(event), backoff=fast())
        except* OSError:
            pass  # the listener's error ended the run: it did end
        ended = True
    assert ended, f"the run hung after {event} raised"


# --- named limits: ReadyJobs -------------------------------------------------------------


def ready_jobs(limits: dict[str, int], needs: list[tuple[str, ...]]) -> ReadyJobs:
    """Ready jobs needing the named ``limits``' slots, one of each name, and no more
    of the run's slots than there are jobs."""
    pools = {name: number for number, name in enumerate(limits, start=1)}
    return ReadyJobs(
        [len(needs), *limits.values()],
        [needs_of(1, dict.fromkeys(names, 1), pools) for names in needs],
    )


def in_use(ready: ReadyJobs, limits: dict[str, int]) -> dict[str, int]:
    """The slots of each named limit that jobs hold."""
    return {name: ready.in_use[number] for number, name in enumerate(limits, start=1)}


def take_all(ready: ReadyJobs) -> list[int]:
    taken = []
    while (index := ready.take()) is not None:
        taken.append(index)
    return taken


def test_ready_jobs_take_and_release_return_every_limit_to_zero() -> None:
    needs = [("disk",), ("net",), ("disk", "net"), (), ("net", "disk")]
    ready = ready_jobs({"disk": 2, "net": 2}, needs)
    for index in range(len(needs)):
        ready.push(index)
    first = take_all(ready)
    assert first == [0, 1, 2, 3]
    assert in_use(ready, {"disk": 2, "net": 2}) == {"disk": 2, "net": 2}
    for index in first:
        ready.release(index)
    assert in_use(ready, {"disk": 2, "net": 2}) == {"disk": 0, "net": 0}
    assert take_all(ready) == [4]
    ready.release(4)
    assert in_use(ready, {"disk": 2, "net": 2}) == {"disk": 0, "net": 0}


def test_ready_jobs_are_taken_in_config_order_among_those_that_can_run() -> None:
    needs = [("disk",), (), ("disk",), ("net",), (), ("disk",)]
    ready = ready_jobs({"disk": 1, "net": 1}, needs)
    for index in reversed(range(len(needs))):
        ready.push(index)
    assert take_all(ready) == [0, 1, 3, 4]
    ready.release(0)
    assert take_all(ready) == [2]
    ready.release(2)
    assert take_all(ready) == [5]


def test_a_ready_job_pushed_back_keeps_its_config_order_place() -> None:
    ready = ready_jobs({}, [(), (), ()])
    ready.push(2)
    ready.push(1)
    assert ready.take() == 1
    ready.push(0)
    assert take_all(ready) == [0, 2]


def test_a_job_needing_two_limits_never_takes_one_while_the_other_is_full() -> None:
    ready = ready_jobs({"a": 1, "b": 1}, [("b",), ("a", "b"), ("a",)])
    ready.push(0)
    assert ready.take() == 0
    ready.push(1)
    assert ready.take() is None
    assert in_use(ready, {"a": 1, "b": 1}) == {"a": 0, "b": 1}
    ready.push(2)
    assert ready.take() == 2  # a is free: the job needing both did not hold it
    ready.release(0)
    assert ready.take() is None  # b is free now but a is not
    ready.release(2)
    assert ready.take() == 1
    assert in_use(ready, {"a": 1, "b": 1}) == {"a": 1, "b": 1}


def test_a_limit_named_twice_by_one_job_takes_one_slot() -> None:
    ready = ready_jobs({"disk": 2}, [("disk", "disk"), ("disk",)])
    ready.push(0)
    ready.push(1)
    assert take_all(ready) == [0, 1]
    assert in_use(ready, {"disk": 2}) == {"disk": 2}


def test_a_job_needing_no_limit_is_never_held_back_by_full_limits() -> None:
    ready = ready_jobs({"disk": 1}, [("disk",), ("disk",), ()])
    for index in range(3):
        ready.push(index)
    assert take_all(ready) == [0, 2]


def test_take_unlimited_takes_only_jobs_without_limits_in_order_up_to_most() -> None:
    needs = [(), ("disk",), (), (), ("disk",), (), ()]
    ready = ready_jobs({"disk": 1}, needs)
    for index in reversed(range(len(needs))):
        ready.push(index)
    assert ready.count_unlimited() == 5
    assert ready.take_unlimited(lambda index: True, 2) == [0, 2]
    assert ready.count_unlimited() == 3
    assert in_use(ready, {"disk": 1}) == {"disk": 0}
    assert ready.take_unlimited(lambda index: True, 0) == []
    assert take_all(ready) == [1, 3, 5, 6]


def test_take_unlimited_stops_at_the_first_job_not_accepted() -> None:
    ready = ready_jobs({}, [(), (), (), ()])
    for index in range(4):
        ready.push(index)
    assert ready.take_unlimited(lambda index: index != 2, 10) == [0, 1]
    assert take_all(ready) == [2, 3]


# --- named limits: run_batch -------------------------------------------------------------


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


async def test_a_job_waiting_for_a_named_slot_holds_no_global_slot(
    tmp_path: Path, probe: Probe
) -> None:
    """Four global slots, disk of size 1: d0 holds disk until every unlimited job
    has run. Were d1..d3 holding global slots while they wait for disk, p0..p5
    could never run and d0 would never be released (fail_after ends the deadlock)."""
    disk = {"limits": ["disk"]}
    jobs = [
        job("d0", limits=["disk"], params={**disk, "wait": "plain-done"}),
        *(job(f"d{i}", limits=["disk"], params=disk) for i in range(1, 4)),
        *(job(f"p{i}", params={"yields": 5}) for i in range(5)),
        job("p5", params={"set": "plain-done"}, depends_on=[f"p{i}" for i in range(5)]),
    ]
    report = await run(load(tmp_path, probe, jobs, limits={"disk": 1}), probe, max_concurrency=4)
    assert report.summary.succeeded == len(jobs)
    assert probe.peak_in["disk"] == 1
    assert probe.peak == 4
    assert probe.started == ["d0", *(f"p{i}" for i in range(6)), "d1", "d2", "d3"]
    assert probe.finished.index("p5") < probe.finished.index("d0")
    assert probe.started.index("d1") > probe.finished.index("d0")


@pytest.mark.parametrize("sizes", [{"a": 1, "b": 1}, {"a": 1, "b": 2}])
async def test_jobs_naming_limits_in_opposite_orders_never_deadlock(
    tmp_path: Path, probe: Probe, sizes: dict[str, int]
) -> None:
    orders = [["a", "b"], ["b", "a"]] * 6
    jobs = [
        job(f"j{i:02}", limits=order, params={"limits": order, "yields": 5})
        for i, order in enumerate(orders)
    ]
    report = await run(load(tmp_path, probe, jobs, limits=sizes), probe, max_concurrency=4)
    assert report.summary.succeeded == 12
    assert dict(probe.peak_in) == {"a": 1, "b": 1}  # every job needs a, of size 1


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


async def test_a_halt_cancels_a_job_holding_named_slots_and_the_job_waiting_for_them(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("holder", "hang", limits=["disk", "net"], params={"set": "holding"}),
        job("bad", "fail", params={"wait": "holding"}),
        job("waiting", limits=["disk"]),
    ]
    config = load(tmp_path, probe, jobs, limits={"disk": 1, "net": 1})
    report = await run(config, probe, max_concurrency=3, halt=Halt.failures(1))
    assert [outcome(result) for result in report.jobs] == [
        ("cancelled", "Cancelled", 1),
        ("failed", "ActionError", 1),
        ("cancelled", "Cancelled", 0),
    ]
    assert probe.started == ["holder", "bad"]


async def test_a_limit_size_above_max_concurrency_is_bounded_by_max_concurrency(
    tmp_path: Path, probe: Probe
) -> None:
    net = {"limits": ["net"], "fill": 3, "yields": 5}
    jobs = [job(f"n{i}", limits=["net"], params=net) for i in range(6)]
    await run(load(tmp_path, probe, jobs, limits={"net": 10}), probe, max_concurrency=3)
    assert probe.peak_in["net"] == 3
    assert probe.peak == 3


# --- sizes -------------------------------------------------------------------------------


async def test_zero_jobs_give_an_empty_report(tmp_path: Path, probe: Probe) -> None:
    report = await run(load(tmp_path, probe, []))
    assert report.jobs == []
    assert report.summary.to_dict() == {
        "total_jobs": 0,
        "succeeded": 0,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
    }
    assert report.ok


async def test_a_batch_of_two_thousand_jobs_completes(tmp_path: Path, probe: Probe) -> None:
    jobs = [job(f"j{i:04}", "trivial") for i in range(2000)]
    report = await run(load(tmp_path, probe, jobs), max_concurrency=8)
    assert report.summary.succeeded == 2000
    assert [result.name for result in report.jobs] == [j["name"] for j in jobs]


# --- small files in batches (the local executor's kernel path) ---------------------------


def scan_config(folder: Path, probe: KernelProbe, count: int) -> list[str]:
    """``count`` small files and a config of one ``probe`` job each."""
    names = [f"f{i:03}.txt" for i in range(count)]
    for name in names:
        (folder / name).write_text("x" * 10, encoding="utf-8")
    jobs = [{"name": name, "action": probe.name, "input": name} for name in names]
    write_json(folder / "batch.json", {"jobs": jobs})
    return names


@pytest.mark.parametrize(("limit", "batch_jobs"), [(1, 4), (2, 4), (4, 4), (4, 64)])
async def test_batched_small_files_scan_exactly_max_concurrency_at_once(
    tmp_path: Path, limit: int, batch_jobs: int
) -> None:
    """Each batch runs in one thread, its files one after another; batches share
    the slots fairly, so the peak of scans at once is the limit, never above."""
    kernel_probe = KernelProbe(hold=0.01)
    names = scan_config(tmp_path, kernel_probe, 32)
    config = load_config(tmp_path / "batch.json", registry=ActionRegistry([kernel_probe.spec]))
    executor = LocalExecutor(Tuning(batch_jobs=batch_jobs))
    report = await run(config, max_concurrency=limit, executor=executor)
    assert kernel_probe.peak == limit
    assert sorted(kernel_probe.scanned) == names
    assert [(result.status, result.result) for result in report.jobs] == [
        ("succeeded", {"bytes": 10})
    ] * len(names)


@pytest.mark.slow
async def test_batched_small_files_never_show_the_listener_more_running_than_the_limit(
    tmp_path: Path,
) -> None:
    """One slot, one batch of two files. The batch reports the file it is on after
    REPORT_AFTER seconds (so that a slow one shows as running); the file done before
    it must not then be reported started after it, two attempts running in one slot."""
    kernel_probe = KernelProbe(hold=0.6 * REPORT_AFTER)
    names = scan_config(tmp_path, kernel_probe, 2)
    config = load_config(tmp_path / "batch.json", registry=ActionRegistry([kernel_probe.spec]))
    events = Events(limit=1)
    report = await run(config, max_concurrency=1, listener=events)
    assert [result.status for result in report.jobs] == ["succeeded", "succeeded"]
    assert events.problems == []
    assert events.order == names


async def test_a_batched_file_being_read_when_the_run_stops_is_reported_as_started(
    tmp_path: Path,
) -> None:
    """As with any action cancelled while it runs (attempts 1 and a duration), a
    small file whose scan was under way when the stop came is no "never started"
    job; the files after it in the batch were never read (attempts 0)."""
    kernel_probe = KernelProbe(hold=0.3)
    names = scan_config(tmp_path, kernel_probe, 3)
    config = load_config(tmp_path / "batch.json", registry=ActionRegistry([kernel_probe.spec]))
    stop = anyio.Event()

    async def stop_while_scanning() -> None:
        while kernel_probe.running == 0:  # noqa: ASYNC110 - set in a thread, not awaitable
            await anyio.sleep(0.005)
        stop.set()

    async with anyio.create_task_group() as group:
        group.start_soon(stop_while_scanning)
        report = await run(config, max_concurrency=1, stop=stop)
    assert kernel_probe.scanned == names[:1]
    assert [outcome(result) for result in report.jobs] == [
        ("cancelled", "Cancelled", 1),
        ("cancelled", "Cancelled", 0),
        ("cancelled", "Cancelled", 0),
    ]
    assert report.jobs[0].duration_ms is not None


# --- the built-in actions on real files --------------------------------------------------


async def test_builtin_actions_report_a_missing_input_as_written_while_others_succeed(
    tmp_path: Path,
) -> None:
    (tmp_path / "logs").mkdir()
    content = "one ERROR\ntwo\nthree FATAL\n"
    (tmp_path / "logs" / "app.log").write_text(content, encoding="utf-8")
    jobs: list[dict[str, Any]] = [
        {"name": "lines", "action": "count_lines", "input": "logs/app.log"},
        {"name": "missing", "action": "count_lines", "input": "logs/none.log"},
        {
            "name": "errors",
            "action": "search_pattern",
            "input": "logs/app.log",
            "params": {"pattern": "ERROR|FATAL"},
        },
        {"name": "size", "action": "file_size", "input": "logs/app.log"},
    ]
    report = await run(load_config(write_json(tmp_path / "batch.json", {"jobs": jobs})))
    results = by_name(report)
    assert results["missing"].status == "failed"
    assert results["missing"].error == {
        "type": "FileNotFoundError",
        "message": "logs/none.log: no such file",
    }
    assert results["missing"].input == "logs/none.log"
    assert results["lines"].result == {"lines": 3}
    assert results["errors"].result == {"matches": 2, "matching_lines": 2}
    assert results["size"].result == {"bytes": len(content.encode())}
    assert report.summary.to_dict() == {
        "total_jobs": 4,
        "succeeded": 3,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
    }
