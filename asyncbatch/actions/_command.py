"""The ``command`` action: run a program once per input, like a Makefile rule.

Placeholders (``{input}``, ``{name}``, ``{stem}``, ``{suffix}``, ``{parent}``,
``{config_dir}``; ``{{`` and ``}}`` for braces) are checked when the config loads and
filled in per job; under ``shell`` each value is inserted shell-quoted, so a file
named ``a b;$(touch x).txt`` is one argument, never code. The program runs in the
config's folder, stdin from ``/dev/null``, in a process group of its own, from a
daemon thread (:mod:`asyncbatch.files._process`); a cancelled attempt (a timeout,
fail-fast, a signal) ends the whole group, SIGTERM then SIGKILL after 2 s, and
removes the outputs it created or changed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import string
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from asyncbatch.errors import CommandFailed, MissingOutput
from asyncbatch.registry import ActionSpec

if TYPE_CHECKING:
    from asyncbatch.files._process import Child

PLACEHOLDERS = ("input", "name", "stem", "suffix", "parent", "config_dir")
"""What a template may name: see the module docstring."""
SHELL = "/bin/sh"


def is_command(spec: ActionSpec) -> bool:
    """Whether ``spec`` is the built-in ``command`` (refused under ``--root``)."""
    return spec.origin == "builtin" and spec.name == "command"


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a valid template (None if it is)."""
    try:
        fields = [
            (name, spec, conv) for _, name, spec, conv in _parse(template) if name is not None
        ]
    except ValueError as exc:  # a lone { or }
        return f"{exc} (write {{{{ and }}}} for literal braces)".replace("'", "")
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS or spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            known = ", ".join(f"{{{known}}}" for known in PLACEHOLDERS)
            return f"unknown placeholder {{{shown}}} (known: {known})"
    return None


def has_placeholder(template: str) -> bool:
    """Whether ``template`` names a placeholder (a valid template is assumed)."""
    return any(name is not None for _, name, _, _ in _parse(template))


def fill(template: str, values: Mapping[str, str], quote: bool = False) -> str:
    """``template`` with its placeholders replaced (shell-quoted with ``quote``)."""
    parts = []
    for literal, name, _, _ in _parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(shlex.quote(values[name]) if quote else values[name])
    return "".join(parts)


def _parse(template: str) -> Iterable[tuple[str, str | None, str | None, str | None]]:
    return string.Formatter().parse(template)


def _check_templates(templates: list[str]) -> list[str]:
    for template in templates:
        problem = template_problem(template)
        if problem is not None:
            raise ValueError(problem)
    return templates


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

    _name: str = PrivateAttr(default="")
    _config_dir: str = PrivateAttr(default=".")

    @field_validator("argv", "outputs")
    @classmethod
    def _templates(cls, templates: list[str] | None) -> list[str] | None:
        return None if templates is None else _check_templates(templates)

    @field_validator("shell")
    @classmethod
    def _shell_template(cls, template: str | None) -> str | None:
        return None if template is None else _check_templates([template])[0]

    @field_validator("env")
    @classmethod
    def _env_templates(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if not key or "=" in key or "\0" in key:
                raise ValueError(f"{key!r} is not a variable name")
        _check_templates(list(env.values()))
        return env

    @model_validator(mode="after")
    def _one_way_to_run(self) -> CommandParams:
        if (self.argv is None) == (self.shell is None):
            raise ValueError("give exactly one of 'argv' (a list) and 'shell' (a string)")
        return self

    def for_job(self, name: str, config_dir: Path) -> CommandParams:
        """These params for one job: its name and the config's folder, which the
        placeholders and the working directory need."""
        bound = self.model_copy()
        bound._name = name
        bound._config_dir = os.fspath(config_dir)
        return bound

    @property
    def config_dir(self) -> str:
        return self._config_dir

    def values(self, path: str | os.PathLike[str]) -> dict[str, str]:
        """The placeholders' values for the input at ``path``."""
        where = Path(os.path.abspath(path))
        return {
            "input": os.fspath(where),
            "name": self._name,
            "stem": where.stem,
            "suffix": where.suffix,
            "parent": os.fspath(where.parent),
            "config_dir": self._config_dir,
        }

    def command_line(
        self, path: str | os.PathLike[str], values: Mapping[str, str] | None = None
    ) -> list[str]:
        """The argv run for the input at ``path`` (``shell``: ``/bin/sh -c LINE``)."""
        values = self.values(path) if values is None else values
        if self.shell is not None:
            return [SHELL, "-c", fill(self.shell, values, quote=True)]
        assert self.argv is not None
        return [fill(item, values) for item in self.argv]

    def environment(
        self, path: str | os.PathLike[str], values: Mapping[str, str] | None = None
    ) -> dict[str, str] | None:
        """The program's environment: ours plus ``env`` (None: ours as it is, which
        spares a copy per job)."""
        if not self.env:
            return None
        values = self.values(path) if values is None else values
        return {**os.environ, **{key: fill(value, values) for key, value in self.env.items()}}

    def output_paths(
        self, path: str | os.PathLike[str], values: Mapping[str, str] | None = None
    ) -> list[str]:
        """The declared outputs for the input at ``path``, absolute."""
        values = self.values(path) if values is None else values
        return [os.path.join(self._config_dir, fill(item, values)) for item in self.outputs]


async def run_command(path: Path, params: CommandParams) -> dict[str, Any]:
    """The command's result; raises CommandFailed or MissingOutput (see the module)."""
    from asyncbatch.files._process import Child, supervised

    child = Child()
    return await supervised(child, _attempt, child, path, params)


def _attempt(child: Child, path: Path, params: CommandParams) -> dict[str, Any]:
    """One attempt, in a daemon thread: every file system call of it too (a hung
    mount must not stop the event loop)."""
    os.stat(path)  # any kind of file, a directory too; else FileNotFoundError, nothing run
    values = params.values(path)
    outputs = params.output_paths(path, values)
    before = {output: _identity(output) for output in outputs}
    argv = params.command_line(path, values)
    try:
        for output in outputs:
            os.makedirs(os.path.dirname(output), exist_ok=True)
        try:
            finished = child.run(argv, params.config_dir, params.environment(path, values))
        except OSError as exc:
            if exc.filename is None or os.fspath(exc.filename) == argv[0]:
                raise cannot_execute(argv[0], exc) from None
            raise
        if finished is None:  # stopped before it started
            raise CommandFailed(reason="stopped before it started")
        if finished.exit_code not in params.ok_exit_codes:
            raise _failure(finished.exit_code, _tail(finished.stderr))
        missing = [output for output in outputs if not os.path.lexists(output)]
        if missing:
            raise MissingOutput(paths=[_shown(output, params.config_dir) for output in missing])
    except BaseException:
        _remove_changed(before)
        raise
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


def _shown(output: str, config_dir: str) -> str:
    relative = os.path.relpath(output, config_dir)
    return output if relative.startswith("..") else relative


def _identity(path: str) -> tuple[int, int, int, int] | None:
    """What tells whether ``path`` was created or changed since (None: absent)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _remove_changed(before: Mapping[str, tuple[int, int, int, int] | None]) -> None:
    """Remove each output that is not as it was before the attempt (make's
    ``.DELETE_ON_ERROR``): no half-written file passes for a result."""
    for output, identity in before.items():
        now = _identity(output)
        if now is not None and now != identity:
            with contextlib.suppress(IsADirectoryError, PermissionError, FileNotFoundError):
                os.unlink(output)
