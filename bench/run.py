"""Benchmarks: asyncbatch against the tools its users would otherwise reach for.

Generates its corpora deterministically under a temp folder, warms the page cache,
runs every command of a case alternately ``--repeat`` times and prints a Markdown
table of medians with ratios to the case's baseline (measured in the same run, on
the same files). The table is also saved as JSON (``--json``). Machines here are
shared and noisy: read ratios, not absolute times.

    python bench/run.py [--repeat 5] [--small-files 10000] [--json bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ASYNCBATCH = [sys.executable, "-m", "asyncbatch"]


@dataclass
class Command:
    label: str
    argv: Sequence[str]
    shell: bool = False


@dataclass
class Case:
    title: str
    baseline: str
    commands: list[Command]


def make_small_files(root: Path, count: int) -> Path:
    """``count`` files of ~4 KiB of log-like lines, fixed seed."""
    folder = root / "small"
    folder.mkdir()
    rng = random.Random(1)
    words = ["INFO", "DEBUG", "WARN", "ERROR", "request", "served", "cache", "miss", "user"]
    for i in range(count):
        lines = []
        size = 0
        while size < 4000:
            line = " ".join(rng.choice(words) for _ in range(rng.randrange(3, 12)))
            lines.append(line)
            size += len(line) + 1
        (folder / f"f{i:06d}.log").write_text("\n".join(lines) + "\n")
    return folder


def write_config(root: Path, name: str, jobs: list[dict[str, object]]) -> Path:
    path = root / name
    path.write_text(json.dumps({"jobs": jobs}))
    return path


def warm(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            path.read_bytes()


def time_once(command: Command) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        command.argv if not command.shell else " ".join(command.argv),
        shell=command.shell,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{command.label} exited {completed.returncode}")
    return elapsed


def run_case(case: Case, repeat: int) -> dict[str, object]:
    times: dict[str, list[float]] = {command.label: [] for command in case.commands}
    for _ in range(repeat):
        for command in case.commands:
            times[command.label].append(time_once(command))
    medians = {label: statistics.median(values) for label, values in times.items()}
    base = medians[case.baseline]
    return {
        "case": case.title,
        "baseline": case.baseline,
        "rows": [
            {"command": label, "median_s": round(median, 4), "ratio": round(median / base, 3)}
            for label, median in medians.items()
        ],
    }


def cases(root: Path, small_files: int, size_jobs: int) -> list[Case]:
    small = make_small_files(root, small_files)
    warm(small)
    glob_config = write_config(
        root, "small.json", [{"name": "lines", "action": "count_lines", "input": "small/*.log"}]
    )
    size_config = write_config(
        root,
        "sizes.json",
        [
            {"name": f"s{i}", "action": "file_size", "input": f"small/f{i % small_files:06d}.log"}
            for i in range(size_jobs)
        ],
    )
    loop = (
        "import sys,pathlib;"
        "files=sorted(pathlib.Path(sys.argv[1]).glob('*.log'));"
        "print(sum(p.read_bytes().count(b'\\n') for p in files))"
    )
    small_cases = [
        Command(
            "asyncbatch -j 4 (count_lines over a glob)",
            [*ASYNCBATCH, "run", str(glob_config), "-j", "4", "-q"],
        ),
        Command(
            "one `wc -l` over all files", [f"cd {small} && wc -l -- *.log | tail -1"], shell=True
        ),
        Command("plain Python read loop", [sys.executable, "-c", loop, str(small)]),
        Command("`xargs -P4 -n1 wc -l`", [f"cd {small} && ls | xargs -P4 -n1 wc -l"], shell=True),
    ]
    if shutil.which("parallel"):
        small_cases.append(
            Command(
                "GNU `parallel -j4 wc -l`", [f"cd {small} && ls | parallel -j4 wc -l"], shell=True
            )
        )
    return [
        Case(
            f"{small_files} files of ~4 KiB, count lines", "one `wc -l` over all files", small_cases
        ),
        Case(
            f"{size_jobs} file_size jobs (per-job overhead)",
            "python -c pass",
            [
                Command("asyncbatch -j 4", [*ASYNCBATCH, "run", str(size_config), "-j", "4", "-q"]),
                Command("python -c pass", [sys.executable, "-c", "pass"]),
            ],
        ),
        Case(
            "start-up",
            "python -c pass",
            [
                Command("asyncbatch --version", [*ASYNCBATCH, "--version"]),
                Command("python -c pass", [sys.executable, "-c", "pass"]),
            ],
        ),
    ]


def to_markdown(results: list[dict[str, object]]) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"Machine: {machine}", ""]
    for result in results:
        lines += [f"### {result['case']}", "", "| command | median s | ratio |", "|---|---|---|"]
        rows = result["rows"]
        assert isinstance(rows, list)
        for row in rows:
            lines.append(f"| {row['command']} | {row['median_s']:.3f} | {row['ratio']:.2f}x |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small-files", type=int, default=10_000)
    parser.add_argument("--size-jobs", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=Path("bench/results.json"))
    args = parser.parse_args()
    if not shutil.which("parallel"):
        print("note: GNU parallel not found (apt-get install -y parallel); its row is left out")
    with tempfile.TemporaryDirectory(prefix="asyncbatch-bench-") as temp:
        results = [
            run_case(case, args.repeat)
            for case in cases(Path(temp), args.small_files, args.size_jobs)
        ]
    print(to_markdown(results))
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
