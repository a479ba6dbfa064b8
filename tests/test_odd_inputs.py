"""Odd inputs: empty files, files that vanish or change while read, unreadable
files, link loops, dangling links, devices, sockets, FIFOs, names with newlines or
undecodable bytes, folders matched by a glob. Each gives its job a result or an
error of the SPEC's vocabulary, never a hang, and the other jobs run.

What a built-in reads through is checked on every route the local executor takes
(``run_batch`` with a :class:`LocalExecutor` whose thresholds put the files on it):
small files many to a thread hop, big files streamed with aiofiles, big counts in a
worker process. What the command prints (names, escapes, the dry run) is checked
through the real command, in process."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from support import add_module, file_statistics, invoke, load, run
from typer.testing import Result

from asyncbatch import load_config
from asyncbatch.engine import LocalExecutor
from asyncbatch.errors import ERROR_TYPES, JobError, describe_error
from asyncbatch.files.scan import scan_file, scan_small_file
from asyncbatch.files.stream import scan_in_process, stream_file
from asyncbatch.kernel import Kernel, Tuning
from asyncbatch.registry import ActionRegistry, ActionSpec

pytestmark = pytest.mark.anyio

BUILTINS = ["checksum", "count_lines", "count_words", "file_size", "search_pattern"]
PARAMS: dict[str, dict[str, Any]] = {"search_pattern": {"pattern": "o"}}
CONTROL = {"name": "control", "action": "count_lines", "input": "control.txt"}
"""A job that always succeeds: the others must not stop it."""


class Feeds:
    """A scanner that reports how it was fed: in which process, in which pieces.
    (Module level: a worker process imports it by reference.)"""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self._pieces: list[int] = []

    def update(self, data: bytes | bytearray) -> None:
        self._pieces.append(len(data))

    def result(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "pieces": self._pieces}


async def _feeds(path: Path, params: Any) -> dict[str, Any]:
    raise AssertionError("the local executor runs the kernel, not this")


async def test_each_route_feeds_a_kernel_as_its_thresholds_say(
    tmp_path: Path, route: str, executor: LocalExecutor
) -> None:
    """The routes above are the routes they are named after: a batch reads a file
    whole in this process, streaming reads 4 KiB chunks in this process, a worker
    process reads 4 KiB chunks in another process. A kernel that may never return
    (``isolated``, as search_pattern's) is read in a worker process on every route."""
    (tmp_path / "input.bin").write_bytes(b"x" * 10_000)
    registry = ActionRegistry(
        [
            ActionSpec("feeds", _feeds, origin="tests", kernel=Kernel(Feeds)),
            ActionSpec("isolated", _feeds, origin="tests", kernel=Kernel(Feeds, isolated=True)),
        ]
    )
    jobs = [{"name": name, "action": name, "input": "input.bin"} for name in ("feeds", "isolated")]
    report = await run(load(tmp_path, registry, jobs), executor=executor)
    seen = {}
    for result in report.jobs:
        assert result.status == "succeeded", result.error
        assert result.result is not None
        seen[result.name] = (result.result["pid"] == os.getpid(), result.result["pieces"])
    chunks = [10_000] if route == "batch" else [4096, 4096, 1808]
    assert seen == {
        "feeds": {
            "batch": (True, [10_000]),
            "streamed": (True, [4096, 4096, 1808]),
            "worker": (False, [4096, 4096, 1808]),
        }[route],
        "isolated": (False, chunks),
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "control.txt").write_text("a\nb\n", encoding="utf-8")
    return tmp_path


def on_route(route: str | None) -> list[str]:
    """The built-ins run on ``route`` (all of them for the command's default route):
    search_pattern runs in a worker process on every route (a regex may never
    return), so it is run on the worker route only, not three times over."""
    if route in (None, "worker"):
        return BUILTINS
    return [action for action in BUILTINS if action != "search_pattern"]


def every_builtin(name: str, input_: str, route: str | None = None) -> list[dict[str, Any]]:
    """A job per built-in run on ``route``, named ``action:name``, reading ``input_``."""
    return [
        {
            "name": f"{action}:{name}",
            "action": action,
            "input": input_,
            "params": PARAMS.get(action, {}),
        }
        for action in on_route(route)
    ]


def check_report(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """What every run's report must be: each job succeeded or failed with an error
    of the SPEC's vocabulary, the control job succeeded, every string is valid
    UTF-8 (no lone surrogate). The jobs by name."""
    json.dumps(jobs, ensure_ascii=False).encode("utf-8")
    jobs_by_name = {job["name"]: job for job in jobs}
    for job in jobs_by_name.values():
        assert job["status"] in ("succeeded", "failed")
        assert (job["error"] is None) is (job["status"] == "succeeded")
        if job["error"] is not None:
            assert job["error"]["type"] in ERROR_TYPES
    assert jobs_by_name["control"]["status"] == "succeeded"
    return jobs_by_name


async def run_on(
    folder: Path, jobs: list[dict[str, Any]], executor: LocalExecutor
) -> dict[str, Any]:
    """Run the jobs (and the control job) with ``executor``; the report's jobs by
    name, checked as every run's must be."""
    config = folder / f"c-{uuid.uuid4().hex[:8]}.json"
    config.write_text(json.dumps({"jobs": [*jobs, CONTROL]}), encoding="utf-8")
    report = await run(load_config(config), executor=executor)
    return check_report([job.to_dict() for job in report.jobs])


def run_cli(folder: Path, jobs: list[dict[str, Any]], *args: str) -> tuple[Result, dict[str, Any]]:
    """Run the jobs (and the control job) through the command with a report; the
    result and the report's jobs by name, checked as every run's must be."""
    config = folder / f"c-{uuid.uuid4().hex[:8]}.json"
    config.write_text(json.dumps({"jobs": [*jobs, CONTROL]}), encoding="utf-8")
    report = folder / "out.json"
    result = invoke(["run", str(config), "-o", str(report), *args])
    assert result.exit_code in (0, 1), result.stderr
    return result, check_report(json.loads(report.read_text(encoding="utf-8"))["jobs"])


def errors(jobs: dict[str, Any], name: str) -> dict[str, tuple[str, str]]:
    """``{action: (error type, message)}`` for every built-in's job on ``name``."""
    found = {}
    for action in [action for action in BUILTINS if f"{action}:{name}" in jobs]:
        error = jobs[f"{action}:{name}"]["error"]
        found[action] = (error["type"], error["message"]) if error else ("", "")
    assert found, f"no job on {name}"
    return found


# --- empty and changing files ---------------------------------------------------------------

ZEROS = {
    "checksum": {"algorithm": "sha256", "digest": hashlib.sha256(b"").hexdigest()},
    "count_lines": {"lines": 0},
    "count_words": {"words": 0},
    "file_size": {"bytes": 0},
    "search_pattern": {"matches": 0, "matching_lines": 0},
}


async def test_an_empty_file_gives_each_builtin_its_zero(
    folder: Path, route: str, executor: LocalExecutor
) -> None:
    (folder / "empty.txt").touch()
    jobs = await run_on(folder, every_builtin("empty", "empty.txt", route), executor)
    assert {action: jobs[f"{action}:empty"]["result"] for action in on_route(route)} == {
        action: ZEROS[action] for action in on_route(route)
    }


async def test_an_empty_file_gives_each_kernel_its_zero_through_every_driver(
    folder: Path,
) -> None:
    """A run reads an empty file in a batch whatever the thresholds (it is never
    bigger than one): the other drivers must give the same zeros."""
    path = folder / "empty.txt"
    path.touch()
    tuning = Tuning(chunk_bytes=4096, small_file_bytes=0)
    for spec in file_statistics():
        assert spec.kernel is not None
        params = PARAMS.get(spec.name, {})
        expected = ZEROS[spec.name]
        with anyio.fail_after(30):
            scans = [
                scan_file(spec.kernel, str(path), params, tuning),
                scan_small_file(spec.kernel, str(path), params, tuning, None),
                await stream_file(spec.kernel, path, params, tuning),
                await scan_in_process(spec.kernel, path, params, tuning),
            ]
        for scanned in scans:
            assert isinstance(scanned, tuple), spec.name
            assert scanned[0] == expected, spec.name
            assert scanned[1].read_bytes == 0, spec.name


async def test_a_file_that_vanishes_after_loading_fails_its_jobs_and_the_others_run(
    folder: Path, route: str, executor: LocalExecutor
) -> None:
    """``*.txt`` expands when the config loads; a job that runs first deletes one
    of the matches before the jobs reading it start."""
    (folder / "gone.txt").write_text("x\n", encoding="utf-8")
    (folder / "kept.txt").write_text("y\n", encoding="utf-8")
    remover = add_module(
        folder,
        "import os\n\nasync def act(path, params):\n    os.remove(path)\n    return {}\n",
        prefix="odd",
    )
    jobs = [
        {"name": "remove", "action": f"{remover}:act", "input": "gone.txt"},
        *[{**job, "depends_on": ["remove"]} for job in every_builtin("glob", "[gk]*.txt", route)],
    ]
    report = await run_on(folder, jobs, executor)
    for action in on_route(route):
        assert report[f"{action}:glob[gone.txt]"]["error"] == {
            "type": "FileNotFoundError",
            "message": "gone.txt: no such file",
        }
        assert report[f"{action}:glob[kept.txt]"]["status"] == "succeeded"


async def test_files_that_shrink_and_grow_while_read_give_a_result_or_a_clear_error(
    folder: Path, route: str, executor: LocalExecutor
) -> None:
    """A thread truncates and refills the input as fast as it can while every
    built-in reads it (in 4 KiB chunks, or whole), many times over."""
    path = folder / "changing.txt"
    block = b"one two three\n" * 20_000  # ~280 KB
    path.write_bytes(block)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            with path.open("r+b") as handle:
                handle.truncate(len(block) // 7)
                handle.seek(0, os.SEEK_END)
                handle.write(block)

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    try:
        jobs = [
            {**job, "name": f"{job['name']}#{i}"}
            for i in range(6)
            for job in every_builtin("changing", "changing.txt", route)
        ]
        report = await run_on(folder, jobs, executor)
    finally:
        stop.set()
        churner.join()
    keys = {
        "checksum": {"algorithm", "digest"},
        "count_lines": {"lines"},
        "count_words": {"words"},
        "file_size": {"bytes"},
        "search_pattern": {"matches", "matching_lines"},
    }
    for name, job in report.items():
        if name != "control" and job["status"] == "succeeded":
            assert set(job["result"]) == keys[job["action"]]


# --- permissions (a real process: only the default route) ------------------------------------


def drop_root_read_override() -> None:
    """In the child, before exec: drop the capabilities that let root read any
    file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from the bounding set, so the
    program it runs, still root, meets permissions like anyone else."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for capability in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` as this user, or, as root, as a root that cannot override file
    permissions (PermissionError if even that cannot be arranged)."""
    preexec = drop_root_read_override if os.geteuid() == 0 else None
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=preexec,  # the child only calls prctl before exec
        )
    except subprocess.SubprocessError as exc:  # preexec_fn failed: no CAP_SETPCAP
        raise PermissionError(f"cannot drop the power to read any file: {exc}") from None


@pytest.fixture
def permissions_apply(folder: Path) -> None:
    """Skip the test unless a child asyncbatch can be refused a read (root can
    always read, unless it can drop that power)."""
    probe = folder / "probe.txt"
    probe.touch(mode=0)
    try:
        completed = run_unprivileged([sys.executable, "-c", f"open({str(probe)!r})"], folder)
    except PermissionError as exc:
        pytest.skip(str(exc))
    finally:
        probe.unlink()
    if completed.returncode == 0:
        pytest.skip("this process reads any file whatever its permissions")


def asyncbatch_unprivileged(folder: Path, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the jobs and the control job in a child that meets permissions; the
    report's jobs by name."""
    config = folder / "c.json"
    config.write_text(json.dumps({"jobs": [*jobs, CONTROL]}), encoding="utf-8")
    report = folder / "out.json"
    command = [sys.executable, "-m", "asyncbatch", "run", str(config), "-o", str(report)]
    completed = run_unprivileged(command, folder)
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    return check_report(json.loads(report.read_text(encoding="utf-8"))["jobs"])


@pytest.mark.slow
@pytest.mark.usefixtures("permissions_apply")
def test_a_file_without_read_permission_fails_with_permission_error_but_its_size_is_known(
    folder: Path,
) -> None:
    secret = folder / "secret.txt"
    secret.write_text("one two\n", encoding="utf-8")
    secret.chmod(0)
    report = asyncbatch_unprivileged(folder, every_builtin("secret", "secret.txt"))
    for action in ["checksum", "count_lines", "count_words", "search_pattern"]:
        assert report[f"{action}:secret"]["error"] == {
            "type": "PermissionError",
            "message": "secret.txt: permission denied",
        }
    assert report["file_size:secret"]["result"] == {"bytes": 8}  # stat needs no read


@pytest.mark.slow
@pytest.mark.usefixtures("permissions_apply")
def test_a_folder_that_cannot_be_listed_leaves_its_glob_matching_nothing(folder: Path) -> None:
    locked = folder / "locked"
    locked.mkdir()
    (locked / "a.txt").write_text("x\n", encoding="utf-8")
    locked.chmod(0)
    try:
        job = {"name": "g", "action": "count_lines", "input": "locked/*.txt"}
        report = asyncbatch_unprivileged(folder, [job])
    finally:
        locked.chmod(0o700)
    assert report["g"]["error"] == {
        "type": "FileNotFoundError",
        "message": "locked/*.txt: no file matches",
    }


# --- links ----------------------------------------------------------------------------------


async def test_a_symlink_loop_is_a_file_not_found_error_naming_the_loop(
    folder: Path, route: str, executor: LocalExecutor
) -> None:
    (folder / "loop-a").symlink_to("loop-b")
    (folder / "loop-b").symlink_to("loop-a")
    (folder / "self").symlink_to("self")
    jobs = [*every_builtin("loop", "loop-a", route), *every_builtin("self", "self", route)]
    report = await run_on(folder, jobs, executor)
    for name in ("loop-a", "self"):
        short = "loop" if name == "loop-a" else "self"
        assert set(errors(report, short).values()) == {
            ("FileNotFoundError", f"{name}: too many levels of symbolic links")
        }


def test_the_dry_run_names_a_symlink_loop_as_a_run_would(folder: Path) -> None:
    (folder / "loop-a").symlink_to("loop-b")
    (folder / "loop-b").symlink_to("loop-a")
    config = folder / "c.json"
    config.write_text(
        json.dumps({"jobs": [{"name": "l", "action": "count_lines", "input": "loop-a"}]}),
        encoding="utf-8",
    )
    result = invoke(["run", str(config), "--dry-run"])
    assert result.exit_code == 0
    (job,) = json.loads(result.stdout)["jobs"]
    assert job["warnings"] == ["FileNotFoundError: loop-a: too many levels of symbolic links"]


async def test_a_dangling_symlink_is_a_file_not_found_error(
    folder: Path, route: str, executor: LocalExecutor
) -> None:
    (folder / "dangling").symlink_to("nowhere")
    report = await run_on(folder, every_builtin("dangling", "dangling", route), executor)
    assert set(errors(report, "dangling").values()) == {
        ("FileNotFoundError", "dangling: no such file")
    }


async def test_a_path_through_a_file_is_a_file_not_found_error(
    folder: Path, route: str, executor: LocalExecutor
) -> None:
    report = await run_on(folder, every_builtin("through", "control.txt/below", route), executor)
    assert set(errors(report, "through").values()) == {
        ("FileNotFoundError", "control.txt/below: not a directory")
    }


def test_a_glob_passes_over_loops_dangling_links_and_folders(folder: Path) -> None:
    (folder / "in").mkdir()
    (folder / "in" / "ok.txt").write_text("x\n", encoding="utf-8")
    (folder / "in" / "loop.txt").symlink_to("loop.txt")
    (folder / "in" / "dangling.txt").symlink_to("missing.txt")
    (folder / "in" / "folder.txt").mkdir()
    (folder / "in" / "link.txt").symlink_to("ok.txt")
    _, report = run_cli(folder, [{"name": "g", "action": "count_lines", "input": "in/*.txt"}])
    assert sorted(report) == ["control", "g[in/link.txt]", "g[in/ok.txt]"]


# --- things that are not regular files --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        pytest.param(
            device,
            "character device",
            marks=pytest.mark.skipif(not os.path.exists(device), reason=f"no {device} here"),
        )
        for device in ("/dev/null", "/dev/zero")
    ],
)
async def test_a_device_is_not_a_regular_file_and_never_read(
    folder: Path, route: str, executor: LocalExecutor, path: str, kind: str
) -> None:
    report = await run_on(folder, every_builtin("device", path, route), executor)
    assert set(errors(report, "device").values()) == {
        ("NotARegularFile", f"{path}: is a {kind}, not a regular file")
    }


@pytest.fixture
def special_files(folder: Path) -> Iterator[Path]:
    """A FIFO with no writer (reading it would block for ever) and a bound socket."""
    os.mkfifo(folder / "fifo")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(folder / "sock"))
    try:
        yield folder
    finally:
        server.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and Unix sockets")
@pytest.mark.parametrize(("name", "kind"), [("fifo", "FIFO"), ("sock", "socket")])
async def test_fifos_and_sockets_are_not_regular_files_and_never_hang(
    special_files: Path, route: str, executor: LocalExecutor, name: str, kind: str
) -> None:
    report = await run_on(special_files, every_builtin(name, name, route), executor)
    assert set(errors(report, name).values()) == {
        ("NotARegularFile", f"{name}: is a {kind}, not a regular file")
    }


async def test_a_folder_named_as_an_input_is_not_a_regular_file(
    folder: Path, route: str, executor: LocalExecutor
) -> None:
    (folder / "dir.txt").mkdir()
    report = await run_on(folder, every_builtin("dir", "dir.txt", route), executor)
    assert set(errors(report, "dir").values()) == {
        ("NotARegularFile", "dir.txt: is a directory, not a regular file")
    }


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and Unix sockets")
async def test_every_driver_refuses_what_a_batch_refuses_before_reading(
    special_files: Path,
) -> None:
    """A run stats every kernel job's input in a batch first, so the other drivers
    never meet these inputs there; they do when an action function is awaited
    directly (aiofiles streaming, or search_pattern's worker process), on a Dask
    worker (``scan_file``) or in a worker process: the same error each time."""
    folder = special_files
    (folder / "dir.txt").mkdir()
    (folder / "dangling").symlink_to("nowhere")
    (folder / "loop").symlink_to("loop")
    expected = {
        "fifo": ("NotARegularFile", "is a FIFO, not a regular file"),
        "sock": ("NotARegularFile", "is a socket, not a regular file"),
        "dir.txt": ("NotARegularFile", "is a directory, not a regular file"),
        "/dev/null": ("NotARegularFile", "is a character device, not a regular file"),
        "dangling": ("FileNotFoundError", "no such file"),
        "loop": ("FileNotFoundError", "too many levels of symbolic links"),
        "control.txt/below": ("FileNotFoundError", "not a directory"),
    }
    tuning = Tuning(chunk_bytes=4096, small_file_bytes=0)
    for name, (kind, reason) in expected.items():
        path = folder / name
        want = {"type": kind, "message": f"{path}: {reason}"}
        for spec in file_statistics():
            assert spec.kernel is not None
            raw = PARAMS.get(spec.name, {})
            calls: dict[str, Callable[[], Awaitable[Any]]] = {
                "action": functools.partial(spec.func, path, spec.validate_params(raw)),
                "scan_file": functools.partial(
                    anyio.to_thread.run_sync, scan_file, spec.kernel, str(path), raw, tuning
                ),
                "scan_small_file": functools.partial(
                    anyio.to_thread.run_sync,
                    scan_small_file,
                    spec.kernel,
                    str(path),
                    raw,
                    tuning,
                    None,
                ),
                "stream_file": functools.partial(stream_file, spec.kernel, path, raw, tuning),
                "scan_in_process": functools.partial(
                    scan_in_process, spec.kernel, path, raw, tuning
                ),
            }
            for driver, call in calls.items():
                try:
                    with anyio.fail_after(30):
                        await call()
                except (OSError, JobError) as exc:  # TimeoutError too: a hang fails below
                    got = describe_error(exc)
                else:
                    got = {"type": "", "message": "no error"}
                assert got == want, (name, spec.name, driver)


# --- names ----------------------------------------------------------------------------------


def test_names_with_newlines_and_spaces_work_and_print_as_one_line(folder: Path) -> None:
    (folder / "new\nline.txt").write_text("a b\n", encoding="utf-8")
    (folder / " spaced out .txt").write_text("a b c\n", encoding="utf-8")
    result, report = run_cli(
        folder,
        [
            {"name": "newline", "action": "count_words", "input": "new\nline.txt"},
            {"name": "spaces", "action": "count_words", "input": " spaced out .txt"},
            {"name": "glob", "action": "count_words", "input": "*line.txt"},
            {"name": "missing", "action": "count_words", "input": "no\nsuch.txt"},
        ],
        "-v",
    )
    assert report["newline"]["result"] == {"words": 2}
    assert report["spaces"]["result"] == {"words": 3}
    assert report["glob[new\nline.txt]"]["result"] == {"words": 2}
    assert report["missing"]["error"]["message"] == "no\nsuch.txt: no such file"
    assert "no\\x0asuch.txt: no such file" in result.stderr  # one line on stderr
    assert "no\nsuch" not in result.stderr


@pytest.mark.skipif(sys.platform == "darwin", reason="APFS refuses names that are not UTF-8")
def test_undecodable_names_from_a_glob_are_shown_escaped_in_valid_json(folder: Path) -> None:
    """A file name is bytes; ``\\xff`` alone is not UTF-8. The job still reads the
    file, and every output shows the byte as the four characters ``\\xff``: the
    report, journal and plan stay valid UTF-8 (strict JSON readers refuse lone
    surrogates) and the JUnit XML parses."""
    raw = os.fsencode(folder) + b"/bad\xffname.txt"
    with open(raw, "wb") as handle:
        handle.write(b"one two\n")
    junit = folder / "junit.xml"
    _, report = run_cli(
        folder,
        [{"name": "g", "action": "count_words", "input": "*name.txt"}],
        "--junit",
        str(junit),
    )
    job = report["g[bad\\xffname.txt]"]
    assert job["input"] == "bad\\xffname.txt"
    assert job["result"] == {"words": 2}
    journal = (folder / "out.json.journal").read_text(encoding="utf-8")  # strict UTF-8
    assert "bad\\\\xffname.txt" in journal
    assert "\\udcff" not in journal
    cases = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase")]
    assert "g[bad\\xffname.txt]" in cases
    config = next(folder.glob("c-*.json"))
    plan = invoke(["run", str(config), "--dry-run"]).stdout
    assert "\\udcff" not in plan
    assert json.loads(plan)["jobs"][0]["name"] == "g[bad\\xffname.txt]"


@pytest.mark.skipif(sys.platform == "darwin", reason="APFS refuses names that are not UTF-8")
def test_two_files_shown_alike_are_a_config_error_not_a_mix_up(folder: Path) -> None:
    """``bad\\xff.txt`` spelled with a backslash, and with the byte 0xff."""
    with open(os.fsencode(folder) + b"/bad\xff.txt", "wb"):
        pass
    (folder / "bad\\xff.txt").touch()
    config = folder / "c.json"
    config.write_text(
        json.dumps({"jobs": [{"name": "g", "action": "file_size", "input": "bad*.txt"}]}),
        encoding="utf-8",
    )
    result = invoke(["run", str(config)])
    assert result.exit_code == 2
    assert "two files of the glob 'g' are shown as 'bad\\\\xff.txt'" in result.stderr
