"""The params models of the built-in actions: checked when a config is loaded, so a
bad regex or an unknown hash is a config error, located, even in a dry run."""

from __future__ import annotations

import re
import warnings
from re import _constants as _C  # type: ignore[attr-defined]  # no stub; CPython's own
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_REPEATS = frozenset({_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT})
_MAXREPEAT = _C.MAXREPEAT

HashAlgorithm = Literal[
    "blake2b",
    "blake2s",
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sha3_224",
    "sha3_256",
    "sha3_384",
    "sha3_512",
]
"""``hashlib.algorithms_guaranteed`` minus shake_128/shake_256, whose digest length
the caller would have to choose. Spelled out so mypy and the JSON Schema see it;
a test keeps it in step with hashlib."""


class NoParams(BaseModel):
    """Params of an action that takes none: any key given is a config error."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ChecksumParams(BaseModel):
    """Params of ``checksum``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    algorithm: HashAlgorithm = Field(
        default="sha256",
        description="Hash algorithm: any of hashlib's guaranteed ones but shake_*.",
    )


MAX_PATTERN_LENGTH = 100_000
"""Characters in a pattern: Python's regex parser reads some 250,000 a second, and a
search reads its pattern a few times over, in each worker process."""
MAX_GROUP_DEPTH = 100
"""Groups a pattern may nest: deeper, Python's regex parser and compiler would run
out of stack (they recurse once per group or more)."""
MAX_REPEATS = 100_000
"""Times a pattern may repeat one element, nested repeats multiplied
(``(a{1000}){1000}`` repeats ``a`` a million times)."""


def check_pattern(pattern: str) -> None:
    """Raise ``ValueError`` (a located config problem) unless ``pattern`` compiles,
    has at most :data:`MAX_PATTERN_LENGTH` characters, nests its groups at most
    :data:`MAX_GROUP_DEPTH` deep, repeats no element more than :data:`MAX_REPEATS`
    times and cannot match the empty string. Whatever the pattern, no other
    exception is raised."""
    # re._parser is CPython's own regex parser; typeshed has no stub for it, and the
    # public alias sre_parse raises a DeprecationWarning.
    from re import _parser  # type: ignore[attr-defined]

    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(
            f"it is {len(pattern):,} characters long; at most {MAX_PATTERN_LENGTH:,} are allowed"
        )
    if _group_depth(pattern) > MAX_GROUP_DEPTH:
        raise ValueError(f"its groups nest more than {MAX_GROUP_DEPTH} deep; flatten it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set" and the like: not problems
        try:
            tree = _parser.parse(pattern)
            repeats = _most_repeats(tree.data)
            if repeats > MAX_REPEATS:
                raise ValueError(
                    f"it repeats an element {repeats:,} times (nested repeats multiply); "
                    f"at most {MAX_REPEATS:,} are allowed"
                )
            re.compile(pattern)
            width = tree.getwidth()[0]
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        except (OverflowError, RecursionError, MemoryError) as exc:
            # OverflowError: "the repetition number is too large" (a{4294967296})
            reason = str(exc) if isinstance(exc, OverflowError) else "too complex to compile"
            raise ValueError(f"invalid regular expression: {reason}") from None
    if width == 0:
        shown = pattern if len(pattern) <= 60 else pattern[:57] + "..."
        raise ValueError(
            f"pattern {shown!r} can match the empty string, so it would match "
            "everywhere; make it match at least one character"
        )


def _group_depth(pattern: str) -> int:
    """How deep the groups of ``pattern`` nest, read from its text (escapes and
    character classes skipped), without recursion; at most ``MAX_GROUP_DEPTH + 1``."""
    if pattern.count("(") <= MAX_GROUP_DEPTH:
        return 0  # cannot be deeper than that
    depth = most = 0
    position, size = 0, len(pattern)
    in_class = False
    while position < size and most <= MAX_GROUP_DEPTH:
        char = pattern[position]
        position += 1
        if char == "\\":
            position += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith("^", position):
                position += 1
            if pattern.startswith("]", position):  # a ']' first is a literal
                position += 1
        elif char == "(":
            depth += 1
            most = max(most, depth)
        elif char == ")":
            depth = max(depth - 1, 0)
    return most


def _most_repeats(items: Any) -> int:
    """The most times one element of the parsed sequence ``items`` may repeat,
    nested repeats multiplied (an unbounded repeat counts its minimum, or 1)."""
    most = 1
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            count = max(low, 1) if high == _MAXREPEAT else high
            most = max(most, count * _most_repeats(sub))
        elif op is _C.SUBPATTERN:
            most = max(most, _most_repeats(av[3]))
        elif op is _C.ATOMIC_GROUP:
            most = max(most, _most_repeats(av))
        elif op in (_C.ASSERT, _C.ASSERT_NOT):
            most = max(most, _most_repeats(av[1]))
        elif op is _C.BRANCH:
            most = max([most, *(_most_repeats(branch) for branch in av[1])])
        elif op is _C.GROUPREF_EXISTS:
            most = max(most, _most_repeats(av[1]), _most_repeats(av[2] or ()))
    return most


class SearchPatternParams(BaseModel):
    """Params of ``search_pattern``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pattern: str = Field(
        description="Python regular expression; ^ and $ anchor at each line's start and end."
    )
    ignore_case: bool = Field(default=False, description="Match case-insensitively.")

    @field_validator("pattern")
    @classmethod
    def _pattern_matches_text(cls, pattern: str) -> str:
        """Reject, at config load, a pattern that cannot compile, nests or repeats
        too much, or would match the empty string (and so "match" everywhere)."""
        check_pattern(pattern)
        return pattern
