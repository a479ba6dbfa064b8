"""What the format readers share: the nesting bound, the patterns of quoted strings
and the located syntax errors they raise. Below :mod:`._formats` (which dispatches
to a reader) and the readers (:mod:`._toml`, :mod:`._yaml`), so that none of them
imports another's module back."""

from __future__ import annotations

MAX_NESTING = 100
"""Levels of objects and lists a config may nest, its top level counted."""

DOUBLE_QUOTED = r'"(?:[^"\\]|\\.)*+"'
SINGLE_QUOTED = r"'[^'\n]*+'"
MULTILINE_STRINGS = r'"""(?:[^\\]|\\.)*?"""|' + r"'''.*?'''"


class Unreadable(ValueError):
    """A syntax error, its message located as the user reads it (raised by the TOML
    and YAML readers)."""


class DuplicateKey(ValueError):
    pass


class TooDeep(ValueError):
    def __init__(self, at: int) -> None:
        super().__init__(at)
        self.at = at


class AliasBomb(ValueError):
    pass
