"""A million jobs, phase by phase, against the plain-Python floor of each phase.

For each job count, two configs of ``file_size`` jobs: a JSON list (``jobs`` entries
over a handful of small files) and globs (five glob jobs over ``jobs / 5`` files).
Each phase runs our command and, in the same round, a plain sequential Python script
that does the least the phase must do (the floor):

| phase | ours | floor |
|---|---|---|
| dry run | ``run CONFIG --dry-run`` | load the config, check the names are unique |
| run | ``run CONFIG -o R -j 16 -q`` | load, ``stat`` each input, write a JSON report |
| resume | ``run ... --resume`` (all reused) | load, read the journal, ``stat``, write |
| show | ``show R`` | load the report, count the statuses |

Wall time and peak RSS (``os.wait4``) are medians over ``--repeat`` rounds; the ratio
is ours over the floor, and each row has its target (4x for the dry run, 3x for the
others; 600 MB). ``--against DIR`` runs another checkout's package too.

    python bench/phases.py [--jobs 100000,1000000] [--repeat 3] [--against DIR] [--json FILE]
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
GLOBS = 5
RSS_TARGET_MB = 600
TARGETS = {"dry run": 4.0, "run": 3.0, "resume": 3.0, "show": 3.0}

FLOOR_LOAD = """
import json, sys, os, glob
config_path = sys.argv[1]
base = os.path.dirname(os.path.abspath(config_path))
with open(config_path, encoding="utf-8") as handle:
    config = json.load(handle)
jobs = []
for job in config["jobs"]:
    pattern = job["input"]
    if "*" in pattern:
        for match in sorted(glob.glob(os.path.join(base, pattern))):
            jobs.append((job["name"] + "[" + os.path.relpath(match, base) + "]", match))
    else:
        jobs.append((job["name"], os.path.join(base, pattern)))
names = {name for name, _ in jobs}
assert len(names) == len(jobs)
"""
FLOOR = {
    "dry run": FLOOR_LOAD,
    "run": FLOOR_LOAD
    + """
results = [{"name": name, "status": "succeeded", "result": {"bytes": os.stat(path).st_size}}
           for name, path in jobs]
with open(sys.argv[2], "w", encoding="utf-8") as out:
    json.dump({"jobs": results}, out, indent=2)
""",
    "resume": FLOOR_LOAD
    + """
recorded = {}
with open(sys.argv[2] + ".journal", encoding="utf-8") as journal:
    for line in journal:
        entry = json.loads(line)
        recorded[entry["job"]["name"]] = entry
results = []
for name, path in jobs:
    os.stat(path)
    results.append(recorded[name]["job"])
with open(sys.argv[2] + ".floor", "w", encoding="utf-8") as out:
    json.dump({"jobs": results}, out, indent=2)
""",
    "show": """
import json, sys, collections
with open(sys.argv[2], encoding="utf-8") as handle:
    report = json.load(handle)
print(collections.Counter(job["status"] for job in report["jobs"]))
""",
}


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    def add(self, measured: tuple[float, float]) -> None:
        self.seconds.append(measured[0])
        self.rss_mb.append(measured[1])


def write_list(folder: Path, jobs: int) -> Path:
    for i in range(FILES):
        (folder / f"f{i}.txt").write_text("x" * (100 + i) + "\n", encoding="utf-8")
    entries = [
        {"name": f"j{i}", "action": "file_size", "input": f"f{i % FILES}.txt"} for i in range(jobs)
    ]
    config = folder / "list.json"
    config.write_text(json.dumps({"jobs": entries}), encoding="utf-8")
    return config


def write_globs(folder: Path, jobs: int) -> Path:
    files = folder / "files"
    files.mkdir()
    for i in range(jobs // GLOBS):
        (files / f"{i:07d}.txt").write_bytes(b"x\n")
    entries = [
        {"name": f"g{k}", "action": "file_size", "input": "files/*.txt"} for k in range(GLOBS)
    ]
    config = folder / "globs.json"
    config.write_text(json.dumps({"jobs": entries}), encoding="utf-8")
    return config


def measure(
    argv: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...] = (0,)
) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, which must exit as ``ok`` says."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if code not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {code}:\n{errors.decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def phase_commands(config: Path, report: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "asyncbatch"]
    run = [*cli, "run", str(config), "-j", "16", "-q", "-o", str(report)]
    return {
        "dry run": [*cli, "run", str(config), "--dry-run"],
        "run": run,
        "resume": [*run, "--resume"],
        "show": [*cli, "show", str(report)],
    }


def measure_config(
    label: str, config: Path, repeat: int, builds: dict[str, dict[str, str]]
) -> dict[str, Samples]:
    samples: dict[str, Samples] = {}
    folder = config.parent
    for round_ in range(repeat):
        for build, env in builds.items():
            report = folder / f"report-{build}.json"
            for phase, argv in phase_commands(config, report).items():
                got = measure(argv, env, folder)
                samples.setdefault(f"{build}/{phase}", Samples()).add(got)
                floor_argv = [sys.executable, "-c", FLOOR[phase], str(config), str(report)]
                floor = measure(floor_argv, env, folder)
                samples.setdefault(f"floor-{build}/{phase}", Samples()).add(floor)
                print(
                    f"  {label} {phase:<8} {build:<6} round {round_ + 1}: "
                    f"{got[0]:7.2f} s {got[1]:6.0f} MB (floor {floor[0]:6.2f} s)",
                    file=sys.stderr,
                )
    return samples


def rows_for(
    label: str, jobs: int, samples: dict[str, Samples], builds: list[str]
) -> list[dict[str, object]]:
    rows = []
    for phase, target in TARGETS.items():
        for build in builds:
            ours = samples[f"{build}/{phase}"]
            floor = samples[f"floor-{build}/{phase}"]
            seconds = statistics.median(ours.seconds)
            floor_seconds = statistics.median(floor.seconds)
            rss = statistics.median(ours.rss_mb)
            ratio = seconds / floor_seconds
            rows.append(
                {
                    "jobs": jobs,
                    "config": label,
                    "phase": phase,
                    "build": build,
                    "seconds": round(seconds, 2),
                    "floor_seconds": round(floor_seconds, 2),
                    "ratio": round(ratio, 2),
                    "target": target,
                    "rss_mb": round(rss),
                    "met": ratio <= target and rss <= RSS_TARGET_MB,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description="A million jobs against the floor, phase by phase."
    )
    parser.add_argument("--jobs", default="100000", help="comma-separated counts (1000000 too)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout (its asyncbatch package)")
    parser.add_argument("--json", type=Path, help="save the rows there")
    parser.add_argument("--configs", default="list,globs", help="list, globs or both")
    args = parser.parse_args()
    builds = {"this": {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}}
    if args.against is not None:
        builds["other"] = {**os.environ, "PYTHONPATH": str(args.against.resolve())}
    rows: list[dict[str, object]] = []
    for jobs in (int(count) for count in args.jobs.split(",")):
        for label in args.configs.split(","):
            with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
                folder = Path(tmp)
                config = write_list(folder, jobs) if label == "list" else write_globs(folder, jobs)
                samples = measure_config(label, config, args.repeat, builds)
                rows += rows_for(label, jobs, samples, list(builds))
    print(
        "\n| jobs | config | phase | build | ours | floor | ratio | target | peak RSS | met |"
        "\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for row in rows:
        print(
            f"| {row['jobs']:,} | {row['config']} | {row['phase']} | {row['build']} "
            f"| {row['seconds']} s | {row['floor_seconds']} s | {row['ratio']}x "
            f"| <= {row['target']}x | {row['rss_mb']} MB "
            f"| {'met' if row['met'] else '**not met**'} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
