"""What a run prints on stdout besides the summary: what programs print (``each``,
``run --show-output``), or a JSON line per finished job (``each --action``).

A :class:`Printer` is both the run's maker of streams (each attempt of an awaited
action gets a :class:`~asyncbatch.output._capture.Capture`) and a listener: when a
job ends, its block is written, the program's stdout on our stdout and its stderr
on our stderr, in the order jobs end, never interleaved with another job's (GNU
parallel's ``--group``). Only a job's last attempt prints; a reused job prints
nothing (with JSON lines: its line). Options:

- ``keep_order`` (``-k``): blocks in the jobs' order (config or input order); a
  finished job's block waits, in one anonymous temporary file, for those before it;
- ``line_buffer``: each line written as soon as it is whole (with a retried job,
  every attempt's lines are already out);
- ``tag``: every line written prefixed by the job's name and a tab;
- ``results``: each job's complete streams in ``DIR/<name>/stdout`` and ``stderr``.

Memory stays bounded whatever is printed (see :mod:`._capture`). A stdout that
cannot take what is written (closed, a full disk) is noted once (:attr:`failure`)
and written no more; the run goes on and the command exits 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from asyncbatch.output._capture import CHUNK, Capture, Part

if TYPE_CHECKING:
    from asyncbatch.config import BatchConfig, Job
    from asyncbatch.model import JobResult
    from asyncbatch.options import RunOptions

Mode = Literal["output", "results", "summary"]
"""What stdout gets: programs' output, a JSON line per job, or neither (the summary
is printed after the run; ``--results`` files are still written)."""
Pieces = list[tuple[int, Iterable[bytes]]]
"""A job's block: the bytes for our stdout (1) and stderr (2), in order."""

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._,+=@#()\[\]-]|^\.")
_LONGEST = 120


def result_folder_name(name: str) -> str:
    """A job's name as one safe file name, distinct for distinct names: each byte that
    could mislead (``/``, ``%``, controls, a leading dot, anything not plainly
    printable) written ``%XX``; a long one cut and ended by a digest of the whole."""
    raw = os.fsencode(name)
    text = "".join(
        chr(byte) if not _UNSAFE.match(chr(byte)) or (byte == 0x2E and index) else f"%{byte:02X}"
        for index, byte in enumerate(raw)
    )
    if len(text) > _LONGEST:
        text = text[:_LONGEST] + "~" + hashlib.sha256(raw).hexdigest()[:16]
    return text


def open_printer(
    stack: contextlib.AsyncExitStack,
    config: BatchConfig,
    options: RunOptions,
    warn: Callable[[str], None],
) -> Printer | None:
    """The printer the options ask for, closed with ``stack``: what the jobs print on
    stdout, and their complete streams under ``--results`` (None: neither)."""
    mode = options.stdout or "summary"
    if mode == "summary" and options.results is None:
        return None
    printer = Printer(
        config.jobs,
        mode=mode,
        keep_order=options.keep_order,
        line_buffer=options.line_buffer,
        tag=options.tag,
        results=options.results,
        warn=warn,
    )
    stack.callback(printer.close)
    return printer


def prints_to_terminal(options: RunOptions) -> bool:
    """Whether what the jobs print goes to a terminal: it is the display there, so no
    live progress is drawn over it unless asked for."""
    if options.progress is not None or options.stdout not in ("output", "results"):
        return False
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except ValueError:  # closed
        return False


class Terminal:
    """Our stdout and stderr as bytes, written under one lock; each looked up at
    every write (a live display replaces stderr with one that prints above it, as
    text). A stdout that fails is noted once and written no more (it is pointed at
    ``/dev/null``, so the interpreter's last flush cannot fail either)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failure: str | None = None

    def write(self, stream: int, chunks: Iterable[bytes]) -> None:
        """Write ``chunks`` on stdout (1) or stderr (2); the caller holds :attr:`lock`."""
        target = sys.stdout if stream == 1 else sys.stderr
        if stream == 1 and (self.failure is not None or target is None):
            if self.failure is None:
                self.failure = "cannot write to standard output: it is closed"
            for _ in chunks:  # a block read from a file is still read through
                pass
            return
        if target is None:
            return
        buffer = getattr(target, "buffer", None)
        try:
            target.flush()  # our own text first, in order
            for chunk in chunks:
                if buffer is not None:
                    buffer.write(chunk)
                else:
                    target.write(chunk.decode("utf-8", "replace"))
            (buffer if buffer is not None else target).flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed stream
            if stream == 1:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self.failure = f"cannot write to standard output: {reason}"
                _discard(target)


class Printer:
    """See the module doc. ``jobs`` in the run's order (for ``keep_order``); ``warn``
    hears what could not be kept (a full disk, an unwritable ``--results``)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        mode: Mode,
        keep_order: bool = False,
        line_buffer: bool = False,
        tag: bool = False,
        results: Path | None = None,
        warn: Callable[[str], None] = lambda message: None,
    ) -> None:
        self._mode = mode
        self._tag = tag
        self._line_buffer = line_buffer and mode == "output"
        self._results = results
        self._warn = warn
        self.terminal = Terminal()
        self._captures: dict[str, Capture] = {}
        self._order = {job.name: i for i, job in enumerate(jobs)} if keep_order else None
        self._next = 0
        self._held: dict[int, list[tuple[int, int, int]]] = {}
        self._held_file: IO[bytes] | None = None

    @property
    def failure(self) -> str | None:
        """Why stdout could not take what was written (None: it took it all)."""
        return self.terminal.failure

    # --- the streams of each attempt --------------------------------------------------

    def open(self, job: Job) -> Capture:
        """A new attempt's streams: the job's earlier attempt's output is dropped."""
        earlier = self._captures.pop(job.name, None)
        if earlier is not None:
            earlier.close()
        results = None
        if self._results is not None:
            results = self._results / result_folder_name(job.name)
        capture = Capture(
            job.name,
            results=results,
            lines=self._lines if self._line_buffer else None,
            warn=self._warn,
        )
        self._captures[job.name] = capture
        return capture

    def _lines(self, stream: int, name: str, pieces: Iterator[bytes]) -> None:
        """Whole lines from a program's thread (``--line-buffer``)."""
        with self.terminal.lock:
            self.terminal.write(stream, self._tagged(name, pieces))

    # --- the listener --------------------------------------------------------------------

    def job_started(self, job: Job, attempt: int) -> None:
        return None

    def job_retrying(self, job: Job, error: dict[str, Any], delay: float) -> None:
        return None

    def job_done(self, result: JobResult) -> None:
        capture = self._captures.pop(result.name, None)
        try:
            pieces = self._block(result, capture)
            if self._order is None:
                self._emit(result.name, pieces)
                return
            position = self._order.get(result.name, self._next)
            if position != self._next:
                self._hold(position, result.name, pieces)
                return
            self._emit(result.name, pieces)
            self._next += 1
            while self._next in self._held:
                self._emit_held(self._next)
                self._next += 1
        finally:
            if capture is not None:
                capture.close()

    def _block(self, result: JobResult, capture: Capture | None) -> Pieces:
        """What job ``result`` prints: its program's streams, or its JSON line."""
        if self._mode == "results":
            return [(1, [_json_line(result)])]
        if self._mode != "output" or result.reused:
            return []
        if capture is not None and capture.started:
            if self._line_buffer:  # written as it came
                return []
            return [(stream, part.chunks()) for stream, part in capture.parts().items()]
        if capture is not None:  # it ran elsewhere (a Dask worker): the ends it kept
            kept = result.result or (result.error or {}).get("details") or {}
            return [
                (stream, [kept[key].encode("utf-8")])
                for stream, key in ((1, "stdout"), (2, "stderr"))
                if isinstance(kept.get(key), str) and kept[key]
            ]
        return []

    def _emit(self, name: str, pieces: Pieces) -> None:
        if not pieces:
            return
        with self.terminal.lock:
            for stream, chunks in pieces:
                self.terminal.write(stream, self._tagged(name, chunks))

    def _tagged(self, name: str, chunks: Iterable[bytes]) -> Iterable[bytes]:
        if not self._tag or self._mode != "output":
            return chunks
        return _prefixed(chunks, os.fsencode(name) + b"\t")

    # --- blocks held back by keep_order ---------------------------------------------------

    def _hold(self, position: int, name: str, pieces: Pieces) -> None:
        """Keep a block in the held file until the jobs before it have printed."""
        segments = []
        try:
            if self._held_file is None:
                self._held_file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 - closed by close()
            file = self._held_file
            for stream, chunks in pieces:
                file.seek(0, os.SEEK_END)
                start = file.tell()
                for chunk in self._tagged(name, chunks):
                    file.write(chunk)
                segments.append((stream, start, file.tell() - start))
        except OSError as exc:
            self._warn(f"cannot hold the output of {name} back: {exc.strerror or exc}")
        self._held[position] = segments

    def _emit_held(self, position: int) -> None:
        segments = self._held.pop(position)
        file = self._held_file
        if not segments or file is None:
            return
        with self.terminal.lock:
            for stream, start, length in segments:
                self.terminal.write(stream, _read(file, start, length))

    def close(self) -> None:
        """Drop every capture and the held file (their temporary files go)."""
        for capture in self._captures.values():
            capture.close()
        self._captures.clear()
        if self._held_file is not None:
            file, self._held_file = self._held_file, None
            with contextlib.suppress(OSError):
                file.close()


def check_results_folder(
    folder: Path, jobs: Sequence[Job], reports: Sequence[Path | None], create: bool
) -> None:
    """Raise ``OutputError`` unless ``--results DIR`` can hold the jobs' streams
    without destroying anything: DIR is a folder or absent, never a file, an input
    of the batch, nor a folder holding a report (``-o``, ``--junit``); with
    ``create``, it is made (with its parents)."""
    from asyncbatch.errors import OutputError

    label = os.fspath(folder)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise OutputError(path=label, reason="is not a folder; --results needs one (or a new name)")
    real = os.path.realpath(folder)
    for report in reports:
        if report is not None and _within(os.path.realpath(report), real):
            raise OutputError(path=label, reason=f"holds the report {os.fspath(report)}")
    for job in jobs:
        if job.spec is not None and job.spec.input == "none":
            continue
        if os.path.realpath(job.path) == real:
            raise OutputError(path=label, reason=f"is an input of the batch (job {job.name!r})")
    if create:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise OutputError(path=label, reason=exc.strerror or str(exc)) from None


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _json_line(result: JobResult) -> bytes:
    line: dict[str, Any] = {"name": result.name, "status": result.status}
    if result.error is None:
        line["result"] = result.result
    else:
        line["error"] = result.error
    return (json.dumps(line) + "\n").encode("ascii")


def _prefixed(chunks: Iterable[bytes], prefix: bytes) -> Iterator[bytes]:
    """``chunks`` with ``prefix`` before every line (a last one without a newline too)."""
    start = True
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        out = bytearray()
        for piece in pieces[:-1]:
            if start:
                out += prefix
            out += piece
            out += b"\n"
            start = True
        if pieces[-1]:
            if start:
                out += prefix
            out += pieces[-1]
            start = False
        yield bytes(out)


def _read(file: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    file.seek(start)
    while length > 0:
        chunk = file.read(min(CHUNK, length))
        if not chunk:
            return
        length -= len(chunk)
        yield chunk


def _discard(stream: Any) -> None:
    """Point a broken stream's descriptor at /dev/null (see :class:`Terminal`)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


__all__ = [
    "Mode",
    "Part",
    "Printer",
    "Terminal",
    "check_results_folder",
    "open_printer",
    "prints_to_terminal",
    "result_folder_name",
]
