"""The recipes of docs/recipes.md are configs under examples/recipes/: run them for
real and check every result against Python on the same bytes, so the docs cannot
drift."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parent.parent / "examples" / "recipes"


def run_recipe(config: Path, tmp_path: Path, *args: str) -> dict[str, dict[str, object]]:
    """Run a recipe from an unrelated cwd; return the report's jobs by name."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "asyncbatch", "run", str(config), "-o", str(report), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    jobs = json.loads(report.read_text())["jobs"]
    assert {job["status"] for job in jobs} == {"succeeded"}
    return {job["name"]: job for job in jobs}


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


CONFIGS = [path for path in sorted(RECIPES.glob("*.*")) if path.suffix != ".csv"]
"""The recipes' configs (``levels.csv`` is the input of an ``each`` recipe)."""


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_recipe_validates_in_a_dry_run(config: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncbatch", "run", str(config), "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["valid"] is True
    assert all(job["warnings"] == [] for job in plan["jobs"])


def test_the_logs_recipe_fans_globs_out_and_counts_like_python(tmp_path: Path) -> None:
    jobs = run_recipe(RECIPES / "logs.json", tmp_path)
    logs = RECIPES / "logs"
    everything = sorted(p.relative_to(RECIPES).as_posix() for p in logs.rglob("*.log"))
    top_level = sorted(p.relative_to(RECIPES).as_posix() for p in logs.glob("*.log"))
    assert [name for name in jobs if name.startswith("lines[")] == [
        f"lines[{path}]" for path in everything
    ]
    for path in everything:
        assert jobs[f"lines[{path}]"]["result"] == {"lines": len(lines_of(RECIPES / path))}
    for path in top_level:
        text = lines_of(RECIPES / path)
        errors = [line for line in text if re.search("ERROR|FATAL", line)]
        assert jobs[f"errors[{path}]"]["result"] == {
            "matches": sum(len(re.findall("ERROR|FATAL", line)) for line in errors),
            "matching_lines": len(errors),
        }
        slow = [line for line in text if re.search(r"took [4-9]\d\d ms", line)]
        assert jobs[f"slow[{path}]"]["result"] == {
            "matches": len(slow),
            "matching_lines": len(slow),
        }


def test_the_pipeline_recipe_runs_its_dependencies_and_limits(tmp_path: Path) -> None:
    jobs = run_recipe(RECIPES / "pipeline.yaml", tmp_path)
    web1 = (RECIPES / "logs" / "web-1.log").read_bytes()
    web2 = (RECIPES / "logs" / "web-2.log").read_bytes()
    assert jobs["size"]["result"] == {"bytes": len(web1)}
    assert jobs["words"]["result"] == {"words": len(web1.decode().split())}
    assert jobs["sha256"]["result"] == {
        "algorithm": "sha256",
        "digest": hashlib.sha256(web1).hexdigest(),
    }
    assert jobs["sha512"]["result"] == {
        "algorithm": "sha512",
        "digest": hashlib.sha512(web2).hexdigest(),
    }


def test_the_quick_toml_recipe_counts_errors_ignoring_case(tmp_path: Path) -> None:
    jobs = run_recipe(RECIPES / "quick.toml", tmp_path)
    text = lines_of(RECIPES / "logs" / "web-1.log")
    matching = [line for line in text if "error" in line.lower()]
    assert jobs["web-1-lines"]["result"] == {"lines": len(text)}
    assert jobs["web-1-errors"]["result"] == {
        "matches": sum(line.lower().count("error") for line in matching),
        "matching_lines": len(matching),
    }


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time, by relative path."""
    return {
        path.relative_to(folder).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_the_compress_logs_recipe_archives_checksums_and_resumes(tmp_path: Path) -> None:
    """Its commands write beside the logs, so it runs on a copy: the repository is
    left as it was. Each archive holds its log's bytes and its checksum file says
    what sha256sum says of it; a resumed run reuses everything and touches nothing."""
    repository = files_under(RECIPES)
    copy = tmp_path / "recipes"
    copy.mkdir()
    shutil.copy(RECIPES / "compress-logs.json", copy)
    shutil.copytree(RECIPES / "logs", copy / "logs")
    logs = sorted(p.relative_to(copy).as_posix() for p in (copy / "logs").rglob("*.log"))
    assert len(logs) >= 3

    jobs = run_recipe(copy / "compress-logs.json", tmp_path)

    assert list(jobs) == [f"gz[{log}]" for log in logs] + [f"sha256[{log}]" for log in logs]
    for log in logs:
        archive = copy / f"{log}.gz"
        assert gzip.decompress(archive.read_bytes()) == (copy / log).read_bytes()
        assert archive.read_bytes()[4:8] == b"\0\0\0\0"  # --no-name: no time stamp
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        assert (copy / f"{log}.gz.sha256").read_text() == f"{digest}  {archive.name}\n"
        for name in (f"gz[{log}]", f"sha256[{log}]"):
            assert jobs[name]["result"] == {
                "exit_code": 0,
                "stdout": "",
                "stderr": "",
                "stdout_bytes": 0,
                "stderr_bytes": 0,
            }
    # The declared outputs and nothing else: no stray files beside the logs.
    made = set(files_under(copy / "logs")) - {log.removeprefix("logs/") for log in logs}
    assert made == {
        f"{log.removeprefix('logs/')}{end}" for log in logs for end in (".gz", ".gz.sha256")
    }
    written = files_under(copy)

    again = run_recipe(copy / "compress-logs.json", tmp_path, "--resume")
    assert all(job["reused"] for job in again.values())
    assert {name: job["result"] for name, job in again.items()} == {
        name: job["result"] for name, job in jobs.items()
    }
    assert files_under(copy) == written
    assert files_under(RECIPES) == repository


def test_resuming_a_recipe_reuses_every_result(tmp_path: Path) -> None:
    first = run_recipe(RECIPES / "quick.toml", tmp_path)
    again = run_recipe(RECIPES / "quick.toml", tmp_path, "--resume")
    assert all(job["reused"] for job in again.values())
    assert {name: job["result"] for name, job in again.items()} == {
        name: job["result"] for name, job in first.items()
    }


def test_the_docs_show_the_logs_recipe_exactly_as_it_is() -> None:
    docs = (RECIPES.parent.parent / "docs" / "recipes.md").read_text()
    section = docs.split("## A logs directory with globs\n", 1)[1]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == json.loads((RECIPES / "logs.json").read_text())


def test_the_docs_show_the_compress_logs_recipe_exactly_as_it_is() -> None:
    docs = (RECIPES.parent.parent / "docs" / "recipes.md").read_text()
    section = docs.split("## Compress logs, then checksum the archives\n", 1)[1]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == json.loads((RECIPES / "compress-logs.json").read_text())


# --- the each recipes, run as written ------------------------------------------------------

RECIPES_PAGE = RECIPES.parent.parent / "docs" / "recipes.md"


def each_recipes() -> list[tuple[str, list[str]]]:
    """The commands of the recipes page's ``each`` section, each with the output
    lines shown after it."""
    text = RECIPES_PAGE.read_text(encoding="utf-8")
    section = text.split("## Without a config: `each`", 1)[1].split("\n## ", 1)[0]
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            else:
                found[-1][1].append(line)
    return found


@pytest.mark.slow  # a subprocess per command
def test_the_each_recipes_run_as_written_and_print_what_the_page_shows(tmp_path: Path) -> None:
    folder = tmp_path / "recipes"
    shutil.copytree(RECIPES, folder)
    recipes = each_recipes()
    assert len(recipes) >= 4
    for command, shown in recipes:
        program = command.split()[0]
        if program != "asyncbatch" and shutil.which(program) is None:
            continue  # jq, say, not installed here
        line = re.sub(r"\basyncbatch\b", f"{sys.executable} -m asyncbatch", command, count=1)
        done = subprocess.run(
            ["/bin/sh", "-c", line],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr)
        assert "Traceback" not in done.stderr
        expected = [each.replace("/tmp/recipes", str(folder)) for each in shown]
        assert done.stdout.splitlines() == expected, command
