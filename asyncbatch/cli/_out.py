"""What the command prints: JSON on stdout, lines for people on stderr, and the
exits with a message."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TextIO, TypeVar

import typer

from asyncbatch.errors import ConfigError, OutputError
from asyncbatch.output.terminal import write_line

EXIT_OK, EXIT_USAGE = 0, 2
MAX_PRINTED = 50
"""Config problems (and warnings) printed on stderr; the rest are counted. The
dry run's JSON on stdout lists every problem."""
T = TypeVar("T")


def fail_config(exc: ConfigError) -> NoReturn:
    where = f"{exc.source}: " if exc.source else ""
    err_capped([f"error: {where}{problem}" for problem in exc.problems], "problems")
    err("error: the config is invalid; nothing was run")
    raise typer.Exit(EXIT_USAGE)


def err_capped(lines: list[str], what: str) -> None:
    """The first :data:`MAX_PRINTED` lines on stderr, then how many more there are."""
    for line in lines[:MAX_PRINTED]:
        err(line)
    if len(lines) > MAX_PRINTED:
        err(f"... and {len(lines) - MAX_PRINTED} more {what}")


def checked(func: Callable[..., T], *args: Any) -> T:
    """Call ``func``; an OutputError (cannot write there, report locked) is exit 2."""
    try:
        return func(*args)
    except OutputError as exc:
        exit_error(str(exc))


def exit_error(message: str) -> NoReturn:
    err(f"error: {message}")
    raise typer.Exit(EXIT_USAGE)


def print_json(value: object, what: str = "the summary") -> bool:
    """``value`` as indented JSON on stdout (see :func:`print_text`)."""
    return print_text(json.dumps(value, indent=2) + "\n", what)


def print_text(text: str, what: str = "the text") -> bool:
    """``text`` on stdout; whether it got there. A closed or full stdout is said on
    stderr (the caller makes it exit 2: a lost summary is never a success; the
    report file says the rest)."""
    stream = sys.stdout
    if stream is None:  # started with its stdout closed
        err(f"error: cannot write {what} to standard output: it is closed")
        return False
    try:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
    except (OSError, ValueError) as exc:  # ValueError: the stream is closed
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        err(f"error: cannot write {what} to standard output: {reason}")
        _discard(stream)
        return False
    return True


def err(message: str) -> None:
    """A line for people on stderr, control characters shown as escapes."""
    write_line(sys.stderr, message)


def _discard(stream: TextIO) -> None:
    """Point a broken stream's descriptor at /dev/null, so that the interpreter's
    last flush at exit neither fails nor prints an "Exception ignored" warning."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
