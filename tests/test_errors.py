"""The exception tree pickles: a worker process or a Dask worker raises one of ours
and the parent gets it back as it was (type, message, attributes), so the report
describes it the same on either side."""

from __future__ import annotations

import errno
import os
import pickle

import pytest
from support import QuotaExceeded

from asyncbatch import errors
from asyncbatch.errors import (
    AsyncbatchError,
    Cancelled,
    CommandFailed,
    ConfigError,
    DependencyFailed,
    ExecutorUnavailable,
    JobError,
    LineTooLong,
    MissingOutput,
    NotARegularFile,
    NotAReport,
    OutputError,
    OutsideRoot,
    RemoteError,
    Timeout,
    UnknownAction,
    describe_error,
)
from asyncbatch.model import Resources

EXAMPLES: dict[str, AsyncbatchError] = {
    "JobError": JobError("an action's own failure"),
    "NotARegularFile": NotARegularFile(path="in/pipe", kind="FIFO"),
    "LineTooLong": LineTooLong(path="big.log", limit=32 << 20),
    "OutsideRoot": OutsideRoot(path="../secret.txt", root="/srv/data"),
    "Timeout": Timeout(seconds=2.5),
    "UnknownAction": UnknownAction(action="cuont"),
    "DependencyFailed": DependencyFailed(dependency="fetch", status="failed"),
    "Cancelled": Cancelled(reason="the run halted after 1 failure (first: 'a')"),
    "Cancelled-default": Cancelled(),
    "CommandFailed": CommandFailed(
        reason="exit status 3: boom",
        exit_code=3,
        output={"exit_code": 3, "stdout": "", "stderr": "warming up\nboom\n"},
    ),
    "CommandFailed-signal": CommandFailed(
        reason="killed by SIGKILL", signal="SIGKILL", output={"signal": "SIGKILL"}
    ),
    "CommandFailed-never-ran": CommandFailed(reason="cannot execute './x': no such file"),
    "MissingOutput": MissingOutput(paths=["out/a.gz", "out/b.gz"]),
    "RemoteError": RemoteError(error={"type": "ActionError", "message": "KeyError: 'x'"}),
    "RemoteError-details": RemoteError(
        error={"type": "CommandFailed", "message": "exit status 1", "stderr": "no\n"}
    ),
    "ConfigError": ConfigError(["jobs[0].input: required", "jobs[1]: bad"], source="b.json"),
    "ConfigError-no-source": ConfigError(["jobs: required"]),
    "OutputError": OutputError(path="out/report.json", reason="its folder does not exist"),
    "NotAReport": NotAReport(
        path="report.json", reason='not an asyncbatch report (no "jobs" list)'
    ),
    "ExecutorUnavailable": ExecutorUnavailable("no scheduler at tcp://127.0.0.1:1"),
    "AsyncbatchError": AsyncbatchError("anything"),
    "user-subclass": QuotaExceeded("quota of 3 exceeded"),
}


def subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *subclasses(sub)}
    return found


def roundtrip(error: BaseException, protocol: int = pickle.HIGHEST_PROTOCOL) -> BaseException:
    copy = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert isinstance(copy, BaseException)
    return copy


def test_the_examples_cover_every_error_class_of_the_package() -> None:
    ours = {cls for cls in subclasses(AsyncbatchError) if cls.__module__ == errors.__name__}
    assert ours | {AsyncbatchError} == {type(error) for error in EXAMPLES.values()} - {
        QuotaExceeded
    }


@pytest.mark.parametrize("protocol", sorted({0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL}))
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_an_error_unpickles_with_its_type_message_and_attributes(name: str, protocol: int) -> None:
    error = EXAMPLES[name]
    copy = roundtrip(error, protocol)
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)
    if isinstance(error, JobError):
        assert isinstance(copy, JobError)
        assert copy.error_type == error.error_type


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_describe_error_says_the_same_after_the_round_trip(name: str) -> None:
    error = EXAMPLES[name]
    assert describe_error(roundtrip(error)) == describe_error(error)


def test_a_failed_commands_exit_code_details_and_resources_survive_the_round_trip() -> None:
    used = Resources(cpu_s=0.25, max_rss_kb=2048, read_bytes=0, write_bytes=512)
    output = {"exit_code": 3, "stdout": "", "stderr": "boom\n"}
    error = CommandFailed(reason="exit status 3: boom", exit_code=3, output=output, resources=used)
    copy = roundtrip(error)
    assert isinstance(copy, CommandFailed)
    assert (copy.exit_code, copy.signal, copy.resources) == (3, None, used)
    assert describe_error(copy) == {
        "type": "CommandFailed",
        "message": "exit status 3: boom",
        "details": output,
    }


def test_the_attributes_the_report_and_the_cli_read_survive_the_round_trip() -> None:
    config = roundtrip(EXAMPLES["ConfigError"])
    assert isinstance(config, ConfigError)
    assert (config.problems, config.source) == (
        ["jobs[0].input: required", "jobs[1]: bad"],
        "b.json",
    )
    assert str(config) == "b.json: jobs[0].input: required\nb.json: jobs[1]: bad"
    output = roundtrip(EXAMPLES["OutputError"])
    assert isinstance(output, OutputError)
    assert output.path == "out/report.json"
    assert str(output) == "cannot write out/report.json: its folder does not exist"
    line = roundtrip(EXAMPLES["LineTooLong"])
    assert isinstance(line, LineTooLong)
    assert (line.path, line.limit) == ("big.log", 32 << 20)
    timeout = roundtrip(EXAMPLES["Timeout"])
    assert isinstance(timeout, Timeout)
    assert timeout.seconds == 2.5


@pytest.mark.parametrize(
    ("name", "described"),
    [
        (
            "NotARegularFile",
            {"type": "NotARegularFile", "message": "in/pipe: is a FIFO, not a regular file"},
        ),
        ("Timeout", {"type": "Timeout", "message": "timed out after 2.5 s"}),
        ("UnknownAction", {"type": "UnknownAction", "message": "unknown action 'cuont'"}),
        ("DependencyFailed", {"type": "DependencyFailed", "message": "dependency 'fetch' failed"}),
        ("RemoteError", {"type": "ActionError", "message": "KeyError: 'x'"}),
        ("user-subclass", {"type": "QuotaExceeded", "message": "quota of 3 exceeded"}),
    ],
)
def test_describe_error_after_the_round_trip_is_the_reports_description(
    name: str, described: dict[str, str]
) -> None:
    assert describe_error(roundtrip(EXAMPLES[name])) == described


def test_a_remote_error_is_described_as_the_worker_described_it_even_with_a_job_error_type() -> (
    None
):
    remote = RemoteError(
        error={"type": "LineTooLong", "message": "x.log: a line is longer than 9 bytes"}
    )
    copy = roundtrip(remote)
    assert describe_error(copy) == {
        "type": "LineTooLong",
        "message": "x.log: a line is longer than 9 bytes",
    }


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "in/gone.txt"),
        PermissionError(errno.EACCES, os.strerror(errno.EACCES), "in/secret.txt"),
        OSError(errno.ELOOP, os.strerror(errno.ELOOP), "in/loop"),
    ],
    ids=["FileNotFoundError", "PermissionError", "ELOOP"],
)
def test_an_os_error_a_worker_raises_is_described_the_same_after_the_round_trip(
    error: OSError,
) -> None:
    """Not ours, but raised by the same workers: the standard library pickles it."""
    assert describe_error(roundtrip(error)) == describe_error(error)
