"""The benchmark's corpora, generated deterministically: log lines (2% ERROR, 1%
FATAL) in 10,000 small files, in 8 big files and in one huge file, one-byte files for
the ``command`` cases, and the configs that name them."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sizes:
    small_files: int
    big_files: int
    big_mib: int
    huge_mib: int
    job_counts: tuple[int, ...]
    target_jobs: int
    commands: tuple[int, int]
    """``true`` commands: against xargs and GNU parallel, then more for peak RSS."""


FULL = Sizes(10_000, 8, 128, 512, (10_000, 30_000, 100_000), 20_000, (2_000, 8_000))
QUICK = Sizes(1_000, 8, 8, 32, (1_000, 3_000, 10_000), 2_000, (200, 800))

_WORDS = ["request", "served", "cache", "miss", "user", "session", "token", "db", "ok"]
_LEVELS = ["INFO"] * 70 + ["DEBUG"] * 20 + ["WARN"] * 7 + ["ERROR"] * 2 + ["FATAL"]


def _log_lines(rng: random.Random, size: int) -> bytes:
    """~``size`` bytes of log lines: 2% ERROR, 1% FATAL."""
    lines, total = [], 0
    while total < size:
        stamp = f"2026-11-28T12:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(4, 14)))
        line = f"{stamp} {rng.choice(_LEVELS)} {words}"
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def make_small_files(root: Path, count: int) -> Path:
    """``count`` files of ~4 KiB of log lines."""
    folder = root / "small"
    folder.mkdir()
    rng = random.Random(1)
    for i in range(count):
        (folder / f"f{i:06d}.log").write_bytes(_log_lines(rng, 4000))
    return folder


def make_tiny_files(root: Path, count: int) -> Path:
    """``count`` files of one byte each, for programs that do not read them."""
    folder = root / f"tiny_{count}"
    folder.mkdir()
    for i in range(count):
        (folder / f"t{i:06d}.log").write_bytes(b"x")
    return folder


def make_big_files(root: Path, count: int, mib: int) -> Path:
    """``count`` files of ``mib`` MiB: a 4 MiB pool of lines, rotated differently in
    each repetition so no two files are alike."""
    folder = root / "big"
    folder.mkdir()
    pool = _log_lines(random.Random(2), 4 << 20)
    for i in range(count):
        with (folder / f"b{i}.log").open("wb") as out:
            written = 0
            k = 0
            while written < mib << 20:
                cut = pool.find(b"\n", (k * 7919 * 37 + i * 104729) % len(pool)) + 1
                piece = pool[cut:] + pool[:cut]
                out.write(piece[: (mib << 20) - written])
                written += len(piece)
                k += 1
    return folder


def make_huge_file(root: Path, big: Path, mib: int) -> Path:
    """One ``mib`` MiB file (for the memory bound of four jobs on it), from the big
    files' bytes."""
    path = root / "huge.log"
    with path.open("wb") as out:
        written = 0
        while written < mib << 20:
            for part in sorted(big.iterdir()):
                data = part.read_bytes()[: (mib << 20) - written]
                out.write(data)
                written += len(data)
                if written >= mib << 20:
                    break
    return path


def write_config(root: Path, name: str, jobs: list[dict[str, object]]) -> Path:
    path = root / name
    path.write_text(json.dumps({"jobs": jobs}))
    return path


def warm(paths: list[Path]) -> None:
    """Read every file under ``paths`` once, so that all runs find the page cache
    warm."""
    for top in paths:
        for path in [top] if top.is_file() else top.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    while handle.read(1 << 24):
                        pass
