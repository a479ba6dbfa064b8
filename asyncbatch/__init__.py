"""asyncbatch: run a batch of file jobs concurrently and report what happened.

The public API is imported lazily (PEP 562), so ``asyncbatch --version`` and other
commands that run no batch do not pay for anyio, aiofiles and pydantic, and importing
the package costs next to nothing (``__version__`` too is read when first asked for).
Helpers are imported under private names: every public name here is in ``__all__``.
"""

from __future__ import annotations

import functools as _functools
import importlib as _importlib
import typing as _typing

from asyncbatch.errors import (
    AsyncbatchError,
    ConfigError,
    JobError,
    OutputError,
)

if _typing.TYPE_CHECKING:
    __version__: str
    from asyncbatch.config import BatchConfig, Job, load_config
    from asyncbatch.engine import run_batch
    from asyncbatch.output.report import JobResult, Report, Summary
    from asyncbatch.registry import ActionRegistry, ActionSpec, action


@_functools.cache
def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asyncbatch")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+unknown"


_LAZY = {
    "ActionRegistry": "asyncbatch.registry",
    "ActionSpec": "asyncbatch.registry",
    "BatchConfig": "asyncbatch.config",
    "Job": "asyncbatch.config",
    "JobResult": "asyncbatch.output.report",
    "Report": "asyncbatch.output.report",
    "Summary": "asyncbatch.output.report",
    "action": "asyncbatch.registry",
    "load_config": "asyncbatch.config",
    "run_batch": "asyncbatch.engine",
}


def __getattr__(name: str) -> _typing.Any:
    if name == "__version__":
        return _package_version()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'asyncbatch' has no attribute {name!r}")
    return getattr(_importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The lazy names too, so ``dir()`` and completion show the whole API."""
    return sorted({*globals(), *_LAZY, "__version__"})


__all__ = [
    "ActionRegistry",
    "ActionSpec",
    "AsyncbatchError",
    "BatchConfig",
    "ConfigError",
    "Job",
    "JobError",
    "JobResult",
    "OutputError",
    "Report",
    "Summary",
    "__version__",
    "action",
    "load_config",
    "run_batch",
]
