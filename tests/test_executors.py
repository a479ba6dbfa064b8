"""The executor seam: every attempt goes through a non-local executor (no fast
paths), and an error described elsewhere is reported as described."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asyncbatch.config import load_config
from asyncbatch.errors import RemoteError
from asyncbatch.registry import ActionSpec
from asyncbatch.engine import run_batch

pytestmark = pytest.mark.anyio


class Recording:
    """A non-local executor that runs actions here and records each attempt."""

    local = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def run(self, spec: ActionSpec, path: Path, params: Any) -> dict[str, Any]:
        self.calls.append((spec.name, path.name))
        if path.name == "remote-fail.txt":
            raise RemoteError(error={"type": "PermissionError", "message": f"{path}: denied"})
        return await spec.func(path, params)


async def test_every_attempt_goes_through_a_non_local_executor(tmp_path: Path) -> None:
    names = [f"f{i}.txt" for i in range(20)]
    for name in [*names, "remote-fail.txt"]:
        (tmp_path / name).write_text("a b\nc\n", encoding="utf-8")
    jobs = [{"name": name, "action": "count_lines", "input": name} for name in names]
    jobs.append({"name": "bad", "action": "count_words", "input": "remote-fail.txt"})
    config_path = tmp_path / "batch.json"
    config_path.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    executor = Recording()
    report = await run_batch(load_config(str(config_path)), executor=executor)
    assert sorted(executor.calls) == sorted(
        [("count_lines", name) for name in names] + [("count_words", "remote-fail.txt")]
    )
    by_name = {job.name: job for job in report.jobs}
    assert all(by_name[name].result == {"lines": 2} for name in names)
    assert by_name["bad"].status == "failed"
    assert by_name["bad"].error == {
        "type": "PermissionError",
        "message": "remote-fail.txt: denied",
    }


def test_without_the_extra_the_dask_executor_is_exit_2(tmp_path: Path) -> None:
    """``distributed`` that will not import (as when the extra is missing): exit 2,
    saying what to install, and nothing ran."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "distributed.py").write_text("raise ImportError('not installed')\n")
    data = Path(__file__).resolve().parent.parent / "data"
    report = tmp_path / "report.json"
    args = ["run", str(data / "batch_config.json"), "-o", str(report), "--executor", "dask"]
    done = subprocess.run(
        [sys.executable, "-m", "asyncbatch", *args],
        env={**os.environ, "PYTHONPATH": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "install 'asyncbatch[dask]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fake"]
