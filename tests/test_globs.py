"""asyncbatch.config._globs: the same matches as the standard library's glob on ordinary
trees, and bounded where glob is not (symbolic link loops, whole file systems)."""

from __future__ import annotations

import glob
import os
import string
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncbatch.config import LoadLimits
from asyncbatch.config._globs import GlobTooBroad, glob_files, printable

DEFAULTS = LoadLimits()


def files(pattern: str, base: Path) -> list[str]:
    """``glob_files`` with the default limits of a config load."""
    return glob_files(
        pattern,
        base,
        max_matches=DEFAULTS.max_glob_matches,
        max_entries=DEFAULTS.max_glob_entries,
    )


NAMES = ["a", "b", ".h", "a.log", "b.txt", ".x.log", "sub"]
"""Few names, so that random trees and random patterns meet."""


def stdlib_files(pattern: str, base: Path) -> list[str]:
    """What config loading used to do: glob, keep regular files, sort."""
    found = glob.glob(pattern, root_dir=base, recursive=True)
    return sorted({match for match in found if (base / match).is_file()})


def build(base: Path, paths: list[tuple[str, ...]]) -> None:
    """Files at ``paths`` (a name used as both file and folder keeps the first)."""
    for parts in paths:
        folder = base
        for part in parts[:-1]:
            folder = folder / part
            if folder.exists() and not folder.is_dir():
                break
            folder.mkdir(exist_ok=True)
        else:
            target = folder / parts[-1]
            if not target.exists():
                target.write_text("x\n", encoding="utf-8")


@st.composite
def patterns(draw: st.DrawFn) -> str:
    part = st.one_of(
        st.sampled_from(NAMES),
        st.sampled_from(["*", "**", "?", "*.log", ".*", "[ab]", "[!a]*", "*.*", "..", "."]),
        st.text(alphabet=string.ascii_lowercase[:3] + "*?[]!.", min_size=1, max_size=4),
    )
    parts = draw(st.lists(part, min_size=1, max_size=4))
    return "/".join(parts) + draw(st.sampled_from(["", "", "/"]))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    tree=st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map(tuple), max_size=12),
    pattern=patterns(),
)
def test_matches_what_the_standard_glob_matches_on_trees_without_links(
    tmp_path_factory: pytest.TempPathFactory, tree: list[tuple[str, ...]], pattern: str
) -> None:
    base = tmp_path_factory.mktemp("tree") / "in"
    base.mkdir()
    build(base, tree)
    expected = stdlib_files(pattern, base)
    assert files(pattern, base) == expected


def test_double_star_never_enters_a_link_to_a_directory(tmp_path: Path) -> None:
    """Two links back to their own folder would make glob's ``**`` walk 2**40 paths."""
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "f.txt").write_text("x\n", encoding="utf-8")
    (folder / "a").symlink_to(".")
    (folder / "b").symlink_to(".")
    started = time.monotonic()
    assert files("**/*.none", tmp_path) == []
    assert files("**/*.txt", tmp_path) == ["d/f.txt"]
    assert files("**", tmp_path) == ["d/f.txt"]
    assert time.monotonic() - started < 5


def test_a_link_named_in_the_pattern_or_matched_by_a_star_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "x.log").write_text("x\n", encoding="utf-8")
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "file-link.log").symlink_to(real / "x.log")
    assert files("link/*.log", tmp_path) == ["link/x.log"]
    assert files("*/x.log", tmp_path) == ["link/x.log", "real/x.log"]
    assert files("**/*.log", tmp_path) == ["file-link.log", "real/x.log"]


def test_links_that_lead_nowhere_are_passed_over(tmp_path: Path) -> None:
    (tmp_path / "loop-a.txt").symlink_to("loop-b.txt")
    (tmp_path / "loop-b.txt").symlink_to("loop-a.txt")
    (tmp_path / "dangling.txt").symlink_to("missing.txt")
    (tmp_path / "ok.txt").write_text("x\n", encoding="utf-8")
    assert files("*.txt", tmp_path) == ["ok.txt"]


def test_a_glob_looking_at_too_many_entries_is_refused(tmp_path: Path) -> None:
    for i in range(60):
        (tmp_path / f"f{i}.dat").write_text("", encoding="utf-8")
    with pytest.raises(GlobTooBroad, match=r"looks at more than 50 directory entries; narrow it"):
        glob_files("**/*.none", tmp_path, max_matches=1000, max_entries=50)
    assert glob_files("**/*.none", tmp_path, max_matches=1000, max_entries=1000) == []


def test_a_glob_matching_too_many_files_is_refused(tmp_path: Path) -> None:
    for i in range(11):
        (tmp_path / f"f{i}.dat").write_text("", encoding="utf-8")
    with pytest.raises(GlobTooBroad, match=r"'\*\.dat' matches more than 10 files; narrow it"):
        glob_files("*.dat", tmp_path, max_matches=10, max_entries=1000)
    (tmp_path / "f10.dat").unlink()
    assert len(glob_files("*.dat", tmp_path, max_matches=10, max_entries=1000)) == 10


def test_an_absolute_pattern_gives_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n", encoding="utf-8")
    assert files(f"{tmp_path}/*.txt", Path("/nonexistent")) == [f"{tmp_path}/a.txt"]


def test_a_pattern_ending_in_a_slash_matches_no_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert files("*/", tmp_path) == []


def test_printable_shows_undecodable_bytes_as_escapes_and_leaves_the_rest() -> None:
    assert printable(os.fsdecode(b"bad\xffname\x80.txt")) == "bad\\xffname\\x80.txt"
    assert printable("caf\u00e9 \u65e5\u672c.txt") == "caf\u00e9 \u65e5\u672c.txt"
