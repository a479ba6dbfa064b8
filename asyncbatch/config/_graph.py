"""The dependency graph between jobs: ``depends_on`` checked (unknown names and
cycles are config errors) and kept as written, and the closure ``--only`` runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asyncbatch.config._problems import HINTED, did_you_mean

if TYPE_CHECKING:
    from asyncbatch.config._models import Job, JobConfig


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each cycle once, as ``[a, b, a]``; ``graph`` maps a name to its dependencies.

    Kahn's algorithm first: whatever cannot be ordered lies on or behind a cycle."""
    deps = {name: set(targets) for name, targets in graph.items()}
    pending = {name: len(targets) for name, targets in deps.items()}
    users: dict[str, list[str]] = {name: [] for name in deps}
    for name, targets in deps.items():
        for dep in targets:
            users[dep].append(name)
    ready = [name for name, count in pending.items() if count == 0]
    while ready:
        done = ready.pop()
        for user in users[done]:
            pending[user] -= 1
            if pending[user] == 0:
                ready.append(user)
    stuck = {name for name, count in pending.items() if count > 0}
    cycles: list[list[str]] = []
    while stuck:
        path = [min(stuck)]
        while True:
            nxt = min(dep for dep in deps[path[-1]] if dep in stuck)
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
                break
            path.append(nxt)
        stuck.difference_update(path)
        while True:  # drop what only waited on the nodes just removed, transitively
            behind = {name for name in stuck if not any(dep in stuck for dep in deps[name])}
            if not behind:
                break
            stuck -= behind
    return cycles


def with_dependencies(jobs: Sequence[Job], wanted: Iterable[str]) -> list[Job]:
    """The jobs ``wanted`` names and everything they depend on, transitively, in
    config order. A name is a config job's (all its glob expansions; a name shared
    with one expansion means the config job) or one expansion's. Each group is
    visited once: a glob depending on a glob costs its jobs, not their product."""
    by_group: dict[str, list[int]] = {}
    by_name: dict[str, int] = {}
    for index, job in enumerate(jobs):
        by_group.setdefault(job.group, []).append(index)
        by_name[job.name] = index
    selected = [False] * len(jobs)
    visited: set[str] = set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name in visited:
            continue
        visited.add(name)
        for index in by_group.get(name) or [by_name[name]]:
            if not selected[index]:
                selected[index] = True
                stack.extend(jobs[index].depends_on)
    return [job for job, chosen in zip(jobs, selected, strict=True) if chosen]


def resolve_dependencies(
    entries: Sequence[tuple[int, JobConfig, Any, Any]], jobs: list[Job], invalid_names: set[str]
) -> list[str]:
    """Check ``depends_on``: unknown names and cycles are problems naming the jobs
    involved. A job in ``invalid_names`` exists (its own problems are reported
    already), so naming it is no further problem. Each job keeps the names as
    written, once each and in order: a config job's name waits for all its glob
    expansions, an expansion's name (``logs[a.log]``) for that one alone."""
    problems: list[str] = []
    if not any(config_job.depends_on for _, config_job, _, _ in entries):
        return problems  # every job keeps depends_on == ()
    names = [config_job.name for _, config_job, _, _ in entries]
    group_of = {job.name: job.group for job in jobs}
    group_of.update((name, name) for name in names)  # a config job's name: all of it
    graph: dict[str, set[str]] = {}
    written: dict[str, tuple[str, ...]] = {}
    for index, config_job, _, _ in entries:
        edges: set[str] = set()
        for k, dep in enumerate(config_job.depends_on):
            if dep in group_of:
                edges.add(group_of[dep])
            elif dep not in invalid_names:
                hint = did_you_mean(dep, names) if len(problems) < HINTED else ""
                problems.append(f"jobs[{index}].depends_on[{k}]: unknown job {dep!r}{hint}")
        graph[config_job.name] = edges
        written[config_job.name] = tuple(dict.fromkeys(config_job.depends_on))
    position = {config_job.name: index for index, config_job, _, _ in entries}
    for cycle in find_cycles(graph):
        where = f"jobs[{position[cycle[0]]}].depends_on"
        problems.append(f"{where}: dependency cycle: {' -> '.join(cycle)}")
    for job in jobs:
        job.depends_on = written[job.group]  # one tuple shared by a glob's expansions
    return problems
