"""``asyncbatch plan CONFIG -o REPORT``: what ``run --resume`` would do with each job,
and why, from the journal alone; and its agreement with what ``run --resume`` then
does, over random edits (a property test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import invoke, read_json, write_json


def plan_of(config: Path, report: Path, *more: str) -> dict[str, Any]:
    result = invoke(["plan", str(config), "-o", str(report), "--json", *more])
    assert result.exit_code == 0, result.stderr
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def by_name(plan: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {job["name"]: (job["decision"], job["reason"], job["detail"]) for job in plan["jobs"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "src" / f"{name}.txt").write_text(f"{name}\n", encoding="utf-8")
    write_json(
        tmp_path / "batch.json",
        {
            "jobs": [
                {"name": "lines", "action": "count_lines", "input": "src/*.txt"},
                {"name": "words", "action": "count_words", "input": "src/a.txt"},
                {
                    "name": "after",
                    "action": "file_size",
                    "input": "src/a.txt",
                    "depends_on": ["lines"],
                },
                {"name": "broken", "action": "file_size", "input": "missing.txt"},
                {
                    "name": "copy",
                    "action": "command",
                    "input": "src/c.txt",
                    "params": {
                        "shell": "cp {input} out/{stem}.copy",
                        "outputs": ["out/{stem}.copy"],
                    },
                },
            ]
        },
    )
    return tmp_path


def test_without_a_journal_every_job_is_new_and_nothing_is_read(project: Path) -> None:
    plan = plan_of(project / "batch.json", project / "report.json")
    assert (plan["total_jobs"], plan["reuse"], plan["run"]) == (7, 0, 7)
    assert {reason for _, reason, _ in by_name(plan).values()} == {"new job"}
    assert not (project / "report.json.journal").exists()


def test_each_reason_is_given_with_its_detail(project: Path) -> None:
    config, report = project / "batch.json", project / "report.json"
    assert invoke(["run", str(config), "-o", str(report), "-q"]).exit_code == 1
    assert {d for d, _, _ in by_name(plan_of(config, report)).values()} == {"reuse", "run"}
    (project / "src" / "b.txt").write_text("bigger now\n", encoding="utf-8")
    (project / "out" / "c.copy").unlink()
    raw = read_json(config)
    raw["jobs"][1]["action"] = "count_lines"
    raw["jobs"].append({"name": "fresh", "action": "file_size", "input": "src/a.txt"})
    write_json(config, raw)
    decided = by_name(plan_of(config, report))
    assert decided == {
        "lines[src/a.txt]": ("reuse", "unchanged", ""),
        "lines[src/b.txt]": ("run", "input changed", "size 2 -> 11 bytes"),
        "lines[src/c.txt]": ("reuse", "unchanged", ""),
        "words": ("run", "action changed", "count_words -> count_lines"),
        "after": ("run", "dependency runs", "lines[src/b.txt]"),
        "broken": ("run", "failed last time", "FileNotFoundError"),
        "copy": ("run", "output missing", "out/c.copy"),
        "fresh": ("run", "new job", ""),
    }


def test_params_changed_and_not_run_last_time(project: Path) -> None:
    config, report = project / "batch.json", project / "report.json"
    raw = read_json(config)
    raw["jobs"].append(
        {"name": "needs", "action": "file_size", "input": "src/a.txt", "depends_on": ["broken"]}
    )
    write_json(config, raw)
    invoke(["run", str(config), "-o", str(report), "-q"])
    raw["jobs"][4]["params"]["shell"] = "cp {input} out/{stem}.copy # again"
    write_json(config, raw)
    decided = by_name(plan_of(config, report))
    assert decided["copy"] == ("run", "params changed", "")
    assert decided["needs"] == ("run", "not run last time", "skipped")


def test_the_text_counts_reasons_then_lists_the_jobs_that_run(project: Path) -> None:
    config, report = project / "batch.json", project / "report.json"
    invoke(["run", str(config), "-o", str(report), "-q"])
    result = invoke(["plan", str(config), "-o", str(report)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "7 jobs: 6 reused, 1 to run"
    assert [line.split() for line in lines[1:3]] == [
        ["6", "unchanged"],
        ["1", "failed", "last", "time"],
    ]
    assert lines[3:] == ["", "To run:", "  broken: failed last time (FileNotFoundError)"]


def test_plan_needs_a_report_and_a_valid_config(project: Path) -> None:
    assert invoke(["plan", str(project / "batch.json")]).exit_code == 2
    (project / "bad.json").write_text('{"jobs": [{"name": 1}]}', encoding="utf-8")
    result = invoke(["plan", str(project / "bad.json"), "-o", str(project / "r.json")])
    assert result.exit_code == 2
    assert "jobs[0]" in result.stderr


# --- the plan is what run --resume does --------------------------------------------------

EDITS = st.lists(
    st.sampled_from(["touch", "params", "delete-output", "add-job", "action", "nothing"]),
    min_size=0,
    max_size=4,
)


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(edits=EDITS, target=st.integers(min_value=0, max_value=2), extra=st.integers(0, 99))
def test_the_plan_is_exactly_what_run_resume_does(
    tmp_path_factory: pytest.TempPathFactory, edits: list[str], target: int, extra: int
) -> None:
    """A batch with globs, dependencies, a failing job and declared outputs runs
    once; random edits follow; the plan's decision for every job is the one the
    resumed run then takes: reused exactly when the plan says ``reuse``."""
    folder = tmp_path_factory.mktemp("resume")
    names = ["a", "b", "c"]
    (folder / "src").mkdir()
    for name in names:
        (folder / "src" / f"{name}.txt").write_text(f"{name}\n", encoding="utf-8")
    jobs: list[dict[str, Any]] = [
        {"name": "lines", "action": "count_lines", "input": "src/*.txt"},
        {"name": "sizes", "action": "file_size", "input": "src/b.txt", "depends_on": ["lines"]},
        {"name": "flaky", "action": "file_size", "input": "gone.txt"},
        {"name": "late", "action": "count_words", "input": "src/c.txt", "depends_on": ["sizes"]},
        {
            "name": "copy",
            "action": "command",
            "input": "src/*.txt",
            "params": {"shell": "cp {input} out/{stem}.copy", "outputs": ["out/{stem}.copy"]},
        },
    ]
    config, report = folder / "batch.json", folder / "report.json"
    write_json(config, {"jobs": jobs})
    invoke(["run", str(config), "-o", str(report), "-q"])
    chosen = names[target]
    for number, edit in enumerate(edits):
        if edit == "touch":
            (folder / "src" / f"{chosen}.txt").write_text(f"{chosen} {extra}\n", encoding="utf-8")
        elif edit == "params":
            jobs[4]["params"]["shell"] = f"cp {{input}} out/{{stem}}.copy # {extra}"
        elif edit == "delete-output":
            (folder / "out" / f"{chosen}.copy").unlink(missing_ok=True)
        elif edit == "add-job":
            jobs.append({"name": f"new{number}", "action": "file_size", "input": "src/a.txt"})
        elif edit == "action":
            jobs[3]["action"] = (
                "count_lines" if jobs[3]["action"] == "count_words" else "count_words"
            )
    write_json(config, {"jobs": jobs})
    planned = {
        name: decision == "reuse"
        for name, (decision, _, _) in by_name(plan_of(config, report)).items()
    }
    invoke(["run", str(config), "-o", str(report), "--resume", "-q"])
    done = {job["name"]: job["reused"] for job in read_json(report)["jobs"]}
    assert planned == done, edits
