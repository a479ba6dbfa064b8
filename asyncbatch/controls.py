"""The values of a run's controls as the command line spells them and the engine
acts on them: a halt rule (:class:`Halt`, ``--halt now,fail=1``) and a size of
memory (:func:`parse_size`, ``--memfree 2G``).

Plain data, standard library only: the options, the engine and the session share it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

When = Literal["now", "soon"]
On = Literal["fail", "success"]

_HALT = re.compile(r"(now|soon),(fail|success)=(\d+)(%?)")
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([KMGT]?)B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

HALT_FORMAT = (
    "expected WHEN,COND=N: WHEN now or soon, COND fail or success, N a count of jobs "
    "(at least 1) or a percentage of them (1% to 100%), such as now,fail=1 or soon,fail=10%"
)


@dataclass(frozen=True, slots=True)
class Halt:
    """When a run stops early: after ``count`` jobs (or ``count`` percent of the
    run's jobs, with ``percent``) ended ``on`` (``fail``: failed; ``success``:
    succeeded, having run in this run). ``now`` cancels the running jobs; ``soon``
    starts nothing new and lets the running jobs finish."""

    when: When
    on: On
    count: int
    percent: bool = False

    def __post_init__(self) -> None:
        if self.count < 1 or (self.percent and self.count > 100):
            raise ValueError(f"a halt's count must be at least 1 (a percentage 1 to 100): {self}")

    @classmethod
    def parse(cls, text: str) -> Halt:
        """``now,fail=1``, ``soon,fail=10%``, ``now,success=3``; a ValueError
        saying what is expected otherwise."""
        match = _HALT.fullmatch(text.strip())
        if match is None:
            raise ValueError(HALT_FORMAT)
        when, on, digits, percent = match.groups()
        count = int(digits)
        if count < 1 or (percent and count > 100):
            raise ValueError(HALT_FORMAT)
        return cls(
            "now" if when == "now" else "soon",
            "fail" if on == "fail" else "success",
            count,
            bool(percent),
        )

    @classmethod
    def failures(cls, count: int) -> Halt:
        """``--max-failures N`` (``--fail-fast`` is 1): ``now,fail=N``."""
        return cls("now", "fail", count)

    def threshold(self, jobs: int) -> int:
        """How many jobs it takes, in a run of ``jobs``: the count, or the
        percentage rounded up (at least 1)."""
        if not self.percent:
            return self.count
        return max(1, math.ceil(self.count * jobs / 100))

    def __str__(self) -> str:
        return f"{self.when},{self.on}={self.count}{'%' if self.percent else ''}"


def parse_size(text: str) -> int:
    """A size in bytes: ``4096``, or with a unit of powers of 1024 (``512K``,
    ``512M``, ``2G``, ``1.5T``; a trailing ``B`` and lower case are accepted).
    A ValueError otherwise."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a size: expected bytes, or a number with K, M, G or T "
            "(powers of 1024), such as 512M or 2G"
        )
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.upper()])


def format_size(size: int) -> str:
    """``2G``, ``512M``, ``1.5K``, ``100``: the shortest of :func:`parse_size`'s
    spellings that reads back close to ``size``."""
    for unit in ("T", "G", "M", "K"):
        scale = _UNITS[unit]
        if size >= scale:
            return f"{size / scale:.3g}{unit}"
    return str(size)


def check_delay(value: float | None) -> None:
    """A delay between starts: finite and not negative (0: none)."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ValueError("Input should be a finite number")
    if value < 0:
        raise ValueError("Input should be greater than or equal to 0")


def check_load(value: float | None) -> None:
    """A number of runnable processes: finite and greater than 0."""
    if value is None:
        return
    if not math.isfinite(value) or not value > 0:
        raise ValueError("Input should be a finite number greater than 0")
