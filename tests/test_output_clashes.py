"""The outputs a job declares destroy nothing that is not theirs: two jobs declaring
one output, an output that is the config, another job's input (unless that job
waits for it), the job's own input, a device, FIFO or socket, or the run's report,
journal, lock or JUnit file is a config error naming the jobs (exit 2, nothing run,
every file as it was). Real files, the real command line."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import add_module, invoke, read_json, summary, write_json

COPY = """\
from pathlib import Path
import asyncbatch


@asyncbatch.action("tagged_copy", outputs=["out/{stem}.copy"], binds=True)
async def tagged_copy(path, params, job):
    Path(job.outputs[0]).write_bytes(path.read_bytes())
    return {"copied": path.name}
"""


def command(name: str, input_: str, shell: str, outputs: list[str], **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "action": "command",
        "input": input_,
        "params": {"shell": shell, "outputs": outputs},
        **more,
    }


def files_in(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (relative path -> bytes)."""
    return {
        os.fspath(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def refused(folder: Path, args: list[str], *expected: str) -> str:
    """Exit 2 with each ``expected`` text on stderr, nothing run (no file created,
    none changed): the stderr."""
    before = files_in(folder)
    result = invoke(args)
    assert result.exit_code == 2, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert files_in(folder) == before
    return result.stderr


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    for folder, text in (("a", "int a;\n"), ("b", "int b;\n")):
        (tmp_path / "src" / folder).mkdir(parents=True)
        (tmp_path / "src" / folder / "x.c").write_text(text, encoding="utf-8")
    return tmp_path


def test_two_glob_expansions_declaring_one_output_are_a_config_error_naming_both(
    sources: Path,
) -> None:
    """src/a/x.c and src/b/x.c both make build/x.o: the failing one used to remove the
    good one's result while the report said it succeeded."""
    shell = (
        "case {input} in *b/*) cp {input} build/{stem}.o; exit 3;; "
        "*) cp {input} build/{stem}.o;; esac"
    )
    config = write_json(
        sources / "batch.json",
        {"jobs": [command("cc", "src/*/x.c", shell, ["build/{stem}.o"])]},
    )
    message = refused(
        sources,
        ["run", str(config), "-o", str(sources / "report.json")],
        "jobs[0] (cc[src/b/x.c]): output 'build/x.o' is also an output of job 'cc[src/a/x.c]'",
    )
    assert message.endswith("error: the config is invalid; nothing was run\n")
    assert not (sources / "build").exists()
    assert not (sources / "report.json").exists()
    refused(sources, ["run", str(config), "--dry-run"], "two jobs may not declare one output")


def test_one_output_spelled_differently_or_reached_by_a_link_is_still_one_output(
    tmp_path: Path,
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "alias").symlink_to("out")
    (tmp_path / "out" / "made.txt").write_text("kept\n", encoding="utf-8")
    os.link(tmp_path / "out" / "made.txt", tmp_path / "out" / "hard.txt")
    for first, second in (
        ("out/x.txt", "out/../out/x.txt"),
        ("out/x.txt", "alias/x.txt"),
        ("out/x.txt", f"{tmp_path}/out//x.txt"),
        ("out/made.txt", "out/hard.txt"),  # one existing file, two names
    ):
        config = write_json(
            tmp_path / "batch.json",
            {
                "jobs": [
                    command("one", ".", "true", [first]),
                    command("two", ".", "true", [second]),
                ]
            },
        )
        refused(
            tmp_path,
            ["run", str(config)],
            "jobs[1] (two): output",
            "is also an output of job 'one'",
        )


def test_any_action_that_declares_outputs_is_checked_not_only_commands(tmp_path: Path) -> None:
    module = add_module(tmp_path, COPY, "copies")
    for folder in ("a", "b"):
        (tmp_path / "notes" / folder).mkdir(parents=True)
        (tmp_path / "notes" / folder / "n.txt").write_text(folder, encoding="utf-8")
    config = write_json(
        tmp_path / "batch.json",
        {"jobs": [{"name": "copy", "action": f"{module}:tagged_copy", "input": "notes/*/n.txt"}]},
    )
    refused(
        tmp_path,
        ["run", str(config)],
        "jobs[0] (copy[notes/b/n.txt]): output 'out/n.copy' is also an output of job "
        "'copy[notes/a/n.txt]'",
    )


def test_an_output_that_is_the_jobs_own_input_is_refused_and_the_input_kept(
    tmp_path: Path,
) -> None:
    """``echo more >> {input}; exit 3`` with ``outputs: ["{input}"]`` used to delete
    the input when the attempt failed."""
    data = tmp_path / "data.txt"
    data.write_text("precious\n", encoding="utf-8")
    config = write_json(
        tmp_path / "batch.json",
        {"jobs": [command("grow", "data.txt", "echo more >> {input}; exit 3", ["{input}"])]},
    )
    refused(
        tmp_path, ["run", str(config)], "jobs[0] (grow): output 'data.txt' is the job's own input"
    )
    assert data.read_text(encoding="utf-8") == "precious\n"


def test_an_output_that_is_the_config_or_an_input_of_an_unrelated_job_is_refused(
    tmp_path: Path,
) -> None:
    for name in ("data.txt", "more.txt"):
        (tmp_path / name).write_text("precious\n", encoding="utf-8")
    (tmp_path / "link.txt").symlink_to("more.txt")
    jobs = [
        {"name": "count", "action": "count_lines", "input": "data.txt"},
        {"name": "size", "action": "file_size", "input": "more.txt"},
        command("config", ".", "exit 3", ["batch.json"]),
        command("other", ".", "exit 3", ["data.txt"]),
        command("linked", ".", "exit 3", ["link.txt"]),
    ]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    refused(
        tmp_path,
        ["run", str(config)],
        "jobs[2] (config): output 'batch.json' is the config file",
        "jobs[3] (other): output 'data.txt' is an input of job 'count', which does not "
        "depend on 'other'",
        "jobs[4] (linked): output 'link.txt' is an input of job 'size'",
    )


def test_an_output_read_by_a_job_that_waits_for_it_is_a_pipeline_and_runs(
    tmp_path: Path,
) -> None:
    jobs = [
        command("make", ".", "printf 'a\\nb\\n' > made.txt", ["made.txt"]),
        {"name": "count", "action": "count_lines", "input": "made.txt", "depends_on": ["make"]},
        {"name": "later", "action": "file_size", "input": "made.txt", "depends_on": ["count"]},
    ]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    result = invoke(["run", str(config), "-o", str(tmp_path / "report.json"), "-q"])
    assert result.exit_code == 0, result.stderr
    report = read_json(tmp_path / "report.json")
    assert report["jobs"][1]["result"] == {"lines": 2}


def test_an_output_that_is_a_device_a_fifo_a_socket_or_a_system_path_is_refused(
    tmp_path: Path,
) -> None:
    os.mkfifo(tmp_path / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    try:
        jobs = [
            command("fifo", ".", "true", ["pipe"]),
            command("sock", ".", "true", ["sock"]),
            command("null", ".", "true", ["/dev/null"]),
            command("stdout", ".", "true", ["/dev/stdout"]),
        ]
        config = write_json(tmp_path / "batch.json", {"jobs": jobs})
        refused(
            tmp_path,
            ["run", str(config), "--dry-run"],
            "jobs[0] (fifo): output 'pipe' is a FIFO",
            "jobs[1] (sock): output 'sock' is a socket",
            "jobs[2] (null): output '/dev/null' is a system path",
            "jobs[3] (stdout): output '/dev/stdout' is a system path",
        )
    finally:
        server.close()


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_output_that_is_the_report_its_journal_lock_or_the_junit_file_is_refused(
    tmp_path: Path, dry_run: bool
) -> None:
    """Known only to the run: checked where -o is, --dry-run included."""
    report = tmp_path / "report.json"
    for name, target, what in (
        ("report.json", report, "the report"),
        ("report.json.journal", report, "the report's journal"),
        ("report.json.lock", report, "the report's lock"),
        ("junit.xml", report, "the JUnit report"),
    ):
        config = write_json(
            tmp_path / "batch.json", {"jobs": [command("w", ".", "exit 3", [name])]}
        )
        args = ["run", str(config), "-o", str(target), "--junit", str(tmp_path / "junit.xml")]
        stderr = refused(
            tmp_path,
            args + (["--dry-run"] if dry_run else []),
            f"job 'w': output '{name}' is {what}; a failed attempt would remove it",
        )
        assert stderr.endswith("nothing was run\n")
        assert not report.exists()


def test_each_refuses_two_inputs_declaring_one_output_in_its_own_terms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    refused(
        tmp_path,
        [
            "each",
            "a.txt",
            "b.txt",
            "--action",
            "command",
            "-p",
            'argv=["touch", "same.txt"]',
            "-p",
            'outputs=["same.txt"]',
        ],
        "INPUT 'b.txt' (b.txt): output 'same.txt' is also an output of job 'a.txt'",
    )


def test_a_config_whose_jobs_declare_no_outputs_runs_as_before(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("x\n", encoding="utf-8")
    jobs = [
        {"name": "count", "action": "count_lines", "input": "data.txt"},
        {"name": "echo", "action": "command", "input": "data.txt", "params": {"argv": ["true"]}},
    ]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    result = invoke(["run", str(config)])
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["succeeded"] == 2
    assert json.loads(result.stdout)["failed"] == 0


@given(
    st.lists(
        st.sampled_from(["", ".", "..", "a", "b.c", ".rc", "x.", "t.tar.gz", "\udcff.txt", "é"]),
        max_size=5,
    ),
    st.booleans(),
    st.booleans(),
)
def test_placeholders_split_paths_as_pathlib_does(
    parts: list[str], absolute: bool, trailing: bool
) -> None:
    """``{input}``, ``{stem}``, ``{suffix}``, ``{parent}`` are computed with string
    operations (a config's load asks every job for its outputs): the same values
    as ``pathlib`` gives."""
    from asyncbatch.placeholders import job_values
    from asyncbatch.registry import JobContext

    text = ("/" if absolute else "") + "/".join(parts) + ("/" if trailing else "")
    where = Path(os.path.abspath(text or "."))
    values = job_values(text or ".", JobContext("n", 1, Path("/config")))
    assert values["input"] == os.fspath(where)
    assert (values["stem"], values["suffix"]) == (where.stem, where.suffix)
    assert values["parent"] == os.fspath(where.parent)


def test_outputs_differing_in_case_are_two_files_where_case_counts(tmp_path: Path) -> None:
    """Paths are compared as the file system has them: here case counts, so
    ``out/X.txt`` and ``out/x.txt`` are two outputs (where it does not, macOS say, they
    are one: the folder found under its other-case name tells)."""
    (tmp_path / "out").mkdir()
    jobs = [
        command("upper", ".", "echo A > out/X.txt", ["out/X.txt"]),
        command("lower", ".", "echo a > out/x.txt", ["out/x.txt"]),
    ]
    config = write_json(tmp_path / "batch.json", {"jobs": jobs})
    result = invoke(["run", str(config), "-q"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / "X.txt").read_text(encoding="utf-8") == "A\n"
