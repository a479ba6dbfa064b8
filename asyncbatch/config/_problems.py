"""Problems as users read them: pydantic's errors as ``location: message`` lines
(``jobs[2].params.pattern: Field required``), with a did-you-mean for typos."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

HINTED = 50
"""Problems after this many get no did-you-mean: on a huge broken config the
fuzzy matching would cost minutes."""


def locate_errors(exc: ValidationError, prefix: str, model: type[BaseModel] | None) -> list[str]:
    """pydantic errors as ``prefix.loc: message`` lines."""
    problems = []
    for error in exc.errors(include_url=False):
        deeper = getattr(error.get("ctx", {}).get("error"), "at", ())  # a ProblemAt's place
        location = format_location((*error["loc"], *deeper), prefix)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
            owner = _model_at(model, error["loc"][:-1])
            if owner is not None:
                allowed = [f.alias or name for name, f in owner.model_fields.items()]
                message += did_you_mean(str(error["loc"][-1]), allowed)
                message += f" (allowed: {', '.join(allowed)})" if allowed else " (takes none)"
        problems.append(f"{location}: {message}")
    return problems


def format_location(parts: Sequence[Any], prefix: str = "") -> str:
    """Keys and indexes as the user points at them: ``jobs[2].params.pattern``
    (``top level`` for none)."""
    location = prefix
    for part in parts:
        location += f"[{part}]" if type(part) is int else f".{part}" if location else str(part)
    return location or "top level"


def _model_at(model: type[BaseModel] | None, loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model that validated the object at ``loc`` inside ``model`` (None when
    the path goes through anything but model-typed fields)."""
    for part in loc:
        field_info = model.model_fields.get(part) if model is not None else None
        annotation = field_info.annotation if field_info is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """` (did you mean 'x'?)` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
