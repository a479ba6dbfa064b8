"""Read a TOML config: :func:`load_toml`, imported only for a ``.toml`` config
(``tomllib`` and the patterns here are not needed by any other)."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from asyncbatch.config._syntax import (
    DOUBLE_QUOTED,
    MAX_NESTING,
    MULTILINE_STRINGS,
    SINGLE_QUOTED,
    TooDeep,
    Unreadable,
)


def load_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``; a syntax error is :class:`Unreadable` with its line and
    column first, a key of too many dotted parts :class:`TooDeep`."""
    _check_dotted_keys(text)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Unreadable(_toml_problem(str(exc))) from None


_TOML_SEGMENT = rf"(?:[A-Za-z0-9_-]++|{DOUBLE_QUOTED}|{SINGLE_QUOTED})"
_TOML_DOTTED_KEYS = re.compile(
    # a key of more than MAX_NESTING dotted parts; else strings and comments, passed over
    rf"(?<![\w.\"'-])(?P<key>{_TOML_SEGMENT}(?:[ \t]*+\.[ \t]*+{_TOML_SEGMENT}){{{MAX_NESTING},}}+)"
    rf"|{MULTILINE_STRINGS}|{DOUBLE_QUOTED}|{SINGLE_QUOTED}|#[^\n]*",
    re.DOTALL,
)


def _check_dotted_keys(text: str) -> None:
    """Refuse a TOML key of more than :data:`MAX_NESTING` dotted parts before
    ``tomllib`` reads it: its cost grows with the square of the parts (100,000
    parts: tens of gigabytes)."""
    if text.count(".") <= MAX_NESTING:
        return
    for match in _TOML_DOTTED_KEYS.finditer(text):
        if match.group("key") is not None:
            raise TooDeep(match.start())


_TOML_PLACE = re.compile(r"^(?P<message>.*?) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _toml_problem(text: str) -> str:
    """tomllib's ``Invalid value (at line 3, column 10)`` located as JSON and YAML
    problems are: ``line 3, column 10: Invalid value``."""
    found = _TOML_PLACE.match(text)
    if found is None:
        return f"invalid TOML: {text}"
    return f"line {found['line']}, column {found['column']}: {found['message']}"
