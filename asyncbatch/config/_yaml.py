"""Read a YAML config: :func:`load_yaml`, imported only for a ``.yaml``/``.yml``
config (PyYAML is not needed by any other).

Duplicate keys are refused with their line, and aliases are bounded: a document
whose aliases would add more than ``max_alias_values`` values, or that contains
itself, is refused before it is built."""

from __future__ import annotations

from typing import Any

import yaml

from asyncbatch.config._syntax import AliasBomb, DuplicateKey, Unreadable


def load_yaml(text: str, max_alias_values: int) -> Any:
    """The document in ``text``; a syntax error is :class:`Unreadable`, with its
    line and column first when PyYAML knows them."""
    try:
        return _load_yaml(text, max_alias_values)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise Unreadable(f"{where}{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise Unreadable(f"invalid YAML: {exc}") from None


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
                raise DuplicateKey(f"line {line}: duplicate key {key!r}")
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
            raise AliasBomb(f"line {mark.line + 1}: an alias contains itself")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    if sizes[id(root)] - len(sizes) > limit:
        raise AliasBomb(f"aliases would add more than {limit} values (an alias bomb?)")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
