"""The config of ``asyncbatch each``: one job per command-line input, built as a
config file's jobs are (the same loader, globs, params validation), with problems
located in the command line's terms (``INPUT '...'``, ``-p KEY``, ``--action``,
``argv[1]``) instead of ``jobs[0]...``.

Each job is named by its input as given; a glob's matches are named by their paths
(relative to the current directory for a relative pattern). An input given twice,
or a file matched by two globs, is one job, the first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asyncbatch.actions._command import has_placeholder, template_problem
from asyncbatch.config._expand import is_glob
from asyncbatch.config._load import load_config_data
from asyncbatch.config._models import BatchConfig, LoadLimits
from asyncbatch.errors import ConfigError
from asyncbatch.registry import ActionRegistry

LABEL = "asyncbatch each"
"""What the report's ``config`` says, and what messages name, for lack of a file."""
COMMAND = "command"
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
    action: str | None = None,
    params: Mapping[str, Any] | None = None,
    argv: Sequence[str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    registry: ActionRegistry | None = None,
    limits: LoadLimits | None = None,
) -> BatchConfig:
    """The batch of ``each``: ``action`` with ``params`` on every input, or with
    ``argv`` (``-- PROGRAM ARG...``) a ``command`` job per input, the input appended
    as the last argument when no argument holds a placeholder. Paths resolve
    against ``base_dir`` (default: the current directory), which is also the
    commands' working directory. Raises :class:`ConfigError` listing every problem,
    each located on the command line; unknown actions are errors (there is no
    config to skip a job of)."""
    if (action is None) == (argv is None):
        raise ValueError("give exactly one of action and argv")
    problems = [f"INPUT {item!r}: an empty path" for item in inputs if not item]
    if not inputs:
        problems.append("no INPUT given")
    if argv is not None:
        if params:
            problems.append("-p: needs --action (a command takes its arguments after --)")
        problems.extend(_argv_problems(argv))
    if problems:
        raise ConfigError(problems, source=LABEL)
    unique = list(dict.fromkeys(inputs))
    raw = {"jobs": [_job(item, action, params, argv) for item in unique]}
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
        relocated = (_relocate(problem, unique, argv is not None) for problem in exc.problems)
        raise ConfigError(list(dict.fromkeys(relocated)), source=LABEL) from None


def _argv_problems(argv: Sequence[str]) -> list[str]:
    if not argv:
        return ["-- needs a PROGRAM after it"]
    found = []
    for index, item in enumerate(argv):
        problem = template_problem(item)
        if problem is not None and problem.startswith("unknown placeholder"):
            problem += "; write {{ and }} for literal braces"
        if problem is not None:
            found.append(f"argv[{index}] {item!r}: {problem}")
    return found


def _job(
    item: str, action: str | None, params: Mapping[str, Any] | None, argv: Sequence[str] | None
) -> dict[str, Any]:
    if argv is None:
        return {"name": item, "action": action, "input": item, "params": dict(params or {})}
    templates = list(argv)
    if not any(has_placeholder(template) for template in templates):
        # The path as given: a glob's match is its job's name; a plain path is
        # written out, its braces doubled (an argument is a template).
        templates.append("{name}" if is_glob(item) else item.replace("{", "{{").replace("}", "}}"))
    return {"name": item, "action": COMMAND, "input": item, "params": {"argv": templates}}


def _relocate(problem: str, inputs: Sequence[str], command: bool) -> str:
    """A loader problem about ``jobs[i]`` said in the command line's terms."""
    match = _LOCATED.match(problem)
    if match is None:
        return problem
    rest = problem[match.end() :]
    part = match.group(2)
    if part == "params" and command:
        return rest.removeprefix(".") if rest.startswith(".") else f"-- PROGRAM{rest}"
    if part == "params":
        return f"-p {rest.removeprefix('.')}" if rest.startswith(".") else f"-p{rest}"
    if part == "action":
        return f"--action{rest}"
    return f"INPUT {inputs[int(match.group(1))]!r}{rest}"
