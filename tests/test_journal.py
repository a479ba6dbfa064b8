"""Durable runs: the journal beside the report, ``--resume``, and the run lock.

Most tests here drive the real command (``python -m asyncbatch run``) in a
subprocess over real files in ``tmp_path``; the last section uses the journal's
API (``Journal``, ``journaled``) in process. The test-only actions live in
``counting.py`` next to the config. ``work`` appends its input's stem to
``log.txt`` as its very last step, so the log counts completed computations: a
job reused from the journal adds nothing to it. Its behaviour is steered by flag
files next to the module, never by params (params are part of the fingerprint):
``fail-STEM`` makes it fail, ``fail-once-STEM`` fail once, ``hold-STEM`` wait
until the test removes it, ``hang-STEM`` sleep for a minute (until a timeout, a
halt or a kill). It leaves ``started-STEM``
behind as it starts. Its result carries the pid of the run that computed it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import run_module, write_json

from asyncbatch import load_config
from asyncbatch.config import Job
from asyncbatch.errors import OutputError
from asyncbatch.model import JobResult
from asyncbatch.output.journal import Journal, journal_path, journaled

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock and SIGKILL are POSIX")

SUBPROCESS = 30
"""Generous deadline for one run of the command, or for it to reach a state (s)."""

COUNTING = '''\
import os
from pathlib import Path

import anyio

HERE = Path(__file__).parent


async def work(path, params):
    """Sleep, obey the flag files, then log the input's stem as the last step."""
    stem = path.stem
    (HERE / f"started-{stem}").touch()
    await anyio.sleep(params.get("sleep", 0))
    while (HERE / f"hold-{stem}").exists():
        await anyio.sleep(0.01)
    if (HERE / f"hang-{stem}").exists():
        await anyio.sleep(60)
    if (HERE / f"fail-{stem}").exists():
        raise RuntimeError(f"{stem} was told to fail")
    once = HERE / f"fail-once-{stem}"
    if once.exists():
        once.unlink()
        raise RuntimeError(f"{stem} was told to fail once")
    size = len(path.read_bytes())
    with open(HERE / "log.txt", "a", encoding="utf-8") as log:
        log.write(stem + "\\n")
    return {"bytes": size, "tag": params.get("tag"), "pid": os.getpid()}


async def produce(path, params):
    """Write the input's text twice into params["target"], then log."""
    text = path.read_text(encoding="utf-8")
    (HERE / params["target"]).write_text(text * 2, encoding="utf-8")
    with open(HERE / "log.txt", "a", encoding="utf-8") as log:
        log.write(path.stem + "\\n")
    return {"wrote": params["target"]}
'''


# --- helpers ---------------------------------------------------------------------------


def work(name: str, *, stem: str | None = None, **params: Any) -> dict[str, Any]:
    """A ``counting:work`` job over ``in/STEM.txt`` (STEM defaults to the name)."""
    return {
        "name": name,
        "action": "counting:work",
        "input": f"in/{stem or name}.txt",
        "params": params,
    }


def batch(folder: Path, jobs: list[dict[str, Any]], name: str = "batch.json") -> Path:
    """Write counting.py, an input ``in/STEM.txt`` for each work job that lacks
    one, and the config; return the config's path."""
    (folder / "counting.py").write_text(COUNTING, encoding="utf-8")
    (folder / "in").mkdir(exist_ok=True)
    for job in jobs:
        if job["action"] == "counting:work":
            source = folder / job["input"]
            if not source.exists():
                source.write_text(f"{source.stem}\n", encoding="utf-8")
    config = folder / name
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    return config


def command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "asyncbatch", "run", str(config), *args]


def run(config: Path, out: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    output = ["-o", str(out)] if out is not None else []
    return run_module(["run", str(config), *output, *args], cwd=config.parent, timeout=SUBPROCESS)


def start(config: Path, out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(config, "-o", str(out), *args),
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Runs started in the background; any still alive at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def wait_until(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready()`` every few ms; fail if the run ends first or never gets there."""
    deadline = time.monotonic() + SUBPROCESS
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the run (``kill -9``) and reap it."""
    proc.kill()
    proc.communicate(timeout=SUBPROCESS)
    assert proc.returncode == -signal.SIGKILL


def journal_of(out: Path) -> Path:
    return out.with_name(out.name + ".journal")


def journal_lines(out: Path) -> int:
    try:
        return journal_of(out).read_bytes().count(b"\n")
    except FileNotFoundError:
        return -1


def read_journal(out: Path) -> tuple[list[dict[str, Any]], bytes]:
    """Every complete line parsed (each must parse), and what follows the last
    newline: empty, or a torn line."""
    *complete, tail = journal_of(out).read_bytes().split(b"\n")
    return [json.loads(line) for line in complete], tail


def report_jobs(out: Path) -> dict[str, dict[str, Any]]:
    report = json.loads(out.read_text(encoding="utf-8"))
    return {job["name"]: job for job in report["jobs"]}


def reused(out: Path) -> set[str]:
    return {name for name, job in report_jobs(out).items() if job["reused"]}


def statuses(out: Path) -> dict[str, str]:
    return {name: job["status"] for name, job in report_jobs(out).items()}


def log(folder: Path) -> Counter[str]:
    """How many times each input's computation completed, over all runs."""
    path = folder / "log.txt"
    return Counter(path.read_text(encoding="utf-8").split()) if path.exists() else Counter()


def ok(completed: subprocess.CompletedProcess[str], code: int = 0) -> None:
    assert completed.returncode == code, completed.stderr
    assert "Traceback" not in completed.stderr


# --- crash safety ----------------------------------------------------------------------

CRASH_JOBS = [f"j{i:02}" for i in range(30)]


@pytest.mark.slow
@pytest.mark.parametrize("lines_at_kill", [0, 5, 15], ids=["at-start", "early", "middle"])
def test_a_run_killed_at_any_moment_then_resumed_computes_every_recorded_job_once(
    tmp_path: Path, processes: list[subprocess.Popen[str]], lines_at_kill: int
) -> None:
    config = batch(tmp_path, [work(name, sleep=0.15) for name in CRASH_JOBS])
    out = tmp_path / "out.json"
    proc = start(config, out, "-j", "3")
    processes.append(proc)
    wait_until(proc, lambda: journal_lines(out) >= lines_at_kill, f"{lines_at_kill} journal lines")
    kill(proc)

    recorded, _torn = read_journal(out)  # every line parses, but a torn last one
    assert all(entry["job"]["status"] == "succeeded" for entry in recorded)
    finished = {entry["job"]["name"] for entry in recorded}
    assert len(finished) < len(CRASH_JOBS), "the kill came after the run was over"
    assert not out.exists(), "a killed run writes no report"
    # The log line and the journal line of a job are written in one synchronous
    # step of the event loop: the kill can catch at most one job between them.
    caught = set(log(tmp_path)) - finished
    assert len(caught) <= 1, caught

    resumed = run(config, out, "--resume", "-j", "3")
    ok(resumed)
    assert set(statuses(out).values()) == {"succeeded"}
    assert reused(out) == finished
    # Every recorded success is computed once overall; the one job (at most) the
    # kill caught between its side effect and its journal line is computed again,
    # since nothing durable says it finished.
    expected = {name: 2 if name in caught else 1 for name in CRASH_JOBS}
    assert log(tmp_path) == expected


@pytest.mark.slow
def test_a_resumed_run_that_is_killed_again_keeps_what_both_runs_finished(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """Appending (not truncating) on resume: each run's successes survive the next kill."""
    names = ["a", "b", "c"]
    config = batch(tmp_path, [work(name) for name in names])
    (tmp_path / "hang-b").touch()
    first = start(config, out := tmp_path / "out.json", "-j", "1")
    processes.append(first)
    wait_until(first, (tmp_path / "started-b").exists, "b started")
    kill(first)
    (tmp_path / "hang-b").unlink()
    (tmp_path / "started-b").unlink()
    (tmp_path / "hang-c").touch()
    second = start(config, out, "-j", "1", "--resume")
    processes.append(second)
    wait_until(second, (tmp_path / "started-c").exists, "c started")
    kill(second)
    (tmp_path / "hang-c").unlink()

    ok(run(config, out, "--resume"))
    assert reused(out) == {"a", "b"}
    assert log(tmp_path) == dict.fromkeys(names, 1)


@pytest.mark.slow
def test_a_resumed_run_starts_its_lines_after_a_torn_last_line_so_none_is_lost(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """The first line a resumed run appends must not be glued to a torn fragment:
    a second kill would otherwise lose the job it records."""
    config = batch(tmp_path, [work("a"), work("b")])
    out = tmp_path / "out.json"
    journal_of(out).write_text('{"fingerprint": "0123", "job": {"na', encoding="utf-8")
    (tmp_path / "hang-b").touch()
    proc = start(config, out, "-j", "1", "--resume")
    processes.append(proc)
    wait_until(proc, (tmp_path / "started-b").exists, "b started")
    kill(proc)
    (tmp_path / "hang-b").unlink()

    completed = run(config, out, "--resume")
    ok(completed)
    assert "unreadable line 1" in completed.stderr
    assert reused(out) == {"a"}
    assert log(tmp_path) == {"a": 1, "b": 1}


# --- reuse -----------------------------------------------------------------------------


@pytest.mark.slow
def test_reused_results_keep_the_result_duration_and_attempts_of_the_run_that_computed_them(
    tmp_path: Path,
) -> None:
    config = batch(tmp_path, [work("a", sleep=0.05), work("b")])
    (tmp_path / "fail-once-a").touch()
    out = tmp_path / "out.json"
    ok(run(config, out, "--retries", "1"))
    first = report_jobs(out)
    assert first["a"]["attempts"] == 2
    (tmp_path / "in" / "b.txt").write_text("edited, longer\n", encoding="utf-8")

    ok(run(config, out, "--resume"))
    second = report_jobs(out)
    assert second["a"]["reused"] is True
    for key in ("status", "result", "error", "duration_ms", "attempts", "input", "action"):
        assert second["a"][key] == first["a"][key], key
    assert second["b"]["reused"] is False
    assert second["b"]["result"]["bytes"] == len("edited, longer\n")
    assert second["b"]["result"]["pid"] != first["b"]["result"]["pid"]
    assert first["a"]["reused"] is first["b"]["reused"] is False


def _rewrite_same_size_later(folder: Path) -> None:
    path = folder / "in" / "b.txt"
    before = path.stat()
    path.write_text("B\n", encoding="utf-8")  # "b\n" before: same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))


def _touch_later(folder: Path) -> None:
    path = folder / "in" / "b.txt"
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))


Edit = Callable[[Path], object] | None

INCREMENTAL_EDITS: dict[str, tuple[Edit, list[dict[str, Any]], set[str]]] = {
    # edit of the folder, jobs of the second run, inputs computed again
    "nothing-changed": (None, [work("a"), work("b"), work("c")], set()),
    "input-grew": (
        lambda folder: (folder / "in" / "b.txt").write_text("b, longer\n", encoding="utf-8"),
        [work("a"), work("b"), work("c")],
        {"b"},
    ),
    "same-size-later-mtime": (_rewrite_same_size_later, [work("a"), work("b"), work("c")], {"b"}),
    "only-touched": (_touch_later, [work("a"), work("b"), work("c")], {"b"}),
    "params-edited": (None, [work("a"), work("b", tag="new"), work("c")], {"b"}),
    "job-added": (None, [work("a"), work("b"), work("c"), work("d")], {"d"}),
    "job-renamed": (None, [work("a"), work("b2", stem="b"), work("c")], {"b"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("edit", list(INCREMENTAL_EDITS))
def test_resume_after_a_complete_run_computes_only_what_changed(tmp_path: Path, edit: str) -> None:
    change, jobs, expected = INCREMENTAL_EDITS[edit]
    config = batch(tmp_path, [work("a"), work("b"), work("c")])
    out = tmp_path / "out.json"
    ok(run(config, out))
    before = log(tmp_path)
    if change is not None:
        change(tmp_path)
    config = batch(tmp_path, jobs)

    ok(run(config, out, "--resume"))
    assert log(tmp_path) - before == dict.fromkeys(expected, 1)
    fresh = {name for name, job in report_jobs(out).items() if not job["reused"]}
    assert {report_jobs(out)[name]["input"][3:-4] for name in fresh} == expected
    assert set(statuses(out).values()) == {"succeeded"}


# --- what is never reused --------------------------------------------------------------


@pytest.mark.slow
def test_a_failed_job_runs_again_on_resume(tmp_path: Path) -> None:
    config = batch(tmp_path, [work("a"), work("b")])
    (tmp_path / "fail-a").touch()
    out = tmp_path / "out.json"
    ok(run(config, out), 1)
    assert statuses(out) == {"a": "failed", "b": "succeeded"}
    (tmp_path / "fail-a").unlink()

    ok(run(config, out, "--resume"))
    assert statuses(out) == {"a": "succeeded", "b": "succeeded"}
    assert reused(out) == {"b"}
    assert log(tmp_path) == {"a": 1, "b": 1}


@pytest.mark.slow
def test_a_timed_out_job_runs_again_on_resume(tmp_path: Path) -> None:
    config = batch(tmp_path, [{**work("a"), "timeout": 0.2}, work("b")])
    (tmp_path / "hang-a").touch()
    out = tmp_path / "out.json"
    ok(run(config, out), 1)
    assert report_jobs(out)["a"]["error"]["type"] == "Timeout"
    (tmp_path / "hang-a").unlink()

    ok(run(config, out, "--resume"))
    assert statuses(out) == {"a": "succeeded", "b": "succeeded"}
    assert reused(out) == {"b"}
    assert log(tmp_path) == {"a": 1, "b": 1}


@pytest.mark.slow
def test_jobs_cancelled_by_fail_fast_run_on_resume(tmp_path: Path) -> None:
    """-j 2: ``bad`` fails while ``slow`` runs (cancelled mid-flight) and ``later``
    never starts (cancelled unstarted); ``early`` finished before the halt."""
    config = batch(tmp_path, [work("early"), work("bad", sleep=0.3), work("slow"), work("later")])
    for flag in ("fail-bad", "hang-slow"):
        (tmp_path / flag).touch()
    out = tmp_path / "out.json"
    ok(run(config, out, "-j", "2", "--fail-fast"), 1)
    assert statuses(out) == {
        "early": "succeeded",
        "bad": "failed",
        "slow": "cancelled",
        "later": "cancelled",
    }
    for flag in ("fail-bad", "hang-slow"):
        (tmp_path / flag).unlink()

    ok(run(config, out, "-j", "2", "--resume"))
    assert set(statuses(out).values()) == {"succeeded"}
    assert reused(out) == {"early"}
    assert log(tmp_path) == {"early": 1, "bad": 1, "slow": 1, "later": 1}


@pytest.mark.slow
def test_a_resumed_run_halted_by_fail_fast_keeps_the_successes_it_never_reached(
    tmp_path: Path,
) -> None:
    """Compaction keeps earlier successes of jobs the run never looked at."""
    names = ["a", "b", "c"]
    config = batch(tmp_path, [work(name) for name in names])
    out = tmp_path / "out.json"
    ok(run(config, out))
    (tmp_path / "in" / "a.txt").write_text("a, edited\n", encoding="utf-8")
    (tmp_path / "fail-a").touch()
    ok(run(config, out, "-j", "1", "--resume", "--fail-fast"), 1)
    assert statuses(out) == {"a": "failed", "b": "cancelled", "c": "cancelled"}
    (tmp_path / "fail-a").unlink()

    ok(run(config, out, "--resume"))
    assert reused(out) == {"b", "c"}
    assert log(tmp_path) == {"a": 2, "b": 1, "c": 1}


@pytest.mark.slow
def test_resume_with_only_keeps_the_successes_of_the_jobs_left_out(tmp_path: Path) -> None:
    config = batch(tmp_path, [work("a"), work("b")])
    out = tmp_path / "out.json"
    ok(run(config, out))
    (tmp_path / "in" / "a.txt").write_text("a, edited\n", encoding="utf-8")
    ok(run(config, out, "--resume", "--only", "a"))
    assert statuses(out) == {"a": "succeeded"}

    ok(run(config, out, "--resume"))
    assert reused(out) == {"a", "b"}
    assert log(tmp_path) == {"a": 2, "b": 1}


# --- a damaged or missing journal ------------------------------------------------------


def _complete_run(folder: Path, names: list[str]) -> tuple[Path, Path]:
    config = batch(folder, [work(name) for name in names])
    out = folder / "out.json"
    ok(run(config, out, "-j", "1"))
    return config, out


@pytest.mark.slow
def test_a_torn_last_journal_line_is_ignored_with_a_warning_and_the_rest_reused(
    tmp_path: Path,
) -> None:
    names = ["a", "b", "c", "d"]
    config, out = _complete_run(tmp_path, names)
    lines = journal_of(out).read_text(encoding="utf-8").splitlines(keepends=True)
    torn = json.loads(lines[-1])["job"]["name"]
    journal_of(out).write_text("".join(lines[:-1]) + lines[-1][:40], encoding="utf-8")

    completed = run(config, out, "--resume")
    ok(completed)
    assert "warning" in completed.stderr
    assert "torn last line" in completed.stderr
    assert reused(out) == set(names) - {torn}
    assert log(tmp_path) == {**dict.fromkeys(names, 1), torn: 2}


@pytest.mark.slow
def test_a_garbage_line_in_the_middle_of_the_journal_is_skipped_with_a_warning(
    tmp_path: Path,
) -> None:
    names = ["a", "b", "c", "d"]
    config, out = _complete_run(tmp_path, names)
    lines = journal_of(out).read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(2, "this is not JSON\n")
    journal_of(out).write_text("".join(lines), encoding="utf-8")

    completed = run(config, out, "--resume")
    ok(completed)
    assert "warning" in completed.stderr
    assert "unreadable line 3" in completed.stderr
    assert reused(out) == set(names)
    assert log(tmp_path) == dict.fromkeys(names, 1)


@pytest.mark.slow
def test_resume_without_a_journal_runs_everything(tmp_path: Path) -> None:
    config = batch(tmp_path, [work("a"), work("b")])
    out = tmp_path / "out.json"

    completed = run(config, out, "--resume")
    ok(completed)
    assert "warning" not in completed.stderr
    assert statuses(out) == {"a": "succeeded", "b": "succeeded"}
    assert reused(out) == set()
    assert log(tmp_path) == {"a": 1, "b": 1}
    assert len(read_journal(out)[0]) == 2


# --- when there is no journal ----------------------------------------------------------


@pytest.mark.slow
def test_resume_without_output_is_a_usage_error_that_runs_nothing(tmp_path: Path) -> None:
    config = batch(tmp_path, [work("a")])

    completed = run(config, None, "--resume")
    assert completed.returncode == 2
    assert "--resume needs --output" in completed.stderr
    assert completed.stdout == ""
    assert log(tmp_path) == {}


@pytest.mark.slow
def test_a_dry_run_writes_no_journal_and_no_report(tmp_path: Path) -> None:
    config = batch(tmp_path, [work("a")])
    out = tmp_path / "out.json"

    ok(run(config, out, "--dry-run"))
    assert not out.exists()
    assert not journal_of(out).exists()
    assert log(tmp_path) == {}


@pytest.mark.slow
@pytest.mark.parametrize("resume", [[], ["--resume"]], ids=["fresh", "resume"])
def test_a_config_error_leaves_the_journal_and_report_byte_for_byte_untouched(
    tmp_path: Path, resume: list[str]
) -> None:
    _, out = _complete_run(tmp_path, ["a", "b"])
    report, journal = out.read_bytes(), journal_of(out).read_bytes()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"jobs": [{**work("a"), "typo": 1}]}), encoding="utf-8")

    completed = run(broken, out, *resume)
    assert completed.returncode == 2
    assert "typo" in completed.stderr
    assert out.read_bytes() == report
    assert journal_of(out).read_bytes() == journal


# --- the lock --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    config = batch(tmp_path, [work("a"), work("b")])
    for name in ("a", "b"):
        (tmp_path / f"hold-{name}").touch()
    out = tmp_path / "out.json"
    first = start(config, out, "-j", "2")
    processes.append(first)
    started = [tmp_path / "started-a", tmp_path / "started-b"]
    wait_until(first, lambda: all(path.exists() for path in started), "a and b started")

    second = run(config, out)
    assert second.returncode == 2
    assert "another asyncbatch run" in second.stderr
    assert str(out) in second.stderr
    assert second.stdout == ""
    assert first.poll() is None, "the refusal does not wait for the first run"
    for name in ("a", "b"):
        (tmp_path / f"hold-{name}").unlink()

    stdout, stderr = first.communicate(timeout=SUBPROCESS)
    assert first.returncode == 0, stderr
    assert json.loads(stdout)["succeeded"] == 2
    assert statuses(out) == {"a": "succeeded", "b": "succeeded"}
    assert len(read_journal(out)[0]) == 2
    assert log(tmp_path) == {"a": 1, "b": 1}


@pytest.mark.slow
def test_a_killed_run_leaves_no_lock_behind(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    config = batch(tmp_path, [work("a"), work("b")])
    (tmp_path / "hang-b").touch()
    out = tmp_path / "out.json"
    proc = start(config, out)
    processes.append(proc)
    wait_until(proc, (tmp_path / "started-b").exists, "b started")
    kill(proc)
    assert out.with_name("out.json.lock").exists()
    (tmp_path / "hang-b").unlink()

    ok(run(config, out))
    assert statuses(out) == {"a": "succeeded", "b": "succeeded"}


# --- the journal at the end ------------------------------------------------------------


@pytest.mark.slow
def test_after_a_run_the_journal_holds_exactly_the_reports_jobs_one_line_each(
    tmp_path: Path,
) -> None:
    config = batch(
        tmp_path,
        [work("a"), work("b"), {**work("c"), "depends_on": ["b"]}, work("d", sleep=0.05)],
    )
    (tmp_path / "fail-b").touch()
    out = tmp_path / "out.json"
    ok(run(config, out), 1)

    entries, tail = read_journal(out)
    assert tail == b"", "the journal ends with a complete line"
    journaled = {entry["job"]["name"]: entry["job"] for entry in entries}
    assert len(journaled) == len(entries) == 4
    assert journaled == report_jobs(out)
    assert statuses(out) == {"a": "succeeded", "b": "failed", "c": "skipped", "d": "succeeded"}
    assert all(len(entry["fingerprint"]) == 64 for entry in entries if entry["job"]["name"] != "c")


@pytest.mark.slow
def test_consecutive_resumed_runs_compact_the_journal_to_one_line_per_job(
    tmp_path: Path,
) -> None:
    names = ["a", "b", "c", "d"]
    config, out = _complete_run(tmp_path, names)
    for count in range(3):
        path = tmp_path / "in" / f"{names[count]}.txt"
        path.write_text(f"edit {count}\n", encoding="utf-8")
        ok(run(config, out, "--resume", "-j", "2"))
        entries, tail = read_journal(out)
        assert tail == b""
        assert sorted(entry["job"]["name"] for entry in entries) == names
    assert log(tmp_path) == {"a": 2, "b": 2, "c": 2, "d": 1}


# --- dependencies ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_dependent_of_a_reused_job_is_released_and_runs_or_is_reused(tmp_path: Path) -> None:
    config = batch(
        tmp_path,
        [work("a"), {**work("b"), "depends_on": ["a"]}, {**work("c"), "depends_on": ["a"]}],
    )
    out = tmp_path / "out.json"
    ok(run(config, out))
    (tmp_path / "in" / "c.txt").write_text("c, edited\n", encoding="utf-8")

    ok(run(config, out, "--resume"))
    assert statuses(out) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    assert reused(out) == {"a", "b"}
    assert log(tmp_path) == {"a": 1, "b": 1, "c": 2}


@pytest.mark.slow
def test_a_job_reading_what_its_dependency_rewrote_runs_again_on_the_new_content(
    tmp_path: Path,
) -> None:
    produce = {
        "name": "produce",
        "action": "counting:produce",
        "input": "in/src.txt",
        "params": {"target": "generated.txt"},
    }
    count = {
        "name": "count",
        "action": "count_lines",
        "input": "generated.txt",
        "depends_on": ["produce"],
    }
    config = batch(tmp_path, [produce, count])
    (tmp_path / "in" / "src.txt").write_text("one\n", encoding="utf-8")
    out = tmp_path / "out.json"
    ok(run(config, out))
    assert report_jobs(out)["count"]["result"] == {"lines": 2}

    ok(run(config, out, "--resume"))
    assert reused(out) == {"produce", "count"}
    (tmp_path / "in" / "src.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")

    ok(run(config, out, "--resume"))
    assert reused(out) == set()
    assert report_jobs(out)["count"]["result"] == {"lines": 6}
    assert log(tmp_path) == {"src": 2}


# --- the journal's API, in process --------------------------------------------------------


def count_jobs(folder: Path, *inputs: str) -> list[Job]:
    """Loaded ``count_lines`` jobs over ``inputs`` (created when missing), named by stem."""
    for name in inputs:
        path = folder / name
        if not path.exists() and not path.is_symlink():
            path.write_text(f"{name}\n", encoding="utf-8")
    jobs = [{"name": Path(n).stem, "action": "count_lines", "input": n} for n in inputs]
    return load_config(write_json(folder / "batch.json", {"jobs": jobs})).jobs


def succeeded(job: Job) -> JobResult:
    return JobResult(
        name=job.name,
        action=job.action,
        input=job.input,
        status="succeeded",
        result={"lines": 1},
        duration_ms=1.5,
        attempts=1,
    )


def record_all(journal: Journal, jobs: list[Job]) -> None:
    """What a run does with each job: ask for a reusable result, then record one."""
    for each in jobs:
        assert journal.reusable(each) is None
        journal.record(succeeded(each))


def test_each_recorded_line_is_in_the_file_at_once_whatever_the_fsync_interval(
    tmp_path: Path,
) -> None:
    jobs = count_jobs(tmp_path, "a.txt", "b.txt")
    report = tmp_path / "out.json"
    journal = Journal(report, fsync_interval=3600.0)
    journal.open(resume=False)
    try:
        for each in jobs:
            journal.reusable(each)
            journal.record(succeeded(each))
            last = journal_path(report).read_text(encoding="utf-8").splitlines()[-1]
            assert json.loads(last)["job"] == succeeded(each).to_dict()
    finally:
        journal.close()
    assert journal.path == journal_path(report) == tmp_path / "out.json.journal"
    assert len(journal_path(report).read_text(encoding="utf-8").splitlines()) == 2


def test_journaled_holds_the_run_lock_until_it_closes(tmp_path: Path) -> None:
    (only,) = count_jobs(tmp_path, "a.txt")
    report = tmp_path / "out.json"
    with journaled(report, resume=False) as (journal, warnings):
        assert warnings == []
        record_all(journal, [only])
        with (
            pytest.raises(OutputError, match="another asyncbatch run is writing this report"),
            journaled(report, resume=False),
        ):
            pass
        assert journal_lines(report) == 1, "the refused run truncated nothing"
    with journaled(report, resume=True) as (journal, warnings):
        assert warnings == []
        assert journal.reusable(only) is not None


def test_a_resumed_journal_reuses_unchanged_successes_only(tmp_path: Path) -> None:
    a, b = count_jobs(tmp_path, "a.txt", "b.txt")
    report = tmp_path / "out.json"
    with journaled(report, resume=False) as (journal, _):
        record_all(journal, [a, b])
    (tmp_path / "b.txt").write_text("b, now longer\n", encoding="utf-8")
    with journaled(report, resume=True) as (journal, warnings):
        assert warnings == []
        reused = journal.reusable(a)
        assert reused is not None
        assert reused.to_dict() == {**succeeded(a).to_dict(), "reused": True}
        assert journal.reusable(b) is None


def test_a_resumed_journal_warns_of_a_torn_last_line(tmp_path: Path) -> None:
    a, b = count_jobs(tmp_path, "a.txt", "b.txt")
    report = tmp_path / "out.json"
    with journaled(report, resume=False) as (journal, _):
        record_all(journal, [a, b])
    text = journal_path(report).read_text(encoding="utf-8")
    journal_path(report).write_text(text[:-20], encoding="utf-8")
    with journaled(report, resume=True) as (journal, warnings):
        assert warnings == [f"{journal_path(report)}: torn last line ignored"]
        assert journal.reusable(a) is not None
        assert journal.reusable(b) is None


def test_under_a_root_an_input_outside_it_is_never_fingerprinted_nor_reused(
    tmp_path: Path,
) -> None:
    inside = tmp_path / "root"
    inside.mkdir()
    (tmp_path / "outside.txt").write_text("secret\n", encoding="utf-8")
    (inside / "link.txt").symlink_to(tmp_path / "outside.txt")
    mine, link = count_jobs(inside, "mine.txt", "link.txt")
    root = str(inside.resolve())
    report = inside / "out.json"
    with journaled(report, resume=False, root=root) as (journal, _):
        record_all(journal, [mine, link])
    entries, _ = read_journal(report)
    fingerprints = {entry["job"]["name"]: entry["fingerprint"] for entry in entries}
    assert fingerprints["link"] is None
    assert isinstance(fingerprints["mine"], str)
    with journaled(report, resume=True, root=root) as (journal, _):
        assert journal.reusable(mine) is not None
        assert journal.reusable(link) is None
    with journaled(report, resume=False) as (journal, _):
        record_all(journal, [mine, link])
    with journaled(report, resume=True) as (journal, _):
        assert journal.reusable(link) is not None, "without a root, the link is followed"
