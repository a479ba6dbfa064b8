"""The JSON Schema of the config format, for editors and ``asyncbatch schema``.

It is the pydantic schema of :class:`BatchFile`, with each registered action's
params model applied (``if action == NAME then params: MODEL``) so an editor
validates and completes a job's params from the action it names.
"""

from __future__ import annotations

from typing import Any

from asyncbatch.config._models import BatchFile
from asyncbatch.registry import ActionRegistry

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def config_schema(registry: ActionRegistry) -> dict[str, Any]:
    schema = BatchFile.model_json_schema(by_alias=True)
    definitions = schema.setdefault("$defs", {})
    rules: list[dict[str, Any]] = []
    for spec in registry:
        if spec.params is None:
            continue
        params = spec.params.model_json_schema(ref_template="#/$defs/{model}")
        definitions.update(params.pop("$defs", {}))
        then: dict[str, Any] = {"properties": {"params": params}}
        if params.get("required"):
            then["required"] = ["params"]  # load_config rejects it missing, too
        rules.append(
            {
                "if": {"properties": {"action": {"const": spec.name}}, "required": ["action"]},
                "then": then,
            }
        )
    job = definitions["JobConfig"]
    job["allOf"] = rules
    job["properties"]["action"]["examples"] = [spec.name for spec in registry]
    return {"$schema": SCHEMA_DIALECT, **schema, "title": "asyncbatch config"}
