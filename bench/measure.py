"""Timing: a case is a few shell commands run alternately, a warm-up round then
``repeat`` rounds, with the medians compared; peak RSS by GNU time in the warm-up."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ASYNCBATCH = f"{sys.executable} -m asyncbatch"


@dataclass
class Command:
    label: str
    shell: str
    rss: bool = False
    """Also measure its peak RSS (in one extra run)."""


@dataclass
class Case:
    key: str
    title: str
    baseline: str
    commands: list[Command]
    times: dict[str, list[float]] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)

    def median(self, label: str) -> float:
        """The median wall seconds of the command labelled ``label``."""
        return statistics.median(self.times[label])


def time_once(command: Command) -> float:
    """Wall seconds of one run."""
    started = time.perf_counter()
    done = subprocess.run(
        command.shell, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command.label} exited {done.returncode}: {command.shell}")
    return elapsed


def peak_rss_mb(command: Command) -> float | None:
    """Peak RSS of the command and its children (GNU time's %M), in an extra run:
    measured from a small parent, as a fork of this big one would inherit its mark."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        argv = [gnu_time, "-f", "%M", "-o", out.name, "bash", "-c", command.shell]
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        text = out.read().strip().splitlines()
    return int(text[-1]) / 1024 if text and text[-1].isdigit() else None


def run_case(case: Case, repeat: int) -> None:
    """Every command once to warm up (asyncbatch's under GNU time, for its peak
    RSS), then ``repeat`` alternating rounds."""
    for command in case.commands:
        rss = peak_rss_mb(command) if command.rss else None
        if rss is None:
            time_once(command)
        else:
            case.rss_mb[command.label] = rss
    for _ in range(repeat):
        for command in case.commands:
            case.times.setdefault(command.label, []).append(time_once(command))


def run_case_with_hyperfine(case: Case, repeat: int, folder: Path) -> None:
    """The same rounds timed by hyperfine (no peak RSS)."""
    export = folder / f"{case.key}.hyperfine.json"
    argv = ["hyperfine", "--shell=bash", "--warmup", "1"]
    argv += ["--runs", str(repeat), "--export-json", str(export)]
    for command in case.commands:
        argv += ["-n", command.label, command.shell]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    for result in json.loads(export.read_text())["results"]:
        case.times[result["command"]] = result["times"]


def add_rows_against(cases: list[Case], python: str) -> None:
    """Beside each asyncbatch row, the same command with ``python``'s asyncbatch."""
    for case in cases:
        extra = [
            Command(
                f"{command.label} [against]",
                command.shell.replace(ASYNCBATCH, f"{python} -m asyncbatch", 1),
                command.rss,
            )
            for command in case.commands
            if command.shell.startswith(ASYNCBATCH)
        ]
        case.commands.extend(extra)
