"""Helpers shared by the test modules: test actions that record what they see
(:class:`Probe`), configs written to ``tmp_path``, the CLI in process and as a
subprocess, and modules of actions written next to a config.

Test actions live in a registry of their own (a seam, not a mock); concurrency is
checked by counting running actions and by events that would deadlock (caught by
``fail_after``) if the scheduler were wrong, never by wall-clock time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from typer.testing import CliRunner, Result

from asyncbatch import load_config, run_batch
from asyncbatch.cli import app
from asyncbatch.config import BatchConfig
from asyncbatch.errors import JobError, LineTooLong
from asyncbatch.kernel import Kernel, Tuning
from asyncbatch.model import JobResult, Report
from asyncbatch.registry import ActionRegistry, ActionSpec

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "batch_config.json"

HANG = 10
"""Generous bound on anything that must not hang (seconds)."""


# --- test actions ----------------------------------------------------------------------


class QuotaExceeded(JobError):
    """A custom JobError subclass: its own error_type must reach the report."""

    error_type = "QuotaExceeded"


def make_error(kind: str, path: Path) -> Exception:
    """An exception of the kind named, as an action would raise it on ``path``."""
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
    """Test actions and what they observed. A job's input doubles as its identity
    (``path.name``); actions that use named limits list them in ``params["limits"]``
    so the probe can count slots in use.

    Actions: ``record`` (count itself running; ``fill``, ``wait``, ``set``,
    ``yields``, ``observe``), ``fail``, ``raise`` (``kind``), ``flaky``
    (``failures``, ``sleep``, ``set``), ``hang`` (``hangs``, ``set``), ``returns``
    (``kind`` of a non-JSON result), ``trivial``."""

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

        @action("raise")
        async def raise_(path: Path, params: dict[str, Any]) -> dict[str, Any]:
            """Raise the exception named by ``params["kind"]``."""
            self._enter(path, params)
            self._leave(path, params)
            raise make_error(params["kind"], path)

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


class KernelProbe:
    """An action backed by a kernel of its own (as the built-ins are), which the
    local executor runs in small-file batches: each scan counts itself running,
    in a thread, so that the peak number of scans at once can be asserted.
    ``hold`` seconds are spent inside each scan (blocking, as real reads are)."""

    def __init__(self, name: str = "scan", *, hold: float = 0.0) -> None:
        self.name = name
        self.hold = hold
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.scanned: list[str] = []
        probe = self

        class Scan:
            def __init__(
                self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning
            ) -> None:
                self._path = path
                self._bytes = 0

            def update(self, data: bytes | bytearray) -> None:
                self._bytes += len(data)

            def result(self) -> dict[str, Any]:
                with probe._lock:
                    probe.running += 1
                    probe.peak = max(probe.peak, probe.running)
                    probe.scanned.append(Path(self._path).name)
                try:
                    time.sleep(probe.hold)
                finally:
                    with probe._lock:
                        probe.running -= 1
                return {"bytes": self._bytes}

        async def scan(path: Path, params: Any) -> dict[str, Any]:
            """Bytes read (through the kernel)."""
            raise AssertionError("the local executor runs the kernel, not this")

        self.kernel = Kernel(Scan)
        self.spec = ActionSpec(name, scan, None, origin="tests", kernel=self.kernel)


def job(name: str, action: str = "record", **fields: Any) -> dict[str, Any]:
    """A job whose input is its own name (test actions identify themselves by it)."""
    return {"name": name, "action": action, "input": name, **fields}


def load(
    tmp_path: Path, registry: ActionRegistry | Probe, jobs: list[dict[str, Any]], **top: Any
) -> BatchConfig:
    """``jobs`` (and top-level keys) written as ``tmp_path/batch.json`` and loaded
    with the probe's (or the given) registry."""
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({**top, "jobs": jobs}), encoding="utf-8")
    if isinstance(registry, Probe):
        registry = registry.registry
    return load_config(path, registry=registry)


async def run(config: BatchConfig, probe: Probe | None = None, **options: Any) -> Report:
    """``run_batch`` under a deadline; the probe (if any) hears of every result."""
    if probe is not None:
        options.setdefault("on_job_done", probe.on_job_done)
    with anyio.fail_after(HANG):
        return await run_batch(config, **options)


def by_name(report: Report) -> dict[str, JobResult]:
    return {result.name: result for result in report.jobs}


def outcome(result: JobResult) -> tuple[str, str | None, int]:
    """(status, error type, attempts): the part of a result most tests check."""
    return result.status, None if result.error is None else result.error["type"], result.attempts


ROUTES: dict[str, tuple[Tuning, int]] = {
    # Every file of these tests is small: one thread hop reads a whole batch.
    "batch": (Tuning(small_file_bytes=1 << 20), 2),
    # Every non-empty file is big; one core: nothing goes to a worker process (a
    # kernel that releases the GIL, checksum, runs in a thread of its own).
    "streamed": (Tuning(chunk_bytes=4096, small_file_bytes=0), 1),
    # Every non-empty file is big and worth a worker process for the counts
    # (search_pattern always runs in one; checksum and file_size never do).
    "worker": (Tuning(chunk_bytes=4096, small_file_bytes=0, process_min_bytes=1), 2),
}
"""The local executor's routes, as (tuning, cores) that put every file of a test on
one of them: the ``route`` and ``executor`` fixtures of conftest.py."""


# --- the command line ------------------------------------------------------------------


def invoke(args: Sequence[str], *, stdin: str | None = None) -> Result:
    """Run the CLI in process; never a Python traceback, whatever the outcome."""
    result = CliRunner().invoke(app, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the CLI raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.stderr
    return result


def run_module(
    args: Sequence[str],
    *,
    cwd: Path,
    stdin: str | None = None,
    python_flags: Sequence[str] = (),
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m asyncbatch ARGS`` in a fresh interpreter; never a traceback."""
    completed = subprocess.run(
        [sys.executable, *python_flags, "-m", "asyncbatch", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        check=False,
    )
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def summary(stdout: str) -> dict[str, int]:
    """stdout is exactly the summary object, indented by 2, and nothing else."""
    value = json.loads(stdout)
    assert stdout == json.dumps(value, indent=2) + "\n"
    assert list(value) == ["total_jobs", "succeeded", "failed", "skipped", "cancelled"]
    return dict(value)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def add_module(folder: Path, source: str, prefix: str = "testmod") -> str:
    """A module next to the config with a unique name (the import cache never hands
    over another test's module); returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex}"
    (folder / f"{name}.py").write_text(source, encoding="utf-8")
    return name


def file_statistics() -> list[ActionSpec]:
    """The built-ins that compute over a file's bytes through a kernel (all but
    ``command``, which runs a program)."""
    from asyncbatch.actions import builtin_specs

    return [spec for spec in builtin_specs() if spec.kernel is not None]


@contextlib.asynccontextmanager
async def worker_processes_for_the_loop() -> AsyncIterator[None]:
    """The running event loop's pool of worker processes (``anyio.to_process``: the
    scans of ``search_pattern`` and the isolated kernels), set up and owned here: its
    workers live until the block ends, then they are killed and waited for.

    anyio ends a loop's workers when the task it takes for the loop's root ends, and
    under pytest's anyio plugin that is the task of the test that starts the first
    worker, not the loop: in a loop kept for a whole module, the next test would find
    the pool's workers killed but still in it, and take a dead one (the stray
    BrokenWorkerProcess of a loaded machine) or start new ones. A pool that already
    exists is never tied to a task."""
    from collections import deque

    from anyio import to_process
    from anyio.abc import Process

    workers: set[Process] = set()
    to_process._process_pool_workers.set(workers)
    to_process._process_pool_idle_workers.set(deque())
    try:
        yield
    finally:
        for process in list(workers):
            if process.returncode is None:
                process.kill()
        with anyio.CancelScope(shield=True):
            for process in list(workers):
                await process.aclose()
