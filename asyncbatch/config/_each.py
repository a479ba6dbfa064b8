"""The config of ``asyncbatch each``: one job per input (:mod:`._inputs`), built as a
config file's jobs are (the same loader, params validation), with problems located
in the command line's terms (``INPUT '...'``, ``-p KEY``, ``--action``, or what the
caller names the params, ``-- PROGRAM``) instead of ``jobs[0]...``.

It knows no action: the caller says which action each input runs and with which
params (for ``-- PROGRAM``, the action that runs programs builds them).

An INPUT argument that names an existing file is taken as it is, whatever
characters it holds (the shell may have expanded ``*.txt`` into ``[x].txt``); one
that does not exist and holds glob characters is expanded as in configs, each match
named by its path (relative to the current directory for a relative pattern). A
file a glob matches again is not a second job; any other repeated input is, named
``NAME#2``, ``NAME#3``... Names show undecodable bytes as ``\\xNN``; paths and
programs keep the real bytes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from asyncbatch.config._expand import is_glob
from asyncbatch.config._globs import GlobTooBroad, glob_files, printable
from asyncbatch.config._inputs import LABEL, Entry, grouped
from asyncbatch.config._load import load_config_data
from asyncbatch.config._models import BatchConfig, LoadLimits
from asyncbatch.errors import ConfigError
from asyncbatch.registry import ActionRegistry

_LOCATED = re.compile(r"^jobs\[(\d+)\](?:\.(params|action|input|name)(?=[.:\[]))?")

Params = Mapping[str, Any] | Callable[[Entry, str], Mapping[str, Any]] | None
"""The params of every job, or made per job from its entry and its name's text."""


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
    inputs: Sequence[str | Entry],
    *,
    action: str,
    registry: ActionRegistry,
    params: Params = None,
    params_named: str = "-p",
    base_dir: str | os.PathLike[str] | None = None,
    limits: LoadLimits | None = None,
    group_size: int | None = None,
) -> BatchConfig:
    """The batch of ``each``: ``action`` on every input (a string is an INPUT
    argument, which may be a glob), with ``params`` (the same for every job, or
    made per job). ``group_size`` (``-n``) gives a job that many consecutive
    inputs. Paths resolve against ``base_dir`` (default: the current directory),
    which is also where programs run. Raises :class:`ConfigError` listing every
    problem, each located on the command line, the params as ``params_named`` says
    (``-p`` for ``-p KEY=VALUE`` options); unknown actions are errors (there is no
    config to skip a job of)."""
    base = Path.cwd() if base_dir is None else Path(base_dir)
    limits = limits or LoadLimits()
    entries = [Entry(item, glob=True) if isinstance(item, str) else item for item in inputs]
    problems = [f"INPUT {entry.value!r}: an empty path" for entry in entries if not entry.value]
    if problems:
        raise ConfigError(problems, source=LABEL)
    expanded = _expanded(entries, base, limits)
    if group_size is not None:
        expanded = [(entry, False) for entry in grouped([e for e, _ in expanded], group_size)]
    named = _named(expanded)
    made = params if callable(params) else (lambda entry, name: params or {})
    raw = {
        "jobs": [
            {
                "name": printable(name),
                "action": action,
                "input": printable(entry.value),
                "params": dict(made(entry, name)),
            }
            for entry, name in named
        ]
    }
    try:
        config = load_config_data(
            raw,
            base_dir=base,
            label=LABEL,
            registry=registry,
            strict=True,
            limits=limits,
            literal_inputs=True,
        )
    except ConfigError as exc:
        shown = [printable(entry.value) for entry, _ in named]
        relocated = (_relocate(problem, shown, params_named) for problem in exc.problems)
        raise ConfigError(list(dict.fromkeys(relocated)), source=LABEL) from None
    for job, (entry, _) in zip(config.jobs, named, strict=True):
        job.path = config.base_dir / entry.value  # real bytes; the report shows them escaped
    return config


def _expanded(entries: Sequence[Entry], base: Path, limits: LoadLimits) -> list[tuple[Entry, bool]]:
    """Each entry, a glob's matches in its place: ``(entry, matched)``."""
    found: list[tuple[Entry, bool]] = []
    for entry in entries:
        value = entry.value
        if not entry.glob or not is_glob(value) or os.path.lexists(base / value):
            found.append((entry, False))
            continue
        try:
            matches = glob_files(
                value,
                base,
                max_matches=limits.max_glob_matches,
                max_entries=limits.max_glob_entries,
            )
        except GlobTooBroad as exc:
            raise ConfigError([f"INPUT {value!r}: {exc}"], source=LABEL) from None
        if not matches:
            found.append((entry, False))  # runs, and fails: no such file
        found.extend((Entry(match), True) for match in matches)
    return found


def _named(entries: Sequence[tuple[Entry, bool]]) -> list[tuple[Entry, str]]:
    """Each job's name (its real text; printed, undecodable bytes are escaped): the
    input, ``NAME (+K)`` for a job of several, ``NAME#2`` for a repeat. A glob's
    match already named is left out."""
    taken: set[str] = set()
    named: list[tuple[Entry, str]] = []
    for entry, matched in entries:
        base = entry.value
        if len(entry.group) > 1:
            base += f" (+{len(entry.group) - 1})"
        if matched and printable(base) in taken:
            continue
        name, count = base, 1
        while printable(name) in taken:
            count += 1
            name = f"{base}#{count}"
        taken.add(printable(name))
        named.append((entry, name))
    return named


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
