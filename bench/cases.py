"""The cases: each a few shell commands over the same corpus, asyncbatch's first, run
side by side. ``CASES`` names them in the order they run (what ``--only`` accepts)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from corpora import (
    Sizes,
    make_big_files,
    make_huge_file,
    make_small_files,
    make_tiny_files,
    warm,
    write_config,
)
from measure import ASYNCBATCH, Case, Command

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "batch_config.json"
RUN = f"{ASYNCBATCH} run"

CASES = (
    "small",
    "big_count_lines",
    "big_count_words",
    "big_checksum",
    "big_search_literal",
    "big_search_alternation",
    "huge",
    "jobs",
    "startup",
    "commands",
    "each_output",
    "dask",
)
"""The cases' keys, in the order they run: what ``--only`` accepts. ``dask`` runs
``bench/dask_bench.py``; the others are built here."""

ONE_WC = "one `wc -l` over all files"
PYTHON_PASS = "python -c pass"
VERSION = "asyncbatch --version"
SAMPLE_RUN = "asyncbatch run data/batch_config.json -j 4"

# key: (action, params, the tool over the same files with the parallelism of 2 cores)
BIG_JOBS: dict[str, tuple[str, dict[str, str], str]] = {
    "count_lines": ("count_lines", {}, "xargs -P2 -n1 wc -l"),
    "count_words": ("count_words", {}, "xargs -P2 -n1 wc -w"),
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


def build_cases(root: Path, sizes: Sizes, have_parallel: bool, only: frozenset[str]) -> list[Case]:
    """The cases named in ``only``, in :data:`CASES` order, with the corpora they need."""
    need_small = bool(only & {"small", "jobs"})
    need_huge = "huge" in only
    need_big = need_huge or any(key.startswith("big_") for key in only)
    small = make_small_files(root, sizes.small_files) if need_small else root / "small"
    big = make_big_files(root, sizes.big_files, sizes.big_mib) if need_big else root / "big"
    huge = make_huge_file(root, big, sizes.huge_mib) if need_huge else root / "huge.log"
    tiny = [make_tiny_files(root, count) for count in sizes.commands] if "commands" in only else []
    warm([path for path in (small, big, huge, *tiny) if path.exists()])
    cases = [
        small_case(root, small, sizes, have_parallel),
        *big_cases(root, big, sizes),
        huge_case(root, sizes),
        jobs_case(root, sizes),
        startup_case(),
    ]
    if tiny:
        cases.append(commands_case(root, sizes, have_parallel, tiny))
    if "each_output" in only:
        cases.append(each_output_case(sizes, have_parallel))
    return [case for case in cases if case.key in only]


def small_case(root: Path, small: Path, sizes: Sizes, have_parallel: bool) -> Case:
    """Count the lines of every small file: one glob job against one ``wc -l``, a
    plain Python loop, ``xargs -P4`` and GNU parallel."""
    config = write_config(
        root, "small.json", [{"name": "lines", "action": "count_lines", "input": "small/*.log"}]
    )
    loop = (
        "import sys,pathlib;"
        "files=sorted(pathlib.Path(sys.argv[1]).glob('*'));"
        "print(sum(p.read_bytes().count(b'\\n') for p in files))"
    )
    commands = [
        Command("asyncbatch -j 4 (count_lines over a glob)", f"{RUN} {config} -j 4 -q", True),
        Command(ONE_WC, f"cd {small} && wc -l -- *.log | tail -1"),
        Command("plain Python read loop", f'{sys.executable} -c "{loop}" {small}'),
        Command("`xargs -P4 -n1 wc -l`", f"cd {small} && ls | xargs -P4 -n1 wc -l"),
    ]
    if have_parallel:
        commands.append(
            Command("GNU `parallel -j4 wc -l`", f"cd {small} && ls | parallel -j4 wc -l")
        )
    title = f"{sizes.small_files:,} files of ~4 KiB, count lines"
    return Case("small", title, ONE_WC, commands)


def big_cases(root: Path, big: Path, sizes: Sizes) -> list[Case]:
    """One case per action over the big files: asyncbatch ``-j 4`` first, then the
    tool (the baseline)."""
    total = sizes.big_files * sizes.big_mib
    cases = []
    for key, (action, params, tool) in BIG_JOBS.items():
        config = write_config(
            root,
            f"big_{key}.json",
            [{"name": "big", "action": action, "input": "big/*.log", "params": params}],
        )
        baseline = f"`{tool.split(' | ')[0]}`"
        ours = f"asyncbatch -j 4 ({action} {params.get('pattern', '')})".replace(" )", ")")
        commands = [
            Command(ours, f"{RUN} {config} -j 4 -q", True),
            Command(baseline, f"cd {big} && ls | {tool}"),
        ]
        if key == "count_lines":
            commands.append(Command("one `wc -l` over all files", f"cd {big} && wc -l -- *"))
        title = (
            f"{sizes.big_files} files x {sizes.big_mib} MiB = {total} MiB, {key.replace('_', ' ')}"
        )
        cases.append(Case(f"big_{key}", title, baseline, commands))
    return cases


def huge_case(root: Path, sizes: Sizes) -> Case:
    """Four jobs over one huge file: the peak RSS is the point."""
    config = write_config(
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
    label = "asyncbatch -j 4 (four actions)"
    title = f"four jobs over one {sizes.huge_mib} MiB file (memory bound)"
    return Case("huge", title, label, [Command(label, f"{RUN} {config} -j 4 -q", True)])


def jobs_case(root: Path, sizes: Sizes) -> Case:
    """Many ``file_size`` jobs: the per-job overhead in time and memory."""
    commands = []
    for count in sorted({*sizes.job_counts, sizes.target_jobs}):
        config = write_config(
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
        commands.append(Command(jobs_label(count), f"{RUN} {config} -j 4 -q", True))
    commands.append(Command(PYTHON_PASS, f"{sys.executable} -c pass"))
    return Case("jobs", "per-job overhead: file_size jobs, -j 4", PYTHON_PASS, commands)


def jobs_label(count: int) -> str:
    return f"{count:,} file_size jobs"


def startup_case() -> Case:
    """``--version`` and a run of the 4-job sample config, against the interpreter
    alone."""
    commands = [
        Command(VERSION, f"{ASYNCBATCH} --version"),
        Command(SAMPLE_RUN, f"{RUN} {SAMPLE} -j 4 -q"),
        Command(PYTHON_PASS, f"{sys.executable} -c pass"),
    ]
    return Case("startup", "start-up", PYTHON_PASS, commands)


def commands_case(root: Path, sizes: Sizes, have_parallel: bool, tiny: list[Path]) -> Case:
    """``true`` once per file: asyncbatch's ``command`` action (one glob job) against
    ``xargs -P4 -n1`` and GNU ``parallel -j4`` over the same paths; then four times
    as many jobs, for the peak RSS per added job."""
    few, many = sizes.commands
    commands = []
    for count, folder in zip(sizes.commands, tiny, strict=True):
        config = write_config(
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
        label = f"asyncbatch -j 4, {count:,} `command` jobs"
        commands.append(Command(label, f"{RUN} {config} -j 4 -q", True))
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


GIB_PRINTER = (
    "import sys\nchunk = b'x' * (1 << 20)\nfor _ in range(1024): sys.stdout.buffer.write(chunk)"
)
"""A program that prints 1 GiB on its stdout."""
EACH_LINES = "asyncbatch each -j 4, output grouped"


def each_output_case(sizes: Sizes, have_parallel: bool) -> Case:
    """``each`` as a drop-in: commands that each print a line, read from stdin and
    written to stdout (one block per job, the default), against ``xargs -P4 -n1``
    and GNU ``parallel -j4`` doing the same; and one command printing 1 GiB through
    asyncbatch, for its peak RSS."""
    count = sizes.commands[0]
    lines = f"seq {count} |"
    commands = [
        Command(EACH_LINES, f"{lines} {ASYNCBATCH} each -j 4 -q --args -- echo line > /dev/null"),
        Command("`xargs -P4 -n1 echo`", f"{lines} xargs -P4 -n1 echo line > /dev/null"),
    ]
    if have_parallel:
        commands.append(
            Command("GNU `parallel -j4 echo`", f"{lines} parallel -j4 echo line > /dev/null")
        )
    printer = f"{ASYNCBATCH} each -q --args x -- {sys.executable} -c {shlex.quote(GIB_PRINTER)}"
    commands.append(Command("asyncbatch each, 1 GiB printed", f"{printer} > /dev/null", True))
    title = f"{count:,} commands printing a line, -j 4 (and one printing 1 GiB)"
    return Case("each_output", title, commands[1].label, commands)
