"""Which jobs may start as others end: dependency bookkeeping, pure and synchronous.

A job becomes ready as soon as everything it depends on has succeeded (not level by
level). When a job ends without succeeding, every job that depends on it, directly
or through others, can never run: each is skipped, naming the dependency that did
not succeed (for a job further down, the skipped job it waited on). No event loop
and no I/O here: the scheduler asks, this answers, and tests need nothing else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Released:
    """What one job's end released: jobs now ready, and jobs to skip with the
    index of the dependency that did not succeed, in the order they are to be
    recorded (a dependency before the jobs it skips)."""

    ready: list[int] = field(default_factory=list)
    skipped: list[tuple[int, int]] = field(default_factory=list)


class DependencyTracker:
    """``depends_on[i]``: the indices of the jobs job ``i`` waits for."""

    def __init__(self, depends_on: Sequence[Sequence[int]]) -> None:
        total = len(depends_on)
        self._waiting = [len(set(deps)) for deps in depends_on]
        self._dependents: list[list[int]] = [[] for _ in range(total)]
        for index, deps in enumerate(depends_on):
            for dep in set(deps):
                self._dependents[dep].append(index)
        self._ended = [False] * total

    def initially_ready(self) -> list[int]:
        """The jobs that wait for nothing, in config order."""
        return [index for index, waiting in enumerate(self._waiting) if waiting == 0]

    def end(self, index: int, *, succeeded: bool) -> Released:
        """Job ``index`` has its final result; what that releases. Ending a job
        twice, or one already skipped, releases nothing more."""
        released = Released()
        if self._ended[index]:
            return released
        self._ended[index] = True
        if succeeded:
            for dependent in self._dependents[index]:
                self._waiting[dependent] -= 1
                if self._waiting[dependent] == 0 and not self._ended[dependent]:
                    released.ready.append(dependent)
            released.ready.sort()
            return released
        pending = deque([index])
        while pending:
            cause = pending.popleft()
            for dependent in self._dependents[cause]:
                if not self._ended[dependent]:
                    self._ended[dependent] = True
                    released.skipped.append((dependent, cause))
                    pending.append(dependent)
        return released

    def is_ended(self, index: int) -> bool:
        return self._ended[index]
