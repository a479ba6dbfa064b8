"""The run's pure decisions (:class:`RunState`, :class:`ReadyJobs`), driven without
an event loop or a clock: retry rules, halting now and soon, on failures and on
successes, the slots weighted jobs take (and the rule that keeps a heavy job from
waiting for ever), and which jobs ``--resume`` may reuse once a dependency ran."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from typing import Any

import pytest
from support import Probe, job, load

from asyncbatch.controls import Halt
from asyncbatch.engine._limits import LIGHT, ReadyJobs, SlotNumbers, needs_of
from asyncbatch.engine._settings import RETRY_DELAY_CAP, Backoff, Settings
from asyncbatch.engine._state import Retry, RunState
from asyncbatch.errors import CommandFailed, Timeout
from asyncbatch.model import JobResult


def state_of(
    tmp_path: Path,
    jobs: list[dict[str, Any]],
    *,
    halt: Halt | None = None,
    retries: int = 0,
    concurrency: int = 4,
    retry_delay: float | None = None,
    **top: Any,
) -> RunState:
    """The state of a run of ``jobs`` (loaded as a config would be), at time 0."""
    config = load(tmp_path, Probe(), jobs, **top)
    settings = Settings(
        timeout=None,
        retries=retries,
        halt=halt,
        root=None,
        backoff=Backoff(rng=random.Random(7)),
        retry_delay=retry_delay,
        concurrency=concurrency,
    )
    return RunState(config.jobs, config.limits, settings, 0.0)


def take_all(state: RunState) -> list[int]:
    taken = []
    while (index := state.take()) is not None:
        taken.append(index)
    return taken


def start(state: RunState, index: int) -> None:
    state.attempt_started(index, 1.0)


def succeed(state: RunState, index: int, *, reused: bool = False) -> list[JobResult]:
    state.ready.release(index)
    if reused:
        name = state.jobs[index].name
        previous = JobResult(name=name, action="record", input="x", status="succeeded")
        previous.reused = True
        return state.finish(index, "succeeded", 2.0, reused=previous)
    return state.finish(index, "succeeded", 2.0, result={})


def fail(state: RunState, index: int) -> list[JobResult]:
    state.ready.release(index)
    return state.finish(index, "failed", 2.0, error={"type": "ActionError", "message": "x"})


def missing(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


# --- retry rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_on", "error", "retried"),
    [
        (None, RuntimeError("x"), True),
        (["OSError"], missing("a"), True),  # a base class of the exception raised
        (["FileNotFoundError"], missing("a"), True),  # the report's error.type
        (["PermissionError"], missing("a"), False),
        (["Timeout"], Timeout(seconds=1), True),
        (["TimeoutError"], Timeout(seconds=1), False),  # ours is not the builtin
        (["ActionError"], RuntimeError("x"), True),  # the report's type of the unknown
        (["RuntimeError"], RuntimeError("x"), True),
        (["Exception"], ValueError("x"), True),
        ([3], CommandFailed(reason="exit status 3", exit_code=3), True),
        ([3], CommandFailed(reason="exit status 4", exit_code=4), False),
        ([3], CommandFailed(reason="killed by SIGKILL"), False),
        (["CommandFailed"], CommandFailed(reason="exit status 4", exit_code=4), True),
        ([3, "OSError"], missing("a"), True),
        ([], RuntimeError("x"), False),
    ],
)
def test_retry_on_names_what_is_retried_and_anything_else_fails_at_once(
    tmp_path: Path, retry_on: list[Any] | None, error: BaseException, retried: bool
) -> None:
    fields: dict[str, Any] = {"retries": 3}
    if retry_on is not None:
        fields["retry_on"] = retry_on
    state = state_of(tmp_path, [job("a", **fields)])
    (index,) = take_all(state)
    start(state, index)
    after = state.attempt_failed(index, error)
    assert isinstance(after, Retry) == retried
    assert after == "failed" or retried
    assert state.retrying == ({index} if retried else set())


def test_defaults_retry_on_applies_to_jobs_without_their_own(tmp_path: Path) -> None:
    jobs = [job("own", retry_on=["ValueError"]), job("default")]
    state = state_of(tmp_path, jobs, retries=1, defaults={"retry_on": ["OSError"]})
    assert take_all(state) == [0, 1]
    for index in (0, 1):
        start(state, index)
    assert state.attempt_failed(0, missing("x")) == "failed"
    assert isinstance(state.attempt_failed(1, missing("x")), Retry)


def test_backoff_starts_at_the_jobs_retry_delay_doubles_and_is_capped_at_a_minute(
    tmp_path: Path,
) -> None:
    state = state_of(tmp_path, [job("a", retries=20, retry_delay=3)])
    (index,) = take_all(state)
    delays = []
    for _ in range(8):
        start(state, index)
        after = state.attempt_failed(index, RuntimeError("x"))
        assert isinstance(after, Retry)
        delays.append(after.delay)
        state.ready.release(index)  # as the scheduler does once the attempt is over
        assert state.retry_due(index)
        assert take_all(state) == [index]
    bases = [min(3 * 2**n, RETRY_DELAY_CAP) for n in range(8)]
    assert all(base / 2 <= delay <= base for delay, base in zip(delays, bases, strict=True))
    assert max(delays) <= RETRY_DELAY_CAP


def test_the_runs_retry_delay_is_the_default_and_a_jobs_own_wins(tmp_path: Path) -> None:
    state_delay = 20.0
    state = state_of(
        tmp_path, [job("own", retry_delay=5), job("default")], retries=1, retry_delay=state_delay
    )
    assert take_all(state) == [0, 1]
    own, default = (state_after_one_failure(state, index) for index in (0, 1))
    assert 2.5 <= own <= 5
    assert state_delay / 2 <= default <= state_delay


def state_after_one_failure(state: RunState, index: int) -> float:
    start(state, index)
    after = state.attempt_failed(index, RuntimeError("x"))
    assert isinstance(after, Retry)
    return after.delay


def test_without_retry_delay_the_backoff_is_as_before(tmp_path: Path) -> None:
    backoff = Backoff(rng=random.Random(1))
    assert all(0.05 <= backoff.delay(1) <= 0.1 for _ in range(100))
    assert all(5 <= backoff.delay(10) <= 10 for _ in range(100))


# --- halting ---------------------------------------------------------------------------


def test_a_soon_halt_starts_nothing_new_makes_failures_final_and_cancels_retries(
    tmp_path: Path,
) -> None:
    jobs = [job(name) for name in ("a", "b", "c", "d")]
    state = state_of(tmp_path, jobs, halt=Halt.parse("soon,fail=1"), retries=2, concurrency=3)
    assert take_all(state) == [0, 1, 2]
    for index in (0, 1, 2):
        start(state, index)
    assert isinstance(state.attempt_failed(1, RuntimeError("x")), Retry)  # waits to retry
    fail(state, 0)
    assert (state.halt_when, state.halted_by) == ("soon", Halt.parse("soon,fail=1"))
    assert state.take() is None  # nothing new
    cancelled = state.cancel_retrying(3.0)
    assert [(r.name, r.status) for r in cancelled] == [("b", "cancelled")]
    assert not state.retry_due(1)  # its timer fires: nothing happens
    assert state.attempt_failed(2, RuntimeError("x")) == "failed"  # final, not retried
    fail(state, 2)
    rest = state.cancel_unfinished(4.0)
    assert [(r.name, r.status) for r in rest] == [("d", "cancelled")]
    assert [r.status for r in state.final()] == ["failed", "cancelled", "failed", "cancelled"]


def test_a_now_halt_makes_a_failure_in_flight_cancelled(tmp_path: Path) -> None:
    state = state_of(tmp_path, [job("a"), job("b")], halt=Halt.failures(1), retries=3)
    assert take_all(state) == [0, 1]
    start(state, 0)
    start(state, 1)
    fail(state, 0)
    assert state.halt_when == "now"
    assert state.halt_reason == "the run halted after 1 failure (first: 'a')"
    assert state.attempt_failed(1, RuntimeError("x")) == "cancelled"


def test_a_halt_on_success_counts_only_jobs_that_ran_and_names_itself(tmp_path: Path) -> None:
    jobs = [job(name) for name in ("a", "b", "c", "d")]
    state = state_of(tmp_path, jobs, halt=Halt.parse("now,success=2"))
    assert take_all(state) == [0, 1, 2, 3]
    succeed(state, 0, reused=True)
    succeed(state, 1, reused=True)
    assert state.halt_reason is None  # reused jobs did not run
    start(state, 2)
    succeed(state, 2)
    assert state.successes_to_halt() == 1
    start(state, 3)
    assert state.halt_reason is None
    succeed(state, 3)
    assert state.halt_reason is None  # the last job: nothing left to halt


def test_a_success_halt_cancels_the_rest_with_a_message_naming_it(tmp_path: Path) -> None:
    state = state_of(tmp_path, [job("a"), job("b"), job("c")], halt=Halt.parse("now,success=1"))
    assert take_all(state) == [0, 1, 2]
    start(state, 0)
    succeed(state, 0)
    assert state.halted_on_success
    assert state.halt_reason == "halted by --halt now,success=1"
    cancelled = state.cancel_unfinished(3.0)
    assert {r.error["message"] for r in cancelled if r.error} == {"halted by --halt now,success=1"}


@pytest.mark.parametrize(
    ("text", "jobs", "threshold"),
    [
        ("now,fail=10%", 25, 3),
        ("soon,fail=1%", 10, 1),
        ("now,fail=100%", 7, 7),
        ("now,fail=3", 2, 3),
    ],
)
def test_a_percentage_halts_after_its_share_of_the_jobs_rounded_up(
    text: str, jobs: int, threshold: int
) -> None:
    assert Halt.parse(text).threshold(jobs) == threshold


def test_a_percentage_halt_counts_the_runs_jobs(tmp_path: Path) -> None:
    jobs = [job(f"j{i}") for i in range(10)]
    state = state_of(tmp_path, jobs, halt=Halt.parse("soon,fail=20%"), concurrency=10)
    taken = take_all(state)
    fail(state, taken[0])
    assert state.halt_reason is None
    fail(state, taken[1])
    assert state.halt_reason == "the run halted after 2 failures (first: 'j0')"


def test_a_stop_after_a_soon_halt_makes_it_now(tmp_path: Path) -> None:
    state = state_of(tmp_path, [job("a"), job("b")], halt=Halt.parse("soon,fail=1"))
    take_all(state)
    fail(state, 0)
    assert state.halt_when == "soon"
    assert state.halt("the run was interrupted")
    assert str(state.halt_when) == "now"
    assert state.halt_reason == "the run halted after 1 failure (first: 'a')"
    assert not state.halt("again")


# --- dependents re-run -------------------------------------------------------------------


def test_a_job_is_reused_only_if_no_dependency_ran(tmp_path: Path) -> None:
    jobs = [job("a"), job("b", depends_on=["a"]), job("c", depends_on=["b"]), job("d")]
    state = state_of(tmp_path, jobs)
    assert take_all(state) == [0, 3]
    start(state, 0)
    succeed(state, 0)  # a ran
    assert take_all(state) == [1]
    assert not state.may_reuse(1)
    assert state.may_reuse(3)
    start(state, 1)
    succeed(state, 1)  # b ran again, so c runs again too
    assert take_all(state) == [2]
    assert not state.may_reuse(2)


def test_a_job_after_reused_dependencies_may_be_reused(tmp_path: Path) -> None:
    jobs = [job("a"), job("b", depends_on=["a"]), job("c", depends_on=["b"])]
    state = state_of(tmp_path, jobs)
    assert take_all(state) == [0]
    succeed(state, 0, reused=True)
    assert take_all(state) == [1]
    assert state.may_reuse(1)
    succeed(state, 1, reused=True)
    assert take_all(state) == [2]
    assert state.may_reuse(2)


def test_one_glob_member_that_ran_makes_the_groups_dependents_run(tmp_path: Path) -> None:
    for name in ("x.log", "y.log", "z.log"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    jobs = [
        {"name": "logs", "action": "record", "input": "*.log"},
        job("after", depends_on=["logs"]),
        job("one", depends_on=["logs[y.log]"]),
    ]
    state = state_of(tmp_path, jobs)
    assert take_all(state) == [0, 1, 2]
    succeed(state, 0, reused=True)
    start(state, 1)
    succeed(state, 1)  # y.log's job ran
    succeed(state, 2, reused=True)
    assert take_all(state) == [3, 4]
    assert not state.may_reuse(3)  # after waits for the whole group
    assert not state.may_reuse(4)  # one waits for y.log's job alone
    tracker = state._tracker
    assert tracker.dependency_ran(3) == 1


# --- weights -----------------------------------------------------------------------------


def test_a_job_takes_its_slots_of_the_run_and_leaves_the_rest(tmp_path: Path) -> None:
    jobs = [job("a", slots=3), job("b"), job("c", slots=2)]
    state = state_of(tmp_path, jobs, concurrency=4)
    assert take_all(state) == [0, 1]
    assert state.ready.free() == 0
    state.ready.release(0)
    assert take_all(state) == [2]
    assert state.ready.free() == 1


def test_weighted_named_limits_take_their_weight_of_the_pool(tmp_path: Path) -> None:
    jobs = [job("a", limits={"gpu": 2}), job("b", limits=["gpu"]), job("c", limits={"gpu": 1})]
    state = state_of(tmp_path, jobs, limits={"gpu": 3})
    assert take_all(state) == [0, 1]
    state.ready.release(1)
    assert take_all(state) == [2]


def test_a_heavy_job_keeps_the_slots_it_waits_for_from_the_jobs_behind_it() -> None:
    """Without the rule, the light jobs behind the heavy one would take each slot
    as it frees, and the heavy job would start last."""
    heavy = needs_of(2, {}, {})
    ready = ReadyJobs([2], [LIGHT, heavy, LIGHT, LIGHT, LIGHT])
    for index in range(5):
        ready.push(index)
    assert ready.take() == 0
    assert ready.take() is None  # 1 needs 2 slots; 2..4 may not take the one it waits for
    assert ready.holder == 1
    ready.release(0)
    assert ready.take() == 1
    assert ready.take() is None
    ready.release(1)
    assert [ready.take(), ready.take(), ready.take()] == [2, 3, None]


def test_light_jobs_keep_nothing_a_job_waiting_for_a_named_slot_holds_no_other() -> None:
    needs = [needs_of(1, {"gpu": 1}, {"gpu": 1})] * 2 + [LIGHT]
    ready = ReadyJobs([2, 1], needs)
    for index in range(3):
        ready.push(index)
    assert [ready.take(), ready.take()] == [0, 2]  # 1 waits for gpu, 2 runs meanwhile
    assert ready.holder is None


def test_a_heavy_job_waiting_for_a_named_pool_keeps_it_and_not_the_runs_slots() -> None:
    pools = {"gpu": 1}
    gpu = needs_of(1, {"gpu": 2}, pools)
    needs = [needs_of(1, {"gpu": 1}, pools), gpu, needs_of(1, {"gpu": 1}, pools), LIGHT]
    ready = ReadyJobs([4, 2], needs)
    for index in range(4):
        ready.push(index)
    assert ready.take() == 0
    assert ready.take() == 3  # the run's slots are free for jobs that need no gpu
    assert ready.take() is None  # 2 may not take the gpu slot 1 waits for
    ready.release(0)
    assert ready.take() == 1


def test_an_earlier_heavy_job_that_waits_becomes_first_in_line() -> None:
    heavy = needs_of(3, {}, {})
    ready = ReadyJobs([3], [heavy, LIGHT, heavy, LIGHT])
    ready.push(1)
    assert ready.take() == 1
    ready.push(2)
    ready.push(3)
    assert ready.take() is None
    assert ready.holder == 2
    ready.push(0)
    assert ready.take() is None
    assert ready.holder == 0  # config order decides
    ready.release(1)
    assert [ready.take(), ready.take()] == [0, None]


def test_small_file_batches_take_nothing_from_behind_a_heavy_job_waiting() -> None:
    heavy = needs_of(2, {}, {})
    ready = ReadyJobs([2], [LIGHT, LIGHT, heavy, LIGHT, LIGHT])
    for index in range(5):
        ready.push(index)
    assert ready.take() == 0
    assert ready.take() == 1
    assert ready.take() is None
    assert ready.take_unlimited(lambda index: True, 10) == []
    ready.release(0)
    ready.release(1)
    assert ready.take() == 2
    assert ready.take_unlimited(lambda index: True, 10) == [3, 4]


def test_slot_numbers_are_the_lowest_free_ones() -> None:
    numbers = SlotNumbers()
    assert numbers.take(1) == [1]
    assert numbers.take(3) == [2, 3, 4]
    numbers.give_back([2, 3, 4])
    assert numbers.take(2) == [2, 3]
    assert numbers.take(2) == [4, 5]
