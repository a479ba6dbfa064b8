"""What asyncbatch installs on each Dask worker (imported on the workers, and by the
client once a Dask executor opens): nothing a job started outlives the worker.

A cancelled attempt normally ends its program itself (SIGTERM to its process group,
SIGKILL 2 seconds later) before its task ends. A worker that closes while programs
still run (its cluster stopped by the run's end, a scheduler gone) ends them the same
way first: their groups are sessions of their own, so nothing else would. On a local
cluster, the workers are the run's own processes, in its process group: Ctrl-C in the
terminal, or the SIGHUP of a terminal that closes, reaches them too. They ignore both
and leave the decision to the run, which cancels its attempts and stops the cluster;
so does the cluster's helper process, multiprocessing's resource tracker.

A run that dies at once (a second Ctrl-C, ``kill -9``) cancels nothing: a worker of
its local cluster then exits at once too (Dask's own rule), and its programs run on.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin

from asyncbatch.errors import ExecutorUnavailable
from asyncbatch.files.programs import end_all

_CLOSING = (Status.closing, Status.closed, Status.closing_gracefully, Status.failed)


class ProgramsPlugin(WorkerPlugin):
    """Ends the running programs of a worker that closes; on the run's own local
    cluster (``own_cluster``), makes its workers ignore SIGINT and SIGHUP."""

    name = "asyncbatch-programs"
    idempotent = True  # registered once per worker, whatever the runs that share it

    def __init__(self, own_cluster: bool) -> None:
        self.own_cluster = own_cluster

    def setup(self, worker: Any) -> None:
        if self.own_cluster and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)

    def teardown(self, worker: Any) -> None:
        if worker.status in _CLOSING:  # not a plugin replaced on a worker that goes on
            end_all()


async def install_plugin(client: Any, *, own_cluster: bool) -> None:
    """Install :class:`ProgramsPlugin` on every worker of ``client``'s cluster,
    present and future. A cluster whose workers cannot take it cannot run our tasks
    either: :class:`ExecutorUnavailable`, before any job starts."""
    try:
        await client.register_plugin(ProgramsPlugin(own_cluster))
    except Exception as exc:
        raise ExecutorUnavailable(
            f"cannot prepare the Dask workers: {type(exc).__name__}: {exc}"
        ) from exc


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (a local cluster's worker processes
    use it) with SIGHUP blocked, which it keeps: it ignores Ctrl-C and SIGTERM by
    itself, but the SIGHUP of a terminal that closes would kill it (and print a
    traceback); a tracker already running is left as it is."""
    from multiprocessing import resource_tracker

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
