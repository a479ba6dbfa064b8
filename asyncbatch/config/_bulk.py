"""Load-time shortcuts for configs with many jobs (used by :mod:`asyncbatch.config`).

Validating 20,000 jobs one pydantic call at a time and resolving the same action
name 20,000 times costs more than running the jobs. Here:

- :func:`validate_jobs` checks the whole ``jobs`` list in one pydantic call; only
  when something is wrong does the loader go job by job, to locate every problem;
- :class:`Resolver` resolves each distinct action once and validates each distinct
  ``params`` of a built-in once (the model instance is shared: built-ins never
  mutate their params);
- :func:`without_gc` pauses the cyclic collector while the jobs are built.

Each gives exactly what the plain, per-job code gives.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from asyncbatch.config._models import JobConfig

if TYPE_CHECKING:
    from asyncbatch.registry import ActionRegistry, ActionSpec


_SCALARS = frozenset({str, int, float, bool, type(None)})


@contextlib.contextmanager
def without_gc() -> Iterator[None]:
    """The cyclic garbage collector paused (if it ran) for a burst of allocations
    that make no garbage: it would scan every new job object again and again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@functools.cache
def _jobs_adapter() -> TypeAdapter[list[JobConfig]]:
    return TypeAdapter(list[JobConfig])


def validate_jobs(raw_jobs: list[Any]) -> list[JobConfig] | None:
    """Every job validated in one call, or None when any job is invalid."""
    try:
        return _jobs_adapter().validate_python(raw_jobs)
    except ValidationError:
        return None


class Resolver:
    """``registry.resolve`` and ``spec.validate_params``, each done once per
    distinct input. Errors are remembered and raised again, so every job that
    names a broken action or passes bad params still gets its own problem."""

    def __init__(self, registry: ActionRegistry, base_dir: Path) -> None:
        self._registry = registry
        self._base_dir = base_dir
        self._specs: dict[str, ActionSpec | Exception | None] = {}
        self._params: dict[tuple[int, tuple[Any, ...]], Any] = {}

    def resolve(self, action: str) -> ActionSpec | None:
        """As ``registry.resolve``; raises its ImportError or TypeError again."""
        if action not in self._specs:
            try:
                self._specs[action] = self._registry.resolve(action, self._base_dir)
            except (ImportError, TypeError) as exc:
                self._specs[action] = exc
        found = self._specs[action]
        if isinstance(found, Exception):
            raise found
        return found

    def validate_params(self, spec: ActionSpec, raw: dict[str, Any]) -> Any:
        """As ``spec.validate_params``; flat params of an action that shares its
        params (it never changes them) are validated once.

        Only flat params (scalar values) are cached, keyed with their types (1,
        1.0 and True are equal in Python, not to a strict model), and never
        serialised: a YAML alias bomb must not be expanded here."""
        if not spec.shares_params or spec.params is None:
            return spec.validate_params(raw)
        if not all(type(k) is str and type(v) in _SCALARS for k, v in raw.items()):
            return spec.validate_params(raw)
        key = (id(spec), tuple((k, type(v), v) for k, v in sorted(raw.items())))
        if key not in self._params:
            try:
                self._params[key] = spec.validate_params(raw)
            except ValidationError as exc:
                self._params[key] = exc
        found = self._params[key]
        if isinstance(found, ValidationError):
            raise found
        return found
