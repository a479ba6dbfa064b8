"""Plugins for real: the example plugin (examples/asyncbatch-wordfreq) built and
installed by pip into a throw-away virtualenv and used through the command, and a
broken plugin that must not take the built-ins down with it.

Every command runs in a subprocess: plugins are looked up once per process, so a
fresh process per command is what a user gets.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import venv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # builds and installs a plugin package into a venv

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "asyncbatch-wordfreq"
BUILTINS = ["checksum", "command", "count_lines", "count_words", "file_size", "search_pattern"]
TIMEOUT = 120  # seconds for one subprocess; a pip build of the example takes ~1 s


@dataclass(frozen=True)
class Python:
    """An interpreter to run ``python -m asyncbatch`` with, and its environment."""

    executable: Path
    env: dict[str, str]

    def run(self, args: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [str(self.executable), *args],
            capture_output=True,
            check=False,
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=TIMEOUT,
        )
        assert "Traceback" not in completed.stderr, completed.stderr
        return completed

    def asyncbatch(self, args: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.run(["-m", "asyncbatch", *args], cwd=cwd)


def _environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _site_dirs() -> list[str]:
    """The directories this interpreter imports installed packages from."""
    return [entry for entry in sys.path if Path(entry).name in ("site-packages", "dist-packages")]


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Python:
    """A virtualenv with the example plugin installed by pip, from a copy of its folder
    (the build leaves nothing in the repository). The venv sees this environment's
    packages (asyncbatch and its dependencies, pip, setuptools) through a ``.pth``
    file, so nothing is downloaded, and this environment never sees the plugin."""
    missing = [name for name in ("pip", "setuptools") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"building the example plugin needs {' and '.join(missing)} (the dev extra)")
    root = tmp_path_factory.mktemp("plugin-venv")
    try:
        venv.create(root / "venv", with_pip=False, symlinks=os.name != "nt")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot create a virtualenv here: {exc}")
    bin_dir = "Scripts" if os.name == "nt" else "bin"
    python = Python(root / "venv" / bin_dir / "python", _environment())
    site = python.run(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root)
    assert site.returncode == 0, site.stderr
    (Path(site.stdout.strip()) / "_asyncbatch_dev_env.pth").write_text(
        "".join(f"import site; site.addsitedir({entry!r})\n" for entry in _site_dirs()),
        encoding="utf-8",
    )
    source = root / "asyncbatch-wordfreq"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    pip = python.run(
        [
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--quiet",
            str(source),
        ],
        cwd=root,
    )
    assert pip.returncode == 0, f"pip could not install the example plugin:\n{pip.stderr}"
    return python


# --- the example plugin, installed -------------------------------------------------------


def test_the_plugin_is_not_visible_outside_its_virtualenv() -> None:
    """The plugin tests install nothing into the environment running the tests."""
    assert importlib.util.find_spec("asyncbatch_wordfreq") is None


def test_actions_json_lists_the_plugin_with_its_params_and_origin(
    plugin_python: Python, tmp_path: Path
) -> None:
    listed = plugin_python.asyncbatch(["actions", "--json"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""  # no plugin warning
    actions = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert set(BUILTINS) <= set(actions)
    assert actions["top_words"] == {
        "name": "top_words",
        "description": "The n most frequent words (case-insensitive), with their counts.",
        "origin": "plugin asyncbatch_wordfreq:top_words",
        "params": [
            {
                "name": "n",
                "type": "integer",
                "required": False,
                "default": 10,
                "description": "How many words to report, most frequent first.",
            },
            {
                "name": "min_length",
                "type": "integer",
                "required": False,
                "default": 1,
                "description": "Ignore words shorter than this many characters.",
            },
        ],
    }


def test_actions_lists_the_plugin_for_people(plugin_python: Python, tmp_path: Path) -> None:
    listed = plugin_python.asyncbatch(["actions"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert (
        "top_words  (plugin asyncbatch_wordfreq:top_words)\n"
        "    The n most frequent words (case-insensitive), with their counts.\n"
        "    n: integer, default 10. How many words to report, most frequent first.\n"
        "    min_length: integer, default 1. Ignore words shorter than this many characters.\n"
    ) in listed.stdout
    assert "count_lines  (builtin)" in listed.stdout


RSQ = "\N{RIGHT SINGLE QUOTATION MARK}"  # the typographic apostrophe
CHUNK = 64 * 1024  # the plugin's read size: tricky words are put across chunk ends
VOCABULARY = [
    "the", "The", "THE", "river", "River", "stone", "batch", "of", "a", "I",
    "café", "Café", "naïve", "über", "Ölfass", "don't", "Don't", f"l{RSQ}eau", "it's",
]  # fmt: skip
SEPARATORS = [
    b" ", b"\n", b"\r\n", b"\t", b", ", b". ", b" -- ", b" 42 ", b"_", b"\xff", b" '", b"' ",
    b" (", b") ", b"! ", b"7",
]  # fmt: skip
ACROSS_CHUNKS = [
    # (text, counted as a word, bytes of it before the chunk end)
    ("café", True, 4),  # the end falls inside é's two bytes
    ("don't", True, 3),  # "don" | "'t"
    ("don't", True, 4),  # "don'" | "t"
    (f"l{RSQ}eau", True, 2),  # inside the three bytes of the typographic apostrophe
    ("k" * 1000, True, 500),  # the longest word counted
    ("z" * 5000, False, 2500),  # too long to be a word
    ("q" * 1001, False, 1),
    ("y" * 1500, False, 1200),  # over the limit before the end, not after it
    ("w" * 1200 + "'s", False, 1201),  # "www…w'" | "s"
]


def write_text(path: Path) -> Counter[str]:
    """Write ~0.6 MB of text built from known words; return how often each word
    (case-folded) occurs, known by construction rather than by re-reading the file."""
    rng = random.Random(20261128)
    weights = [rng.randint(1, 50) for _ in VOCABULARY]
    out = bytearray()
    counts: Counter[str] = Counter()

    def add(word: str, *, counted: bool = True) -> None:
        out.extend(word.encode("utf-8"))
        out.extend(rng.choice(SEPARATORS))
        if counted:
            counts[word.casefold()] += 1

    def fill(until: int) -> None:
        while len(out) < until:
            add(rng.choices(VOCABULARY, weights)[0])

    for k, (word, counted, before_end) in enumerate(ACROSS_CHUNKS, start=1):
        start = k * CHUNK - before_end
        fill(start - 100)
        out.extend(b" " * (start - len(out)))
        add(word, counted=counted)
        assert out[start : k * CHUNK] == word.encode("utf-8")[:before_end]
    # the file ends inside a run of letters too long to be a word, cut by a chunk end
    start = (len(ACROSS_CHUNKS) + 1) * CHUNK - 1200
    fill(start - 100)
    out.extend(b" " * (start - len(out)) + b"u" * 1500)
    path.write_bytes(bytes(out))
    return counts


def expected_result(counts: Counter[str], *, n: int = 10, min_length: int = 1) -> dict[str, Any]:
    kept = Counter({word: count for word, count in counts.items() if len(word) >= min_length})
    top = sorted(kept.items(), key=lambda item: (-item[1], item[0]))[:n]
    return {
        "words": sum(kept.values()),
        "distinct": len(kept),
        "top": [{"word": word, "count": count} for word, count in top],
    }


def test_a_run_with_the_plugin_action_matches_the_known_word_counts(
    plugin_python: Python, tmp_path: Path
) -> None:
    counts = write_text(tmp_path / "text.txt")
    assert counts["don't"] > 2  # the vocabulary's variants were folded together
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "short.txt").write_bytes(b"Tail tail")
    (tmp_path / "folder").mkdir()
    config = {
        "jobs": [
            {"name": "top", "action": "top_words", "input": "text.txt", "params": {"n": 5}},
            {
                "name": "long-words",
                "action": "top_words",
                "input": "text.txt",
                "params": {"n": 3, "min_length": 5},
            },
            {"name": "defaults", "action": "top_words", "input": "text.txt"},
            {"name": "empty", "action": "top_words", "input": "empty.txt"},
            {"name": "short", "action": "top_words", "input": "short.txt"},
            {"name": "folder", "action": "top_words", "input": "folder"},
        ]
    }
    (tmp_path / "batch.json").write_text(json.dumps(config), encoding="utf-8")

    done = plugin_python.asyncbatch(["run", "batch.json", "-o", "report.json"], cwd=tmp_path)

    assert done.returncode == 1, done.stderr  # the folder job fails
    assert json.loads(done.stdout) == {
        "total_jobs": 6,
        "succeeded": 5,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
    }
    jobs = {job["name"]: job for job in json.loads((tmp_path / "report.json").read_text())["jobs"]}
    assert jobs["top"]["result"] == expected_result(counts, n=5)
    assert jobs["long-words"]["result"] == expected_result(counts, n=3, min_length=5)
    assert jobs["defaults"]["result"] == expected_result(counts)
    assert jobs["empty"]["result"] == {"words": 0, "distinct": 0, "top": []}
    assert jobs["short"]["result"] == {
        "words": 2,
        "distinct": 1,
        "top": [{"word": "tail", "count": 2}],
    }
    assert jobs["folder"]["status"] == "failed"
    assert jobs["folder"]["error"] == {
        "type": "NotARegularFile",
        "message": "folder: is a directory, not a regular file",
    }


def test_with_root_an_installed_plugin_runs_by_name_and_by_its_entry_point_reference(
    plugin_python: Python, tmp_path: Path
) -> None:
    """``--root`` refuses "module:function" actions, except the reference an
    installed plugin declares; the up-front check still refuses inputs outside."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "text.txt").write_text("b a b\n", encoding="utf-8")
    (tmp_path / "outside.txt").write_text("secret\n", encoding="utf-8")
    jobs = [
        {"name": "by-name", "action": "top_words", "input": "text.txt"},
        {"name": "by-ref", "action": "asyncbatch_wordfreq:top_words", "input": "text.txt"},
        {"name": "out", "action": "top_words", "input": "../outside.txt"},
    ]
    (root / "batch.json").write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    done = plugin_python.asyncbatch(
        ["run", "root/batch.json", "--root", "root", "-o", "r.json"], cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr
    report = {job["name"]: job for job in json.loads((tmp_path / "r.json").read_text())["jobs"]}
    assert report["by-name"]["result"] == report["by-ref"]["result"]
    assert report["by-name"]["result"]["words"] == 3
    assert report["out"]["error"]["type"] == "OutsideRoot"


def test_the_plugin_params_are_checked_when_the_config_loads(
    plugin_python: Python, tmp_path: Path
) -> None:
    """The entry point's object was declared with ``@asyncbatch.action(...,
    params=...)``: its model validates a config at load time, so nothing runs."""
    job = {"name": "top", "action": "top_words", "input": "x.txt", "params": {"n": 0, "m": 1}}
    (tmp_path / "batch.json").write_text(json.dumps({"jobs": [job]}), encoding="utf-8")
    done = plugin_python.asyncbatch(["run", "batch.json", "--dry-run"], cwd=tmp_path)
    assert done.returncode == 2
    assert "jobs[0].params.n: Input should be greater than or equal to 1" in done.stderr
    assert "jobs[0].params.m: unknown key (allowed: n, min_length)" in done.stderr


def test_the_schema_offers_the_plugin_action_and_checks_its_params(
    plugin_python: Python, tmp_path: Path
) -> None:
    printed = plugin_python.asyncbatch(["schema"], cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert printed.stderr == ""
    schema = json.loads(printed.stdout)
    job_schema = schema["$defs"]["JobConfig"]
    assert job_schema["properties"]["action"]["examples"] == sorted([*BUILTINS, "top_words"])
    rules = {r["if"]["properties"]["action"]["const"]: r["then"] for r in job_schema["allOf"]}
    params = rules["top_words"]["properties"]["params"]
    assert params["properties"]["n"]["description"] == (
        "How many words to report, most frequent first."
    )
    assert params["additionalProperties"] is False
    jsonschema = pytest.importorskip("jsonschema", reason="validating needs jsonschema")
    good = {"jobs": [{"name": "t", "action": "top_words", "input": "a", "params": {"n": 3}}]}
    jsonschema.validate(good, schema)
    bad = {"jobs": [{"name": "t", "action": "top_words", "input": "a", "params": {"n": 0}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --- a broken plugin ---------------------------------------------------------------------


@pytest.fixture
def broken_plugin_python(tmp_path: Path) -> Python:
    """This interpreter, with a distribution on PYTHONPATH (a ``*.dist-info`` folder as
    pip leaves one) whose entry point's module raises when imported."""
    site = tmp_path / "site"
    dist_info = site / "abtest_broken-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: abtest-broken\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[asyncbatch.actions]\nshatter = abtest_broken:shatter\n"
    )
    (site / "abtest_broken.py").write_text("raise RuntimeError('this plugin is broken')\n")
    return Python(Path(sys.executable), _environment(PYTHONPATH=str(site)))


BROKEN_WARNING = (
    "warning: plugin action 'shatter' (abtest_broken:shatter) failed to load: "
    "RuntimeError: this plugin is broken"
)


@pytest.mark.parametrize("args", [["actions"], ["actions", "--json"], ["schema"]])
def test_a_broken_plugin_is_a_warning_and_the_builtins_are_still_listed(
    broken_plugin_python: Python, tmp_path: Path, args: list[str]
) -> None:
    done = broken_plugin_python.asyncbatch(args, cwd=tmp_path)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [BROKEN_WARNING]
    if args == ["actions"]:
        assert all(f"{name}  (builtin)" in done.stdout for name in BUILTINS)
    elif args == ["actions", "--json"]:
        assert [entry["name"] for entry in json.loads(done.stdout)] == BUILTINS
    else:
        examples = json.loads(done.stdout)["$defs"]["JobConfig"]["properties"]["action"]
        assert examples["examples"] == BUILTINS


def test_a_broken_plugin_leaves_runs_of_builtins_working(
    broken_plugin_python: Python, tmp_path: Path
) -> None:
    """The job naming the broken plugin's action is skipped as unknown, with the
    reason on stderr; the others run."""
    (tmp_path / "notes.txt").write_text("one two\nthree\n", encoding="utf-8")
    jobs = [
        {"name": "lines", "action": "count_lines", "input": "notes.txt"},
        {"name": "broken", "action": "shatter", "input": "notes.txt"},
    ]
    (tmp_path / "batch.json").write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    done = broken_plugin_python.asyncbatch(["run", "batch.json", "-o", "r.json"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # a skipped job does not fail the run
    assert BROKEN_WARNING in done.stderr.splitlines()
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(job["name"], job["status"]) for job in report["jobs"]] == [
        ("lines", "succeeded"),
        ("broken", "skipped"),
    ]
    assert report["jobs"][0]["result"] == {"lines": 2}
    assert report["jobs"][1]["error"]["type"] == "UnknownAction"
