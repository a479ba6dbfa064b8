"""Reading an earlier journal for ``--resume``: line by line, bounded, trusting
nothing. A line that cannot be trusted is a warning; a journal that cannot be read
at all is one warning and reuses nothing."""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncbatch.model import STATUSES, Resources

MAX_LINE_BYTES = 16 << 20
"""Longest journal line read back; a longer one is not trusted (nor held in memory)."""
_LISTED = 10
"""Unreadable lines named one by one in warnings; the rest are counted."""
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class Recorded:
    """Earlier successes in a journal: for each job name, the fingerprint and the
    place (offset, length) of its last success line."""

    successes: dict[str, tuple[bytes, int, int]] = field(default_factory=dict)

    def take(self, name: str) -> tuple[bytes, int, int] | None:
        """The success of ``name``, forgotten: each job is looked at once a run."""
        return self.successes.pop(name, None)

    def places(self) -> list[tuple[int, int]]:
        """Where the lines of the successes not taken lie, in file order."""
        return sorted((offset, length) for _, offset, length in self.successes.values())


def load_journal(path: Path) -> tuple[Recorded, list[str]]:
    """The last recorded success of each job, and warnings about what was read.

    A torn last line (a run killed mid-write) is skipped with a warning, never
    fatal; so is any other line that cannot be trusted. A journal that cannot be
    read at all is one warning, and nothing in it is reused."""
    recorded = Recorded()

    def collect(entry: Any, start: int, length: int) -> None:
        found = recorded_success(entry)
        if found is not None:  # a later success of the same job wins
            name, digest = found
            recorded.successes[name] = (digest, start, length)

    return recorded, read_journal(path, collect)


def read_journal(path: Path, collect: Callable[[Any, int, int], None]) -> list[str]:
    """Call ``collect(entry, offset, length)`` for every line of the journal at
    ``path`` that is a journal entry (``collect`` raises ValueError for one that is
    not); the warnings about what could not be read."""
    try:  # O_NONBLOCK: a FIFO planted there must not hang the run
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [_unreadable(path, exc)]
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return [f"{path}: cannot be read (not a regular file); nothing is reused"]
        with open(fd, "rb", closefd=False) as stream:
            return _scan(stream, path, collect)
    except OSError as exc:
        return [_unreadable(path, exc)]
    finally:
        os.close(fd)


def _unreadable(path: Path, exc: OSError) -> str:
    return f"{path}: cannot be read ({exc.strerror or exc}); nothing is reused"


def _scan(stream: Any, path: Path, collect: Callable[[Any, int, int], None]) -> list[str]:
    """Every line of ``stream`` checked and handed to ``collect``."""
    bad: list[int] = []
    torn = False
    offset = number = 0
    while chunk := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        start = offset
        offset += len(chunk)
        line = chunk[:-1] if chunk.endswith(b"\n") else chunk
        if len(line) > MAX_LINE_BYTES:
            skipped = _skip_line(stream)
            offset += skipped
            bad.append(number)
            continue
        if not line.strip():
            continue
        try:
            collect(parse_line(line), start, len(line))
        except ValueError:
            if chunk.endswith(b"\n"):
                bad.append(number)
            else:
                torn = True
    warnings = [f"{path}: unreadable line {n} ignored" for n in bad[:_LISTED]]
    if len(bad) > _LISTED:
        warnings.append(f"{path}: {len(bad) - _LISTED} more unreadable lines ignored")
    if torn:
        warnings.append(f"{path}: torn last line ignored")
    return warnings


def _skip_line(stream: Any) -> int:
    """Read past the rest of a line too long to hold; the number of bytes skipped."""
    skipped = 0
    while chunk := stream.readline(1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def parse_line(line: bytes) -> Any:
    """A line as JSON: strict UTF-8, finite numbers only. Raises ValueError."""
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:  # nested deeper than the parser goes
        raise ValueError("nested too deep") from None


def _not_a_number(text: str) -> float:
    raise ValueError(f"{text} is not a number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def recorded_success(entry: Any) -> tuple[str, bytes] | None:
    """The name and fingerprint of a success that may be reused; None for any other
    journal entry. Raises ValueError for what is not a journal entry."""
    if not isinstance(entry, dict) or not isinstance(job := entry.get("job"), dict):
        raise ValueError("not a journal entry")
    mark, name, status = entry.get("fingerprint"), job.get("name"), job.get("status")
    if not isinstance(name, str) or not isinstance(status, str) or status not in STATUSES:
        raise ValueError("not a journal entry")
    if mark is not None and not (isinstance(mark, str) and _FINGERPRINT.fullmatch(mark)):
        raise ValueError("not a fingerprint")
    if status != "succeeded" or mark is None:
        return None
    recorded_payload(job)
    return name, bytes.fromhex(mark)


def recorded_payload(job: dict[str, Any]) -> tuple[dict[str, Any], float | None, int]:
    """The result, duration and attempts of a recorded success. Raises ValueError
    when one is of the wrong type."""
    result, duration, attempts = job.get("result"), job.get("duration_ms"), job.get("attempts", 1)
    if not isinstance(result, dict):
        raise ValueError("the result is not an object")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0
    ):
        raise ValueError("the duration is not a number of milliseconds")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError("the attempts are not a count")
    return result, duration, attempts


def recorded_resources(job: dict[str, Any]) -> Resources | None:
    """What a recorded job used, as the line says (None: nothing, as in a line from
    before jobs recorded it); a value of the wrong type is not known (None)."""
    found = job.get("resources")
    if not isinstance(found, dict):
        return None
    cpu = found.get("cpu_s")
    return Resources(
        float(cpu) if isinstance(cpu, int | float) and _amount(cpu) else None,
        *(found.get(key) if _amount(found.get(key), whole=True) else None for key in _COUNTS),
    )


_COUNTS = ("max_rss_kb", "read_bytes", "write_bytes")


def _amount(value: object, *, whole: bool = False) -> bool:
    """A count (``whole``) or a number of seconds: not negative, not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return False
    return isinstance(value, int) or not whole
