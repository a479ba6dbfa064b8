"""Benchmarks: asyncbatch against the tools its users would otherwise reach for.

Generates its corpora deterministically under a temp folder (10,000 small files,
8 big files of 128 MiB, one 512 MiB file), warms the page cache, runs the commands
of each case alternately ``--repeat`` times, and prints a Markdown table of medians
with ratios to the case's baseline, measured in the same run on the same files,
then the performance targets, each met or not. Everything is also saved as JSON.
Shared machines are noisy: read ratios, not absolute times.

    python bench/run.py [--quick] [--repeat 5] [--json bench/results.json] [--hyperfine]
                        [--against OTHER_PYTHON]

``--quick`` shrinks every corpus (a smoke run in well under a minute). GNU parallel
and hyperfine are used when installed (``apt-get install -y parallel hyperfine``).
``--against`` adds, beside each asyncbatch row, the same command run by another
interpreter's asyncbatch (an older checkout's virtualenv, say), measured in the same
rounds on the same files: before/after comparisons free of the machine's drift.
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
from dataclasses import dataclass, field
from pathlib import Path

ASYNCBATCH = f"{sys.executable} -m asyncbatch"
INSTALL_HINT = "apt-get install -y parallel hyperfine"


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


@dataclass
class Sizes:
    small_files: int
    big_files: int
    big_mib: int
    huge_mib: int
    job_counts: tuple[int, ...]
    target_jobs: int


FULL = Sizes(10_000, 8, 128, 512, (10_000, 30_000, 100_000), 20_000)
QUICK = Sizes(1_000, 8, 8, 32, (1_000, 3_000, 10_000), 2_000)

# --- corpora ---------------------------------------------------------------------------

_WORDS = ["request", "served", "cache", "miss", "user", "session", "token", "db", "ok"]
_LEVELS = ["INFO"] * 70 + ["DEBUG"] * 20 + ["WARN"] * 7 + ["ERROR"] * 2 + ["FATAL"]


def _log_lines(rng: random.Random, size: int) -> bytes:
    """~``size`` bytes of log lines: 2% ERROR, 1% FATAL."""
    lines, total = [], 0
    while total < size:
        stamp = f"2026-11-28T12:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(4, 14)))
        line = f"{stamp} {rng.choice(_LEVELS)} {words}"
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def make_small_files(root: Path, count: int) -> Path:
    """``count`` files of ~4 KiB of log lines."""
    folder = root / "small"
    folder.mkdir()
    rng = random.Random(1)
    for i in range(count):
        (folder / f"f{i:06d}.log").write_bytes(_log_lines(rng, 4000))
    return folder


def make_big_files(root: Path, count: int, mib: int) -> Path:
    """``count`` files of ``mib`` MiB: a 4 MiB pool of lines, rotated differently in
    each repetition so no two files are alike."""
    folder = root / "big"
    folder.mkdir()
    pool = _log_lines(random.Random(2), 4 << 20)
    for i in range(count):
        with (folder / f"b{i}.log").open("wb") as out:
            written = 0
            k = 0
            while written < mib << 20:
                cut = pool.find(b"\n", (k * 7919 * 37 + i * 104729) % len(pool)) + 1
                piece = pool[cut:] + pool[:cut]
                out.write(piece[: (mib << 20) - written])
                written += len(piece)
                k += 1
    return folder


def make_huge_file(root: Path, big: Path, mib: int) -> Path:
    """One ``mib`` MiB file (for the memory bound of four jobs on it), from the big
    files' bytes."""
    path = root / "huge.log"
    with path.open("wb") as out:
        written = 0
        while written < mib << 20:
            for part in sorted(big.iterdir()):
                data = part.read_bytes()[: (mib << 20) - written]
                out.write(data)
                written += len(data)
                if written >= mib << 20:
                    break
    return path


def write_config(root: Path, name: str, jobs: list[dict[str, object]]) -> Path:
    path = root / name
    path.write_text(json.dumps({"jobs": jobs}))
    return path


def warm(paths: list[Path]) -> None:
    for top in paths:
        for path in [top] if top.is_file() else top.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    while handle.read(1 << 24):
                        pass


# --- timing ------------------------------------------------------------------------------


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


def median(case: Case, label: str) -> float:
    return statistics.median(case.times[label])


# --- the cases -----------------------------------------------------------------------------


def build_cases(root: Path, sizes: Sizes, have_parallel: bool) -> list[Case]:
    small = make_small_files(root, sizes.small_files)
    big = make_big_files(root, sizes.big_files, sizes.big_mib)
    huge = make_huge_file(root, big, sizes.huge_mib)
    warm([small, big, huge])
    run = f"{ASYNCBATCH} run"
    cases: list[Case] = []

    lines_cfg = write_config(
        root, "small.json", [{"name": "lines", "action": "count_lines", "input": "small/*.log"}]
    )
    loop = (
        "import sys,pathlib;"
        "files=sorted(pathlib.Path(sys.argv[1]).glob('*'));"
        "print(sum(p.read_bytes().count(b'\\n') for p in files))"
    )
    small_cmds = [
        Command("asyncbatch -j 4 (count_lines over a glob)", f"{run} {lines_cfg} -j 4 -q", True),
        Command("one `wc -l` over all files", f"cd {small} && wc -l -- *.log | tail -1"),
        Command("plain Python read loop", f'{sys.executable} -c "{loop}" {small}'),
        Command("`xargs -P4 -n1 wc -l`", f"cd {small} && ls | xargs -P4 -n1 wc -l"),
    ]
    if have_parallel:
        small_cmds.append(
            Command("GNU `parallel -j4 wc -l`", f"cd {small} && ls | parallel -j4 wc -l")
        )
    title = f"{sizes.small_files:,} files of ~4 KiB, count lines"
    cases.append(Case("small", title, "one `wc -l` over all files", small_cmds))

    total = sizes.big_files * sizes.big_mib
    big_jobs = {
        "count_lines": ("count_lines", {}, "xargs -P2 -n1 wc -l"),
        "checksum": ("checksum", {}, "xargs -P2 -n1 sha256sum"),
        "search_literal": (
            "search_pattern",
            {"pattern": "ERROR"},
            "xargs -P2 -n1 grep -c ERROR | cat > /dev/null",
        ),
        "search_alternation": (
            "search_pattern",
            {"pattern": "ERROR|FATAL"},
            "xargs -P2 -n1 grep -cE 'ERROR|FATAL' | cat > /dev/null",
        ),
    }
    for key, (action, params, tool) in big_jobs.items():
        cfg = write_config(
            root,
            f"big_{key}.json",
            [{"name": "big", "action": action, "input": "big/*.log", "params": params}],
        )
        baseline = f"`{tool.split(' | ')[0]}`"
        commands = [
            Command(
                f"asyncbatch -j 4 ({action} {params.get('pattern', '')})".replace(" )", ")"),
                f"{run} {cfg} -j 4 -q",
                True,
            ),
            Command(baseline, f"cd {big} && ls | {tool}"),
        ]
        if key == "count_lines":
            commands.append(Command("one `wc -l` over all files", f"cd {big} && wc -l -- *"))
        title = (
            f"{sizes.big_files} files x {sizes.big_mib} MiB = {total} MiB, {key.replace('_', ' ')}"
        )
        cases.append(Case(f"big_{key}", title, baseline, commands))

    huge_cfg = write_config(
        root,
        "huge.json",
        [
            {"name": "lines", "action": "count_lines", "input": "huge.log"},
            {"name": "words", "action": "count_words", "input": "huge.log"},
            {"name": "sum", "action": "checksum", "input": "huge.log"},
            {
                "name": "grep",
                "action": "search_pattern",
                "input": "huge.log",
                "params": {"pattern": "ERROR|FATAL"},
            },
        ],
    )
    cases.append(
        Case(
            "huge",
            f"four jobs over one {sizes.huge_mib} MiB file (memory bound)",
            "asyncbatch -j 4 (four actions)",
            [Command("asyncbatch -j 4 (four actions)", f"{run} {huge_cfg} -j 4 -q", True)],
        )
    )

    per_job = []
    for count in sorted({*sizes.job_counts, sizes.target_jobs}):
        cfg = write_config(
            root,
            f"sizes_{count}.json",
            [
                {
                    "name": f"s{i}",
                    "action": "file_size",
                    "input": f"small/f{i % sizes.small_files:06d}.log",
                }
                for i in range(count)
            ],
        )
        per_job.append(Command(f"{count:,} file_size jobs", f"{run} {cfg} -j 4 -q", True))
    per_job.append(Command("python -c pass", f"{sys.executable} -c pass"))
    cases.append(Case("jobs", "per-job overhead: file_size jobs, -j 4", "python -c pass", per_job))

    cases.append(
        Case(
            "startup",
            "start-up",
            "python -c pass",
            [
                Command("asyncbatch --version", f"{ASYNCBATCH} --version"),
                Command("python -c pass", f"{sys.executable} -c pass"),
            ],
        )
    )
    return cases


# --- the report ----------------------------------------------------------------------------


def targets(cases: dict[str, Case], sizes: Sizes) -> list[dict[str, object]]:
    """The performance targets, each with the measured figure and whether it is met."""
    found: list[dict[str, object]] = []

    def ratio(key: str, label: str, other: str) -> float:
        return median(cases[key], label) / median(cases[key], other)

    def check(name: str, value: float, goal: str, met: bool) -> None:
        found.append({"target": name, "measured": round(value, 2), "goal": goal, "met": met})

    small = cases["small"]
    ours = small.commands[0].label
    check(
        "1. small files vs xargs -P4 (x faster)",
        ratio("small", "`xargs -P4 -n1 wc -l`", ours),
        ">= 10",
        ratio("small", "`xargs -P4 -n1 wc -l`", ours) >= 10,
    )
    if any(c.label.startswith("GNU") for c in small.commands):
        value = ratio("small", "GNU `parallel -j4 wc -l`", ours)
        check("1. small files vs GNU parallel (x faster)", value, ">= 40", value >= 40)
    value = ratio("small", ours, "one `wc -l` over all files")
    check("1. small files vs one wc -l (x slower)", value, "<= 2", value <= 2)
    for key, goal, limit, slower in (
        ("big_count_lines", "<= 3", 3.0, True),
        ("big_checksum", ">= 3", 3.0, False),
        ("big_search_literal", "<= 2", 2.0, True),
        ("big_search_alternation", "<= 2", 2.0, True),
    ):
        case = cases[key]
        mine, tool = case.commands[0].label, case.commands[1].label
        value = ratio(key, mine, tool) if slower else ratio(key, tool, mine)
        word = "x slower" if slower else "x faster"
        check(
            f"2. {case.title.split(', ')[-1]} vs {tool} ({word})",
            value,
            goal,
            value <= limit if slower else value >= limit,
        )
    jobs = cases["jobs"]
    target_label = f"{sizes.target_jobs:,} file_size jobs"
    rate = sizes.target_jobs / median(jobs, target_label)
    check(f"3. {target_label} (jobs/s)", rate, ">= 15000", rate >= 15_000)
    # Linear: the marginal cost per job (time, then memory) is the same from the
    # first count to the second as from the second to the third (start-up aside).
    n0, n1, n2 = sorted(sizes.job_counts)
    for what, value_of in (
        ("time", lambda n: median(jobs, f"{n:,} file_size jobs")),
        ("peak RSS", lambda n: jobs.rss_mb.get(f"{n:,} file_size jobs", float("nan"))),
    ):
        low = (value_of(n1) - value_of(n0)) / (n1 - n0)
        high = (value_of(n2) - value_of(n1)) / (n2 - n1)
        spread = max(low, high) / min(low, high) if min(low, high) > 0 else float("nan")
        check(
            f"3. {n0:,}/{n1:,}/{n2:,} jobs: marginal {what} per job, ratio of the two steps",
            spread,
            "~1 (linear)",
            spread <= 1.5,
        )
    value = ratio("startup", "asyncbatch --version", "python -c pass")
    check("4. --version vs python -c pass (x)", value, "<= 6", value <= 6)
    huge = cases["huge"]
    rss = max(huge.rss_mb.values()) if huge.rss_mb else float("nan")
    check(f"5. peak RSS, {huge.title} (MB)", rss, "< 200", rss < 200)
    rss = jobs.rss_mb.get(f"{n2:,} file_size jobs", float("nan"))
    check(f"5. peak RSS, {n2:,} file_size jobs (MB)", rss, "< 500", rss < 500)
    return found


def to_markdown(cases: list[Case], checks: list[dict[str, object]]) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"Machine: {machine}", ""]
    for case in cases:
        base = median(case, case.baseline)
        lines += [
            f"### {case.title}",
            "",
            "| command | median s | ratio | peak RSS MB |",
            "|---|---|---|---|",
        ]
        for command in case.commands:
            value = median(case, command.label)
            rss = case.rss_mb.get(command.label)
            shown = f"{rss:.0f}" if rss is not None else ""
            lines.append(f"| {command.label} | {value:.3f} | {value / base:.2f}x | {shown} |")
        lines.append("")
    lines += [
        "### Targets",
        "",
        "| target | measured | goal | met |",
        "|---|---|---|---|",
    ]
    for check in checks:
        met = "yes" if check["met"] else "**no**"
        lines.append(f"| {check['target']} | {check['measured']} | {check['goal']} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora: a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (5; --quick: 1)")
    parser.add_argument("--json", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--hyperfine", action="store_true", help="time with hyperfine")
    parser.add_argument(
        "--against", help="another Python whose asyncbatch runs beside ours, row by row"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 5)
    have_parallel = shutil.which("parallel") is not None
    if not have_parallel:
        print(f"note: GNU parallel not found ({INSTALL_HINT}); its row is left out")
    if args.hyperfine and not shutil.which("hyperfine"):
        print(f"note: hyperfine not found ({INSTALL_HINT}); timing it ourselves")
        args.hyperfine = False
    with tempfile.TemporaryDirectory(prefix="asyncbatch-bench-") as temp:
        cases = build_cases(Path(temp), sizes, have_parallel)
        if args.against:
            add_rows_against(cases, args.against)
        for case in cases:
            print(f"running: {case.title}", file=sys.stderr)
            if args.hyperfine and case.key != "huge":
                run_case_with_hyperfine(case, repeat, Path(temp))
            else:
                run_case(case, repeat)
    checks = targets({case.key: case for case in cases}, sizes)
    print(to_markdown(cases, checks))
    results = {
        "machine": {
            "arch": platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "repeat": repeat,
        "cases": [
            {
                "case": case.title,
                "baseline": case.baseline,
                "rows": [
                    {
                        "command": command.label,
                        "shell": command.shell,
                        "median_s": round(median(case, command.label), 4),
                        "ratio": round(
                            median(case, command.label) / median(case, case.baseline), 3
                        ),
                        "peak_rss_mb": round(case.rss_mb.get(command.label, 0.0), 1),
                    }
                    for command in case.commands
                ],
            }
            for case in cases
        ],
        "targets": checks,
    }
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
