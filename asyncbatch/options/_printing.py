"""The options of what a run prints on standard output (besides the summary): the
blocks of what command jobs print, their order and shape, and where their complete
streams are kept. A base of :class:`~asyncbatch.options.RunOptions`, declared as its
other fields are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asyncbatch.options._spelling import DISPLAY, OUTPUTS, Spelling, option


@dataclass(frozen=True, slots=True)
class PrintingOptions:
    """See the module doc; every default prints as the command does without it."""

    keep_order: bool = option(
        False,
        Spelling(
            ("-k", "--keep-order"),
            "Print each job's output in input order (config order), not as jobs end.",
            DISPLAY,
            bool,
        ),
    )
    """Blocks of program output (and ``--action`` lines) in the jobs' order: a finished
    job's block waits for the jobs before it."""
    line_buffer: bool = option(
        False,
        Spelling(
            ("--line-buffer",),
            "Print each line of output as soon as it is whole, not a block per job.",
            DISPLAY,
            bool,
        ),
    )
    tag: bool = option(
        False,
        Spelling(
            ("--tag",), "Prefix every line of output with the job's name and a tab.", DISPLAY, bool
        ),
    )
    results: Path | None = option(
        None,
        Spelling(
            ("--results",),
            "Keep each job's complete stdout and stderr in DIR/<name>/.",
            OUTPUTS,
            Path,
            metavar="DIR",
        ),
    )
    """Each command job's complete streams go to ``DIR/<name>/stdout`` and ``stderr``
    (named in its result); None: only their ends, in the report."""
    stdout: Literal["summary", "output", "results"] | None = option(
        None,
        Spelling(
            ("--show-output",),
            "Print what command jobs print (a block per job) instead of the summary.",
            DISPLAY,
            bool,
            value=lambda given: "output" if given else None,
            unset=False,
            commands=("run",),
        ),
        Spelling(
            ("--json",),
            "Print the JSON summary instead of what the jobs print.",
            DISPLAY,
            bool,
            value=lambda given: "summary" if given else None,
            unset=False,
            commands=("each",),
        ),
    )
    """What standard output carries: the JSON summary, what programs print (a block
    per job), or a JSON line per finished job; None: the command's own (``run``: the
    summary; ``each``: what its programs print, or its action's lines)."""
