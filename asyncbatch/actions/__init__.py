"""The built-in actions: their params models (:mod:`._params`), their kernels
(:mod:`._kernels`, :mod:`._search`, :mod:`._regexplan`) and the specs that join them
(:mod:`.builtins`); and :func:`default_registry`, where they meet user code's actions
and the installed plugins.

Importing this package loads nothing more (worker processes import the kernels
through it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncbatch.registry import ActionRegistry, ActionSpec


def builtin_specs() -> tuple[ActionSpec, ...]:
    """The built-in actions."""
    from asyncbatch.actions.builtins import BUILTINS

    return BUILTINS


def default_registry() -> ActionRegistry:
    """A new registry of the built-ins, then the actions declared with
    ``asyncbatch.action`` (which may replace a built-in), then, on a miss, the
    installed plugins (which never replace either)."""
    from asyncbatch.registry import ActionRegistry, declared_actions

    declared = declared_actions()
    return ActionRegistry([*builtin_specs(), *declared], plugins=True, declared=declared)
