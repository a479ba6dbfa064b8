"""The action contract and actions by name: ActionSpec, ActionRegistry, @action, plugins.

An action is an async function ``(path, params) -> dict`` plus an optional pydantic
model of its params. Everything the loader, the plan, the journal and the engine need
to know about an action is declared on its :class:`ActionSpec`, each with a default
that makes a plain action free: whether it takes its job's context (``binds``), the
files it creates (``outputs``), its line in a dry run's plan (``plan``), what its
input is (``input``), whether ``--root`` refuses it (``unconfined``), whether it may
change the working directory, share its params or travel in batches. A built-in also
carries a :class:`~asyncbatch.kernel.Kernel`. No layer above asks which action a job
runs: ``command`` is an ordinary action that fills these in, and a plugin can do
whatever a built-in does.

Importing a module of ours registers nothing: :func:`asyncbatch.actions.default_registry`
composes a registry explicitly from the built-ins, the actions user code declared
with :func:`action` (:func:`declared_actions`), then the installed plugins. Tests
build an :class:`ActionRegistry` of their own, which knows only what it is given.
This module imports only :mod:`asyncbatch.kernel` and :mod:`asyncbatch.placeholders`
of asyncbatch (standard library only, as worker processes need).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from asyncbatch.kernel import Kernel
from asyncbatch.placeholders import filled_outputs

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from pydantic import BaseModel

    from asyncbatch.model import Measured, Resources

ActionFunc: TypeAlias = Callable[..., Awaitable["dict[str, Any] | Measured"]]
"""The core contract: ``(path, params)`` in (``(path, params, job)`` for an action
that ``binds``), a JSON-able dict out (or a :class:`~asyncbatch.model.Measured`
holding it, with what the work used)."""

F = TypeVar("F", bound=ActionFunc)

ENTRY_POINT_GROUP = "asyncbatch.actions"

InputKind: TypeAlias = Literal["file", "path", "none"]
"""What an action's input is: ``"file"``, a regular file (anything else fails the job
with ``NotARegularFile``); ``"path"``, anything that exists, a folder too (a program
works on it); ``"none"``, not a file at all (a name, a URL: nothing is stat'ed, and
``--root`` has nothing to confine)."""


class Streams:
    """What an action that runs a program tells its run while the program runs: the
    output as it is printed (:meth:`write`), and how the program ended
    (:meth:`finish`): the ``error.details`` and resources a failed job's report keeps
    even when the attempt was stopped (a timeout, a halt) before the action could
    raise. The run gives each attempt of an awaited action one, in its
    :class:`JobContext`; this one keeps only the end. The command line's display
    passes one that prints the streams and writes them whole (``--results``)."""

    def __init__(self) -> None:
        self.details: dict[str, Any] | None = None
        """How the program ended, as a failed job's ``error.details`` says it."""
        self.resources: Resources | None = None
        """What the program used."""

    def start(self) -> None:
        """A program starts: what it prints from now on is this attempt's."""

    def write(self, stream: int, data: bytes) -> None:
        """``data``, printed by the program on its stdout (1) or stderr (2)."""

    def finish(self, details: dict[str, Any], resources: Resources | None) -> None:
        """The program ended (or was stopped) this way, having used ``resources``."""
        self.details = details
        self.resources = resources

    def files(self) -> dict[str, str]:
        """Keys added to the result (and a failure's details) naming where the
        streams were kept whole (``stdout_file``, ``stderr_file``); none here."""
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        """Sent elsewhere (a Dask worker), it travels as a plain one: what the
        program prints there reaches the report, not this machine's display."""
        return (Streams, ())


@dataclass(frozen=True, slots=True)
class JobContext:
    """Who a job is, for an action that ``binds`` and for the capabilities that
    depend on the job (placeholders in outputs and plan lines)."""

    name: str
    """The job's name, as in the report."""
    number: int
    """Its place in the batch, from 1 (config order, glob matches in place)."""
    config_dir: Path
    """The config file's folder (the current one for stdin and ``each``)."""
    slot: int | None = None
    """The slot its attempt runs in, from 1 to the run's concurrency; None when no
    attempt is running (a dry run, the config's checks)."""
    outputs: tuple[str, ...] = ()
    """The files the action declares this job creates, absolute, made ready for it
    (their folders exist): where it writes them."""
    streams: Streams | None = None
    """Where a program it runs tells what it prints and how it ended (None where
    nothing runs: a dry run, the config's checks)."""


OutputsFunc: TypeAlias = Callable[[Path, Any, JobContext], Sequence[str]]
"""``outputs(path, params, job)``: the files the job creates (absolute, or relative to
the config's folder)."""
PlanFunc: TypeAlias = Callable[[Path, Any, JobContext], dict[str, Any]]
"""``plan(path, params, job)``: keys added to the job's entry in a dry run's plan."""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One registered action: its name, function, params model and provenance, its
    kernel for a built-in, and its declared capabilities (see the module doc)."""

    name: str
    func: ActionFunc
    params: type[BaseModel] | None = None
    origin: str = "builtin"
    kernel: Kernel | None = None
    binds: bool = False
    """The function takes a third argument, the job's :class:`JobContext`."""
    outputs: OutputsFunc | None = None
    """The files a job creates. Declared, they get what a Makefile rule's targets get:
    their folders are made before an attempt, a missing one fails the job
    (``MissingOutput``), an attempt that fails removes what it created or changed,
    and ``--resume`` reuses the job only while they are as it left them."""
    plan: PlanFunc | None = None
    input: InputKind = "file"
    unconfined: str | None = None
    """Why ``--root`` refuses the action (it can reach files the root cannot confine),
    or None: allowed."""
    may_chdir: bool = True
    """It may change the working directory: the engine changes it back after each
    attempt (a built-in never does)."""
    shares_params: bool = False
    """It never changes its params: jobs with equal params may share one validated
    instance (a config of 100,000 jobs validates each distinct params once)."""
    batchable: bool = True
    """Jobs of it may run one after another in one task of a cluster."""

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

    def call(
        self, path: Path, params: Any, job: JobContext
    ) -> Awaitable[dict[str, Any] | Measured]:
        """The action's coroutine for one job."""
        return self.func(path, params, job) if self.binds else self.func(path, params)

    def declared_outputs(self, path: Path, params: Any, job: JobContext) -> list[str]:
        """The job's outputs as absolute paths (none unless the action declares some)."""
        if self.outputs is None:
            return []
        base = job.config_dir
        return [str(base / output) for output in self.outputs(path, params, job)]


class ActionRegistry:
    """A name -> ActionSpec mapping; ``plugins=True`` also looks up entry points.
    ``declared`` is where ``@action`` declarations are found for an imported function
    (a plugin's, or a ``"module:function"``'s): the default registry passes the
    process's declarations; a registry of a test's own knows only what it is given."""

    def __init__(
        self,
        specs: Iterable[ActionSpec] = (),
        *,
        plugins: bool = False,
        declared: ActionRegistry | None = None,
    ) -> None:
        self._specs: dict[str, ActionSpec] = {}
        self._plugins = plugins
        self._plugins_loaded = False
        self._declared = declared
        self.plugin_warnings: list[str] = []
        for spec in specs:
            self.register(spec)

    def action(
        self, name: str, *, params: type[BaseModel] | None = None, **capabilities: Any
    ) -> Callable[[F], F]:
        """Register the decorated async function as action ``name``, with the
        :class:`ActionSpec` capabilities given (``outputs=``, ``binds=``, ...); the
        function is returned unchanged. ``outputs`` may be a list of templates
        (``["thumbs/{stem}.png"]``), checked here."""
        outputs = capabilities.get("outputs")
        if outputs is not None and not callable(outputs):
            if isinstance(outputs, str):
                raise TypeError("outputs: a list of templates, or a function")
            capabilities["outputs"] = filled_outputs(outputs)

        def decorator(func: F) -> F:
            module = func.__module__
            origin = "builtin" if module.startswith("asyncbatch.") else module
            self.register(ActionSpec(name, func, params, origin=origin, **capabilities))
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
        model, kernel and capabilities it is registered with here, or was declared
        with (:func:`action`: a plugin's module declares its params model that way)."""
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"{name!r} is not an async function")
        known = [*self._specs.values(), *(self._declared._specs.values() if self._declared else ())]
        for spec in known:
            if spec.func is func:
                return _renamed(spec, name, origin)
        return ActionSpec(name, func, None, origin=origin)


def _renamed(spec: ActionSpec, name: str, origin: str) -> ActionSpec:
    return dataclasses.replace(spec, name=name, origin=origin)


_declared = ActionRegistry()
"""What user code declared with :func:`action` in this process: read only by the
default registry (:func:`asyncbatch.actions.default_registry`)."""


def action(
    name: str, *, params: type[BaseModel] | None = None, **capabilities: Any
) -> Callable[[F], F]:
    """Declare the decorated async function as action ``name`` for every config
    loaded afterwards in this process with the default registry; the function is
    returned unchanged. ``params`` is the pydantic model of its params (without one,
    the action receives them as a plain dict); ``capabilities`` are the
    :class:`ActionSpec` fields it declares (``outputs=``, ``binds=``, ``input=``...)."""
    return _declared.action(name, params=params, **capabilities)


def declared_actions() -> ActionRegistry:
    """The registry of the actions user code declared with :func:`action` in this
    process."""
    return _declared


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
