"""What counts as a job's result (a JSON object, kept as a plain copy), and what a
failed job's error keeps of its attempt (the details of how its program ended).

Checked once, as each attempt ends, so that the journal and the report can always
encode what they are given.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from asyncbatch.errors import describe_error

if TYPE_CHECKING:
    from asyncbatch.engine.executors import Attempt
    from asyncbatch.model import Resources

MAX_RESULT_DEPTH = 128
"""Levels of nesting an action's result may have. Deeper, it fails its job: encoding
it (the check here, the journal, the report) would be at the mercy of the
interpreter's recursion limit wherever that happens."""

_PLAIN = (str, int, bool, type(None))


def checked_result(result: object) -> tuple[dict[str, Any] | None, TypeError | None]:
    """An action must return a JSON object: the report depends on it. NaN and
    infinities are refused (they are not JSON, RFC 8259), and so is a dict nested
    deeper than :data:`MAX_RESULT_DEPTH` levels. The result kept is a plain copy
    (what JSON made of it: a tuple becomes a list, a key a string), so nothing the
    action does with its own objects later can change or break the report."""
    if not isinstance(result, dict):
        return None, TypeError(f"action returned {type(result).__name__}, expected a dict")
    if _flat(result):  # the common case (every built-in): a shallow copy is a whole one
        return dict(result), None
    too_deep = TypeError(f"action result is nested deeper than {MAX_RESULT_DEPTH} levels")
    try:
        copy: dict[str, Any] = json.loads(json.dumps(result, allow_nan=False))
    except RecursionError:
        return None, too_deep
    except (TypeError, ValueError) as exc:
        return None, TypeError(f"action result is not JSON-serialisable: {exc}")
    if _deeper_than(copy, MAX_RESULT_DEPTH):
        return None, too_deep
    return copy, None


def _deeper_than(value: dict[str, Any], levels: int) -> bool:
    """Whether the JSON value ``value`` (a tree of dicts and lists) nests objects and
    arrays more than ``levels`` deep; ``{}`` is one level. Breadth first, no recursion."""
    level: list[Any] = [value]
    for _ in range(levels):
        inner: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            inner.extend(item for item in items if isinstance(item, dict | list))
        if not inner:
            return False
        level = inner
    return True


def _flat(result: dict[Any, Any]) -> bool:
    """String keys and plain values (strings, whole numbers, booleans, None, finite
    floats): JSON as it is, and nothing inside it that the action could change."""
    for key, value in result.items():
        if type(key) is not str:
            return False
        if type(value) in _PLAIN:
            continue
        if type(value) is not float or value != value or value in (float("inf"), float("-inf")):
            return False
    return True


def with_details(
    error: dict[str, Any], attempt: Attempt, raised: BaseException | None = None
) -> dict[str, Any]:
    """A failed job's error with the ``details`` its attempt left: those its
    exception carried (``raised``, when the error is another, a cancellation's),
    else how its program ended (a timeout, a halt, a missing output)."""
    if "details" in error:
        return error
    details = describe_error(raised).get("details") if raised is not None else None
    streams = attempt.streams
    if details is None and streams is not None:
        details = streams.details
    return error if details is None else {**error, "details": details}


def left_resources(attempt: Attempt) -> Resources | None:
    """What the program of a stopped attempt used, if it ran one."""
    streams = attempt.streams
    return None if streams is None else streams.resources
