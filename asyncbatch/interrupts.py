"""SIGINT, SIGTERM and SIGHUP from the first line of ``asyncbatch run`` to its last.

One handler for the whole command, so that no moment is left to Python's defaults (a
``KeyboardInterrupt`` traceback, or a SIGTERM that kills before the report is
written): while the config loads, a signal stops the loading (nothing ran, nothing is
written); while the run goes on, it stops the run cleanly (running jobs cancelled,
every unfinished job ``cancelled``, the report still written); after that, while the
report is written and the summary printed, it is only remembered. Whenever it came,
the command exits 130 (SIGINT), 143 (SIGTERM) or 129 (SIGHUP: the terminal closed, an
ssh session dropped; handled as SIGTERM, so that the report is still written and no
program is left running). A second SIGINT means "now": the
process exits at once with 130, after the callbacks registered with
:meth:`Interruptions.before_exit_now` (the session registers the killing of running
programs); every finished job is already in the journal.

The command's entry point makes one :class:`Interruptions` and hands it to the
command; nothing else makes one (a command called in-process, by a test, makes its
own).

The handler runs in the main thread between two bytecodes, wherever the program is:
it only records the signal and hands the stop to the event loop with
``call_soon_threadsafe``, which is safe from there.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
"""The signals that stop a run, and the exit code each asks for (128 + its number)."""


class Interrupted(BaseException):
    """Raised by the handler to stop work that cannot be cancelled otherwise (loading
    the config). A ``BaseException``, so that no ``except Exception`` swallows it."""


class Interruptions:
    """The signal handling of one command; a context manager that installs it (in
    the main thread only: elsewhere it records nothing and changes nothing), and may
    be entered again while installed (the command's entry point installs it first
    thing, and the command enters it for its run)."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._stop: Callable[[], object] | None = None
        self._raising = False
        self._previous: dict[signal.Signals, Any] = {}
        self._depth = 0
        self._before_exit_now: list[Callable[[], object]] = []

    @property
    def exit_code(self) -> int | None:
        """130, 143 or 129 once a signal came, else None."""
        return None if self.received is None else EXIT_CODES[self.received]

    def __enter__(self) -> Interruptions:
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for signum in EXIT_CODES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def before_exit_now(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (quick, lock-free: it runs in the signal handler) before
        a second SIGINT ends the process at once."""
        self._before_exit_now.append(callback)

    def settled(self) -> None:
        """The exit code is decided: from now to the process's end, SIGINT,
        SIGTERM and SIGHUP are ignored (restoring the defaults on the way out would let one
        kill the process between the summary and its exit code; blocking them would
        not do either, since another thread may take a process-wide signal)."""
        if not self._previous:
            return  # not installed here (not the main thread)
        for signum in EXIT_CODES:
            signal.signal(signum, signal.SIG_IGN)
            self._previous[signum] = signal.SIG_IGN  # what leaving restores

    def raising(self) -> _Raising:
        """A block during which a signal raises :class:`Interrupted` (a first one;
        one that came before the block raises as the block starts)."""
        return _Raising(self)

    def stopping(self, stop: Callable[[], object]) -> _Stopping:
        """A block (in an event loop) during which a signal calls ``stop`` in that
        loop; one that came before the block calls it as the block starts."""
        return _Stopping(self, stop)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            if signum == signal.SIGINT:
                for callback in self._before_exit_now:
                    callback()
                os._exit(EXIT_CODES[signal.SIGINT])
            return
        self.received = signal.Signals(signum)
        if self._stop is not None:
            self._stop()
        elif self._raising:
            raise Interrupted


class _Raising:
    def __init__(self, owner: Interruptions) -> None:
        self._owner = owner

    def __enter__(self) -> None:
        if self._owner.received is not None:
            raise Interrupted
        self._owner._raising = True

    def __exit__(self, *exc_info: object) -> None:
        self._owner._raising = False


class _Stopping:
    def __init__(self, owner: Interruptions, stop: Callable[[], object]) -> None:
        import asyncio  # noqa: TID251 - call_soon_threadsafe: safe from a signal handler

        loop = asyncio.get_running_loop()
        self._owner = owner

        def stop_in_loop() -> None:
            loop.call_soon_threadsafe(stop)

        self._stop = stop_in_loop

    def __enter__(self) -> None:
        self._owner._stop = self._stop
        if self._owner.received is not None:
            self._stop()

    def __exit__(self, *exc_info: object) -> None:
        self._owner._stop = None
