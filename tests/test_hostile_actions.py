"""Actions that misbehave, through real runs: one job's action never stops the run.

Each hostile action is a custom action (``module:function``, written next to the
config) or a kernel of our own on each of the local executor's routes. Every test
checks the hostile job's result, that every other job still ends as it should, and,
through the command line, the exit code and that no traceback is printed.

Actions that raise any ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``,
``GeneratorExit``, a stray ``CancelledError`` that is no cancellation of the run, an
exception whose ``str()`` raises) fail their own job with ``ActionError``; a real
cancellation of the run (a halt, a signal, the job's timeout) still ends the jobs it
cancels. Actions that hang end at their timeout; huge results are written whole
(there is no cap on a result's size); results that are not JSON objects fail their
job; an action that forks does not make the child run the batch on; an action that
closes descriptors it does not own or changes the working directory does not
break the run's bookkeeping or move its outputs.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 - the stray CancelledError under test is asyncio's own pattern
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import (
    HANG,
    add_module,
    by_name,
    outcome,
    read_json,
    run,
    run_module,
    summary,
    write_json,
)

from asyncbatch import load_config, run_batch
from asyncbatch.config import BatchConfig
from asyncbatch.controls import Halt
from asyncbatch.engine import LocalExecutor, Recorder, RunListener
from asyncbatch.errors import describe_error
from asyncbatch.kernel import Kernel, Tuning
from asyncbatch.model import JobResult
from asyncbatch.output.report import write_report
from asyncbatch.registry import ActionRegistry, ActionSpec

pytestmark = pytest.mark.anyio

HOSTILE = '''
"""Hostile custom actions, as a user could write them."""
import asyncio
import math
import os
import sys
from pathlib import Path


class Unprintable(Exception):
    def __str__(self):
        raise ValueError("no message for you")


class Unspeakable(Exception):
    def __str__(self):
        raise KeyboardInterrupt


async def stray_cancel():
    """Await a task that was cancelled: its CancelledError reaches the caller, while
    nothing cancels the caller itself (a common pattern)."""
    inner = asyncio.get_running_loop().create_task(asyncio.sleep(60))
    await asyncio.sleep(0)
    inner.cancel()
    await inner


async def raises(path, params):
    kind = params["kind"]
    await asyncio.sleep(0)
    if kind == "SystemExit":
        sys.exit(3)
    if kind == "sys.exit()":
        sys.exit()
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt
    if kind == "GeneratorExit":
        raise GeneratorExit
    if kind == "CancelledError":
        await stray_cancel()
    if kind == "Unprintable":
        raise Unprintable
    if kind == "Unspeakable":
        raise Unspeakable
    raise AssertionError(kind)


async def ok(path, params):
    await asyncio.sleep(0)
    return {"input": path.name}


async def hang(path, params):
    """Never return; with "stubborn", swallow the first cancellation and wait again."""
    if params.get("stubborn"):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass
    await asyncio.sleep(3600)
    return {}


def nested(depth):
    value = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


KEPT = {}


async def returns(path, params):
    kind = params["kind"]
    if kind == "huge":
        return {"text": "x" * params["size"]}
    if kind == "kept":  # a dict the action keeps and changes after returning
        KEPT.clear()
        KEPT["n"] = 1
        return KEPT
    if kind == "later":  # the next job changes the dict the first one returned
        KEPT["n"] = {"not json": {1, 2}}
        return {"changed": True}
    if kind == "nested":
        return nested(params["depth"])
    loop = {}
    loop["self"] = loop
    values = {
        "list": [1, 2, 3],
        "none": None,
        "str": "done",
        "nan": {"ratio": math.nan},
        "inf": {"ratio": -math.inf},
        "object": {"path": path},
        "set": {"tokens": {"a", "b"}},
        "bytes": {"data": b"raw"},
        "tuple key": {(1, 2): "pair"},
        "circular": loop,
        "int key": {1: "one"},
        "tuple": {"pair": (1, 2)},
    }
    return values[kind]


async def forks(path, params):
    """Fork; the child returns (or calls sys.exit) instead of calling os._exit."""
    pid = os.fork()
    if pid == 0:
        if "exit" in params:
            sys.exit(params["exit"])
        return {"side": "child"}
    _, status = os.waitpid(pid, 0)
    return {"child_exit": os.waitstatus_to_exitcode(status)}


def descriptors_ending(suffix):
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.endswith(suffix):
            found.append(int(name))
    return found


async def close_fds(path, params):
    """Close descriptors this action never opened: numbers given, or every one
    open on a file whose name ends with "suffix"."""
    fds = params.get("fds") or descriptors_ending(params["suffix"])
    for fd in fds:
        os.close(fd)
    return {"closed": len(fds)}


async def chdir(path, params):
    """Change the working directory (and with "remove", remove it after)."""
    target = Path(params["to"])
    target.mkdir(exist_ok=True)
    os.chdir(target)
    if params.get("remove"):
        target.rmdir()
    await asyncio.sleep(0)
    return {"cwd": str(target)}
'''

BASE_KINDS = {
    "SystemExit": "SystemExit: 3",
    "sys.exit()": "SystemExit",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "GeneratorExit": "GeneratorExit",
    "CancelledError": "CancelledError",
    "Unprintable": "Unprintable",
    "Unspeakable": "Unspeakable",
}
"""Each hostile kind an action raises, and the report's message for it."""


def hostile_config(folder: Path, jobs: list[dict[str, Any]], **top: Any) -> Path:
    """A config in ``folder`` whose ``hostile:NAME`` actions name the functions of
    :data:`HOSTILE`, written beside it under a fresh module name; each job's input
    is a file of its own name."""
    module = add_module(folder, HOSTILE, prefix="hostile")
    for entry in jobs:
        entry["action"] = entry["action"].replace("hostile:", f"{module}:")
        (folder / entry["input"]).write_text("one\ntwo\n", encoding="utf-8")
    return write_json(folder / "batch.json", {**top, "jobs": jobs})


def ok_jobs(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        {"name": f"ok{i}", "action": "hostile:ok", "input": f"ok{i}.txt", **fields}
        for i in range(count)
    ]


def statuses(jobs: list[JobResult]) -> dict[str, tuple[str, str | None, int]]:
    return {result.name: outcome(result) for result in jobs}


# --- any BaseException an awaited action raises is that job's error -------------------


@pytest.mark.parametrize("kind", list(BASE_KINDS))
@pytest.mark.parametrize("limit", [1, 3])
async def test_an_action_raising_any_base_exception_fails_only_its_own_job(
    tmp_path: Path, kind: str, limit: int
) -> None:
    """With one slot the jobs after it still run; the message says what was raised."""
    jobs: list[dict[str, Any]] = [
        {"name": "hostile", "action": "hostile:raises", "input": "h.txt", "params": {"kind": kind}},
        *ok_jobs(4),
        {"name": "after", "action": "hostile:ok", "input": "a.txt", "depends_on": ["ok0"]},
    ]
    report = await run(load_config(hostile_config(tmp_path, jobs)), max_concurrency=limit)
    hostile = by_name(report)["hostile"]
    assert outcome(hostile) == ("failed", "ActionError", 1)
    assert hostile.error == {"type": "ActionError", "message": BASE_KINDS[kind]}
    assert [outcome(result) for result in report.jobs[1:]] == [("succeeded", None, 1)] * 5


async def test_a_base_exception_is_retried_like_any_failure(tmp_path: Path) -> None:
    jobs: list[dict[str, Any]] = [
        {
            "name": "hostile",
            "action": "hostile:raises",
            "input": "h.txt",
            "params": {"kind": "SystemExit"},
            "retries": 2,
        },
        *ok_jobs(2),
    ]
    report = await run(load_config(hostile_config(tmp_path, jobs)), max_concurrency=1)
    assert statuses(report.jobs) == {
        "hostile": ("failed", "ActionError", 3),
        "ok0": ("succeeded", None, 1),
        "ok1": ("succeeded", None, 1),
    }


async def test_a_halt_still_cancels_a_running_action_and_the_jobs_not_started(
    tmp_path: Path,
) -> None:
    """The run's own cancellation is no stray one: a hanging action cancelled by a
    halt ends cancelled, as do the jobs that never started."""
    jobs: list[dict[str, Any]] = [
        {"name": "hangs", "action": "hostile:hang", "input": "h.txt"},
        {
            "name": "fails",
            "action": "hostile:raises",
            "input": "f.txt",
            "params": {"kind": "sys.exit()"},
        },
        *ok_jobs(2),
    ]
    report = await run(
        load_config(hostile_config(tmp_path, jobs)), max_concurrency=2, halt=Halt.failures(1)
    )
    assert statuses(report.jobs) == {
        "hangs": ("cancelled", "Cancelled", 1),
        "fails": ("failed", "ActionError", 1),
        "ok0": ("cancelled", "Cancelled", 0),
        "ok1": ("cancelled", "Cancelled", 0),
    }
    assert report.halted is not None


async def test_the_stop_event_still_cancels_a_running_action(tmp_path: Path) -> None:
    jobs: list[dict[str, Any]] = [
        {"name": "hangs", "action": "hostile:hang", "input": "h.txt"},
        *ok_jobs(1),
    ]
    stop = anyio.Event()

    class StopOnStart(RunListener):
        def job_started(self, job: Any, attempt: int) -> None:
            if job.name == "hangs":
                stop.set()

    report = await run(
        load_config(hostile_config(tmp_path, jobs)),
        max_concurrency=1,
        stop=stop,
        listener=StopOnStart(),
    )
    assert statuses(report.jobs) == {
        "hangs": ("cancelled", "Cancelled", 1),
        "ok0": ("cancelled", "Cancelled", 0),
    }


async def test_a_cancel_scope_around_the_run_still_cancels_it(tmp_path: Path) -> None:
    """Cancelling the caller's scope cancels the run: run_batch does not return a
    report, the cancellation reaches the caller at once."""
    jobs: list[dict[str, Any]] = [
        {"name": "hangs", "action": "hostile:hang", "input": "h.txt"},
        *ok_jobs(3),
    ]
    config = load_config(hostile_config(tmp_path, jobs))
    started = time.perf_counter()
    with anyio.move_on_after(0.2) as scope:
        await run_batch(config, max_concurrency=2)
    assert scope.cancelled_caught
    assert time.perf_counter() - started < HANG / 2


@pytest.mark.parametrize("stubborn", [False, True])
async def test_a_hanging_action_ends_at_its_timeout_and_the_others_run(
    tmp_path: Path, stubborn: bool
) -> None:
    """Even one that swallows its first cancellation: the timeout cancels it again."""
    jobs: list[dict[str, Any]] = [
        {
            "name": "hangs",
            "action": "hostile:hang",
            "input": "h.txt",
            "params": {"stubborn": stubborn},
            "timeout": 0.1,
        },
        *ok_jobs(3),
    ]
    report = await run(load_config(hostile_config(tmp_path, jobs)), max_concurrency=1)
    assert statuses(report.jobs) == {
        "hangs": ("failed", "Timeout", 1),
        "ok0": ("succeeded", None, 1),
        "ok1": ("succeeded", None, 1),
        "ok2": ("succeeded", None, 1),
    }


def test_describe_error_never_raises_and_falls_back_to_the_type_name() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    assert describe_error(Unprintable()) == {"type": "ActionError", "message": "Unprintable"}
    odd_fields = FileNotFoundError(2, 5, 7)  # strerror and filename that are no strings
    assert describe_error(odd_fields) == {"type": "ActionError", "message": "FileNotFoundError"}
    assert describe_error(SystemExit(3)) == {"type": "ActionError", "message": "SystemExit: 3"}
    assert describe_error(asyncio.CancelledError("inner")) == {
        "type": "ActionError",
        "message": "CancelledError: inner",
    }


# --- kernels that raise BaseException, on every route ---------------------------------


class HostileScan:
    """A scanner that raises what its params name (``raise``) on its first chunk, or
    in ``result`` for a kernel that reads nothing; succeeds without it."""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._kind: str | None = params.get("raise")
        self._bytes = 0

    def update(self, data: bytes | bytearray) -> None:
        self._raise()
        self._bytes += len(data)

    def result(self) -> dict[str, Any]:
        self._raise()
        return {"bytes": self._bytes}

    def _raise(self) -> None:
        if self._kind is None:
            return
        makers: dict[str, Callable[[], BaseException]] = {
            "SystemExit": lambda: SystemExit(3),
            "KeyboardInterrupt": KeyboardInterrupt,
            "GeneratorExit": GeneratorExit,
            "CancelledError": lambda: asyncio.CancelledError("in the kernel"),
            "Unprintable": UnprintableInKernel,
        }
        raise makers[self._kind]()


class UnprintableInKernel(Exception):
    def __str__(self) -> str:
        raise ValueError("no message")


KERNEL_KINDS = {
    "SystemExit": "SystemExit: 3",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "GeneratorExit": "GeneratorExit",
    "CancelledError": "CancelledError: in the kernel",
    "Unprintable": "UnprintableInKernel",
}


async def _never_awaited(path: Path, params: Any) -> dict[str, Any]:
    raise AssertionError("the local executor runs the kernel, not this")


KERNEL_ROUTES: dict[str, tuple[Kernel, Tuning, int]] = {
    # Small files, many to a thread hop.
    "batch": (Kernel(HostileScan), Tuning(small_file_bytes=1 << 20), 2),
    # A big file, in a daemon thread of its own (the kernel releases the GIL).
    "thread": (Kernel(HostileScan, releases_gil=True), Tuning(small_file_bytes=0), 2),
    # A big file streamed in the event loop (one core: no worker process).
    "streamed": (Kernel(HostileScan), Tuning(small_file_bytes=0), 1),
    # A big file in a worker process.
    "worker": (Kernel(HostileScan), Tuning(small_file_bytes=0, process_min_bytes=1), 2),
    # A kernel that may never return: always in a worker process.
    "isolated": (Kernel(HostileScan, isolated=True), Tuning(), 2),
}


def kernel_config(folder: Path, route: str, kind: str) -> tuple[BatchConfig, LocalExecutor]:
    kernel, tuning, cpus = KERNEL_ROUTES[route]
    spec = ActionSpec("scan", _never_awaited, None, origin="tests", kernel=kernel)
    jobs: list[dict[str, Any]] = [
        {"name": f"f{i}", "action": "scan", "input": f"f{i}.txt"}
        | ({"params": {"raise": kind}} if i == 1 else {})
        for i in range(5)
    ]
    for i in range(5):
        (folder / f"f{i}.txt").write_text("x" * 10, encoding="utf-8")
    path = write_json(folder / "batch.json", {"jobs": jobs})
    return load_config(path, registry=ActionRegistry([spec])), LocalExecutor(tuning, cpus=cpus)


def kernel_marks(route: str, kind: str) -> list[pytest.MarkDecorator]:
    """Worker processes take a second to start: slow."""
    return [pytest.mark.slow] if route in ("worker", "isolated") else []


@pytest.mark.parametrize(
    ("route", "kind"),
    [
        pytest.param(route, kind, marks=kernel_marks(route, kind))
        for route in KERNEL_ROUTES
        for kind in KERNEL_KINDS
    ],
)
async def test_a_kernel_raising_any_base_exception_fails_only_its_own_job_on_every_route(
    tmp_path: Path, route: str, kind: str
) -> None:
    config, executor = kernel_config(tmp_path, route, kind)
    report = await run(config, max_concurrency=2, executor=executor)
    assert [outcome(result) for result in report.jobs] == [
        ("succeeded", None, 1),
        ("failed", "ActionError", 1),
        ("succeeded", None, 1),
        ("succeeded", None, 1),
        ("succeeded", None, 1),
    ]
    assert report.jobs[1].error == {"type": "ActionError", "message": KERNEL_KINDS[kind]}
    assert report.jobs[0].result == {"bytes": 10}


# --- through the command line: exit code, summary, no traceback ------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt", "CancelledError"])
def test_cli_an_action_raising_a_base_exception_exits_1_with_the_report_written(
    tmp_path: Path, kind: str
) -> None:
    jobs: list[dict[str, Any]] = [
        {"name": "hostile", "action": "hostile:raises", "input": "h.txt", "params": {"kind": kind}},
        *ok_jobs(3),
    ]
    config = hostile_config(tmp_path, jobs)
    done = run_module(["run", str(config), "-j", "1", "-o", "report.json"], cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert summary(done.stdout) == {
        "total_jobs": 4,
        "succeeded": 3,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
    }
    assert BASE_KINDS[kind] in done.stderr
    report = read_json(tmp_path / "report.json")
    assert report["jobs"][0]["error"] == {"type": "ActionError", "message": BASE_KINDS[kind]}


@pytest.mark.slow
def test_cli_a_hanging_action_times_out_and_the_run_exits_1(tmp_path: Path) -> None:
    jobs: list[dict[str, Any]] = [
        {"name": "hangs", "action": "hostile:hang", "input": "h.txt"},
        *ok_jobs(2),
    ]
    config = hostile_config(tmp_path, jobs)
    done = run_module(["run", str(config), "--timeout", "0.2", "-o", "report.json"], cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert summary(done.stdout)["succeeded"] == 2
    report = read_json(tmp_path / "report.json")
    assert report["jobs"][0]["error"]["type"] == "Timeout"


# --- results -----------------------------------------------------------------------------

ODD_RESULTS = {
    "list": "action returned list, expected a dict",
    "none": "action returned NoneType, expected a dict",
    "str": "action returned str, expected a dict",
    "nan": "action result is not JSON-serialisable: Out of range float values",
    "inf": "action result is not JSON-serialisable: Out of range float values",
    "object": "action result is not JSON-serialisable: Object of type PosixPath",
    "set": "action result is not JSON-serialisable: Object of type set",
    "bytes": "action result is not JSON-serialisable: Object of type bytes",
    "tuple key": "action result is not JSON-serialisable: keys must be",
    "circular": "action result is not JSON-serialisable: Circular reference",
}


@pytest.mark.parametrize("kind", list(ODD_RESULTS))
async def test_a_result_that_is_no_json_object_fails_its_job_and_the_report_writes(
    tmp_path: Path, kind: str
) -> None:
    jobs: list[dict[str, Any]] = [
        {"name": "odd", "action": "hostile:returns", "input": "o.txt", "params": {"kind": kind}},
        *ok_jobs(2),
    ]
    report = await run(load_config(hostile_config(tmp_path, jobs)), max_concurrency=1)
    odd = by_name(report)["odd"]
    assert outcome(odd) == ("failed", "ActionError", 1)
    assert odd.error is not None
    assert odd.error["message"].startswith(f"TypeError: {ODD_RESULTS[kind]}")
    assert [outcome(result) for result in report.jobs[1:]] == [("succeeded", None, 1)] * 2
    write_report(report, tmp_path / "report.json")
    assert read_json(tmp_path / "report.json")["summary"]["failed"] == 1


@pytest.mark.parametrize("depth", [129, 990, 100_000])
async def test_a_result_nested_too_deeply_fails_its_job_instead_of_crashing_the_run(
    tmp_path: Path, depth: int
) -> None:
    """Deeper than 128 levels is refused, however deep: a RecursionError in the
    check, the journal or the report writer must never end the run."""
    jobs: list[dict[str, Any]] = [
        {
            "name": "deep",
            "action": "hostile:returns",
            "input": "d.txt",
            "params": {"kind": "nested", "depth": depth},
        },
        *ok_jobs(2),
    ]
    report = await run(load_config(hostile_config(tmp_path, jobs)), max_concurrency=1)
    assert statuses(report.jobs) == {
        "deep": ("failed", "ActionError", 1),
        "ok0": ("succeeded", None, 1),
        "ok1": ("succeeded", None, 1),
    }
    assert by_name(report)["deep"].error == {
        "type": "ActionError",
        "message": "TypeError: action result is nested deeper than 128 levels",
    }


@pytest.mark.slow
def test_cli_a_result_nested_128_levels_deep_is_reported_and_journaled_whole(
    tmp_path: Path,
) -> None:
    jobs: list[dict[str, Any]] = [
        {
            "name": "deep",
            "action": "hostile:returns",
            "input": "d.txt",
            "params": {"kind": "nested", "depth": 128},
        }
    ]
    config = hostile_config(tmp_path, jobs)
    done = run_module(["run", str(config), "-o", "report.json", "-v"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = read_json(tmp_path / "report.json")["jobs"][0]["result"]
    depth = 0
    while result:
        result, depth = result["a"], depth + 1
    assert depth == 127  # and the innermost {} makes 128
    journal = (tmp_path / "report.json.journal").read_text(encoding="utf-8").splitlines()
    assert len(journal) == 1


async def test_the_report_keeps_the_result_as_returned_whatever_the_action_does_after(
    tmp_path: Path,
) -> None:
    """A dict the action keeps and changes later (here into something JSON cannot
    encode) does not change, or break, the report."""
    jobs: list[dict[str, Any]] = [
        {"name": "kept", "action": "hostile:returns", "input": "k.txt", "params": {"kind": "kept"}},
        {
            "name": "later",
            "action": "hostile:returns",
            "input": "l.txt",
            "params": {"kind": "later"},
            "depends_on": ["kept"],
        },
    ]
    report = await run(load_config(hostile_config(tmp_path, jobs)))
    assert by_name(report)["kept"].result == {"n": 1}
    write_report(report, tmp_path / "report.json")
    assert read_json(tmp_path / "report.json")["jobs"][0]["result"] == {"n": 1}


@pytest.mark.parametrize(("kind", "kept"), [("int key", {"1": "one"}), ("tuple", {"pair": [1, 2]})])
async def test_a_result_is_kept_as_json_makes_it(
    tmp_path: Path, kind: str, kept: dict[str, Any]
) -> None:
    """What the report and the journal hold, in the run's report too."""
    jobs: list[dict[str, Any]] = [
        {"name": "odd", "action": "hostile:returns", "input": "o.txt", "params": {"kind": kind}}
    ]
    report = await run(load_config(hostile_config(tmp_path, jobs)))
    assert outcome(report.jobs[0]) == ("succeeded", None, 1)
    assert report.jobs[0].result == kept


@pytest.mark.slow
def test_cli_a_fifty_megabyte_result_is_written_whole_to_the_report_and_journal(
    tmp_path: Path,
) -> None:
    """No cap on a result's size: it is the action's to keep small. The run holds
    the result in memory and writes it twice (journal, report)."""
    size = 50 << 20
    jobs: list[dict[str, Any]] = [
        {
            "name": "huge",
            "action": "hostile:returns",
            "input": "h.txt",
            "params": {"kind": "huge", "size": size},
        },
        *ok_jobs(2),
    ]
    config = hostile_config(tmp_path, jobs)
    done = run_module(["run", str(config), "-o", "report.json"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout)["succeeded"] == 3
    report = read_json(tmp_path / "report.json")
    assert report["jobs"][0]["result"] == {"text": "x" * size}
    lines = (tmp_path / "report.json.journal").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["job"]["result"]["text"] == "x" * size


# --- fork ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("params", "child_exit"), [({}, 0), ({"exit": 7}, 7), ({"exit": None}, 0)])
def test_cli_the_child_of_an_action_that_forks_never_runs_the_batch_on(
    tmp_path: Path, params: dict[str, Any], child_exit: int
) -> None:
    """The child returns (or calls sys.exit) into the scheduler: it exits there at
    once, with the code it asked for; the parent runs every job once, prints one
    summary and journals each job once."""
    jobs: list[dict[str, Any]] = [
        {"name": "forks", "action": "hostile:forks", "input": "f.txt", "params": params},
        *ok_jobs(3, depends_on=["forks"]),
        {"name": "lines", "action": "count_lines", "input": "l.txt", "depends_on": ["forks"]},
    ]
    config = hostile_config(tmp_path, jobs)
    done = run_module(
        ["run", str(config), "-j", "2", "-o", "report.json"], cwd=tmp_path, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout)["succeeded"] == 5
    report = read_json(tmp_path / "report.json")
    assert report["jobs"][0]["result"] == {"child_exit": child_exit}
    assert report["jobs"][4]["result"] == {"lines": 2}
    journal = (tmp_path / "report.json.journal").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["job"]["name"] for line in journal) == sorted(
        job["name"] for job in jobs
    )


# --- descriptors the action does not own ---------------------------------------------


def fd_jobs(params: dict[str, Any]) -> list[dict[str, Any]]:
    """A job closing descriptors, between jobs of every kind (a custom action, a
    small-file kernel, a worker process)."""
    return [
        *ok_jobs(1),
        {
            "name": "closer",
            "action": "hostile:close_fds",
            "input": "c.txt",
            "params": params,
            "depends_on": ["ok0"],
        },
        *ok_jobs(2, depends_on=["closer"])[1:],
        {"name": "lines", "action": "count_lines", "input": "l.txt", "depends_on": ["closer"]},
        {
            "name": "grep",
            "action": "search_pattern",
            "input": "g.txt",
            "params": {"pattern": "two"},
            "depends_on": ["closer"],
        },
    ]


@pytest.mark.slow
@pytest.mark.parametrize("fd", [0, 2])
def test_cli_an_action_closing_stdin_or_stderr_leaves_the_run_and_its_outputs_whole(
    tmp_path: Path, fd: int
) -> None:
    config = hostile_config(tmp_path, fd_jobs({"fds": [fd]}))
    done = run_module(["run", str(config), "-o", "report.json"], cwd=tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout)["succeeded"] == 5
    report = read_json(tmp_path / "report.json")
    assert [job["status"] for job in report["jobs"]] == ["succeeded"] * 5
    assert report["jobs"][4]["result"] == {"matches": 1, "matching_lines": 1}


@pytest.mark.slow
def test_cli_an_action_closing_the_journal_stops_the_journal_not_the_run(tmp_path: Path) -> None:
    """Every job still ends and the report is written in full (what the journal
    says about its own failure is the journal's business)."""
    config = hostile_config(tmp_path, fd_jobs({"suffix": ".journal"}))
    done = run_module(["run", str(config), "-o", "report.json"], cwd=tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout)["succeeded"] == 5
    report = read_json(tmp_path / "report.json")
    assert [job["status"] for job in report["jobs"]] == ["succeeded"] * 5


@pytest.mark.slow
def test_cli_an_action_closing_the_lock_leaves_the_run_and_its_outputs_whole(
    tmp_path: Path,
) -> None:
    config = hostile_config(tmp_path, fd_jobs({"suffix": ".lock"}))
    done = run_module(["run", str(config), "-o", "report.json"], cwd=tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout)["succeeded"] == 5


class FailingJournal:
    """A recorder whose disk fails after ``works`` records."""

    def __init__(self, works: int) -> None:
        self.works = works
        self.recorded: list[str] = []

    def reusable(self, job: Any) -> JobResult | None:
        return None

    def record(self, result: JobResult) -> None:
        if len(self.recorded) >= self.works:
            raise OSError(28, "No space left on device")
        self.recorded.append(result.name)


async def test_a_journal_that_fails_is_dropped_and_every_job_still_ends(tmp_path: Path) -> None:
    jobs: list[dict[str, Any]] = [
        *ok_jobs(3),
        *ok_jobs(6, depends_on=["ok0"])[3:],
        {"name": "last", "action": "hostile:ok", "input": "z.txt", "depends_on": ["ok5"]},
    ]
    journal = FailingJournal(works=2)
    recorder: Recorder = journal
    report = await run(
        load_config(hostile_config(tmp_path, jobs)), max_concurrency=2, journal=recorder
    )
    assert [outcome(result) for result in report.jobs] == [("succeeded", None, 1)] * 7
    assert len(journal.recorded) == 2


# --- the working directory -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("remove", [False, True])
def test_cli_an_action_changing_the_working_directory_moves_no_output(
    tmp_path: Path, remove: bool
) -> None:
    """Relative ``-o`` and ``--junit`` land where they were given, and the jobs after
    it (a kernel, a worker process) run, even when the directory it moved to is gone."""
    elsewhere = tmp_path / "elsewhere"
    jobs: list[dict[str, Any]] = [
        {
            "name": "moves",
            "action": "hostile:chdir",
            "input": "m.txt",
            "params": {"to": str(elsewhere), "remove": remove},
        },
        {"name": "lines", "action": "count_lines", "input": "l.txt", "depends_on": ["moves"]},
        {
            "name": "grep",
            "action": "search_pattern",
            "input": "g.txt",
            "params": {"pattern": "one"},
            "depends_on": ["moves"],
        },
        *ok_jobs(1, depends_on=["moves"]),
    ]
    config = hostile_config(tmp_path, jobs)
    args = ["run", "batch.json", "-o", "report.json", "--junit", "junit.xml", "-j", "1"]
    done = run_module(args, cwd=tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout)["succeeded"] == 4
    assert config.exists()
    assert (tmp_path / "junit.xml").is_file()
    report = read_json(tmp_path / "report.json")
    assert report["jobs"][1]["result"] == {"lines": 2}
    assert report["jobs"][2]["result"] == {"matches": 1, "matching_lines": 1}
    assert not (elsewhere / "report.json").exists()


async def test_the_working_directory_is_the_runs_again_after_an_action_changes_it(
    tmp_path: Path,
) -> None:
    jobs: list[dict[str, Any]] = [
        {
            "name": "moves",
            "action": "hostile:chdir",
            "input": "m.txt",
            "params": {"to": str(tmp_path / "elsewhere")},
        },
        *ok_jobs(1, depends_on=["moves"]),
    ]
    before = os.getcwd()
    report = await run(load_config(hostile_config(tmp_path, jobs)))
    assert os.getcwd() == before
    assert report.jobs[0].result == {"cwd": str(tmp_path / "elsewhere")}


# --- max_failures under concurrency: at most N failed ------------------------------------


async def test_actions_failing_in_the_same_instant_as_the_halt_end_cancelled(
    tmp_path: Path,
) -> None:
    """Five actions wake together and raise before the halt can reach them: the
    first two are the failures that make the halt (halt=Halt.failures(2)), the others
    failed while the run was being halted and count as cancelled."""
    event = anyio.Event()
    registry = ActionRegistry()

    @registry.action("together")
    async def together(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("go"):
            event.set()
        await event.wait()
        raise RuntimeError(f"{path.name} failed")

    jobs: list[dict[str, Any]] = [
        {"name": f"t{i}", "action": "together", "input": f"t{i}"} for i in range(4)
    ]
    jobs.append({"name": "t4", "action": "together", "input": "t4", "params": {"go": True}})
    config = load_config(write_json(tmp_path / "batch.json", {"jobs": jobs}), registry=registry)
    report = await run(config, max_concurrency=5, halt=Halt.failures(2))
    assert report.summary.failed == 2
    assert report.summary.cancelled == 3
    assert [result.status for result in report.jobs[:2]] == ["failed", "failed"]
    assert all(result.attempts == 1 for result in report.jobs)


async def test_an_action_turning_its_cancellation_into_a_failure_ends_cancelled(
    tmp_path: Path,
) -> None:
    """Cancelled by the halt, it raises SystemExit instead: the report still holds
    one failed job (halt=Halt.failures(1)), and this one is cancelled."""
    registry = ActionRegistry()

    @registry.action("stubborn")
    async def stubborn(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        try:
            await anyio.sleep(HANG)
        except anyio.get_cancelled_exc_class():
            sys.exit(4)
        return {}

    @registry.action("fails")
    async def fails(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        await anyio.sleep(0.01)
        raise RuntimeError("fails")

    jobs: list[dict[str, Any]] = [
        {"name": "stubborn", "action": "stubborn", "input": "s"},
        {"name": "fails", "action": "fails", "input": "f"},
    ]
    config = load_config(write_json(tmp_path / "batch.json", {"jobs": jobs}), registry=registry)
    report = await run(config, max_concurrency=2, halt=Halt.failures(1))
    assert statuses(report.jobs) == {
        "stubborn": ("cancelled", "Cancelled", 1),
        "fails": ("failed", "ActionError", 1),
    }


class BarrierScan:
    """Scans that fail together: each waits for the other batch's scan and for the
    event loop to be blocked, then fails."""

    arrived = threading.Event()
    blocking = threading.Event()
    barrier = threading.Barrier(2, timeout=HANG)

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        pass

    def update(self, data: bytes | bytearray) -> None:
        BarrierScan.arrived.set()
        BarrierScan.barrier.wait()
        BarrierScan.blocking.wait(timeout=HANG)
        raise RuntimeError("scan failed")

    def result(self) -> dict[str, Any]:
        return {}


async def test_batches_failing_together_leave_at_most_max_failures_failed(tmp_path: Path) -> None:
    """Two batches of small files fail in their threads while the event loop is
    busy; whichever failure it hears of first halts the run, the other is
    cancelled."""
    BarrierScan.barrier.reset()
    BarrierScan.arrived.clear()
    BarrierScan.blocking.clear()
    registry = ActionRegistry(
        [ActionSpec("scan", _never_awaited, None, origin="tests", kernel=Kernel(BarrierScan))]
    )

    @registry.action("busy")
    async def busy(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        while not BarrierScan.arrived.is_set():  # noqa: ASYNC110 - set in a thread
            await anyio.sleep(0.001)
        BarrierScan.blocking.set()
        # Blocks the event loop: both batches fail meanwhile, their results wait for it.
        time.sleep(0.3)  # noqa: ASYNC251
        await anyio.sleep(HANG)  # holds its slot until the halt
        return {}

    jobs: list[dict[str, Any]] = [{"name": "busy", "action": "busy", "input": "busy"}]
    for i in range(8):
        (tmp_path / f"f{i}").write_text("x", encoding="utf-8")
        jobs.append({"name": f"f{i}", "action": "scan", "input": f"f{i}"})
    config = load_config(write_json(tmp_path / "batch.json", {"jobs": jobs}), registry=registry)
    executor = LocalExecutor(Tuning(small_file_bytes=1 << 20), cpus=2)
    report = await run(config, max_concurrency=3, halt=Halt.failures(1), executor=executor)
    assert outcome(report.jobs[0]) == ("cancelled", "Cancelled", 1)
    assert report.summary.failed == 1
    assert report.summary.cancelled == 8
    started = [result.name for result in report.jobs if result.attempts]
    assert len(started) == 3  # busy and the first file of each batch


# --- worker tasks: as many as the jobs that can run ------------------------------------


async def test_a_huge_max_concurrency_starts_no_worker_for_jobs_that_cannot_run(
    tmp_path: Path,
) -> None:
    """A chain of 2,000 jobs with -j 100000: one job can run at a time, and the run
    has a handful of tasks, not one per slot."""
    registry = ActionRegistry()
    tasks: list[int] = []

    @registry.action("count")
    async def count(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        tasks.append(len(anyio.get_running_tasks()))
        return {}

    jobs: list[dict[str, Any]] = [{"name": "j0", "action": "count", "input": "j0"}]
    jobs += [
        {"name": f"j{i}", "action": "count", "input": f"j{i}", "depends_on": [f"j{i - 1}"]}
        for i in range(1, 2000)
    ]
    config = load_config(write_json(tmp_path / "batch.json", {"jobs": jobs}), registry=registry)
    before = len(anyio.get_running_tasks())
    report = await run(config, max_concurrency=100_000)
    assert report.summary.succeeded == 2000
    assert max(tasks) - before <= 3


async def test_batches_absorb_ready_small_files_instead_of_a_worker_each(tmp_path: Path) -> None:
    """2,000 small files with -j 100000: workers take them a batch at a time, so
    far fewer tasks run than jobs (and the slots stay unused)."""
    registry = ActionRegistry(
        [ActionSpec("scan", _never_awaited, None, origin="tests", kernel=Kernel(HostileScan))]
    )
    peak = [0]

    class Tasks(RunListener):
        def job_started(self, job: Any, attempt: int) -> None:
            peak[0] = max(peak[0], len(anyio.get_running_tasks()))

    jobs: list[dict[str, Any]] = [
        {"name": f"f{i}", "action": "scan", "input": f"f{i % 10}"} for i in range(2000)
    ]
    for i in range(10):
        (tmp_path / f"f{i}").write_text("x", encoding="utf-8")
    config = load_config(write_json(tmp_path / "batch.json", {"jobs": jobs}), registry=registry)
    before = len(anyio.get_running_tasks())
    executor = LocalExecutor(Tuning(small_file_bytes=1 << 20))
    report = await run(config, max_concurrency=100_000, executor=executor, listener=Tasks())
    assert report.summary.succeeded == 2000
    assert peak[0] - before <= 2000 // 4


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_peak_memory_of_a_run_does_not_grow_with_max_concurrency(tmp_path: Path) -> None:
    """20,000 file_size jobs: -j 100000 costs no more memory than -j 4 (a worker per
    slot would cost ~10 KB each)."""
    for i in range(100):
        (tmp_path / f"f{i}").write_text("x" * i, encoding="utf-8")
    jobs: list[dict[str, Any]] = [
        {"name": f"s{i}", "action": "file_size", "input": f"f{i % 100}"} for i in range(20_000)
    ]
    write_json(tmp_path / "batch.json", {"jobs": jobs})

    def peak_rss_mb(limit: int) -> float:
        measure = (
            "import resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[1:], capture_output=True, check=False)\n"
            "assert done.returncode == 0, done.stderr\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        )
        command = [sys.executable, "-m", "asyncbatch", "run", "batch.json", "-q", "-j", str(limit)]
        done = subprocess.run(
            [sys.executable, "-c", measure, *command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return int(done.stdout) / 1024  # KiB on Linux

    few, many = peak_rss_mb(4), peak_rss_mb(100_000)
    assert many < few + 25, (few, many)
