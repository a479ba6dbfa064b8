"""How many slots jobs take: checked against the named limits when the config
loads (``"limits": {"gpu": 2}`` needs a pool ``gpu`` of 2 or more), and against
the run's concurrency once that is known (``slots``: ``-j`` may come from the
command line), each problem located where the config asks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from asyncbatch.config._models import BatchConfig, Defaults, JobConfig
from asyncbatch.errors import ConfigError

DEFAULT_CONCURRENCY = 4
"""Jobs at once when neither ``-j`` nor the config's ``max_concurrency`` says."""


def check_limits(
    entries: Sequence[tuple[int, JobConfig, Any, Any]], declared: dict[str, Any]
) -> Iterable[str]:
    """Every limit a job names must be declared; a weight (``{"gpu": 2}``) must be
    at least 1 and at most the pool's size."""
    names = ", ".join(sorted(declared)) or "none"
    for index, job, _, _ in entries:
        if isinstance(job.limits, list):
            for k, limit in enumerate(job.limits):
                if limit not in declared:
                    yield f"jobs[{index}].limits[{k}]: unknown limit {limit!r} (declared: {names})"
            continue
        for limit, weight in job.limits.items():
            where = f"jobs[{index}].limits.{limit}"
            size = declared.get(limit)
            if limit not in declared:
                yield f"{where}: unknown limit {limit!r} (declared: {names})"
            elif weight < 1:
                yield f"{where}: Input should be greater than or equal to 1"
            elif type(size) is int and weight > size:
                yield f"{where}: takes {weight} slots of {limit!r}, which has {size}"


def weighted(
    entries: Sequence[tuple[int, JobConfig, Any, Any]], defaults: Defaults | None
) -> list[tuple[str, str, int]]:
    """The config jobs that take more than one slot: where that is asked (the job's
    ``slots``, or ``defaults.slots``), the job's name and the slots."""
    default = defaults.slots if defaults is not None else None
    found = []
    for index, job, _, _ in entries:
        if job.slots is not None and job.slots > 1:
            found.append((f"jobs[{index}].slots", job.name, job.slots))
        elif job.slots is None and default is not None and default > 1:
            found.append(("defaults.slots", job.name, default))
    return found


def concurrency(config: BatchConfig, option: int | None) -> int:
    """The run's concurrency: ``-j`` (``option``), else the config's, else 4."""
    if option is not None:
        return option
    return config.max_concurrency if config.max_concurrency is not None else DEFAULT_CONCURRENCY


def check_slots(config: BatchConfig, option: int | None) -> None:
    """Raise :class:`ConfigError` when a job of ``config`` takes more slots than the
    run has (``option``: ``-j``, else the config's ``max_concurrency``, else 4),
    located where the config asks."""
    limit = concurrency(config, option)
    if not config.weighted:
        return
    running = {job.group for job in config.jobs}
    problems = [
        f"{where}: takes {slots} slots, more than the run's {limit} (-j, else max_concurrency)"
        for where, name, slots in config.weighted
        if slots > limit and name in running
    ]
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)), source=config.source)
