"""Benchmarks: asyncbatch against the tools its users would otherwise reach for.

Generates its corpora deterministically under a temp folder (10,000 small files,
8 big files of 128 MiB, one 512 MiB file, 2,000 and 8,000 one-byte files for the
``command`` action's cases), warms the page cache, runs the commands of each case
alternately ``--repeat`` times, and prints a Markdown table of medians with ratios to
the case's baseline, measured in the same run on the same files, then the targets:
one row per work, asyncbatch's figure against the tool's (ratio = tool time / ours),
each met or not. The ``dask`` case runs ``bench/dask_bench.py --rows``. Everything is
saved as JSON (the rows' keys are listed in ``bench/rows.py``); ``--write-docs``
regenerates the tables of README.md and docs/benchmarks.md from it. Shared machines
are noisy: read ratios, not absolute times.

    python bench/run.py [--quick] [--repeat 5] [--json bench/results.json] [--hyperfine]
                        [--against OTHER_PYTHON] [--only CASE[,CASE...]]
    python bench/run.py --write-docs [--json bench/results.json]

``--quick`` shrinks every corpus (a smoke run in a minute or two). GNU parallel
and hyperfine are used when installed (``apt-get install -y parallel hyperfine``).
``--against`` adds, beside each asyncbatch row, the same command run by another
interpreter's asyncbatch (an older checkout's virtualenv, say), measured in the same
rounds on the same files: before/after comparisons free of the machine's drift.
``--only`` runs the named cases alone (see ``CASES``), builds only their corpora,
checks only their targets, and saves JSON only where ``--json`` says (so a partial
run never overwrites ``bench/results.json``; nor does ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import table
from cases import CASES, build_cases
from corpora import FULL, QUICK, make_big_files, make_small_files, warm
from measure import Case, add_rows_against, run_case, run_case_with_hyperfine
from rows import DASK_ROWS, ROW_KEYS, Row, extra_rows, issue_rows, not_measured

__all__ = ["CASES", "main", "make_big_files", "make_small_files", "warm"]
"""``make_big_files``, ``make_small_files`` and ``warm`` are re-exported for
``bench/dask_bench.py`` (they live in ``corpora``)."""

INSTALL_HINT = "apt-get install -y parallel hyperfine"
DASK_BENCH = Path(__file__).resolve().parent / "dask_bench.py"
DASK_TIMEOUT = 1800


def describe_machine(quick: bool, repeat: int) -> dict[str, Any]:
    """CPU, cores, Python, OS, date and load average, taken at the start of a run."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    try:
        release = platform.freedesktop_os_release()
        system = f"{release.get('PRETTY_NAME', release['NAME'])}, {system}"
    except OSError:
        pass
    argv = ["python", "bench/run.py", *_measuring_options(sys.argv[1:])]
    return {
        "cpu": cpu,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": system,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "quick": quick,
        "repeat": repeat,
        "command": shlex.join(argv),
    }


def _measuring_options(argv: list[str]) -> list[str]:
    """The command-line options without ``--json PATH``, which changes no figure."""
    kept: list[str] = []
    skip = False
    for word in argv:
        if skip or word == "--json" or word.startswith("--json="):
            skip = word == "--json"
            continue
        kept.append(word)
    return kept


def dask_rows(quick: bool, repeat: int) -> list[Row]:
    """The Dask rows from ``bench/dask_bench.py --rows``: its last line of standard
    output is a JSON list of rows. When it fails, the rows say why, and the run goes
    on."""
    argv = [sys.executable, str(DASK_BENCH), "--rows", "--repeat", str(repeat)]
    argv += ["--quick"] if quick else []
    try:
        done = subprocess.run(
            argv, stdout=subprocess.PIPE, text=True, timeout=DASK_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return [not_measured(key, type(error).__name__) for key in DASK_ROWS]
    lines = done.stdout.strip().splitlines()
    reason = f"bench/dask_bench.py exited {done.returncode}" if done.returncode else ""
    try:
        rows = json.loads(lines[-1]) if lines and not reason else None
    except json.JSONDecodeError:
        rows = None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        reason = reason or "bench/dask_bench.py printed no JSON list of rows"
        return [not_measured(key, reason) for key in DASK_ROWS]
    found = [{name: row.get(name) for name in ROW_KEYS} for row in rows]
    missing = [key for key in DASK_ROWS if key not in {row["key"] for row in found}]
    return found + [not_measured(key, "bench/dask_bench.py gave no such row") for key in missing]


def case_results(cases: list[Case]) -> list[dict[str, Any]]:
    """Every command's median, ratio to its case's baseline and peak RSS."""
    return [
        {
            "key": case.key,
            "case": case.title,
            "baseline": case.baseline,
            "rows": [
                {
                    "command": command.label,
                    "shell": command.shell,
                    "median_s": round(case.median(command.label), 4),
                    "ratio": round(case.median(command.label) / case.median(case.baseline), 3),
                    "peak_rss_mb": round(case.rss_mb.get(command.label, 0.0), 1),
                }
                for command in case.commands
            ],
        }
        for case in cases
    ]


def to_markdown(results: dict[str, Any]) -> str:
    """What a run prints: every command, then the other targets, then the rows of
    the targets table, each met or not."""
    lines = [table.machine_line(results["machine"]), ""]
    if results["cases"]:
        lines += ["### Every command, medians", "", *table.cases_table(results["cases"]), ""]
    if results["extra_rows"]:
        lines += ["### Other targets", "", *table.rows_table(results["extra_rows"], notes=True)]
        lines.append("")
    if results["rows"]:
        lines += ["### Targets", "", *table.rows_table(results["rows"], notes=True), ""]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora: a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (5; --quick: 1)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to save the results (bench/results.json; with --only or --quick: nowhere)",
    )
    parser.add_argument("--hyperfine", action="store_true", help="time with hyperfine")
    parser.add_argument(
        "--against", help="another Python whose asyncbatch runs beside ours, row by row"
    )
    parser.add_argument(
        "--only", metavar="CASE[,CASE...]", help=f"run only these cases: {', '.join(CASES)}"
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="run nothing: regenerate the tables of README.md and docs/benchmarks.md "
        "from the results (--json, or bench/results.json)",
    )
    args = parser.parse_args()
    args.cases = frozenset(CASES)
    if args.only is not None:
        args.cases = frozenset(key.strip() for key in args.only.split(",") if key.strip())
        if not args.cases or not args.cases <= set(CASES):
            unknown = ", ".join(sorted(args.cases - set(CASES))) or "none given"
            parser.error(f"--only: unknown case ({unknown}); known: {', '.join(CASES)}")
    if args.json is None and (args.write_docs or (args.only is None and not args.quick)):
        args.json = table.RESULTS
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """A SIGTERM unwinds like Ctrl-C, so the temp folder of corpora (~2 GB) goes too."""
    raise SystemExit(128 + signum)


def compile_package() -> None:
    """Write the package's bytecode first, as an install does: with
    PYTHONDONTWRITEBYTECODE set, a module whose cached bytecode is stale would be
    compiled again in every measured run."""
    package = Path(__file__).resolve().parent.parent / "asyncbatch"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args()
    if args.write_docs:
        for path in table.write_docs(args.json):
            print(f"wrote {path.relative_to(table.ROOT)}")
        return
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 5)
    compile_package()
    machine = describe_machine(args.quick, repeat)
    have_parallel = shutil.which("parallel") is not None
    if not have_parallel:
        print(f"note: GNU parallel not found ({INSTALL_HINT}); its rows are left out")
    if args.hyperfine and not shutil.which("hyperfine"):
        print(f"note: hyperfine not found ({INSTALL_HINT}); timing it ourselves")
        args.hyperfine = False
    with tempfile.TemporaryDirectory(prefix="asyncbatch-bench-") as temp:
        cases = build_cases(Path(temp), sizes, have_parallel, args.cases)
        if args.against:
            add_rows_against(cases, args.against)
        for case in cases:
            print(f"running: {case.title}", file=sys.stderr)
            if args.hyperfine and case.key not in ("huge", "commands"):  # their RSS
                run_case_with_hyperfine(case, repeat, Path(temp))
            else:
                run_case(case, repeat)
    by_key = {case.key: case for case in cases}
    rows = issue_rows(by_key, sizes)
    if "dask" in args.cases:
        print("running: bench/dask_bench.py --rows", file=sys.stderr)
        rows += dask_rows(args.quick, repeat)
    results = {
        "machine": machine,
        "quick": args.quick,
        "repeat": repeat,
        "rows": rows,
        "extra_rows": extra_rows(by_key, sizes),
        "cases": case_results(cases),
    }
    print(to_markdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()
