"""Config jobs expanded into runnable jobs: one per job, or one per file a glob
input matches, each checked against ``--root``; names made unambiguous."""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from asyncbatch.config._globs import GlobTooBroad, glob_files, printable
from asyncbatch.config._models import NO_LIMITS, Defaults, Job, JobConfig, LoadLimits, RetryOn
from asyncbatch.errors import OutsideRoot, UnknownAction
from asyncbatch.files.confine import check_path
from asyncbatch.registry import ActionSpec

_GLOB_CHARS = re.compile(r"[*?[]")


def expand_jobs(
    entries: Sequence[tuple[int, JobConfig, ActionSpec | None, Any]],
    base_dir: Path,
    problems: list[str],
    root: str | None,
    limits: LoadLimits,
    *,
    defaults: Defaults | None = None,
    name_matches_by_path: bool = False,
    literal_inputs: bool = False,
) -> list[Job]:
    """One Job per config job, or per matching regular file for a glob input
    (named ``job[path]``, or just ``path`` with ``name_matches_by_path``, and shown
    with undecodable bytes as ``\\xNN``); a glob too broad to expand is a problem.
    With ``literal_inputs`` no input is a glob (each names a file as it is, shown
    as a match is). Under ``root``, each job (each glob match) whose input resolves
    outside it gets ``OutsideRoot`` as its start error. A job without its own
    ``slots`` or ``retry_on`` takes those of ``defaults``."""
    defaults = defaults or Defaults()
    default_retry_on = None if defaults.retry_on is None else RetryOn.of(defaults.retry_on)
    jobs: list[Job] = []
    for index, config_job, spec, params in entries:
        start_error: Exception | None = None
        if spec is None:
            start_error = UnknownAction(action=config_job.action)
        common = {
            "action": config_job.action,
            "params": params,
            "spec": spec,
            "group": config_job.name,
            "timeout": config_job.timeout,
            "retries": config_job.retries,
            "limits": _weights(config_job.limits),
            "slots": config_job.slots or defaults.slots or 1,
            "retry_on": default_retry_on
            if config_job.retry_on is None
            else RetryOn.of(config_job.retry_on),
            "retry_delay": config_job.retry_delay,
            "raw_params": config_job.params,
            "config_dir": base_dir,
        }
        pattern = config_job.input
        if not literal_inputs and is_glob(pattern):
            matches = _glob(pattern, base_dir, limits, f"jobs[{index}].input", problems)
            for match in matches:
                shown = printable(match)
                path = base_dir / match
                name = shown if name_matches_by_path else f"{config_job.name}[{shown}]"
                jobs.append(
                    Job(
                        name=name,
                        input=shown,
                        path=path,
                        start_error=start_error or _outside(path, shown, root),
                        number=len(jobs) + 1,
                        **common,
                    )
                )
            if matches:
                continue
            start_error = start_error or FileNotFoundError(errno.ENOENT, "no file matches", pattern)
        path = base_dir / pattern
        jobs.append(
            Job(
                name=config_job.name,
                input=printable(pattern) if literal_inputs else pattern,
                path=path,
                start_error=start_error or _outside(path, pattern, root),
                number=len(jobs) + 1,
                **common,
            )
        )
    return jobs


def _weights(limits: list[str] | dict[str, int]) -> Mapping[str, int]:
    """A job's named limits with the slots it takes of each (a list: one of each)."""
    if not limits:
        return NO_LIMITS
    if isinstance(limits, list):
        return dict.fromkeys(limits, 1)
    return dict(limits)


def is_glob(pattern: str) -> bool:
    """Whether a job's input is a glob (holds ``*``, ``?`` or ``[``)."""
    return _GLOB_CHARS.search(pattern) is not None


def _glob(
    pattern: str, base_dir: Path, limits: LoadLimits, where: str, problems: list[str]
) -> list[str]:
    """The glob's matches; one too broad to expand is a problem (and no match)."""
    try:
        return glob_files(
            pattern,
            base_dir,
            max_matches=limits.max_glob_matches,
            max_entries=limits.max_glob_entries,
        )
    except GlobTooBroad as exc:
        problems.append(f"{where}: {exc}")
        return []


def _outside(path: Path, shown: str, root: str | None) -> OutsideRoot | None:
    """``OutsideRoot`` if ``path`` resolves outside ``root`` (links followed)."""
    if root is None:
        return None
    try:
        check_path(path, root, shown)
    except OutsideRoot as exc:
        return exc
    except (OSError, ValueError):  # cannot be resolved: the run reports it as it fails
        return None
    return None


def first_of_each(jobs: list[Job]) -> list[Job]:
    """The jobs without repeats: a file reached twice under the same name (given
    twice, or matched by two globs) is one job, the first."""
    seen: set[tuple[str, Path]] = set()
    kept: list[Job] = []
    for job in jobs:
        key = (job.name, job.path)
        if key not in seen:
            seen.add(key)
            job.number = len(kept) + 1
            kept.append(job)
    return kept


def check_expanded_names(jobs: list[Job]) -> Iterable[str]:
    """A glob expansion named like another job (``logs[a.log]``), or two files of
    one glob shown alike (``\\xff`` is also how an undecodable byte is shown), would
    make the report ambiguous."""
    seen: dict[str, Job] = {}
    for job in jobs:
        other = seen.setdefault(job.name, job)
        if other is not job and job.group != other.group:
            yield (
                f"jobs: {job.name!r} is the name of a glob expansion of {job.group!r} "
                f"and also of a job from {other.group!r}; rename one of them"
            )
        elif other is not job and job.input == other.input and job.path != other.path:
            yield f"jobs: two files of the glob {job.group!r} are shown as {job.input!r}"
