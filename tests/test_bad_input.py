"""Bad input of every kind ends as a located error and exit 2, never a traceback:
regular expressions that repeat or nest too much, configs nested thousands of levels
deep (in every format and on stdin), a config on stdin in any locale, and command-line
values a config would refuse. Each config problem is one stderr line
``error: SOURCE: LOCATION: MESSAGE``."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import invoke, read_json, summary
from typer.testing import Result

from asyncbatch import load_config
from asyncbatch.actions._params import SearchPatternParams
from asyncbatch.actions._search import PatternSearch
from asyncbatch.config import ConfigError
from asyncbatch.kernel import DEFAULT_TUNING

NESTING_LIMIT = 100
"""Levels of objects and lists a config may nest, counting its top level."""
REPEAT_LIMIT = 100_000
"""Times a pattern may repeat one element, nested repeats multiplied."""
GROUP_LIMIT = 100
"""Groups a pattern may nest."""
PATTERN_LIMIT = 100_000
"""Characters a pattern may have."""
SUBPROCESS_TIMEOUT = 60

ECHO_ACTION = "async def echo(path, params):\n    return {'keys': sorted(params)}\n"


def located(result: Result | subprocess.CompletedProcess[str], source: str) -> list[str]:
    """Exit 2, nothing on stdout, no traceback; every error line is
    ``error: SOURCE: ...``. Returns the problems (what follows ``SOURCE: ``)."""
    code = (
        result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    )
    assert code == 2, result.stderr[-3000:]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == "error: the config is invalid; nothing was run", lines
    problems = []
    for line in lines[:-1]:
        assert line.startswith(f"error: {source}: "), line
        problems.append(line.removeprefix(f"error: {source}: "))
    assert problems
    return problems


def search_config(path: Path, pattern: str) -> Path:
    """A config whose second job searches ``pattern`` (the first is fine)."""
    (path.parent / "in.txt").write_text("x\n", encoding="utf-8")
    jobs = [
        {"name": "fine", "action": "search_pattern", "input": "in.txt", "params": {"pattern": "x"}},
        {
            "name": "bad",
            "action": "search_pattern",
            "input": "in.txt",
            "params": {"pattern": pattern},
        },
    ]
    path.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    return path


# --- regular expressions ---------------------------------------------------------------

BAD_PATTERNS = [
    pytest.param("a{1000000000}", "repeats", id="a{1000000000}"),
    pytest.param("(a{1000}){1000}", "repeats", id="(a{1000}){1000}"),
    pytest.param("x(?:[ab]{10}){20000}", "repeats", id="nested-repeat-200000"),
    pytest.param("a{4294967296}", "repetition", id="past-re-MAXREPEAT"),  # OverflowError
    pytest.param("a{99999999999999999999,}", "repetition", id="twenty-digit-count"),
    pytest.param("(" * 10_000 + "a" + ")" * 10_000, "nest", id="10000-nested-groups"),
    pytest.param("(?:" * 1000 + "a" + ")" * 1000, "nest", id="1000-nested-groups"),
    pytest.param("(?=" * 500 + "a" + ")" * 500, "nest", id="500-nested-lookaheads"),
    pytest.param("(" * (GROUP_LIMIT + 1) + "a" + ")" * (GROUP_LIMIT + 1), "nest", id="limit+1"),
    pytest.param("(" * 10_000 + "a", "nest", id="10000-unclosed-groups"),
    pytest.param("E" * (PATTERN_LIMIT + 1), "characters", id="limit+1-characters"),
    pytest.param("E" * 2_000_000, "characters", id="2000000-characters"),
]


@pytest.mark.parametrize(("pattern", "word"), BAD_PATTERNS)
def test_a_pattern_that_repeats_or_nests_too_much_is_a_located_config_error(
    tmp_path: Path, pattern: str, word: str
) -> None:
    config = search_config(tmp_path / "c.json", pattern)
    problems = located(invoke(["run", str(config)]), str(config))
    assert len(problems) == 1, problems
    assert problems[0].startswith("jobs[1].params.pattern: "), problems
    assert word in problems[0], problems
    assert len(problems[0]) < 300  # the pattern is not echoed back whole

    plan = invoke(["run", str(config), "--dry-run"])
    assert plan.exit_code == 2
    assert json.loads(plan.stdout)["errors"] == problems


@pytest.mark.parametrize(("pattern", "word"), BAD_PATTERNS)
def test_the_params_model_refuses_such_a_pattern_with_a_value_error(
    pattern: str, word: str
) -> None:
    """What the loader locates: a validation error, never another exception."""
    with pytest.raises(ValueError, match=word):
        SearchPatternParams.model_validate({"pattern": pattern})


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("(" * GROUP_LIMIT + "ERROR" + ")" * GROUP_LIMIT, id="deepest-groups"),
        pytest.param("(?:" * GROUP_LIMIT + "E|F" + ")" * GROUP_LIMIT, id="deepest-alternation"),
        pytest.param(f"E[^\\n]{{0,{REPEAT_LIMIT - 1}}}", id="largest-repeat"),
        pytest.param("(?:ERROR ){1000}|ERROR", id="1000-repeats"),
        pytest.param(r"[(]x|\(x|ERROR", id="parens-in-a-class-and-escaped"),
    ],
)
def test_a_pattern_within_the_limits_loads_and_searches_as_re_does(
    tmp_path: Path, pattern: str
) -> None:
    text = "ERROR one\nFATAL two\n(x three ERROR\nnothing\n"
    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    config = tmp_path / "c.json"
    job = {"name": "s", "action": "search_pattern", "input": "in.txt"}
    config.write_text(json.dumps({"jobs": [{**job, "params": {"pattern": pattern}}]}))
    out = tmp_path / "r.json"
    result = invoke(["run", str(config), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    compiled = re.compile(pattern, re.MULTILINE)
    lines = text.splitlines()
    expected = {
        "matches": sum(len(compiled.findall(line)) for line in lines),
        "matching_lines": sum(bool(compiled.search(line)) for line in lines),
    }
    assert read_json(out)["jobs"][0]["result"] == expected


LONGEST = [
    pytest.param("ERROR" * (PATTERN_LIMIT // 5), id="one-literal"),
    pytest.param(
        "A" * (PATTERN_LIMIT // 2) + "|" + "B" * (PATTERN_LIMIT // 2 - 1), id="two-literals"
    ),
    pytest.param("(?:EE)" * (PATTERN_LIMIT // 6), id="groups"),
    pytest.param("|".join(f"{i:05d}E" for i in range(PATTERN_LIMIT // 7)), id="14000-alternatives"),
]


@pytest.mark.slow
@pytest.mark.parametrize("pattern", LONGEST)
def test_the_longest_patterns_are_planned_quickly_and_count_as_re_does(pattern: str) -> None:
    """What the search does with a pattern before it reads a byte (in each worker
    process) stays well under a second or two, however long the pattern."""
    text = ("x " + pattern[:300] + " y\n" + pattern + "\n" + pattern[-50:] + "\n").encode()
    started = time.monotonic()
    optimised = PatternSearch("in.txt", len(text), {"pattern": pattern}, DEFAULT_TUNING)
    assert time.monotonic() - started < 5
    plain = PatternSearch("in.txt", len(text), {"pattern": pattern}, DEFAULT_TUNING, optimise=False)
    for scan in (optimised, plain):
        scan.update(text)
    assert optimised.result() == plain.result()


def test_a_pattern_re_warns_about_loads_without_noise_on_stderr(tmp_path: Path) -> None:
    """``[[a]`` makes re warn of a possible nested set; that is no config problem
    and no Python warning text reaches the user."""
    config = search_config(tmp_path / "c.json", "[[a]x")
    result = invoke(["run", str(config), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "FutureWarning" not in result.stderr


# --- nesting ----------------------------------------------------------------------------


def _nested(depth: int, kind: str) -> str:
    """JSON text (also YAML flow style) of a value nested ``depth`` levels."""
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "1" + "]" * depth


def _toml_nested(depth: int, kind: str) -> str:
    if kind == "object":
        return "{a = " * depth + "1" + "}" * depth
    return "[" * depth + "1" + "]" * depth


def nested_config(where: str, depth: int, kind: str, suffix: str) -> str:
    """A config whose first job's ``where`` (params or name) is nested ``depth``
    levels deep, as ``suffix`` text."""
    if suffix == ".toml":
        value = _toml_nested(depth, kind)
        head = '[[jobs]]\naction = "count_lines"\ninput = "in.txt"\n'
        if where == "params":
            return f'{head}name = "j"\nparams = {{p = {value}}}\n'
        return f"{head}name = {value}\n"
    value = _nested(depth, kind)
    head = '"action": "count_lines", "input": "in.txt"'
    if where == "params":
        job = f'{{{head}, "name": "j", "params": {{"p": {value}}}}}'
    else:
        job = f'{{{head}, "name": {value}}}'
    return f'{{"jobs": [{job}]}}'


LOCATION = re.compile(r"(jobs\[0\]\.(params\.p|name)|line \d+(, column \d+)?): .*nest.*")


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".toml"])
@pytest.mark.parametrize("where", ["params", "name"])
@pytest.mark.parametrize("kind", ["object", "list"])
@pytest.mark.parametrize("depth", [NESTING_LIMIT + 1, 1000, 100_000])
def test_a_config_nested_too_deeply_is_a_located_config_error(
    tmp_path: Path, suffix: str, where: str, kind: str, depth: int
) -> None:
    config = tmp_path / f"c{suffix}"
    config.write_text(nested_config(where, depth, kind, suffix), encoding="utf-8")
    (problem,) = located(invoke(["run", str(config), "-o", str(tmp_path / "r.json")]), str(config))
    assert LOCATION.fullmatch(problem), problem
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("where", ["params", "name"])
@pytest.mark.parametrize("depth", [NESTING_LIMIT + 1, 1000, 100_000])
def test_a_config_on_stdin_nested_too_deeply_is_a_located_config_error(
    tmp_path: Path, where: str, depth: int
) -> None:
    text = nested_config(where, depth, "list", ".json")
    (problem,) = located(invoke(["run", "-"], stdin=text), "-")
    assert LOCATION.fullmatch(problem), problem
    with pytest.raises(ConfigError) as refused:
        load_config("-", stdin=io.StringIO(text))
    assert refused.value.problems == [problem]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('[[jobs]]\nname = "j"\naction = "a"\ninput = "i"\n', id="header"),
        pytest.param(
            '[[jobs]]\nname = "j"\naction = "a"\ninput = "i"\n[jobs.params]\n', id="table"
        ),
    ],
)
@pytest.mark.parametrize("parts", [NESTING_LIMIT + 1, 100_000])
def test_a_toml_dotted_key_of_many_parts_is_refused_at_once(
    tmp_path: Path, text: str, parts: int
) -> None:
    """``a.a.a... = 1`` costs the TOML reader time and memory quadratic in its parts
    (100,000 parts: tens of gigabytes); it is refused before it is read."""
    config = tmp_path / "c.toml"
    config.write_text(text + ".".join(["a"] * parts) + " = 1\n", encoding="utf-8")
    started = time.monotonic()
    (problem,) = located(invoke(["run", str(config)]), str(config))
    assert time.monotonic() - started < 5
    assert re.fullmatch(r"(line \d+, column \d+|jobs\[0\]\.\S+): nested more than 100 .*", problem)


def test_a_dotted_key_inside_a_string_is_only_text(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    config = tmp_path / "c.toml"
    name = ".".join(["a"] * 500)
    config.write_text(
        f'[[jobs]]\nname = "{name}"\naction = "count_lines"\ninput = "in.txt"\n',
        encoding="utf-8",
    )
    result = invoke(["run", str(config)])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("document", "location"),
    [
        (
            "jobs: [{name: j, action: a, input: x, params: !!pairs [{p: DEEP}]}]",
            "jobs[0].params[0]",
        ),
        ("jobs: !!omap [{j: DEEP}]", "jobs[0][1]"),
    ],
)
def test_yaml_pairs_and_ordered_maps_are_held_to_the_nesting_limit(
    tmp_path: Path, document: str, location: str
) -> None:
    """YAML's ``!!pairs`` and ``!!omap`` are lists of tuples: walked like lists."""
    config = tmp_path / "c.yaml"
    config.write_text(document.replace("DEEP", _nested(300, "object")), encoding="utf-8")
    (problem,) = located(invoke(["run", str(config)]), str(config))
    assert problem == f"{location}: nested more than {NESTING_LIMIT} levels deep"


def test_yaml_aliases_within_their_limit_are_not_walked_once_per_use(tmp_path: Path) -> None:
    """Each level of this document refers twice to the one below: some 300,000
    values written out (under the alias limit), 16 written down; checking how deep
    it nests takes no time."""
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    levels = ["l0: &l0 [1]"] + [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 16)]
    job = "{name: j, action: deep_action:echo, input: in.txt, params: {p: *l15}}"
    (tmp_path / "deep_action.py").write_text(ECHO_ACTION, encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text("x:\n" + "".join(f"  {line}\n" for line in levels) + f"jobs: [{job}]\n")
    started = time.monotonic()
    result = invoke(["run", str(config), "--dry-run"])
    assert time.monotonic() - started < 5
    assert result.exit_code == 2  # the unknown key x
    assert json.loads(result.stdout)["errors"] == [
        "x: unknown key (allowed: $schema, max_concurrency, defaults, limits, jobs)"
    ]


def test_params_nested_to_the_limit_run_resume_and_reuse(tmp_path: Path) -> None:
    """The deepest params a config may hold pass through validation, the journal's
    fingerprint, the report and a resumed run."""
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "deep_action.py").write_text(ECHO_ACTION, encoding="utf-8")
    # top level, jobs, job, params: 4 levels before the value
    value = json.loads(_nested(NESTING_LIMIT - 4, "object"))
    config = tmp_path / "c.json"
    job = {"name": "j", "action": "deep_action:echo", "input": "in.txt", "params": {"p": value}}
    config.write_text(json.dumps({"jobs": [job]}), encoding="utf-8")
    out = tmp_path / "r.json"
    first = invoke(["run", str(config), "-o", str(out)])
    assert first.exit_code == 0, first.stderr
    again = invoke(["run", str(config), "-o", str(out), "--resume"])
    assert again.exit_code == 0, again.stderr
    assert read_json(out)["jobs"][0]["reused"] is True
    job["params"] = {"p": {"a": value}}
    config.write_text(json.dumps({"jobs": [job]}), encoding="utf-8")
    (problem,) = located(invoke(["run", str(config), "-o", str(out)]), str(config))
    assert problem == f"jobs[0].params.p: nested more than {NESTING_LIMIT} levels deep"


def test_a_nested_name_is_located_by_the_api_as_by_the_command(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(nested_config("name", 500, "object", ".json"), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert refused.value.problems == [f"jobs[0].name: nested more than {NESTING_LIMIT} levels deep"]


# --- stdin: UTF-8 bytes, whatever the locale ---------------------------------------------

LOCALES = [
    pytest.param({"LANG": "C", "LC_ALL": "C"}, id="LC_ALL=C"),
    pytest.param({"LANG": "C"}, id="LANG=C"),
    pytest.param({"PYTHONIOENCODING": "latin-1"}, id="PYTHONIOENCODING=latin-1"),
    pytest.param({"LC_ALL": "C", "PYTHONIOENCODING": "ascii:strict"}, id="ascii-strict"),
]


def _run_stdin(
    cwd: Path, data: bytes, environ: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIO"))}
    env.update({"PYTHONUTF8": "0", **environ})
    completed = subprocess.run(
        [sys.executable, "-m", "asyncbatch", "run", "-", "--no-progress", *args],
        cwd=cwd,
        input=data,
        capture_output=True,
        env=env,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    return subprocess.CompletedProcess(
        completed.args,
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
    )


@pytest.mark.slow
@pytest.mark.parametrize("environ", LOCALES)
def test_stdin_is_read_as_utf8_bytes_whatever_the_locale(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    name = "caf\u00e9 \u20ac \u65e5\u672c"
    config = json.dumps(
        {"jobs": [{"name": name, "action": "count_lines", "input": "in.txt"}]}, ensure_ascii=False
    ).encode("utf-8")
    for data in (config, b"\xef\xbb\xbf" + config):  # a BOM is allowed
        out = tmp_path / "r.json"
        done = _run_stdin(tmp_path, data, environ, "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert summary(done.stdout)["succeeded"] == 1
        assert read_json(out)["jobs"][0]["name"] == name

    bad = b'{"jobs": [],\n\n "x": "\xff"}'
    (problem,) = located(_run_stdin(tmp_path, bad, environ), "-")
    assert problem == "line 3: not valid UTF-8"


def test_load_config_reads_stdin_as_bytes_or_as_text(tmp_path: Path) -> None:
    """A binary stream (or a text stream's ``buffer``) is decoded as UTF-8 like a
    file; a text stream without one (``io.StringIO``) is taken as already decoded."""
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    text = json.dumps({"jobs": [{"name": "\u00e9", "action": "count_lines", "input": "in.txt"}]})
    streams: list[Any] = [
        io.BytesIO(b"\xef\xbb\xbf" + text.encode("utf-8")),
        io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="latin-1"),
        io.StringIO("\ufeff" + text),
    ]
    for stream in streams:
        loaded = load_config("-", stdin=stream)
        assert [job.name for job in loaded.jobs] == ["\u00e9"]
    for stream in (io.BytesIO(b'{"jobs":\n[\xc3]}'), io.TextIOWrapper(io.BytesIO(b"\n\n\xff"))):
        with pytest.raises(ConfigError) as refused:
            load_config("-", stdin=stream)
        assert re.fullmatch(r"line \d: not valid UTF-8", refused.value.problems[0])


@pytest.mark.slow
def test_a_closed_stdin_is_a_config_error(tmp_path: Path) -> None:
    completed = subprocess.run(
        f"exec {sys.executable} -m asyncbatch run - <&-",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    (problem,) = located(completed, "-")
    assert "standard input" in problem


def test_a_closed_stream_is_a_config_error() -> None:
    stream = io.BytesIO(b'{"jobs": []}')
    stream.close()
    with pytest.raises(ConfigError) as refused:
        load_config("-", stdin=stream)
    assert refused.value.problems == ["cannot read: I/O operation on closed file."]


# --- the command line refuses what a config refuses ---------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A quick config: one file_size job."""
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    config = tmp_path / "c.json"
    job = {"name": "size", "action": "file_size", "input": "in.txt"}
    config.write_text(json.dumps({"jobs": [job]}), encoding="utf-8")
    return config


def usage_error(result: Result, option: str) -> str:
    """Exit 2, nothing on stdout, one ``error:`` line on stderr naming the option
    (the form every usage error takes): the message."""
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    found = re.fullmatch(rf"error: (?:-\w/)?{option}: (.*)", line)
    assert found, result.stderr
    return found.group(1)


@pytest.mark.parametrize("option", ["--timeout", "--scheduler-timeout"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("inf", "Input should be a finite number"),
        ("-inf", "Input should be a finite number"),
        ("Infinity", "Input should be a finite number"),
        ("1e400", "Input should be a finite number"),
        ("nan", "Input should be a finite number"),
        ("0", "Input should be greater than 0"),
        ("-0", "Input should be greater than 0"),
        ("-1", "Input should be greater than 0"),
    ],
)
def test_seconds_on_the_command_line_are_refused_as_in_a_config(
    small: Path, option: str, value: str, message: str
) -> None:
    assert usage_error(invoke(["run", str(small), f"{option}={value}"]), option) == message
    # the same value in a config (Python's JSON reads NaN and Infinity): the same message
    config = json.loads(small.read_text(encoding="utf-8"))
    small.write_text(json.dumps({**config, "defaults": {"timeout": float(value)}}))
    (problem,) = located(invoke(["run", str(small)]), str(small))
    assert problem == f"defaults.timeout: {message}"


@pytest.mark.parametrize("value", ["1001", str(10**30), "-1"])
def test_retries_on_the_command_line_are_capped_as_in_a_config(small: Path, value: str) -> None:
    message = usage_error(invoke(["run", str(small), f"--retries={value}"]), "--retries")
    assert "1000" in message or "0" in message


def test_the_largest_retries_a_config_allows_are_allowed_on_the_command_line(
    small: Path,
) -> None:
    result = invoke(["run", str(small), "--retries", "1000"])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("value", ["1", "4", str(2**63), str(10**30)])
def test_any_max_concurrency_of_at_least_one_runs(small: Path, value: str) -> None:
    result = invoke(["run", str(small), "-j", value])
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["succeeded"] == 1


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "x", ""])
def test_a_max_concurrency_below_one_or_not_a_number_is_a_usage_error(
    small: Path, value: str
) -> None:
    usage_error(invoke(["run", str(small), f"--max-concurrency={value}"]), "--max-concurrency")


ODD_VALUES = [
    "",
    " ",
    "0",
    "-0",
    "1",
    "-1",
    "1e400",
    "nan",
    "inf",
    str(10**30),
    "0x10",
    "1_000",
    "\x00",
    "\u00e9",
    "\udcff",
    "-",
    "--",
    "/",
    "/dev/null",
    "/dev/zero",
    ".",
    "..",
    "a" * 5000,
    "tcp://",
    "tcp://127.0.0.1:0",
    "tcp://[::1",
]
OPTIONS = [
    "-j",
    "-o",
    "--timeout",
    "--retries",
    "--max-failures",
    "--only",
    "--root",
    "--junit",
    "--executor",
    "--scheduler",
    "--scheduler-timeout",
]


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    options=st.lists(
        st.tuples(st.sampled_from(OPTIONS), st.sampled_from(ODD_VALUES)), min_size=1, max_size=3
    ),
    dry_run=st.booleans(),
)
def test_odd_option_values_exit_cleanly(
    small: Path, options: list[tuple[str, str]], dry_run: bool
) -> None:
    """Any mix of odd option values: exit 0, 1 or 2, never a traceback; stdout is
    JSON or empty. (A Dask cluster is never started: a dask run needs a scheduler
    address that cannot be reached, or is refused.)"""
    args = ["run", str(small), *(["--dry-run"] if dry_run else [])]
    for option, value in options:
        args.append(f"{option}={value}")
    if "--executor=dask" in args:  # never start a cluster: an address nobody listens on
        args = [a for a in args if not a.startswith(("--scheduler=", "--scheduler-timeout="))]
        args += ["--scheduler=tcp://127.0.0.1:1", "--scheduler-timeout=0.5"]
    cwd = os.getcwd()
    os.chdir(small.parent)
    try:
        result = invoke(args)
    finally:
        os.chdir(cwd)
    assert result.exit_code in (0, 1, 2), result.stderr
    if result.stdout:
        json.loads(result.stdout)
