"""``--root DIR``: no input outside DIR is ever read, symbolic links included.

Every case builds real files and links in ``tmp_path``: a root folder ``root``, a
sibling ``root2`` (the ``/data`` vs ``/data2`` prefix trap) holding the secret, and
links between them. Confinement is checked at two levels: up front at config load
(the job fails with ``OutsideRoot`` without opening anything; ``--dry-run`` warns),
and on the descriptor each built-in actually opens, which is what a file swapped
for a link after the first check meets. The second level is tested by running a
config loaded without a root under ``run_batch(root=...)`` and by calling the open
helpers directly on links that point out.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import threading
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner, Result

from asyncbatch import confine, kernels, linescan
from asyncbatch.actions import _io, fastpath
from asyncbatch.actions._params import ChecksumParams
from asyncbatch.cli import app
from asyncbatch.config import load_config
from asyncbatch.errors import OutsideRoot
from asyncbatch.engine import run_batch

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


def invoke(args: list[str]) -> Result:
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the CLI raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.stderr
    return result


def write_config(tmp_path: Path, jobs: list[dict[str, Any]], name: str = "batch.json") -> Path:
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


def test_a_module_function_declared_by_an_installed_plugin_is_allowed_with_root(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asyncbatch import config as config_module

    monkeypatch.setattr(
        config_module,
        "entry_point_references",
        lambda: frozenset({"asyncbatch.actions.text:count_lines"}),
    )
    config = write_config(
        tree,
        [
            {
                "name": "plugin",
                "action": "asyncbatch.actions.text:count_lines",
                "input": "inside.txt",
            },
            {
                "name": "other",
                "action": "asyncbatch.actions.text:count_words",
                "input": "inside.txt",
            },
        ],
    )
    result = invoke(["run", str(config), "--root", str(tree / "root")])
    assert result.exit_code == 2
    assert "jobs[0].action" not in result.stderr
    assert "jobs[1].action: 'asyncbatch.actions.text:count_words' is refused" in result.stderr


# --- every built-in, fast path and plain path --------------------------------------------


@pytest.fixture(params=["fast", "plain"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The built-ins' fast paths, or the plain aiofiles path (fast paths off)."""
    monkeypatch.setattr(fastpath, "ENABLED", request.param == "fast")
    kind: str = request.param
    return kind


@pytest.mark.parametrize("action", list(BUILTINS))
def test_every_builtin_refuses_an_outside_input_through_the_cli(
    tree: Path, action: str, path_kind: str
) -> None:
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


def test_the_plain_path_refuses_in_a_fresh_process_with_fastpath_off(tree: Path) -> None:
    """``ASYNCBATCH_FASTPATH=0`` as a user sets it, in a real subprocess."""
    config = write_config(tree, [job(name, "link_out", name) for name in BUILTINS])
    report = tree / "report.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "asyncbatch",
            "run",
            str(config),
            "--root",
            "root",
            "-o",
            str(report),
        ],
        cwd=tree,
        env={**os.environ, "ASYNCBATCH_FASTPATH": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    jobs = json.loads(report.read_text())["jobs"]
    assert {entry["error"]["type"] for entry in jobs} == {"OutsideRoot"}


def _run_with_root_at_open_time(tree: Path, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Load without a root (no up-front check), then run under one: only the
    checks on the opened descriptors stand between the jobs and the secret."""
    config = load_config(write_config(tree, jobs))
    assert all(entry.start_error is None for entry in config.jobs)
    report = anyio.run(functools.partial(run_batch, config, root=tree / "root"), backend="asyncio")
    return {entry.name: entry.to_dict() for entry in report.jobs}


@pytest.mark.parametrize("action", list(BUILTINS))
def test_every_builtin_checks_the_opened_descriptor_when_the_upfront_check_is_skipped(
    tree: Path, action: str, path_kind: str
) -> None:
    jobs = _run_with_root_at_open_time(
        tree,
        [
            job("out", "link_out", action),
            job("dir", "dir_out/secret.txt", action),
            job("in", "link_in", action),
        ],
    )
    assert_outside(jobs["out"], "link_out", tree)
    assert_outside(jobs["dir"], "dir_out/secret.txt", tree)
    assert jobs["in"]["status"] == "succeeded"


@pytest.mark.parametrize("action", ["count_lines", "count_words", "checksum"])
def test_one_hop_big_file_reads_check_the_opened_descriptor(
    tree: Path, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files too big for a batch go one file per hop (and, for counts, to a worker
    process when there are cores for it): still refused."""
    monkeypatch.setattr(fastpath, "ENABLED", True)
    monkeypatch.setattr(fastpath, "SMALL_FILE_BYTES", 0)
    monkeypatch.setattr(fastpath, "PROCESS_MIN_BYTES", 1)
    jobs = _run_with_root_at_open_time(
        tree, [job("out", "link_out", action), job("in", "inside.txt", action)]
    )
    assert_outside(jobs["out"], "link_out", tree)
    assert jobs["in"]["status"] == "succeeded"


# --- the lowest-level helpers: a path checked inside, then swapped for a link out ---------


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
        linescan.open_regular(path, root=root)
    fd = linescan.open_regular(path)  # without a root: opened as before
    os.close(fd)


def test_open_regular_accepts_a_link_that_stays_inside(tree: Path) -> None:
    root = confine.real_root(tree / "root")
    fd = linescan.open_regular(str(tree / "root" / "link_in"), root=root)
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
        kernels.stat_regular(path, root)
    inside = tree / "root" / "inside.txt"
    assert confine.stat_confined(str(inside), root).st_size == inside.stat().st_size


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_confined_stat_needs_no_read_permission(tree: Path) -> None:
    locked = tree / "root" / "locked.txt"
    locked.write_text("x" * 7)
    locked.chmod(0)
    root = confine.real_root(tree / "root")
    assert confine.stat_confined(str(locked), root).st_size == 7


def test_kernels_and_scanners_refuse_a_swapped_path(swapped: tuple[str, str]) -> None:
    path, root = swapped
    for name in ("count_lines", "count_words", "checksum", "file_size"):
        with pytest.raises(OutsideRoot):
            kernels.small_job(name, path, ChecksumParams(), 1 << 20, root)
    for name in ("count_lines", "count_words"):
        with pytest.raises(OutsideRoot):
            kernels.run_on_file(kernels.KERNELS[name], path, 4096, None, None, root)
    with pytest.raises(OutsideRoot):
        fastpath._one_file("checksum", path, ChecksumParams(), 4096, threading.Event(), None, root)
    assert linescan.scan_file(path, "secret", 0, 4096, 1 << 20, True, root) == ("outside_root",)
    assert linescan.scan_file(path, "secret", 0, 4096, 1 << 20, True) == ("ok", 1, 1)


def test_the_aiofiles_reader_refuses_a_swapped_path(
    swapped: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stat passes (the swap happens right after it); the opener refuses."""
    path, root = swapped
    monkeypatch.setattr(_io, "stat_confined", lambda path, root: os.stat(path))

    async def read_all() -> bytes:
        token = _io.ROOT.set(root)
        try:
            async with aclosing(_io.iter_chunks(Path(path))) as chunks:
                return b"".join([chunk async for chunk in chunks])
        finally:
            _io.ROOT.reset(token)

    with pytest.raises(OutsideRoot):
        anyio.run(read_all, backend="asyncio")


def test_worker_processes_check_what_they_open_against_the_root_they_are_given(
    swapped: tuple[str, str],
) -> None:
    """Line and word counts of big files and every search run in worker processes;
    the root travels to them as an argument and they check their own descriptor."""
    import anyio.to_process

    path, root = swapped

    async def in_workers() -> list[Any]:
        return [
            await anyio.to_process.run_sync(
                kernels.count_in_worker, "count_lines", path, 4096, root
            ),
            await anyio.to_process.run_sync(
                kernels.count_in_worker, "count_words", path, 4096, None
            ),
            await anyio.to_process.run_sync(
                linescan.scan_file_in_worker, path, "secret", 0, 4096, 1 << 20, True, root
            ),
        ]

    assert anyio.run(in_workers, backend="asyncio") == [
        ("outside_root",),
        ("ok", {"words": 2}),
        ("outside_root",),
    ]


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
