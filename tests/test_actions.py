"""The five built-in actions as registered: their specs, params models and
descriptions, params validation (located, at config load too), and the action
functions on inputs that are not plain files. Their counts, on every route, are
checked against oracles in test_kernels.py."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import anyio
import pydantic
import pytest
from support import load, worker_processes_for_the_loop

from asyncbatch.actions import _optional as optional
from asyncbatch.actions import builtin_specs, default_registry
from asyncbatch.actions._params import (
    ChecksumParams,
    HashAlgorithm,
    NoParams,
    SearchPatternParams,
)
from asyncbatch.actions.builtins import BUILTINS as BUILTIN_SPECS
from asyncbatch.actions.builtins import CHECKSUM, LINES, SEARCH, SIZE, WORDS
from asyncbatch.actions.command import CommandParams
from asyncbatch.config._bulk import Resolver
from asyncbatch.errors import ConfigError, NotARegularFile
from asyncbatch.kernel import Kernel
from asyncbatch.registry import ActionRegistry, ActionSpec

pytestmark = pytest.mark.anyio

BUILTINS = ("checksum", "count_lines", "count_words", "file_size", "search_pattern")
"""The built-ins that compute over a file's bytes (``command`` runs a program)."""


@pytest.fixture(scope="module", autouse=True)
async def one_event_loop_for_the_module(anyio_backend: str) -> AsyncIterator[None]:
    """One event loop for all the tests here, and search_pattern's worker processes
    with it: they start once, not once per test (~0.3 s each); see
    worker_processes_for_the_loop."""
    async with worker_processes_for_the_loop():
        yield  # while suspended here, anyio's plugin keeps the loop running


def builtin(name: str) -> ActionSpec:
    spec = ActionRegistry(builtin_specs()).get(name)
    assert spec is not None
    return spec


async def run_builtin(name: str, path: Path) -> dict[str, Any]:
    """Await built-in ``name``'s action function on ``path``, with params validated
    from raw values."""
    spec = builtin(name)
    raw = {"pattern": "x"} if name == "search_pattern" else {}
    result = await spec.func(path, spec.validate_params(raw))
    assert isinstance(result, dict), result
    return result


def write(tmp_path: Path, data: bytes, name: str = "input.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- registration ------------------------------------------------------------------------


def test_the_builtins_are_specs_with_params_models_and_the_file_statistics_kernels() -> None:
    specs = builtin_specs()
    assert sorted(spec.name for spec in specs) == sorted([*BUILTINS, "command"])
    assert all(isinstance(spec, ActionSpec) and spec.origin == "builtin" for spec in specs)
    described: dict[str, tuple[Any, Kernel | None]] = {
        spec.name: (spec.params, spec.kernel) for spec in specs
    }
    assert described == {
        "checksum": (ChecksumParams, CHECKSUM),
        "count_lines": (NoParams, LINES),
        "count_words": (NoParams, WORDS),
        "file_size": (NoParams, SIZE),
        "search_pattern": (SearchPatternParams, SEARCH),
        "command": (CommandParams, None),  # a program, not a scan of the file's bytes
    }
    # How the local executor may run each: hashing lets other threads run (so do
    # numpy's counts, where installed), file_size reads nothing, a regex may never
    # return (only a killable process runs it).
    numpy = optional.installed("numpy")
    flags = {
        spec.name: (kernel.reads, kernel.releases_gil, kernel.isolated)
        for spec in specs
        if (kernel := spec.kernel) is not None
    }
    assert flags == {
        "checksum": (True, True, False),
        "count_lines": (True, numpy, False),
        "count_words": (True, numpy, False),
        "file_size": (False, False, False),
        "search_pattern": (True, False, True),
    }


def test_the_default_registry_holds_the_builtins_as_specified() -> None:
    registry = default_registry()
    assert builtin_specs() == BUILTIN_SPECS
    for spec in builtin_specs():
        assert registry.get(spec.name) == spec
    assert [spec.name for spec in ActionRegistry(builtin_specs())] == sorted([*BUILTINS, "command"])


def test_every_builtin_and_param_field_has_a_description_for_the_actions_command() -> None:
    for spec in builtin_specs():
        assert spec.description, spec.name
        assert "\n" not in spec.description
        assert spec.params is not None
        for field_name, field in spec.params.model_fields.items():
            assert field.description, f"{spec.name}.{field_name}"


def test_checksum_accepts_exactly_hashlibs_guaranteed_fixed_length_algorithms() -> None:
    assert set(get_args(HashAlgorithm)) == hashlib.algorithms_guaranteed - {
        "shake_128",
        "shake_256",
    }


async def test_builtins_run_through_the_registry_with_raw_params(tmp_path: Path) -> None:
    path = write(tmp_path, b"one ERROR\ntwo\n")
    registry = default_registry()
    raw: dict[str, dict[str, Any]] = {
        "checksum": {"algorithm": "md5"},
        "search_pattern": {"pattern": "error", "ignore_case": True},
    }
    results = {}
    for name in BUILTINS:
        spec = registry.get(name)
        assert spec is not None
        results[name] = await spec.func(path, spec.validate_params(raw.get(name, {})))
    assert results == {
        "checksum": {"algorithm": "md5", "digest": hashlib.md5(b"one ERROR\ntwo\n").hexdigest()},
        "count_lines": {"lines": 2},
        "count_words": {"words": 3},
        "file_size": {"bytes": 14},
        "search_pattern": {"matches": 1, "matching_lines": 1},
    }
    assert json.loads(json.dumps(results)) == results


# --- inputs that are not regular files ---------------------------------------------------


async def test_a_directory_input_is_not_a_regular_file(tmp_path: Path) -> None:
    with anyio.fail_after(5):
        for name in BUILTINS:
            with pytest.raises(NotARegularFile, match="is a directory"):
                await run_builtin(name, tmp_path)


async def test_a_fifo_input_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with anyio.fail_after(5):
        for name in BUILTINS:
            with pytest.raises(NotARegularFile, match=f"{fifo}: is a FIFO, not a regular file"):
                await run_builtin(name, fifo)


async def test_dev_null_is_refused_as_a_character_device() -> None:
    dev_null = Path(os.devnull)
    if not stat.S_ISCHR(os.stat(dev_null).st_mode):
        pytest.skip("no /dev/null character device here")
    with anyio.fail_after(5):
        for name in BUILTINS:
            with pytest.raises(NotARegularFile, match="is a character device"):
                await run_builtin(name, dev_null)


async def test_symlinks_are_followed_to_what_they_point_at(tmp_path: Path) -> None:
    target = write(tmp_path, b"one\ntwo\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert {name: await run_builtin(name, link) for name in BUILTINS} == {
        name: await run_builtin(name, target) for name in BUILTINS
    }
    assert await run_builtin("count_lines", link) == {"lines": 2}
    dir_link = tmp_path / "dir_link"
    dir_link.symlink_to(tmp_path, target_is_directory=True)
    for name in BUILTINS:
        with pytest.raises(NotARegularFile, match="is a directory"):
            await run_builtin(name, dir_link)


async def test_a_missing_input_raises_file_not_found_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "none.log"
    for name in BUILTINS:
        with pytest.raises(FileNotFoundError) as caught:
            await run_builtin(name, missing)
        assert os.fsdecode(caught.value.filename) == str(missing), name


# --- params validation -------------------------------------------------------------------


def validate(action: str, raw: dict[str, Any]) -> Any:
    return builtin(action).validate_params(raw)


@pytest.mark.parametrize("pattern", ["ERROR|FATAL", "a+", r"\d+", r"(?<=x)y", "^#", r"\bword\b"])
def test_search_accepts_patterns_that_must_match_a_character(pattern: str) -> None:
    assert validate("search_pattern", {"pattern": pattern}).pattern == pattern


@pytest.mark.parametrize("pattern", ["a*", "^", "$", r"\b", "(?=x)", "x?", "", "a|", "(?:)"])
def test_search_rejects_patterns_that_can_match_the_empty_string(pattern: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="can match the empty string") as caught:
        validate("search_pattern", {"pattern": pattern})
    assert [error["loc"] for error in caught.value.errors()] == [("pattern",)]


def test_search_rejects_a_pattern_that_does_not_compile_with_res_message() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        validate("search_pattern", {"pattern": "(unclosed"})
    (error,) = caught.value.errors()
    assert error["loc"] == ("pattern",)
    assert "invalid regular expression: missing ), unterminated subpattern" in error["msg"]


@pytest.mark.parametrize(
    ("action", "raw", "loc"),
    [
        ("search_pattern", {}, ("pattern",)),
        ("search_pattern", {"pattern": 1}, ("pattern",)),
        ("search_pattern", {"pattern": "x", "ignore_case": "yes"}, ("ignore_case",)),
        ("search_pattern", {"pattern": "x", "ignore_case": 1}, ("ignore_case",)),
        ("search_pattern", {"pattern": "x", "flags": "i"}, ("flags",)),
        ("checksum", {"algorithm": "shake_128"}, ("algorithm",)),
        ("checksum", {"algorithm": "crc32"}, ("algorithm",)),
        ("checksum", {"algorithm": 256}, ("algorithm",)),
        ("checksum", {"algo": "md5"}, ("algo",)),
        ("count_lines", {"encoding": "latin-1"}, ("encoding",)),
        ("count_words", {"x": 1}, ("x",)),
        ("file_size", {"follow": True}, ("follow",)),
    ],
)
def test_bad_params_are_rejected_at_their_location(
    action: str, raw: dict[str, Any], loc: tuple[str, ...]
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        validate(action, raw)
    assert [error["loc"] for error in caught.value.errors()] == [loc]


def test_params_default_to_sha256_and_case_sensitive() -> None:
    assert validate("checksum", {}) == ChecksumParams(algorithm="sha256")
    assert validate("search_pattern", {"pattern": "x"}).ignore_case is False
    assert validate("count_lines", {}) == NoParams()


def test_config_loading_validates_builtin_params_once_per_distinct_value_and_type() -> None:
    spec = builtin("search_pattern")
    resolver = Resolver(ActionRegistry(builtin_specs()), Path.cwd())
    first = resolver.validate_params(spec, {"pattern": "x", "ignore_case": True})
    assert resolver.validate_params(spec, {"ignore_case": True, "pattern": "x"}) is first
    for _ in range(2):  # a remembered error is raised again, for every job that has it
        with pytest.raises(pydantic.ValidationError, match="ignore_case"):
            resolver.validate_params(spec, {"pattern": "x", "ignore_case": 1})  # strict: 1 != True


def test_a_config_with_bad_params_is_still_located_job_by_job(tmp_path: Path) -> None:
    jobs: list[dict[str, Any]] = [
        {"name": f"j{i}", "action": "file_size", "input": "x"} for i in range(50)
    ]
    jobs[7] = {"name": "bad", "action": "file_size"}
    jobs[9]["params"] = {"nope": 1}
    jobs[11] = {
        "name": "empty",
        "action": "search_pattern",
        "input": "x",
        "params": {"pattern": "a*"},
    }
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, ActionRegistry(builtin_specs()), jobs)
    assert caught.value.problems[:2] == [
        "jobs[7].input: Field required",
        "jobs[9].params.nope: unknown key (takes none)",
    ]
    (empty,) = caught.value.problems[2:]
    assert empty.startswith("jobs[11].params.pattern: ")
    assert "can match the empty string" in empty
