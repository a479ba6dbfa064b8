"""The journal under faults: a disk that fills up while it is written, lines that wait
for their fsync, a journal that cannot be read back, and params whose size explodes
when written out.

A full disk is a real one: a tmpfs of a few KiB mounted for the test (skipped where
this machine does not allow mounting one). The fsync is observed through the sync
function the journal takes as a parameter (``Journal(sync=...)``), which the test
wraps around ``os.fsync`` to note when, and on which file, it is called.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import add_module, run_module, summary, write_json
from test_memory import peak_rss

from asyncbatch import load_config
from asyncbatch.config import Job
from asyncbatch.errors import OutputError
from asyncbatch.model import JobResult
from asyncbatch.output._fingerprints import Fingerprints, fingerprint
from asyncbatch.output.journal import Journal, journal_path, journaled

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and mounts")

IS_ROOT = os.geteuid() == 0
SUBPROCESS = 60
"""Generous deadline for one run of the command (s)."""


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``small_disk(kib)``: a folder on a tmpfs of ``kib`` KiB, unmounted after the
    test; the test is skipped where mounting one is not allowed (no root, no
    ``mount``, a container without the capability)."""
    mounted: list[Path] = []

    def mount(kib: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0777", "tmpfs", str(where)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot mount a tmpfs here: {exc}")
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)


def succeeded(name: str, lines: int = 1) -> JobResult:
    return JobResult(
        name=name,
        action="count_lines",
        input=f"{name}.txt",
        status="succeeded",
        result={"lines": lines},
        duration_ms=1.5,
        attempts=1,
    )


def count_jobs(folder: Path, *names: str) -> list[Job]:
    """Loaded ``count_lines`` jobs named ``names``, over ``NAME.txt`` files."""
    for name in names:
        (folder / f"{name}.txt").write_text(f"{name}\n", encoding="utf-8")
    jobs = [{"name": n, "action": "count_lines", "input": f"{n}.txt"} for n in names]
    return load_config(write_json(folder / "batch.json", {"jobs": jobs})).jobs


def journal_of(folder: Path, *names: str) -> tuple[Path, list[Job]]:
    """A complete journal of the successes of ``names`` (one line each, in order)."""
    jobs = count_jobs(folder, *names)
    report = folder / "out.json"
    with journaled(report, resume=False) as (journal, _):
        for each in jobs:
            assert journal.reusable(each) is None
            journal.record(succeeded(each.name))
    return report, jobs


def journal_entries(path: Path) -> list[dict[str, Any]]:
    """Every line of the journal, each of which must be complete and parse."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the journal ends with a complete line"
    return [json.loads(line) for line in data.splitlines()]


# --- a full disk while the journal is written -------------------------------------------


def test_a_full_disk_stops_the_journal_with_one_warning_and_keeps_every_line_before_it(
    small_disk: Callable[[int], Path],
) -> None:
    disk = small_disk(64)
    warnings: list[str] = []
    journal = Journal(disk / "out.json", warn=warnings.append)
    journal.open(resume=False)
    for number in range(1000):  # ~240 bytes a line: the disk fills up well before
        journal.record(succeeded(f"j{number:04}"))
    journal.close()

    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"cannot write the journal {journal.path}: ")
    assert "No space left on device" in warnings[0]
    names = [entry["job"]["name"] for entry in journal_entries(journal.path)]
    assert 0 < len(names) < 1000
    assert names == [f"j{number:04}" for number in range(len(names))], "no line lost or torn"


FREE = '''\
import os


async def free(path, params):
    """Delete the input (ballast on a full disk)."""
    os.unlink(path)
    return {"freed": True}
'''


@pytest.mark.slow
def test_a_disk_that_fills_up_during_a_run_is_a_warning_the_jobs_go_on_and_the_report_is_written(
    tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    """The journal fills the disk with a few hundred jobs to go; the last job (after
    all others) deletes a ballast file, so the report finds room at the end."""
    disk = small_disk(256)
    ballast = disk / "ballast"
    ballast.write_bytes(b"\0" * (192 << 10))
    (tmp_path / "in.txt").write_text("some text\n", encoding="utf-8")
    module = add_module(tmp_path, FREE, prefix="ballast")
    names = [f"job{number:03}" for number in range(400)]
    jobs: list[dict[str, Any]] = [
        {"name": name, "action": "file_size", "input": "in.txt"} for name in names
    ]
    jobs.append({"name": "free", "action": f"{module}:free", "input": str(ballast)})
    jobs[-1]["depends_on"] = names
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    out = disk / "out.json"

    completed = run_module(["run", str(config), "-o", str(out)], cwd=tmp_path, timeout=SUBPROCESS)
    assert completed.returncode == 0, completed.stderr
    assert summary(completed.stdout)["succeeded"] == 401
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["summary"]["succeeded"] == 401
    recorded = [entry["job"]["name"] for entry in journal_entries(journal_path(out))]
    assert 0 < len(recorded) < 400, "the journal stopped where the disk filled up"
    assert len(set(recorded)) == len(recorded), "each job once"
    assert set(recorded) <= set(names), "jobs end in any order; only whole lines are kept"
    warnings = [line for line in completed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, completed.stderr
    assert f"cannot write the journal {journal_path(out)}: No space left on device" in warnings[0]


FILL = '''\
import os


async def fill(path, params):
    """Fill the disk that holds ``path``'s folder to the last byte."""
    fd = os.open(os.path.join(os.path.dirname(path), "ballast"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\\0" * 4096)
    except OSError:
        return {"filled": True}
    finally:
        os.close(fd)
'''


@pytest.mark.slow
def test_a_disk_full_when_the_report_is_written_is_exit_2_with_the_summary_and_no_stray_file(
    tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    disk = small_disk(128)
    trigger = disk / "trigger.txt"
    trigger.write_text("x\n", encoding="utf-8")
    (tmp_path / "in.txt").write_text("some text\n", encoding="utf-8")
    module = add_module(tmp_path, FILL, prefix="fill")
    jobs: list[dict[str, Any]] = [
        {"name": f"job{number}", "action": "count_lines", "input": "in.txt"} for number in range(5)
    ]
    names = [job["name"] for job in jobs]
    jobs.append(
        {"name": "fill", "action": f"{module}:fill", "input": str(trigger), "depends_on": names}
    )
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    out = disk / "out.json"

    completed = run_module(["run", str(config), "-o", str(out)], cwd=tmp_path, timeout=SUBPROCESS)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert summary(completed.stdout)["succeeded"] == 6, (completed.stdout, completed.stderr)
    assert f"cannot write report {out}: No space left on device" in completed.stderr
    assert not out.exists()
    assert sorted(p.name for p in disk.iterdir()) == sorted(
        ["ballast", "trigger.txt", "out.json.journal", "out.json.lock"]
    ), "no temporary file left behind"
    recorded = [entry["job"]["name"] for entry in journal_entries(journal_path(out))]
    assert set(names) <= set(recorded), "every job that ended before the disk filled is kept"


# --- the fsync of each line ------------------------------------------------------------


class Syncs:
    """A sync function for the journal: ``os.fsync`` that notes when it ran and on
    which file (device, inode)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, tuple[int, int]]] = []

    def __call__(self, fd: int) -> None:
        info = os.fstat(fd)
        os.fsync(fd)
        self.calls.append((time.monotonic(), (info.st_dev, info.st_ino)))

    def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.005)


def identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


def test_a_line_is_fsynced_within_a_second_even_when_no_other_line_follows(
    tmp_path: Path,
) -> None:
    syncs = Syncs()
    journal = Journal(tmp_path / "out.json", sync=syncs)
    journal.open(resume=False)
    try:
        written = time.monotonic()
        journal.record(succeeded("a"))
        syncs.wait(1, timeout=3.0)
        assert syncs.calls, "the line was never synced while the journal stayed open"
        when, synced = syncs.calls[0]
        assert when - written < 1.0
        assert synced == identity(journal.path)
        syncs.wait(2, timeout=0.2)
        assert len(syncs.calls) == 1, "one line, one sync: an idle journal does not sync"
    finally:
        journal.close()
    assert len(syncs.calls) == 2, "closing syncs once more"


def test_the_background_sync_stops_with_the_journal(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    syncs = Syncs()
    journal = Journal(tmp_path / "out.json", sync=syncs)
    journal.open(resume=False)
    for number in range(100):
        journal.record(succeeded(f"j{number}"))
    journal.close()
    assert set(threading.enumerate()) <= before, "no thread outlives the journal"
    after_close = len(syncs.calls)
    assert after_close >= 1
    time.sleep(0.05)
    assert len(syncs.calls) == after_close
    assert len(journal_entries(journal.path)) == 100


# --- a journal that cannot be read on --resume ---------------------------------------------

FP = "0" * 64


def corrupt(entry: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> bytes:
    change(entry)
    return json.dumps(entry, separators=(",", ":")).encode()


def _set(path: str, value: object) -> Callable[[dict[str, Any]], object]:
    """A change that sets ``entry[a][b]`` for ``path`` "a.b" (or ``entry[a]``)."""

    def change(entry: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = entry
        for key in parents:
            target = target[key]
        target[last] = value

    return change


LINE_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    # what becomes of the line of job c, which keeps its true fingerprint
    "not-json": lambda line: b"this is not JSON",
    "a-json-list": lambda line: b"[1, 2, 3]",
    "a-json-string": lambda line: b'"c"',
    "a-json-number": lambda line: b"42",
    "json-null": lambda line: b"null",
    "job-not-an-object": lambda line: corrupt(json.loads(line), _set("job", ["c"])),
    "name-a-list": lambda line: corrupt(json.loads(line), _set("job.name", ["c"])),
    "name-a-number": lambda line: corrupt(json.loads(line), _set("job.name", 3)),
    "fingerprint-a-number": lambda line: corrupt(json.loads(line), _set("fingerprint", 7)),
    "fingerprint-not-hex": lambda line: corrupt(json.loads(line), _set("fingerprint", "zz" * 32)),
    "status-unknown": lambda line: corrupt(json.loads(line), _set("job.status", "great")),
    "result-a-string": lambda line: corrupt(json.loads(line), _set("job.result", "oops")),
    "result-a-list": lambda line: corrupt(json.loads(line), _set("job.result", [1])),
    "result-with-nan": lambda line: line.replace(b'"lines":1', b'"lines":NaN'),
    "result-with-infinity": lambda line: line.replace(b'"lines":1', b'"lines":1e999'),
    "attempts-a-string": lambda line: corrupt(json.loads(line), _set("job.attempts", "1")),
    "attempts-a-bool": lambda line: corrupt(json.loads(line), _set("job.attempts", True)),
    "attempts-zero": lambda line: corrupt(json.loads(line), _set("job.attempts", 0)),
    "duration-a-string": lambda line: corrupt(json.loads(line), _set("job.duration_ms", "fast")),
    "duration-negative": lambda line: corrupt(json.loads(line), _set("job.duration_ms", -1.0)),
    "invalid-utf-8": lambda line: line.replace(b'"result":{', b'"result":{"note":"\xff\xfe",'),
    "nul-in-a-string": lambda line: line.replace(b'"c.txt"', b'"c\x00.txt"'),
    "nul-bytes": lambda line: b"\0" * len(line),
    "deeply-nested": lambda line: b"[" * 100_000 + b"]" * 100_000,
    "huge-line": lambda line: line.replace(
        b'"lines":1', b'"lines":1,"pad":"' + b"x" * (17 << 20) + b'"'
    ),
}


@pytest.mark.parametrize("damage", list(LINE_DAMAGE))
def test_a_damaged_journal_line_is_a_warning_and_only_the_lines_that_can_be_trusted_are_reused(
    tmp_path: Path, damage: str
) -> None:
    report, (a, b, c, d) = journal_of(tmp_path, "a", "b", "c", "d")
    path = journal_path(report)
    lines = path.read_bytes().splitlines()
    lines[2] = LINE_DAMAGE[damage](lines[2])
    path.write_bytes(b"\n".join(lines) + b"\n")

    with journaled(report, resume=True) as (journal, warnings):
        assert warnings == [f"{path}: unreadable line 3 ignored"]
        assert journal.reusable(a) is not None
        assert journal.reusable(b) is not None
        assert journal.reusable(c) is None
        assert journal.reusable(d) is not None


def test_a_recorded_success_is_reused_exactly_as_it_was_recorded(tmp_path: Path) -> None:
    """What the damaged lines are measured against: an intact line is reused whole."""
    report, (a, *_) = journal_of(tmp_path, "a", "b")
    with journaled(report, resume=True) as (journal, warnings):
        assert warnings == []
        reused = journal.reusable(a)
    assert reused is not None
    assert reused.to_dict() == {**succeeded("a").to_dict(), "reused": True}


def test_many_damaged_lines_make_a_few_warnings_not_one_each(tmp_path: Path) -> None:
    report, (a, b) = journal_of(tmp_path, "a", "b")
    path = journal_path(report)
    good = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([good[0], *[b"garbage"] * 5000, good[1]]) + b"\n")
    with journaled(report, resume=True) as (journal, warnings):
        assert len(warnings) <= 11
        assert warnings[0] == f"{path}: unreadable line 2 ignored"
        assert warnings[-1] == f"{path}: 4990 more unreadable lines ignored"
        assert journal.reusable(a) is not None
        assert journal.reusable(b) is not None


def test_a_journal_that_is_a_directory_is_refused_before_any_job_runs(tmp_path: Path) -> None:
    report = tmp_path / "out.json"
    journal_path(report).mkdir()
    for resume in (False, True):
        with (
            pytest.raises(OutputError, match="Is a directory"),
            journaled(report, resume=resume),
        ):
            pytest.fail("the journal opened")
    assert journal_path(report).is_dir()


@pytest.mark.slow
@pytest.mark.parametrize("resume", [[], ["--resume"]], ids=["fresh", "resume"])
def test_a_fifo_at_the_journal_name_is_refused_at_once_not_waited_on(
    tmp_path: Path, resume: list[str]
) -> None:
    (tmp_path / "a.txt").write_text("a\n", encoding="utf-8")
    config = write_json(
        tmp_path / "batch.json",
        {"jobs": [{"name": "a", "action": "count_lines", "input": "a.txt"}]},
    )
    out = tmp_path / "out.json"
    os.mkfifo(journal_path(out))
    completed = run_module(
        ["run", str(config), "-o", str(out), *resume], cwd=tmp_path, timeout=SUBPROCESS
    )
    assert completed.returncode == 2
    assert f"cannot write {journal_path(out)}: is not a regular file" in completed.stderr
    assert not out.exists()


@pytest.mark.skipif(IS_ROOT, reason="root can read any file, so none is unreadable")
def test_a_journal_that_cannot_be_read_is_a_warning_and_nothing_in_it_is_reused(
    tmp_path: Path,
) -> None:
    report, (a, _) = journal_of(tmp_path, "a", "b")
    path = journal_path(report)
    path.chmod(0o200)  # can be written, not read
    try:
        context = journaled(report, resume=True)
        journal, warnings = context.__enter__()
        assert warnings == [f"{path}: cannot be read (Permission denied); nothing is reused"]
        assert journal.reusable(a) is None
        journal.record(succeeded("a"))
        with pytest.raises(PermissionError, match="cannot be read to be compacted"):
            context.__exit__(None, None, None)  # the session warns of it
    finally:
        path.chmod(0o600)
    lines = [json.loads(line) for line in path.read_bytes().splitlines() if line]
    assert lines[-1]["job"]["name"] == "a", "the run's lines were appended"


@pytest.mark.skipif(IS_ROOT, reason="root can read and write any file")
def test_a_journal_that_can_be_neither_read_nor_written_is_refused_before_any_job_runs(
    tmp_path: Path,
) -> None:
    report, _ = journal_of(tmp_path, "a")
    journal_path(report).chmod(0)
    try:
        with (
            pytest.raises(OutputError, match="Permission denied"),
            journaled(report, resume=True),
        ):
            pytest.fail("the journal opened")
    finally:
        journal_path(report).chmod(0o600)


# --- fingerprints of params that aliases make huge -------------------------------------


def job_with(folder: Path, name: str, params: dict[str, Any]) -> Job:
    path = folder / "in.txt"
    if not path.exists():
        path.write_text("x\n", encoding="utf-8")
    return Job(
        name=name,
        action="echo",
        input="in.txt",
        path=path,
        params=params,
        spec=None,
        group=name,
        raw_params=params,
    )


def test_params_that_alias_one_big_value_are_fingerprinted_in_bounded_time_and_memory(
    tmp_path: Path,
) -> None:
    """Ten jobs whose params all hold the same list of 20,000 references to one 4 KiB
    string (what YAML aliases build): written out, 80 MB per job."""
    text = "x" * 4096
    shared = {"rows": [text] * 20_000, "nested": [[text] * 100] * 100}
    jobs = [job_with(tmp_path, f"j{number}", {"data": shared}) for number in range(10)]
    report = tmp_path / "out.json"
    tracemalloc.start()
    started = time.monotonic()
    try:
        with journaled(report, resume=False) as (journal, _):
            for each in jobs:
                journal.reusable(each)
                journal.record(succeeded(each.name))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB"
    marks = {entry["fingerprint"] for entry in journal_entries(journal_path(report))}
    assert len(marks) == 10, "each job's name is in its fingerprint"


PARAMS_PAIRS: dict[str, tuple[Any, Any, bool]] = {
    # two params values and whether their fingerprints must be equal
    "same-value-other-objects": ({"a": [1, 2.5, "x" * 5000]}, {"a": [1, 2.5, "x" * 5000]}, True),
    "key-order": ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
    "shared-or-copied": (
        {"a": [["y" * 300] * 50] * 3},
        {"a": [["y" * 300] * 50 for _ in "abc"]},
        True,
    ),
    "one-char-deep-inside": (
        {"a": [["y" * 300] * 50] * 3},
        {"a": [["y" * 300] * 50] * 2 + [["y" * 300] * 49 + ["z" * 300]]},
        False,
    ),
    "int-or-float": ({"a": 1}, {"a": 1.0}, False),
    "int-or-bool": ({"a": 1}, {"a": True}, False),
    "int-or-string": ({"a": 1}, {"a": "1"}, False),
    "none-or-missing": ({"a": None}, {}, False),
    "list-or-nested": ({"a": [1, 2]}, {"a": [[1, 2]]}, False),
    "string-boundaries": ({"a": ["ab", "c"]}, {"a": ["a", "bc"]}, False),
    "key-or-value": ({"a": "b"}, {"b": "a"}, False),
    "int-keys": ({"a": {1: "x"}}, {"a": {"1": "x"}}, False),
    "sets-in-any-order": ({"a": {"p", "q", "r"}}, {"a": {"r", "q", "p"}}, True),
    "big-string-edited": ({"a": "w" * 10_000}, {"a": "w" * 9_999 + "v"}, False),
}


@pytest.mark.parametrize("pair", list(PARAMS_PAIRS))
def test_equal_params_have_equal_fingerprints_and_different_params_different_ones(
    tmp_path: Path, pair: str
) -> None:
    first, second, equal = PARAMS_PAIRS[pair]
    one = fingerprint(job_with(tmp_path, "j", first))
    other = fingerprint(job_with(tmp_path, "j", second))
    assert one is not None
    assert other is not None
    assert (one == other) is equal


YAML_JOB = (
    "  - {{name: j{number}, action: '{module}:echo', input: in.txt, params: {{data: {data}}}}}\n"
)


@pytest.mark.slow
def test_a_yaml_config_whose_params_alias_a_big_value_runs_with_a_journal_in_bounded_memory(
    tmp_path: Path,
) -> None:
    """Twenty jobs alias one anchored list of 20,000 aliases of a 4 KiB string: within
    the loader's limit of values, 80 MB per job once written out."""
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    module = add_module(tmp_path, "async def echo(path, params):\n    return {}\n", "echo")
    anchor = "&big [&text " + json.dumps("x" * 4096) + ", " + ", ".join(["*text"] * 19_999) + "]"
    text = "jobs:\n" + "".join(
        YAML_JOB.format(number=number, module=module, data=anchor if number == 0 else "*big")
        for number in range(20)
    )
    config = tmp_path / "batch.yaml"
    config.write_text(text, encoding="utf-8")
    out = tmp_path / "out.json"

    started = time.monotonic()
    peak, completed = peak_rss(["run", str(config), "-o", str(out), "-q"], tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert summary(completed.stdout)["succeeded"] == 20
    assert time.monotonic() - started < 30
    assert peak < 100 << 20, f"peak RSS {peak >> 20} MiB"


def test_closing_never_waits_on_the_background_sync_whenever_it_comes(tmp_path: Path) -> None:
    """``close`` lands just as the thread's wait for the interval ends: the thread,
    waiting for the GIL that this one holds (a long switch interval), sees the stop
    only after it. Each close must still return."""
    failures: list[BaseException] = []

    def spin(seconds: float) -> None:  # holds the GIL throughout
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            pass

    def churn() -> None:
        try:
            for number in range(20):
                journal = Journal(tmp_path / "out.json", fsync_interval=0.005)
                journal.open(resume=False)
                journal.record(succeeded(f"j{number}"))
                time.sleep(0.001)  # the thread wakes up and waits out the interval
                spin(0.02)  # the interval ends meanwhile
                journal.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            failures.append(exc)

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        worker = threading.Thread(target=churn, daemon=True)
        worker.start()
        worker.join(timeout=30)
    finally:
        sys.setswitchinterval(switching)
    assert not worker.is_alive(), "a close waited forever on the sync thread"
    assert failures == []


def _typed(value: Any) -> Any:
    """``value`` with the type of every scalar spelled out (1, 1.0 and True differ)."""
    if isinstance(value, dict):
        return ("dict", sorted((_typed(k), _typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", [_typed(item) for item in value])
    return (type(value).__name__, repr(value))


PARAMS = st.dictionaries(
    st.text(max_size=5),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=300)
        | st.binary(max_size=100),
        lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=300,
    ),
    max_size=5,
)


@pytest.mark.slow
def test_fingerprints_of_params_are_equal_exactly_when_the_params_are(tmp_path: Path) -> None:
    """Whatever objects hold them (copies, the run's memo of big parts) and in
    whatever order their keys come, equal params have equal fingerprints; params
    that differ in any value or type have different ones."""
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    seen: dict[str, str] = {}

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(params=PARAMS)
    def check(params: dict[str, Any]) -> None:
        run = Fingerprints()
        first = run.of(job_with(tmp_path, "j", params))
        again = run.of(job_with(tmp_path, "j", params))
        copied = Fingerprints().of(job_with(tmp_path, "j", copy.deepcopy(params)))
        reordered = run.of(job_with(tmp_path, "j", dict(reversed(list(params.items())))))
        assert first is not None
        assert first == again == copied == reordered
        typed = repr(_typed(params))
        assert seen.setdefault(first, typed) == typed, "two different params, one fingerprint"

    check()


# --- the lock's descriptor, closed by someone else -------------------------------------


def test_a_lock_closed_by_someone_else_is_released_without_closing_what_took_its_number(
    tmp_path: Path,
) -> None:
    from asyncbatch.output._lock import RunLock

    lock = RunLock(tmp_path / "out.json")
    lock.acquire()
    (number,) = [fd for fd in range(3, 256) if _names(fd).endswith("out.json.lock")]
    os.close(number)  # a hostile action
    other = tmp_path / "other.txt"
    fd = os.open(other, os.O_WRONLY | os.O_CREAT)
    assert fd == number, "the lowest free number is reused"
    try:
        lock.release()
        os.write(fd, b"still open\n")  # raises EBADF if release closed it
    finally:
        os.close(fd)
    assert other.read_bytes() == b"still open\n"
    lock.release()  # a second release is a no-op


def _names(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
