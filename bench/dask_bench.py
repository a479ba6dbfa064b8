"""Benchmark of ``--executor dask``: CPU-heavy jobs, the per-job overhead, and a
simulated 16-worker cluster.

1. CPU-heavy: ``search_pattern`` ``ERROR|FATAL`` and ``checksum`` (sha256) over
   ``--files`` generated log files of ``--mib`` MiB each (4 x 64 MiB by default),
   with the local executor and with ``--executor dask`` (a local cluster of 2 worker
   processes, started and stopped by each run: its start-up is included).
2. Per-job overhead (row ``dask_tiny``): ``count_lines`` over 1 and over ``--tiny``
   (10,000) one-line files, locally and with ``--executor dask --scheduler`` on a
   local cluster of 2 single-thread worker processes that the bench starts once
   (as ``--executor dask`` alone would start for each run); the overhead per job is
   (T(N) - T(1)) / (N - 1), which leaves the start-up (interpreter, connection) out.
3. Scale (row ``dask_cluster16``): a local cluster of 16 single-thread worker
   processes runs 1,000 jobs of a custom action that waits 0.1 s
   (``sleepy_action:nap``, I/O-like) with ``-j 16``: ideally 1,000 x 0.1 / 16 =
   6.25 s. The workers import asyncbatch and the action before the clock starts, as
   those of a long-lived cluster have.

Each command runs ``--repeat`` times, alternating, after a warm-up run; medians are
printed. Corpora are generated deterministically in a temp folder (page cache
warmed).

    python bench/dask_bench.py [--files 4] [--mib 64] [--tiny 10000] [--repeat 3]
    python bench/dask_bench.py --rows [--quick] [--repeat N]

``--rows`` measures 2 and 3 only and prints, as the last line of stdout, a JSON list
of result rows; ``--quick`` runs them once each over 2,000 tiny files, without the
warm-up runs of the 10,000-job commands.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ASYNCBATCH = [sys.executable, "-m", "asyncbatch", "run", "--no-progress"]
EXECUTORS = {"local": [], "dask": ["--executor", "dask"]}
TINY_TARGET_MS = 0.5
CLUSTER_WORKERS = 16
CLUSTER_JOBS = 1000
NAP_SECONDS = 0.1
IDEAL_SECONDS = CLUSTER_JOBS * NAP_SECONDS / CLUSTER_WORKERS
WITHIN = 1.3
GROWTH = (
    "2 cores shared by client, scheduler and 16 worker processes: a simulation. "
    "Per job the client keeps an attempt while it runs, then a result and a journal "
    "line; per task (a batch of jobs) one Dask future, key and started event. Per "
    "worker the scheduler keeps a worker state, a connection and its heartbeats."
)
Case = tuple[Path, list[str]]


def _env() -> dict[str, str]:
    """This environment with the bench folder on ``PYTHONPATH`` (``sleepy_action``)."""
    paths = [str(BENCH), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


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
        env=_env(),
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{config} {extra} exited {done.returncode}:\n{done.stderr}")
    return elapsed


def medians(
    cases: dict[str, Case], jobs: int, repeat: int, warm_up: set[str] | None = None
) -> dict[str, float]:
    """Median wall seconds of each case, run alternately after one warm-up each
    (of the cases in ``warm_up`` only, when given)."""
    for label, (config, extra) in cases.items():
        if warm_up is None or label in warm_up:
            time_once(config, extra, jobs)
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(repeat):
        for label, (config, extra) in cases.items():
            times[label].append(time_once(config, extra, jobs))
    return {label: statistics.median(values) for label, values in times.items()}


def _warm_worker() -> None:
    """On each worker: import what the tasks will need, once."""
    import importlib

    importlib.import_module("asyncbatch.engine.dask")
    importlib.import_module("asyncbatch.actions")
    importlib.import_module("sleepy_action")


QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "1s",
}
"""Dask settings of the 16-worker cluster: no statistical profiler (it samples every
worker's threads every 10 ms, for a dashboard nobody watches here) and monitors at
1 s. Idle, 16 default workers burn about 0.4 of this machine's 2 cores; these, 0.05."""


@contextlib.contextmanager
def local_cluster(workers: int, *, quiet: bool = False) -> Iterator[str]:
    """A local cluster of ``workers`` single-thread worker processes that can import
    ``sleepy_action``, warmed up (and with the :data:`QUIET` settings); yields the
    scheduler's address."""
    import logging

    import dask
    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)
    os.environ["PYTHONPATH"] = _env()["PYTHONPATH"]  # the worker processes inherit it
    with (
        dask.config.set(QUIET if quiet else {}),
        distributed.LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        client.run(_warm_worker)
        yield cluster.scheduler_address


def make_tiny_files(root: Path, count: int) -> Path:
    """``count`` files of one short line each."""
    folder = root / "tiny"
    folder.mkdir()
    for i in range(count):
        (folder / f"t{i:06d}.log").write_bytes(b"tiny\n")
    return folder


def tiny_overhead(root: Path, count: int, repeat: int, jobs: int, quick: bool) -> dict[str, float]:
    """ms/job of ``count_lines`` over tiny files, by executor."""
    make_tiny_files(root, count)
    one = write_config(
        root / "one.json",
        [{"name": "lines", "action": "count_lines", "input": "tiny/t000000.log"}],
    )
    many = write_config(
        root / "many.json", [{"name": "lines", "action": "count_lines", "input": "tiny/*.log"}]
    )
    with local_cluster(2) as address:
        executors = {"local": [], "dask": ["--executor", "dask", "--scheduler", address]}
        cases = {
            f"{label}-{n}": (config, extra)
            for label, extra in executors.items()
            for n, config in ((1, one), (count, many))
        }
        print(f"Tiny jobs: count_lines, 1 vs {count} jobs, -j {jobs}, dask on 2 workers")
        warm_up = {"local-1", "dask-1"} if quick else None
        times = medians(cases, jobs, repeat, warm_up)
    per_job = {}
    for label in executors:
        t1, tn = times[f"{label}-1"], times[f"{label}-{count}"]
        per_job[label] = (tn - t1) / (count - 1) * 1000
        print(
            f"  {label:6} 1 job {t1:6.2f} s, {count} jobs {tn:6.2f} s: {per_job[label]:.3f} ms/job"
        )
    return per_job


def cluster_wall(root: Path, repeat: int) -> float:
    """Median wall seconds of 1,000 x 0.1 s jobs on 16 single-thread workers, -j 16."""
    data = root / "input.txt"
    data.write_text("x\n", encoding="utf-8")
    config = write_config(
        root / "naps.json",
        [
            {"name": f"nap-{i:04d}", "action": "sleepy_action:nap", "input": str(data)}
            for i in range(CLUSTER_JOBS)
        ],
    )
    warm_up = write_config(
        root / "warm.json",
        [
            {"name": f"nap-{i:02d}", "action": "sleepy_action:nap", "input": str(data)}
            for i in range(CLUSTER_WORKERS)
        ],
    )
    started = time.perf_counter()
    with local_cluster(CLUSTER_WORKERS, quiet=True) as address:
        print(
            f"Cluster of {CLUSTER_WORKERS} single-thread worker processes: "
            f"started in {time.perf_counter() - started:.1f} s"
        )
        extra = ["--executor", "dask", "--scheduler", address]
        start_up = time_once(warm_up, extra, CLUSTER_WORKERS)  # one job per worker
        times = [time_once(config, extra, CLUSTER_WORKERS) for _ in range(repeat)]
    wall = statistics.median(times)
    print(
        f"  {CLUSTER_JOBS} x {NAP_SECONDS} s jobs, -j {CLUSTER_WORKERS}: {wall:.2f} s "
        f"(ideal {IDEAL_SECONDS:.2f} s, x{wall / IDEAL_SECONDS:.2f}; "
        f"runs {', '.join(f'{t:.2f}' for t in times)}); "
        f"a run of {CLUSTER_WORKERS} such jobs takes {start_up:.2f} s (start-up included)"
    )
    print(f"  {GROWTH}")
    return wall


def rows(tiny: dict[str, float], wall: float, count: int) -> list[dict[str, Any]]:
    ratio = wall / IDEAL_SECONDS
    return [
        {
            "key": "dask_tiny",
            "work": "tiny jobs on --executor dask",
            "ours": round(tiny["dask"], 4),
            "unit": "ms/job",
            "tool": "local",
            "tool_value": round(tiny["local"], 4),
            "ratio": None,
            "target": f"<= {TINY_TARGET_MS} ms/job",
            "met": tiny["dask"] <= TINY_TARGET_MS,
            "note": f"count_lines, (T({count}) - T(1)) / {count - 1}, local cluster of 2 workers",
        },
        {
            "key": "dask_cluster16",
            "work": f"{CLUSTER_JOBS:,} x {NAP_SECONDS} s jobs, {CLUSTER_WORKERS} workers, "
            f"-j {CLUSTER_WORKERS}",
            "ours": round(wall, 3),
            "unit": "s",
            "tool": "ideal",
            "tool_value": IDEAL_SECONDS,
            "ratio": round(ratio, 3),
            "target": f"<= {WITHIN}x ideal",
            "met": ratio <= WITHIN,
            "note": GROWTH,
        },
    ]


def cpu_heavy(root: Path, args: argparse.Namespace) -> None:
    """Part 1: CPU-heavy jobs, each executor starting its own cluster."""
    from run import make_big_files, warm

    big = make_big_files(root, args.files, args.mib)
    warm([big])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=4, help="big files (4)")
    parser.add_argument("--mib", type=int, default=64, help="MiB per big file (64)")
    parser.add_argument("--tiny", type=int, default=None, help="tiny jobs (10000; quick 2000)")
    parser.add_argument("--repeat", type=int, default=None, help="alternating rounds (3; quick 1)")
    parser.add_argument("-j", type=int, default=4, help="max concurrency of the runs (4)")
    parser.add_argument("--rows", action="store_true", help="rows 2 and 3 only, then JSON")
    parser.add_argument("--quick", action="store_true", help="fewer tiny jobs, one round")
    args = parser.parse_args()
    count = args.tiny or (2000 if args.quick else 10000)
    repeat = args.repeat or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="asyncbatch-dask-bench-") as tmp:
        root = Path(tmp)
        if not args.rows:
            args.repeat = repeat
            (root / "heavy").mkdir()
            cpu_heavy(root / "heavy", args)
        (root / "tiny-jobs").mkdir()
        tiny = tiny_overhead(root / "tiny-jobs", count, repeat, args.j, args.quick)
        (root / "cluster").mkdir()
        wall = cluster_wall(root / "cluster", repeat)
    if args.rows:
        print(json.dumps(rows(tiny, wall, count)))


if __name__ == "__main__":
    main()
