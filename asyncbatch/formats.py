"""Read config files: JSON, TOML or YAML, chosen by extension.

A syntax error becomes a :class:`ConfigError` naming its line (and column), and a
key repeated in one object is an error rather than a silent overwrite.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

from asyncbatch.errors import ConfigError


def read_config_text(path: Path, label: str) -> str:
    """The config file's text; an unreadable or non-UTF-8 file is a ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(["no such file"], source=label) from None
    except IsADirectoryError:
        raise ConfigError(["is a directory, not a config file"], source=label) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], source=label) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"line {line}: not valid UTF-8"], source=label) from None


def parse_config(text: str, suffix: str, label: str) -> Any:
    """Parse by extension; a syntax error names its line and column."""
    try:
        if suffix == ".json":
            return json.loads(text, object_pairs_hook=_unique_keys)
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            return yaml.load(text, Loader=_UniqueKeyLoader)
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
    except _DuplicateKey as exc:
        raise ConfigError([str(exc)], source=label) from None
    except RecursionError:
        raise ConfigError(["nested too deeply"], source=label) from None
    raise ConfigError(
        [
            f"cannot tell the format from {suffix or 'no extension'!r}: "
            "use .json, .toml, .yaml or .yml"
        ],
        source=label,
    )


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: a repeated key is an error, not a silent overwrite."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML SafeLoader that rejects duplicate keys (with their line)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                continue  # SafeLoader reports unhashable keys itself, as a YAML error
            if key in seen:
                line = key_node.start_mark.line + 1
                raise _DuplicateKey(f"line {line}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]
