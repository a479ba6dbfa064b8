"""The built-in actions: their params models (:mod:`._params`), their kernels
(:mod:`._kernels`, :mod:`._search`, :mod:`._regexplan`) and the specs that join them
(:mod:`.builtins`).

Importing this package loads nothing (worker processes import the kernels through
it); :func:`builtin_specs` is how a registry gets the built-ins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncbatch.registry import ActionSpec


def builtin_specs() -> tuple[ActionSpec, ...]:
    """The five built-in actions, for :func:`asyncbatch.registry.default_registry`."""
    from asyncbatch.actions.builtins import SPECS

    return SPECS
