"""Benchmark of ``--executor dask``: CPU-heavy jobs and the per-job overhead.

1. CPU-heavy: ``search_pattern`` ``ERROR|FATAL`` and ``checksum`` (sha256) over
   ``--files`` generated log files of ``--mib`` MiB each (4 x 64 MiB by default),
   with the local executor and with ``--executor dask`` (a local cluster of 2 worker
   processes, started and stopped by each run: its start-up is included).
2. Per-job overhead: ``file_size`` over 1 and over ``--tiny`` small files with each
   executor; the overhead per job is (T(N) - T(1)) / (N - 1), which leaves the
   start-up (interpreter, cluster) out.

Each command runs ``--repeat`` times, alternating, after a warm-up run; medians are
printed. Corpora are generated deterministically in a temp folder (page cache
warmed).

    python bench/dask_bench.py [--files 4] [--mib 64] [--tiny 500] [--repeat 3]
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

from run import make_big_files, make_small_files, warm

ASYNCBATCH = [sys.executable, "-m", "asyncbatch", "run", "--no-progress"]
EXECUTORS = {"local": [], "dask": ["--executor", "dask"]}


def write_config(path: Path, jobs: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"jobs": jobs}), encoding="utf-8")
    return path


def time_once(config: Path, extra: list[str], jobs: int) -> float:
    """Wall seconds of one run of ``config``; every job must succeed."""
    out = config.with_suffix(".report.json")
    started = time.perf_counter()
    done = subprocess.run(
        [*ASYNCBATCH, str(config), "-o", str(out), "-j", str(jobs), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{config} {extra} exited {done.returncode}:\n{done.stderr}")
    return elapsed


def medians(cases: dict[str, tuple[Path, list[str]]], jobs: int, repeat: int) -> dict[str, float]:
    """Median wall seconds of each case, run alternately after one warm-up each."""
    for config, extra in cases.values():
        time_once(config, extra, jobs)
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(repeat):
        for label, (config, extra) in cases.items():
            times[label].append(time_once(config, extra, jobs))
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=4, help="big files (4)")
    parser.add_argument("--mib", type=int, default=64, help="MiB per big file (64)")
    parser.add_argument("--tiny", type=int, default=500, help="tiny jobs (500)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("-j", type=int, default=4, help="max concurrency of the runs (4)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="asyncbatch-dask-bench-") as tmp:
        root = Path(tmp)
        big = make_big_files(root, args.files, args.mib)
        small = make_small_files(root, args.tiny)
        warm([big, small])

        heavy = write_config(
            root / "heavy.json",
            [
                {
                    "name": "errors",
                    "action": "search_pattern",
                    "input": "big/*.log",
                    "params": {"pattern": "ERROR|FATAL"},
                },
                {"name": "sums", "action": "checksum", "input": "big/*.log"},
            ],
        )
        print(f"CPU-heavy: {args.files} x {args.mib} MiB, search_pattern + checksum, -j {args.j}")
        heavy_times = medians(
            {label: (heavy, extra) for label, extra in EXECUTORS.items()}, args.j, args.repeat
        )
        for label, seconds in heavy_times.items():
            print(f"  {label:6} {seconds:7.2f} s")
        print(f"  speed-up of dask: x{heavy_times['local'] / heavy_times['dask']:.2f}")

        one = write_config(
            root / "one.json",
            [{"name": "size", "action": "file_size", "input": "small/f000000.log"}],
        )
        many = write_config(
            root / "many.json", [{"name": "size", "action": "file_size", "input": "small/*.log"}]
        )
        cases = {
            f"{label}-{count}": (config, extra)
            for label, extra in EXECUTORS.items()
            for count, config in ((1, one), (args.tiny, many))
        }
        print(f"Tiny jobs: file_size, 1 vs {args.tiny} jobs, -j {args.j}")
        tiny_times = medians(cases, args.j, args.repeat)
        for label in EXECUTORS:
            t1, tn = tiny_times[f"{label}-1"], tiny_times[f"{label}-{args.tiny}"]
            per_job = (tn - t1) / (args.tiny - 1) * 1000
            print(
                f"  {label:6} 1 job {t1:6.2f} s, {args.tiny} jobs {tn:6.2f} s: {per_job:.2f} ms/job"
            )


if __name__ == "__main__":
    main()
