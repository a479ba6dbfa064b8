"""The action contract and actions by name: ActionSpec, ActionRegistry, @action, plugins.

An action is an async function ``(path, params) -> dict`` plus an optional pydantic
model of its params. A built-in also carries a :class:`Kernel`: its logic written
once, as a function over the file's bytes, so that the executor can run it however
suits the file (many small files in one thread hop, a big one streamed in chunks,
in a worker process) instead of awaiting the action function.

Importing a module of ours registers nothing: :func:`asyncbatch.actions.default_registry`
composes a registry explicitly from the built-ins, the actions user code declared
with :func:`action` (:func:`declared_actions`), then the installed plugins. Tests
build an :class:`ActionRegistry` of their own. This module imports nothing else of
asyncbatch.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from pydantic import BaseModel

ActionFunc: TypeAlias = Callable[[Path, Any], Awaitable[dict[str, Any]]]
"""The core contract: an input path and validated params in, a JSON-able dict out."""

F = TypeVar("F", bound=ActionFunc)

ENTRY_POINT_GROUP = "asyncbatch.actions"


@dataclass(frozen=True, slots=True)
class Tuning:
    """The sizes that reading works with. The defaults suit real files; tests pass
    tiny ones to put every chunk boundary and threshold under test."""

    chunk_bytes: int = 4 << 20
    """Bytes per read of a streamed file (two buffers of it per stream: one is
    scanned while the next is read)."""
    small_file_bytes: int = 256 << 10
    """Files up to this size are read whole, many of them in one thread hop."""
    batch_jobs: int = 64
    """Most small-file jobs one slot takes at once."""
    process_min_bytes: int = 32 << 20
    """From this size on, a kernel that holds the GIL runs in a worker process."""
    max_line_bytes: int = 32 << 20
    """Longest line a line-oriented kernel holds in memory (``LineTooLong`` beyond)."""
    accelerate: bool = True
    """Count and search with numpy and Hyperscan where they are installed; False:
    the plain standard-library loops (the reference that tests compare with)."""


DEFAULT_TUNING = Tuning()


class Scanner(Protocol):
    """One run of a kernel over one file: fed the file's bytes in order, then
    asked for the result. Raises what the action would (``LineTooLong``, say).

    ``data`` may be a buffer that is reused for the next chunk: keep a copy
    (``bytes(data[a:b])``), never ``data`` itself."""

    def update(self, data: bytes | bytearray) -> None: ...

    def result(self) -> dict[str, Any]: ...


ScannerFactory: TypeAlias = Callable[[str, int, Mapping[str, Any], Tuning], Scanner]
"""``start(path, size, params, tuning)``: a fresh scanner for the file at ``path`` (named
in error messages, never opened by the scanner) of ``size`` bytes (from ``stat``,
before anything is read); ``params`` as plain JSON values, so that a worker process
needs neither pydantic nor the params model."""


@dataclass(frozen=True, slots=True)
class Kernel:
    """A built-in's logic as the executor sees it. ``start`` must be a module-level
    callable of a module that imports only the standard library: worker processes
    import it by reference."""

    start: ScannerFactory
    reads: bool = True
    """False: the result comes from the size alone, and nothing is opened."""
    releases_gil: bool = False
    """``update`` lets other threads run (hashlib does): big files scale on threads."""
    isolated: bool = False
    """``update`` may run for ever in C code (a regex): run it only in a process that
    a timeout can kill."""
    bounded: Callable[[Mapping[str, Any]], bool] | None = None
    """For an ``isolated`` kernel: whether, with these (plain) params, ``update``
    always returns in time linear in its input (a search for plain literals), so
    that it may run in this process after all."""

    def isolated_for(self, params: Mapping[str, Any]) -> bool:
        """Whether a job with these (plain) params must run in a worker process."""
        return self.isolated and (self.bounded is None or not self.bounded(params))


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One registered action: its name, function, params model, provenance and,
    for a built-in, its kernel."""

    name: str
    func: ActionFunc
    params: type[BaseModel] | None = None
    origin: str = "builtin"
    kernel: Kernel | None = None

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

    def __init__(self, specs: Iterable[ActionSpec] = (), *, plugins: bool = False) -> None:
        self._specs: dict[str, ActionSpec] = {}
        self._plugins = plugins
        self._plugins_loaded = False
        self.plugin_warnings: list[str] = []
        for spec in specs:
            self.register(spec)

    def action(self, name: str, *, params: type[BaseModel] | None = None) -> Callable[[F], F]:
        """Register the decorated async function as action ``name``; the function
        is returned unchanged."""

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
        for entry in _entry_points():
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
                self.register(self._spec_for(entry.name, func, origin=f"plugin {entry.value}"))
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
        return self._spec_for(name, func, origin=f"module {module_name}")

    def _spec_for(self, name: str, func: object, *, origin: str) -> ActionSpec:
        """Wrap an imported object as a spec under ``name``, keeping the params
        model and kernel it is registered with here, or was declared with by
        :func:`action` (a plugin's module declares its params model that way)."""
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"{name!r} is not an async function")
        for spec in [*self._specs.values(), *_declared._specs.values()]:
            if spec.func is func:
                return ActionSpec(name, spec.func, spec.params, origin=origin, kernel=spec.kernel)
        return ActionSpec(name, func, None, origin=origin)


_declared = ActionRegistry()
"""What user code declared with :func:`action` in this process."""


def action(name: str, *, params: type[BaseModel] | None = None) -> Callable[[F], F]:
    """Declare the decorated async function as action ``name`` for every config
    loaded afterwards in this process (through the default registry); the
    function is returned unchanged. ``params`` is the pydantic model of its params
    (without one, the action receives them as a plain dict)."""
    return _declared.action(name, params=params)


def declared_actions() -> list[ActionSpec]:
    """The actions user code declared with :func:`action` in this process."""
    return list(_declared)


@functools.cache
def entry_point_references() -> frozenset[str]:
    """The ``"module:function"`` values of the installed ``asyncbatch.actions``
    entry points (read from the metadata, nothing imported)."""
    return frozenset(entry.value for entry in _entry_points())


def _entry_points() -> list[EntryPoint]:
    """The installed ``asyncbatch.actions`` entry points. importlib.metadata is
    imported here, not with this module: worker processes import this module for
    its dataclasses, and a run whose actions are all built-in or declared never
    looks plugins up."""
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _is_object_of(entry: EntryPoint, spec: ActionSpec) -> bool:
    """Whether ``spec`` holds the entry point's own object: its ``@action`` declared
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
