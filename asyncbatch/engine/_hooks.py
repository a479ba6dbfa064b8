"""What a run asks of, and tells, the world around it: the journal it records into
(:class:`Recorder`) and the listeners that hear of starts, retries and results
(:class:`RunListener`, told through :class:`Listeners`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from asyncbatch.config import Job
    from asyncbatch.model import JobResult


class Recorder(Protocol):
    """Where finished jobs go as they end, and where earlier results come from
    (``asyncbatch.output.journal.Journal``)."""

    def reusable(self, job: Job) -> JobResult | None:
        """A recorded result to reuse instead of running ``job``, or None."""

    def record(self, result: JobResult) -> None:
        """Keep ``result`` durably; called as each job ends."""


class RunListener(Protocol):
    """What happens during a run, as it happens (progress displays); called in the
    event loop, so keep each call quick. Subclass and override what you need, or
    write a class with the three methods. Two more events are heard by a listener
    that defines them: ``job_attempt_failed(job, attempt, error)``, the exception an
    attempt raised, with its traceback where it has one (``--debug`` prints it); and
    ``starts_held(reason)``, a string saying why starts are held back (``--load``,
    ``--memfree``, ``--delay``), then None once they are not. A listener that raises
    is dropped for the rest of the run; the run goes on."""

    def job_started(self, job: Job, attempt: int) -> None:
        """An attempt of ``job`` began running (``attempt`` counts from 1)."""
        return None

    def job_retrying(self, job: Job, error: dict[str, str], delay: float) -> None:
        """An attempt failed with ``error``; the next starts in ``delay`` seconds."""
        return None

    def job_done(self, result: JobResult) -> None:
        """The job has its final result."""
        return None


class Listeners:
    """The run's listeners, each told of an event if it defines it. One that raises
    (a ``-v`` line on a closed pipe, say) is dropped for the rest of the run: the
    run's bookkeeping must never stop half-way because of it."""

    def __init__(self, listeners: Iterable[RunListener]) -> None:
        self._listeners = list(listeners)

    def tell(self, event: str, *args: Any) -> None:
        """Call ``event(*args)`` on every listener that has it."""
        for listener in list(self._listeners):
            method = getattr(listener, event, None)
            if method is None:  # a listener need not hear everything
                continue
            try:
                method(*args)
            except Exception:  # noqa: BLE001 - a listener's failure is not the run's
                self._listeners.remove(listener)
