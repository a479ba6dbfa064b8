"""What the workload controls cost the scheduler: ``file_size`` jobs (``-j 4``, no
report) with and without ``--delay 0``, ``--load 1000``, ``--memfree 1K`` (the
throttle consulted before every start, never holding one back) and weights (every
tenth job takes 2 slots, so the pools are counted by weight and heavy jobs keep
theirs), side by side, variants alternating in each round. Wall time, CPU time (user
and system, the steadier figure on a machine shared with other work) and peak RSS
(``os.wait4``'s rusage) are printed as medians in a Markdown table.

``--against DIR`` also runs the plain variant with another checkout's package
(``PYTHONPATH=DIR``, e.g. ``git archive <commit> asyncbatch | tar -x -C DIR``), in the
same rounds: the scheduler's cost per job before and after.

    python bench/controls.py [--jobs 20000] [--repeat 5] [--against DIR]
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

from scaling import FILES, write_batch

VARIANTS = {
    "plain": [],
    "--delay 0": ["--delay", "0"],
    "--load 1000": ["--load", "1000"],
    "--memfree 1K": ["--memfree", "1K"],
    "weights": [],
}


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user and system) and peak RSS (MB) of one command,
    which must succeed."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def write_weighted(folder: Path, jobs: int) -> Path:
    """The same jobs, every tenth taking 2 of the run's slots."""
    entries = [
        {"name": f"j{i}", "action": "file_size", "input": f"f{i % FILES}.txt"}
        | ({"slots": 2} if i % 10 == 0 else {})
        for i in range(jobs)
    ]
    config = folder / "weighted.json"
    config.write_text(json.dumps({"jobs": entries}), encoding="utf-8")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description="The cost of the workload controls.")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout (its asyncbatch package)")
    args = parser.parse_args()
    this = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    other = None
    if args.against is not None:
        if not (args.against / "asyncbatch" / "__init__.py").is_file():
            raise SystemExit(f"{args.against} holds no asyncbatch package")
        other = {**os.environ, "PYTHONPATH": str(args.against.resolve())}
    samples: dict[str, Samples] = {}
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        folder = Path(tmp)
        plain, weighted = write_batch(folder, args.jobs), write_weighted(folder, args.jobs)
        cli = [sys.executable, "-m", "asyncbatch", "run", "-j", "4", "-q"]
        runs = {label: ([*cli, str(plain), *extra], this) for label, extra in VARIANTS.items()}
        runs["weights"] = ([*cli, str(weighted)], this)
        if other is not None:
            runs["plain, before"] = ([*cli, str(plain)], other)
        for round_ in range(args.repeat):
            for label, (argv, env) in runs.items():
                seconds, cpu, rss = measure(argv, env, folder)
                got = samples.setdefault(label, Samples())
                got.seconds.append(seconds)
                got.cpu.append(cpu)
                got.rss_mb.append(rss)
                line = f"  {label:<14} round {round_ + 1}: {seconds:6.2f} s, {cpu:6.2f} s CPU"
                print(f"{line}, {rss:4.0f} MB", file=sys.stderr)
    print(f"{args.jobs:,} file_size jobs over {FILES} files, -j 4, {args.repeat} rounds, medians")
    print("\n| variant | time | CPU time | CPU per job | peak RSS |\n|---|---|---|---|---|")
    for label, got in samples.items():
        seconds, cpu = statistics.median(got.seconds), statistics.median(got.cpu)
        rss = statistics.median(got.rss_mb)
        per_job = cpu / args.jobs * 1e6
        print(f"| {label} | {seconds:.2f} s | {cpu:.2f} s | {per_job:.0f} us | {rss:.0f} MB |")


if __name__ == "__main__":
    main()
