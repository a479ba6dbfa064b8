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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asyncbatch.controls import Halt, check_delay, check_load, parse_size
from asyncbatch.options._printing import PrintingOptions
from asyncbatch.options._spelling import (
    BOTH,
    DASK,
    DISPLAY,
    OUTPUTS,
    RUNNING,
    SCHEDULER_ENV,
    Spelling,
    check_seconds,
    executor_names,
    file_path,
    one_of,
    option,
    order_names,
)

__all__ = [
    "BOTH",
    "DASK",
    "DISPLAY",
    "OUTPUTS",
    "RUNNING",
    "SCHEDULER_ENV",
    "PrintingOptions",
    "RunOptions",
    "Spelling",
    "check_seconds",
    "file_path",
    "option",
    "spellings",
]


def spellings(name: str) -> tuple[Spelling, ...]:
    """The command line spellings of the :class:`RunOptions` field ``name``."""
    for each in dataclasses.fields(RunOptions):
        if each.name == name:
            found: tuple[Spelling, ...] = each.metadata.get("spellings", ())
            return found
    raise KeyError(name)


@dataclass(frozen=True, slots=True)
class RunOptions(PrintingOptions):
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
            commands=("run",),
        ),
        Spelling(
            ("-j", "--max-concurrency"),
            "At most N jobs at once (default: 4).",
            RUNNING,
            int,
            metavar="N",
            env="ASYNCBATCH_MAX_CONCURRENCY",
            minimum=1,
            commands=("each",),
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
            commands=(*BOTH, "plan"),
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
    halt: Halt | None = option(
        None,
        Spelling(
            ("--halt",),
            "Stop early: WHEN now (cancel running jobs) or soon (let them finish), "
            "after N (or N%) jobs failed or succeeded: now,fail=1, soon,fail=10%.",
            RUNNING,
            str,
            metavar="WHEN,COND=N",
            value=Halt.parse,
        ),
        Spelling(
            ("--fail-fast",),
            "Stop at the first failure: start nothing new, cancel the rest (--halt now,fail=1).",
            RUNNING,
            bool,
            value=lambda given: Halt.failures(1) if given else None,
            unset=False,
        ),
        Spelling(
            ("--max-failures",),
            "Stop like --fail-fast after N failures (--halt now,fail=N).",
            RUNNING,
            int,
            metavar="N",
            minimum=1,
            value=Halt.failures,
        ),
    )
    """When the run stops early (``Halt.failures(1)``: fail fast); None: never."""
    resume: bool = option(
        False,
        Spelling(
            ("--resume",),
            "Reuse the successes recorded at --output whose inputs are unchanged.",
            OUTPUTS,
            bool,
            commands=(*BOTH, "plan"),
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
            commands=("run", "plan"),
        ),
    )
    strict: bool = option(
        False,
        Spelling(
            ("--strict",),
            "Unknown actions are config errors.",
            RUNNING,
            bool,
            commands=("run", "plan"),
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
            commands=("run", "plan"),
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
            check=lambda value: one_of(value, executor_names()),
            unset="local",
            show_default=True,
            completions=executor_names,
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
    retry_delay: float | None = option(
        None,
        Spelling(
            ("--retry-delay",),
            "First wait before a retry (default: the config's, else 0.1 s); doubles each time.",
            RUNNING,
            float,
            metavar="SECONDS",
            check=check_seconds,
        ),
    )
    """The first backoff wait of jobs that set no ``retry_delay`` of their own (None:
    the config's ``defaults.retry_delay``, else 0.1 s)."""
    delay: float | None = option(
        None,
        Spelling(
            ("--delay",),
            "Wait at least this long between two job starts.",
            RUNNING,
            float,
            metavar="SECONDS",
            check=check_delay,
        ),
    )
    load: float | None = option(
        None,
        Spelling(
            ("--load",),
            "Start no job while N or more processes are runnable on the machine.",
            RUNNING,
            float,
            metavar="N",
            check=check_load,
        ),
    )
    memfree: int | None = option(
        None,
        Spelling(
            ("--memfree",),
            "Start no job while less memory than SIZE is available (512M, 2G).",
            RUNNING,
            str,
            metavar="SIZE",
            value=parse_size,
        ),
    )
    """Bytes of available memory (``MemAvailable``) below which no job starts."""
    order: Literal["config", "history"] = option(
        "config",
        Spelling(
            ("--order",),
            "Start ready jobs in config order, or longest first by their last recorded "
            "duration (history: needs -o).",
            RUNNING,
            str,
            metavar="config|history",
            check=lambda value: one_of(value, order_names()),
            unset="config",
            show_default=True,
            completions=order_names,
        ),
    )
    """Which ready job starts first: the first in config order, or (``"history"``)
    the one that took longest when it last ran (jobs with no recorded duration after
    the others, in config order), read from the journal or report at ``output``."""

    def problems(self) -> list[str]:
        """Combinations that cannot run, as messages (usage errors, exit 2)."""
        found = []
        if self.scheduler is not None and self.executor != "dask":
            found.append("--scheduler needs --executor dask")
        if self.resume and self.output is None:
            found.append(
                "--resume needs --output: the journal to resume from lives beside the report"
            )
        if self.order == "history" and self.output is None:
            found.append(
                "--order history needs --output: the durations it orders by are recorded "
                "beside the report"
            )
        if (
            self.junit is not None
            and self.output is not None
            and self.junit.resolve() == self.output.resolve()
        ):
            found.append("--junit and --output must name different files")
        if self.results is not None and self.executor != "local":
            found.append(
                "--results needs the local executor: on a cluster, programs print on the workers"
            )
        if self.keep_order and self.line_buffer:
            found.append(
                "-k/--keep-order and --line-buffer: give only one of them (lines are "
                "printed as they come, blocks in order)"
            )
        return found

    def replace(self, **fields: Any) -> RunOptions:
        """These options with ``fields`` changed; an unknown name is a TypeError."""
        return dataclasses.replace(self, **fields)
