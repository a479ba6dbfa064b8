"""The config of ``asyncbatch each``: one job per command-line input, built as a
config file's jobs are (the same loader, globs, params validation), with problems
located in the command line's terms (``INPUT '...'``, ``-p KEY``, ``--action``, or
what the caller names the params, ``-- PROGRAM``) instead of ``jobs[0]...``.

It knows no action: the caller says which action each input runs and with which
params (for ``-- PROGRAM``, the action that runs programs builds them).

Each job is named by its input as given; a glob's matches are named by their paths
(relative to the current directory for a relative pattern). An input given twice,
or a file matched by two globs, is one job, the first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from asyncbatch.config._load import load_config_data
from asyncbatch.config._models import BatchConfig, LoadLimits
from asyncbatch.errors import ConfigError
from asyncbatch.registry import ActionRegistry

LABEL = "asyncbatch each"
"""What the report's ``config`` says, and what messages name, for lack of a file."""
_LOCATED = re.compile(r"^jobs\[(\d+)\](?:\.(params|action|input|name)(?=[.:\[]))?")


def parse_params(texts: Sequence[str]) -> dict[str, Any]:
    """``-p KEY=VALUE`` options as params: each value parsed as JSON when it parses,
    else taken as the string itself (``-p pattern=ERROR``, ``-p limit=10``,
    ``-p 'words=["a"]'``). A malformed option or a key given twice is a
    :class:`ConfigError`."""
    params: dict[str, Any] = {}
    problems = []
    for text in texts:
        key, equals, value = text.partition("=")
        if not equals or not key:
            problems.append(f"-p {text!r}: expected KEY=VALUE")
        elif key in params:
            problems.append(f"-p {key}: given twice")
        else:
            params[key] = _value(value)
    if problems:
        raise ConfigError(problems, source=LABEL)
    return params


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return text


def each_config(
    inputs: Sequence[str],
    *,
    action: str,
    registry: ActionRegistry,
    params: Mapping[str, Any] | Callable[[str], Mapping[str, Any]] | None = None,
    params_named: str = "-p",
    base_dir: str | os.PathLike[str] | None = None,
    limits: LoadLimits | None = None,
) -> BatchConfig:
    """The batch of ``each``: ``action`` on every input, with ``params`` (the same for
    every input, or made per input from its text). Paths resolve against
    ``base_dir`` (default: the current directory), which is also where programs
    run. Raises :class:`ConfigError` listing every problem, each located on the
    command line, the params as ``params_named`` says (``-p`` for ``-p KEY=VALUE``
    options); unknown actions are errors (there is no config to skip a job of)."""
    problems = [f"INPUT {item!r}: an empty path" for item in inputs if not item]
    if not inputs:
        problems.append("no INPUT given")
    if problems:
        raise ConfigError(problems, source=LABEL)
    unique = list(dict.fromkeys(inputs))
    made = params if callable(params) else (lambda item: params or {})
    raw = {
        "jobs": [
            {"name": item, "action": action, "input": item, "params": dict(made(item))}
            for item in unique
        ]
    }
    try:
        return load_config_data(
            raw,
            base_dir=Path.cwd() if base_dir is None else base_dir,
            label=LABEL,
            registry=registry,
            strict=True,
            limits=limits,
            name_matches_by_path=True,
        )
    except ConfigError as exc:
        relocated = (_relocate(problem, unique, params_named) for problem in exc.problems)
        raise ConfigError(list(dict.fromkeys(relocated)), source=LABEL) from None


def _relocate(problem: str, inputs: Sequence[str], params_named: str) -> str:
    """A loader problem about ``jobs[i]`` said in the command line's terms."""
    match = _LOCATED.match(problem)
    if match is None:
        return problem
    rest = problem[match.end() :]
    part = match.group(2)
    if part == "params" and params_named != "-p":
        return rest.removeprefix(".") if rest.startswith(".") else f"{params_named}{rest}"
    if part == "params":
        return f"-p {rest.removeprefix('.')}" if rest.startswith(".") else f"-p{rest}"
    if part == "action":
        return f"--action{rest}"
    return f"INPUT {inputs[int(match.group(1))]!r}{rest}"
