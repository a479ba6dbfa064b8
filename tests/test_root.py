"""``--root DIR``: no input outside DIR is ever read, symbolic links included.

Every case builds real files and links in ``tmp_path``: a root folder ``root``, a
sibling ``root2`` (the ``/data`` vs ``/data2`` prefix trap) holding the secret, and
links between them. Confinement is checked at two levels: up front at config load
(the job fails with ``OutsideRoot`` without opening anything; ``--dry-run`` warns),
and on the descriptor each built-in actually opens, which is what a file swapped
for a link after the first check meets. The second level is tested by running a
config loaded without a root under ``run_batch(root=...)`` on every route of the
local executor (a batch of small files, a streamed file, a worker process), by a
kernel that swaps its own input for a link out between the stat and the open, and by
calling the drivers and open helpers directly on links that point out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import ROUTES, file_statistics, invoke, run, run_module
from typer.testing import Result

from asyncbatch import load_config
from asyncbatch.engine import LocalExecutor
from asyncbatch.errors import OutsideRoot
from asyncbatch.files import confine
from asyncbatch.files.batch import Done, SmallFiles, SmallJob
from asyncbatch.files.scan import open_regular, scan_file, scan_small_file, stat_regular
from asyncbatch.files.stream import scan_in_process, stream_file
from asyncbatch.kernel import Kernel, Tuning
from asyncbatch.registry import ActionRegistry, ActionSpec

pytestmark = pytest.mark.anyio

BUILTINS: dict[str, dict[str, Any]] = {
    "count_lines": {},
    "count_words": {},
    "file_size": {},
    "search_pattern": {"pattern": "secret"},
    "checksum": {},
}
SECRET = "secret line\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/`` with an inside file and links in and out; ``root2/`` beside it."""
    root = tmp_path / "root"
    outside = tmp_path / "root2"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "inside.txt").write_text("one two\nthree\n")
    (root / "sub" / "deep.txt").write_text("deep\n")
    (outside / "secret.txt").write_text(SECRET)
    (root / "link_out").symlink_to(outside / "secret.txt")
    (root / "dir_out").symlink_to(outside, target_is_directory=True)
    (root / "link_in").symlink_to("sub/deep.txt")
    (root / "dir_in").symlink_to("sub", target_is_directory=True)
    return tmp_path


def write_config(tmp_path: Path, jobs: list[dict[str, Any]], name: str = "batch.json") -> Path:
    """The jobs as a config inside ``root/``."""
    path = tmp_path / "root" / name
    path.write_text(json.dumps({"jobs": jobs}))
    return path


def run_report(
    tree: Path, jobs: list[dict[str, Any]], *extra: str
) -> tuple[Result, dict[str, Any]]:
    """Run under ``--root root`` with a report; return the result and jobs by name."""
    config = write_config(tree, jobs)
    report = tree / "report.json"
    result = invoke(["run", str(config), "--root", str(tree / "root"), "-o", str(report), *extra])
    jobs_by_name = {job["name"]: job for job in json.loads(report.read_text())["jobs"]}
    return result, jobs_by_name


def job(name: str, input: str, action: str = "count_lines") -> dict[str, Any]:
    return {"name": name, "action": action, "input": input, "params": BUILTINS.get(action, {})}


def assert_outside(entry: dict[str, Any], shown: str, tree: Path) -> None:
    assert entry["status"] == "failed"
    assert entry["error"]["type"] == "OutsideRoot"
    root = os.path.realpath(tree / "root")
    assert entry["error"]["message"] == f"{shown}: resolves outside the root {root}"
    assert entry["result"] is None


# --- up front, through the CLI ----------------------------------------------------------


def test_dotdot_absolute_and_symlinked_inputs_outside_the_root_fail_with_outside_root(
    tree: Path,
) -> None:
    secret = str(tree / "root2" / "secret.txt")
    result, jobs = run_report(
        tree,
        [
            job("dotdot", "../root2/secret.txt"),
            job("sneaky", "sub/../../root2/secret.txt"),
            job("absolute", secret),
            job("file-link", "link_out"),
            job("dir-link", "dir_out/secret.txt"),
            job("inside", "inside.txt"),
        ],
    )
    assert result.exit_code == 1
    for name, shown in [
        ("dotdot", "../root2/secret.txt"),
        ("sneaky", "sub/../../root2/secret.txt"),
        ("absolute", secret),
        ("file-link", "link_out"),
        ("dir-link", "dir_out/secret.txt"),
    ]:
        assert_outside(jobs[name], shown, tree)
    assert jobs["inside"]["result"] == {"lines": 2}


def test_symlinks_that_stay_inside_the_root_are_followed(tree: Path) -> None:
    result, jobs = run_report(
        tree,
        [
            job("file-link", "link_in"),
            job("dir-link", "dir_in/deep.txt"),
            job("absolute", str(tree / "root" / "inside.txt")),
            job("dotdot-inside", "sub/../inside.txt"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert {name: entry["result"] for name, entry in jobs.items()} == {
        "file-link": {"lines": 1},
        "dir-link": {"lines": 1},
        "absolute": {"lines": 2},
        "dotdot-inside": {"lines": 2},
    }


def test_a_glob_through_a_symlinked_directory_yields_outside_root_jobs_for_its_matches(
    tree: Path,
) -> None:
    result, jobs = run_report(tree, [job("g", "*/*.txt")])
    assert result.exit_code == 1
    assert jobs["g[sub/deep.txt]"]["result"] == {"lines": 1}
    assert jobs["g[dir_in/deep.txt]"]["result"] == {"lines": 1}
    assert_outside(jobs["g[dir_out/secret.txt]"], "dir_out/secret.txt", tree)


def test_a_glob_climbing_out_with_dotdot_yields_outside_root_jobs(tree: Path) -> None:
    result, jobs = run_report(tree, [job("g", "../root2/*.txt")])
    assert result.exit_code == 1
    assert list(jobs) == ["g[../root2/secret.txt]"]
    assert_outside(jobs["g[../root2/secret.txt]"], "../root2/secret.txt", tree)


def test_a_sibling_whose_name_extends_the_roots_is_outside(tree: Path) -> None:
    """``root2`` starts with ``root`` as a string, but is not below it."""
    result, jobs = run_report(tree, [job("sibling", str(tree / "root2" / "secret.txt"))])
    assert result.exit_code == 1
    assert_outside(jobs["sibling"], str(tree / "root2" / "secret.txt"), tree)
    assert confine.is_inside("/data/x", "/data")
    assert confine.is_inside("/data", "/data")
    assert not confine.is_inside("/data2/x", "/data")
    assert not confine.is_inside("/data2", "/data")
    assert confine.is_inside("/etc/passwd", "/")


def test_dry_run_lists_inputs_outside_the_root_as_warnings_and_exits_0(tree: Path) -> None:
    config = write_config(tree, [job("out", "link_out"), job("in", "inside.txt")])
    result = invoke(["run", str(config), "--root", str(tree / "root"), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    root = os.path.realpath(tree / "root")
    assert [entry["warnings"] for entry in plan["jobs"]] == [
        [f"OutsideRoot: link_out: resolves outside the root {root}"],
        [],
    ]


def test_without_root_the_same_inputs_are_read(tree: Path) -> None:
    config = write_config(tree, [job("out", "link_out"), job("up", "../root2/secret.txt")])
    result = invoke(["run", str(config)])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("problem", ["missing", "file"])
def test_root_that_is_not_an_existing_directory_is_a_usage_error(tree: Path, problem: str) -> None:
    config = write_config(tree, [job("in", "inside.txt")])
    root = tree / "root" / ("nowhere" if problem == "missing" else "inside.txt")
    result = invoke(["run", str(config), "--root", str(root)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"--root {root}: not a directory" in result.stderr


def test_module_function_actions_are_config_errors_with_root_and_run_without(
    tree: Path,
) -> None:
    (tree / "root" / "myactions.py").write_text(
        "from pathlib import Path\n"
        "IMPORTED = Path(__file__).with_name('imported')\n"
        "IMPORTED.write_text('yes')\n"
        "async def size(path, params):\n"
        "    return {'bytes': path.stat().st_size}\n"
    )
    config = write_config(
        tree,
        [
            job("in", "inside.txt"),
            {"name": "custom", "action": "myactions:size", "input": "inside.txt"},
        ],
    )
    refused = invoke(["run", str(config), "--root", str(tree / "root")])
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert "jobs[1].action: 'myactions:size' is refused with --root" in refused.stderr
    assert not (tree / "root" / "imported").exists()  # refused before it was imported
    dry = invoke(["run", str(config), "--root", str(tree / "root"), "--dry-run"])
    assert dry.exit_code == 2
    assert json.loads(dry.stdout)["valid"] is False
    allowed = invoke(["run", str(config)])
    assert allowed.exit_code == 0, allowed.stderr


@pytest.mark.slow
def test_a_module_function_declared_by_an_installed_plugin_is_allowed_with_root(
    tree: Path,
) -> None:
    """An installed distribution (a ``*.dist-info`` folder on the path, as pip
    leaves one) declares ``count_lines`` as an entry point: that reference may be
    used under ``--root``, and runs; another reference of the same module may not.
    In a fresh process: entry points are read once per process."""
    site = tree / "site"
    dist_info = site / "abtest_rootplugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: abtest-rootplugin\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[asyncbatch.actions]\nlines = asyncbatch.actions.builtins:count_lines\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    declared = {
        "name": "plugin",
        "action": "asyncbatch.actions.builtins:count_lines",
        "input": "inside.txt",
    }
    undeclared = {**declared, "name": "other", "action": "asyncbatch.actions.builtins:count_words"}
    config = write_config(tree, [declared, undeclared])
    refused = run_module(["run", str(config), "--root", "root"], cwd=tree, env=env)
    assert refused.returncode == 2
    assert "jobs[0].action" not in refused.stderr
    assert "jobs[1].action: 'asyncbatch.actions.builtins:count_words' is refused" in refused.stderr
    config = write_config(tree, [declared])
    report = tree / "report.json"
    allowed = run_module(
        ["run", str(config), "--root", "root", "-o", str(report)], cwd=tree, env=env
    )
    assert allowed.returncode == 0, allowed.stderr
    assert [entry["result"] for entry in json.loads(report.read_text())["jobs"]] == [{"lines": 2}]


# --- every built-in, on every route ---------------------------------------------------------


@pytest.mark.parametrize("action", list(BUILTINS))
def test_every_builtin_refuses_an_outside_input_through_the_cli(tree: Path, action: str) -> None:
    result, jobs = run_report(
        tree,
        [
            job("out", "link_out", action),
            job("up", "../root2/secret.txt", action),
            job("in", "inside.txt", action),
        ],
    )
    assert result.exit_code == 1
    assert_outside(jobs["out"], "link_out", tree)
    assert_outside(jobs["up"], "../root2/secret.txt", tree)
    assert jobs["in"]["status"] == "succeeded"


@pytest.mark.slow
def test_every_builtin_refuses_in_a_fresh_process_with_a_relative_root(tree: Path) -> None:
    """``--root root`` as a user types it, relative to the current directory."""
    config = write_config(tree, [job(name, "link_out", name) for name in BUILTINS])
    report = tree / "report.json"
    completed = run_module(["run", str(config), "--root", "root", "-o", str(report)], cwd=tree)
    assert completed.returncode == 1, completed.stderr
    for entry in json.loads(report.read_text())["jobs"]:
        assert_outside(entry, "link_out", tree)


async def _run_with_root_at_open_time(
    tree: Path, jobs: list[dict[str, Any]], executor: LocalExecutor
) -> dict[str, Any]:
    """Load without a root (no up-front check), then run under one: only the
    checks on the opened descriptors stand between the jobs and the secret."""
    config = load_config(write_config(tree, jobs))
    assert all(entry.start_error is None for entry in config.jobs)
    report = await run(config, root=tree / "root", executor=executor)
    return {entry.name: entry.to_dict() for entry in report.jobs}


ON_ROUTES = [
    (route, action)
    for route in ROUTES
    for action in BUILTINS
    if action != "search_pattern" or route == "worker"
]
"""search_pattern runs in a worker process on every route (a regex may never return):
it is run on the worker route only, not three times over."""


@pytest.mark.parametrize(("route", "action"), ON_ROUTES)
async def test_every_builtin_checks_the_opened_descriptor_when_the_upfront_check_is_skipped(
    tree: Path, action: str, executor: LocalExecutor
) -> None:
    jobs = await _run_with_root_at_open_time(
        tree,
        [
            job("out", "link_out", action),
            job("dir", "dir_out/secret.txt", action),
            job("in", "link_in", action),
            job("inside", "inside.txt", action),
        ],
        executor,
    )
    assert_outside(jobs["out"], "link_out", tree)
    assert_outside(jobs["dir"], "dir_out/secret.txt", tree)
    assert jobs["in"]["status"] == "succeeded"
    assert jobs["inside"]["status"] == "succeeded"


class SwapOnStart:
    """A kernel's scanner that, when started (after the driver's ``stat``, before
    its open), replaces its input with a link to ``params["target"]``: a real race,
    made deterministic. Its result is what it read. (Module level: a worker process
    imports it by reference.)"""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        if os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
            os.symlink(params["target"], path)
        self._read = bytearray()

    def update(self, data: bytes | bytearray) -> None:
        self._read += data

    def result(self) -> dict[str, Any]:
        return {"read": self._read.decode()}


SWAP = Kernel(SwapOnStart)


async def _swap(path: Path, params: Any) -> dict[str, Any]:
    raise AssertionError("the local executor runs the kernel, not this")


async def test_an_input_swapped_for_a_link_out_after_the_stat_is_never_read(
    tree: Path, route: str, executor: LocalExecutor
) -> None:
    """Streamed or in a worker process, the open is refused (``OutsideRoot``). A
    batch reads a small file whole before its scanner starts: the swap comes too
    late, and what was read is the harmless file inside."""
    victim = tree / "root" / "victim.txt"
    victim.write_text("harmless\n")
    secret = tree / "root2" / "secret.txt"
    registry = ActionRegistry([ActionSpec("swap", _swap, origin="tests", kernel=SWAP)])
    path = write_config(
        tree,
        [
            {
                "name": "swap",
                "action": "swap",
                "input": "victim.txt",
                "params": {"target": str(secret)},
            }
        ],
    )
    config = load_config(path, registry=registry, root=tree / "root")
    (result,) = (await run(config, executor=executor)).jobs
    assert victim.is_symlink()  # the swap happened
    if route == "batch":
        assert result.result == {"read": "harmless\n"}
    else:
        assert_outside(result.to_dict(), "victim.txt", tree)


# --- the drivers and lowest-level helpers: a path checked inside, then swapped for a link out


@pytest.fixture
def swapped(tree: Path) -> tuple[str, str]:
    """``(path, root)``: ``root/victim.txt`` was a file inside the root when it was
    checked, and has since been replaced by a link to the secret outside."""
    root = confine.real_root(tree / "root")
    victim = tree / "root" / "victim.txt"
    victim.write_text("harmless\n")
    confine.check_path(victim, root, "victim.txt")  # passes: a regular file inside
    victim.unlink()
    victim.symlink_to(tree / "root2" / "secret.txt")
    return str(victim), root


def test_open_regular_refuses_a_descriptor_outside_the_root(swapped: tuple[str, str]) -> None:
    path, root = swapped
    with pytest.raises(OutsideRoot, match=re.escape(f"{path}: resolves outside the root {root}")):
        open_regular(path, root=root)
    fd = open_regular(path)  # without a root: opened as before
    os.close(fd)


def test_open_regular_accepts_a_link_that_stays_inside(tree: Path) -> None:
    root = confine.real_root(tree / "root")
    fd = open_regular(str(tree / "root" / "link_in"), root=root)
    try:
        assert os.read(fd, 100) == b"deep\n"
    finally:
        os.close(fd)


def test_stat_of_file_size_is_checked_on_an_o_path_descriptor(
    swapped: tuple[str, str], tree: Path
) -> None:
    path, root = swapped
    with pytest.raises(OutsideRoot):
        confine.stat_confined(path, root)
    with pytest.raises(OutsideRoot):
        stat_regular(path, root)
    inside = tree / "root" / "inside.txt"
    assert confine.stat_confined(str(inside), root).st_size == inside.stat().st_size


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_confined_stat_needs_no_read_permission(tree: Path) -> None:
    locked = tree / "root" / "locked.txt"
    locked.write_text("x" * 7)
    locked.chmod(0)
    root = confine.real_root(tree / "root")
    assert confine.stat_confined(str(locked), root).st_size == 7


SECRET_RESULTS: dict[str, dict[str, Any]] = {
    "count_lines": {"lines": 1},
    "count_words": {"words": 2},
    "file_size": {"bytes": len(SECRET)},
    "search_pattern": {"matches": 1, "matching_lines": 1},
}
"""What each built-in makes of the secret (checksum aside), when it may read it."""


async def test_every_driver_refuses_a_swapped_path_under_a_root_and_reads_it_without(
    swapped: tuple[str, str],
) -> None:
    """In a thread (``scan_file``, ``scan_small_file``, a batch), streamed with
    aiofiles, and in a worker process (the root travels to it as an argument, and
    it checks its own descriptor; the error comes back pickled)."""
    path, root = swapped
    tuning = Tuning(chunk_bytes=4096)
    message = re.escape(f"{path}: resolves outside the root {root}")
    for spec in file_statistics():
        kernel, params = spec.kernel, BUILTINS[spec.name]
        assert kernel is not None
        with pytest.raises(OutsideRoot, match=message):
            scan_file(kernel, path, params, tuning, root)
        with pytest.raises(OutsideRoot, match=message):
            scan_small_file(kernel, path, params, tuning, root)
        with pytest.raises(OutsideRoot, match=message):
            await stream_file(kernel, path, params, tuning, root)
        with anyio.fail_after(30), pytest.raises(OutsideRoot, match=message):
            await scan_in_process(kernel, path, params, tuning, root)
        finished: list[Done] = []
        batch = SmallFiles(
            [SmallJob(kernel, path, params, None)],
            tuning,
            root,
            stop_on_error=False,
            on_started=lambda position, at: None,
            on_done=finished.append,
        )
        await batch.run()
        (done,) = finished
        assert isinstance(done.error, OutsideRoot), spec.name
        assert str(done.error) == f"{path}: resolves outside the root {root}"
        if spec.name in SECRET_RESULTS:  # without a root, the link is followed
            expected = SECRET_RESULTS[spec.name]
            assert scan_file(kernel, path, params, tuning)[0] == expected
            assert (await stream_file(kernel, path, params, tuning))[0] == expected
            with anyio.fail_after(30):
                assert (await scan_in_process(kernel, path, params, tuning))[0] == expected


def test_resume_never_reuses_a_result_for_an_input_outside_the_root(tree: Path) -> None:
    config = write_config(tree, [job("out", "link_out"), job("in", "inside.txt")])
    report = tree / "report.json"
    first = invoke(["run", str(config), "-o", str(report)])
    assert first.exit_code == 0, first.stderr
    again = invoke(
        ["run", str(config), "-o", str(report), "--resume", "--root", str(tree / "root")]
    )
    assert again.exit_code == 1
    jobs = {entry["name"]: entry for entry in json.loads(report.read_text())["jobs"]}
    assert_outside(jobs["out"], "link_out", tree)
    assert jobs["in"]["reused"] is True
