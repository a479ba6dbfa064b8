"""The exception tree and the report's ``error.type`` vocabulary.

::

    AsyncbatchError                 anything asyncbatch raises on purpose
    ├── ConfigError                 the config cannot run: every problem, located (exit 2)
    ├── OutputError                 the report cannot be written where asked (exit 2)
    ├── NotAReport                  ``show``: the file is not a report it can read (exit 2)
    ├── ExecutorUnavailable         the Dask extra is missing, the scheduler unreachable (exit 2)
    └── JobError                    one job's failure; ``error_type`` is its report type
        ├── NotARegularFile         input is a directory, FIFO, device or socket
        ├── LineTooLong             a line-oriented action met a line over its bound
        ├── OutsideRoot             input resolves outside ``--root``
        ├── Timeout                 an attempt ran past its timeout
        ├── UnknownAction           the job names no registered action (skipped)
        ├── DependencyFailed        a dependency did not succeed (skipped)
        ├── Cancelled               the run stopped before the job finished
        ├── CommandFailed           a command exited badly, was killed, or could not start
        ├── MissingOutput           a command succeeded without creating its outputs
        └── RemoteError             an action failed elsewhere (a worker, a thread), described there

Actions raise whatever they like; :func:`describe_error` is the one place that
turns an exception into the ``{"type", "message"}`` pair of the report.

Every one of these pickles (:meth:`AsyncbatchError.__reduce__`), so a worker process
or a Dask worker raises them and the parent gets them back as they were.
"""

from __future__ import annotations

import builtins
import errno
import os
from collections.abc import Sequence
from typing import Any, ClassVar

ERROR_TYPES = (
    "FileNotFoundError",
    "PermissionError",
    "NotARegularFile",
    "LineTooLong",
    "OutsideRoot",
    "Timeout",
    "UnknownAction",
    "DependencyFailed",
    "Cancelled",
    "CommandFailed",
    "MissingOutput",
    "ActionError",
)

_UNREACHABLE = frozenset({errno.ELOOP, errno.ENOTDIR, errno.ENAMETOOLONG})
"""``OSError`` numbers meaning the path leads to no file: a symbolic link loop, a
component that is a file, a name too long. Reported as ``FileNotFoundError``, like
a dangling link."""


class AsyncbatchError(Exception):
    """Base of every error asyncbatch raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the message and the attributes, not the ``__init__`` arguments:
        subclasses take keyword-only context, which the default ``(cls, args)``
        protocol cannot pass back."""
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[AsyncbatchError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(AsyncbatchError):
    """The config is invalid. Raised by ``load_config`` with every problem found,
    each a ``"location: message"`` line, so the user fixes them all in one go."""

    def __init__(self, problems: Sequence[str], *, source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__("\n".join(f"{where}{problem}" for problem in self.problems))


class OutputError(AsyncbatchError):
    """The report (or another output) cannot be written where the user asked.
    Checked before any job starts, so an hour of work never ends in this."""

    def __init__(self, *, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot write {path}: {reason}")


class NotAReport(AsyncbatchError):
    """Raised by :func:`load_report`: the file cannot be read, or is not an
    asyncbatch report. The message starts with the path (``report.json: not an
    asyncbatch report (no "jobs" list)``); the command makes it exit 2."""

    def __init__(self, *, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ExecutorUnavailable(AsyncbatchError):
    """The executor cannot start: the extra is missing or the scheduler is
    unreachable. Raised before any job starts."""


class JobError(AsyncbatchError):
    """A job's own failure, reported under ``error_type`` in the report."""

    error_type: ClassVar[str] = "ActionError"

    def details(self) -> dict[str, Any]:
        """More for the report's error than its type and message (none by default)."""
        return {}


class CommandFailed(JobError):
    """A ``command`` job's program exited with a code it may not, was killed by a
    signal, or could not be executed. ``exit_code`` (or ``signal``, a name such as
    ``"SIGKILL"``) says how it ended, None for a program that never ran; ``output``
    is what the report's ``error.details`` keeps (the exit code or signal, the ends
    of both streams and their byte counts); ``resources`` what the program used."""

    error_type = "CommandFailed"

    def __init__(
        self,
        *,
        reason: str,
        exit_code: int | None = None,
        signal: str | None = None,
        output: dict[str, Any] | None = None,
        resources: Any = None,
    ) -> None:
        self.exit_code = exit_code
        self.signal = signal
        self.output = output
        self.resources = resources
        super().__init__(reason)

    def details(self) -> dict[str, Any]:
        return {"details": dict(self.output)} if self.output else {}


class MissingOutput(JobError):
    """A ``command`` job's program succeeded without creating every declared output."""

    error_type = "MissingOutput"

    def __init__(self, *, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        shown = ", ".join(self.paths)
        super().__init__(f"{shown}: not created by the command")


class NotARegularFile(JobError):
    """Raised by the built-in actions, after ``stat`` and before any open, when the
    input is not a regular file, so a FIFO or a device can never hang the run."""

    error_type = "NotARegularFile"

    def __init__(self, *, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        super().__init__(f"{path}: is a {kind}, not a regular file")


class LineTooLong(JobError):
    """Raised by line-oriented actions (``search_pattern``) when one line exceeds
    ``limit`` bytes: failing beats exhausting memory."""

    error_type = "LineTooLong"

    def __init__(self, *, path: str, limit: int) -> None:
        self.path = path
        self.limit = limit
        super().__init__(f"{path}: a line is longer than {limit} bytes")


class OutsideRoot(JobError):
    """The input resolves outside the directory given with ``--root``."""

    error_type = "OutsideRoot"

    def __init__(self, *, path: str, root: str) -> None:
        self.path = path
        self.root = root
        super().__init__(f"{path}: resolves outside the root {root}")


class Timeout(JobError):
    """An attempt ran past its timeout. Ours, distinct from the builtin
    ``TimeoutError`` an action may raise for its own reasons."""

    error_type = "Timeout"

    def __init__(self, *, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g} s")


class UnknownAction(JobError):
    """The job names an action nobody registered; the job is skipped."""

    error_type = "UnknownAction"

    def __init__(self, *, action: str) -> None:
        self.action = action
        super().__init__(f"unknown action {action!r}")


class DependencyFailed(JobError):
    """A job this one depends on did not succeed; this one is skipped."""

    error_type = "DependencyFailed"

    def __init__(self, *, dependency: str, status: str) -> None:
        self.dependency = dependency
        super().__init__(f"dependency {dependency!r} {status}")


class Cancelled(JobError):
    """The run was halted (fail-fast, signal) before this job finished."""

    error_type = "Cancelled"

    def __init__(self, *, reason: str = "the run was stopped") -> None:
        super().__init__(reason)


class RemoteError(JobError):
    """An action failed where its exception could not travel as itself, and was
    described there with :func:`describe_error`: in another process (a Dask worker,
    where a user's own exception may not unpickle), or in a daemon thread (a
    ``SystemExit`` or ``GeneratorExit`` would act in the awaiting coroutine). The
    report shows that description as is."""

    def __init__(self, *, error: dict[str, Any]) -> None:
        self.error = {
            str(key): value if key == "details" else str(value) for key, value in error.items()
        }
        super().__init__(self.error["message"])


def is_error_type(name: str) -> bool:
    """Whether ``name`` can be retried on: an ``error.type`` of the report
    (:data:`ERROR_TYPES`), or a built-in exception class (``OSError``,
    ``ConnectionError``...), which matches its subclasses."""
    if name in ERROR_TYPES:
        return True
    found = getattr(builtins, name, None)
    return isinstance(found, type) and issubclass(found, BaseException)


def error_type_names() -> list[str]:
    """Every name :func:`is_error_type` takes: the report's types, then the built-in
    exception classes."""
    built_in = [
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    return [*ERROR_TYPES, *sorted(set(built_in) - set(ERROR_TYPES))]


def error_matches(exc: BaseException, types: frozenset[str], exit_codes: frozenset[int]) -> bool:
    """Whether ``exc`` is one of ``types`` (its report type, or the name of its
    class or of a base class: ``OSError`` matches ``FileNotFoundError``), or carries
    an ``exit_code`` in ``exit_codes`` (a command that exited so)."""
    if exit_codes:
        code = getattr(exc, "exit_code", None)
        if type(code) is int and code in exit_codes:
            return True
    if not types:
        return False
    if any(getattr(kind, "__name__", None) in types for kind in type(exc).__mro__):
        return True
    return describe_error(exc)["type"] in types


class ProblemAt(ValueError):
    """A validator's problem located below the value it validates: ``at`` holds the
    keys and indexes from there (``("argv", 0)``), which the config's located
    message adds to the value's place (``jobs[1].params.argv[0]: ...``). Not a job's
    error: raised while a config loads."""

    def __init__(self, message: str, *, at: Sequence[str | int]) -> None:
        self.at = tuple(at)
        super().__init__(message)


def describe_error(exc: BaseException) -> dict[str, Any]:
    """Map an exception to the report's ``{"type", "message"}``; never raises.

    ``OSError`` messages name the file (as the user wrote it when the action
    passes it along) without Python's ``[Errno 2]`` noise. A path that leads to no
    file (a symbolic link loop, say) is a ``FileNotFoundError`` too. Anything else,
    ``BaseException``s such as ``SystemExit`` or a stray ``CancelledError``
    included, is an ``ActionError`` whose message starts with the exception's
    type (``SystemExit: 3``). An exception that cannot be described (its ``str()``
    raises, its ``OSError`` fields are not what they should be) is its type's name."""
    try:
        return _describe(exc)
    except BaseException:  # noqa: BLE001 - a description must never fail its job's report
        return {"type": "ActionError", "message": _type_name(exc)}


def _describe(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RemoteError):
        return dict(exc.error)
    if isinstance(exc, JobError):
        return {"type": exc.error_type, "message": str(exc), **exc.details()}
    if isinstance(exc, OSError) and (
        isinstance(exc, FileNotFoundError | PermissionError) or exc.errno in _UNREACHABLE
    ):
        kind = "FileNotFoundError" if exc.errno in _UNREACHABLE else type(exc).__name__
        reason = exc.strerror.lower() if exc.strerror else kind
        reason = reason.replace("no such file or directory", "no such file")
        name = os.fsdecode(exc.filename) if exc.filename is not None else None
        return {"type": kind, "message": f"{name}: {reason}" if name else str(exc)}
    name = _type_name(exc)
    message = str(exc)
    return {"type": "ActionError", "message": f"{name}: {message}" if message else name}


def _type_name(exc: BaseException) -> str:
    name = getattr(type(exc), "__name__", None)
    return name if isinstance(name, str) else "exception"
