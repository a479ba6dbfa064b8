"""The values of the run's controls (``--halt``, ``--memfree`` sizes) and the
throttle's decisions (``--delay``, ``--load``, ``--memfree``), from what it is told
and what it reads of the machine (files of the test's own, laid out as ``/proc``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncbatch.controls import Halt, format_size, parse_size
from asyncbatch.engine._throttle import POLL, SAMPLE_EVERY, Machine, Throttle


@pytest.mark.parametrize(
    ("text", "halt"),
    [
        ("now,fail=1", Halt("now", "fail", 1)),
        ("soon,fail=10%", Halt("soon", "fail", 10, percent=True)),
        ("now,success=3", Halt("now", "success", 3)),
        (" soon,success=100% ", Halt("soon", "success", 100, percent=True)),
    ],
)
def test_a_halt_reads_when_what_and_how_many(text: str, halt: Halt) -> None:
    assert Halt.parse(text) == halt
    assert str(halt) == text.strip()


@pytest.mark.parametrize(
    "text",
    ["soon,fail=150%", "now,fail=0", "now,fail=0%", "later,fail=1", "now,failed=1", "now", "1"],
)
def test_a_halt_that_cannot_be_is_a_value_error_saying_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected WHEN,COND=N"):
        Halt.parse(text)


def test_fail_fast_and_max_failures_are_halts_now_on_failures() -> None:
    assert Halt.failures(1) == Halt.parse("now,fail=1")
    assert Halt.failures(5) == Halt.parse("now,fail=5")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("512K", 512 << 10),
        ("512M", 512 << 20),
        ("2G", 2 << 30),
        ("2g", 2 << 30),
        ("1.5T", 3 << 39),
        ("100MB", 100 << 20),
    ],
)
def test_a_size_is_bytes_or_powers_of_1024(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["12Q", "", "-1G", "G", "1e9", "two"])
def test_a_size_that_is_not_one_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_a_size_is_shown_short() -> None:
    assert [format_size(size) for size in (100, 2048, 512 << 20, 2 << 30)] == [
        "100",
        "2K",
        "512M",
        "2G",
    ]


# --- the machine -------------------------------------------------------------------------


def fake_proc(tmp_path: Path, runnable: int, available_kb: int) -> Machine:
    """A machine whose readings are files of the test's (``/proc``'s layout)."""
    (tmp_path / "loadavg").write_text(f"0.52 0.58 0.59 {runnable}/1234 56789\n", encoding="ascii")
    (tmp_path / "meminfo").write_text(
        f"MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   {available_kb} kB\n",
        encoding="ascii",
    )
    tasks = tmp_path / "task"
    tasks.mkdir(exist_ok=True)
    return Machine(tmp_path / "loadavg", tmp_path / "meminfo", tasks)


def test_the_machine_reads_runnable_processes_and_available_memory(tmp_path: Path) -> None:
    machine = fake_proc(tmp_path, runnable=7, available_kb=2048)
    assert machine.runnable() == 7
    assert machine.available() == 2048 * 1024


def test_the_machine_leaves_out_this_process_own_running_threads(tmp_path: Path) -> None:
    machine = fake_proc(tmp_path, runnable=7, available_kb=1)
    for tid, state in [(1, "R"), (2, "S"), (3, "R")]:
        (machine.own_threads / str(tid)).mkdir()
        (machine.own_threads / str(tid) / "stat").write_text(
            f"{tid} (a (tricky) name) {state} 1 2 3\n", encoding="ascii"
        )
    assert machine.runnable() == 5


def test_a_machine_that_cannot_be_read_holds_nothing_back(tmp_path: Path) -> None:
    machine = Machine(tmp_path / "none", tmp_path / "none", tmp_path / "none")
    assert (machine.runnable(), machine.available()) == (None, None)
    throttle = Throttle(load=1, memfree=1 << 40, machine=machine)
    assert throttle.hold(0.0, running=3) == (0.0, None)


def test_this_machine_can_be_read() -> None:
    machine = Machine()
    runnable, available = machine.runnable(), machine.available()
    assert runnable is not None
    assert runnable >= 0
    assert available is not None
    assert available > 0


# --- the throttle -------------------------------------------------------------------------


def test_delay_spaces_starts_even_with_nothing_running() -> None:
    throttle = Throttle(delay=2.0)
    assert throttle.hold(10.0, running=0) == (0.0, None)
    throttle.started(10.0)
    assert throttle.hold(10.5, running=0) == (1.5, "--delay 2")
    assert throttle.hold(12.0, running=0) == (0.0, None)


def test_a_zero_delay_holds_nothing() -> None:
    throttle = Throttle(delay=0)
    throttle.started(1.0)
    assert throttle.hold(1.0, running=1) == (0.0, None)


def test_load_holds_starts_back_while_jobs_run_and_never_with_none(tmp_path: Path) -> None:
    throttle = Throttle(load=4, machine=fake_proc(tmp_path, runnable=6, available_kb=1))
    assert throttle.hold(0.0, running=1) == (POLL, "--load 4 (6 runnable)")
    assert throttle.hold(0.0, running=0) == (0.0, None)
    fake_proc(tmp_path, runnable=3, available_kb=1)
    assert throttle.hold(SAMPLE_EVERY, running=1) == (0.0, None)


def test_memfree_holds_starts_back_while_memory_is_short(tmp_path: Path) -> None:
    throttle = Throttle(memfree=2 << 30, machine=fake_proc(tmp_path, 0, available_kb=1 << 20))
    assert throttle.hold(0.0, running=2) == (POLL, "--memfree 2G (1G available)")
    assert throttle.hold(0.0, running=0) == (0.0, None)
    fake_proc(tmp_path, 0, available_kb=3 << 20)
    assert throttle.hold(SAMPLE_EVERY, running=2) == (0.0, None)


def test_a_reading_is_used_for_a_while_before_the_machine_is_read_again(tmp_path: Path) -> None:
    throttle = Throttle(load=4, machine=fake_proc(tmp_path, runnable=9, available_kb=1))
    assert throttle.hold(0.0, running=1)[1] is not None
    fake_proc(tmp_path, runnable=0, available_kb=1)
    assert throttle.hold(SAMPLE_EVERY / 2, running=1)[1] is not None
    assert throttle.hold(SAMPLE_EVERY, running=1) == (0.0, None)


def test_progress_shows_why_starts_are_held_back_while_they_are() -> None:
    from asyncbatch.output.progress import ProgressListener, ProgressState, notes

    state = ProgressState(10, clock=lambda: 0.0)
    listener = ProgressListener(state, None)
    listener.starts_held("--load 4 (6 runnable)")
    assert ("held: --load 4 (6 runnable)", "yellow") in notes(state)
    listener.starts_held(None)
    assert not any(text.startswith("held") for text, _ in notes(state))
