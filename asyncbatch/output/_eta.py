"""The ETA from recorded durations (``--order history``): the jobs' last durations
spread over the run's slots, from the first second, scaled by how the jobs that ended
compared with their record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncbatch.model import JobResult


class HistoryEta:
    """Seconds left, from ``durations`` (milliseconds, by job name; a job with none
    counts as their mean) of the jobs ``names``, run ``slots`` at a time."""

    def __init__(self, names: Sequence[str], durations: Mapping[str, float], slots: int) -> None:
        known = [durations[name] for name in names if name in durations]
        self._mean = sum(known) / len(known) / 1000 if known else 0.0
        self._expected = {name: durations[name] / 1000 for name in names if name in durations}
        self._left = sum(known) / 1000 + self._mean * (len(names) - len(known))
        self._slots = max(1, slots)
        self._actual = self._recorded = 0.0  # seconds taken and recorded, by jobs that ran

    def expected(self, name: str) -> float:
        """The recorded seconds of job ``name`` (the mean for one with none)."""
        return self._expected.get(name, self._mean)

    def job_done(self, result: JobResult) -> None:
        expected = self.expected(result.name)
        self._left -= expected
        if not result.reused and result.duration_ms is not None and expected > 0:
            self._actual += result.duration_ms / 1000
            self._recorded += expected

    def seconds_left(self, running: Mapping[str, float], now: float) -> float:
        """What is left of the recorded work, less what the ``running`` jobs (name:
        when they started) have done of theirs, over the slots, at the pace seen."""
        done = sum(min(now - since, self.expected(name)) for name, since in list(running.items()))
        pace = self._actual / self._recorded if self._recorded >= 1.0 else 1.0
        return max(0.0, self._left - done) * pace / self._slots
