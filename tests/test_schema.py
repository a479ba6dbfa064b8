"""The JSON Schema that ``asyncbatch schema`` prints for editors, checked with a real
validator (jsonschema, from the dev extra) against configs that ``load_config``
accepts or rejects: the schema and the loader must agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from asyncbatch import ConfigError, load_config
from asyncbatch.cli import app

jsonschema = pytest.importorskip("jsonschema", reason="needs jsonschema (the dev extra)")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "batch_config.json"
BUILTINS = ["checksum", "count_lines", "count_words", "file_size", "search_pattern"]

WriteConfig = Callable[..., Path]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """What ``asyncbatch schema`` prints."""
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.stderr
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


def schema_errors(schema: dict[str, Any], config: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(config)]


def job(**keys: Any) -> dict[str, Any]:
    return {"name": "j", "action": "count_lines", "input": "in.txt", **keys}


def test_the_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_sample_config_is_valid(schema: dict[str, Any]) -> None:
    assert schema_errors(schema, json.loads(SAMPLE.read_text(encoding="utf-8"))) == []


def test_the_action_property_offers_the_known_actions(schema: dict[str, Any]) -> None:
    action = schema["$defs"]["JobConfig"]["properties"]["action"]
    assert set(BUILTINS) <= set(action["examples"])  # what editors complete from
    assert action["examples"] == sorted(action["examples"])
    assert action["type"] == "string"  # any name: module:function, or a skipped unknown one


VALID = {
    "a $schema key": {"$schema": "./asyncbatch.schema.json", "jobs": [job()]},
    "no jobs": {"jobs": []},
    "a module:function action": {"jobs": [job(action="mytools:shout", params={"any": 1})]},
    "an unknown action name (a skipped job, not a config error)": {"jobs": [job(action="nope")]},
    "search_pattern with its params": {
        "jobs": [job(action="search_pattern", params={"pattern": "ERROR", "ignore_case": True})]
    },
    "everything": {
        "max_concurrency": 2,
        "defaults": {"timeout": 1.5, "retries": 2},
        "limits": {"disk": 1},
        "jobs": [
            job(name="a", input="logs/*.log", timeout=3, retries=0, limits=["disk"]),
            job(name="b", action="checksum", params={"algorithm": "md5"}, depends_on=["a"]),
        ],
    },
}


@pytest.mark.parametrize("config", VALID.values(), ids=VALID.keys())
def test_configs_the_loader_accepts_are_valid(
    schema: dict[str, Any], config: dict[str, Any], tmp_path: Path
) -> None:
    assert schema_errors(schema, config) == []
    (tmp_path / "mytools.py").write_text("async def shout(path, params):\n    return {}\n")
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    load_config(path)  # raises ConfigError if the loader disagrees


INVALID = {
    # name: (config, where the one error is, the schema keyword that catches it)
    "search_pattern without its pattern": (
        {"jobs": [job(action="search_pattern", params={"ignore_case": True})]},
        "$.jobs[0].params",
        "required",
    ),
    "search_pattern without params": (
        {"jobs": [job(action="search_pattern")]},
        "$.jobs[0]",
        "required",
    ),
    "an unknown top-level key": ({"jobs": [], "max_concurency": 2}, "$", "additionalProperties"),
    "an unknown job key": ({"jobs": [job(depends=["x"])]}, "$.jobs[0]", "additionalProperties"),
    "an unknown param": (
        {"jobs": [job(action="search_pattern", params={"pattern": "x", "case": 1})]},
        "$.jobs[0].params",
        "additionalProperties",
    ),
    "params on an action that takes none": (
        {"jobs": [job(params={"verbose": True})]},
        "$.jobs[0].params",
        "additionalProperties",
    ),
    "a string timeout": ({"jobs": [job(timeout="5")]}, "$.jobs[0].timeout", "anyOf"),
    "a zero timeout": ({"jobs": [job(timeout=0)]}, "$.jobs[0].timeout", "anyOf"),
    "a string max_concurrency": (
        {"max_concurrency": "4", "jobs": []},
        "$.max_concurrency",
        "anyOf",
    ),
    "jobs not a list": ({"jobs": {"name": "j"}}, "$.jobs", "type"),
    "no jobs key": ({"max_concurrency": 2}, "$", "required"),
    "a job without input": (
        {"jobs": [{"name": "j", "action": "count_lines"}]},
        "$.jobs[0]",
        "required",
    ),
    "an empty name": ({"jobs": [job(name="")]}, "$.jobs[0].name", "minLength"),
    "an unknown checksum algorithm": (
        {"jobs": [job(action="checksum", params={"algorithm": "crc32"})]},
        "$.jobs[0].params.algorithm",
        "enum",
    ),
    "a limit of size 0": ({"limits": {"disk": 0}, "jobs": []}, "$.limits.disk", "minimum"),
}


@pytest.mark.parametrize(("config", "where", "keyword"), INVALID.values(), ids=INVALID.keys())
def test_configs_the_loader_rejects_are_invalid(
    schema: dict[str, Any],
    config: dict[str, Any],
    where: str,
    keyword: str,
    write_config: WriteConfig,
) -> None:
    errors = jsonschema.Draft202012Validator(schema).iter_errors(config)
    assert [(error.json_path, error.validator) for error in errors] == [(where, keyword)]
    with pytest.raises(ConfigError):
        load_config(write_config(config))
