"""``--order history``: ready jobs start longest first by their last recorded
duration (those with none after them, in config order), and the ETA counts those
durations from the first second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import invoke, read_json, write_json

from asyncbatch.engine._settings import Backoff, Settings
from asyncbatch.engine._state import RunState, history_order
from asyncbatch.model import JobResult
from asyncbatch.output._eta import HistoryEta


def sleeper(name: str, seconds: float) -> dict[str, Any]:
    return {
        "name": name,
        "action": "command",
        "input": ".",
        "params": {"shell": f"sleep {seconds}"},
    }


def started_order(report: Path) -> list[str]:
    jobs = read_json(report)["jobs"]
    return [job["name"] for job in sorted(jobs, key=lambda job: job["started_ms"])]


def test_history_order_is_longest_first_then_the_rest_in_config_order() -> None:
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    jobs: Any = [Named(name) for name in ("a", "b", "c", "d", "e")]
    durations = {"b": 10.0, "d": 500.0, "e": 10.0}
    assert history_order(jobs, durations) == [3, 1, 4, 0, 2]
    assert history_order(jobs, {}) == [0, 1, 2, 3, 4]


def test_the_run_state_hands_out_ready_jobs_in_the_order_given(tmp_path: Path) -> None:
    """Pure: no event loop. One slot, so each job is taken after the last is released."""
    from asyncbatch import load_config

    config = load_config(write_json(tmp_path / "c.json", {"jobs": [sleeper(n, 0) for n in "abcd"]}))
    settings = Settings(
        timeout=None, retries=0, halt=None, root=None, backoff=Backoff(), concurrency=1
    )
    state = RunState(config.jobs, {}, settings, 0.0, order=[2, 0, 3, 1])
    taken = []
    while (index := state.take()) is not None:
        taken.append(config.jobs[index].name)
        state.release(index)
    assert taken == ["c", "a", "d", "b"]


@pytest.mark.slow
def test_a_rerun_with_order_history_starts_the_slow_jobs_first(tmp_path: Path) -> None:
    config = write_json(
        tmp_path / "batch.json",
        {
            "jobs": [
                sleeper("quick1", 0),
                sleeper("slow", 0.5),
                sleeper("quick2", 0),
                sleeper("mid", 0.2),
            ]
        },
    )
    report = tmp_path / "report.json"
    assert invoke(["run", str(config), "-o", str(report), "-j", "1", "-q"]).exit_code == 0
    assert started_order(report) == ["quick1", "slow", "quick2", "mid"]
    result = invoke(["run", str(config), "-o", str(report), "-j", "1", "-q", "--order", "history"])
    assert result.exit_code == 0, result.stderr
    assert started_order(report)[:2] == ["slow", "mid"]
    config.write_text(
        config.read_text(encoding="utf-8").replace('"quick2"', '"fresh"'), encoding="utf-8"
    )
    invoke(["run", str(config), "-o", str(report), "-j", "1", "-q", "--order", "history"])
    assert started_order(report)[-1] == "fresh", "no history: after the others"


def test_order_history_needs_a_report(tmp_path: Path) -> None:
    config = write_json(tmp_path / "batch.json", {"jobs": [sleeper("a", 0)]})
    result = invoke(["run", str(config), "--order", "history"])
    assert result.exit_code == 2
    assert "--order history needs --output" in result.stderr
    assert invoke(["run", str(config), "--order", "sideways"]).exit_code == 2


def test_order_history_without_any_history_keeps_config_order(tmp_path: Path) -> None:
    config = write_json(tmp_path / "batch.json", {"jobs": [sleeper(n, 0) for n in "abc"]})
    report = tmp_path / "report.json"
    result = invoke(["run", str(config), "-o", str(report), "-j", "1", "-q", "--order", "history"])
    assert result.exit_code == 0, result.stderr
    assert started_order(report) == ["a", "b", "c"]


def test_the_eta_counts_recorded_durations_from_the_first_second() -> None:
    eta = HistoryEta(["a", "b", "c", "new"], {"a": 4000.0, "b": 2000.0, "c": 6000.0}, slots=2)
    # 4 + 2 + 6 + the mean (4) for the new job = 16 s of work over 2 slots
    assert eta.seconds_left({}, now=0.0) == pytest.approx(8.0)
    # "a" has run 3 of its 4 seconds
    assert eta.seconds_left({"a": 0.0}, now=3.0) == pytest.approx(6.5)
    done = JobResult(name="a", action="x", input="x", status="succeeded", duration_ms=8000.0)
    eta.job_done(done)
    # 12 s left, but "a" took twice its record: the rest will too
    assert eta.seconds_left({}, now=8.0) == pytest.approx(12.0)
