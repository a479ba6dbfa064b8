"""The ``command`` action: run a program once per input, like a Makefile rule.

An ordinary action that declares its capabilities (:data:`COMMAND`): it binds to its
job (the placeholders need the job's name, number and slot), its outputs are the
templates of its ``outputs`` param, its plan line is the command line, its input may
be any path (a folder too), and ``--root`` refuses it (a program can read anything).
The engine makes the outputs' folders, checks them and removes them after a failed
attempt, as for any action that declares outputs.

Placeholders (:mod:`asyncbatch.placeholders`) are checked when the config loads and
filled in per job; under ``shell`` each value is inserted shell-quoted. The program
runs in the config's folder, stdin from ``/dev/null``, in a process group of its own,
from a daemon thread (:mod:`asyncbatch.files.programs`); a cancelled attempt (a
timeout, fail-fast, a signal) ends the whole group, SIGTERM then SIGKILL after 2 s.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from asyncbatch.errors import CommandFailed
from asyncbatch.placeholders import (
    OUTPUT_PLACEHOLDERS,
    check_templates,
    fill,
    has_placeholder,
    job_values,
    template_problem,
)
from asyncbatch.registry import ActionSpec, JobContext

if TYPE_CHECKING:
    from asyncbatch.files.programs import Child

SHELL = "/bin/sh"


class CommandParams(BaseModel):
    """Params of ``command``: exactly one of ``argv`` and ``shell``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    argv: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The program and its arguments, run without a shell; placeholders "
        "such as {input} are filled in.",
    )
    shell: str | None = Field(
        default=None,
        min_length=1,
        description="A command line for /bin/sh -c; placeholders are inserted shell-quoted.",
    )
    env: dict[str, str] = Field(default={}, description="Variables added to the environment.")
    ok_exit_codes: list[int] = Field(
        default=[0], min_length=1, description="Exit codes that count as success."
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
            check_templates([template])
        return template

    @field_validator("env")
    @classmethod
    def _env_templates(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if not key or "=" in key or "\0" in key:
                raise ValueError(f"{key!r} is not a variable name")
        check_templates(env.values())
        return env

    @model_validator(mode="after")
    def _one_way_to_run(self) -> CommandParams:
        if (self.argv is None) == (self.shell is None):
            raise ValueError("give exactly one of 'argv' (a list) and 'shell' (a string)")
        return self

    def command_line(self, values: Mapping[str, str]) -> list[str]:
        """The argv run, placeholders filled in (``shell``: ``/bin/sh -c LINE``)."""
        if self.shell is not None:
            return [SHELL, "-c", fill(self.shell, values, quote=True)]
        assert self.argv is not None
        return [fill(item, values) for item in self.argv]

    def environment(self, values: Mapping[str, str]) -> dict[str, str] | None:
        """The program's environment: ours plus ``env`` (None: ours as it is, which
        spares a copy per job)."""
        if not self.env:
            return None
        return {**os.environ, **{key: fill(value, values) for key, value in self.env.items()}}


def command_outputs(path: Path, params: CommandParams, job: JobContext) -> list[str]:
    """The ``outputs`` capability: the ``outputs`` param filled in for the job."""
    if not params.outputs:
        return []  # most commands: nothing to fill in (a config's load asks every job)
    values = job_values(path, job)
    return [fill(item, values) for item in params.outputs]


def command_plan(path: Path, params: CommandParams, job: JobContext) -> dict[str, Any]:
    """The ``plan`` capability: the command line after placeholders."""
    return {"command": params.command_line(job_values(path, job))}


async def command(path: Path, params: CommandParams, job: JobContext) -> dict[str, Any]:
    """Run a program once per input (argv, or a shell line); exit code and output tails."""
    from asyncbatch.files.programs import Child, supervised

    child = Child()
    return await supervised(child, _attempt, child, path, params, job)


def _attempt(child: Child, path: Path, params: CommandParams, job: JobContext) -> dict[str, Any]:
    """One attempt, in a daemon thread: every file system call of it too (a hung
    mount must not stop the event loop)."""
    os.stat(path)  # any kind of file, a directory too; else FileNotFoundError, nothing run
    values = job_values(path, job)
    argv = params.command_line(values)
    try:
        finished = child.run(argv, os.fspath(job.config_dir), params.environment(values))
    except OSError as exc:
        if exc.filename is None or os.fspath(exc.filename) == argv[0]:
            raise cannot_execute(argv[0], exc) from None
        raise
    if finished is None:  # stopped before it started
        raise CommandFailed(reason="stopped before it started")
    if finished.exit_code not in params.ok_exit_codes:
        raise _failure(finished.exit_code, _tail(finished.stderr))
    return {
        "exit_code": finished.exit_code,
        "stdout": _tail(finished.stdout),
        "stderr": _tail(finished.stderr),
        "stdout_bytes": finished.stdout_bytes,
        "stderr_bytes": finished.stderr_bytes,
    }


def _failure(exit_code: int, stderr: str) -> CommandFailed:
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return CommandFailed(reason=f"killed by {name}", stderr=stderr)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if len(last) > 200:
        last = last[:197] + "..."
    reason = f"exit status {exit_code}" + (f": {last}" if last else "")
    return CommandFailed(reason=reason, stderr=stderr)


def cannot_execute(program: str, exc: OSError) -> CommandFailed:
    """What a program that cannot be started fails with."""
    reason = (exc.strerror or str(exc)).lower().replace("no such file or directory", "no such file")
    return CommandFailed(reason=f"cannot execute {program!r}: {reason}")


def _tail(data: bytes) -> str:
    """The kept end of a stream as text: UTF-8, invalid bytes replaced (a character
    cut by the start of the kept bytes among them)."""
    return data.decode("utf-8", "replace")


def program_problems(argv: Sequence[str]) -> list[str]:
    """What is wrong with ``-- PROGRAM [ARG]...`` of ``asyncbatch each``, located on
    the command line (``argv[1] '{stme}': unknown placeholder ...``)."""
    if not argv:
        return ["-- needs a PROGRAM after it"]
    found = []
    for index, item in enumerate(argv):
        problem = template_problem(item)
        if problem is not None and problem.startswith("unknown placeholder"):
            problem += "; write {{ and }} for literal braces"
        if problem is not None:
            found.append(f"argv[{index}] {item!r}: {problem}")
    return found


def program_params(argv: Sequence[str], given: str, *, matched: bool) -> dict[str, Any]:
    """The params of the ``command`` job that runs ``argv`` for the input ``given`` on
    the command line (``matched``: a glob, each match named by its path): when no
    argument holds a placeholder, the input as given is appended as the last
    argument, as xargs and GNU parallel do."""
    templates = list(argv)
    if not any(has_placeholder(template) for template in templates):
        # A glob's match is its job's name; a plain path is written out, its
        # braces doubled (an argument is a template).
        templates.append("{name}" if matched else given.replace("{", "{{").replace("}", "}}"))
    return {"argv": templates}


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
