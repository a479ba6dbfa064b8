"""Read config files: JSON, TOML or YAML, chosen by extension.

A syntax error becomes a :class:`ConfigError` naming its line (and column), and a
key repeated in one object is an error rather than a silent overwrite.

Bounded, whatever the input: a config is at most ``max_bytes`` (so ``/dev/zero`` or
an endless pipe cannot fill memory), and a YAML config's aliases may add at most
``max_alias_values`` values (the "billion laughs" document is refused before it is
built, and so is an alias that contains itself); see
:class:`asyncbatch.config.LoadLimits`. A config nests at most :data:`MAX_NESTING`
levels of objects and lists: deeper, the parsers (and whatever walks the data later:
the journal's fingerprint, pickling for worker processes) would run out of stack. A
document nested deeper than the parser can read is located by its line and column;
one it can read, by where the deep value is (``jobs[0].params.p``).

Config text is UTF-8 (a BOM allowed), from a file or from standard input alike.
The TOML and YAML readers live in :mod:`._toml` and :mod:`._yaml`, imported only
for a config of their format: tomllib and PyYAML cost a JSON config nothing.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from asyncbatch.config._problems import format_location
from asyncbatch.config._syntax import (
    DOUBLE_QUOTED,
    MAX_NESTING,
    MULTILINE_STRINGS,
    SINGLE_QUOTED,
    AliasBomb,
    DuplicateKey,
    TooDeep,
    Unreadable,
)
from asyncbatch.errors import ConfigError


def read_config_text(path: Path, label: str, max_bytes: int) -> str:
    """The config file's text; an unreadable, oversized or non-UTF-8 file is a
    ConfigError."""
    limit = max_bytes
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(["no such file"], source=label) from None
    except IsADirectoryError:
        raise ConfigError(["is a directory, not a config file"], source=label) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], source=label) from None
    if len(data) > limit:
        raise ConfigError([_too_large(limit)], source=label)
    return _decode(data, label)


def read_config_stream(stream: TextIO | BinaryIO | None, label: str, max_bytes: int) -> str:
    """A config's text from a stream (stdin), with the same bounds as a file.

    Bytes are read and decoded as UTF-8 exactly like a file's, whatever the locale:
    from a binary stream, or from the ``buffer`` under a text stream (``sys.stdin``).
    A text stream without one (``io.StringIO``) has been decoded by its maker: its
    text is taken as it is (a leading BOM dropped)."""
    if stream is None:  # the process was started with its standard input closed
        raise ConfigError(["no standard input to read the config from"], source=label)
    limit = max_bytes
    source: Any = getattr(stream, "buffer", stream)
    try:
        data = source.read(limit + 1)
    except UnicodeDecodeError:  # a text stream that decodes as it reads
        raise ConfigError(["not valid UTF-8"], source=label) from None
    except (OSError, ValueError) as exc:  # a directory, a closed stream
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError([f"cannot read: {reason}"], source=label) from None
    if len(data) > limit:
        raise ConfigError([_too_large(limit)], source=label)
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    return _decode(data, label)


def _decode(data: bytes, label: str) -> str:
    """UTF-8 text (a BOM dropped); invalid bytes are a ConfigError naming their line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"line {line}: not valid UTF-8"], source=label) from None


def _too_large(limit: int) -> str:
    return f"larger than {_size(limit)}; split it into several configs"


def _size(count: int) -> str:
    """A size in the largest unit that states it exactly (``64 MiB``, ``1000 bytes``)."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift} {unit}"
    return f"{count} bytes"


def parse_config(text: str, suffix: str, label: str, max_alias_values: int) -> Any:
    """Parse by extension; a syntax error names its line and column, and so does a
    document nested too deeply to read. A value nested more than
    :data:`MAX_NESTING` levels is a ConfigError at its location."""
    data = _parse(text, suffix, label, max_alias_values)
    deep = _nested_too_deeply(data)
    if deep is not None:
        raise ConfigError(
            [f"{format_location(_short(deep))}: nested more than {MAX_NESTING} levels deep"],
            source=label,
        )
    return data


def _parse(text: str, suffix: str, label: str, max_alias_values: int) -> Any:
    """Parse by extension. The TOML and YAML readers are imported only for their
    formats: a JSON config never pays for them."""
    try:
        if suffix == ".json":
            return json.loads(text, object_pairs_hook=_unique_keys)
        if suffix == ".toml":
            from asyncbatch.config._toml import load_toml

            return load_toml(text)
        if suffix in (".yaml", ".yml"):
            from asyncbatch.config._yaml import load_yaml

            return load_yaml(text, max_alias_values)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [f"line {exc.lineno}, column {exc.colno}: {exc.msg}"], source=label
        ) from None
    except (Unreadable, DuplicateKey, AliasBomb) as exc:
        raise ConfigError([str(exc)], source=label) from None
    except (RecursionError, TooDeep) as exc:
        offset = exc.at if isinstance(exc, TooDeep) else _deep_bracket(text, suffix)
        problem = f"nested more than {MAX_NESTING} levels deep"
        if offset is not None:
            line = text.count("\n", 0, offset) + 1
            column = offset - text.rfind("\n", 0, offset)
            problem = f"line {line}, column {column}: {problem}"
        raise ConfigError([problem], source=label) from None
    except ValueError as exc:  # int() refuses numbers over 4300 digits; a bad YAML date
        reason = str(exc).split("; use ")[0]  # not Python's advice to raise the limit
        reason = reason[:1].lower() + reason[1:]
        raise ConfigError([f"cannot read a value: {reason}"], source=label) from None
    raise ConfigError(
        [
            f"cannot tell the format from {suffix or 'no extension'!r}: "
            "use .json, .toml, .yaml or .yml"
        ],
        source=label,
    )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: a repeated key is an error, not a silent overwrite."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


# --- nesting ------------------------------------------------------------------------------

_CONTAINERS = (dict, list, tuple)  # tuples: YAML !!pairs and !!omap
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _nested_too_deeply(data: Any) -> list[Any] | None:
    """The path to the first value nested more than :data:`MAX_NESTING` levels deep
    in ``data``, or None. Level by level, without recursion: a linear pass over the
    containers (the alias limit bounds what shared YAML values add)."""
    level = [data] if isinstance(data, _CONTAINERS) else []
    for _ in range(MAX_NESTING):
        below = []
        for container in level:
            values = container.values() if type(container) is dict else container
            if _SCALARS.issuperset(map(type, values)):
                continue  # most jobs and params: nothing below (checked at C speed)
            below.extend([item for item in values if isinstance(item, _CONTAINERS)])
        if not below:
            return None
        level = below
    return _first_deep_path(data)


def _first_deep_path(data: Any) -> list[Any]:
    """The path (keys and indexes) to the first container, in document order, at
    level ``MAX_NESTING + 1``; depth-first, without recursion."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        container, path = stack.pop()
        if len(path) >= MAX_NESTING:
            return list(path)
        pairs = container.items() if type(container) is dict else enumerate(container)
        children = [(item, (*path, key)) for key, item in pairs if isinstance(item, _CONTAINERS)]
        stack.extend(reversed(children))
    return []  # pragma: no cover - only called when there is one


def _short(path: list[Any]) -> list[Any]:
    """Where a deep value is, as a person points at it: a job's field (a param's
    name under ``params``), or a top-level key and the key below it."""
    if len(path) >= 3 and path[0] == "jobs" and isinstance(path[1], int):
        return path[:4] if path[2] == "params" else path[:3]
    return path[:2]


_OPENING, _CLOSING = ("[", "{"), ("]", "}")


@functools.cache
def _brackets(suffix: str) -> re.Pattern[str]:
    """Brackets, and what holds a bracket without opening anything (strings,
    comments), in a document of this format; compiled on first use, as only a
    document too deep for its parser needs them."""
    if suffix == ".toml":
        return re.compile(
            rf"{MULTILINE_STRINGS}|{DOUBLE_QUOTED}|{SINGLE_QUOTED}|#[^\n]*|[\[\]{{}}]",
            re.DOTALL,
        )
    if suffix in (".yaml", ".yml"):
        return re.compile(rf"{DOUBLE_QUOTED}|'(?:[^']|'')*+'|#[^\n]*|[\[\]{{}}]", re.DOTALL)
    return re.compile(rf"{DOUBLE_QUOTED}|[\[\]{{}}]", re.DOTALL)


def _deep_bracket(text: str, suffix: str) -> int | None:
    """The offset of the first bracket that opens level ``MAX_NESTING + 1`` of
    ``text`` (strings and comments passed over), or None: where a document too
    deep for its parser is too deep."""
    tokens = _brackets(suffix)
    depth = 0
    for match in tokens.finditer(text):
        token = match.group()
        if token in _OPENING:
            depth += 1
            if depth > MAX_NESTING:
                return match.start()
        elif token in _CLOSING:
            depth -= 1
    return None
