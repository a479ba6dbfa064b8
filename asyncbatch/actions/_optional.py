"""The optional accelerators (numpy, Hyperscan): asked about without importing them
(start-up stays small), imported once on first use, and None when the import fails,
where the plain standard-library loops count the same."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from types import ModuleType


def installed(name: str) -> bool:
    """Whether module ``name`` can be imported, without importing it."""
    return importlib.util.find_spec(name) is not None


@functools.cache
def load(name: str) -> ModuleType | None:
    """Module ``name``, imported once; None if it cannot be."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
