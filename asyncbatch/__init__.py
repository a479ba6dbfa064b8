"""asyncbatch: run a batch of file jobs concurrently and report what happened.

The public API is imported lazily (PEP 562), so ``asyncbatch --version`` and other
commands that run no batch do not pay for anyio, aiofiles and pydantic, and importing
the package costs next to nothing (``__version__`` is a constant of its own module).
Helpers are imported under private names: every public name here is in ``__all__``.
"""

from __future__ import annotations

import typing as _typing

from asyncbatch._version import __version__
from asyncbatch.errors import (
    AsyncbatchError,
    ConfigError,
    JobError,
    OutputError,
)
from asyncbatch.lazy import lazy_names as _lazy_names

if _typing.TYPE_CHECKING:
    from asyncbatch.config import BatchConfig, Job
    from asyncbatch.controls import Halt
    from asyncbatch.model import JobResult, Report, Summary
    from asyncbatch.options import RunOptions
    from asyncbatch.registry import ActionRegistry, ActionSpec, JobContext, action
    from asyncbatch.session import load_config, run_batch


_LAZY = {
    "ActionRegistry": "asyncbatch.registry",
    "ActionSpec": "asyncbatch.registry",
    "JobContext": "asyncbatch.registry",
    "BatchConfig": "asyncbatch.config",
    "Job": "asyncbatch.config",
    "Halt": "asyncbatch.controls",
    "JobResult": "asyncbatch.model",
    "Report": "asyncbatch.model",
    "Summary": "asyncbatch.model",
    "action": "asyncbatch.registry",
    "RunOptions": "asyncbatch.options",
    "load_config": "asyncbatch.session",
    "run_batch": "asyncbatch.session",
}


__getattr__, __dir__ = _lazy_names(__name__, _LAZY)


__all__ = [
    "ActionRegistry",
    "ActionSpec",
    "AsyncbatchError",
    "BatchConfig",
    "ConfigError",
    "Halt",
    "Job",
    "JobContext",
    "JobError",
    "JobResult",
    "OutputError",
    "Report",
    "RunOptions",
    "Summary",
    "__version__",
    "action",
    "load_config",
    "run_batch",
]
