"""Where a run's outputs may go: nothing the user already had is lost or overwritten.

A report, a JUnit file or a page is written only to a regular file or a name that is
free (never a directory, a device, a FIFO or a socket, never under ``/dev`` or
``/proc`` even through links), never over the config, an input of the batch, or the
report's journal or lock, and only into a folder that accepts a new file: checked
before anything runs, so that an hour of work cannot end in "cannot write report".
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from asyncbatch.errors import ConfigError, OutputError

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig
    from asyncbatch.options import RunOptions
    from asyncbatch.output.show import SavedReport


def check_outputs(options: RunOptions, config: BatchConfig) -> None:
    """Raise ``OutputError`` unless the report and JUnit file can be written where
    asked without destroying anything: before anything runs, so that an hour of
    work cannot end in "cannot write report". Each must be a regular file or absent
    (never a directory, device, FIFO or socket: ``-o /dev/stdout`` would replace the
    device), and neither may name the config file, an input of the batch, or the
    report's journal or lock. Raise ``ConfigError`` when a job declares one of these
    files as an output (a failed attempt would remove it)."""
    if options.output is None and options.junit is None:
        return  # nothing to check
    for destination in (options.output, options.junit):
        if destination is not None:
            _check_file_name(destination)
    taken = _files_of_the_run(options, config)
    for destination in (options.output, options.junit):
        if destination is not None:
            check_destination(
                destination,
                what="reports",
                taken=taken,
                taken_file=functools.partial(_input_at, config=config),
            )
    _check_job_outputs(options, config)


def _check_job_outputs(options: RunOptions, config: BatchConfig) -> None:
    """Raise ``ConfigError`` naming each job that declares as an output the report,
    its journal or lock, or the JUnit file: a failed attempt would remove it."""
    from asyncbatch.config import outputs_taken

    files = {}
    if options.output is not None:
        from asyncbatch.output.journal import journal_path, lock_path  # only with -o

        files[options.output] = "the report"
        files[journal_path(options.output)] = "the report's journal"
        files[lock_path(options.output)] = "the report's lock"
    if options.junit is not None:
        files[options.junit] = "the JUnit report"
    taken = {os.path.realpath(path): what for path, what in files.items()}
    problems = outputs_taken(config.jobs, taken, config.base_dir)
    if problems:
        raise ConfigError(problems, source=config.source)


def _files_of_the_run(options: RunOptions, config: BatchConfig) -> dict[str, str]:
    """Real paths an output may not name: the config file, the report's journal and
    lock."""
    taken = {}
    if config.source != "-":
        taken[os.path.realpath(config.source)] = "the config file"
    if options.output is not None:
        from asyncbatch.output.journal import journal_path, lock_path  # only with -o

        taken[os.path.realpath(journal_path(options.output))] = "the report's journal"
        taken[os.path.realpath(lock_path(options.output))] = "the report's lock"
    return taken


def _input_at(identity: tuple[int, int] | None, *, config: BatchConfig) -> str | None:
    """``an input of the batch (job NAME)`` when a job reads the file ``identity``
    names (links and other names of the same file included)."""
    if identity is None:
        return None
    seen: set[Path] = set()
    for job in config.jobs:
        if job.path in seen:
            continue
        seen.add(job.path)
        try:
            info = os.stat(job.path)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == identity:
            return f"an input of the batch (job {job.name!r})"
    return None


def check_page(destination: Path, report: SavedReport) -> None:
    """Raise ``OutputError`` unless ``show --html`` may write its page at
    ``destination``: the rules of ``-o`` (a regular file or absent, never under
    ``/dev`` or ``/proc``), and never the report shown, its journal or lock, its
    config or an input its jobs name (any name or link of them). The report says
    where the config was as it was typed: it is looked for from the current folder
    and from the report's, and inputs from the config's folder (the current one for
    ``-`` and ``each``)."""
    from asyncbatch.output.journal import journal_path, lock_path

    shown = Path(report.path)
    taken = {
        os.path.realpath(shown): "the report shown",
        os.path.realpath(journal_path(shown)): "the report's journal",
        os.path.realpath(lock_path(shown)): "the report's lock",
    }
    check_destination(
        destination,
        what="pages",
        taken=taken,
        taken_file=functools.partial(_named_in_report, report=report),
    )


def _named_in_report(identity: Identity, *, report: SavedReport) -> str | None:
    """``the report's config`` or ``an input named in the report (job NAME)`` when
    the file ``identity`` names is one of them, where it can be found."""
    folders = dict.fromkeys([Path.cwd(), Path(report.path).absolute().parent])
    config_dirs = [*folders]
    if report.config:
        for folder in folders:
            config = folder / report.config
            if _identity(config) == identity:
                return "the report's config"
            if config.is_file():
                config_dirs.insert(0, config.parent)
    for folder in dict.fromkeys(config_dirs):
        for job in report.jobs:
            if job.input and _identity(folder / job.input) == identity:
                return f"an input named in the report (job {job.name!r})"
    return None


def _identity(path: Path) -> Identity | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):  # absent, unreachable, or a NUL in the name
        return None
    return (info.st_dev, info.st_ino)


def check_output_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputError` unless a report can be written at ``path``:
    checked before any job starts, by creating (and removing) a file there."""
    target = Path(path)
    label = os.fspath(path)
    if target.is_dir():
        raise OutputError(path=label, reason="is a directory")
    parent = target.parent
    if not parent.is_dir():
        reason = (
            "its folder does not exist" if not parent.exists() else "its parent is not a folder"
        )
        raise OutputError(path=label, reason=reason)
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".probe")
    except OSError as exc:
        raise OutputError(path=label, reason=exc.strerror or str(exc)) from None
    os.close(fd)
    os.unlink(probe)


Identity = tuple[int, int]
"""A file's (device, inode): the same file under any name or link."""


def check_destination(
    path: Path,
    *,
    what: str,
    taken: Mapping[str, str] | None = None,
    taken_file: Callable[[Identity], str | None] | None = None,
) -> None:
    """Raise :class:`OutputError` unless writing ``what`` (``"reports"``,
    ``"pages"``) at ``path`` destroys nothing: it must be a regular file or absent
    (never a directory, device, FIFO or socket), outside ``/dev`` and ``/proc``
    even through links, not one of the real paths in ``taken`` nor a file
    ``taken_file`` names (each maps to what it is, for the message), and its
    folder must accept a new file."""
    label = os.fspath(path)
    _check_file_name(path)
    if reaches_system_files(path):
        reason = "is a system path (a device or a process's stream); it would be replaced"
        raise OutputError(path=label, reason=reason)
    try:
        info = os.stat(path)
    except OSError:  # absent (or unreachable: the write check says why)
        info = None
    if info is not None:
        from asyncbatch.files.scan import file_kind

        kind = file_kind(info.st_mode)
        if kind is not None:
            raise OutputError(
                path=label, reason=f"is a {kind}; {what} are written to regular files only"
            )
    found = (taken or {}).get(os.path.realpath(path))
    if found is None and info is not None and taken_file is not None:
        found = taken_file((info.st_dev, info.st_ino))
    if found is not None:
        raise OutputError(path=label, reason=f"is {found}; it would be overwritten")
    check_output_writable(path)


def _check_file_name(path: str | os.PathLike[str]) -> None:
    """An output names a file: not ``''``, ``.``, ``/`` nor ``..`` (whose name is empty
    or a folder's)."""
    if Path(path).name in ("", ".."):
        raise OutputError(path=repr(os.fspath(path)), reason="names a folder, not a file")


SYSTEM_FOLDERS = ("/dev", "/proc")
"""Where an output never goes: ``-o /dev/stdout`` with stdout redirected to a file is
a link to a regular file, and renaming the report over it would replace the link,
for every program on the machine."""


def reaches_system_files(path: Path) -> bool:
    """Whether ``path``, or any symbolic link on the way to what it names, lies in a
    system folder (``/dev/stdout``, ``/dev/fd/1``, ``/proc/self/fd/1``)."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if any(current == top or current.startswith(top + os.sep) for top in SYSTEM_FOLDERS):
            return True
        try:
            target = os.readlink(current)
        except OSError:  # not a link (or gone): the end of the chain
            return False
        current = os.path.abspath(os.path.join(os.path.dirname(current), target))
    return False
