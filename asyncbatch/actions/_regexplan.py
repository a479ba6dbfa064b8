"""How ``search_pattern`` can scan raw bytes instead of decoded text, exactly.

Two facts about a pattern, read from CPython's own parse tree (``re._parser``), let
the scan skip most of the work and still count exactly what the plain path (each
line decoded as UTF-8 with replacement, then searched with the ``str`` pattern)
counts:

- **Byte-safe**: every element matches ASCII characters only (no ``.``, no negated
  class, no ``\\w \\d \\s \\b``, no case folding). Such a pattern matches the same
  lines, the same number of times, in the raw bytes as in the decoded text: ASCII
  bytes decode to themselves and never occur inside a multi-byte sequence, and an
  invalid byte (U+FFFD after decoding) is matched by nothing ASCII-only. The scan
  then runs the pattern compiled as ``bytes``, with no decoding at all.
- **Required literals**: a set of strings one of which occurs in every match
  (``ERROR|FATAL`` -> ``{ERROR, FATAL}``, ``user=\\d+`` -> ``{user=}``). Only the
  lines holding one of them (found with a fast literal search) can match, so only
  those are searched with the full pattern. A literal with U+FFFD or ``\\n`` is
  never used (invalid bytes decode to U+FFFD; a match never spans lines). Under
  ``ignore_case`` a literal is looked for in every case: each ASCII letter as a
  class of its cases and of the non-ASCII letters that ``re`` folds to it (the
  Kelvin sign for ``k``, the long s for ``s``, the dotless and dotted I for
  ``i``); a folded literal with other non-ASCII letters is not used.

- **Line-bound**: matches found in a block of lines in one pass are those each line
  searched alone would give, as long as none spans a newline (which the scan checks);
  a pattern with a construct that sees past a line's ends without matching a newline
  (``\\A``, ``\\Z``, ``^`` or ``$`` under ``(?-m:...)``, lookarounds, atomic groups,
  possessive repeats) is searched line by line (:func:`sees_past_line`).

Anything this module does not recognise is simply not optimised. Standard library
only: it runs in the search workers.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from re import _constants as C  # type: ignore[attr-defined]  # no stub; CPython's own
from re import _parser  # type: ignore[attr-defined]
from typing import Any

_SAFE_ANCHORS = frozenset(
    {
        C.AT_BEGINNING,
        C.AT_BEGINNING_LINE,
        C.AT_BEGINNING_STRING,
        C.AT_END,
        C.AT_END_LINE,
        C.AT_END_STRING,
    }
)
_REPEATS = frozenset({C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT})


@dataclass(frozen=True, slots=True)
class Plan:
    """What the scan of one (pattern, flags) may use."""

    text_regex: re.Pattern[str]
    """The pattern as search_pattern defines it (``re.MULTILINE`` added)."""
    byte_regex: re.Pattern[bytes] | None
    """The same pattern over raw bytes, when that is exact (byte-safe)."""
    literals: tuple[bytes, ...]
    """UTF-8 literals one of which every match contains; empty: no prefilter."""
    prefilter: tuple[bytes, ...]
    """Byte patterns finding the literals (in every case, under ``ignore_case``):
    what :class:`asyncbatch.actions._prefilter.LineFinder` looks for."""
    exact: bool = False
    """The pattern matches exactly its literals, none of which can overlap another:
    its matches are the literals' occurrences, counted with ``bytes.count``."""
    countable: bool = False
    """``exact``, and no literal overlaps itself (as ``aa`` does in ``aaa``): its
    matches are the occurrences an engine reports, one per (literal, end)."""
    per_line: bool = True
    """Each line must be searched alone: the pattern has a construct whose matches in
    a block of lines may differ from those in each line alone (see
    :func:`sees_past_line`). False: a block is searched in one pass, and only a
    match that spans a newline sends it line by line."""


@functools.lru_cache(maxsize=32)
def plan_for(pattern: str, flags: int) -> Plan:
    """The scan plan of ``pattern`` under ``re`` ``flags`` (``re.IGNORECASE`` or 0)."""
    text_regex = re.compile(pattern, flags | re.MULTILINE)
    try:
        tree = _parser.parse(pattern, flags)
    except re.error:  # pragma: no cover - compiled above, so it parses
        return Plan(text_regex, None, (), ())
    per_line = sees_past_line(tree.data)
    folded = bool(tree.state.flags & re.IGNORECASE)
    byte_regex = None
    if not folded and _byte_safe(tree.data) and pattern.isascii():
        try:
            byte_regex = re.compile(pattern.encode("ascii"), re.MULTILINE)
        except re.error:  # e.g. \u or \N escapes, which bytes patterns refuse
            byte_regex = None
    literals: tuple[bytes, ...] = ()
    prefilter: tuple[bytes, ...] = ()
    exact = False
    if folded:
        found = _required(tree.data)
        if found and all(_usable(text) and text.isascii() for text in found):
            texts = sorted(found)
            literals = tuple(text.encode("ascii") for text in texts)
            prefilter = tuple(_caseless_source(text) for text in texts)
    else:
        whole = _expand(tree.data)
        exact = bool(whole) and _apart(whole)
        found = set(whole) if exact else _required(tree.data)
        if found and all(_usable(text) for text in found):
            literals = tuple(sorted({text.encode("utf-8") for text in found}))
            prefilter = tuple(_byte_source(literal) for literal in literals)
        else:
            exact = False
    countable = exact and not any(_overlaps_itself(literal) for literal in literals)
    return Plan(text_regex, byte_regex, literals, prefilter, exact, countable, per_line)


_AT_STRING = frozenset({C.AT_BEGINNING_STRING, C.AT_END_STRING})
_AT_LINE_UNLESS_MULTILINE = frozenset({C.AT_BEGINNING, C.AT_END})
_CONSUMING = frozenset({C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN, C.GROUPREF})


def sees_past_line(items: Any, multiline: bool = True) -> bool:
    r"""Whether the parsed sequence ``items`` (searched with ``re.MULTILINE``, as
    search_pattern does) may match differently in a block of lines than in each
    line alone, without any match spanning a newline:

    - ``\A`` and ``\Z`` (a line's start and end, alone; the block's in a block);
    - ``^`` and ``$`` where a scoped flag turns ``MULTILINE`` off (``(?-m:^a)``);
    - lookarounds, which see the text past a line's ends without matching it;
    - atomic groups and possessive repeats, which may take a newline in a block, and
      then fail where, in the line alone, they would have stopped at its end and
      matched (``(?>a\s*)\b`` over ``a`` then ``!``);
    - anything this function does not know.

    ``(?s)`` with ``.``, ``\s`` or a negated class can only match differently by
    matching a newline: such a match spans lines, and the block is then searched
    line by line anyway."""
    for op, av in items:
        if op in _CONSUMING:
            continue
        if op is C.AT:
            if av in _AT_STRING or (av in _AT_LINE_UNLESS_MULTILINE and not multiline):
                return True
        elif op is C.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            inner = (multiline or bool(add_flags & re.MULTILINE)) and not (del_flags & re.MULTILINE)
            if sees_past_line(sub, inner):
                return True
        elif op is C.BRANCH:
            if any(sees_past_line(branch, multiline) for branch in av[1]):
                return True
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            if sees_past_line(av[2], multiline):
                return True
        elif op is C.GROUPREF_EXISTS:
            _group, yes, no = av
            if sees_past_line(yes, multiline) or (no is not None and sees_past_line(no, multiline)):
                return True
        else:  # ASSERT, ASSERT_NOT, ATOMIC_GROUP, POSSESSIVE_REPEAT and the unforeseen
            return True
    return False


def is_byte_safe(pattern: str, flags: int = 0) -> bool:
    """Whether ``pattern`` may be searched over raw bytes (see the module doc)."""
    return plan_for(pattern, flags).byte_regex is not None


def required_literals(pattern: str, flags: int = 0) -> tuple[bytes, ...]:
    """The literals the prefilter looks for (empty: none)."""
    return plan_for(pattern, flags).literals


def _byte_source(literal: bytes) -> bytes:
    """A byte pattern matching ``literal`` alone, read alike by ``re`` and Hyperscan:
    letters and digits as they are, every other byte as ``\\xHH``."""
    return b"".join(
        bytes([byte]) if chr(byte).isalnum() and byte < 0x80 else b"\\x%02x" % byte
        for byte in literal
    )


_FOLDED_INTO_ASCII = "\u0130\u0131\u017f\u212a"
"""The non-ASCII characters that ``re`` under ``IGNORECASE`` matches with an ASCII
letter (dotted and dotless I: i; long s: s; Kelvin sign: k); a test checks that
the list is complete."""


def _caseless_source(text: str) -> bytes:
    """A byte pattern matching the ASCII ``text`` in every case ``re`` folds it to."""
    parts = []
    for char in text:
        if not char.isalpha():
            parts.append(_byte_source(char.encode("ascii")))
            continue
        cases = b"[%s%s]" % (char.lower().encode(), char.upper().encode())
        others = [
            _byte_source(other.encode("utf-8"))
            for other in _FOLDED_INTO_ASCII
            if re.fullmatch(char, other, re.IGNORECASE)
        ]
        parts.append(b"(?:%s)" % b"|".join([cases, *others]) if others else cases)
    return b"".join(parts)


def _overlaps_itself(literal: bytes) -> bool:
    """Whether a proper prefix of ``literal`` is also its suffix (``aa``, ``abab``)."""
    return any(literal.endswith(literal[:size]) for size in range(1, len(literal)))


def _usable(text: str) -> bool:
    """A literal the prefilter can look for in raw bytes: not empty, no newline, no
    U+FFFD, and encodable (a lone surrogate is valid in a pattern, never in text)."""
    if not text or "\n" in text or "\ufffd" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _byte_safe(items: Any) -> bool:
    """Every element of the parsed sequence ``items`` matches ASCII only."""
    for op, av in items:
        if op is C.LITERAL:
            ok = av < 0x80
        elif op is C.IN:
            ok = all(_class_item_safe(kind, value) for kind, value in av)
        elif op is C.AT:
            ok = av in _SAFE_ANCHORS
        elif op is C.BRANCH:
            ok = all(_byte_safe(branch) for branch in av[1])
        elif op is C.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            ok = not add_flags & re.IGNORECASE and _byte_safe(sub)
        elif op in _REPEATS:
            ok = _byte_safe(av[2])
        elif op is C.ATOMIC_GROUP:
            ok = _byte_safe(av)
        elif op in (C.ASSERT, C.ASSERT_NOT):
            ok = _byte_safe(av[1])
        elif op is C.GROUPREF:
            ok = True  # the group it repeats is checked where it is defined
        elif op is C.GROUPREF_EXISTS:
            _group, yes, no = av
            ok = _byte_safe(yes) and (no is None or _byte_safe(no))
        else:  # ANY, NOT_LITERAL and anything unforeseen
            ok = False
        if not ok:
            return False
    return True


_MAX_EXPANSION = 64


def _expand(items: Any) -> list[str]:
    """Every string the parsed sequence ``items`` matches, when it is a finite set
    of plain strings (literals, alternations, groups, ``[abc]``); else empty."""
    strings = [""]
    for op, av in items:
        if op is C.LITERAL:
            options = [chr(av)]
        elif op is C.IN and all(kind is C.LITERAL for kind, _ in av):
            options = [chr(value) for _, value in av]
        elif op is C.BRANCH:
            options = []
            for branch in av[1]:
                inner = _expand(branch)
                if not inner:
                    return []
                options += inner
        elif op is C.SUBPATTERN and not av[1] and not av[2]:
            options = _expand(av[3])
        else:
            return []
        if not options or len(strings) * len(options) > _MAX_EXPANSION:
            return []
        strings = [head + tail for head in strings for tail in options]
    return strings


def _apart(texts: list[str]) -> bool:
    """No two different strings overlap (one inside the other, or the end of one
    the start of the other): then an alternation of them matches exactly their
    separate occurrences, whatever the order of its branches."""
    unique = sorted(set(texts))
    for i, one in enumerate(unique):
        for other in unique[i + 1 :]:
            if one in other or other in one:
                return False
            for size in range(1, min(len(one), len(other))):
                if one.endswith(other[:size]) or other.endswith(one[:size]):
                    return False
    return True


def _class_item_safe(kind: Any, value: Any) -> bool:
    if kind is C.LITERAL:
        return bool(value < 0x80)
    if kind is C.RANGE:
        return bool(value[1] < 0x80)
    return False  # NEGATE, CATEGORY (\d \w \s) and anything unforeseen


def _required(items: Any) -> set[str] | None:
    """Strings one of which occurs in every match of the sequence ``items``: the
    most selective candidate (longest shortest string), or None."""
    candidates: list[set[str]] = []
    run: list[str] = []
    for op, av in items:
        if op is C.LITERAL:
            run.append(chr(av))
            continue
        if run:
            candidates.append({"".join(run)})
            run = []
        found: set[str] | None = None
        if op is C.SUBPATTERN and not av[1] & re.IGNORECASE:
            found = _required(av[3])
        elif op is C.ATOMIC_GROUP:
            found = _required(av)
        elif op in _REPEATS and av[0] >= 1:
            found = _required(av[2])
        elif op is C.BRANCH:
            found = set()
            for branch in av[1]:
                inner = _required(branch)
                if inner is None:
                    found = None
                    break
                found |= inner
        if found:
            candidates.append(found)
    if run:
        candidates.append({"".join(run)})
    if not candidates:
        return None
    return max(candidates, key=lambda texts: (min(map(len, texts)), -len(texts)))
