"""The README and the pages under docs/ stay honest: the README is short, every
relative link (and its anchor) leads somewhere, the MkDocs nav lists every page, the
README's quick start runs as written from a copy of the repository's ``data/``, and
no page speaks in internal jargon."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import unicodedata
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))
MARKDOWN = [README, *PAGES]
TIMEOUT = 60

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.*?) *$", re.MULTILINE)
_EXPLICIT_ID = re.compile(r"\s*\{#([\w-]+)\}$")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The text without fenced blocks and inline code, where a link is not a link."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def slugify(heading: str) -> str:
    """The anchor of a heading, as MkDocs' toc extension (and GitHub, for these
    headings) makes it: markup dropped, lower case, punctuation removed, spaces to
    hyphens."""
    text = re.sub(r"[`*_]", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", read(path))):
        explicit = _EXPLICIT_ID.search(heading)
        found.add(explicit.group(1) if explicit else slugify(heading))
    return found


def links(path: Path) -> list[str]:
    return [target for target in _LINK.findall(prose(read(path))) if ":" not in target]


# --- the README ----------------------------------------------------------------------


def test_the_readme_is_short() -> None:
    assert len(read(README).splitlines()) < 260


def test_the_readme_says_what_it_is_before_anything_else() -> None:
    """A newcomer reads what asyncbatch is first, then how to install and start."""
    headings = re.findall(r"^## (.*)$", read(README), re.MULTILINE)
    assert headings[:2] == ["Install", "Quick start"]
    intro = read(README).split("\n## ", 1)[0]
    assert "asyncbatch runs a batch of file jobs" in intro


# --- links -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_every_relative_link_leads_to_a_file_and_anchor_that_exist(path: Path) -> None:
    broken: list[str] = []
    for target in links(path):
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
            continue
        if not destination.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        if path.parent == DOCS and not destination.is_relative_to(DOCS):
            broken.append(f"{target}: outside docs/ (MkDocs cannot follow it)")
        if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with the anchor #{anchor}")
    assert broken == []


def test_the_readme_links_to_every_docs_page() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(README)}
    assert [page.name for page in PAGES if page.resolve() not in linked] == []


def test_the_mkdocs_nav_lists_every_page_once_and_nothing_else() -> None:
    config = yaml.safe_load(read(ROOT / "mkdocs.yml"))
    assert config["strict"] is True
    assert config["theme"]["name"] == "material"

    def files(entries: list[object]) -> list[str]:
        found: list[str] = []
        for entry in entries:
            assert isinstance(entry, dict)
            for value in entry.values():
                found.extend(files(value) if isinstance(value, list) else [value])
        return found

    nav = files(config["nav"])
    assert sorted(nav) == [page.name for page in PAGES]
    assert nav[0] == "index.md"


def test_the_show_page_is_there_for_its_author() -> None:
    assert read(DOCS / "show.md").startswith("# Reading a report: asyncbatch show\n")


# --- words -----------------------------------------------------------------------------

JARGON = {
    "SPEC": re.compile(r"\bspec\b", re.IGNORECASE),
    "PERF-NOTES": re.compile(r"perf[-_ ]notes", re.IGNORECASE),
    "issue N": re.compile(r"\bissue\s", re.IGNORECASE),
    "thread hop": re.compile(r"\bthread hops?\b|\ba hop\b", re.IGNORECASE),
}


@pytest.mark.parametrize(
    "path",
    [*MARKDOWN, ROOT / "mkdocs.yml"],
    ids=[str(p.relative_to(ROOT)) for p in [*MARKDOWN, ROOT / "mkdocs.yml"]],
)
def test_no_page_speaks_internal_jargon(path: Path) -> None:
    text = read(path)
    assert [word for word, pattern in JARGON.items() if pattern.search(text)] == []


# --- the quick start runs as written ---------------------------------------------------

RUNNABLE_SECTIONS = ("Quick start", "What people do most")


def readme_sessions() -> list[tuple[str, str | None]]:
    """Each ``$ asyncbatch ...`` line of the runnable sections' console blocks, in
    order, with the output the README shows after it (None when it shows none)."""
    text = read(README)
    sessions: list[tuple[str, str | None]] = []
    for title in RUNNABLE_SECTIONS:
        match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
        assert match is not None, f"README has no section {title!r}"
        for language, body in _FENCE.findall(match.group(1)):
            if language != "console":
                continue
            for line in body.splitlines():
                if line.startswith("$ "):
                    sessions.append((line[2:].split("  #", 1)[0].strip(), None))
                else:
                    assert sessions, f"output before any command in {title!r}: {line!r}"
                    command, shown = sessions[-1]
                    sessions[-1] = (command, f"{shown or ''}{line}\n")
    return sessions


SESSIONS = readme_sessions()


def test_the_quick_start_shows_only_asyncbatch_commands_and_json_outputs() -> None:
    """Every command of these sections is run below, so none may be skipped: each is
    an ``asyncbatch`` command, and each output shown is JSON, compared exactly."""
    assert len(SESSIONS) >= 5
    assert [command for command, _ in SESSIONS if not command.startswith("asyncbatch ")] == []
    for _, shown in SESSIONS:
        if shown is not None:
            json.loads(shown)
    commands = " ".join(command for command, _ in SESSIONS)
    for needed in ("asyncbatch run ", "asyncbatch each ", "--resume", "asyncbatch show "):
        assert needed in commands


def written_files(command: str) -> list[str]:
    """The files a command says it writes (``-o``, ``--junit``, ``--html``)."""
    words = shlex.split(command)
    flags = {"-o", "--output", "--junit", "--html"}
    return [after for before, after in pairwise(words) if before in flags]


@pytest.mark.slow
def test_the_quick_start_runs_as_written_from_a_copy_of_the_data(tmp_path: Path) -> None:
    """Each command through ``bash`` (quotes and globs as a reader's shell sees them)
    in a copy of ``data/``, with ``asyncbatch`` being this interpreter's module."""
    clone = tmp_path / "clone"
    shutil.copytree(
        ROOT / "data", clone / "data", ignore=shutil.ignore_patterns("batch_report.json*")
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "asyncbatch"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m asyncbatch "$@"\n')
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NO_COLOR": "1",
    }
    for command, shown in SESSIONS:
        done = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            check=False,
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert "Traceback" not in done.stderr, command
        if shown is not None:
            assert json.loads(done.stdout) == json.loads(shown), command
        for name in written_files(command):
            assert (clone / name).is_file(), f"{command}: wrote no {name}"
