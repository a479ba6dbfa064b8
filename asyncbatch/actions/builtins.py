"""The built-in actions: the five file statistics, each its params model and its
kernel, written once; and ``command``, which runs a program per input.

Each action function is the plain shape of the product (an async function that
streams its input with aiofiles, or, for a ``search_pattern`` that may backtrack,
scans it in a worker process a timeout can kill) and is what a direct call or
another executor awaits.
The local executor of a run reads the kernel instead and picks a faster route for
each file; the results are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from asyncbatch.actions import _optional as optional
from asyncbatch.actions._kernels import Checksum, FileSize, LineCount, WordCount
from asyncbatch.actions._params import ChecksumParams, NoParams, SearchPatternParams
from asyncbatch.actions._search import PatternSearch, is_bounded
from asyncbatch.actions.command import COMMAND
from asyncbatch.files.stream import run_kernel
from asyncbatch.kernel import Kernel
from asyncbatch.registry import ActionFunc, ActionSpec

_NUMPY = optional.installed("numpy")
LINES = Kernel(LineCount, releases_gil=_NUMPY)
WORDS = Kernel(WordCount, releases_gil=_NUMPY)
CHECKSUM = Kernel(Checksum, releases_gil=True)
SIZE = Kernel(FileSize, reads=False)
# Not releases_gil, though Hyperscan releases it: its Python callbacks (one per
# match) then fight over the GIL, so big searches go to worker processes instead
# (8 x 128 MiB, `ERROR|FATAL`, -j 4: 0.7 s against 1.3 s in threads).
SEARCH = Kernel(PatternSearch, isolated=True, bounded=is_bounded)


async def count_lines(path: Path, params: NoParams) -> dict[str, Any]:
    """Count lines: each \\n ends one, and a final unterminated line counts too."""
    return await run_kernel(LINES, path, params)


async def count_words(path: Path, params: NoParams) -> dict[str, Any]:
    """Count whitespace-separated words, exactly as str.split() does on the text."""
    return await run_kernel(WORDS, path, params)


async def file_size(path: Path, params: NoParams) -> dict[str, Any]:
    """Size of the file in bytes, from stat alone (nothing is read)."""
    return await run_kernel(SIZE, path, params)


async def checksum(path: Path, params: ChecksumParams) -> dict[str, Any]:
    """Hex digest of the file's bytes (sha256 unless `algorithm` says otherwise)."""
    return await run_kernel(CHECKSUM, path, params)


async def search_pattern(path: Path, params: SearchPatternParams) -> dict[str, Any]:
    """Count regex matches (non-overlapping, each within one line) and matching lines."""
    return await run_kernel(SEARCH, path, params)


def _statistic(name: str, func: ActionFunc, params: type[BaseModel], kernel: Kernel) -> ActionSpec:
    """A file statistic: it changes neither the working directory nor its params."""
    return ActionSpec(name, func, params, kernel=kernel, may_chdir=False, shares_params=True)


BUILTINS = (
    _statistic("count_lines", count_lines, NoParams, LINES),
    _statistic("count_words", count_words, NoParams, WORDS),
    _statistic("file_size", file_size, NoParams, SIZE),
    _statistic("checksum", checksum, ChecksumParams, CHECKSUM),
    _statistic("search_pattern", search_pattern, SearchPatternParams, SEARCH),
    COMMAND,
)
