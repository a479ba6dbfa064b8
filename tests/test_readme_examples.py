"""The documentation's code runs as written, so it cannot rot: each ``python`` block of
the Python API page (docs/api.md) runs in a fresh interpreter from the repository's
root and must print the ``text`` block that follows it; the custom action of "Your own
actions" (docs/actions.md) runs from a config, as the page says to use it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TIMEOUT = 60

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def page(name: str) -> str:
    """The text of the docs page ``docs/name``."""
    return (DOCS / name).read_text(encoding="utf-8")


def section(name: str, title: str) -> str:
    """The text of the ``## title`` section of the docs page ``docs/name``."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", page(name), re.M | re.S)
    assert match is not None, f"docs/{name} has no section {title!r}"
    return match.group(1)


def examples(text: str) -> list[tuple[str, str | None]]:
    """Each ``python`` block with the ``text`` block after it (its output), if any
    comes before the next ``python`` block."""
    found: list[tuple[str, str | None]] = []
    for language, body in _FENCE.findall(text):
        if language == "python":
            found.append((body, None))
        elif language == "text" and found and found[-1][1] is None:
            found[-1] = (found[-1][0], body)
    return found


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=TIMEOUT,
    )


API_EXAMPLES = examples(page("api.md"))


def test_the_python_api_section_has_its_examples_with_their_output() -> None:
    assert len(API_EXAMPLES) >= 2
    assert all(output is not None for _, output in API_EXAMPLES)


@pytest.mark.parametrize(
    ("code", "output"), API_EXAMPLES, ids=[f"example-{n}" for n in range(len(API_EXAMPLES))]
)
def test_a_python_api_example_prints_what_the_docs_show(
    code: str, output: str | None, tmp_path: Path
) -> None:
    """Run from the repository's root, as the page says; lines are compared as a
    multiset, since progress lines come in the order jobs end."""
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = run_python(str(script), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert output is not None
    assert Counter(done.stdout.splitlines()) == Counter(output.splitlines())


def test_the_python_api_examples_use_the_progress_callback_and_action() -> None:
    """The page shows how to follow progress and register an action from code."""
    code = "\n".join(body for body, _ in API_EXAMPLES)
    assert "on_job_done=" in code
    assert "@action(" in code


def test_the_own_actions_example_runs_from_a_config_beside_it(tmp_path: Path) -> None:
    """``myactions.py`` next to the config, named ``"myactions:head_bytes"``."""
    own_actions = examples(section("actions.md", "Your own actions"))
    (code,) = [body for body, _ in own_actions if "# myactions.py" in body]
    (tmp_path / "myactions.py").write_text(code, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("first line\nsecond\nthird\n", encoding="utf-8")
    job = {"name": "head", "action": "myactions:head_bytes", "input": "notes.txt"}
    config = {"jobs": [job, {**job, "name": "head-2", "params": {"lines": 2}}]}
    (tmp_path / "batch.json").write_text(json.dumps(config), encoding="utf-8")
    done = run_python("-m", "asyncbatch", "run", "batch.json", "-o", "report.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert [job["result"] for job in report["jobs"]] == [
        {"bytes": len("first line\nsecond\nthird\n")},
        {"bytes": len("first line\nsecond\n")},
    ]


def test_the_declared_outputs_example_keeps_its_outputs_as_a_command_would(
    tmp_path: Path,
) -> None:
    """``copies.py`` of "What an action declares": folders made, the copy written
    where the job context says, a failed attempt's copy removed, a job missing its
    output failing with MissingOutput, and ``--resume`` running again the job whose
    copy was deleted, reusing the others."""
    declares = examples(section("actions.md", "What an action declares"))
    (code,) = [body for body, _ in declares if "# copies.py" in body]
    (tmp_path / "copies.py").write_text(
        code
        + "\n\n@asyncbatch.action('forgetful', outputs=['out/{stem}.never'])\n"
        + "async def forgetful(path, params):\n    return {}\n",
        encoding="utf-8",
    )
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("one\n", encoding="utf-8")
    (notes / "b.txt").write_text("two\n", encoding="utf-8")
    (notes / "c.txt").write_text("please fail\n", encoding="utf-8")
    jobs = [
        {"name": "copy", "action": "copies:upper_copy", "input": "notes/*.txt"},
        {"name": "forget", "action": "copies:forgetful", "input": "notes/a.txt"},
    ]
    (tmp_path / "batch.json").write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    args = ["-m", "asyncbatch", "run", "batch.json", "-o", "report.json", "-q"]
    done = run_python(*args, cwd=tmp_path)
    assert done.returncode == 1, done.stderr

    def statuses() -> dict[str, tuple[str, str | None, bool]]:
        report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
        return {
            job["name"]: (job["status"], (job["error"] or {}).get("type"), job["reused"])
            for job in report["jobs"]
        }

    assert statuses() == {
        "copy[notes/a.txt]": ("succeeded", None, False),
        "copy[notes/b.txt]": ("succeeded", None, False),
        "copy[notes/c.txt]": ("failed", "ActionError", False),
        "forget": ("failed", "MissingOutput", False),
    }
    out = tmp_path / "out"
    assert sorted(child.name for child in out.iterdir()) == ["a.upper", "b.upper"]
    assert (out / "a.upper").read_text(encoding="utf-8") == "ONE\n"
    (out / "b.upper").unlink()
    done = run_python(*args, "--resume", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert statuses()["copy[notes/a.txt]"] == ("succeeded", None, True)
    assert statuses()["copy[notes/b.txt]"] == ("succeeded", None, False)
    assert (out / "b.upper").read_text(encoding="utf-8") == "TWO\n"
