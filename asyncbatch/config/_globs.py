"""Glob expansion for job inputs, bounded so that no pattern can hang or flood a run.

Matches what ``glob.glob(pattern, root_dir=base_dir, recursive=True)`` matches
(``*``, ``?`` and ``[...]`` within one name; ``**`` as a whole component for zero or
more directories; names starting with a dot only for a component starting with
one), with three differences:

- ``**`` walks real directories only: it never enters a symbolic link to a
  directory (as ``find`` without ``-L``, and bash's globstar since 4.3), so a link
  loop cannot make it walk forever. A link named explicitly or matched by ``*`` is
  followed as usual.
- A pattern that looks at more than ``max_entries`` directory entries, or matches
  more than ``max_matches`` files, raises :class:`GlobTooBroad` (``/**`` over a
  whole file system ends in a second or two, not in an hour).
- Only regular files are returned (directories are passed over), each once.

Nothing is opened for reading: directories are listed, which is all ``--dry-run``
may do.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path

_MAGIC = re.compile(r"[*?[]")
_SURROGATE = re.compile("[\udc80-\udcff]")


class GlobTooBroad(Exception):
    """A glob would look at or match more than the limits allow."""

    def __init__(self, *, pattern: str, reason: str) -> None:
        super().__init__(f"the glob {pattern!r} {reason}; narrow it")


def glob_files(
    pattern: str,
    base_dir: Path,
    *,
    max_matches: int,
    max_entries: int,
) -> list[str]:
    """Sorted regular files matching ``pattern``, relative to ``base_dir`` (absolute
    for an absolute pattern), as ``os.fsdecode`` spells them (an undecodable byte
    is a lone surrogate: see :func:`printable`). Raises :class:`GlobTooBroad` past
    ``max_matches`` files or ``max_entries`` directory entries looked at (each
    folder looked in counts as one more)."""
    parts = [part for part in pattern.split("/") if part]
    if not parts or pattern.endswith("/"):  # a trailing slash matches directories only
        return []
    limit = max_matches
    found: set[str] = set()
    walk = _Walk(pattern, base_dir, parts, max_entries)
    for match in walk.files("/" if pattern.startswith("/") else ""):
        found.add(match)
        if len(found) > limit:
            raise GlobTooBroad(pattern=pattern, reason=f"matches more than {limit} files")
    return sorted(found)


def printable(path: str) -> str:
    """``path`` with each undecodable byte (a lone surrogate from ``os.fsdecode``)
    written as a visible ``\\xNN``, so names and reports stay valid UTF-8 and JSON."""
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", path)


class _Walk:
    """One expansion: the pattern's components matched from left to right, with a
    budget of directory entries shared by the whole walk."""

    def __init__(self, pattern: str, base_dir: Path, parts: list[str], budget: int) -> None:
        self._pattern = pattern
        self._base = os.fspath(base_dir)
        self._parts = parts
        self._regexes = [
            re.compile(fnmatch.translate(part)) if _MAGIC.search(part) else None for part in parts
        ]
        self._limit = budget
        self._budget = budget

    def files(self, start: str) -> Iterator[str]:
        """Regular files matching the components, as ``start`` + relative path
        (a prefix here is always ``""`` or ends with ``/``)."""
        last = len(self._parts) - 1
        work = [(start, 0)]
        while work:
            prefix, index = work.pop()
            self._charge()  # ``**/**/...`` multiplies the folders to look in
            part, regex = self._parts[index], self._regexes[index]
            final = index == last
            if part == "**":
                for folder, entry in self._tree(prefix):
                    if final and _is_file(entry):
                        yield folder + entry.name
                    elif not final and _is_dir(entry, follow_symlinks=False):
                        work.append((f"{folder}{entry.name}/", index + 1))
                if not final:
                    work.append((prefix, index + 1))  # ** also matches no directory
            elif regex is None:  # a literal name
                if not final:
                    work.append((f"{prefix}{part}/", index + 1))
                elif os.path.isfile(self._path(prefix + part)):
                    yield prefix + part
            else:
                hidden_ok = part.startswith(".")
                for entry in self._scan(prefix):
                    name = entry.name
                    if (hidden_ok or not name.startswith(".")) and regex.match(name):
                        if final and _is_file(entry):
                            yield prefix + name
                        elif not final and _is_dir(entry):
                            work.append((f"{prefix}{name}/", index + 1))

    def _tree(self, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """Every non-hidden entry in ``prefix`` and below, with its folder; only
        real directories (not links to them) are entered."""
        folders = [prefix]
        while folders:
            folder = folders.pop()
            for entry in self._scan(folder):
                if entry.name.startswith("."):
                    continue
                yield folder, entry
                if _is_dir(entry, follow_symlinks=False):
                    folders.append(f"{folder}{entry.name}/")

    def _scan(self, prefix: str) -> list[os.DirEntry[str]]:
        """The entries of a folder (as many as could be listed), each charged to
        the budget as it is read."""
        listed: list[os.DirEntry[str]] = []
        try:
            with os.scandir(self._path(prefix)) as entries:
                for entry in entries:
                    self._charge()
                    listed.append(entry)
        except (OSError, ValueError):  # cannot be listed (or no longer): what was read
            pass
        return listed

    def _charge(self) -> None:
        self._budget -= 1
        if self._budget < 0:
            reason = f"looks at more than {self._limit} directory entries"
            raise GlobTooBroad(pattern=self._pattern, reason=reason)

    def _path(self, prefix: str) -> str:
        return os.path.join(self._base, prefix) if prefix else self._base


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str], *, follow_symlinks: bool = True) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow_symlinks)
    except OSError:
        return False
