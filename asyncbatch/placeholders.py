"""Templates with placeholders: ``{input}``, ``{name}``, ``{stem}``, ``{suffix}``,
``{parent}``, ``{config_dir}``, ``{#}`` (the job's number) and ``{%}`` (its slot);
``{{`` and ``}}`` are literal braces.

What a ``command`` job runs, the outputs any action declares with templates, and
the arguments ``asyncbatch each`` builds are all templates: checked once when the
config loads (an unknown placeholder is a located config error), filled in per job.
With ``quote``, every value is inserted shell-quoted, so that a file named
``a b;$(touch x).txt`` is one word, never code.
"""

from __future__ import annotations

import os
import shlex
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncbatch.registry import JobContext

PLACEHOLDERS = ("input", "name", "stem", "suffix", "parent", "config_dir", "#", "%")
"""What a template may name: see the module docstring."""
OUTPUT_PLACEHOLDERS = tuple(name for name in PLACEHOLDERS if name != "%")
"""What an output's template may name: an output is known before any attempt runs,
so it cannot depend on the slot."""
UNKNOWN_SLOT = "{%}"
"""What ``{%}`` stands for where no attempt runs (a dry run's plan)."""


def template_problem(template: str, known: Sequence[str] = PLACEHOLDERS) -> str | None:
    """Why ``template`` is not a valid template (None if it is)."""
    try:
        fields = [
            (name, spec, conv) for _, name, spec, conv in _parse(template) if name is not None
        ]
    except ValueError as exc:  # a lone { or }
        return f"{exc} (write {{{{ and }}}} for literal braces)".replace("'", "")
    for name, spec, conversion in fields:
        if name not in known or spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            listed = ", ".join(f"{{{each}}}" for each in known)
            return f"unknown placeholder {{{shown}}} (known: {listed})"
    return None


def check_templates(templates: Iterable[str], known: Sequence[str] = PLACEHOLDERS) -> None:
    """Raise ``ValueError`` (a located config problem, from a pydantic validator)
    for the first template that is not valid."""
    for template in templates:
        problem = template_problem(template, known)
        if problem is not None:
            raise ValueError(problem)


def has_placeholder(template: str) -> bool:
    """Whether ``template`` names a placeholder (a valid template is assumed)."""
    return any(name is not None for _, name, _, _ in _parse(template))


def named(template: str) -> set[str]:
    """The placeholders ``template`` names (a valid template is assumed)."""
    return {name for _, name, _, _ in _parse(template) if name is not None}


def fill(template: str, values: Mapping[str, str], quote: bool = False) -> str:
    """``template`` with its placeholders replaced (shell-quoted with ``quote``)."""
    parts = []
    for literal, name, _, _ in _parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(shlex.quote(values[name]) if quote else values[name])
    return "".join(parts)


def prefill(template: str, values: Mapping[str, str], quote: bool = False) -> str:
    """``template`` with only the placeholders ``values`` names filled in (shell-quoted
    with ``quote``): the others stay, and the result is a template again (the values'
    and the literal text's braces doubled). A valid template is assumed."""
    parts = []
    for literal, name, _, _ in _parse(template):
        parts.append(_escaped(literal))
        if name is None:
            continue
        if name in values:
            parts.append(_escaped(shlex.quote(values[name]) if quote else values[name]))
        else:
            parts.append("{" + name + "}")
    return "".join(parts)


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def job_values(path: str | os.PathLike[str], job: JobContext) -> dict[str, str]:
    """The placeholders' values for ``job`` over the input at ``path``: ``stem`` and
    ``suffix`` as ``pathlib`` splits the file name (``.bashrc`` has no suffix). String
    operations, not ``Path`` objects: a config's load asks every job for its outputs."""
    where = os.path.abspath(path)
    name = os.path.basename(where)
    dot = name.rfind(".")
    split = 0 < dot < len(name) - 1
    return {
        "input": where,
        "name": job.name,
        "stem": name[:dot] if split else name,
        "suffix": name[dot:] if split else "",
        "parent": os.path.dirname(where),
        "config_dir": os.fspath(job.config_dir),
        "#": str(job.number),
        "%": UNKNOWN_SLOT if job.slot is None else str(job.slot),
    }


def filled_outputs(templates: Sequence[str]) -> Callable[[Path, Any, JobContext], list[str]]:
    """An ``outputs`` capability from templates (``"thumbs/{stem}.png"``), checked
    now: an unknown placeholder is a ``ValueError`` where the action is declared."""
    checked = list(templates)
    check_templates(checked, OUTPUT_PLACEHOLDERS)

    def outputs(path: Path, params: Any, job: JobContext) -> list[str]:
        values = job_values(path, job)
        return [fill(template, values) for template in checked]

    return outputs


def _parse(template: str) -> Iterable[tuple[str, str | None, str | None, str | None]]:
    return string.Formatter().parse(template)
