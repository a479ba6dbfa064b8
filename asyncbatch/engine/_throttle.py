"""When the next job may start: ``--delay`` between two starts, ``--load`` (runnable
processes on the machine) and ``--memfree`` (memory available).

:class:`Throttle` decides from what it is told (the time, the jobs running) and what
:class:`Machine` reads of the machine; the scheduler waits as long as it says. With
no job running, only ``--delay`` holds a start back: a busy machine or little
memory never stalls a run that has nothing running, it runs one job at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from asyncbatch.controls import format_size

SAMPLE_EVERY = 0.25
"""Seconds a reading of the machine is used for before it is read again."""
POLL = 0.5
"""Seconds between two looks at the machine while it holds starts back."""


@dataclass(frozen=True, slots=True)
class Machine:
    """What a run reads of the machine (Linux ``/proc``; the paths are parameters
    so that tests read files of their own). A reading that fails is None: it holds
    nothing back."""

    loadavg: Path = Path("/proc/loadavg")
    meminfo: Path = Path("/proc/meminfo")
    own_threads: Path = Path("/proc/self/task")

    def runnable(self) -> int | None:
        """Processes runnable on the machine (``loadavg``'s fourth field, ``R/T``),
        less this process's own threads that are running."""
        try:
            fields = self.loadavg.read_text(encoding="ascii").split()
            count = int(fields[3].split("/")[0])
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            return None
        return max(0, count - self._running_threads())

    def available(self) -> int | None:
        """Bytes of memory available (``MemAvailable``)."""
        try:
            with self.meminfo.open(encoding="ascii") as lines:
                for line in lines:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            return None
        return None

    def _running_threads(self) -> int:
        count = 0
        try:
            tasks = os.listdir(self.own_threads)
        except OSError:
            return 0
        for task in tasks:
            try:
                stat = (self.own_threads / task / "stat").read_bytes()
            except OSError:
                continue  # ended meanwhile
            if stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"R":
                count += 1
        return count


class Throttle:
    """The throttles of a run: ``delay`` seconds at least between two starts,
    none while ``load`` or more processes are runnable, none while less than
    ``memfree`` bytes are available (None: that throttle is off)."""

    def __init__(
        self,
        *,
        delay: float | None = None,
        load: float | None = None,
        memfree: int | None = None,
        machine: Machine | None = None,
    ) -> None:
        self.delay = delay or 0.0
        self._load = load
        self._memfree = memfree
        self._machine = machine or Machine()
        self._last_start: float | None = None
        self._samples: dict[str, tuple[float, int | None]] = {}

    def hold(self, now: float, running: int) -> tuple[float, str | None]:
        """How long to wait before a start may be tried again (0: start now), and
        why (None: nothing holds it back), at ``now`` with ``running`` jobs running."""
        if self.delay and self._last_start is not None:
            wait = self._last_start + self.delay - now
            if wait > 0:
                return wait, f"--delay {self.delay:g}"
        if running == 0:
            return 0.0, None
        if self._load is not None:
            runnable = self._sample("load", now)
            if runnable is not None and runnable >= self._load:
                return POLL, f"--load {self._load:g} ({runnable} runnable)"
        if self._memfree is not None:
            available = self._sample("memfree", now)
            if available is not None and available < self._memfree:
                wanted, free = format_size(self._memfree), format_size(available)
                return POLL, f"--memfree {wanted} ({free} available)"
        return 0.0, None

    def started(self, now: float) -> None:
        """A job started at ``now``."""
        self._last_start = now

    def _sample(self, what: str, now: float) -> int | None:
        taken = self._samples.get(what)
        if taken is not None and now - taken[0] < SAMPLE_EVERY:
            return taken[1]
        machine = self._machine
        value = machine.runnable() if what == "load" else machine.available()
        self._samples[what] = (now, value)
        return value
