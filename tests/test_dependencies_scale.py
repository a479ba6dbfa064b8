"""A glob job depending on a glob job: every expansion waits for every expansion of
the other, yet loading, the dry-run plan and the run stay linear in time and memory
(the plan names the glob job, as written; the run waits on one barrier per glob)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import Probe, by_name, outcome, run

from asyncbatch import load_config
from asyncbatch.config import Job
from asyncbatch.engine import RunListener
from asyncbatch.model import JobResult

pytestmark = pytest.mark.anyio

SMALL, LARGE = 2_000, 10_000
"""Files per glob of the two measured runs."""
MAX_RSS = 300 << 20
"""Peak memory allowed to the run of LARGE files per glob (the quadratic build took
gigabytes)."""
MAX_RATIO = 12
"""The LARGE run may take this many times the CPU time of the SMALL one: linear is
about 5 (less, with the interpreter's start), quadratic 25 or more. CPU time, not
wall time: other work on the machine slows both alike."""


def glob_on_glob(folder: Path, files: int, action: str = "file_size") -> Path:
    """``folder/batch.json``: glob ``a`` over ``a/*.log`` and glob ``b`` over
    ``b/*.log`` depending on ``a``, ``files`` files each."""
    for group in ("a", "b"):
        (folder / group).mkdir(parents=True, exist_ok=True)
        for i in range(files):
            fd = os.open(folder / group / f"{group}{i:05d}.log", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"x\n")
            os.close(fd)
    config = {
        "max_concurrency": 8,
        "jobs": [
            {"name": "a", "action": action, "input": "a/*.log"},
            {"name": "b", "action": action, "input": "b/*.log", "depends_on": ["a"]},
        ],
    }
    path = folder / "batch.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


# --- the run, in process -----------------------------------------------------------------


class Timeline(RunListener):
    """Starts and results, in the order the run reported them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def job_started(self, job: Job, attempt: int) -> None:
        self.events.append(("started", job.name))

    def job_done(self, result: JobResult) -> None:
        self.events.append(("done", result.name))


async def test_every_expansion_of_a_glob_on_a_glob_starts_after_every_one_it_waits_for(
    tmp_path: Path, probe: Probe
) -> None:
    config = load_config(glob_on_glob(tmp_path, 5, "record"), registry=probe.registry)
    timeline = Timeline()
    report = await run(config, probe, listener=timeline)
    assert report.summary.succeeded == 10
    events = timeline.events
    a_done = [i for i, (event, name) in enumerate(events) if event == "done" and name[0] == "a"]
    b_started = [
        i for i, (event, name) in enumerate(events) if event == "started" and name[0] == "b"
    ]
    assert len(a_done) == len(b_started) == 5
    assert max(a_done) < min(b_started)


async def test_a_failed_expansion_skips_every_expansion_of_the_glob_waiting_on_it(
    tmp_path: Path,
) -> None:
    """The file is removed after loading (a real fault): its job fails, and each job
    of the glob that waits for it is skipped, naming the expansion that failed."""
    config = load_config(glob_on_glob(tmp_path, 3))
    (tmp_path / "a" / "a00001.log").unlink()
    results = by_name(await run(config, max_concurrency=1))
    assert outcome(results["a[a/a00000.log]"]) == ("succeeded", None, 1)
    assert outcome(results["a[a/a00001.log]"]) == ("failed", "FileNotFoundError", 1)
    assert outcome(results["a[a/a00002.log]"]) == ("succeeded", None, 1)
    for i in range(3):
        skipped = results[f"b[b/b{i:05d}.log]"]
        assert outcome(skipped) == ("skipped", "DependencyFailed", 0)
        assert skipped.error is not None
        assert skipped.error["message"] == "dependency 'a[a/a00001.log]' failed"


# --- ten thousand on ten thousand, measured in a fresh interpreter -----------------------


@dataclass(frozen=True)
class Measured:
    exit_code: int
    seconds: float
    cpu_seconds: float
    peak_rss: int
    stdout: str


def measure(args: list[str], cwd: Path) -> Measured:
    """``python -m asyncbatch ARGS``: exit code, wall and CPU time, peak resident
    memory (of that process alone: ``wait4`` reports it) and stdout."""
    out = cwd / "stdout.txt"
    started = time.perf_counter()
    with (
        out.open("wb") as stdout,
        subprocess.Popen(
            [sys.executable, "-m", "asyncbatch", *args],
            cwd=cwd,
            stdout=stdout,
            stderr=subprocess.PIPE,
        ) as child,
    ):
        assert child.stderr is not None
        errors = child.stderr.read().decode(errors="replace")
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    seconds = time.perf_counter() - started
    assert "Traceback" not in errors, errors
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes there, KiB here
    text = out.read_text(encoding="utf-8")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(child.returncode, seconds, cpu, usage.ru_maxrss * scale, text)


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """A glob on a glob of SMALL and of LARGE files each."""
    return {
        files: glob_on_glob(tmp_path_factory.mktemp(f"g{files}"), files) for files in (SMALL, LARGE)
    }


def assert_linear(small: Measured, large: Measured) -> None:
    assert large.peak_rss < MAX_RSS, f"peak {large.peak_rss / 1e6:.0f} MB"
    assert large.cpu_seconds < MAX_RATIO * small.cpu_seconds, (
        f"CPU: {LARGE} files: {large.cpu_seconds:.1f} s; {SMALL} files: {small.cpu_seconds:.1f} s"
    )


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4")
@pytest.mark.slow
def test_a_glob_on_a_glob_of_ten_thousand_dry_runs_in_linear_time_memory_and_size(
    configs: dict[int, Path],
) -> None:
    measured = {}
    for files, config in configs.items():
        measured[files] = result = measure(["run", "--dry-run", str(config)], config.parent)
        assert result.exit_code == 0
        plan = json.loads(result.stdout)
        assert plan["total_jobs"] == 2 * files
        assert [j["depends_on"] for j in plan["jobs"]] == [[]] * files + [["a"]] * files
    small, large = measured[SMALL], measured[LARGE]
    assert len(large.stdout) < 6 * len(small.stdout)
    assert_linear(small, large)


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4")
@pytest.mark.slow
def test_a_glob_on_a_glob_of_ten_thousand_runs_in_linear_time_and_memory(
    configs: dict[int, Path],
) -> None:
    measured = {}
    for files, config in configs.items():
        report = config.parent / "report.json"
        measured[files] = result = measure(
            ["run", str(config), "-q", "-o", str(report)], config.parent
        )
        assert result.exit_code == 0
        assert json.loads(result.stdout)["succeeded"] == 2 * files
        jobs = json.loads(report.read_text(encoding="utf-8"))["jobs"]
        assert [j["status"] for j in jobs] == ["succeeded"] * (2 * files)
    assert_linear(measured[SMALL], measured[LARGE])
