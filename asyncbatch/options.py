"""The options of a run, declared once: :class:`RunOptions`.

Each field is one option as the run uses it (its type, its default, what it means)
and, in its metadata, how the command line spells it (:class:`Spelling`: flags,
help, panel, environment variable, which commands take it). The command line builds
``run``'s and ``each``'s parameters from these declarations and hands a
``RunOptions`` to the session; the session, the engine and tests take the same
object. Adding an option is adding a field here and using it where it acts.

Plain data only: nothing here imports the command line's libraries.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

RUNNING, OUTPUTS, DISPLAY, DASK = "Running", "Outputs", "Display", "Dask"
SCHEDULER_ENV = "ASYNCBATCH_SCHEDULER"
"""The scheduler a Dask run uses when ``--scheduler`` is not given. Ambient, like a
shell profile's setting: it is read only when the executor is Dask, so that setting
it for the cluster breaks no local run (``--scheduler`` itself without ``--executor
dask`` is a usage error)."""
"""The help panels options are shown in."""
BOTH: tuple[str, ...] = ("run", "each")


@dataclass(frozen=True, slots=True)
class Spelling:
    """How the command line spells an option (one of a field's spellings).

    ``flags`` as click takes them (``"-j", "--max-concurrency"``, or
    ``"--progress/--no-progress"``); ``kind`` the type the command line reads (the
    field's own unless ``value`` maps it: ``--fail-fast`` is ``max_failures=1``);
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


def spellings(name: str) -> tuple[Spelling, ...]:
    """The command line spellings of the :class:`RunOptions` field ``name``."""
    for each in dataclasses.fields(RunOptions):
        if each.name == name:
            found: tuple[Spelling, ...] = each.metadata.get("spellings", ())
            return found
    raise KeyError(name)


def check_seconds(value: float | None) -> None:
    """Seconds as a config takes them: finite and greater than 0 (a config's words)."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ValueError("Input should be a finite number")
    if not value > 0:
        raise ValueError("Input should be greater than 0")


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


def _executors() -> Sequence[str]:
    return ("local", "dask")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything that shapes a run besides its jobs; see the module doc. Each
    default is the run's behaviour without the option."""

    max_concurrency: int | None = option(
        None,
        Spelling(
            ("-j", "--max-concurrency"),
            "At most N jobs at once (default: the config's, else 4).",
            RUNNING,
            int,
            metavar="N",
            env="ASYNCBATCH_MAX_CONCURRENCY",
            minimum=1,
        ),
    )
    """At most this many jobs run at once; None: the config's ``max_concurrency``,
    else 4."""
    output: Path | None = option(
        None,
        Spelling(
            ("-o", "--output"),
            "Write the JSON report (and its journal) there.",
            OUTPUTS,
            str,
            metavar="PATH",
            value=file_path,
        ),
    )
    dry_run: bool = option(
        False,
        Spelling(("--dry-run",), "Validate, print the plan, run nothing.", OUTPUTS, bool),
    )
    timeout: float | None = option(
        None,
        Spelling(
            ("--timeout",),
            "Default per-job timeout.",
            RUNNING,
            float,
            metavar="SECONDS",
            env="ASYNCBATCH_TIMEOUT",
            check=check_seconds,
        ),
    )
    """Seconds an attempt may run, for jobs that set no timeout of their own (None:
    the config's ``defaults.timeout``, else no limit)."""
    retries: int | None = option(
        None,
        Spelling(
            ("--retries",),
            "Default retries of a failed job.",
            RUNNING,
            int,
            metavar="N",
            env="ASYNCBATCH_RETRIES",
            minimum=0,
            maximum=1000,
        ),
    )
    max_failures: int | None = option(
        None,
        Spelling(
            ("--fail-fast",),
            "Stop at the first failure: start nothing new, cancel the rest.",
            RUNNING,
            bool,
            value=lambda given: 1 if given else None,
            unset=False,
        ),
        Spelling(
            ("--max-failures",),
            "Stop like --fail-fast after N failures.",
            RUNNING,
            int,
            metavar="N",
            minimum=1,
        ),
    )
    """After this many failed jobs nothing new starts and running jobs are cancelled
    (1: fail fast); None: never."""
    resume: bool = option(
        False,
        Spelling(
            ("--resume",),
            "Reuse the successes recorded at --output whose inputs are unchanged.",
            OUTPUTS,
            bool,
        ),
    )
    only: tuple[str, ...] = option(
        (),
        Spelling(
            ("--only",),
            "Run this job and what it needs (repeatable).",
            RUNNING,
            list[str],
            metavar="NAME",
            value=tuple,
            commands=("run",),
        ),
    )
    strict: bool = option(
        False,
        Spelling(
            ("--strict",),
            "Unknown actions are config errors.",
            RUNNING,
            bool,
            commands=("run",),
        ),
    )
    root: Path | None = option(
        None,
        Spelling(
            ("--root",),
            "Refuse inputs outside DIR (links followed), and code actions.",
            RUNNING,
            Path,
            metavar="DIR",
            commands=("run",),
        ),
    )
    junit: Path | None = option(
        None,
        Spelling(
            ("--junit",),
            "Also write a JUnit XML report there.",
            OUTPUTS,
            str,
            metavar="PATH",
            value=file_path,
        ),
    )
    quiet: bool = option(
        False,
        Spelling(("-q", "--quiet"), "Nothing on stderr unless a job fails.", DISPLAY, bool),
    )
    verbose: bool = option(
        False, Spelling(("-v", "--verbose"), "A line per finished job.", DISPLAY, bool)
    )
    progress: bool | None = option(
        None,
        Spelling(
            ("--progress/--no-progress",),
            "Live progress (default: on a terminal, unless CI is set).",
            DISPLAY,
            bool,
        ),
    )
    """Live progress on stderr; None: on a terminal, unless CI is set."""
    debug: bool = option(
        False,
        Spelling(
            ("--debug",),
            "Print each failed attempt's traceback.",
            DISPLAY,
            bool,
            env="ASYNCBATCH_DEBUG",
            unset=False,
        ),
    )
    executor: Literal["local", "dask"] = option(
        "local",
        Spelling(
            ("--executor",),
            "Where actions run: here, or on Dask (needs asyncbatch\\[dask]).",
            DASK,
            str,
            metavar="local|dask",
            env="ASYNCBATCH_EXECUTOR",
            check=lambda value: _one_of(value, _executors()),
            unset="local",
            show_default=True,
            completions=_executors,
        ),
    )
    scheduler: str | None = option(
        None,
        Spelling(
            ("--scheduler",),
            "Dask scheduler (tcp://HOST:PORT; default: $ASYNCBATCH_SCHEDULER with "
            "--executor dask, else a local cluster).",
            DASK,
            str,
            metavar="ADDRESS",
        ),
    )
    """The Dask scheduler's address; None: ``ASYNCBATCH_SCHEDULER`` when the executor
    is Dask (:data:`SCHEDULER_ENV`; the variable alone never breaks a local run),
    else a local cluster."""
    scheduler_timeout: float = option(
        10.0,
        Spelling(
            ("--scheduler-timeout",),
            "Wait this long for the scheduler (then exit 2).",
            DASK,
            float,
            metavar="SECONDS",
            check=check_seconds,
            unset=10.0,
            show_default=True,
        ),
    )

    def problems(self) -> list[str]:
        """Combinations that cannot run, as messages (usage errors, exit 2)."""
        found = []
        if self.scheduler is not None and self.executor != "dask":
            found.append("--scheduler needs --executor dask")
        if self.resume and self.output is None:
            found.append(
                "--resume needs --output: the journal to resume from lives beside the report"
            )
        if (
            self.junit is not None
            and self.output is not None
            and self.junit.resolve() == self.output.resolve()
        ):
            found.append("--junit and --output must name different files")
        return found

    def replace(self, **fields: Any) -> RunOptions:
        """These options with ``fields`` changed; an unknown name is a TypeError."""
        return dataclasses.replace(self, **fields)


def _one_of(value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"expected {' or '.join(repr(each) for each in allowed)}")
