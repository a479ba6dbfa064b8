"""The ``command`` action: run a program once per input, like a Makefile rule.

An ordinary action that declares its capabilities (:data:`COMMAND`): it binds to its
job (the placeholders need the job's name, number and slot), its outputs are the
templates of its ``outputs`` param, its plan line is the command line, its input may
be any path (a folder too), and ``--root`` refuses it (a program can read anything).
The engine makes the outputs' folders, checks them and removes them after a failed
attempt, as for any action that declares outputs. :data:`COMMAND_ON_ARGUMENTS` is
the same action for inputs that are plain arguments, not files (``each --args``).

Placeholders (:mod:`asyncbatch.placeholders`) are checked when the config loads and
filled in per job; under ``shell``, and in the script of ``sh -c SCRIPT`` (or bash,
dash, zsh, ksh), each value is inserted shell-quoted, so that no file name runs code.
A program named without a ``/`` must be found on PATH when the config loads. The
program runs in the config's folder, stdin from ``/dev/null``, in a process group of
its own, from a daemon thread (:mod:`asyncbatch.files.programs`); a cancelled attempt
(a timeout, fail-fast, a signal) ends the whole group, SIGTERM then SIGKILL after
2 s. What it prints goes to the job's :class:`~asyncbatch.registry.Streams` as it is
printed; its result (or a failure's ``error.details``) keeps the ends of both
streams, and what it used (``os.wait4``) is the job's resources.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from asyncbatch.errors import CommandFailed, ProblemAt
from asyncbatch.model import Measured, Resources
from asyncbatch.placeholders import (
    OUTPUT_PLACEHOLDERS,
    check_templates,
    fill,
    has_placeholder,
    job_values,
)
from asyncbatch.registry import ActionSpec, JobContext, Streams

if TYPE_CHECKING:
    from asyncbatch.files.programs import Child, Finished

SHELL = "/bin/sh"
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
"""Programs whose ``-c SCRIPT`` argument is a shell script (placeholders quoted)."""
_TAKES_VALUE = frozenset({"-o", "+o", "-O", "+O"})


class CommandParams(BaseModel):
    """Params of ``command``: exactly one of ``argv`` and ``shell``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    argv: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The program and its arguments, run without a shell; placeholders "
        "such as {input} are filled in (shell-quoted in the script of sh -c SCRIPT).",
    )
    shell: str | None = Field(
        default=None,
        min_length=1,
        description="A command line for /bin/sh -c; placeholders are inserted shell-quoted.",
    )
    env: dict[str, str] = Field(default={}, description="Variables added to the environment.")
    ok_exit_codes: list[int] = Field(
        default=[0], min_length=1, description="Exit codes that count as success (0 to 255)."
    )
    outputs: list[str] = Field(
        default=[],
        description="Paths the command must create (relative to the config's folder); "
        "removed again when an attempt fails.",
    )

    @field_validator("argv")
    @classmethod
    def _templates(cls, templates: list[str] | None) -> list[str] | None:
        if templates is not None:
            for index, template in enumerate(templates):
                _no_nul(template, at=(index,))
            check_templates(templates)
        return templates

    @field_validator("outputs")
    @classmethod
    def _output_templates(cls, templates: list[str]) -> list[str]:
        check_templates(templates, OUTPUT_PLACEHOLDERS)
        return templates

    @field_validator("shell")
    @classmethod
    def _shell_template(cls, template: str | None) -> str | None:
        if template is not None:
            _no_nul(template, at=())
            check_templates([template])
        return template

    @field_validator("env")
    @classmethod
    def _env_templates(cls, env: dict[str, str]) -> dict[str, str]:
        for key, value in env.items():
            if not key or "=" in key or "\0" in key:
                raise ValueError(f"{key!r} is not a variable name")
            _no_nul(value, at=(key,))
        check_templates(env.values())
        return env

    @field_validator("ok_exit_codes")
    @classmethod
    def _exit_codes(cls, codes: list[int]) -> list[int]:
        for index, code in enumerate(codes):
            if not 0 <= code <= 255:
                raise ProblemAt(
                    f"{code} is no exit code: a program exits with 0 to 255 (one killed "
                    "by a signal has none, and always fails)",
                    at=(index,),
                )
        return codes

    @model_validator(mode="after")
    def _one_way_to_run(self) -> CommandParams:
        if (self.argv is None) == (self.shell is None):
            raise ValueError("give exactly one of 'argv' (a list) and 'shell' (a string)")
        if self.argv is not None:
            problem = program_problem(self.argv[0], self.env)
            if problem is not None:
                raise ProblemAt(problem, at=("argv", 0))
        return self

    def command_line(self, values: Mapping[str, str]) -> list[str]:
        """The argv run, placeholders filled in (``shell``: ``/bin/sh -c LINE``; the
        script of ``sh -c SCRIPT`` quoted as a ``shell`` line is)."""
        if self.shell is not None:
            return [SHELL, "-c", fill(self.shell, values, quote=True)]
        assert self.argv is not None
        script = shell_script_index(self.argv)
        return [fill(item, values, quote=i == script) for i, item in enumerate(self.argv)]

    def environment(self, values: Mapping[str, str]) -> dict[str, str] | None:
        """The program's environment: ours plus ``env`` (None: ours as it is, which
        spares a copy per job)."""
        if not self.env:
            return None
        return {**os.environ, **{key: fill(value, values) for key, value in self.env.items()}}


def _no_nul(text: str, *, at: Sequence[str | int]) -> None:
    if "\0" in text:
        raise ProblemAt("holds a NUL byte, which no program can receive", at=at)


def shell_script_index(argv: Sequence[str]) -> int | None:
    """Where the script is in ``argv`` when it runs a shell on one (``sh -c SCRIPT``,
    ``bash -ec SCRIPT``, ``bash -o pipefail -c SCRIPT``): argv[0]'s base name is a
    shell of :data:`SHELLS` and an option before the script holds ``c``; else None."""
    if os.path.basename(argv[0]) not in SHELLS:
        return None
    script = False
    index = 1
    while index < len(argv):
        item = argv[index]
        if item in _TAKES_VALUE:
            index += 2
            continue
        if item == "--" or not item.startswith(("-", "+")) or len(item) < 2:
            return index + (item == "--") if script else None
        if not item.startswith("--") and "c" in item[1:]:
            script = True
        index += 1
    return None


def program_problem(program: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why ``program`` (a command's argv[0]) cannot run, known before anything runs:
    named without a ``/`` (and no placeholder), it must be an executable on the PATH
    it will run with (``env``'s, else ours). A program named by a path is looked for
    when its job starts (an earlier job may build it)."""
    from asyncbatch.files.programs import located

    if "/" in program or has_placeholder(program) or not program:
        return None
    path = (env or {}).get("PATH")
    if path is not None and has_placeholder(path):
        return None  # known per job only
    merged = None if path is None else {**os.environ, "PATH": path}
    if located(program, merged) is not None:
        return None
    return f"program {program!r} not found on PATH"


def command_outputs(path: Path, params: CommandParams, job: JobContext) -> list[str]:
    """The ``outputs`` capability: the ``outputs`` param filled in for the job."""
    if not params.outputs:
        return []  # most commands: nothing to fill in (a config's load asks every job)
    values = job_values(path, job)
    return [fill(item, values) for item in params.outputs]


def command_plan(path: Path, params: CommandParams, job: JobContext) -> dict[str, Any]:
    """The ``plan`` capability: the command line after placeholders."""
    return {"command": params.command_line(job_values(path, job))}


async def command(path: Path, params: CommandParams, job: JobContext) -> Measured:
    """Run a program once per input (argv, or a shell line); exit code and output tails."""
    return await _run(path, params, job, on_file=True)


async def _run(path: Path, params: CommandParams, job: JobContext, *, on_file: bool) -> Measured:
    from asyncbatch.files.programs import Child, supervised

    streams = job.streams if job.streams is not None else Streams()
    child = Child(streams)
    return await supervised(child, _attempt, child, path, params, job, streams, on_file)


def _attempt(
    child: Child,
    path: Path,
    params: CommandParams,
    job: JobContext,
    streams: Streams,
    on_file: bool,
) -> Measured:
    """One attempt, in a daemon thread: every file system call of it too (a hung
    mount must not stop the event loop)."""
    if on_file:
        os.stat(path)  # any kind of file, a directory too; else FileNotFoundError, nothing run
    values = job_values(path, job)
    argv = params.command_line(values)
    cwd = os.fspath(job.config_dir)
    env = params.environment(values)
    try:
        finished = child.run(argv, cwd, env)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in a filled-in value
        if isinstance(exc, OSError) and exc.filename is not None and exc.filename == cwd:
            raise  # the folder it runs in is gone: not the program's fault
        raise cannot_execute(argv[0], exc, env) from None
    if finished is None:  # stopped before it started
        raise CommandFailed(reason="stopped before it started")
    details = _details(finished, streams)
    streams.finish(details, finished.resources)
    if finished.exit_code not in params.ok_exit_codes:
        raise _failure(finished, details)
    return Measured(details, finished.resources or Resources())


def _details(finished: Finished, streams: Streams) -> dict[str, Any]:
    """The result of a program's run, also a failure's ``error.details``: how it
    ended, the ends of both streams, their byte counts, and the files they were
    kept in whole (``--results``)."""
    code = finished.exit_code
    ended: dict[str, Any] = {"signal": _signal_name(-code)} if code < 0 else {"exit_code": code}
    return {
        **ended,
        "stdout": _tail(finished.stdout),
        "stderr": _tail(finished.stderr),
        "stdout_bytes": finished.stdout_bytes,
        "stderr_bytes": finished.stderr_bytes,
        **streams.files(),
    }


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _failure(finished: Finished, details: dict[str, Any]) -> CommandFailed:
    code = finished.exit_code
    if code < 0:
        name = _signal_name(-code)
        return CommandFailed(
            reason=f"killed by {name}",
            signal=name,
            output=details,
            resources=finished.resources,
        )
    lines = [line.strip() for line in details["stderr"].splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if len(last) > 200:
        last = last[:197] + "..."
    reason = f"exit status {code}" + (f": {last}" if last else "")
    return CommandFailed(
        reason=reason, exit_code=code, output=details, resources=finished.resources
    )


def cannot_execute(
    program: str, exc: OSError | ValueError, env: Mapping[str, str] | None = None
) -> CommandFailed:
    """What a program that cannot be started (with ``env``) fails with, whatever the
    reason (not found, not executable, a missing interpreter, a broken binary, too
    long an argument list, a NUL byte in an argument)."""
    if isinstance(exc, ValueError):
        reason = "an argument holds a NUL byte"
    elif exc.errno == errno.ENOENT and _exists(program, env):
        reason = "its interpreter (the #! line) was not found"
    else:
        reason = (exc.strerror or str(exc)).lower()
        reason = reason.replace("no such file or directory", "no such file")
    return CommandFailed(reason=f"cannot execute {program!r}: {reason}")


def _exists(program: str, env: Mapping[str, str] | None) -> bool:
    """Whether the file ``program`` names (on PATH, without a ``/``) exists."""
    from asyncbatch.files.programs import located

    found = program if "/" in program else located(program, env)
    return found is not None and os.path.exists(found)


def _tail(data: bytes) -> str:
    """The kept end of a stream as text: UTF-8, invalid bytes replaced (a character
    cut by the start of the kept bytes among them)."""
    return data.decode("utf-8", "replace")


COMMAND = ActionSpec(
    "command",
    command,
    CommandParams,
    binds=True,
    outputs=command_outputs,
    plan=command_plan,
    input="path",
    unconfined="a program can read and write anything",
    may_chdir=False,
    shares_params=True,
)
"""The ``command`` action and its capabilities."""


def prepared(raw: Mapping[str, Any]) -> CommandParams:
    """Params made by ``asyncbatch each``, which checks its templates before filling in
    each input's own values: taken as they are, since those values keep the real
    bytes of file names (undecodable ones too), which validation would refuse."""
    return CommandParams.model_construct(  # every field given: no default is copied
        argv=raw.get("argv"),
        shell=raw.get("shell"),
        env=raw.get("env") or {},
        ok_exit_codes=raw.get("ok_exit_codes") or [0],
        outputs=raw.get("outputs") or [],
    )


async def command_prepared(path: Path, params: dict[str, Any], job: JobContext) -> Measured:
    """Run a program once per input (argv, or a shell line); exit code and output tails."""
    return await _run(path, prepared(params), job, on_file=True)


async def command_on_argument(path: Path, params: dict[str, Any], job: JobContext) -> Measured:
    """Run a program once per argument (argv, or a shell line); exit code and output tails."""
    return await _run(path, prepared(params), job, on_file=False)


def _prepared_plan(path: Path, params: dict[str, Any], job: JobContext) -> dict[str, Any]:
    return command_plan(path, prepared(params), job)


def _prepared_outputs(path: Path, params: dict[str, Any], job: JobContext) -> list[str]:
    return command_outputs(path, prepared(params), job) if params.get("outputs") else []


COMMAND_PREPARED = dataclasses.replace(
    COMMAND,
    func=command_prepared,
    params=None,
    plan=_prepared_plan,
    outputs=_prepared_outputs,
)
"""``command`` for the jobs ``each`` makes from its inputs (:func:`prepared`)."""

COMMAND_ON_ARGUMENTS = dataclasses.replace(COMMAND_PREPARED, func=command_on_argument, input="none")
"""The same over inputs that are plain arguments, not files (``each --args``):
nothing is stat'ed, and ``--resume`` fingerprints the argument and the command."""
