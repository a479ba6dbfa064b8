"""Which jobs may start as others end: dependency bookkeeping, pure and synchronous.

A job becomes ready as soon as everything it depends on has succeeded (not level by
level). When a job ends without succeeding, every job that depends on it, directly
or through others, can never run: each is skipped, naming the dependency that did
not succeed (for a job further down, the skipped job it waited on). No event loop
and no I/O here: the scheduler asks, this answers, and tests need nothing else.

A job that depends on a glob job waits for a group (all its expansions): the group
is one barrier node that ends once every expansion has succeeded, or as soon as one
did not. A glob of N files depending on a glob of M files is N + M edges, not N * M.

Each success says whether the job ran (or was reused from an earlier run): a job
one of whose dependencies ran (directly, or a member of a group it waits for) knows
which (:meth:`DependencyTracker.dependency_ran`), so that ``--resume`` runs it again
as make rebuilds what depends on a rebuilt target. Decided from the graph and each
job's own reuse alone: ending the jobs in dependency order, each ``ran=not
reused``, gives the same answers without running anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Released:
    """What one job's end released: jobs now ready, and jobs to skip with the
    index of the dependency that did not succeed, in the order they are to be
    recorded (a dependency before the jobs it skips)."""

    ready: list[int] = field(default_factory=list)
    skipped: list[tuple[int, int]] = field(default_factory=list)


class DependencyTracker:
    """``depends_on[i]``: the nodes job ``i`` waits for. Nodes ``0 .. len(depends_on)
    - 1`` are the jobs; node ``len(depends_on) + k`` is the barrier ``barriers[k]``,
    which waits for the jobs it lists (a group: it succeeds once all of them have
    succeeded and fails with the first that did not). :meth:`grouped` builds both
    from the names a config writes."""

    def __init__(
        self, depends_on: Sequence[Iterable[int]], barriers: Sequence[Sequence[int]] = ()
    ) -> None:
        self._jobs = len(depends_on)
        nodes = self._jobs + len(barriers)
        self._waiting = [0] * nodes
        self._dependents: list[list[int]] = [[] for _ in range(nodes)]
        for node, waits_for in enumerate((*depends_on, *barriers)):
            distinct = set(waits_for)
            self._waiting[node] = len(distinct)
            for dependency in distinct:
                self._dependents[dependency].append(node)
        self._ended = [False] * nodes
        self._ran: list[int] = [-1] * nodes
        """For each node, a job it waits for (or a member of a group) that ran; -1: none."""

    @classmethod
    def grouped(
        cls, names: Sequence[str], groups: Sequence[str], waits_for: Sequence[Iterable[str]]
    ) -> DependencyTracker:
        """The jobs ``names[i]`` of ``groups[i]`` (a glob's expansions share the glob
        job's name as their group; any other job is a group of its own), each waiting
        for the names in ``waits_for[i]``: a group's name waits for all its jobs, any
        other name (one expansion) for that job alone. A name that is neither is a
        ``ValueError``. Time and memory grow with the jobs plus the names written."""
        members: dict[str, list[int]] = {}
        for index, group in enumerate(groups):
            members.setdefault(group, []).append(index)
        position = {name: index for index, name in enumerate(names)}
        barriers: list[list[int]] = []
        node_of: dict[str, int] = {}

        def node(name: str, index: int) -> int:
            found = node_of.get(name)
            if found is not None:
                return found
            jobs = members.get(name)
            if jobs is not None and len(jobs) > 1:
                found = len(names) + len(barriers)
                barriers.append(jobs)
            elif jobs is not None:
                found = jobs[0]
            elif name in position:
                found = position[name]
            else:
                raise ValueError(f"job {names[index]!r} waits for {name!r}: no such job")
            node_of[name] = found
            return found

        resolved: dict[tuple[str, ...], list[int]] = {}  # expansions share their names
        depends_on: list[list[int]] = []
        for index, written in enumerate(waits_for):
            key = tuple(written)
            nodes = resolved.get(key)
            if nodes is None:
                nodes = resolved[key] = [node(name, index) for name in key]
            depends_on.append(nodes)
        return cls(depends_on, barriers)

    def initially_ready(self) -> list[int]:
        """The jobs that wait for nothing, in config order."""
        waiting = self._waiting
        return [index for index in range(self._jobs) if waiting[index] == 0]

    def end(self, index: int, *, succeeded: bool, ran: bool = True) -> Released:
        """Job ``index`` has its final result (``ran``: it ran in this run, rather
        than being reused); what that releases. Ending a job twice, or one already
        skipped, releases nothing more."""
        released = Released()
        if self._ended[index]:
            return released
        self._ended[index] = True
        if succeeded:
            self._succeed(index, released.ready, index if ran else -1)
            released.ready.sort()
        else:
            self._skip_behind(index, released.skipped)
        return released

    def is_ended(self, index: int) -> bool:
        return self._ended[index]

    def dependency_ran(self, index: int) -> int | None:
        """A job that job ``index`` waits for (itself, or as a member of a group)
        and that ran in this run; None when every one was reused."""
        ran = self._ran[index]
        return None if ran < 0 else ran

    def _succeed(self, index: int, ready: list[int], ran: int) -> None:
        """Count ``index`` done for everything waiting on it (``ran``: the job that
        ran, -1 if it was reused): a job waiting for nothing more is ready, a
        barrier waiting for nothing more succeeds, passing on a member that ran."""
        marks = self._ran
        succeeded = [(index, ran)]
        while succeeded:
            node, cause = succeeded.pop()
            for dependent in self._dependents[node]:
                if cause >= 0 and marks[dependent] < 0:
                    marks[dependent] = cause
                self._waiting[dependent] -= 1
                if self._waiting[dependent] == 0 and not self._ended[dependent]:
                    if dependent < self._jobs:
                        ready.append(dependent)
                    else:
                        self._ended[dependent] = True
                        succeeded.append((dependent, marks[dependent]))

    def _skip_behind(self, index: int, skipped: list[tuple[int, int]]) -> None:
        """Skip everything that waits on ``index``, breadth first, so that each
        skipped job's cause comes before it; a barrier passes on the cause that
        reached it first (the member that did not succeed)."""
        pending = deque([(index, index)])
        while pending:
            node, cause = pending.popleft()
            for dependent in self._dependents[node]:
                if not self._ended[dependent]:
                    self._ended[dependent] = True
                    if dependent < self._jobs:
                        skipped.append((dependent, cause))
                        pending.append((dependent, dependent))
                    else:
                        pending.append((dependent, cause))
