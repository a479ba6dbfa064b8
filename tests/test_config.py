"""load_config: formats, validation (every problem at once, located), paths, globs,
dependencies, actions and their params; the JSON Schema; the dry-run plan."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from asyncbatch import load_config
from asyncbatch.actions import default_registry
from asyncbatch.actions._params import ChecksumParams, SearchPatternParams
from asyncbatch.config import BatchConfig, find_config, select_jobs
from asyncbatch.config.schema import config_schema
from asyncbatch.errors import ConfigError, UnknownAction
from asyncbatch.output.plan import dry_run_plan
from asyncbatch.registry import ActionRegistry

WriteConfig = Callable[..., Path]
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "batch_config.json"


def job(name: Any = "a", **fields: Any) -> dict[str, Any]:
    """A valid job dict (count_lines over a.log), with ``fields`` overriding."""
    return {"name": name, "action": "count_lines", "input": "a.log", **fields}


def problems_of(path: str | Path, **kwargs: Any) -> list[str]:
    """The problems of the ConfigError that loading ``path`` must raise."""
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    return info.value.problems


def touch(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def module_name() -> Iterator[str]:
    """A module name no other test uses (sys.modules caches imports); forgotten after."""
    name = f"abtest_{uuid.uuid4().hex}"
    yield name
    sys.modules.pop(name, None)


# --- formats ---------------------------------------------------------------

FORMATS_JSON: dict[str, Any] = {
    "max_concurrency": 2,
    "defaults": {"timeout": 30, "retries": 1},
    "limits": {"disk": 1},
    "jobs": [
        {"name": "lines", "action": "count_lines", "input": "logs/a.log"},
        {
            "name": "errors",
            "action": "search_pattern",
            "input": "logs/a.log",
            "params": {"pattern": "ERROR|FATAL", "ignore_case": True},
            "depends_on": ["lines"],
            "timeout": 5.5,
            "retries": 2,
            "limits": ["disk"],
        },
    ],
}

FORMATS_TOML = """\
max_concurrency = 2
[defaults]
timeout = 30
retries = 1
[limits]
disk = 1
[[jobs]]
name = "lines"
action = "count_lines"
input = "logs/a.log"
[[jobs]]
name = "errors"
action = "search_pattern"
input = "logs/a.log"
depends_on = ["lines"]
timeout = 5.5
retries = 2
limits = ["disk"]
[jobs.params]
pattern = "ERROR|FATAL"
ignore_case = true
"""

FORMATS_YAML = """\
max_concurrency: 2
defaults: {timeout: 30, retries: 1}
limits:
  disk: 1
jobs:
  - name: lines
    action: count_lines
    input: logs/a.log
  - name: errors
    action: search_pattern
    input: logs/a.log
    params:
      pattern: "ERROR|FATAL"
      ignore_case: true
    depends_on: [lines]
    timeout: 5.5
    retries: 2
    limits: [disk]
"""


def test_json_toml_yaml_and_yml_configs_give_equal_jobs(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    reference = load_config(write_config(FORMATS_JSON))
    assert [j.name for j in reference.jobs] == ["lines", "errors"]
    assert isinstance(reference.jobs[1].params, SearchPatternParams)
    for name, text in [
        ("batch.toml", FORMATS_TOML),
        ("batch.yaml", FORMATS_YAML),
        ("batch.yml", FORMATS_YAML),
    ]:
        other = load_config(touch(tmp_path / name, text))
        assert other.jobs == reference.jobs, name
        assert other.max_concurrency == 2
        assert other.defaults == reference.defaults
        assert other.limits == {"disk": 1}


def test_extension_is_recognised_whatever_its_case(write_config: WriteConfig) -> None:
    config = load_config(write_config({"jobs": [job()]}, name="BATCH.JSON"))
    assert [j.name for j in config.jobs] == ["a"]


def test_dash_reads_json_from_stdin_and_resolves_inputs_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stdin = io.StringIO(json.dumps({"jobs": [job(input="logs/a.log")]}))
    config = load_config("-", stdin=stdin)
    assert config.source == "-"
    assert config.base_dir == tmp_path
    assert config.jobs[0].path == tmp_path / "logs" / "a.log"


def test_dash_reads_json_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config("-", stdin=io.StringIO("jobs: []\n"))
    assert info.value.problems[0].startswith("line 1, column 1: ")
    assert info.value.source == "-"


# --- discovery -------------------------------------------------------------


def test_find_config_prefers_toml_then_yaml_then_yml_then_json(tmp_path: Path) -> None:
    order = ["asyncbatch.toml", "asyncbatch.yaml", "asyncbatch.yml", "asyncbatch.json"]
    for name in reversed(order):
        touch(tmp_path / name)
    for name in order:
        assert find_config(tmp_path) == tmp_path / name
        (tmp_path / name).unlink()
    assert find_config(tmp_path) is None


def test_find_config_returns_none_when_there_is_no_config_file(tmp_path: Path) -> None:
    (tmp_path / "asyncbatch.json").mkdir()  # a directory is not a config
    touch(tmp_path / "batch.json")  # nor is any other name
    assert find_config(tmp_path) is None


# --- unknown keys, required fields, types, bounds --------------------------


@pytest.mark.parametrize(
    ("config", "location", "suggestion"),
    [
        ({"job": [], "jobs": []}, "job", "jobs"),
        ({"defaults": {"timout": 3}, "jobs": []}, "defaults.timout", "timeout"),
        ({"jobs": [job(dependson=[])]}, "jobs[0].dependson", "depends_on"),
        (
            {"jobs": [job(action="search_pattern", params={"pattern": "x", "patern": "y"})]},
            "jobs[0].params.patern",
            "pattern",
        ),
    ],
    ids=["top", "defaults", "job", "params"],
)
def test_unknown_keys_are_rejected_at_every_level_with_a_suggestion(
    write_config: WriteConfig, config: dict[str, Any], location: str, suggestion: str
) -> None:
    (problem,) = problems_of(write_config(config))
    assert problem.startswith(f"{location}: unknown key (did you mean {suggestion!r}?)")


def test_an_unknown_param_of_an_action_without_params_says_it_takes_none(
    write_config: WriteConfig,
) -> None:
    (problem,) = problems_of(write_config({"jobs": [job(params={"x": 1})]}))
    assert problem == "jobs[0].params.x: unknown key (takes none)"


@pytest.mark.parametrize("missing", ["name", "action", "input"])
def test_each_missing_required_job_key_is_reported(write_config: WriteConfig, missing: str) -> None:
    entry = job()
    del entry[missing]
    assert problems_of(write_config({"jobs": [job("ok"), entry]})) == [
        f"jobs[1].{missing}: Field required"
    ]


def test_all_missing_required_job_keys_are_reported_together(write_config: WriteConfig) -> None:
    assert problems_of(write_config({"jobs": [{}]})) == [
        "jobs[0].name: Field required",
        "jobs[0].action: Field required",
        "jobs[0].input: Field required",
    ]


def test_a_config_without_jobs_is_a_problem(write_config: WriteConfig) -> None:
    assert problems_of(write_config({"max_concurrency": 1})) == ["jobs: Field required"]


@pytest.mark.parametrize(
    ("config", "location"),
    [
        ({"max_concurrency": "3", "jobs": []}, "max_concurrency"),
        ({"max_concurrency": True, "jobs": []}, "max_concurrency"),
        ({"defaults": {"retries": "1"}, "jobs": []}, "defaults.retries"),
        ({"jobs": [job(retries=True)]}, "jobs[0].retries"),
        ({"jobs": [job(timeout="5")]}, "jobs[0].timeout"),
        ({"jobs": [job(name=3)]}, "jobs[0].name"),
        ({"jobs": [job(depends_on="b")]}, "jobs[0].depends_on"),
        ({"jobs": [job(params=[])]}, "jobs[0].params"),
        ({"jobs": ["a.log"]}, "jobs[0]"),
        ({"jobs": {"a": job()}}, "jobs"),
    ],
)
def test_wrong_types_are_rejected_without_coercion(
    write_config: WriteConfig, config: dict[str, Any], location: str
) -> None:
    (problem,) = problems_of(write_config(config))
    assert problem.startswith(f"{location}: Input should be")


@pytest.mark.parametrize(
    ("config", "location"),
    [
        ({"jobs": [job(timeout=0)]}, "jobs[0].timeout"),
        ({"jobs": [job(timeout=-1.5)]}, "jobs[0].timeout"),
        ({"jobs": [job(timeout=float("nan"))]}, "jobs[0].timeout"),
        ({"defaults": {"timeout": 0}, "jobs": []}, "defaults.timeout"),
        ({"jobs": [job(retries=-1)]}, "jobs[0].retries"),
        ({"defaults": {"retries": -1}, "jobs": []}, "defaults.retries"),
        ({"max_concurrency": 0, "jobs": []}, "max_concurrency"),
        ({"limits": {"disk": 0}, "jobs": []}, "limits.disk"),
        ({"jobs": [job(name="")]}, "jobs[0].name"),
        ({"jobs": [job(input="")]}, "jobs[0].input"),
    ],
)
def test_out_of_range_values_are_rejected(
    write_config: WriteConfig, config: dict[str, Any], location: str
) -> None:
    (problem,) = problems_of(write_config(config))
    assert problem.startswith(f"{location}: ")


def test_duplicate_job_names_are_a_problem_naming_both_positions(
    write_config: WriteConfig,
) -> None:
    config = {"jobs": [job("a"), job("b"), job("a")]}
    assert problems_of(write_config(config)) == ["jobs[2].name: duplicate name 'a' (also jobs[0])"]


def test_every_problem_is_reported_at_once_with_its_exact_location(
    write_config: WriteConfig,
) -> None:
    config = {
        "max_concurrency": 0,
        "jobs": [
            {"name": "a", "action": "count_lines"},
            job("b", retries=-1),
            job("c", action="search_pattern", params={"pattern": "("}),
            job("d", depends_on=["zz"]),
            job("e"),
        ],
    }
    problems = problems_of(write_config(config))
    assert [problem.split(": ")[0] for problem in problems] == [
        "max_concurrency",
        "jobs[0].input",
        "jobs[1].retries",
        "jobs[2].params.pattern",
        "jobs[3].depends_on[0]",
    ]
    assert problems[-1] == "jobs[3].depends_on[0]: unknown job 'zz'"


def test_config_error_message_prefixes_every_problem_with_the_source(
    write_config: WriteConfig,
) -> None:
    path = write_config({"jobs": [{}]})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: jobs[0].") for line in lines)


def test_a_job_with_a_bad_key_still_has_its_params_checked(write_config: WriteConfig) -> None:
    config = {"jobs": [job(action="search_pattern", timout=5, params={"pattern": "("})]}
    problems = problems_of(write_config(config))
    assert [problem.split(": ")[0] for problem in problems] == [
        "jobs[0].timout",
        "jobs[0].params.pattern",
    ]


def test_depending_on_an_invalid_job_is_not_also_reported_as_unknown(
    write_config: WriteConfig,
) -> None:
    config = {"jobs": [job("a", timeout="5"), job("b", depends_on=["a"])]}
    assert problems_of(write_config(config)) == ["jobs[0].timeout: Input should be a valid number"]


# --- files that do not parse ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("batch.json", '{\n  "jobs": [\n    {"name": "a",}\n  ]\n}\n'),
        ("batch.toml", 'max_concurrency = 2\njobs = []\nname = = "x"\n'),
        ("batch.yaml", "jobs: []\nmax_concurrency: 2\n  bad: indentation\n"),
    ],
)
def test_a_syntax_error_names_its_line_and_column(tmp_path: Path, name: str, text: str) -> None:
    """The same shape in every format: ``line L, column C: what is wrong``."""
    (problem,) = problems_of(touch(tmp_path / name, text))
    assert re.match(r"line 3, column \d+: \S", problem), problem


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("batch.json", ""),
        ("batch.json", "{"),
        ("batch.json", '{"jobs": [], }'),
        ("batch.json", "\x00\x01"),
        ("batch.json", "[" * 100_000),
        ("batch.json", "[" * 100_000 + "]" * 100_000),
        ("batch.json", '{"jobs": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("batch.toml", "jobs = "),
        ("batch.toml", "a = " + "[" * 100_000),
        ("batch.toml", "a = " + "{x = " * 10_000 + "1" + "}" * 10_000),
        ("batch.toml", "[jobs]\n[jobs]\n"),
        ("batch.toml", "jobs = []\njobs = []\n"),
        ("batch.yaml", "[" * 100_000),
        ("batch.yaml", "a:\n" + "".join(" " * i + "- \n" for i in range(1, 3000))),
        ("batch.yaml", "? [a, b]\n: 1\n"),
        ("batch.yaml", "? {a: 1}\n: 1\n"),
        ("batch.yaml", "!!python/object:os.system {}\n"),
        ("batch.yaml", "jobs: *nowhere\n"),
        ("batch.yaml", "jobs: [\n"),
        ("batch.yaml", "\t- a\n"),
        ("batch.yaml", "---\njobs: []\n---\njobs: []\n"),
        ("batch.yaml", "1: 2\njobs: []\n"),
        ("batch.yml", "jobs:\n  - name: 2024-01-01\n    action: count_lines\n    input: a\n"),
    ],
)
def test_a_file_that_does_not_parse_raises_config_error_and_nothing_else(
    tmp_path: Path, name: str, text: str
) -> None:
    assert problems_of(touch(tmp_path / name, text))


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_on_stdin_is_a_config_error_not_a_recursion_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    monkeypatch.chdir(tmp_path)
    text = '{"jobs": [], "params": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(ConfigError):
        load_config("-", stdin=io.StringIO(text))


def test_duplicate_keys_in_json_are_rejected(tmp_path: Path) -> None:
    text = '{"jobs": [{"name": "a", "action": "count_lines", "input": "a", "input": "b"}]}'
    assert problems_of(touch(tmp_path / "batch.json", text)) == [
        "duplicate key 'input' in an object"
    ]


def test_duplicate_keys_in_yaml_are_rejected_with_their_line(tmp_path: Path) -> None:
    text = "jobs:\n  - name: a\n    action: count_lines\n    input: a\n    input: b\n"
    assert problems_of(touch(tmp_path / "batch.yaml", text)) == ["line 5: duplicate key 'input'"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("batch.json", "[]"),
        ("batch.json", '"jobs"'),
        ("batch.json", "null"),
        ("batch.yaml", ""),
        ("batch.yaml", "- name: a\n"),
        ("batch.yml", "just text\n"),
    ],
)
def test_a_top_level_that_is_not_an_object_is_a_problem(
    tmp_path: Path, name: str, text: str
) -> None:
    assert problems_of(touch(tmp_path / name, text)) == [
        "the top level must be an object with a 'jobs' list"
    ]


@pytest.mark.parametrize("name", ["batch.ini", "batch", "batch.json5"])
def test_an_unknown_extension_is_a_problem_listing_the_known_ones(
    tmp_path: Path, name: str
) -> None:
    (problem,) = problems_of(touch(tmp_path / name, "{}"))
    assert problem.startswith("cannot tell the format from ")
    assert ".json, .toml, .yaml or .yml" in problem


def test_a_missing_config_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "none.json"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == ["no such file"]
    assert info.value.source == str(path)


def test_a_directory_given_as_config_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "batch.json").mkdir()
    assert problems_of(tmp_path / "batch.json") == ["is a directory, not a config file"]


def test_a_config_that_is_not_utf8_is_a_problem_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_bytes(b'{\n"jobs": [],\n"x": "caf\xe9"\n}\n')
    assert problems_of(path) == ["line 3: not valid UTF-8"]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_bytes(b'\xef\xbb\xbf{"jobs": []}')
    assert load_config(path).jobs == []


# --- small valid configs ---------------------------------------------------


def test_a_schema_key_is_accepted_and_ignored(write_config: WriteConfig) -> None:
    config = load_config(write_config({"$schema": "./schema.json", "jobs": [job()]}))
    assert [j.name for j in config.jobs] == ["a"]


@pytest.mark.parametrize(("name", "text"), [("b.json", '{"jobs": []}'), ("b.toml", "jobs = []")])
def test_an_empty_job_list_is_valid(tmp_path: Path, name: str, text: str) -> None:
    config = load_config(touch(tmp_path / name, text))
    assert config.jobs == []
    assert config.warnings == []


def test_defaults_and_limits_are_carried_to_the_batch(write_config: WriteConfig) -> None:
    config = load_config(
        write_config(
            {
                "max_concurrency": 3,
                "defaults": {"timeout": 2, "retries": 4},
                "limits": {"network": 2, "disk": 1},
                "jobs": [job(limits=["network", "disk"], timeout=1.5, retries=0)],
            }
        )
    )
    assert isinstance(config, BatchConfig)
    assert config.max_concurrency == 3
    assert (config.defaults.timeout, config.defaults.retries) == (2, 4)
    assert config.limits == {"network": 2, "disk": 1}
    (only,) = config.jobs
    assert (only.limits, only.timeout, only.retries) == ({"network": 1, "disk": 1}, 1.5, 0)


def test_unset_job_timeout_and_retries_stay_none_for_the_runner_to_default(
    write_config: WriteConfig,
) -> None:
    (only,) = load_config(write_config({"jobs": [job()]})).jobs
    assert (only.timeout, only.retries, only.depends_on, only.limits) == (None, None, (), {})


def test_the_sample_config_loads_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(SAMPLE)
    assert len(config.jobs) == 4
    assert config.warnings == []
    assert all(j.path.is_file() and j.start_error is None for j in config.jobs)
    assert dry_run_plan(config)["jobs"] == [
        {
            "name": j.name,
            "action": j.action,
            "input": j.input,
            "depends_on": list(j.depends_on),
            "warnings": [],
        }
        for j in config.jobs
    ]


# --- paths and globs -------------------------------------------------------


def test_relative_inputs_resolve_against_the_config_directory_not_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "project"
    touch(config_dir / "batch.json", json.dumps({"jobs": [job(input="logs/a.log")]}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (only,) = load_config(config_dir / "batch.json").jobs
    assert only.input == "logs/a.log"
    assert only.path == config_dir / "logs" / "a.log"


def test_a_relative_config_path_still_gives_absolute_input_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path / "project" / "batch.json", json.dumps({"jobs": [job(input="a.log")]}))
    monkeypatch.chdir(tmp_path)
    config = load_config("project/batch.json")
    assert config.source == "project/batch.json"
    assert config.jobs[0].path == tmp_path / "project" / "a.log"


def test_absolute_inputs_are_kept(tmp_path: Path, write_config: WriteConfig) -> None:
    target = str(tmp_path / "other" / "b.log")
    (only,) = load_config(write_config({"jobs": [job(input=target)]})).jobs
    assert only.input == target
    assert only.path == Path(target)


def test_a_star_glob_expands_sorted_into_one_job_per_file_in_place(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    for name in ["logs/b.log", "logs/a.log", "logs/c.txt", "logs/sub/d.log"]:
        touch(tmp_path / name)
    (tmp_path / "logs" / "dir.log").mkdir()
    config = load_config(
        write_config(
            {
                "jobs": [
                    job("first"),
                    job("logs", input="logs/*.log", timeout=2, limits=["io"]),
                    job("last"),
                ],
                "limits": {"io": 1},
            }
        )
    )
    assert [(j.name, j.input, j.path, j.group) for j in config.jobs] == [
        ("first", "a.log", tmp_path / "a.log", "first"),
        ("logs[logs/a.log]", "logs/a.log", tmp_path / "logs/a.log", "logs"),
        ("logs[logs/b.log]", "logs/b.log", tmp_path / "logs/b.log", "logs"),
        ("last", "a.log", tmp_path / "a.log", "last"),
    ]
    expanded = config.jobs[1:3]
    assert all((j.timeout, j.limits, j.action) == (2, {"io": 1}, "count_lines") for j in expanded)


def test_a_double_star_glob_is_recursive(tmp_path: Path, write_config: WriteConfig) -> None:
    for name in ["top.log", "a/b.log", "a/b/c.log", "a/b/c.txt"]:
        touch(tmp_path / name)
    config = load_config(write_config({"jobs": [job("all", input="**/*.log")]}))
    assert [j.name for j in config.jobs] == ["all[a/b.log]", "all[a/b/c.log]", "all[top.log]"]
    assert [j.input for j in config.jobs] == ["a/b.log", "a/b/c.log", "top.log"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a?.log", ["a1.log", "a2.log", "ab.log"]),
        ("a[12].log", ["a1.log", "a2.log"]),
        ("[ab]*.log", ["a1.log", "a2.log", "ab.log", "b.log"]),
        ("a[!1]*", ["a2.log", "ab.log"]),
    ],
)
def test_question_mark_and_bracket_globs_match_like_the_shell(
    tmp_path: Path, write_config: WriteConfig, pattern: str, expected: list[str]
) -> None:
    for name in ["b.log", "ab.log", "a2.log", "a1.log", "c.log", "a11.txt"]:
        touch(tmp_path / name)
    config = load_config(write_config({"jobs": [job("g", input=pattern)]}))
    assert [j.input for j in config.jobs] == expected


def test_an_absolute_glob_gives_absolute_inputs_and_names(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    data = tmp_path / "data"
    for name in ["x.log", "y.log"]:
        touch(data / name)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    config = load_config(write_config({"jobs": [job("abs", input=f"{data}/*.log")]}))
    assert [(j.name, j.input, j.path) for j in config.jobs] == [
        (f"abs[{data}/x.log]", f"{data}/x.log", data / "x.log"),
        (f"abs[{data}/y.log]", f"{data}/y.log", data / "y.log"),
    ]


def test_a_glob_matching_nothing_is_one_job_failing_with_file_not_found(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    (tmp_path / "logs.d").mkdir()  # a matching directory is passed over, too
    config = load_config(write_config({"jobs": [job("logs", input="logs*")]}))
    (only,) = config.jobs
    assert (only.name, only.input) == ("logs", "logs*")
    assert isinstance(only.start_error, FileNotFoundError)
    assert only.start_error.filename == "logs*"


def test_star_does_not_match_dotfiles_or_descend_into_hidden_directories(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    for name in [".hidden.log", "seen.log", ".git/objects.log", "sub/.env.log", "sub/ok.log"]:
        touch(tmp_path / name)
    config = load_config(
        write_config({"jobs": [job("star", input="*.log"), job("deep", input="**/*.log")]})
    )
    assert [j.input for j in config.jobs] == ["seen.log", "seen.log", "sub/ok.log"]


def test_an_explicit_dotfile_is_still_an_ordinary_input(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    touch(tmp_path / ".hidden.log")
    (only,) = load_config(write_config({"jobs": [job(input=".hidden.log")]})).jobs
    assert only.path == tmp_path / ".hidden.log"


# --- dependencies ----------------------------------------------------------


def test_an_unknown_dependency_is_a_problem_naming_it(write_config: WriteConfig) -> None:
    config = {"jobs": [job("a", depends_on=["b", "zz"]), job("b")]}
    assert problems_of(write_config(config)) == ["jobs[0].depends_on[1]: unknown job 'zz'"]


def test_an_unknown_dependency_close_to_a_name_gets_a_suggestion(
    write_config: WriteConfig,
) -> None:
    config = {"jobs": [job("build"), job("test", depends_on=["biuld"])]}
    assert problems_of(write_config(config)) == [
        "jobs[1].depends_on[0]: unknown job 'biuld' (did you mean 'build'?)"
    ]


def test_a_dependency_cycle_is_a_problem_naming_every_job_on_it(
    write_config: WriteConfig,
) -> None:
    config = {
        "jobs": [
            job("a", depends_on=["b"]),
            job("b", depends_on=["c"]),
            job("c", depends_on=["a"]),
            job("d", depends_on=["a"]),
        ]
    }
    assert problems_of(write_config(config)) == [
        "jobs[0].depends_on: dependency cycle: a -> b -> c -> a"
    ]


def test_a_self_dependency_is_a_cycle(write_config: WriteConfig) -> None:
    assert problems_of(write_config({"jobs": [job("a", depends_on=["a"])]})) == [
        "jobs[0].depends_on: dependency cycle: a -> a"
    ]


def test_jobs_behind_a_cycle_do_not_break_the_cycle_report(write_config: WriteConfig) -> None:
    """p waits on q, which waits on the cycle a <-> b: one cycle, and no crash."""
    config = {
        "jobs": [
            job("a", depends_on=["b"]),
            job("b", depends_on=["a"]),
            job("p", depends_on=["q"]),
            job("q", depends_on=["a"]),
        ]
    }
    assert problems_of(write_config(config)) == [
        "jobs[0].depends_on: dependency cycle: a -> b -> a"
    ]


def test_every_separate_cycle_is_reported(write_config: WriteConfig) -> None:
    config = {
        "jobs": [
            job("a", depends_on=["b"]),
            job("b", depends_on=["a"]),
            job("x", depends_on=["y"]),
            job("y", depends_on=["x"]),
        ]
    }
    assert problems_of(write_config(config)) == [
        "jobs[0].depends_on: dependency cycle: a -> b -> a",
        "jobs[2].depends_on: dependency cycle: x -> y -> x",
    ]


def test_depends_on_keeps_the_names_as_written_once_each_in_order(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    """A glob job's name stands for all its expansions: it is kept, not expanded."""
    for name in ["logs/a.log", "logs/b.log"]:
        touch(tmp_path / name)
    config = load_config(
        write_config(
            {
                "jobs": [
                    job("logs", input="logs/*.log"),
                    job("report", depends_on=["logs"]),
                    job("one", depends_on=["logs[logs/b.log]", "report", "report"]),
                ]
            }
        )
    )
    by_name = {j.name: j.depends_on for j in config.jobs}
    assert by_name["report"] == ("logs",)
    assert by_name["one"] == ("logs[logs/b.log]", "report")


def test_a_dependency_on_a_glob_job_that_matched_nothing_waits_for_that_job(
    write_config: WriteConfig,
) -> None:
    config = load_config(
        write_config({"jobs": [job("logs", input="none/*.log"), job("r", depends_on=["logs"])]})
    )
    assert [(j.name, j.group) for j in config.jobs] == [("logs", "logs"), ("r", "r")]
    assert config.jobs[1].depends_on == ("logs",)


def test_a_glob_job_that_depends_on_another_passes_it_to_every_expansion(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    for name in ["a.log", "b.log"]:
        touch(tmp_path / name)
    config = load_config(
        write_config({"jobs": [job("first"), job("g", input="*.log", depends_on=["first"])]})
    )
    assert [(j.name, j.group, j.depends_on) for j in config.jobs] == [
        ("first", "first", ()),
        ("g[a.log]", "g", ("first",)),
        ("g[b.log]", "g", ("first",)),
    ]


def test_every_expansion_of_a_glob_on_a_glob_names_the_glob_job_it_waits_for(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    for name in ["a/x.log", "a/y.log", "b/u.log", "b/v.log"]:
        touch(tmp_path / name)
    config = load_config(
        write_config(
            {"jobs": [job("a", input="a/*.log"), job("b", input="b/*.log", depends_on=["a"])]}
        )
    )
    assert [(j.name, j.group, j.depends_on) for j in config.jobs] == [
        ("a[a/x.log]", "a", ()),
        ("a[a/y.log]", "a", ()),
        ("b[b/u.log]", "b", ("a",)),
        ("b[b/v.log]", "b", ("a",)),
    ]


def test_a_glob_waiting_on_one_of_its_own_expansions_is_a_cycle(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    touch(tmp_path / "a.log")
    config = {"jobs": [job("g", input="*.log", depends_on=["g[a.log]"])]}
    assert problems_of(write_config(config)) == ["jobs[0].depends_on: dependency cycle: g -> g"]


def test_a_cycle_through_glob_jobs_is_a_problem_naming_the_glob_jobs(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    for name in ["a/x.log", "a/y.log", "b/u.log"]:
        touch(tmp_path / name)
    jobs = [
        job("a", input="a/*.log", depends_on=["b[b/u.log]"]),
        job("b", input="b/*.log", depends_on=["a"]),
    ]
    assert problems_of(write_config({"jobs": jobs})) == [
        "jobs[0].depends_on: dependency cycle: a -> b -> a"
    ]


# --- --only (select_jobs) through glob jobs ---------------------------------


@pytest.fixture
def globs_on_globs(tmp_path: Path, write_config: WriteConfig) -> BatchConfig:
    """Globs a <- b <- c of two files each, d waiting for one expansion of b, e alone."""
    for name in ["a/1.log", "a/2.log", "b/1.log", "b/2.log", "c/1.log", "c/2.log"]:
        touch(tmp_path / name)
    jobs = [
        job("a", input="a/*.log"),
        job("b", input="b/*.log", depends_on=["a"]),
        job("c", input="c/*.log", depends_on=["b"]),
        job("d", depends_on=["b[b/2.log]"]),
        job("e"),
    ]
    return load_config(write_config({"jobs": jobs}))


def selected(config: BatchConfig, names: list[str]) -> list[str]:
    return [j.name for j in select_jobs(config, names).jobs]


def test_only_a_glob_on_a_glob_takes_every_expansion_of_each_glob_behind_it(
    globs_on_globs: BatchConfig,
) -> None:
    assert selected(globs_on_globs, ["c"]) == [
        "a[a/1.log]",
        "a[a/2.log]",
        "b[b/1.log]",
        "b[b/2.log]",
        "c[c/1.log]",
        "c[c/2.log]",
    ]


def test_only_one_expansion_takes_it_and_the_whole_glob_it_waits_for(
    globs_on_globs: BatchConfig,
) -> None:
    assert selected(globs_on_globs, ["b[b/1.log]"]) == ["a[a/1.log]", "a[a/2.log]", "b[b/1.log]"]


def test_only_a_job_waiting_for_one_expansion_takes_that_expansion_not_its_glob(
    globs_on_globs: BatchConfig,
) -> None:
    assert selected(globs_on_globs, ["e", "d"]) == [
        "a[a/1.log]",
        "a[a/2.log]",
        "b[b/2.log]",
        "d",
        "e",
    ]


def test_only_keeps_depends_on_as_written(globs_on_globs: BatchConfig) -> None:
    only = select_jobs(globs_on_globs, ["c"])
    assert [j.depends_on for j in only.jobs] == [(), (), ("a",), ("a",), ("b",), ("b",)]


# --- actions ---------------------------------------------------------------


def test_an_unknown_action_is_a_warning_and_a_skipped_job(write_config: WriteConfig) -> None:
    path = write_config({"jobs": [job("a", action="count_line")]})
    config = load_config(path)
    assert config.warnings == [
        f"{path}: jobs[0].action: unknown action 'count_line' (did you mean 'count_lines'?); "
        "job 'a' is skipped (--strict makes it an error)"
    ]
    (only,) = config.jobs
    assert only.spec is None
    assert isinstance(only.start_error, UnknownAction)
    assert only.start_error.action == "count_line"


def test_an_unknown_action_is_a_problem_when_strict(write_config: WriteConfig) -> None:
    path = write_config({"jobs": [job("a"), job("b", action="nope")]})
    assert problems_of(path, strict=True) == ["jobs[1].action: unknown action 'nope'"]


def test_a_module_function_action_is_imported_from_the_config_directory(
    tmp_path: Path, write_config: WriteConfig, module_name: str
) -> None:
    touch(
        tmp_path / f"{module_name}.py",
        "async def shout(path, params):\n    return {'params': params}\n",
    )
    path_before = list(sys.path)
    config = load_config(
        write_config({"jobs": [job(action=f"{module_name}:shout", params={"loud": True})]})
    )
    assert sys.path == path_before
    (only,) = config.jobs
    assert only.spec is not None
    assert only.spec.func is sys.modules[module_name].shout
    assert only.spec.params is None
    assert only.params == {"loud": True}
    assert only.action == f"{module_name}:shout"


def test_a_module_function_action_is_imported_from_sys_path(
    tmp_path: Path, write_config: WriteConfig, module_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path / "lib" / module_name / "__init__.py", "")
    touch(
        tmp_path / "lib" / module_name / "acts.py",
        "async def shout(path, params):\n    return {}\n",
    )
    monkeypatch.syspath_prepend(tmp_path / "lib")
    config_path = write_config({"jobs": [job(action=f"{module_name}.acts:shout")]})
    try:
        (only,) = load_config(config_path).jobs
    finally:
        sys.modules.pop(f"{module_name}.acts", None)
    assert only.spec is not None
    assert only.spec.func.__name__ == "shout"


@pytest.mark.parametrize(
    ("module_text", "reference", "expected"),
    [
        (None, "{mod}:shout", "No module named '{mod}'"),
        ("async def shout(path, params):\n    return {}\n", "{mod}:yell", "no attribute 'yell'"),
        ("raise RuntimeError('boom')\n", "{mod}:shout", "RuntimeError: boom"),
        ("def shout(path, params):\n    return {}\n", "{mod}:shout", "not an async function"),
        ("shout = 3\n", "{mod}:shout", "not an async function"),
        ("syntax error here\n", "{mod}:shout", "SyntaxError"),
        (None, "{mod}:", "is not of the form 'module:function'"),
        (None, ":shout", "is not of the form 'module:function'"),
    ],
)
def test_a_module_function_that_cannot_be_used_is_a_config_problem(
    tmp_path: Path,
    write_config: WriteConfig,
    module_name: str,
    module_text: str | None,
    reference: str,
    expected: str,
) -> None:
    if module_text is not None:
        touch(tmp_path / f"{module_name}.py", module_text)
    action_ref = reference.format(mod=module_name)
    (problem,) = problems_of(write_config({"jobs": [job("ok"), job("b", action=action_ref)]}))
    assert problem.startswith(f"jobs[1].action: cannot use {action_ref!r}: ")
    assert expected.format(mod=module_name) in problem


@pytest.mark.parametrize(
    ("action", "params", "location", "expected"),
    [
        ("search_pattern", {"pattern": "("}, "pattern", "invalid regular expression"),
        ("search_pattern", {"pattern": "a*"}, "pattern", "can match the empty string"),
        ("search_pattern", {"pattern": "^$"}, "pattern", "can match the empty string"),
        ("search_pattern", {}, "pattern", "Field required"),
        ("search_pattern", {"pattern": "a", "ignore_case": "yes"}, "ignore_case", "boolean"),
        ("checksum", {"algorithm": "sha999"}, "algorithm", "Input should be"),
        ("checksum", {"algorithm": "shake_128"}, "algorithm", "Input should be"),
        ("count_words", {"extra": 1}, "extra", "unknown key"),
        ("file_size", {"x": None}, "x", "unknown key"),
    ],
)
def test_builtin_params_are_validated_at_load_time(
    write_config: WriteConfig, action: str, params: dict[str, Any], location: str, expected: str
) -> None:
    config = {"jobs": [job("ok"), job("bad", action=action, params=params)]}
    (problem,) = problems_of(write_config(config))
    assert problem.startswith(f"jobs[1].params.{location}: ")
    assert expected in problem


def test_valid_builtin_params_become_their_models(write_config: WriteConfig) -> None:
    config = load_config(
        write_config(
            {
                "jobs": [
                    job("s", action="search_pattern", params={"pattern": "E+"}),
                    job("c", action="checksum"),
                ]
            }
        )
    )
    search, digest = config.jobs
    assert search.params == SearchPatternParams(pattern="E+", ignore_case=False)
    assert search.raw_params == {"pattern": "E+"}
    assert digest.params == ChecksumParams(algorithm="sha256")


def test_an_unknown_limit_name_is_a_problem(write_config: WriteConfig) -> None:
    config = {"limits": {"network": 2}, "jobs": [job(limits=["network", "netwrk"])]}
    assert problems_of(write_config(config)) == [
        "jobs[0].limits[1]: unknown limit 'netwrk' (declared: network)"
    ]


def test_a_limit_name_without_any_declared_limits_is_a_problem(
    write_config: WriteConfig,
) -> None:
    assert problems_of(write_config({"jobs": [job(limits=["disk"])]})) == [
        "jobs[0].limits[0]: unknown limit 'disk' (declared: none)"
    ]


class ShoutParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    volume: int = 1


def test_a_test_registry_replaces_the_default_one(write_config: WriteConfig) -> None:
    reg = ActionRegistry()

    @reg.action("shout", params=ShoutParams)
    async def shout(path: Path, params: ShoutParams) -> dict[str, Any]:
        return {"volume": params.volume}

    path = write_config(
        {"jobs": [job("a", action="shout", params={"volume": 3}), job("b", action="count_lines")]}
    )
    config = load_config(path, registry=reg)
    first, second = config.jobs
    assert first.spec is not None
    assert first.spec.func is shout
    assert first.params == ShoutParams(volume=3)
    assert isinstance(second.start_error, UnknownAction)
    assert problems_of(path, registry=reg, strict=True) == [
        "jobs[1].action: unknown action 'count_lines'"
    ]


def test_a_test_registry_validates_params_with_its_own_models(write_config: WriteConfig) -> None:
    reg = ActionRegistry()

    @reg.action("shout", params=ShoutParams)
    async def shout(path: Path, params: ShoutParams) -> dict[str, Any]:
        return {}

    config = {"jobs": [job(action="shout", params={"volume": "3", "pitch": 1})]}
    problems = problems_of(write_config(config), registry=reg)
    assert problems == [
        "jobs[0].params.volume: Input should be a valid integer",
        "jobs[0].params.pitch: unknown key (allowed: volume)",
    ]


# --- JSON Schema -----------------------------------------------------------


def test_the_config_schema_is_json_with_a_dialect() -> None:
    schema = config_schema(default_registry())
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert "$schema" in schema["properties"]
    assert schema["required"] == ["jobs"]


def test_the_schema_requires_a_pattern_for_search_pattern() -> None:
    schema = config_schema(default_registry())
    rules = schema["$defs"]["JobConfig"]["allOf"]
    (rule,) = [r for r in rules if r["if"]["properties"]["action"] == {"const": "search_pattern"}]
    assert rule["if"]["required"] == ["action"]
    assert rule["then"]["required"] == ["params"]
    params = rule["then"]["properties"]["params"]
    assert params["required"] == ["pattern"]
    assert params["additionalProperties"] is False


def test_the_schema_does_not_require_params_for_actions_that_need_none() -> None:
    rules = config_schema(default_registry())["$defs"]["JobConfig"]["allOf"]
    by_action = {r["if"]["properties"]["action"]["const"]: r["then"] for r in rules}
    for name in ["checksum", "count_lines", "count_words", "file_size"]:
        assert "params" in by_action[name]["properties"], name
        assert "required" not in by_action[name], name


def test_the_schema_applies_a_test_registry_s_params_models() -> None:
    reg = ActionRegistry()

    @reg.action("shout", params=ShoutParams)
    async def shout(path: Path, params: ShoutParams) -> dict[str, Any]:
        return {}

    @reg.action("free")
    async def free(path: Path, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    job_schema = config_schema(reg)["$defs"]["JobConfig"]
    (rule,) = job_schema["allOf"]
    assert rule["if"]["properties"]["action"]["const"] == "shout"
    assert job_schema["properties"]["action"]["examples"] == ["free", "shout"]


def test_the_sample_config_validates_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = config_schema(default_registry())
    jsonschema.validate(json.loads(SAMPLE.read_text(encoding="utf-8")), schema)
    bad = {"jobs": [{"name": "x", "action": "search_pattern", "input": "a", "params": {}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --- dry-run plan ----------------------------------------------------------


def test_the_plan_warns_about_missing_inputs_unknown_actions_and_non_files(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    touch(tmp_path / "ok.log")
    (tmp_path / "dir").mkdir()
    config = load_config(
        write_config(
            {
                "jobs": [
                    job("ok", input="ok.log"),
                    job("missing", input="none.log", depends_on=["ok"]),
                    job("unknown", action="nope", input="ok.log"),
                    job("dir", input="dir"),
                    job("glob", input="*.txt"),
                ]
            }
        )
    )
    plan = dry_run_plan(config)
    assert plan["valid"] is True
    assert plan["total_jobs"] == 5
    assert [(j["name"], j["depends_on"], j["warnings"]) for j in plan["jobs"]] == [
        ("ok", [], []),
        ("missing", ["ok"], ["FileNotFoundError: none.log: no such file"]),
        ("unknown", [], ["UnknownAction: unknown action 'nope'"]),
        ("dir", [], ["NotARegularFile: dir: not a regular file"]),
        ("glob", [], ["FileNotFoundError: *.txt: no file matches"]),
    ]
    assert json.loads(json.dumps(plan)) == plan


def test_the_plan_prints_depends_on_as_written_so_a_glob_on_a_glob_stays_small(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    for name in ["a/x.log", "a/y.log", "b/u.log", "b/v.log"]:
        touch(tmp_path / name)
    jobs = [
        job("a", input="a/*.log"),
        job("b", input="b/*.log", depends_on=["a"]),
        job("one", input="a/x.log", depends_on=["b[b/v.log]", "a", "a"]),
    ]
    plan = dry_run_plan(load_config(write_config({"jobs": jobs})))
    assert [(j["name"], j["depends_on"]) for j in plan["jobs"]] == [
        ("a[a/x.log]", []),
        ("a[a/y.log]", []),
        ("b[b/u.log]", ["a"]),
        ("b[b/v.log]", ["a"]),
        ("one", ["b[b/v.log]", "a"]),
    ]


def test_the_plan_warns_about_an_unreadable_path(tmp_path: Path, write_config: WriteConfig) -> None:
    touch(tmp_path / "file")
    (only,) = dry_run_plan(load_config(write_config({"jobs": [job(input="file/below")]})))["jobs"]
    (warning,) = only["warnings"]
    assert warning == "FileNotFoundError: file/below: not a directory"  # as a run reports it


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_the_plan_never_opens_an_input_so_a_fifo_cannot_hang_it(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    os.mkfifo(tmp_path / "pipe")
    config = load_config(write_config({"jobs": [job(input="pipe")]}))
    plans: list[dict[str, Any]] = []
    # daemon: if the plan did open the FIFO it would block for ever, failing the test
    worker = threading.Thread(target=lambda: plans.append(dry_run_plan(config)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "dry_run_plan blocked on the FIFO"
    assert plans[0]["jobs"][0]["warnings"] == ["NotARegularFile: pipe: not a regular file"]


def test_a_glob_expansion_named_like_another_job_is_a_config_error(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    path = write_config(
        {
            "jobs": [
                {"name": "g[a.txt]", "action": "file_size", "input": "a.txt"},
                {"name": "g", "action": "file_size", "input": "*.txt"},
            ]
        }
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any("'g[a.txt]'" in problem for problem in caught.value.problems)
