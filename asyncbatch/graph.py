"""The dependency graph between jobs: cycles (a config error) and the closure
``--only`` runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


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
