"""The public Python API: pinned names (as httpx's test_exported_members.py does), the
README example end to end, and a custom action registered from code."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel, Field

import asyncbatch
from asyncbatch import ConfigError, Report, load_config, run_batch
from asyncbatch.actions import default_registry

pytestmark = pytest.mark.anyio


def public_names(module: ModuleType) -> set[str]:
    """What ``from asyncbatch import NAME`` offers without an underscore: everything
    ``dir()`` lists (lazy names included), but submodules and the ``__future__``
    import every module starts with."""
    names = set()
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, ModuleType) or type(value).__module__ == "__future__":
            continue
        names.add(name)
    return names


def test_all_is_sorted() -> None:
    assert asyncbatch.__all__ == sorted(asyncbatch.__all__)


def test_all_lists_exactly_the_public_names_of_the_package() -> None:
    assert set(asyncbatch.__all__) - {"__version__"} == public_names(asyncbatch)


@pytest.mark.parametrize("name", asyncbatch.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from asyncbatch import {name}", namespace)
    assert namespace[name] is getattr(asyncbatch, name)


def test_the_core_api_is_there() -> None:
    assert {"action", "load_config", "run_batch", "Report", "ConfigError"} <= set(
        asyncbatch.__all__
    )


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = asyncbatch.no_such_name


def test_version_is_the_installed_distribution_version() -> None:
    assert asyncbatch.__version__ == importlib.metadata.version("asyncbatch")


HOMES = {
    "asyncbatch.session": ["run_batch", "load_config"],
    "asyncbatch.options": ["RunOptions"],
    "asyncbatch.controls": ["Halt"],
    "asyncbatch.model": ["JobResult", "Report", "Summary"],
    "asyncbatch.config": ["BatchConfig", "Job"],
    "asyncbatch.registry": ["ActionRegistry", "ActionSpec", "JobContext", "action"],
    "asyncbatch.errors": ["AsyncbatchError", "ConfigError", "JobError", "OutputError"],
}


@pytest.mark.parametrize("module_name", list(HOMES))
def test_the_exported_names_are_the_ones_defined_in_the_modules(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in HOMES[module_name]:
        assert getattr(asyncbatch, name) is getattr(module, name), name


def test_every_exported_name_has_its_home_module_listed() -> None:
    homed = {name for names in HOMES.values() for name in names}
    assert homed == set(asyncbatch.__all__) - {"__version__"}


# --- the README example -----------------------------------------------------------------


NOTES = "alpha beta\ngamma delta epsilon\n"


def write_batch(tmp_path: Path, jobs: list[dict[str, Any]]) -> Path:
    (tmp_path / "notes.txt").write_text(NOTES, encoding="utf-8")
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    return path


async def test_the_readme_example_runs_a_batch(tmp_path: Path) -> None:
    path = write_batch(
        tmp_path,
        [
            {"name": "lines", "action": "count_lines", "input": "notes.txt"},
            {"name": "words", "action": "count_words", "input": "notes.txt"},
        ],
    )

    report = await run_batch(load_config(str(path)), max_concurrency=4)

    assert isinstance(report, Report)
    assert [(job.name, job.status, job.result) for job in report.jobs] == [
        ("lines", "succeeded", {"lines": 2}),
        ("words", "succeeded", {"words": 5}),
    ]
    assert report.summary.succeeded == 2
    assert report.ok
    assert report.max_concurrency == 4


def test_the_readme_example_runs_the_sample_with_anyio_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's snippet as written: a plain program that starts its own loop."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    reports: list[Report] = []

    async def main() -> None:
        report = await run_batch(load_config("data/batch_config.json"), max_concurrency=4)
        reports.append(report)

    anyio.run(main)
    (report,) = reports
    assert report.ok
    assert report.summary.to_dict() == {
        "total_jobs": 4,
        "succeeded": 4,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
    }


async def test_run_batch_works_inside_a_running_program_next_to_other_tasks(
    tmp_path: Path,
) -> None:
    """An anyio test is a running program: two batches and another task share it."""
    path = write_batch(tmp_path, [{"name": "size", "action": "file_size", "input": "notes.txt"}])
    config = load_config(path)
    reports: list[Report] = []
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(5):
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async def one_batch() -> None:
        reports.append(await run_batch(config))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            group.start_soon(one_batch)
            group.start_soon(one_batch)
    assert ticks == 5
    assert [report.jobs[0].result for report in reports] == [{"bytes": len(NOTES)}] * 2


# --- a custom action from code ----------------------------------------------------------------


class UpperWordsParams(BaseModel):
    """Params of the test action."""

    min_length: int = Field(default=1, ge=1)


async def upper_words(path: Path, params: UpperWordsParams) -> dict[str, Any]:
    """Words of at least ``min_length`` letters, upper-cased."""
    text = await anyio.Path(path).read_text(encoding="utf-8")
    return {"words": [word.upper() for word in text.split() if len(word) >= params.min_length]}


@pytest.fixture
def declared() -> str:
    """``upper_words`` declared with ``@asyncbatch.action`` under a name of its own:
    a declaration lasts for the process, so no other test ever sees the name."""
    name = f"upper_words_{uuid.uuid4().hex}"
    assert asyncbatch.action(name, params=UpperWordsParams)(upper_words) is upper_words
    return name


def test_the_action_decorator_returns_the_function_unchanged_and_declares_it(
    declared: str,
) -> None:
    spec = default_registry().get(declared)
    assert spec is not None
    assert (spec.func, spec.params) == (upper_words, UpperWordsParams)


async def test_a_custom_action_registered_with_the_decorator_runs_from_a_config(
    tmp_path: Path, declared: str
) -> None:
    path = write_batch(
        tmp_path,
        [
            {
                "name": "shout",
                "action": declared,
                "input": "notes.txt",
                "params": {"min_length": 5},
            }
        ],
    )
    report = await run_batch(load_config(path))
    (job,) = report.jobs
    assert job.status == "succeeded"
    assert job.result == {"words": ["ALPHA", "GAMMA", "DELTA", "EPSILON"]}


def test_a_custom_actions_params_are_validated_when_the_config_loads(
    tmp_path: Path, declared: str
) -> None:
    path = write_batch(
        tmp_path,
        [
            {
                "name": "shout",
                "action": declared,
                "input": "notes.txt",
                "params": {"min_length": 0},
            }
        ],
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(problem.startswith("jobs[0].params.min_length") for problem in caught.value.problems)
