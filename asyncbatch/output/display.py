"""The run's display on stderr: live progress and ``-v`` lines, as the options ask."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig
    from asyncbatch.options import RunOptions
    from asyncbatch.output.progress import ProgressListener


def open_display(
    stack: contextlib.AsyncExitStack,
    config: BatchConfig,
    options: RunOptions,
    line: Callable[[str], None],
    stream: TextIO | None,
) -> ProgressListener | None:
    """Live progress on ``stream`` and ``-v`` lines through ``line``, as the options
    ask (None: neither); the live display ends with ``stack``. What the jobs print
    going to a terminal is the display there: no live progress is drawn over it
    unless asked for."""
    from asyncbatch.output.blocks import prints_to_terminal
    from asyncbatch.output.progress import (
        ProgressListener,
        ProgressState,
        live_progress,
        progress_wanted,
    )

    lines = line if options.verbose else None
    state = None
    wanted = options.progress if not prints_to_terminal(options) else False
    if progress_wanted(wanted, quiet=options.quiet, stream=stream, environ=os.environ):
        state = stack.enter_context(live_progress(ProgressState(len(config.jobs))))
    if state is None and lines is None:
        return None
    return ProgressListener(state, lines)
