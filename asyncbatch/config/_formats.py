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
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import yaml

from asyncbatch.config._problems import format_location
from asyncbatch.errors import ConfigError

MAX_NESTING = 100
"""Levels of objects and lists a config may nest, its top level counted."""


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
    try:
        if suffix == ".json":
            return json.loads(text, object_pairs_hook=_unique_keys)
        if suffix == ".toml":
            _check_dotted_keys(text)
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            return _load_yaml(text, max_alias_values)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [f"line {exc.lineno}, column {exc.colno}: {exc.msg}"], source=label
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_problem(str(exc))], source=label) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([f"{where}{exc.problem or exc.context}"], source=label) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"invalid YAML: {exc}"], source=label) from None
    except (_DuplicateKey, _AliasBomb) as exc:
        raise ConfigError([str(exc)], source=label) from None
    except (RecursionError, _TooDeep) as exc:
        offset = exc.at if isinstance(exc, _TooDeep) else _deep_bracket(text, suffix)
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


class _DuplicateKey(ValueError):
    pass


class _TooDeep(ValueError):
    def __init__(self, at: int) -> None:
        super().__init__(at)
        self.at = at


class _AliasBomb(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: a repeated key is an error, not a silent overwrite."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML SafeLoader that rejects duplicate keys (with their line)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # ``<<: *defaults``: merged by SafeLoader, its keys overridable
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                continue  # SafeLoader reports unhashable keys itself, as a YAML error
            if key in seen:
                line = key_node.start_mark.line + 1
                raise _DuplicateKey(f"line {line}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


class _AliasCheckingLoader(_UniqueKeyLoader):
    """Also rejects documents whose aliases would expand too far (a walk over every
    node: only for documents that define anchors)."""

    max_alias_values = 0

    def construct_document(self, node: Any) -> Any:
        _check_aliases(node, self.max_alias_values)
        return super().construct_document(node)


def _load_yaml(text: str, max_alias_values: int) -> Any:
    """``yaml.load`` with our loaders; aliases checked when there are anchors (an
    alias needs an anchor, and an anchor is written with '&')."""
    if "&" not in text:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    loader = _AliasCheckingLoader(text)
    loader.max_alias_values = max_alias_values
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _check_aliases(root: yaml.Node, limit: int) -> None:
    """Refuse a document whose aliases contain themselves, or would add more than
    ``limit`` values if written out: PyYAML shares an alias's value instead of
    copying it, but whatever walks the data later (validation, the journal's
    fingerprint) would see every copy.

    An alias is the very node object of its anchor, so sizes are computed once per
    node (iteratively: a deep document must not exhaust the stack)."""
    sizes: dict[int, int] = {}  # node id -> values in it, aliases written out
    open_nodes: set[int] = set()  # being sized: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            mark = node.start_mark
            raise _AliasBomb(f"line {mark.line + 1}: an alias contains itself")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    if sizes[id(root)] - len(sizes) > limit:
        raise _AliasBomb(f"aliases would add more than {limit} values (an alias bomb?)")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


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


_DOUBLE_QUOTED = r'"(?:[^"\\]|\\.)*+"'
_SINGLE_QUOTED = r"'[^'\n]*+'"
_MULTILINE_STRINGS = r'"""(?:[^\\]|\\.)*?"""|' + r"'''.*?'''"
_OPENING, _CLOSING = ("[", "{"), ("]", "}")
_BRACKETS = {
    # brackets, and what holds a bracket without opening anything: strings, comments
    ".json": re.compile(rf"{_DOUBLE_QUOTED}|[\[\]{{}}]", re.DOTALL),
    ".toml": re.compile(
        rf"{_MULTILINE_STRINGS}|{_DOUBLE_QUOTED}|{_SINGLE_QUOTED}|#[^\n]*|[\[\]{{}}]", re.DOTALL
    ),
    ".yaml": re.compile(rf"{_DOUBLE_QUOTED}|'(?:[^']|'')*+'|#[^\n]*|[\[\]{{}}]", re.DOTALL),
}


def _deep_bracket(text: str, suffix: str) -> int | None:
    """The offset of the first bracket that opens level ``MAX_NESTING + 1`` of
    ``text`` (strings and comments passed over), or None: where a document too
    deep for its parser is too deep."""
    tokens = _BRACKETS.get(".yaml" if suffix == ".yml" else suffix, _BRACKETS[".json"])
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


_TOML_SEGMENT = rf"(?:[A-Za-z0-9_-]++|{_DOUBLE_QUOTED}|{_SINGLE_QUOTED})"
_TOML_DOTTED_KEYS = re.compile(
    # a key of more than MAX_NESTING dotted parts; else strings and comments, passed over
    rf"(?<![\w.\"'-])(?P<key>{_TOML_SEGMENT}(?:[ \t]*+\.[ \t]*+{_TOML_SEGMENT}){{{MAX_NESTING},}}+)"
    rf"|{_MULTILINE_STRINGS}|{_DOUBLE_QUOTED}|{_SINGLE_QUOTED}|#[^\n]*",
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
            raise _TooDeep(match.start())


_TOML_PLACE = re.compile(r"^(?P<message>.*?) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _toml_problem(text: str) -> str:
    """tomllib's ``Invalid value (at line 3, column 10)`` located as JSON and YAML
    problems are: ``line 3, column 10: Invalid value``."""
    found = _TOML_PLACE.match(text)
    if found is None:
        return f"invalid TOML: {text}"
    return f"line {found['line']}, column {found['column']}: {found['message']}"
