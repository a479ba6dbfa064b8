"""Where the inputs of ``asyncbatch each`` come from, besides its INPUT arguments:
standard input or files (``-a``), one per line or NUL-separated (``-0``), split into
fields (``--colsep``, ``--csv``, ``--header``), several sources combined (a product,
or ``--link``: line by line), and grouped (``-n``).

Inputs are read as bytes and kept as the file system's strings (``os.fsdecode``:
an undecodable byte is a lone surrogate), so a program gets each one's real bytes.
Every problem is a :class:`ConfigError` (exit 2, nothing run).
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from asyncbatch.errors import ConfigError

LABEL = "asyncbatch each"
RESERVED = ("input", "inputs", "name", "stem", "suffix", "parent", "config_dir", "#", "%")
"""Placeholders a header field may not be named like."""


class InputsError(ConfigError):
    """The inputs cannot be read as asked (a missing ``-a`` file, sources of unequal
    length, options that do not go together): a usage error, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(problems, source=LABEL)


@dataclass(frozen=True, slots=True)
class Entry:
    """One input: its text (the file system's string of its bytes), the fields it is
    split into (``{1}``, ``{2}``...; empty: not split), the header's names for them,
    and whether it may be a glob (only an INPUT argument may)."""

    value: str
    fields: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    glob: bool = False
    group: tuple[str, ...] = field(default=())
    """The inputs of a job that takes several (``-n``): this one first."""

    def named_fields(self) -> dict[str, str]:
        """The fields as placeholder values: by position from 1, and by header name."""
        values = {str(index): item for index, item in enumerate(self.fields, 1)}
        values.update(zip(self.names, self.fields, strict=False))
        return values


@dataclass(frozen=True, slots=True)
class Sources:
    """How ``each`` was told to read its inputs (its own options)."""

    arguments: Sequence[str] = ()
    files: Sequence[str] = ()
    null: bool = False
    link: bool = False
    colsep: str | None = None
    csv: bool = False
    header: bool = False


def read_entries(sources: Sources, stdin: BinaryIO | None = None) -> list[Entry]:
    """The inputs, in order (see the module doc); the arguments are taken as given
    (each may be a glob). Raises :class:`ConfigError`."""
    problems = _usage_problems(sources)
    if problems:
        raise InputsError(problems)
    if sources.arguments:
        if sources.colsep is None and not sources.csv:
            return [Entry(value, glob=True) for value in sources.arguments]
        return _split([list(sources.arguments)], sources)
    columns = [_read_source(name, sources, stdin) for name in sources.files or ["-"]]
    if len(columns) == 1 and sources.colsep is None and not sources.csv:
        if sources.header:
            raise InputsError(["--header needs --colsep, --csv or several -a"])
        return [Entry(value) for value in columns[0]]
    if len(columns) == 1:
        return _split(columns, sources)
    return _combined(columns, sources)


def _usage_problems(sources: Sources) -> list[str]:
    problems = []
    if sources.colsep == "":
        problems.append("--colsep: an empty separator (give the text between fields, or \\t)")
    if sources.colsep is not None and sources.csv:
        problems.append("--colsep and --csv: give only one of them")
    if sources.csv and sources.null:
        problems.append("--csv reads lines (CSV quoting spans them), not NUL-separated records")
    if sources.arguments and sources.files:
        problems.append("give INPUT arguments or -a FILE, not both")
    if sources.link and len(sources.files) < 2:
        problems.append("--link pairs the lines of several -a FILE sources: give two or more")
    if len(sources.files) > 1 and (sources.colsep is not None or sources.csv):
        problems.append("several -a sources are fields already: --colsep and --csv split one")
    return problems


def _read_source(name: str, sources: Sources, stdin: BinaryIO | None) -> list[str]:
    """The records of one source (``-`` is standard input): lines or NUL-separated,
    empty ones left out; CSV records are split later, whole."""
    data = _read_bytes(name, stdin)
    if sources.csv:
        return [os.fsdecode(data)]
    separator = b"\0" if sources.null else b"\n"
    records = []
    for record in data.split(separator):
        if not sources.null and record.endswith(b"\r"):
            record = record[:-1]
        if record:
            records.append(os.fsdecode(record))
    return records


def _read_bytes(name: str, stdin: BinaryIO | None) -> bytes:
    if name == "-":
        stream = stdin if stdin is not None else _stdin()
        return b"" if stream is None else stream.read()
    try:
        with open(name, "rb") as file:
            return file.read()
    except OSError as exc:
        reason = (
            (exc.strerror or str(exc)).lower().replace("no such file or directory", "no such file")
        )
        raise InputsError([f"-a {name!r}: {reason}"]) from None


def _stdin() -> BinaryIO | None:
    stream = sys.stdin
    if stream is None:
        return None
    return getattr(stream, "buffer", None) or io.BytesIO(stream.read().encode())


def _split(columns: list[list[str]], sources: Sources) -> list[Entry]:
    """One source's records split into fields (``--colsep``, ``--csv``), the first
    naming them with ``--header``. A CSV source read from a file is one text (a
    quoted field may span lines); INPUT arguments are a record each."""
    records = columns[0]
    if sources.csv and sources.arguments:
        rows = [tuple(next(csv.reader([record]), [])) for record in records]
        lines = list(records)
    elif sources.csv:
        text = records[0] if records else ""
        rows = [tuple(row) for row in csv.reader(io.StringIO(text, newline="")) if row]
        lines = [_csv_line(row) for row in rows]
    else:
        separator = (sources.colsep or "").replace("\\t", "\t")
        lines = list(records)
        rows = [tuple(line.split(separator)) for line in lines]
    names: tuple[str, ...] = ()
    if sources.header and rows:
        names = _header(rows[0])
        rows, lines = rows[1:], lines[1:]
    return [Entry(line, row, names) for line, row in zip(lines, rows, strict=True)]


def _csv_line(row: Sequence[str]) -> str:
    """A CSV record as its job's input: its fields joined by a space."""
    return " ".join(row)


def _combined(columns: list[list[str]], sources: Sources) -> list[Entry]:
    """Several sources: each source a field, as a product (the first varying
    slowest) or, with ``--link``, line by line."""
    names: tuple[str, ...] = ()
    if sources.header:
        names = _header(tuple(column[0] if column else "" for column in columns))
        columns = [column[1:] for column in columns]
    if sources.link:
        lengths = sorted({len(column) for column in columns})
        if len(lengths) > 1:
            counts = ", ".join(str(len(column)) for column in columns)
            raise InputsError([f"--link: the -a sources have different lengths ({counts})"])
        rows = list(zip(*columns, strict=True))
    else:
        rows = list(itertools.product(*columns))
    return [Entry(" ".join(row), tuple(row), names) for row in rows]


def _header(fields: Sequence[str]) -> tuple[str, ...]:
    """The header's field names, checked: none named like a placeholder, a number,
    or twice."""
    problems = []
    seen: set[str] = set()
    for name in fields:
        if name in RESERVED:
            problems.append(
                f"--header: a field named {name!r} would hide the placeholder {{{name}}}"
            )
        elif name.isdigit():
            problems.append(f"--header: a field named {name!r} would hide the field {{{name}}}")
        elif any(char in name for char in "{}:!"):
            problems.append(f"--header: a field named {name!r} cannot be written as a placeholder")
        elif name in seen:
            problems.append(f"--header: the field {name!r} is named twice")
        seen.add(name)
    if problems:
        raise InputsError(problems)
    return tuple(fields)


def grouped(entries: Sequence[Entry], size: int) -> list[Entry]:
    """``-n SIZE``: consecutive entries taken ``size`` at a time, each group one
    entry (its first's value) that lists them all."""
    return [
        Entry(chunk[0].value, glob=False, group=tuple(entry.value for entry in chunk))
        for chunk in (entries[start : start + size] for start in range(0, len(entries), size))
    ]
