"""The rows of the targets table, computed from the measured cases. Every row has
the same keys, whoever measured it (``bench/dask_bench.py --rows`` prints its own)::

    key         a stable name ("big_count_lines")
    work        what was done ("count_lines, 8 x 128 MiB")
    ours        asyncbatch's figure, in ``unit`` (None: not measured)
    unit        "s", "ms/job", "MB", "jobs/s", "KB/job" or "x"
    tool        what ours is compared with (None: nothing)
    tool_value  its figure, in ``unit``
    ratio       tool_value / ours (None when the target is on ``ours`` itself)
    target      ">= 0.5" (on the ratio), "<= 0.5 ms/job" (on ours), or None
    met         True, False, or None (not measured, or no target)
    note        why not measured, or what to read into it
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable
from typing import Any

from cases import EACH_LINES, ONE_WC, PYTHON_PASS, SAMPLE_RUN, VERSION, jobs_label
from corpora import Sizes
from measure import Case

Row = dict[str, Any]
Goal = tuple[str, float]
"""A comparison and a threshold: (">=", 0.5)."""

ROW_KEYS = ("key", "work", "ours", "unit", "tool", "tool_value", "ratio", "target", "met", "note")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
    ">": operator.gt,
}

DASK_ROWS: dict[str, Row] = {
    "dask_tiny": {
        "work": "tiny jobs on `--executor dask`",
        "unit": "ms/job",
        "tool": "the local executor",
        "target": "<= 0.5 ms/job",
    },
    "dask_cluster16": {
        "work": "1,000 x 0.1 s jobs on 16 single-thread workers, -j 16",
        "unit": "s",
        "tool": "ideal (1,000 x 0.1 s / 16)",
        "target": "<= 1.3x ideal",
    },
}
"""What the Dask rows say when ``bench/dask_bench.py`` gives none."""


def make_row(
    key: str,
    work: str,
    *,
    ours: float | None,
    unit: str,
    tool: str | None = None,
    tool_value: float | None = None,
    goal: Goal | None = None,
    on_ratio: bool = True,
    note: str = "",
) -> Row:
    """A row; the ratio is ``tool_value / ours``, and the goal applies to it (or,
    with ``on_ratio=False``, to ``ours``)."""
    usable = ours is not None and math.isfinite(ours)
    ratio = tool_value / ours if usable and tool_value is not None and ours else None
    checked = ratio if on_ratio else ours
    target = met = None
    if goal is not None:
        suffix = "" if on_ratio or unit == "x" else f" {unit}"
        target = f"{goal[0]} {goal[1]:,g}{suffix}"
        if checked is not None and math.isfinite(checked):
            met = _COMPARE[goal[0]](checked, goal[1])
    return {
        "key": key,
        "work": work,
        "ours": round(ours, 4) if usable and ours is not None else None,
        "unit": unit,
        "tool": tool,
        "tool_value": round(tool_value, 4) if tool_value is not None else None,
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target": target,
        "met": met,
        "note": note if usable else note or "not measured",
    }


def not_measured(key: str, reason: str) -> Row:
    """A Dask row that could not be measured, saying why."""
    row = dict.fromkeys(ROW_KEYS)
    return {**row, "key": key, **DASK_ROWS[key], "note": f"not measured: {reason}"}


# key: (the work, the tool, the goal on tool time / ours; None: for information)
_BIG: dict[str, tuple[str, str, Goal | None]] = {
    "count_lines": ("count_lines", "`wc -l`, xargs -P2", (">=", 0.5)),
    "search_literal": ("search `ERROR`", "`grep -c`, xargs -P2", (">=", 0.5)),
    "search_alternation": ("search `ERROR|FATAL`", "`grep -cE`, xargs -P2", (">=", 1.0)),
    "checksum": ("checksum sha256", "`sha256sum`, xargs -P2", (">=", 3.0)),
    "count_words": ("count_words", "`wc -w`, xargs -P2", None),
}


def _locale() -> str:
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        if os.environ.get(name):
            return os.environ[name]
    return "C"


def issue_rows(cases: dict[str, Case], sizes: Sizes) -> list[Row]:
    """The headline rows: asyncbatch against the tool for the same work, side by
    side, as tool time / ours."""
    rows: list[Row] = []
    size = f"{sizes.big_files} x {sizes.big_mib} MiB"
    for key, (work, tool, goal) in _BIG.items():
        case = cases.get(f"big_{key}")
        if case is None:
            continue
        ours, baseline = case.commands[0].label, case.commands[1].label
        note = ""
        if goal is None:
            note = f"wc -w decodes the characters of the locale ({_locale()})"
        rows.append(
            make_row(
                f"big_{key}",
                f"{work}, {size}",
                ours=case.median(ours),
                unit="s",
                tool=tool,
                tool_value=case.median(baseline),
                goal=goal,
                note=note,
            )
        )
    if "small" in cases:
        small = cases["small"]
        rows.append(
            make_row(
                "small_count_lines",
                f"count_lines, {sizes.small_files:,} files of ~4 KiB",
                ours=small.median(small.commands[0].label),
                unit="s",
                tool=ONE_WC,
                tool_value=small.median(ONE_WC),
                goal=(">=", 0.5),
            )
        )
    if "startup" in cases:
        startup = cases["startup"]
        python = startup.median(PYTHON_PASS)
        for key, label, least in (
            ("startup_version", VERSION, 0.16),
            ("startup_sample", SAMPLE_RUN, 0.05),
        ):
            rows.append(
                make_row(
                    key,
                    f"`{label}`",
                    ours=startup.median(label),
                    unit="s",
                    tool=f"`{PYTHON_PASS}`",
                    tool_value=python,
                    goal=(">=", least),
                )
            )
    return rows


def extra_rows(cases: dict[str, Case], sizes: Sizes) -> list[Row]:
    """The other targets: small files against xargs and GNU parallel, jobs per
    second and linear growth, peak memory, commands."""
    rows: list[Row] = []
    if "small" in cases:
        small = cases["small"]
        ours = small.median(small.commands[0].label)
        for command in small.commands[3:]:
            goal = 40.0 if command.label.startswith("GNU") else 10.0
            rows.append(
                make_row(
                    "small_vs_parallel" if goal == 40 else "small_vs_xargs",
                    f"count_lines, {sizes.small_files:,} files of ~4 KiB",
                    ours=ours,
                    unit="s",
                    tool=command.label,
                    tool_value=small.median(command.label),
                    goal=(">=", goal),
                )
            )
    if "jobs" in cases:
        rows += _jobs_rows(cases["jobs"], sizes)
    if "huge" in cases:
        huge = cases["huge"]
        rss = max(huge.rss_mb.values()) if huge.rss_mb else None
        rows.append(
            make_row(
                "huge_peak_rss",
                f"peak RSS, {huge.title.removesuffix(' (memory bound)')}",
                ours=rss,
                unit="MB",
                goal=("<", 200),
                on_ratio=False,
            )
        )
    if "commands" in cases:
        rows += _command_rows(cases["commands"], sizes)
    if "each_output" in cases:
        rows += _each_rows(cases["each_output"], sizes)
    return rows


def _each_rows(case: Case, sizes: Sizes) -> list[Row]:
    """``each`` printing a line per job, grouped: within 1.5x of xargs (a ratio of at
    least 1 / 1.5), at least 3x faster than GNU parallel; 1 GiB printed costs at
    most 64 MiB."""
    count = sizes.commands[0]
    ours = case.median(EACH_LINES)
    rows = []
    for command in case.commands[1:]:
        if command.rss:
            continue
        parallel = command.label.startswith("GNU")
        rows.append(
            make_row(
                "each_lines_vs_parallel" if parallel else "each_lines_vs_xargs",
                f"{count:,} commands printing a line, -j 4, output grouped",
                ours=ours,
                unit="s",
                tool=command.label,
                tool_value=case.median(command.label),
                goal=(">=", 3.0 if parallel else round(1 / 1.5, 3)),
            )
        )
    printer = next(command.label for command in case.commands if command.rss)
    rows.append(
        make_row(
            "each_gib_peak_rss",
            "peak RSS, `each` running one command that prints 1 GiB",
            ours=case.rss_mb.get(printer),
            unit="MB",
            goal=("<=", 67.1),
            on_ratio=False,
            note="64 MiB is 67.1 MB",
        )
    )
    return rows


def _jobs_rows(jobs: Case, sizes: Sizes) -> list[Row]:
    """Jobs per second; time and memory per job the same from the first count to the
    second as from the second to the third (linear); the peak RSS of the most."""
    n0, n1, n2 = sorted(sizes.job_counts)
    rate = sizes.target_jobs / jobs.median(jobs_label(sizes.target_jobs))
    rows = [
        make_row(
            "jobs_per_second",
            f"{sizes.target_jobs:,} `file_size` jobs, -j 4",
            ours=rate,
            unit="jobs/s",
            goal=(">=", 15_000),
            on_ratio=False,
        )
    ]
    seconds = {n: jobs.median(jobs_label(n)) for n in (n0, n1, n2)}
    megabytes = {n: jobs.rss_mb.get(jobs_label(n), math.nan) for n in (n0, n1, n2)}
    for what, value in (("time", seconds), ("peak RSS", megabytes)):
        low = (value[n1] - value[n0]) / (n1 - n0)
        high = (value[n2] - value[n1]) / (n2 - n1)
        spread = max(low, high) / min(low, high) if min(low, high) > 0 else math.nan
        note = (
            "1 is linear" if math.isfinite(spread) else "a step added nothing: too few jobs to tell"
        )
        rows.append(
            make_row(
                f"jobs_linear_{what.split()[-1].lower()}",
                f"{n0:,} / {n1:,} / {n2:,} jobs: {what} per added job, larger step / smaller",
                ours=spread,
                unit="x",
                goal=("<=", 1.5),
                on_ratio=False,
                note=note,
            )
        )
    rows.append(
        make_row(
            "jobs_peak_rss",
            f"peak RSS, {n2:,} `file_size` jobs",
            ours=jobs.rss_mb.get(jobs_label(n2)),
            unit="MB",
            goal=("<", 500),
            on_ratio=False,
        )
    )
    return rows


def _command_rows(case: Case, sizes: Sizes) -> list[Row]:
    """``true`` per input: within 2x of xargs, 3x faster than GNU parallel, and a
    peak RSS per added job within the budget of 500 MB per 100,000 jobs."""
    few, many = sizes.commands
    ours, more = (command.label for command in case.commands[:2])
    rows = []
    for command in case.commands[2:]:
        parallel = command.label.startswith("GNU")
        rows.append(
            make_row(
                "commands_vs_parallel" if parallel else "commands_vs_xargs",
                f"{few:,} `true` commands, -j 4",
                ours=case.median(ours),
                unit="s",
                tool=command.label.split(",")[0],
                tool_value=case.median(command.label),
                goal=(">=", 3.0 if parallel else 0.5),
            )
        )
    low, high = case.rss_mb.get(ours), case.rss_mb.get(more)
    per_job = (high - low) * 1024 / (many - few) if low is not None and high is not None else None
    rows.append(
        make_row(
            "commands_rss_per_job",
            f"{few:,} -> {many:,} `true` commands: peak RSS per added job",
            ours=per_job,
            unit="KB/job",
            goal=("<=", 5),
            on_ratio=False,
        )
    )
    return rows
