"""What one attempt's program prints, kept for the run's display: a
:class:`~asyncbatch.registry.Streams` that the program's thread writes to as the
program prints.

- Each stream is kept in memory up to :data:`MEMORY_BYTES`, then in an anonymous
  temporary file (created unlinked: removed by the system when closed, or when the
  process ends however it ends), so memory stays bounded whatever a program prints.
- With ``--results DIR``, both streams are also written whole, as they come, to
  ``DIR/<name>/stdout`` and ``DIR/<name>/stderr`` (started afresh by each attempt).
- With ``--line-buffer``, each line is handed to the display as soon as it is whole
  (a line longer than the memory bound waits in a temporary file, still whole).

A full disk or an unwritable folder loses what could not be kept, with a warning,
never the run.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from asyncbatch.model import Resources
from asyncbatch.registry import Streams

MEMORY_BYTES = 64 << 10
"""Bytes of a stream kept in memory; past that, the stream waits in a temporary file."""
CHUNK = 1 << 20
"""Bytes read back from a temporary file at a time."""

Lines = Callable[[int, str, Iterator[bytes]], None]
"""``lines(stream, name, pieces)``: write whole lines (the concatenated ``pieces``)
of job ``name`` on our stdout (1) or stderr (2)."""


class Part:
    """The bytes of one stream: in memory, then in an anonymous temporary file."""

    __slots__ = ("_file", "_memory", "size")

    def __init__(self) -> None:
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self.size = 0

    def add(self, data: bytes | bytearray | memoryview) -> None:
        """Keep ``data``; raises ``OSError`` when the temporary file cannot take it."""
        self.size += len(data)
        if self._file is None:
            if len(self._memory) + len(data) <= MEMORY_BYTES:
                self._memory += data
                return
            self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 - kept open, closed by clear()
            self._file.write(self._memory)
            self._memory = bytearray()
        self._file.write(data)

    @property
    def spilled(self) -> bool:
        """Whether it waits in a temporary file."""
        return self._file is not None

    def chunks(self) -> Iterator[bytes]:
        """The bytes kept, from the start, a chunk at a time."""
        if self._file is None:
            if self._memory:
                yield bytes(self._memory)
            return
        self._file.seek(0)
        while chunk := self._file.read(CHUNK):
            yield chunk

    def clear(self) -> None:
        """Forget the bytes (the temporary file goes)."""
        self._memory = bytearray()
        self.size = 0
        if self._file is not None:
            file, self._file = self._file, None
            file.close()


class Capture(Streams):
    """One attempt's program output for the display (see the module doc).
    ``results`` is the folder of its complete streams (``--results``), or None;
    ``lines`` gets whole lines as they come (``--line-buffer``), else blocks wait
    for :meth:`parts`; ``warn`` hears what could not be kept."""

    def __init__(
        self,
        name: str,
        *,
        results: Path | None,
        lines: Lines | None,
        warn: Callable[[str], None],
    ) -> None:
        super().__init__()
        self.name = name
        self._results = results
        self._lines = lines
        self._warn = warn
        self._lock = threading.Lock()
        self._parts = {1: Part(), 2: Part()}
        self._files: dict[int, IO[bytes]] = {}
        self._lost = False
        self.started = False
        self.closed = False

    def start(self) -> None:
        """The program starts (in its thread): the ``--results`` files begin empty."""
        with self._lock:
            self.started = True
            if self._results is None:
                return
            try:
                self._results.mkdir(parents=True, exist_ok=True)
                for stream, file_name in ((1, "stdout"), (2, "stderr")):
                    self._files[stream] = open(self._results / file_name, "wb")  # noqa: SIM115
            except OSError as exc:
                self._close_files()
                self._results = None
                self._warn(f"--results: cannot keep the output of {self.name}: {_reason(exc)}")

    def write(self, stream: int, data: bytes) -> None:
        with self._lock:
            if self.closed:
                return
            file = self._files.get(stream)
            if file is not None:
                try:
                    file.write(data)
                except OSError as exc:
                    self._files.pop(stream).close()
                    self._warn(f"--results: cannot keep the output of {self.name}: {_reason(exc)}")
            part = self._parts[stream]
            try:
                if self._lines is None:
                    part.add(data)
                else:
                    self._line_buffered(stream, part, data)
            except OSError as exc:
                self._lose(exc)

    def _line_buffered(self, stream: int, part: Part, data: bytes) -> None:
        """Hand every line ``data`` completes to the display, whole; keep the rest."""
        assert self._lines is not None
        end = data.rfind(b"\n")
        if end < 0:
            part.add(data)
            return
        head, rest = memoryview(data)[: end + 1], memoryview(data)[end + 1 :]
        self._lines(stream, self.name, _joined(part.chunks(), head))
        part.clear()
        if rest:
            part.add(rest)

    def finish(self, details: dict[str, Any], resources: Resources | None) -> None:
        super().finish(details, resources)
        with self._lock:
            self._close_files()
            if self._lines is not None and not self.closed:
                for stream, part in self._parts.items():
                    if part.size:  # a last line without a newline: written at the end
                        self._lines(stream, self.name, part.chunks())
                        part.clear()

    def files(self) -> dict[str, str]:
        if self._results is None:
            return {}
        folder = os.path.abspath(self._results)
        return {
            "stdout_file": os.path.join(folder, "stdout"),
            "stderr_file": os.path.join(folder, "stderr"),
        }

    def parts(self) -> dict[int, Part]:
        """The two streams as kept (for a block), by stream number."""
        return self._parts

    def close(self) -> None:
        """Forget everything (the temporary files go); later writes are dropped."""
        with self._lock:
            self.closed = True
            self._close_files()
            for part in self._parts.values():
                part.clear()

    def _close_files(self) -> None:
        for file in self._files.values():
            try:
                file.close()
            except OSError as exc:
                self._warn(f"--results: cannot keep the output of {self.name}: {_reason(exc)}")
        self._files.clear()

    def _lose(self, exc: OSError) -> None:
        if not self._lost:
            self._lost = True
            self._warn(
                f"cannot keep the output of {self.name} for the display "
                f"({_reason(exc)}); the report keeps its end"
            )


def _joined(chunks: Iterator[bytes], last: memoryview) -> Iterator[bytes]:
    yield from chunks
    yield bytes(last)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
