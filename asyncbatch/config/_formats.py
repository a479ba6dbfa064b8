"""Read config files: JSON, TOML or YAML, chosen by extension.

A syntax error becomes a :class:`ConfigError` naming its line (and column), and a
key repeated in one object is an error rather than a silent overwrite.

Bounded, whatever the input: a config is at most ``max_bytes`` (so ``/dev/zero`` or
an endless pipe cannot fill memory), and a YAML config's aliases may add at most
``max_alias_values`` values (the "billion laughs" document is refused before it is
built, and so is an alias that contains itself); see
:class:`asyncbatch.config.LoadLimits`.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, TextIO

import yaml

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
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"line {line}: not valid UTF-8"], source=label) from None


def read_config_stream(stream: TextIO, label: str, max_bytes: int) -> str:
    """A config's text from a stream (stdin), with the same bounds as a file."""
    limit = max_bytes
    try:
        text = stream.read(limit + 1)
    except UnicodeDecodeError:
        raise ConfigError(["not valid UTF-8"], source=label) from None
    if len(text) > limit:
        raise ConfigError([_too_large(limit)], source=label)
    return text


def _too_large(limit: int) -> str:
    return f"larger than {_size(limit)}; split it into several configs"


def _size(count: int) -> str:
    """A size in the largest unit that states it exactly (``64 MiB``, ``1000 bytes``)."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift} {unit}"
    return f"{count} bytes"


def parse_config(text: str, suffix: str, label: str, max_alias_values: int) -> Any:
    """Parse by extension; a syntax error names its line and column."""
    try:
        if suffix == ".json":
            return json.loads(text, object_pairs_hook=_unique_keys)
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            return _load_yaml(text, max_alias_values)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [f"line {exc.lineno}, column {exc.colno}: {exc.msg}"], source=label
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], source=label) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([f"{where}{exc.problem or exc.context}"], source=label) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"invalid YAML: {exc}"], source=label) from None
    except (_DuplicateKey, _AliasBomb) as exc:
        raise ConfigError([str(exc)], source=label) from None
    except RecursionError:
        raise ConfigError(["nested too deeply"], source=label) from None
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
