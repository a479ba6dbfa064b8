"""The ``--dry-run`` plan: what would run, and what would go wrong, without
opening a single input (``stat`` only)."""

from __future__ import annotations

import os
import stat
from typing import Any

from asyncbatch.config import BatchConfig, Job
from asyncbatch.errors import describe_error


def dry_run_plan(config: BatchConfig) -> dict[str, Any]:
    """The plan: ``{"valid", "total_jobs", "jobs": [{name, action, input, depends_on,
    warnings}]}``, ``depends_on`` as written in the config (a glob job's name, not
    its expansions: a glob depending on a glob stays linear in size). When the
    config declares named limits, the plan shows them at the top (``"limits"``)
    and on each job that needs some; an action that declares a ``plan`` capability
    adds its keys (a program's job: the argv it runs, placeholders filled in)."""
    plan: dict[str, Any] = {"valid": True, "total_jobs": len(config.jobs)}
    if config.limits:
        plan["limits"] = dict(config.limits)
    plan["jobs"] = [_planned(job) for job in config.jobs]
    return plan


def _planned(job: Job) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": job.name,
        "action": job.action,
        "input": job.input,
        "depends_on": list(job.depends_on),
    }
    if job.limits:
        entry["limits"] = list(job.limits)
    if job.spec is not None and job.spec.plan is not None:
        entry.update(job.spec.plan(job.path, job.params, job.context()))
    entry["warnings"] = _job_warnings(job)
    return entry


def _job_warnings(job: Job) -> list[str]:
    if job.start_error is not None:
        error = describe_error(job.start_error)
        return [f"{error['type']}: {error['message']}"]
    wanted = job.spec.input if job.spec is not None else "file"
    if wanted == "none":
        return []  # the input is not a file: nothing to look at
    try:
        mode = os.stat(job.path).st_mode
    except FileNotFoundError:
        return [f"FileNotFoundError: {job.input}: no such file"]
    except OSError as exc:  # a symbolic link loop, say: named as a run would name it
        error = describe_error(exc)
        return [f"{error['type']}: {error['message'].replace(str(job.path), job.input)}"]
    if not stat.S_ISREG(mode) and wanted == "file":
        return [f"NotARegularFile: {job.input}: not a regular file"]
    return []
