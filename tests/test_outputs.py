"""Outputs are never destructive, and standard streams that fail lose lines, never
the run: ``-o`` and ``--junit`` must be regular files or absent and may not name the
config, an input, or the report's journal or lock (exit 2 before anything runs or is
written); a closed or full stdout or stderr is no traceback and changes no exit code."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import add_module, invoke, read_json, summary, write_json

TRACE = """\
from pathlib import Path


async def touch(path, params):
    Path(__file__).with_name("ran.txt").write_text(path.name)
    return {"touched": path.name}
"""


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """A config of two jobs: a count over ``data.txt`` and a traced action (it leaves
    ``ran.txt`` behind if it ever runs)."""
    (tmp_path / "data.txt").write_text("one\ntwo\n", encoding="utf-8")
    module = add_module(tmp_path, TRACE, "outmod")
    jobs = [
        {"name": "count", "action": "count_lines", "input": "data.txt"},
        {"name": "trace", "action": f"{module}:touch", "input": "data.txt"},
    ]
    return write_json(tmp_path / "batch.json", {"jobs": jobs})


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    yield path
    server.close()


def refused(args: list[str], folder: Path, reason: str) -> None:
    """Exit 2 naming ``reason``, before any job ran and before anything was written."""
    before = {path: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    result = invoke(args)
    assert result.exit_code == 2, result.stderr
    assert reason in result.stderr
    assert result.stdout == ""
    assert not (folder / "ran.txt").exists()
    after = {path: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    assert after == before  # nothing created, nothing changed


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("/dev/null", "is a system path"),
        ("/dev/stdout", "is a system path"),  # a link to a regular file when redirected
        ("/dev/fd/1", "is a system path"),
        ("/proc/self/fd/1", "is a system path"),
    ],
)
@pytest.mark.parametrize("flag", ["-o", "--junit"])
def test_a_device_or_a_stream_as_an_output_is_refused_before_anything_runs(
    batch: Path, flag: str, target: str, kind: str
) -> None:
    links = {path: os.readlink(path) for path in ("/dev/stdout", "/dev/fd") if os.path.islink(path)}
    refused(["run", str(batch), flag, target], batch.parent, kind)
    assert {path: os.readlink(path) for path in links} == links  # still the system's links


@pytest.mark.skipif(os.geteuid() != 0, reason="only root makes device nodes")
def test_a_device_node_outside_dev_is_refused_as_a_device(batch: Path) -> None:
    node = batch.parent / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    refused(["run", str(batch), "-o", str(node)], batch.parent, "is a character device")


def test_a_link_to_a_device_elsewhere_is_refused_as_the_device(batch: Path) -> None:
    """A link outside /dev to a device, or to /dev/stdout: followed, and refused."""
    folder = batch.parent
    (folder / "to-null").symlink_to("/dev/null")
    (folder / "to-stdout").symlink_to("/dev/stdout")
    refused(["run", str(batch), "-o", str(folder / "to-null")], folder, "is a system path")
    refused(["run", str(batch), "-o", str(folder / "to-stdout")], folder, "is a system path")


@pytest.mark.parametrize("flag", ["-o", "--junit"])
def test_a_fifo_a_socket_or_a_directory_as_an_output_is_refused(
    batch: Path, fifo: Path, unix_socket: Path, flag: str
) -> None:
    for target, kind in (
        (fifo, "is a FIFO"),
        (unix_socket, "is a socket"),
        (batch.parent, "is a directory"),
    ):
        refused(["run", str(batch), flag, str(target)], batch.parent, kind)
    assert fifo.exists()
    assert unix_socket.exists()


@pytest.mark.parametrize("flag", ["-o", "--junit"])
def test_the_config_or_an_input_as_an_output_is_refused_whatever_its_name(
    batch: Path, flag: str
) -> None:
    folder = batch.parent
    (folder / "link-to-data").symlink_to("data.txt")
    os.link(folder / "data.txt", folder / "hard-link-to-data")
    cases = [
        (batch, "is the config file"),
        (folder / "data.txt", "is an input of the batch (job 'count')"),
        (folder / "link-to-data", "is an input of the batch (job 'count')"),
        (folder / "hard-link-to-data", "is an input of the batch (job 'count')"),
        (folder / "sub" / ".." / "batch.json", "is the config file"),
    ]
    (folder / "sub").mkdir()
    for target, reason in cases:
        refused(["run", str(batch), flag, str(target)], folder, reason)


def test_a_glob_match_as_the_report_is_refused(tmp_path: Path) -> None:
    for name in ("a.log", "b.log"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    config = write_json(
        tmp_path / "batch.json",
        {"jobs": [{"name": "logs", "action": "count_lines", "input": "*.log"}]},
    )
    refused(["run", str(config), "-o", str(tmp_path / "b.log")], tmp_path, "job 'logs[b.log]'")


@pytest.mark.parametrize("suffix", [".journal", ".lock"])
def test_junit_naming_the_reports_journal_or_lock_is_refused(batch: Path, suffix: str) -> None:
    report = batch.parent / "report.json"
    what = "journal" if suffix == ".journal" else "lock"
    refused(
        ["run", str(batch), "-o", str(report), "--junit", f"{report}{suffix}"],
        batch.parent,
        f"is the report's {what}",
    )


def test_a_dry_run_refuses_the_same_outputs(batch: Path) -> None:
    refused(["run", str(batch), "--dry-run", "-o", str(batch)], batch.parent, "config file")


def test_an_existing_report_is_replaced_as_before(batch: Path) -> None:
    """A regular file that is no input is what -o is for: overwritten, atomically."""
    report = batch.parent / "report.json"
    report.write_text("old", encoding="utf-8")
    result = invoke(["run", str(batch), "-o", str(report), "-q"])
    assert result.exit_code == 0, result.stderr
    assert read_json(report)["summary"]["succeeded"] == 2


# --- standard streams that fail ---------------------------------------------------------


def run_with_streams(batch: Path, stdout: str, stderr: str) -> subprocess.CompletedProcess[bytes]:
    """The command with stdout and stderr redirected by the shell: ``>&-`` closes a
    stream, ``>/dev/full`` fills it; ``{out}`` and ``{err}`` are capture files."""
    folder = batch.parent
    command = (
        f"{sys.executable} -m asyncbatch run {batch} -o {folder / 'report.json'} "
        f"1{stdout.format(out=folder / 'out.txt')} 2{stderr.format(err=folder / 'err.txt')}"
    )
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=60, check=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [
        (">&-", ">{err}"),
        (">/dev/full", ">{err}"),
        (">{out}", ">&-"),
        (">{out}", ">/dev/full"),
        (">&-", ">&-"),
        (">/dev/full", ">/dev/full"),
    ],
)
def test_a_closed_or_full_standard_stream_costs_a_line_not_the_run(
    batch: Path, stdout: str, stderr: str
) -> None:
    """The run goes on and the report is written; a summary that cannot reach stdout
    is exit 2 (a lost summary is never a success); a lost stderr line is not."""
    completed = run_with_streams(batch, stdout, stderr)
    assert completed.returncode == (2 if stdout in (">&-", ">/dev/full") else 0)
    report = read_json(batch.parent / "report.json")
    assert report["summary"]["succeeded"] == 2
    err = batch.parent / "err.txt"
    if err.exists():
        text = err.read_text(encoding="utf-8")
        assert "Traceback" not in text
        if stdout == ">/dev/full":
            assert "cannot write the summary to standard output: No space left on device" in text
    out = batch.parent / "out.txt"
    if out.exists():
        assert summary(out.read_text(encoding="utf-8"))["succeeded"] == 2


# --- outputs that name a folder, or nothing ---------------------------------------------------

FOLDERISH = [".", "/", "", "./", "sub/.", "sub/", "..", "sub/.."]


@pytest.mark.parametrize("target", FOLDERISH)
@pytest.mark.parametrize("flag", ["-o", "--junit"])
@pytest.mark.parametrize("command", ["run", "dry-run", "each"])
def test_an_output_naming_a_folder_or_nothing_is_one_line_and_exit_2(
    batch: Path, target: str, flag: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-o .`` was a traceback (``PosixPath('.') has an empty name``) and ``-o sub/.``
    wrote a file ``sub``: each is one line naming the option, nothing run or written."""
    folder = batch.parent
    monkeypatch.chdir(folder)
    args = {
        "run": ["run", str(batch)],
        "dry-run": ["run", str(batch), "--dry-run"],
        "each": ["each", "data.txt", "--action", "count_lines"],
    }[command]
    before = sorted(path.name for path in folder.iterdir())
    result = invoke([*args, flag, target])
    assert result.exit_code == 2
    assert result.stdout == ""
    shown = "-o/--output" if flag == "-o" else "--junit"
    assert result.stderr.startswith(f"error: {shown}: "), result.stderr
    assert result.stderr.count("\n") == 1
    assert sorted(path.name for path in folder.iterdir()) == before  # no 'sub', no journal


@pytest.mark.parametrize("target", [".", "/", "..", "sub/.."])
def test_the_api_refuses_a_report_path_that_names_a_folder(batch: Path, target: str) -> None:
    from asyncbatch import load_config
    from asyncbatch.errors import OutputError
    from asyncbatch.options import RunOptions
    from asyncbatch.output.destinations import check_outputs

    with pytest.raises(OutputError, match="names a folder, not a file"):
        check_outputs(RunOptions(output=Path(target)), load_config(batch))


def test_an_output_path_with_a_nul_byte_is_one_line_and_exit_2(batch: Path) -> None:
    """Only in process (a command line cannot carry one): a usage error, not a
    ValueError from the file system."""
    for flag in ("-o", "--junit"):
        result = invoke(["run", str(batch), f"{flag}=re\x00port.json"])
        assert result.exit_code == 2
        assert "cannot hold a NUL byte" in result.stderr
