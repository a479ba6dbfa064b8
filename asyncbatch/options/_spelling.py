"""How the command line spells an option of :class:`~asyncbatch.options.RunOptions`:
:class:`Spelling`, the ``option`` field maker, and the checks spellings share.
Plain data: nothing here imports the command line's libraries."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUNNING, OUTPUTS, DISPLAY, DASK = "Running", "Outputs", "Display", "Dask"
"""The help panels options are shown in."""
BOTH: tuple[str, ...] = ("run", "each")
SCHEDULER_ENV = "ASYNCBATCH_SCHEDULER"
"""The scheduler a Dask run uses when ``--scheduler`` is not given. Ambient, like a
shell profile's setting: it is read only when the executor is Dask, so that setting
it for the cluster breaks no local run (``--scheduler`` itself without ``--executor
dask`` is a usage error)."""


def executor_names() -> Sequence[str]:
    """What ``--executor`` takes (and shell completion offers)."""
    return ("local", "dask")


def order_names() -> Sequence[str]:
    """What ``--order`` takes (and shell completion offers)."""
    return ("config", "history")


@dataclass(frozen=True, slots=True)
class Spelling:
    """How the command line spells an option (one of a field's spellings).

    ``flags`` as click takes them (``"-j", "--max-concurrency"``, or
    ``"--progress/--no-progress"``); ``kind`` the type the command line reads (the
    field's own unless ``value`` maps it: ``--fail-fast`` is ``halt=now,fail=1``);
    ``check`` refuses a value with a ``ValueError`` whose message is shown as is."""

    flags: tuple[str, ...]
    help: str
    panel: str
    kind: Any
    metavar: str = ""
    env: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    check: Callable[[Any], None] | None = None
    value: Callable[[Any], Any] | None = None
    """The field's value from the command line's (default: the same); a
    ``ValueError`` it raises is a usage error naming the option, its message shown."""
    unset: Any = None
    """What the command line gives when the option is not used."""
    commands: tuple[str, ...] = BOTH
    show_default: bool = False
    completions: Callable[[], Sequence[str]] | None = None
    """Values shell completion offers."""

    @property
    def name(self) -> str:
        """The command line parameter's name: its longest flag, as an identifier."""
        longest = max(self.flags[0].split("/")[0].split(), key=len)
        return longest.lstrip("-").replace("-", "_")

    @property
    def shown(self) -> str:
        """How messages name it (``-j/--max-concurrency``)."""
        return "/".join(flag.split("/")[0] for flag in self.flags)


def option(default: Any, *spellings: Spelling) -> Any:
    """A :class:`RunOptions` field with its default and its command line spellings."""
    return field(default=default, metadata={"spellings": spellings})


def check_seconds(value: float | None) -> None:
    """Seconds as a config takes them: finite and greater than 0 (a config's words)."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ValueError("Input should be a finite number")
    if not value > 0:
        raise ValueError("Input should be greater than 0")


def one_of(value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"expected {' or '.join(repr(each) for each in allowed)}")


def file_path(text: str) -> Path:
    """A path that must name a file (``-o``, ``--junit``, ``show --html``), read as
    typed: empty, or naming a folder (``.``, ``/``, ``out/``, ``sub/.``, ``..``) is a
    ``ValueError`` (a usage error), caught before a folder is taken for a file."""
    if not text:
        raise ValueError("an empty path; name a file")
    if "\x00" in text:
        raise ValueError("a path cannot hold a NUL byte")
    last = text.rstrip("/").rpartition("/")[2] if text.rstrip("/") else ""
    if text.endswith("/") or last in ("", ".", ".."):
        raise ValueError(f"{text!r} names a folder, not a file")
    return Path(text)
