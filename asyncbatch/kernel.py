"""The worker-side contract of a built-in: a :class:`Kernel` is its logic written
once, as a :class:`Scanner` fed a file's bytes, so that an executor can run it however
suits the file (many small files in one thread hop, a big one streamed in chunks, in
a worker process, on a Dask worker); :class:`Tuning` holds the sizes reading works
with; :func:`route_of` says, once per job, which way its work goes.

Standard library only: worker processes import it with the kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias


@dataclass(frozen=True, slots=True)
class Tuning:
    """The sizes that reading works with. The defaults suit real files; tests pass
    tiny ones to put every chunk boundary and threshold under test."""

    chunk_bytes: int = 4 << 20
    """Bytes per read of a streamed file (two buffers of it per stream: one is
    scanned while the next is read)."""
    small_file_bytes: int = 256 << 10
    """Files up to this size are read whole, many of them in one thread hop."""
    batch_jobs: int = 64
    """Most small-file jobs one slot takes at once."""
    process_min_bytes: int = 32 << 20
    """From this size on, a kernel that holds the GIL runs in a worker process."""
    max_line_bytes: int = 32 << 20
    """Longest line a line-oriented kernel holds in memory (``LineTooLong`` beyond)."""
    accelerate: bool = True
    """Count and search with numpy and Hyperscan where they are installed; False:
    the plain standard-library loops (the reference that tests compare with)."""


DEFAULT_TUNING = Tuning()


class Scanner(Protocol):
    """One run of a kernel over one file: fed the file's bytes in order, then
    asked for the result. Raises what the action would (``LineTooLong``, say).

    ``data`` may be a buffer that is reused for the next chunk: keep a copy
    (``bytes(data[a:b])``), never ``data`` itself."""

    def update(self, data: bytes | bytearray) -> None: ...

    def result(self) -> dict[str, Any]: ...


ScannerFactory: TypeAlias = Callable[[str, int, Mapping[str, Any], Tuning], Scanner]
"""``start(path, size, params, tuning)``: a fresh scanner for the file at ``path`` (named
in error messages, never opened by the scanner) of ``size`` bytes (from ``stat``,
before anything is read); ``params`` as plain JSON values, so that a worker process
needs neither pydantic nor the params model."""


@dataclass(frozen=True, slots=True)
class Kernel:
    """A built-in's logic as the executor sees it. ``start`` must be a module-level
    callable of a module that imports only the standard library: worker processes
    import it by reference."""

    start: ScannerFactory
    reads: bool = True
    """False: the result comes from the size alone, and nothing is opened."""
    releases_gil: bool = False
    """``update`` lets other threads run (hashlib does): big files scale on threads."""
    isolated: bool = False
    """``update`` may run for ever in C code (a regex): run it only in a process that
    a timeout can kill."""
    bounded: Callable[[Mapping[str, Any]], bool] | None = None
    """For an ``isolated`` kernel: whether, with these (plain) params, ``update``
    always returns in time linear in its input (a search for plain literals), so
    that it may run in this process after all."""

    def isolated_for(self, params: Mapping[str, Any]) -> bool:
        """Whether a job with these (plain) params must run in a worker process."""
        return self.isolated and (self.bounded is None or not self.bounded(params))


Route: TypeAlias = Literal["scan", "process", "call"]
"""How a job's work runs, decided once per job (:func:`route_of`) and followed by
every executor and by a direct call of a built-in:

- ``"scan"``: its kernel over the file in this process (locally: small files many to
  one thread hop, a big file in a thread, a worker process or streamed, by its size;
  on Dask: small files many to a task);
- ``"process"``: its kernel in a worker process that a timeout can kill (a regex that
  may backtrack);
- ``"call"``: its action's async function, awaited (custom actions, ``command``)."""


def route_of(kernel: Kernel | None, params: Callable[[], Mapping[str, Any]]) -> Route:
    """The route of a job whose action has ``kernel`` (None: no kernel) and the plain
    params ``params()`` gives (asked for only when they decide: an isolated kernel)."""
    if kernel is None:
        return "call"
    if not kernel.isolated:
        return "scan"
    return "process" if kernel.isolated_for(params()) else "scan"


def big_file_route(
    kernel: Kernel, size: int, tuning: Tuning, cpus: int
) -> Literal["thread", "process", "stream"]:
    """Where a ``"scan"`` job over a file too big for a batch runs: a kernel that
    releases the GIL in a thread of its own (files hash on every core); one that
    holds it in a worker process, when the file is big enough to pay for one and a
    second core is there; else streamed in chunks."""
    if kernel.releases_gil:
        return "thread"
    if size >= tuning.process_min_bytes and cpus > 1:
        return "process"
    return "stream"
