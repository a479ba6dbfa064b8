"""run_batch(): scheduling, dependencies, failures as values, retries, timeouts, limits.

Test actions live in a registry of their own (a seam, not a mock) and record what
they see in a :class:`Probe`. Concurrency is checked by counting running actions and
by events that would deadlock (caught by ``fail_after``) if the scheduler were wrong,
never by wall-clock time.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asyncbatch.config import BatchConfig, load_config
from asyncbatch.errors import JobError, LineTooLong
from asyncbatch.registry import ActionRegistry
from asyncbatch.output.report import JobResult, Report
from asyncbatch.engine import DEFAULT_CONCURRENCY, run_batch

pytestmark = pytest.mark.anyio

HANG = 5
"""Generous bound on anything that must not hang (seconds)."""


class QuotaExceeded(JobError):
    """A custom JobError subclass: its own error_type must reach the report."""

    error_type = "QuotaExceeded"


def _make_error(kind: str, path: Path) -> Exception:
    makers: dict[str, Callable[[], Exception]] = {
        "ValueError": lambda: ValueError("bad value in the input"),
        "FileNotFoundError": lambda: FileNotFoundError(
            errno.ENOENT, os.strerror(errno.ENOENT), str(path)
        ),
        "PermissionError": lambda: PermissionError(
            errno.EACCES, os.strerror(errno.EACCES), str(path)
        ),
        "LineTooLong": lambda: LineTooLong(path=str(path), limit=10),
        "QuotaExceeded": lambda: QuotaExceeded("quota of 3 exceeded"),
        "TimeoutError": lambda: TimeoutError("upstream did not answer"),
        "KeyError": lambda: KeyError("missing"),
    }
    return makers[kind]()


class Probe:
    """Test actions and what they observed. Each action is named after what it does;
    the job's input doubles as its identity (``path.name``)."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.running_in: dict[str, int] = defaultdict(int)
        self.peak_in: dict[str, int] = defaultdict(int)
        self.started: list[str] = []
        self.finished: list[str] = []
        self.attempts: dict[str, int] = defaultdict(int)
        self.events: dict[str, anyio.Event] = defaultdict(anyio.Event)
        self.registry = ActionRegistry()
        self._register()

    def _enter(self, path: Path, params: dict[str, Any]) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        for limit in params.get("limits", []):
            self.running_in[limit] += 1
            self.peak_in[limit] = max(self.peak_in[limit], self.running_in[limit])
        self.attempts[path.name] += 1
        self.started.append(path.name)

    def _leave(self, path: Path, params: dict[str, Any]) -> None:
        self.running -= 1
        for limit in params.get("limits", []):
            self.running_in[limit] -= 1
        self.finished.append(path.name)

    def _register(self) -> None:
        action = self.registry.action

        @action("record")
        async def record(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Count itself running; optionally wait for the slots to fill, for an
            event, and set an event; yield to the scheduler a few times."""
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

        @action("raise")
        async def raise_(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Raise the exception named by ``params["kind"]``."""
            self._enter(path, params)
            self._leave(path, params)
            raise _make_error(params["kind"], path)

        @action("flaky")
        async def flaky(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Fail the first ``params["failures"]`` attempts, then succeed."""
            self._enter(path, params)
            self._leave(path, params)
            attempt = self.attempts[path.name]
            if attempt <= params["failures"]:
                raise RuntimeError(f"attempt {attempt} failed")
            return {"attempt": attempt}

        @action("hang")
        async def hang(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Sleep 10 s on the first ``params.get("hangs", 1000)`` attempts."""
            self._enter(path, params)
            try:
                if self.attempts[path.name] <= params.get("hangs", 1000):
                    await anyio.sleep(10)
            finally:
                self._leave(path, params)
            return {"attempt": self.attempts[path.name]}

        @action("returns")
        async def returns(path: Path, params: dict[str, Any]) -> Any:
            """Return something that is not a JSON object (chosen by ``kind``)."""
            values = {
                "list": [1, 2, 3],
                "none": None,
                "set_in_dict": {"tokens": {"a", "b"}},
                "nan_in_dict": {"ratio": math.nan},
                "object_in_dict": {"path": path},
            }
            return values[params["kind"]]

        @action("trivial")
        async def trivial(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            return {"ok": True}


@pytest.fixture
def probe() -> Probe:
    return Probe()


def job(name: str, action: str = "record", **fields: Any) -> dict[str, Any]:
    """A job whose input is its own name (test actions identify themselves by it)."""
    return {"name": name, "action": action, "input": name, **fields}


def load(tmp_path: Path, probe: Probe, jobs: list[dict[str, Any]], **top: Any) -> BatchConfig:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({**top, "jobs": jobs}), encoding="utf-8")
    return load_config(path, registry=probe.registry)


async def run(config: BatchConfig, **options: Any) -> Report:
    with anyio.fail_after(HANG):
        return await run_batch(config, **options)


def by_name(report: Report) -> dict[str, JobResult]:
    return {result.name: result for result in report.jobs}


# --- concurrency -------------------------------------------------------------------


async def test_twenty_jobs_run_exactly_three_at_a_time_with_max_concurrency_3(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job(f"j{i:02}", params={"fill": 3}) for i in range(20)]
    report = await run(load(tmp_path, probe, jobs), max_concurrency=3)
    assert probe.peak == 3
    assert report.max_concurrency == 3
    assert report.summary.succeeded == 20


@pytest.mark.parametrize("limit", [1, 2, 5])
async def test_running_actions_never_exceed_max_concurrency(
    tmp_path: Path, probe: Probe, limit: int
) -> None:
    jobs = [job(f"j{i:02}", params={"yields": 5}) for i in range(12)]
    await run(load(tmp_path, probe, jobs), max_concurrency=limit)
    assert 1 <= probe.peak <= limit


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
async def test_max_concurrency_below_one_is_a_value_error(
    tmp_path: Path, probe: Probe, bad: int
) -> None:
    config = load(tmp_path, probe, [job("a")], max_concurrency=3)
    with pytest.raises(ValueError, match="max_concurrency"):
        await run_batch(config, max_concurrency=bad)
    assert probe.started == []


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


# --- dependencies ------------------------------------------------------------------


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


# --- failures are values ------------------------------------------------------------


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


# --- retries -----------------------------------------------------------------------


async def test_a_flaky_job_succeeds_within_its_retries_and_counts_attempts(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 2}, retries=2)]
    result = (await run(load(tmp_path, probe, jobs))).jobs[0]
    assert result.status == "succeeded"
    assert result.attempts == 3
    assert result.result == {"attempt": 3}
    assert result.error is None


async def test_a_job_that_exhausts_its_retries_fails_after_retries_plus_one_attempts(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 10}, retries=2)]
    result = (await run(load(tmp_path, probe, jobs))).jobs[0]
    assert result.status == "failed"
    assert result.attempts == 3
    assert probe.attempts["flaky"] == 3
    assert result.error == {"type": "ActionError", "message": "RuntimeError: attempt 3 failed"}


async def test_without_retries_a_failure_is_final(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 1})]
    result = (await run(load(tmp_path, probe, jobs))).jobs[0]
    assert result.status == "failed"
    assert result.attempts == 1


async def test_config_default_retries_apply_to_jobs_without_their_own(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("inherits", "flaky", params={"failures": 1}),
        job("own", "flaky", params={"failures": 1}, retries=0),
    ]
    results = by_name(await run(load(tmp_path, probe, jobs, defaults={"retries": 1})))
    assert (results["inherits"].status, results["inherits"].attempts) == ("succeeded", 2)
    assert (results["own"].status, results["own"].attempts) == ("failed", 1)


async def test_default_retries_argument_overrides_the_config_default(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 1})]
    config = load(tmp_path, probe, jobs, defaults={"retries": 3})
    result = (await run(config, default_retries=0)).jobs[0]
    assert (result.status, result.attempts) == ("failed", 1)


async def test_default_retries_argument_applies_when_the_config_has_none(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 1})]
    result = (await run(load(tmp_path, probe, jobs), default_retries=1)).jobs[0]
    assert (result.status, result.attempts) == ("succeeded", 2)


async def test_a_job_waiting_for_a_retry_holds_no_slot(tmp_path: Path, probe: Probe) -> None:
    """One slot: while the flaky job backs off, the other job runs."""
    jobs = [job("flaky", "flaky", params={"failures": 1}, retries=1), job("other")]
    report = await run(load(tmp_path, probe, jobs), max_concurrency=1)
    assert probe.started == ["flaky", "other", "flaky"]
    assert [result.status for result in report.jobs] == ["succeeded", "succeeded"]


async def test_skipped_jobs_are_never_retried(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("a", "no_such_action", retries=3), job("b", depends_on=["a"], retries=3)]
    report = await run(load(tmp_path, probe, jobs))
    assert [(r.status, r.attempts) for r in report.jobs] == [("skipped", 0), ("skipped", 0)]


# --- timeouts ----------------------------------------------------------------------


async def test_a_job_over_its_timeout_fails_with_timeout_on_time(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("stuck", "hang", timeout=0.2), job("quick")]
    report = await run(load(tmp_path, probe, jobs))  # fail_after(5): the 10 s sleep ended
    stuck, quick = report.jobs
    assert stuck.status == "failed"
    assert stuck.error is not None
    assert stuck.error["type"] == "Timeout"
    assert "0.2" in stuck.error["message"]
    assert stuck.duration_ms is not None
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
    report = await run(load(tmp_path, probe, jobs), default_timeout=0.1)
    assert report.jobs[0].error is not None
    assert report.jobs[0].error["type"] == "Timeout"


async def test_a_timed_out_attempt_is_retried(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("once", "hang", params={"hangs": 1}, timeout=0.1, retries=1)]
    result = (await run(load(tmp_path, probe, jobs))).jobs[0]
    assert (result.status, result.attempts) == ("succeeded", 2)


# --- callbacks, limits, sizes --------------------------------------------------------


async def test_on_job_done_is_called_once_per_job(tmp_path: Path, probe: Probe) -> None:
    jobs = [
        job("ok"),
        job("bad", "raise", params={"kind": "ValueError"}),
        job("dependent", depends_on=["bad"]),
        job("unknown", "no_such_action"),
        job("flaky", "flaky", params={"failures": 1}, retries=1),
    ]
    seen: list[JobResult] = []
    report = await run(load(tmp_path, probe, jobs), on_job_done=seen.append)
    assert sorted(result.name for result in seen) == sorted(job["name"] for job in jobs)
    assert {result.name: result for result in seen} == by_name(report)


async def test_jobs_naming_a_limit_never_run_more_at_once_than_its_size(
    tmp_path: Path, probe: Probe
) -> None:
    """The first disk job waits until every unlimited job has finished: that only
    ends if the unlimited jobs use the other slots while disk jobs queue."""
    disk = {"limits": ["disk"]}
    jobs = [
        job("d0", limits=["disk"], params={**disk, "wait": "plain-done"}),
        *(job(f"d{i}", limits=["disk"], params=disk) for i in range(1, 4)),
        *(job(f"p{i}", params={"yields": 5}) for i in range(5)),
        job("p5", params={"set": "plain-done"}, depends_on=[f"p{i}" for i in range(5)]),
    ]
    report = await run(load(tmp_path, probe, jobs, limits={"disk": 1}), max_concurrency=4)
    assert probe.peak_in["disk"] == 1
    assert probe.peak == 4
    assert report.summary.succeeded == len(jobs)
    assert probe.started.index("d1") > probe.finished.index("d0")


async def test_named_limits_in_either_order_never_deadlock(tmp_path: Path, probe: Probe) -> None:
    jobs = [
        job(f"j{i}", limits=order, params={"limits": order, "yields": 5})
        for i, order in enumerate([["a", "b"], ["b", "a"]] * 5)
    ]
    report = await run(load(tmp_path, probe, jobs, limits={"a": 1, "b": 2}), max_concurrency=4)
    assert report.summary.succeeded == 10
    assert probe.peak_in["a"] == 1
    assert probe.peak_in["b"] == 1


async def test_a_limit_slot_is_released_when_a_job_fails_or_times_out(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("fails", "raise", limits=["one"], params={"kind": "ValueError"}),
        job("times-out", "hang", limits=["one"], timeout=0.05),
        job("after", limits=["one"]),
    ]
    results = by_name(await run(load(tmp_path, probe, jobs, limits={"one": 1})))
    assert results["after"].status == "succeeded"


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


# --- the built-in actions on real files ---------------------------------------------


async def test_builtin_actions_report_a_missing_input_as_written_while_others_succeed(
    tmp_path: Path,
) -> None:
    (tmp_path / "logs").mkdir()
    content = "one ERROR\ntwo\nthree FATAL\n"
    (tmp_path / "logs" / "app.log").write_text(content, encoding="utf-8")
    config_path = tmp_path / "batch.json"
    config_path.write_text(
        json.dumps(
            {
                "jobs": [
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
            }
        ),
        encoding="utf-8",
    )
    report = await run(load_config(config_path))
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
