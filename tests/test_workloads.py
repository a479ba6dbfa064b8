"""Control for real workloads, through ``run_batch`` with real actions and real
concurrency: retry rules, halting soon and on success, throttled starts, jobs that
take several slots, and what each job used. The pure decisions behind them are
tested in ``test_run_state.py`` and ``test_controls.py``; the command line in
``test_workloads_cli.py``.

No timing assertions: "held back" is checked by what had started when the
throttle said so, a delay by the lower bound it promises, "does not hang" by
``fail_after``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import Probe, by_name, job, load, outcome, run

from asyncbatch import JobContext, load_config
from asyncbatch.controls import Halt
from asyncbatch.engine import Backoff, Machine
from asyncbatch.errors import ConfigError
from asyncbatch.model import JobResult, Report

pytestmark = pytest.mark.anyio


def fast() -> Backoff:
    return Backoff(start=0.001, cap=0.001)


# --- retry rules ---------------------------------------------------------------------


async def test_retry_on_retries_the_errors_it_names_and_no_other(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("named", "raise", params={"kind": "FileNotFoundError"}, retry_on=["OSError"]),
        job("other", "raise", params={"kind": "ValueError"}, retry_on=["OSError"]),
        job("any", "raise", params={"kind": "ValueError"}),
    ]
    report = await run(load(tmp_path, probe, jobs), retries=2, backoff=fast())
    results = by_name(report)
    assert outcome(results["named"]) == ("failed", "FileNotFoundError", 3)
    assert outcome(results["other"]) == ("failed", "ActionError", 1)
    assert outcome(results["any"]) == ("failed", "ActionError", 3)
    assert probe.attempts == {"named": 3, "other": 1, "any": 3}


async def test_retry_on_exit_codes_retries_a_command_that_exited_so(tmp_path: Path) -> None:
    def command(name: str, code: int) -> dict[str, Any]:
        return {
            "name": name,
            "action": "command",
            "input": ".",
            "params": {"shell": f"echo x >> {name}.count; exit {code}"},
            "retries": 2,
            "retry_on": [3, "Timeout"],
            "retry_delay": 0.001,
        }

    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"jobs": [command("three", 3), command("four", 4)]}))
    report = await run(load_config(path))
    results = by_name(report)
    assert outcome(results["three"]) == ("failed", "CommandFailed", 3)
    assert outcome(results["four"]) == ("failed", "CommandFailed", 1)
    assert (tmp_path / "three.count").read_text().count("x") == 3
    assert (tmp_path / "four.count").read_text().count("x") == 1


async def test_a_job_retried_after_its_own_retry_delay_succeeds(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("flaky", "flaky", params={"failures": 2}, retries=2, retry_delay=0.001)]
    report = await run(load(tmp_path, probe, jobs))
    assert outcome(report.jobs[0]) == ("succeeded", None, 3)


# --- halting -----------------------------------------------------------------------------


async def test_a_soon_halt_lets_running_jobs_finish_and_starts_nothing_new(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("slow", params={"wait": "failed"}),
        job("bad", "fail", params={"set": "failed"}),
        job("later"),
        job("after", depends_on=["slow"]),
    ]
    report = await run(
        load(tmp_path, probe, jobs), probe, max_concurrency=2, halt=Halt.parse("soon,fail=1")
    )
    results = by_name(report)
    assert outcome(results["slow"]) == ("succeeded", None, 1)  # it ran on to its end
    assert outcome(results["bad"]) == ("failed", "ActionError", 1)
    assert outcome(results["later"]) == ("cancelled", "Cancelled", 0)
    assert outcome(results["after"]) == ("cancelled", "Cancelled", 0)
    assert probe.started == ["slow", "bad"]
    assert (report.halt, report.halted) == (
        "soon,fail=1",
        "the run halted after 1 failure (first: 'bad')",
    )
    assert not report.ok


async def test_a_soon_halt_cancels_jobs_waiting_to_retry_and_makes_failures_final(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [
        job("waits", "flaky", params={"failures": 5}, retries=5),
        job("running", "fail", params={"wait": "halted"}, retries=5),
        job("bad", "fail", params={"wait": "waiting", "set": "halted"}),
        job("after", depends_on=["waits"]),
    ]
    events = probe.events

    class Tell:
        def job_retrying(self, job: Any, error: dict[str, str], delay: float) -> None:
            events["waiting"].set()

    config = load(tmp_path, probe, jobs)
    report = await run(
        config,
        probe,
        max_concurrency=3,
        halt=Halt.parse("soon,fail=1"),
        backoff=Backoff(start=100, cap=100),  # the wait ends with the halt, not with time
        listener=Tell(),
    )
    results = by_name(report)
    assert outcome(results["waits"]) == ("cancelled", "Cancelled", 1)
    assert outcome(results["running"]) == ("failed", "ActionError", 1)  # not retried
    assert outcome(results["bad"]) == ("failed", "ActionError", 1)
    assert outcome(results["after"]) == ("cancelled", "Cancelled", 0)


async def test_a_halt_on_success_cancels_the_rest_and_leaves_the_run_ok(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("first"), job("second"), job("third")]
    report = await run(
        load(tmp_path, probe, jobs), max_concurrency=1, halt=Halt.parse("now,success=1")
    )
    assert [r.status for r in report.jobs] == ["succeeded", "cancelled", "cancelled"]
    assert {r.error["message"] for r in report.jobs[1:] if r.error} == {
        "halted by --halt now,success=1"
    }
    assert report.ok
    assert report.to_dict()["halted"] == {
        "halt": "now,success=1",
        "reason": "halted by --halt now,success=1",
    }


async def test_a_halt_on_success_with_a_failure_is_not_ok(tmp_path: Path, probe: Probe) -> None:
    jobs = [job("bad", "fail"), job("good"), job("never")]
    report = await run(
        load(tmp_path, probe, jobs), max_concurrency=1, halt=Halt.parse("soon,success=1")
    )
    assert [r.status for r in report.jobs] == ["failed", "succeeded", "cancelled"]
    assert not report.ok


async def test_a_success_halt_stops_a_batch_of_small_files_where_it_is_reached(
    tmp_path: Path,
) -> None:
    for index in range(40):
        (tmp_path / f"f{index:02}.txt").write_text("x\n", encoding="utf-8")
    path = tmp_path / "batch.json"
    path.write_text(
        json.dumps({"jobs": [{"name": "n", "action": "count_lines", "input": "*.txt"}]})
    )
    report = await run(load_config(path), max_concurrency=1, halt=Halt.parse("now,success=3"))
    assert report.summary.succeeded == 3
    assert report.summary.cancelled == 37


# --- throttling ----------------------------------------------------------------------------


def fake_machine(folder: Path, *, runnable: int = 0, available_kb: int = 1 << 30) -> Machine:
    """A machine read from files of the test's (``/proc``'s layout), rewritten to change."""
    folder.mkdir(exist_ok=True)
    (folder / "loadavg").write_text(f"1.0 1.0 1.0 {runnable}/500 4242\n", encoding="ascii")
    (folder / "meminfo").write_text(f"MemAvailable: {available_kb} kB\n", encoding="ascii")
    return Machine(folder / "loadavg", folder / "meminfo")


class Held:
    """Hears why starts are held back, and what had started by then; releases the
    throttle by rewriting the machine's files."""

    def __init__(self, probe: Probe, release: Any) -> None:
        self.reasons: list[str | None] = []
        self.started_when_held: list[str] = []
        self._probe = probe
        self._release = release

    def starts_held(self, reason: str | None) -> None:
        self.reasons.append(reason)
        if reason is not None and not self.started_when_held:
            self.started_when_held = list(self._probe.started)
            self._release()


@pytest.mark.parametrize("control", ["load", "memfree"])
async def test_load_and_memfree_hold_starts_back_until_the_machine_has_room(
    tmp_path: Path, probe: Probe, control: str
) -> None:
    proc = tmp_path / "proc"
    busy = {"runnable": 50} if control == "load" else {"available_kb": 1}
    machine = fake_machine(proc, **busy)
    jobs = [job("first", params={"wait": "second"}), job("second", params={"set": "second"})]
    held = Held(probe, lambda: fake_machine(proc))
    options: dict[str, Any] = {"load": 8} if control == "load" else {"memfree": 1 << 20}
    report = await run(
        load(tmp_path, probe, jobs),
        probe,
        max_concurrency=2,
        machine=machine,
        listener=held,
        **options,
    )
    assert [r.status for r in report.jobs] == ["succeeded", "succeeded"]
    assert held.started_when_held == ["first"]  # first ran (nothing was running)
    assert held.reasons[0] is not None
    assert held.reasons[0].startswith(f"--{control}")
    assert held.reasons[-1] is None


async def test_a_busy_machine_never_stalls_a_run_with_nothing_running(
    tmp_path: Path, probe: Probe
) -> None:
    machine = fake_machine(tmp_path / "proc", runnable=1000, available_kb=1)
    jobs = [job(name) for name in ("a", "b", "c")]
    report = await run(
        load(tmp_path, probe, jobs), max_concurrency=3, load=1, memfree=1 << 30, machine=machine
    )
    assert [r.status for r in report.jobs] == ["succeeded"] * 3
    assert probe.peak == 1  # one at a time: each started with nothing running


def spacing(report: Report) -> list[float]:
    """Milliseconds between one job's first start and the next one's."""
    starts = sorted(r.started_ms for r in report.jobs if r.started_ms is not None)
    return [later - earlier for earlier, later in itertools.pairwise(starts)]


async def test_delay_spaces_the_starts_of_attempts(tmp_path: Path, probe: Probe) -> None:
    jobs = [job(name, "flaky", params={"failures": 1}, retries=1) for name in ("a", "b", "c")]
    report = await run(load(tmp_path, probe, jobs), max_concurrency=3, delay=0.03, backoff=fast())
    assert [r.attempts for r in report.jobs] == [2, 2, 2]
    assert min(spacing(report)) >= 30 - 0.01
    assert len(probe.started) == 6


async def test_delay_hands_small_files_over_one_by_one(tmp_path: Path) -> None:
    """Not in batches: each is a start of its own (a file's start, measured in the
    thread that reads it, may lag its hand-over by the thread's own start)."""
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text("x\n", encoding="utf-8")
    path = tmp_path / "batch.json"
    path.write_text(
        json.dumps({"jobs": [{"name": "n", "action": "count_lines", "input": "*.txt"}]})
    )
    report = await run(load_config(path), max_concurrency=4, delay=0.2)
    assert report.ok
    assert min(spacing(report)) >= 150


async def test_reused_jobs_do_not_wait_for_the_delay(tmp_path: Path, probe: Probe) -> None:
    class Reuse:
        def reusable(self, job: Any) -> JobResult | None:
            return JobResult(job.name, job.action, job.input, "succeeded", {}, reused=True)

        def record(self, result: JobResult) -> None:
            pass

    jobs = [job(f"j{index}") for index in range(50)]
    with anyio.fail_after(5):  # 50 starts spaced by 10 s would take minutes
        report = await run(load(tmp_path, probe, jobs), journal=Reuse(), delay=10)
    assert all(r.reused for r in report.jobs)


# --- weights -------------------------------------------------------------------------------


async def test_a_heavy_job_starts_before_the_light_jobs_behind_it(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("light0"), job("heavy", slots=2), *(job(f"light{i}") for i in range(1, 6))]
    report = await run(load(tmp_path, probe, jobs), probe, max_concurrency=2)
    assert report.ok
    assert probe.started[:2] == ["light0", "heavy"]


async def test_a_job_holds_all_its_slots_and_its_placeholder_slot_is_the_first(
    tmp_path: Path, probe: Probe
) -> None:
    slots: dict[str, int | None] = {}
    running: list[set[int]] = []
    held: dict[int, str] = {}

    @probe.registry.action("slotted", binds=True)
    async def slotted(path: Path, params: dict[str, Any], job: JobContext) -> dict[str, Any]:
        assert job.slot is not None
        mine = set(range(job.slot, job.slot + params["slots"]))
        assert not mine & set(held), f"{job.name} shares a slot with {held}"
        held.update(dict.fromkeys(mine, job.name))
        slots[job.name] = job.slot
        running.append(set(held))
        await anyio.sleep(0.01)
        for number in mine:
            del held[number]
        return {}

    jobs = [
        job("wide", "slotted", slots=3, params={"slots": 3}),
        job("one", "slotted", params={"slots": 1}),
        job("two", "slotted", slots=2, params={"slots": 2}),
    ]
    report = await run(load(tmp_path, probe, jobs), max_concurrency=4)
    assert report.ok
    assert (slots["wide"], slots["one"]) == (1, 4)
    assert max(len(numbers) for numbers in running) <= 4


async def test_a_job_asking_more_slots_than_the_run_has_is_a_located_config_error(
    tmp_path: Path, probe: Probe
) -> None:
    config = load(tmp_path, probe, [job("a"), job("big", slots=3)], max_concurrency=2)
    with pytest.raises(
        ConfigError, match=r"jobs\[1\]\.slots: takes 3 slots, more than the run's 2"
    ):
        await run(config)
    assert probe.started == []
    report = await run(config, max_concurrency=3)  # -j raises the run's slots
    assert report.ok


async def test_defaults_slots_above_the_runs_is_located_at_the_defaults(
    tmp_path: Path, probe: Probe
) -> None:
    config = load(tmp_path, probe, [job("a"), job("b", slots=1)], defaults={"slots": 8})
    with pytest.raises(ConfigError) as caught:
        await run(config)
    assert caught.value.problems == [
        "defaults.slots: takes 8 slots, more than the run's 4 (-j, else max_concurrency)"
    ]


async def test_a_weighted_limit_takes_its_weight_of_the_pool(tmp_path: Path, probe: Probe) -> None:
    jobs = [
        job("pair", limits={"gpu": 2}, params={"limits": ["gpu", "gpu"]}),
        *(job(f"single{i}", limits=["gpu"], params={"limits": ["gpu"]}) for i in range(4)),
    ]
    report = await run(load(tmp_path, probe, jobs, limits={"gpu": 2}), max_concurrency=4)
    assert report.ok
    assert probe.peak_in["gpu"] == 2


def test_a_weight_above_its_pools_size_is_a_located_config_error(
    tmp_path: Path, probe: Probe
) -> None:
    jobs = [job("a", limits={"gpu": 3, "disk": 1}), job("b", limits={"gpu": 0})]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, probe, jobs, limits={"gpu": 2})
    assert caught.value.problems == [
        "jobs[0].limits.gpu: takes 3 slots of 'gpu', which has 2",
        "jobs[0].limits.disk: unknown limit 'disk' (declared: gpu)",
        "jobs[1].limits.gpu: Input should be greater than or equal to 1",
    ]


# --- resources used ---------------------------------------------------------------------------


async def test_each_job_says_what_it_used_and_a_job_that_never_started_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "data.txt").write_bytes(b"one\ntwo\nthree\n")
    path = tmp_path / "batch.json"
    jobs = [
        {"name": "lines", "action": "count_lines", "input": "data.txt"},
        {"name": "missing", "action": "count_lines", "input": "none.txt"},
        {"name": "after", "action": "count_lines", "input": "data.txt", "depends_on": ["missing"]},
    ]
    path.write_text(json.dumps({"jobs": jobs}))
    report = await run(load_config(path))
    lines, missing, after = (r.to_dict()["resources"] for r in report.jobs)
    assert lines["read_bytes"] == 14
    assert isinstance(lines["cpu_s"], float)
    assert lines["cpu_s"] >= 0
    assert missing == {"cpu_s": None, "max_rss_kb": None, "read_bytes": None, "write_bytes": None}
    assert after is None
