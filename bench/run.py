"""Benchmarks: asyncbatch against the tools its users would otherwise reach for.

Generates its corpora deterministically under a temp folder (10,000 small files,
8 big files of 128 MiB, one 512 MiB file, 2,000 and 8,000 one-byte files for the
``command`` action's cases), warms the page cache, runs the commands
of each case alternately ``--repeat`` times, and prints a Markdown table of medians
with ratios to the case's baseline, measured in the same run on the same files,
then the performance targets, each met or not. Everything is also saved as JSON.
Shared machines are noisy: read ratios, not absolute times.

    python bench/run.py [--quick] [--repeat 5] [--json bench/results.json] [--hyperfine]
                        [--against OTHER_PYTHON] [--only CASE[,CASE...]]

``--quick`` shrinks every corpus (a smoke run in well under a minute). GNU parallel
and hyperfine are used when installed (``apt-get install -y parallel hyperfine``).
``--against`` adds, beside each asyncbatch row, the same command run by another
interpreter's asyncbatch (an older checkout's virtualenv, say), measured in the same
rounds on the same files: before/after comparisons free of the machine's drift.
``--only`` runs the named cases alone (see ``CASES``), builds only their corpora,
checks only their targets, and saves JSON only where ``--json`` says (so a partial
run never overwrites ``bench/results.json``).
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
    commands: tuple[int, int]
    """``true`` commands: against xargs and GNU parallel, then more for peak RSS."""


FULL = Sizes(10_000, 8, 128, 512, (10_000, 30_000, 100_000), 20_000, (2_000, 8_000))
QUICK = Sizes(1_000, 8, 8, 32, (1_000, 3_000, 10_000), 2_000, (200, 800))

CASES = (
    "small",
    "big_count_lines",
    "big_checksum",
    "big_search_literal",
    "big_search_alternation",
    "huge",
    "jobs",
    "startup",
    "commands",
)
"""The cases' keys, in the order they run: what ``--only`` accepts."""

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


def make_tiny_files(root: Path, count: int) -> Path:
    """``count`` files of one byte each, for programs that do not read them."""
    folder = root / f"tiny_{count}"
    folder.mkdir()
    for i in range(count):
        (folder / f"t{i:06d}.log").write_bytes(b"x")
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


def build_cases(
    root: Path, sizes: Sizes, have_parallel: bool, only: frozenset[str] = frozenset(CASES)
) -> list[Case]:
    """The cases named in ``only``, in :data:`CASES` order, with the corpora they need."""
    need_small = bool(only & {"small", "jobs"})
    need_huge = "huge" in only
    need_big = need_huge or any(key.startswith("big_") for key in only)
    small = make_small_files(root, sizes.small_files) if need_small else root / "small"
    big = make_big_files(root, sizes.big_files, sizes.big_mib) if need_big else root / "big"
    huge = make_huge_file(root, big, sizes.huge_mib) if need_huge else root / "huge.log"
    tiny = [make_tiny_files(root, count) for count in sizes.commands] if "commands" in only else []
    warm([path for path in (small, big, huge, *tiny) if path.exists()])
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

    if tiny:
        cases.append(commands_case(root, sizes, have_parallel, tiny))
    return [case for case in cases if case.key in only]


def commands_case(root: Path, sizes: Sizes, have_parallel: bool, tiny: list[Path]) -> Case:
    """``true`` once per file: asyncbatch's ``command`` action (one glob job) against
    ``xargs -P4 -n1`` and GNU ``parallel -j4`` over the same paths; then four times
    as many jobs, for the peak RSS per added job."""
    few, many = sizes.commands
    commands = []
    for count, folder in zip(sizes.commands, tiny, strict=True):
        cfg = write_config(
            root,
            f"commands_{count}.json",
            [
                {
                    "name": "true",
                    "action": "command",
                    "input": f"{folder.name}/*.log",
                    "params": {"argv": ["true", "{input}"]},
                }
            ],
        )
        commands.append(
            Command(
                f"asyncbatch -j 4, {count:,} `command` jobs",
                f"{ASYNCBATCH} run {cfg} -j 4 -q",
                True,
            )
        )
    commands.append(
        Command(f"`xargs -P4 -n1 true`, {few:,} paths", f"cd {tiny[0]} && ls | xargs -P4 -n1 true")
    )
    if have_parallel:
        commands.append(
            Command(
                f"GNU `parallel -j4 true`, {few:,} paths",
                f"cd {tiny[0]} && parallel -j4 true ::: *.log",
            )
        )
    title = f"{few:,} `true` commands, -j 4 (and {many:,} for memory)"
    return Case("commands", title, commands[len(tiny)].label, commands)


# --- the report ----------------------------------------------------------------------------


def targets(cases: dict[str, Case], sizes: Sizes) -> list[dict[str, object]]:
    """The performance targets of the cases present, each with the measured figure
    and whether it is met."""
    found: list[dict[str, object]] = []

    def ratio(key: str, label: str, other: str) -> float:
        return median(cases[key], label) / median(cases[key], other)

    def check(name: str, value: float, goal: str, met: bool) -> None:
        found.append({"target": name, "measured": round(value, 2), "goal": goal, "met": met})

    if "small" in cases:
        small = cases["small"]
        ours = small.commands[0].label
        value = ratio("small", "`xargs -P4 -n1 wc -l`", ours)
        check("1. small files vs xargs -P4 (x faster)", value, ">= 10", value >= 10)
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
        if key not in cases:
            continue
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
    n0, n1, n2 = sorted(sizes.job_counts)
    if "jobs" in cases:
        jobs = cases["jobs"]
        target_label = f"{sizes.target_jobs:,} file_size jobs"
        rate = sizes.target_jobs / median(jobs, target_label)
        check(f"3. {target_label} (jobs/s)", rate, ">= 15000", rate >= 15_000)
        # Linear: the marginal cost per job (time, then memory) is the same from the
        # first count to the second as from the second to the third (start-up aside).
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
    if "startup" in cases:
        value = ratio("startup", "asyncbatch --version", "python -c pass")
        check("4. --version vs python -c pass (x)", value, "<= 6", value <= 6)
    if "huge" in cases:
        huge = cases["huge"]
        rss = max(huge.rss_mb.values()) if huge.rss_mb else float("nan")
        check(f"5. peak RSS, {huge.title} (MB)", rss, "< 200", rss < 200)
    if "jobs" in cases:
        rss = cases["jobs"].rss_mb.get(f"{n2:,} file_size jobs", float("nan"))
        check(f"5. peak RSS, {n2:,} file_size jobs (MB)", rss, "< 500", rss < 500)
    if "commands" in cases:
        found += command_targets(cases["commands"], sizes)
    return found


def command_targets(case: Case, sizes: Sizes) -> list[dict[str, object]]:
    """6. ``true`` per input: within 2x of xargs, 3x faster than GNU parallel, and a
    peak RSS per added job within target 5's budget (500 MB / 100,000 jobs)."""
    few, many = sizes.commands
    ours, more = (command.label for command in case.commands[:2])
    tools = {command.label.split("`")[1].split()[0]: command.label for command in case.commands}
    found = []

    def check(name: str, value: float, goal: str, met: bool) -> None:
        found.append({"target": name, "measured": round(value, 2), "goal": goal, "met": met})

    value = median(case, tools["xargs"]) / median(case, ours)
    check(f"6. {few:,} commands: xargs -P4 time / ours", value, ">= 0.5", value >= 0.5)
    if "parallel" in tools:
        value = median(case, tools["parallel"]) / median(case, ours)
        check(f"6. {few:,} commands vs GNU parallel (x faster)", value, ">= 3", value >= 3)
    low, high = case.rss_mb.get(ours, float("nan")), case.rss_mb.get(more, float("nan"))
    per_job_kb = (high - low) * 1024 / (many - few)
    check(
        f"6. {few:,} -> {many:,} commands: peak RSS per added job (KB)",
        per_job_kb,
        "<= 5",
        per_job_kb <= 5,
    )
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
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to save the results (bench/results.json; with --only: nowhere)",
    )
    parser.add_argument("--hyperfine", action="store_true", help="time with hyperfine")
    parser.add_argument(
        "--against", help="another Python whose asyncbatch runs beside ours, row by row"
    )
    parser.add_argument(
        "--only",
        metavar="CASE[,CASE...]",
        help=f"run only these cases: {', '.join(CASES)}",
    )
    args = parser.parse_args()
    only = frozenset(CASES)
    if args.only is not None:
        only = frozenset(key.strip() for key in args.only.split(",") if key.strip())
        if not only or not only <= set(CASES):
            unknown = ", ".join(sorted(only - set(CASES))) or "none given"
            parser.error(f"--only: unknown case ({unknown}); known: {', '.join(CASES)}")
    if args.json is None and args.only is None:
        args.json = Path("bench/results.json")
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 5)
    have_parallel = shutil.which("parallel") is not None
    if not have_parallel:
        print(f"note: GNU parallel not found ({INSTALL_HINT}); its row is left out")
    if args.hyperfine and not shutil.which("hyperfine"):
        print(f"note: hyperfine not found ({INSTALL_HINT}); timing it ourselves")
        args.hyperfine = False
    with tempfile.TemporaryDirectory(prefix="asyncbatch-bench-") as temp:
        cases = build_cases(Path(temp), sizes, have_parallel, only)
        if args.against:
            add_rows_against(cases, args.against)
        for case in cases:
            print(f"running: {case.title}", file=sys.stderr)
            if args.hyperfine and case.key not in ("huge", "commands"):  # their RSS
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
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()
