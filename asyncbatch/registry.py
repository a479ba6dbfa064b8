"""Actions by name: ActionSpec, ActionRegistry, the @action decorator, plugins.

An action is an async function ``(path, params) -> dict`` plus an optional pydantic
model of its params. The decorator records an :class:`ActionSpec` and returns the
function unchanged (as Typer's ``command()`` does), so tests build a registry of
their own instead of patching the global one.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

ActionFunc: TypeAlias = Callable[[Path, Any], Awaitable[dict[str, Any]]]
"""The core contract: an input path and validated params in, a JSON-able dict out."""

F = TypeVar("F", bound=ActionFunc)

ENTRY_POINT_GROUP = "asyncbatch.actions"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One registered action: its name, function, params model and provenance."""

    name: str
    func: ActionFunc
    params: type[BaseModel] | None = None
    origin: str = "builtin"

    @property
    def description(self) -> str:
        """First line of the function's docstring."""
        doc = inspect.getdoc(self.func) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def validate_params(self, raw: dict[str, Any]) -> Any:
        """Params as the action receives them: a model instance, or a plain dict.

        Raises pydantic's ``ValidationError``; the config loader locates it."""
        if self.params is None:
            return dict(raw)
        return self.params.model_validate(raw)


class ActionRegistry:
    """A name -> ActionSpec mapping; ``plugins=True`` also looks up entry points."""

    def __init__(self, *, plugins: bool = False) -> None:
        self._specs: dict[str, ActionSpec] = {}
        self._plugins = plugins
        self._plugins_loaded = False
        self.plugin_warnings: list[str] = []

    def action(self, name: str, *, params: type[BaseModel] | None = None) -> Callable[[F], F]:
        """Register the decorated async function as action ``name``."""

        def decorator(func: F) -> F:
            module = func.__module__
            origin = "builtin" if module.startswith("asyncbatch.") else module
            self.register(ActionSpec(name, func, params, origin=origin))
            return func

        return decorator

    def register(self, spec: ActionSpec) -> None:
        """Add ``spec``; a later registration of the same name replaces it."""
        if not inspect.iscoroutinefunction(spec.func):
            raise TypeError(f"action {spec.name!r} must be an async function")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ActionSpec | None:
        """The spec registered as ``name``, loading plugins on a miss."""
        spec = self._specs.get(name)
        if spec is None and self._plugins and not self._plugins_loaded:
            self.load_plugins()
            spec = self._specs.get(name)
        return spec

    def __iter__(self) -> Iterator[ActionSpec]:
        return iter(sorted(self._specs.values(), key=lambda spec: spec.name))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def load_plugins(self) -> None:
        """Register every ``asyncbatch.actions`` entry point, once.

        A broken plugin is recorded in ``plugin_warnings`` and never takes the
        built-ins (or the other plugins) down with it. A plugin never replaces an
        action already registered (built-in or ``@action`` in user code)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            taken = self._specs.get(entry.name)
            if taken is not None and not _is_object_of(entry, taken):
                owner = "a built-in" if taken.origin == "builtin" else f"{taken.origin}"
                self.plugin_warnings.append(
                    f"plugin action {entry.name!r} ({entry.value}) ignored: "
                    f"{owner} already has that name"
                )
                continue
            try:
                func = entry.load()
                spec = _spec_for_function(entry.name, func, origin=f"plugin {entry.value}")
                self.register(spec)
            except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, not fatal
                self.plugin_warnings.append(
                    f"plugin action {entry.name!r} ({entry.value}) failed to load: "
                    f"{type(exc).__name__}: {exc}"
                )

    def resolve(self, name: str, base_dir: Path | None = None) -> ActionSpec | None:
        """The spec for a config's ``action`` value: a registered name, or a
        ``"module:function"`` reference imported from sys.path or ``base_dir``.

        Returns None for an unknown name; raises ``ImportError`` or ``TypeError``
        (with a message for the user) for a reference that does not import."""
        if ":" not in name:
            return self.get(name)
        module_name, _, attr = name.partition(":")
        if not module_name or not attr:
            raise ImportError(f"{name!r} is not of the form 'module:function'")
        func = _import_attribute(module_name, attr, base_dir)
        return _spec_for_function(name, func, origin=f"module {module_name}", known=self)


registry = ActionRegistry(plugins=True)
"""The default registry: built-ins, ``@action`` from user code, and plugins."""

action = registry.action


def default_registry() -> ActionRegistry:
    """The default registry with the built-in actions registered."""
    import asyncbatch.actions  # noqa: F401 - importing registers the built-ins

    return registry


def entry_point_references() -> frozenset[str]:
    """The ``"module:function"`` values of the installed ``asyncbatch.actions``
    entry points (read from the metadata, nothing imported)."""
    return frozenset(entry.value for entry in entry_points(group=ENTRY_POINT_GROUP))


def _spec_for_function(
    name: str, func: object, *, origin: str, known: ActionRegistry | None = None
) -> ActionSpec:
    """Wrap an imported object as a spec, reusing the params model it was
    registered with (in ``known``, else in the default registry)."""
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{name!r} is not an async function")
    for spec in [*(known or ()), *registry]:
        if spec.func is func:
            return ActionSpec(name, spec.func, spec.params, origin=origin)
    return ActionSpec(name, func, None, origin=origin)


def _is_object_of(entry: EntryPoint, spec: ActionSpec) -> bool:
    """Whether ``spec`` holds the entry point's own object: its ``@action`` registered
    it when its module was imported (by user code, or by an earlier entry point of
    the same module), so the plugin is not clashing with itself."""
    target = (getattr(spec.func, "__module__", None), getattr(spec.func, "__qualname__", None))
    return target == (entry.module, entry.attr)


def _import_attribute(module_name: str, attr: str, base_dir: Path | None) -> object:
    """Import ``module_name`` (trying ``base_dir`` first) and return ``attr`` of it."""
    added = base_dir is not None and str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise
    except Exception as exc:
        raise ImportError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if added:
            sys.path.remove(str(base_dir))
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None
