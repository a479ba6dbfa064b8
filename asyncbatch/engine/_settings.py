"""The run's settings as the scheduler uses them, and the retry backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long a failed job waits before its next attempt: ``start`` seconds,
    doubling with each attempt, capped at ``cap``, times a random factor in
    ``[jitter, 1]`` so that jobs failing together do not retry together."""

    start: float = 0.1
    cap: float = 10.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` attempts have failed."""
        exponent = min(attempts - 1, 64)  # 2 ** 64 * start is past any cap
        base = min(self.cap, self.start * 2.0**exponent)
        return base * self.rng.uniform(self.jitter, 1.0)


@dataclass(frozen=True, slots=True)
class Settings:
    """What a run's options make of the config's defaults."""

    timeout: float | None
    retries: int
    max_failures: int | None
    root: str | None
    backoff: Backoff
