"""Ready jobs and the named limits they need.

Jobs wait in one heap per *set of limits* they name (few distinct sets, whatever the
number of jobs), so taking the first runnable job in config order costs one look at
each heap's head, not a scan of every blocked job. A job takes every slot it needs
at once, only when all are free: it never holds one slot while waiting for another,
so no order of naming limits can deadlock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence


class ReadyJobs:
    """Indices of jobs ready to run, taken in config order among those whose
    named limits all have a free slot."""

    def __init__(self, capacity: Mapping[str, int], needs: Sequence[tuple[str, ...]]) -> None:
        self._capacity = dict(capacity)
        self.in_use = dict.fromkeys(capacity, 0)
        self._needs = [tuple(sorted(set(names))) for names in needs]
        self._heaps: dict[tuple[str, ...], list[int]] = {}

    def push(self, index: int) -> None:
        heapq.heappush(self._heaps.setdefault(self._needs[index], []), index)

    def take(self) -> int | None:
        """The first ready job that can run now, its slots taken; None if none can."""
        best: int | None = None
        best_needs: tuple[str, ...] = ()
        for needs, heap in self._heaps.items():
            if heap and (best is None or heap[0] < best) and self._free(needs):
                best, best_needs = heap[0], needs
        if best is None:
            return None
        heapq.heappop(self._heaps[best_needs])
        for name in best_needs:
            self.in_use[name] += 1
        return best

    def count_unlimited(self) -> int:
        """How many ready jobs need no named limit."""
        return len(self._heaps.get((), ()))

    def take_unlimited(self, accept: Callable[[int], bool], most: int) -> list[int]:
        """Up to ``most`` more ready jobs that need no named limit, in config order,
        while ``accept`` takes the next one."""
        heap = self._heaps.get(())
        taken: list[int] = []
        while heap and len(taken) < most and accept(heap[0]):
            taken.append(heapq.heappop(heap))
        return taken

    def release(self, index: int) -> None:
        """Give back the slots job ``index`` took."""
        for name in self._needs[index]:
            self.in_use[name] -= 1

    def _free(self, needs: tuple[str, ...]) -> bool:
        return all(self.in_use[name] < self._capacity[name] for name in needs)
