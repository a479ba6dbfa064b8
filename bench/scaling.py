"""How time and memory grow with the number of jobs: with and without a report.

For each job count, ``file_size`` jobs over a handful of small files (``-j 4``), three
ways: (a) no ``--output``; (b) ``-o`` (the journal and the report); (c) ``-o
--resume`` after a complete run (every job reused from the journal, which is then
compacted). Each command runs ``--repeat`` times, variants alternating; wall time and
peak RSS (``os.wait4``'s rusage of that child alone, worker processes included) are
printed as medians in a Markdown table.

The package measured is this checkout's (``PYTHONPATH``, commands run from the temp
folder). ``--against DIR`` also runs every command with another checkout's package
(``PYTHONPATH=DIR``, e.g. ``git archive HEAD asyncbatch | tar -x -C DIR``), in the same
rounds on the same files: a before/after comparison free of the machine's drift.

    python bench/scaling.py [--jobs 10000,30000,100000] [--repeat 3] [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FILES = 5
VARIANTS = {"a": "no -o", "b": "-o", "c": "-o --resume"}


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


def write_batch(folder: Path, jobs: int) -> Path:
    """``jobs`` file_size jobs spread over a handful of small files."""
    for i in range(FILES):
        (folder / f"f{i}.txt").write_text("x" * (100 + i) + "\n", encoding="utf-8")
    entries = [
        {"name": f"j{i}", "action": "file_size", "input": f"f{i % FILES}.txt"} for i in range(jobs)
    ]
    config = folder / "batch.json"
    config.write_text(json.dumps({"jobs": entries}), encoding="utf-8")
    return config


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, which must succeed."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{errors.decode()}")
    return elapsed, usage.ru_maxrss / 1024


def run_count(jobs: int, repeat: int, builds: dict[str, dict[str, str]]) -> dict[str, Samples]:
    samples: dict[str, Samples] = {}
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        folder = Path(tmp)
        config = write_batch(folder, jobs)
        for round_ in range(repeat):
            for build, env in builds.items():
                out = folder / f"out-{build}.json"
                cli = [sys.executable, "-m", "asyncbatch", "run", str(config), "-j", "4", "-q"]
                argvs = {
                    "a": cli,
                    "b": [*cli, "-o", str(out)],
                    "c": [*cli, "-o", str(out), "--resume"],  # after b: all reused
                }
                for variant, argv in argvs.items():
                    seconds, rss = measure(argv, env, folder)
                    got = samples.setdefault(f"{build}/{variant}", Samples())
                    got.seconds.append(seconds)
                    got.rss_mb.append(rss)
                    print(
                        f"  {jobs:>7,} {VARIANTS[variant]:<12} {build:<6} round {round_ + 1}: "
                        f"{seconds:6.2f} s {rss:6.0f} MB",
                        file=sys.stderr,
                    )
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description="Time and peak RSS by number of jobs.")
    parser.add_argument("--jobs", default="10000,30000,100000", help="comma-separated counts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout (its asyncbatch package)")
    args = parser.parse_args()
    counts = [int(count) for count in args.jobs.split(",")]
    # Run from the temp folder, where ``-m`` finds no package: PYTHONPATH picks the build.
    builds = {"this": {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}}
    if args.against is not None:
        if not (args.against / "asyncbatch" / "__init__.py").is_file():
            raise SystemExit(f"{args.against} holds no asyncbatch package")
        builds["other"] = {**os.environ, "PYTHONPATH": str(args.against.resolve())}
    print(f"file_size jobs over {FILES} files, -j 4, {args.repeat} rounds, medians")
    rows = []
    for jobs in counts:
        samples = run_count(jobs, args.repeat, builds)
        for variant, label in VARIANTS.items():
            for build in builds:
                got = samples[f"{build}/{variant}"]
                rows.append(
                    (
                        f"{jobs:,}",
                        label,
                        build,
                        f"{statistics.median(got.seconds):.2f} s",
                        f"{statistics.median(got.rss_mb):.0f} MB",
                    )
                )
    print("\n| jobs | run | build | time | peak RSS |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
