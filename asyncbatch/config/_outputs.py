"""Outputs destroy nothing that is not theirs: checked when the config loads.

An output (a file a job's action declares it creates, :meth:`Job.outputs`) is removed
when an attempt that created or changed it fails, as make's ``.DELETE_ON_ERROR``
does. So no output may be another job's output (the failing one would remove the
good one's result), the config, an input of a job that does not wait for the job
writing it (the job's own input included), a device, FIFO or socket, or a path under
``/dev`` or ``/proc``: each is a problem naming the jobs, and nothing runs. An input
that is an upstream job's output (``link`` reads ``build/app.o``, which ``compile``
declares, and depends on ``compile``) is a pipeline, and fine.

Paths are compared as the file system has them: the folder's real path (links
resolved, ``..`` gone) and the name as written, and, for files that already exist,
by identity (a hard link or a symbolic link to the same file is the same file).
Nothing is opened: only folders are resolved and existing outputs stat'ed, so a
config whose jobs declare no outputs costs nothing here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from asyncbatch.config._graph import with_dependencies
from asyncbatch.files.scan import file_kind

if TYPE_CHECKING:
    from pathlib import Path

    from asyncbatch.config._models import Job

SYSTEM_FOLDERS = ("/dev", "/proc")
"""Where no output may be: devices and processes' streams."""


def check_job_outputs(
    jobs: Sequence[Job], config_file: str | None, position: dict[str, int], base_dir: Path
) -> list[str]:
    """The problems of the outputs ``jobs`` declare (see the module doc), each
    located at its job (``jobs[i] (NAME): ...``; ``position`` maps a config job's
    name to its index). ``config_file`` is the config's path (None: no file)."""
    declaring = [job for job in jobs if job.spec is not None and job.spec.outputs is not None]
    if not declaring:
        return []
    checker = _Checker(jobs, config_file, position, base_dir)
    for job in declaring:
        checker.check(job)
    return checker.problems


def outputs_taken(jobs: Sequence[Job], taken: Mapping[str, str], base_dir: Path) -> list[str]:
    """Problems of the outputs of ``jobs`` that are files of the run itself: ``taken``
    maps real paths (the report, its journal and lock) to what they are. Known only
    to the run (``-o``), so checked there, ``--dry-run`` included."""
    checker = _Checker(jobs, None, {}, base_dir)
    taken = {checker.real(path): what for path, what in taken.items()}
    problems = []
    for job in jobs:
        if job.spec is None or job.spec.outputs is None:
            continue
        for output in checker.outputs_of(job):
            real = checker.real(output)
            what = taken.get(real)
            if what is None and os.path.islink(output):  # another name of the file
                what = taken.get(checker.real(os.path.realpath(output)))
            if what is not None:
                shown = checker.shown(output)
                problems.append(
                    f"job {job.name!r}: output {shown!r} is {what}; "
                    "a failed attempt would remove it"
                )
    return problems


class _Checker:
    def __init__(
        self,
        jobs: Sequence[Job],
        config_file: str | None,
        position: dict[str, int],
        base_dir: Path,
    ) -> None:
        self._jobs = jobs
        self._position = position
        self._base = os.fspath(base_dir)
        self._folders: dict[str, tuple[str, bool]] = {}
        self._config = None if config_file is None else self.real(os.path.abspath(config_file))
        self._config_identity = None if config_file is None else _identity(config_file)
        self._by_path: dict[str, Job] = {}
        self._by_identity: dict[tuple[int, int], Job] = {}
        self._inputs: dict[str, list[Job]] | None = None
        self._input_identities: dict[tuple[int, int], list[Job]] | None = None
        self._upstream: dict[tuple[str, ...], set[str]] = {}
        self.problems: list[str] = []

    def outputs_of(self, job: Job) -> list[str]:
        """:meth:`Job.outputs`, without a ``Path`` object per output; none when the
        action's function fails (the run says so, as the job's error)."""
        assert job.spec is not None
        assert job.spec.outputs is not None
        try:
            outputs = job.spec.outputs(job.path, job.params, job.context())
        except Exception:  # noqa: BLE001 - a plugin's outputs function failed
            return []
        if not outputs:
            return []
        folder = os.fspath(job.config_dir) + os.sep
        return list(
            dict.fromkeys(each if each[:1] == os.sep else folder + each for each in outputs)
        )

    def check(self, job: Job) -> None:
        for output in self.outputs_of(job):
            real = self.real(output)
            info = _stat(real)
            identity = None if info is None else (info.st_dev, info.st_ino)
            problem = self._problem(job, real, info, identity)
            if problem is not None:
                self.problems.append(f"{self._where(job)}: output {self.shown(output)!r} {problem}")

    def _problem(
        self, job: Job, real: str, info: os.stat_result | None, identity: tuple[int, int] | None
    ) -> str | None:
        if any(real == top or real.startswith(top + os.sep) for top in SYSTEM_FOLDERS):
            return "is a system path (a device or a process's stream)"
        if info is not None:
            kind = file_kind(info.st_mode)
            if kind not in (None, "directory"):
                return f"is a {kind}; outputs are regular files or folders"
        if real == self._config or (identity is not None and identity == self._config_identity):
            return "is the config file; a failed attempt would remove it"
        owner = self._by_path.setdefault(real, job)
        if owner is job and identity is not None:
            owner = self._by_identity.setdefault(identity, job)
        if owner is not job:
            return (
                f"is also an output of job {owner.name!r}; two jobs may not declare one output "
                "(a failed attempt of one would remove the other's)"
            )
        for reader in self._readers(real, identity):
            if reader is job:
                return "is the job's own input; a failed attempt would remove it"
            if job.name not in self._upstream_of(reader):
                return (
                    f"is an input of job {reader.name!r}, which does not depend on "
                    f"{job.name!r}; a failed attempt would remove it"
                )
        return None

    def _readers(self, real: str, identity: tuple[int, int] | None) -> Iterator[Job]:
        """The jobs whose input is the file at ``real`` (by path, or by identity)."""
        if self._inputs is None:
            self._inputs = {}
            for job in self._jobs:
                if job.spec is None or job.spec.input != "none":
                    self._inputs.setdefault(self.real(os.fspath(job.path)), []).append(job)
        yield from self._inputs.get(real, ())
        if identity is None:
            return
        if self._input_identities is None:
            self._input_identities = {}
            for path, readers in self._inputs.items():
                found = _identity(path)
                if found is not None:
                    self._input_identities.setdefault(found, []).extend(readers)
        yield from self._input_identities.get(identity, ())

    def _upstream_of(self, job: Job) -> set[str]:
        """The names of the jobs ``job`` waits for, transitively (and its own)."""
        key = job.depends_on
        found = self._upstream.get(key)
        if found is None:
            try:
                found = {each.name for each in with_dependencies(self._jobs, key)}
            except KeyError:  # an unknown name: a problem of its own already
                found = set()
            self._upstream[key] = found
        return found | {job.name}

    def real(self, path: str) -> str:
        """``path`` with its folder's links and ``..`` resolved, and its name in one
        case where the file system ignores case (folders cached)."""
        cut = path.rfind(os.sep)
        folder, name = (path[:cut] or os.sep, path[cut + 1 :]) if cut >= 0 else ("", path)
        if name in ("", ".", ".."):
            folder, name = path, ""
        found = self._folders.get(folder)
        if found is None:
            real = os.path.realpath(folder)
            found = self._folders[folder] = (real, _ignores_case(real))
        real, caseless = found
        if not name:
            return real
        return f"{real.rstrip(os.sep)}{os.sep}{name.casefold() if caseless else name}"

    def _where(self, job: Job) -> str:
        index = self._position.get(job.group)
        where = "jobs" if index is None else f"jobs[{index}]"
        return f"{where} ({job.name})"

    def shown(self, output: str) -> str:
        """An output as the config's folder sees it (absolute when outside it)."""
        relative = os.path.relpath(output, self._base)
        return output if relative.startswith("..") else relative


def _ignores_case(folder: str) -> bool:
    """Whether the file system of ``folder`` (or of its nearest existing parent)
    ignores case (macOS, Windows shares): that folder found again under its name in
    the other case. Then ``build/X.o`` and ``build/x.o`` are one file."""
    while not os.path.isdir(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    while True:
        parent, name = os.path.split(folder)
        if name.swapcase() != name:
            try:
                return os.path.samefile(folder, os.path.join(parent, name.swapcase()))
            except OSError:  # no such name: case counts
                return False
        if parent == folder:
            return False  # no letter on the way to the root to tell by
        folder = parent


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):  # absent (the usual case), or unreachable
        return None


def _identity(path: str) -> tuple[int, int] | None:
    info = _stat(path)
    return None if info is None else (info.st_dev, info.st_ino)
