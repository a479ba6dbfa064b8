"""The run's settings as the scheduler uses them, and the retry backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncbatch.controls import Halt

RETRY_DELAY_CAP = 60.0
"""Longest wait between two attempts of a job that sets its first one
(``retry_delay``)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long a failed job waits before its next attempt: ``start`` seconds,
    doubling with each attempt, capped at ``cap``, times a random factor in
    ``[jitter, 1]`` so that jobs failing together do not retry together."""

    start: float = 0.1
    cap: float = 10.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int, first: float | None = None) -> float:
        """Seconds to wait after ``attempts`` attempts have failed; ``first``, a
        job's ``retry_delay``, starts from there instead, capped at
        :data:`RETRY_DELAY_CAP`."""
        start, cap = (self.start, self.cap) if first is None else (first, RETRY_DELAY_CAP)
        exponent = min(attempts - 1, 64)  # 2 ** 64 * start is past any cap
        base = min(cap, start * 2.0**exponent)
        return base * self.rng.uniform(self.jitter, 1.0)


@dataclass(frozen=True, slots=True)
class Settings:
    """What a run's options make of the config's defaults."""

    timeout: float | None
    retries: int
    halt: Halt | None
    root: str | None
    backoff: Backoff
    retry_delay: float | None = None
    """The first wait before a retry of jobs that set none (None: the backoff's)."""
    concurrency: int = 1
    """The run's slots (``-j``)."""
