"""What the workload controls cost the scheduler: ``file_size`` jobs (``-j 4``, no
report) with and without ``--delay 0``, ``--load 1000``, ``--memfree 1K`` (the
throttle consulted before every start, never holding one back) and weights (every
tenth job takes 2 slots, so the pools are counted by weight and heavy jobs keep
theirs), side by side, variants alternating in each round. Wall time and peak RSS
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
import sys
import tempfile
from pathlib import Path

from scaling import FILES, Samples, measure, write_batch

VARIANTS = {
    "plain": [],
    "--delay 0": ["--delay", "0"],
    "--load 1000": ["--load", "1000"],
    "--memfree 1K": ["--memfree", "1K"],
    "weights": [],
}


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
                seconds, rss = measure(argv, env, folder)
                got = samples.setdefault(label, Samples())
                got.seconds.append(seconds)
                got.rss_mb.append(rss)
                print(
                    f"  {label:<14} round {round_ + 1}: {seconds:6.2f} s {rss:6.0f} MB",
                    file=sys.stderr,
                )
    print(f"{args.jobs:,} file_size jobs over {FILES} files, -j 4, {args.repeat} rounds, medians")
    print("\n| variant | time | per job | peak RSS |\n|---|---|---|---|")
    for label, got in samples.items():
        seconds = statistics.median(got.seconds)
        per_job = seconds / args.jobs * 1e6
        rss = statistics.median(got.rss_mb)
        print(f"| {label} | {seconds:.2f} s | {per_job:.0f} us | {rss:.0f} MB |")


if __name__ == "__main__":
    main()
