"""The one batch protocol of the executors: how many ready jobs a slot may take
besides its own (:class:`More`), and how what a batch did reaches its attempts
(:class:`BatchReporter`), whether it ran in a thread here or in a task on a Dask
worker.

A batch runs its jobs one after another and tells, for each job it finished, a
:class:`~asyncbatch.files.batch.Done` (result or error, start, end, resources); at
its end a :class:`~asyncbatch.files.batch.BatchEnd` says which job it stopped at its
deadline, which file it found too big to read whole and from which position on it
started nothing. Times are the batch's own clock; the reporter maps them to this
process's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from asyncbatch.errors import Timeout

if TYPE_CHECKING:
    from asyncbatch.config import Job
    from asyncbatch.engine.executors import Attempt
    from asyncbatch.files.batch import BatchEnd, Done

SHARED_AMONG = 64
"""A slot takes an equal share of the ready jobs at most: divided among the run's
slots or, when there are more slots than this, among the workers running but at
least this many. Divided among 100,000 slots, batches would be of one file each (a
thread hop and a worker per job); divided among too few, slots would sit idle while
one batch works through a long list."""

Accept = Callable[["Job"], bool]


class ReadySource(Protocol):
    """What the scheduler offers a slot: the ready jobs that need no named limit."""

    slots: int
    """The run's slots (its concurrency, or fewer when there are fewer jobs)."""

    def workers(self) -> int:
        """Slots running now."""

    def waiting(self) -> int:
        """Ready jobs that need no named limit."""

    def take_more(self, accept: Accept, most: int, slot: int) -> list[Attempt]:
        """Up to ``most`` of them, in config order while ``accept`` holds, as
        attempts in ``slot``."""


class More:
    """``more(accept, most)``: more ready attempts for the slot of ``first``, a fair
    share at most (see :data:`SHARED_AMONG`); none when its job takes a named limit
    or more than one slot (the jobs taken would run under them)."""

    def __init__(self, source: ReadySource, first: Attempt) -> None:
        self._source = source
        self._first = first
        self.taken: list[Attempt] = []
        """Every attempt handed out so far."""

    def share(self) -> int:
        """How many ready jobs this slot may take now."""
        job = self._first.job
        if job.limits or job.slots != 1:
            return 0
        source = self._source
        return source.waiting() // min(source.slots, max(source.workers(), SHARED_AMONG))

    def __call__(self, accept: Accept, most: int) -> list[Attempt]:
        taken = self._source.take_more(accept, min(most, self.share()), self._first.slot)
        self.taken.extend(taken)
        return taken


class BatchReporter:
    """Reports a batch's jobs to their ``attempts`` (by position), at the times the
    batch measured, mapped to this process's clock by ``at`` (None: they are this
    process's times already)."""

    def __init__(self, attempts: list[Attempt], at: Callable[[float], float] | None = None) -> None:
        self._attempts = attempts
        self._at = at

    def started(self, position: int, moment: float) -> None:
        """The job at ``position`` started at ``moment``."""
        self._attempts[position].start(moment if self._at is None else self._at(moment))

    def done(self, done: Done) -> None:
        """A job finished."""
        attempt = self._attempts[done.position]
        at = self._at
        started, ended = (
            (done.started, done.ended) if at is None else (at(done.started), at(done.ended))
        )
        attempt.start(started)
        if done.error is None:
            attempt.succeed(done.result, ended, done.resources)
        else:
            attempt.fail(done.error, ended, done.resources)

    def ended(self, end: BatchEnd) -> None:
        """The batch is over: the job stopped at its deadline fails with ``Timeout``;
        the jobs after the last it reached go back to the queue (the file too big
        to read whole was reached: the executor runs it after the batch)."""
        if end.timed_out is not None:
            position, started = end.timed_out
            late = self._attempts[position]
            late.start(started if self._at is None else self._at(started))
            late.fail(Timeout(seconds=late.timeout or 0))
        for attempt in self._attempts[end.reached :]:
            attempt.give_back()
