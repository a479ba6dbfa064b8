"""``asyncbatch diff OLD NEW``: two real runs' reports compared job by job, as text,
JSON and an HTML page, with ``--fail-on`` for CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import invoke, read_json, write_json

from asyncbatch.output.diff import MIN_SLOW_MS, parse_fail_on


def config(folder: Path, *jobs: dict[str, Any]) -> Path:
    return write_json(folder / "batch.json", {"jobs": list(jobs)})


def command(name: str, shell: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "action": "command", "input": ".", "params": {"shell": shell}, **more}


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """OLD and NEW reports of real runs between which every kind of difference
    happens: a job gone and one new, one newly failing and one fixed, a result that
    changed, a job much slower, one that passed after a retry."""
    (tmp_path / "count.txt").write_text("one\n", encoding="utf-8")
    first = [
        command("gone", "true"),
        command("breaks", "true"),
        command("mends", "exit 3"),
        {"name": "count", "action": "count_lines", "input": "count.txt"},
        command("slows", "true"),
        command("steady", "true"),
    ]
    invoke(["run", str(config(tmp_path, *first)), "-o", str(tmp_path / "old.json"), "-q"])
    (tmp_path / "count.txt").write_text("one\ntwo\n", encoding="utf-8")
    marker = tmp_path / "tried"
    second = [
        command("breaks", "exit 4"),
        command("mends", "true"),
        {"name": "count", "action": "count_lines", "input": "count.txt"},
        command("slows", "sleep 0.6"),
        command("steady", "true"),
        command("newcomer", "true"),
        command("flaky", f"test -e {marker} || (touch {marker}; exit 1)", retries=2),
        command("born-broken", "exit 5"),
    ]
    result = invoke(["run", str(config(tmp_path, *second)), "-o", str(tmp_path / "new.json")])
    assert result.exit_code == 1, result.stderr
    return tmp_path / "old.json", tmp_path / "new.json"


def test_every_kind_of_difference_is_found_in_json(two_runs: tuple[Path, Path]) -> None:
    old, new = two_runs
    result = invoke(["diff", str(old), str(new), "--json"])
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["new_jobs"] == ["newcomer", "flaky", "born-broken"]
    assert found["gone_jobs"] == ["gone"]
    assert found["new_failures"] == ["breaks", "born-broken"]
    assert found["fixed"] == ["mends"]
    assert found["changed"] == [{"name": "count", "old": {"lines": 1}, "new": {"lines": 2}}]
    (slow,) = found["slower"]
    assert slow["name"] == "slows"
    assert slow["new_ms"] >= MIN_SLOW_MS
    assert slow["factor"] == round(slow["new_ms"] / slow["old_ms"], 2) >= 2
    assert found["retried"] == [{"name": "flaky", "attempts": 2}]


def test_the_text_for_people_lists_each_kind_with_its_count(two_runs: tuple[Path, Path]) -> None:
    old, new = two_runs
    result = invoke(["diff", str(old), str(new)])
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"{old} -> {new}\n")
    for heading in (
        "New jobs (3):",
        "Gone jobs (1):",
        "Newly failing (2):",
        "Fixed (1):",
        "Changed results (1):",
        "Slower (1):",
        "Passed only after retries (1):",
    ):
        assert heading in text, heading
    assert '  count: {"lines": 1} -> {"lines": 2}' in text
    assert "  flaky (2 attempts)" in text


def test_a_report_compared_with_itself_has_no_differences(two_runs: tuple[Path, Path]) -> None:
    """(OLD has no job that needed a retry: those of NEW are listed whatever OLD was.)"""
    old, _ = two_runs
    result = invoke(["diff", str(old), str(old), "--fail-on", "new-failure,changed,slower"])
    assert result.exit_code == 0
    assert result.stdout.endswith("no differences\n")


@pytest.mark.parametrize(
    ("kinds", "code"),
    [("new-failure", 1), ("changed", 1), ("slower", 1), ("new-failure,slower", 1)],
)
def test_fail_on_exits_1_when_a_named_difference_exists(
    two_runs: tuple[Path, Path], kinds: str, code: int
) -> None:
    old, new = two_runs
    assert invoke(["diff", str(old), str(new), "--fail-on", kinds]).exit_code == code


def test_fail_on_ignores_the_differences_it_does_not_name(tmp_path: Path) -> None:
    """Only a result changed: ``--fail-on new-failure,slower`` stays 0."""
    (tmp_path / "in.txt").write_text("a\n", encoding="utf-8")
    batch = config(tmp_path, {"name": "n", "action": "count_lines", "input": "in.txt"})
    invoke(["run", str(batch), "-o", str(tmp_path / "old.json"), "-q"])
    (tmp_path / "in.txt").write_text("a\nb\n", encoding="utf-8")
    invoke(["run", str(batch), "-o", str(tmp_path / "new.json"), "-q"])
    args = ["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--fail-on"]
    assert invoke([*args, "new-failure,slower"]).exit_code == 0
    assert invoke([*args, "changed"]).exit_code == 1


def test_fast_jobs_are_never_slower_and_reused_jobs_never_retried_or_slower(
    tmp_path: Path,
) -> None:
    """Durations under 100 ms are noise; a reused job did not run in NEW."""
    old = read_json_report(tmp_path, "old.json", {"quick": 1.0, "reused": 200.0})
    new = read_json_report(tmp_path, "new.json", {"quick": 90.0, "reused": 5000.0}, reused=True)
    found = json.loads(invoke(["diff", str(old), str(new), "--json"]).stdout)
    assert found["slower"] == []
    assert found["retried"] == []


def read_json_report(
    folder: Path, name: str, durations: dict[str, float], *, reused: bool = False
) -> Path:
    """A real run's report whose durations are then set as given (a slow machine is
    not needed to compare times)."""
    batch = config(folder, *(command(job, "true") for job in durations))
    path = folder / name
    invoke(["run", str(batch), "-o", str(path), "-q"])
    report = read_json(path)
    for job in report["jobs"]:
        job["duration_ms"] = durations[job["name"]]
        job["reused"] = reused and job["name"] == "reused"
        job["attempts"] = 3 if job["reused"] else 1
    return write_json(path, report)


def test_the_slower_factor_is_an_option(two_runs: tuple[Path, Path]) -> None:
    old, new = two_runs
    found = json.loads(invoke(["diff", str(old), str(new), "--json", "--slower", "1000"]).stdout)
    assert found["slower"] == []
    assert invoke(["diff", str(old), str(new), "--slower", "0.5"]).exit_code == 2


def test_a_file_that_is_not_a_report_is_exit_2(two_runs: tuple[Path, Path]) -> None:
    old, _ = two_runs
    batch = old.with_name("batch.json")
    result = invoke(["diff", str(old), str(batch)])
    assert result.exit_code == 2
    assert f"error: {batch}: not an asyncbatch report" in result.stderr
    missing = invoke(["diff", str(old), str(old.with_name("nope.json"))])
    assert missing.exit_code == 2


def test_an_unknown_fail_on_is_exit_2_naming_it() -> None:
    with pytest.raises(ValueError, match="'sometimes'"):
        parse_fail_on("new-failure,sometimes")
    assert parse_fail_on(" slower , changed ") == ["slower", "changed"]


def test_the_html_page_is_self_contained_escaped_and_never_over_a_report(
    two_runs: tuple[Path, Path],
) -> None:
    old, new = two_runs
    report = read_json(new)
    report["jobs"][0]["name"] = "<script>alert(1)</script>"
    write_json(new, report)
    page = old.with_name("diff.html")
    assert invoke(["diff", str(old), str(new), "--html", str(page)]).exit_code == 0
    text = page.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "http://" not in text
    assert "https://" not in text
    for taken in (old, new, Path(f"{new}.journal"), Path(f"{old}.lock")):
        before = taken.read_bytes() if taken.exists() else None
        result = invoke(["diff", str(old), str(new), "--html", str(taken)])
        assert result.exit_code == 2, taken
        assert (taken.read_bytes() if taken.exists() else None) == before
