"""Ready jobs and the slots they take: the run's own (``-j``) and its named limits.

Every pool is counted: pool 0 holds the run's slots, the others the named limits. A
job needs some slots of some pools (its ``slots`` of pool 0, one or its weight of
each named limit) and takes them all at once, only when all are free: it never
holds one slot while waiting for another, so no order of naming limits can
deadlock.

Jobs wait in one heap per *set of needs* (few distinct sets, whatever the number of
jobs), so taking the first runnable job in config order costs one look at each
heap's head, not a scan of every blocked job.

No heavy job waits for ever behind light ones: a job that needs more than one slot
of some pool is heavy, and once the first heavy ready job in config order cannot
start, every pool in which it lacks slots is kept for it: later jobs take from such
a pool only the slots beyond what it needs, until it starts. Its pools only fill
up, so it starts once the jobs running when it began to wait have ended. A job
that needs one slot of each pool keeps nothing (a slot it waits for is free again
as soon as a job holding one ends, and it is then first in line; a job waiting for
a named slot holds none of the others meanwhile). Should an earlier heavy job
become ready and wait too, it is first from then on (config order decides), and
the later one waits its turn again.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence

Needs = tuple[tuple[int, int], ...]
"""The slots a job takes: ``(pool, count)`` pairs, by pool number (0: the run's)."""

LIGHT: Needs = ((0, 1),)
"""One of the run's slots and nothing else: the jobs small-file batches may take."""


def needs_of(slots: int, limits: Mapping[str, int], pools: Mapping[str, int]) -> Needs:
    """The needs of a job taking ``slots`` of the run's slots and ``limits`` (a
    name and how many of that pool); ``pools`` numbers the named limits from 1."""
    if not limits:
        return LIGHT if slots == 1 else ((0, slots),)
    named = sorted((pools[name], count) for name, count in limits.items())
    return ((0, slots), *named)


class ReadyJobs:
    """Indices of jobs ready to run, taken in config order among those whose slots
    are all free (see the module doc). ``capacity[p]`` is the size of pool ``p``;
    ``needs[i]`` what job ``i`` takes."""

    def __init__(self, capacity: Sequence[int], needs: Sequence[Needs]) -> None:
        self._capacity = list(capacity)
        self.in_use = [0] * len(capacity)
        self._needs = needs
        self._heaps: dict[Needs, list[int]] = {}
        self.holder: int | None = None
        """The heavy job pools are kept for (see the module doc), or None."""
        self._kept: dict[int, int] = {}
        """Pool -> the slots kept in it for the holder."""

    def push(self, index: int) -> None:
        heapq.heappush(self._heaps.setdefault(self._needs[index], []), index)

    def take(self) -> int | None:
        """The first ready job that can run now, its slots taken; None if none can."""
        heads = [(heap[0], needs) for needs, heap in self._heaps.items() if heap]
        if len(heads) > 1:
            heads.sort()
        seen_heavy = False
        for index, needs in heads:
            holder = self.holder
            kept = self._kept if holder is not None and index > holder else None
            if self._fits(needs, kept):
                heapq.heappop(self._heaps[needs])
                in_use = self.in_use
                for pool, count in needs:
                    in_use[pool] += count
                if index == holder:
                    self.holder, self._kept = None, {}
                return index
            if not seen_heavy and _heavy(needs):
                seen_heavy = True
                self._keep_for(index, needs)
        return None

    def free(self, pool: int = 0) -> int:
        """Slots of ``pool`` no job holds."""
        return self._capacity[pool] - self.in_use[pool]

    def count_unlimited(self) -> int:
        """How many ready jobs need one of the run's slots and nothing else."""
        return len(self._heaps.get(LIGHT, ()))

    def take_unlimited(self, accept: Callable[[int], bool], most: int) -> list[int]:
        """Up to ``most`` more ready jobs that need one of the run's slots and
        nothing else, in config order, while ``accept`` takes the next one; they
        take no slot (they run in the slot of the job at hand). None behind a heavy
        job that the run's slots are kept for: they would hold that slot longer."""
        heap = self._heaps.get(LIGHT)
        below = self.holder if self.holder is not None and 0 in self._kept else None
        taken: list[int] = []
        while heap and len(taken) < most and accept(heap[0]):
            if below is not None and heap[0] > below:
                break
            taken.append(heapq.heappop(heap))
        return taken

    def release(self, index: int) -> None:
        """Give back the slots job ``index`` took."""
        in_use = self.in_use
        for pool, count in self._needs[index]:
            in_use[pool] -= count

    def _fits(self, needs: Needs, kept: dict[int, int] | None) -> bool:
        capacity, in_use = self._capacity, self.in_use
        if kept:
            return all(capacity[p] - in_use[p] - kept.get(p, 0) >= count for p, count in needs)
        return all(capacity[p] - in_use[p] >= count for p, count in needs)

    def _keep_for(self, index: int, needs: Needs) -> None:
        """``index`` is the first heavy ready job that cannot start: the pools it
        lacks slots in are kept for it (and stay kept until it starts)."""
        if index != self.holder:
            self.holder, self._kept = index, {}
        capacity, in_use = self._capacity, self.in_use
        for pool, count in needs:
            if capacity[pool] - in_use[pool] < count:
                self._kept[pool] = count


def _heavy(needs: Needs) -> bool:
    return any(count > 1 for _, count in needs)


class SlotNumbers:
    """The numbers of the run's slots (from 1), handed out lowest first: a job
    taking several gets the lowest free ones, the first of them its ``{%}``."""

    def __init__(self) -> None:
        self._free: list[int] = []
        self._next = 1

    def take(self, count: int) -> list[int]:
        free = self._free
        taken = [heapq.heappop(free) for _ in range(min(count, len(free)))]
        while len(taken) < count:
            taken.append(self._next)
            self._next += 1
        return taken

    def give_back(self, numbers: Sequence[int]) -> None:
        for number in numbers:
            heapq.heappush(self._free, number)
