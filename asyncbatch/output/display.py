"""What a run shows people on stderr while it goes: the live progress, a line per
finished job (``-v``), each failed attempt's traceback (``--debug``), written where
stderr is at each write (a live display redirects it to print above itself)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

from asyncbatch.errors import RemoteError, describe_error

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig, Job
    from asyncbatch.options import RunOptions
    from asyncbatch.output.progress import ProgressListener


def open_display(
    stack: contextlib.AsyncExitStack,
    config: BatchConfig,
    options: RunOptions,
    stderr: Stderr,
    history: Mapping[str, float] | None,
) -> ProgressListener | None:
    """Live progress and ``-v`` lines on ``stderr``, as the options ask (None:
    neither); the live display ends with ``stack``. With ``history``, the ETA counts
    the jobs' recorded durations from the first second. What the jobs print going
    to a terminal is the display there: no live progress is drawn over it unless
    asked for."""
    from asyncbatch.output.blocks import prints_to_terminal
    from asyncbatch.output.progress import ProgressListener, ProgressState, live_progress

    lines = stderr.line if options.verbose else None
    state = None
    stream = stderr.stream()
    wanted = options.progress if not prints_to_terminal(options) else False
    if progress_wanted(wanted, quiet=options.quiet, stream=stream, environ=os.environ):
        progress = ProgressState(len(config.jobs))
        if history:
            from asyncbatch.config import concurrency

            slots = concurrency(config, options.max_concurrency)
            progress.expect([job.name for job in config.jobs], history, slots)
        state = stack.enter_context(live_progress(progress))
    if state is None and lines is None:
        return None
    return ProgressListener(state, lines)


class Tracebacks:
    """``--debug``: each failed attempt's traceback, as Python prints it, on stderr."""

    def __init__(self, line: Callable[[str], None]) -> None:
        self._line = line

    def job_attempt_failed(self, job: Job, attempt: int, error: BaseException) -> None:
        import traceback

        if isinstance(error, RemoteError):
            text = f"{describe_error(error)['message']}\n(raised in a worker: no traceback)"
        else:
            text = "".join(traceback.format_exception(error)).rstrip("\n")
        self._line(f"traceback of {job.name} (attempt {attempt}):")
        for line in text.splitlines():  # one at a time: a line is escaped whole
            self._line(line)


class Stderr:
    """Where lines for people go: the stream given, else ``sys.stderr`` looked up at
    each write (a live display redirects it to print above itself)."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def stream(self) -> TextIO | None:
        """None when the process started with its stderr closed."""
        return self._stream if self._stream is not None else sys.stderr

    def line(self, text: str) -> None:
        from asyncbatch.output.terminal import write_line

        write_line(self.stream(), text)


_FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})


def running_under_ci(environ: Mapping[str, str]) -> bool:
    """True when ``CI`` is set to anything but an empty or false-like value
    (``0``, ``false``, ``no``, ``off``): GitHub Actions, GitLab CI, CircleCI, Travis,
    Buildkite, Bitbucket, Drone and AppVeyor all set it (``true`` or ``1``)."""
    return environ.get("CI", "").strip().lower() not in _FALSE_VALUES


def progress_wanted(
    option: bool | None, *, quiet: bool, stream: TextIO | None, environ: Mapping[str, str]
) -> bool:
    """Whether to show live progress on ``stream``.

    ``--quiet`` wins over everything (its promise is a silent stderr); then an
    explicit ``--progress``/``--no-progress``; otherwise progress shows when
    ``stream`` is a terminal (not ``TERM=dumb``) and not under CI. Never without a
    stream (a process started with its stderr closed)."""
    if quiet or stream is None:
        return False
    if option is not None:
        return option
    if environ.get("TERM") == "dumb" or running_under_ci(environ):
        return False
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False
