"""The dependency graph between jobs: ``depends_on`` resolved to expanded job
names, cycles (a config error) and the closure ``--only`` runs."""

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


def with_dependencies(wanted: Iterable[str], depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    """``wanted`` and everything they depend on, transitively."""
    selected: set[str] = set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name not in selected:
            selected.add(name)
            stack.extend(depends_on[name])
    return selected


def resolve_dependencies(
    entries: Sequence[tuple[int, JobConfig, Any, Any]], jobs: list[Job], invalid_names: set[str]
) -> list[str]:
    """Resolve ``depends_on`` to expanded job names; unknown names and cycles are
    problems naming the jobs involved. A job in ``invalid_names`` exists (its own
    problems are reported already), so naming it is no further problem."""
    problems: list[str] = []
    if not any(config_job.depends_on for _, config_job, _, _ in entries):
        return problems  # every job keeps depends_on == ()
    expansions: dict[str, list[str]] = {}
    group_of: dict[str, str] = {}
    for job in jobs:
        expansions.setdefault(job.group, []).append(job.name)
        group_of[job.name] = job.group
    for name in list(expansions):
        group_of.setdefault(name, name)
    graph: dict[str, set[str]] = {}
    resolved: dict[str, tuple[str, ...]] = {}
    for index, config_job, _, _ in entries:
        targets: list[str] = []
        edges: set[str] = set()
        for k, dep in enumerate(config_job.depends_on):
            if dep in expansions:
                targets.extend(expansions[dep])
            elif dep in group_of:
                targets.append(dep)
            elif dep in invalid_names:
                continue
            else:
                hint = did_you_mean(dep, list(expansions)) if len(problems) < HINTED else ""
                problems.append(f"jobs[{index}].depends_on[{k}]: unknown job {dep!r}{hint}")
                continue
            edges.add(group_of[dep])
        graph[config_job.name] = edges
        resolved[config_job.name] = tuple(dict.fromkeys(targets))
    position = {config_job.name: index for index, config_job, _, _ in entries}
    for cycle in find_cycles(graph):
        where = f"jobs[{position[cycle[0]]}].depends_on"
        problems.append(f"{where}: dependency cycle: {' -> '.join(cycle)}")
    for job in jobs:
        job.depends_on = resolved[job.group]
    return problems
