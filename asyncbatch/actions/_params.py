"""The params models of the built-in actions: checked when a config is loaded, so a
bad regex or an unknown hash is a config error, located, even in a dry run."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


def _min_width(pattern: str) -> int:
    """The fewest characters ``pattern`` can match (0: it can match the empty string)."""
    # re._parser is CPython's own regex parser; typeshed has no stub for it, and the
    # public alias sre_parse raises a DeprecationWarning.
    from re import _parser  # type: ignore[attr-defined]

    width: int = _parser.parse(pattern).getwidth()[0]
    return width


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
        """Reject, at config load, a pattern that cannot compile or would match
        the empty string (and so "match" everywhere)."""
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        if _min_width(pattern) == 0:
            raise ValueError(
                f"pattern {pattern!r} can match the empty string, so it would match "
                "everywhere; make it match at least one character"
            )
        return pattern
