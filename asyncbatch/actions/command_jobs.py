"""The command jobs of ``asyncbatch each``: the params of each input's ``command``
job, from ``-- PROGRAM [ARG]...`` or ``--shell LINE``.

What belongs to one input is filled in here, once per job: its name (``{name}``,
real bytes), its fields (``{1}``, ``{2}``..., a header's ``{NAME}``), its inputs
(``{inputs}``, with ``-n``), and for plain arguments (``--args``) ``{input}``,
``{stem}``, ``{suffix}`` and ``{parent}`` as the argument spells them. What the run
decides (``{#}``, ``{%}``) and what the file gives (``{input}``, absolute, and the
rest) are filled in when the job runs. Under ``--shell``, and in the script of
``sh -c SCRIPT``, every value is shell-quoted. Without any placeholder, the input
(or its fields, or its inputs) is appended as the last argument(s), as given.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from asyncbatch.actions.command import (
    COMMAND_ON_ARGUMENTS,
    COMMAND_PREPARED,
    program_problem,
    shell_script_index,
)
from asyncbatch.placeholders import PLACEHOLDERS, has_placeholder, prefill, template_problem
from asyncbatch.registry import ActionSpec

__all__ = ["Program", "argument_values", "command_spec"]


def command_spec(*, arguments: bool) -> ActionSpec:
    """The action of ``each``'s command jobs: over files, or over plain arguments
    (their params made here, taken as they are: see ``prepared``)."""
    return COMMAND_ON_ARGUMENTS if arguments else COMMAND_PREPARED


class Program:
    """What ``each`` runs per input: ``argv`` (``-- PROGRAM [ARG]...``) or a shell
    ``line`` (``--shell``), with the exit codes that count as success."""

    def __init__(
        self,
        *,
        argv: Sequence[str] | None = None,
        line: str | None = None,
        ok_exit_codes: Sequence[int] | None = None,
    ) -> None:
        self.argv = list(argv) if argv is not None else None
        self.line = line
        self.ok_exit_codes = list(ok_exit_codes) if ok_exit_codes is not None else None
        templates = self.argv if self.argv is not None else [line or ""]
        self._script = shell_script_index(self.argv) if self.argv else None
        self._appends = not any(_names_any(each) for each in templates)

    def problems(self, *, fields: Sequence[str], grouped: bool) -> list[str]:
        """What is wrong with the program, located on the command line (``argv[1]
        '{stme}': unknown placeholder ...``); ``fields`` are the field placeholders
        the inputs give, ``grouped`` whether a job takes several (``{inputs}``)."""
        known = [*PLACEHOLDERS, *fields, *(["inputs"] if grouped else [])]
        if self.argv is not None:
            if not self.argv:
                return ["-- needs a PROGRAM after it"]
            found = []
            for index, item in enumerate(self.argv):
                where = f"argv[{index}] {item!r}"
                problem = _problem(item, known)
                alone = item == "{inputs}" or index == self._script
                if problem is None and "{inputs}" in item and not alone:
                    problem = "{inputs} stands for several arguments: give it alone"
                if problem is not None:
                    found.append(f"{where}: {problem}")
            missing = None if found else program_problem(self.argv[0])
            return found + ([missing] if missing else [])
        problem = _problem(self.line or "", known)
        return [] if problem is None else [f"--shell {self.line!r}: {problem}"]

    def params(
        self, name: str, values: Mapping[str, str], appended: Sequence[str], group: Sequence[str]
    ) -> dict[str, Any]:
        """One job's params: ``values`` filled in (its name, fields, an argument's
        parts), ``group`` where ``{inputs}`` stands, ``appended`` after the rest
        when the program names no placeholder."""
        values = {**values, "name": name}
        params: dict[str, Any] = {}
        if self.argv is not None:
            argv: list[str] = []
            for index, item in enumerate(self.argv):
                quoted = index == self._script
                if item == "{inputs}":
                    argv.extend(_escaped(each) for each in group)
                    continue
                if quoted:  # the inputs, each quoted, as words of the script
                    item = prefill(item, {"inputs": _quoted(group)})
                argv.append(prefill(item, values, quote=quoted))
            if self._appends:
                argv.extend(_escaped(each) for each in appended)
            params["argv"] = argv
        else:
            line = prefill(self.line or "", {"inputs": _quoted(group)})
            line = prefill(line, values, quote=True)
            if self._appends:
                line += " " + _escaped(_quoted(appended))
            params["shell"] = line
        if self.ok_exit_codes is not None:
            params["ok_exit_codes"] = self.ok_exit_codes
        return params


def argument_values(value: str) -> dict[str, str]:
    """The placeholders of a plain argument (``--args``): ``{input}`` as given, and
    its ``{stem}``, ``{suffix}`` and ``{parent}`` as if it were a path."""
    base = os.path.basename(value)
    stem, dot, suffix = base.rpartition(".")
    if not stem or not dot:
        stem, suffix = base, ""
    else:
        suffix = "." + suffix
    return {
        "input": value,
        "stem": stem,
        "suffix": suffix,
        "parent": os.path.dirname(value) or ".",
    }


def _problem(template: str, known: Sequence[str]) -> str | None:
    problem = template_problem(template, known)
    if problem is not None and problem.startswith("unknown placeholder"):
        problem += "; write {{ and }} for literal braces"
    return problem


def _names_any(template: str) -> bool:
    try:
        return has_placeholder(template)
    except ValueError:  # a lone brace: a problem reported on its own
        return False


def _quoted(items: Sequence[str]) -> str:
    return " ".join(shlex.quote(each) for each in items)


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")
