"""What ``--order history`` buys: a batch of a few long jobs among many short ones,
the long ones last in config order, run with ``-j 4`` in config order and, after a
first run that recorded every duration, in history order; side by side, medians.

    python bench/order.py [--repeat 5] [--short 60] [--long 2] [--seconds 2.0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def batch(folder: Path, short: int, long: int, seconds: float) -> Path:
    jobs = [
        {
            "name": f"short{i}",
            "action": "command",
            "input": ".",
            "params": {"argv": ["sleep", "0.05"]},
        }
        for i in range(short)
    ]
    jobs += [
        {
            "name": f"long{i}",
            "action": "command",
            "input": ".",
            "params": {"argv": ["sleep", str(seconds)]},
        }
        for i in range(long)
    ]
    config = folder / "batch.json"
    config.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    return config


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--short", type=int, default=60)
    parser.add_argument("--long", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = batch(folder, args.short, args.long, args.seconds)
        run = [sys.executable, "-m", "asyncbatch", "run", str(config), "-j", "4", "-q"]
        timed([*run, "-o", "report.json"], folder)  # records every duration
        times: dict[str, list[float]] = {"config": [], "history": []}
        for _ in range(args.repeat):
            times["config"].append(timed([*run, "-o", "config.json"], folder))
            times["history"].append(
                timed([*run, "-o", "report.json", "--order", "history"], folder)
            )
    config_s, history_s = (statistics.median(times[order]) for order in ("config", "history"))
    ideal = max(args.seconds, (args.short * 0.05 + args.long * args.seconds) / 4)
    print(f"{args.short} jobs of 0.05 s and {args.long} of {args.seconds} s last, -j 4, medians:")
    print("| order | wall | ratio to config order |\n|---|---|---|")
    print(f"| config | {config_s:.2f} s | 1.00 |")
    print(f"| history | {history_s:.2f} s | {history_s / config_s:.2f} |")
    print(f"(the least possible: {ideal:.2f} s)")


if __name__ == "__main__":
    main()
