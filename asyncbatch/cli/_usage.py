"""Usage errors, one style for every command: one line on stderr, ``error: WHAT:
why``, exit 2. Typer's own errors (an unknown option, a missing argument, a value
of the wrong type) are said that way too, instead of its boxed help excerpt:

    error: -j/--max-concurrency: Input should be greater than or equal to 1
    error: -j/--max-concurrency (from ASYNCBATCH_MAX_CONCURRENCY): Input should be ...
    error: no such option --fial-fast (did you mean --fail-fast?); see 'asyncbatch run --help'
    error: missing argument REPORT; see 'asyncbatch show --help'

The environment variable is named only when the value came from it.
"""

from __future__ import annotations

import difflib
from typing import Any

# Typer vendors click and re-exports none of its errors but BadParameter.
from typer._click import exceptions as click_errors

ClickException = click_errors.ClickException


def usage_line(exc: Any) -> str:
    """The ``error:`` line for a click error raised while parsing a command line."""
    ctx = getattr(exc, "ctx", None)
    see = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    if isinstance(exc, click_errors.MissingParameter):
        kind = "argument" if getattr(exc.param, "param_type_name", "") == "argument" else "option"
        return f"error: missing {kind} {_named(exc.param)}{see}"
    if isinstance(exc, click_errors.BadParameter):
        return f"error: {_named(exc.param, ctx)}: {_sentence(exc.message)}"
    if isinstance(exc, click_errors.NoSuchOption):
        guesses = difflib.get_close_matches(exc.option_name, exc.possibilities or (), 3, 0.7)
        guess = f" (did you mean {' or '.join(guesses)}?)" if guesses else ""
        return f"error: no such option {exc.option_name}{guess}{see}"
    if isinstance(exc, click_errors.BadOptionUsage):
        if "requires an argument" in exc.message:
            return f"error: {exc.option_name}: needs a value{see}"
        if "does not take a value" in exc.message:
            return f"error: {exc.option_name}: takes no value{see}"
    message = _sentence(exc.format_message())
    if isinstance(exc, click_errors.UsageError):
        return f"error: {message[:1].lower()}{message[1:]}{see}"
    return f"error: {message}"


def _named(param: Any, ctx: Any = None) -> str:
    """How a parameter is named in messages: ``-j/--max-concurrency``, ``REPORT``,
    and the environment variable its value came from, if it did."""
    if param is None:
        return "a value"
    if getattr(param, "param_type_name", "") == "argument":
        return str(getattr(param, "metavar", None) or (param.name or "").upper())
    name = "/".join(param.opts)
    if ctx is not None and param.name is not None:
        source = ctx.get_parameter_source(param.name)
        envvar = getattr(param, "envvar", None)
        if getattr(source, "name", None) == "ENVIRONMENT" and isinstance(envvar, str):
            name += f" (from {envvar})"
    return name


def _sentence(text: str) -> str:
    """``text`` without the full stop click ends its messages with."""
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text
