"""The config's shape: pydantic models of the file as written (strict, unknown keys
refused) and the dataclasses of a loaded, expanded config that a run takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from asyncbatch.config._problems import did_you_mean
from asyncbatch.errors import ERROR_TYPES, error_type_names, is_error_type
from asyncbatch.registry import JobContext

if TYPE_CHECKING:
    from asyncbatch.kernel import Route
    from asyncbatch.registry import ActionSpec, Streams

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Retries = Annotated[int, Field(ge=0, le=1000)]
Slots = Annotated[int, Field(ge=1)]

_KNOWN_TYPES = ", ".join(ERROR_TYPES)


def _retry_item(value: Any) -> int | str:
    """One entry of ``retry_on``: an error type, or a command's exit code."""
    if type(value) is int:
        if not 0 <= value <= 255:
            raise ValueError(f"exit code {value} is not between 0 and 255")
        return value
    if type(value) is not str:
        raise ValueError("expected an error type (a string) or an exit code (an integer)")
    if not is_error_type(value):
        hint = did_you_mean(value, error_type_names())
        raise ValueError(
            f"unknown error type {value!r}{hint} (known: {_KNOWN_TYPES}, or a built-in "
            "exception such as OSError or ConnectionError)"
        )
    return value


RetryItem = Annotated[
    int | str,
    PlainValidator(_retry_item),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0, "maximum": 255}]}
    ),
]


def _limits(value: Any) -> list[str] | dict[str, int]:
    """A job's ``limits``: names (one slot of each) or names with weights (checked
    against the pools when the config loads)."""
    if type(value) is list and all(type(item) is str for item in value):
        return value
    if type(value) is dict and all(type(v) is int for v in value.values()):
        return value
    raise ValueError(
        'expected a list of limit names (["gpu"]) or an object of names and slots ({"gpu": 2})'
    )


JobLimits = Annotated[
    list[str] | dict[str, int],
    PlainValidator(_limits),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
            ]
        }
    ),
]

_RETRY_ON = (
    "What is retried: error types (the report's error.type, or a built-in exception "
    "class, which matches its subclasses) and exit codes of command jobs; without it, "
    "every failure."
)
_RETRY_DELAY = "First wait before a retry, in seconds (default 0.1); doubles each time."
_SLOTS = "How many of the max_concurrency slots the job takes while it runs."


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Defaults(_Model):
    """Values a job gets when it does not set its own."""

    timeout: Seconds | None = Field(None, description="Per-attempt timeout in seconds.")
    retries: Retries | None = Field(None, description="Extra attempts after a failure.")
    retry_on: list[RetryItem] | None = Field(None, description=_RETRY_ON)
    retry_delay: Seconds | None = Field(None, description=_RETRY_DELAY)
    slots: Slots | None = Field(None, description=_SLOTS)


class JobConfig(_Model):
    """One job as written in the config."""

    name: str = Field(min_length=1, description="Unique job name.")
    action: str = Field(min_length=1, description="Registered action name, or 'module:function'.")
    input: str = Field(
        min_length=1,
        pattern=r"^[^\x00]*$",
        description="Input file, relative to the config's directory; may be a glob.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters, validated by the action's model."
    )
    depends_on: list[str] = Field(
        default_factory=list, description="Jobs that must succeed before this one starts."
    )
    timeout: Seconds | None = Field(None, description="Per-attempt timeout in seconds.")
    retries: Retries | None = Field(None, description="Extra attempts after a failure.")
    retry_on: list[RetryItem] | None = Field(None, description=_RETRY_ON)
    retry_delay: Seconds | None = Field(None, description=_RETRY_DELAY)
    slots: Slots | None = Field(None, description=_SLOTS)
    limits: JobLimits = Field(
        default_factory=list,
        description="Named limits this job holds a slot of (a list), or slots of "
        '(an object: {"gpu": 2}).',
    )


class BatchFile(_Model):
    """The whole config file."""

    schema_: str | None = Field(None, alias="$schema", description="Ignored; for editors.")
    max_concurrency: int | None = Field(None, ge=1, description="Actions in flight at once.")
    defaults: Defaults = Field(default_factory=Defaults)
    limits: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Named pools of slots: name -> size."
    )
    jobs: list[JobConfig]


NO_LIMITS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RetryOn:
    """A job's ``retry_on``: the error types and the exit codes it retries."""

    types: frozenset[str] = frozenset()
    exit_codes: frozenset[int] = frozenset()

    @classmethod
    def of(cls, items: list[int | str]) -> RetryOn:
        return cls(
            frozenset(item for item in items if isinstance(item, str)),
            frozenset(item for item in items if isinstance(item, int)),
        )


@dataclass(slots=True)
class Job:
    """One runnable job, after glob expansion and params validation."""

    name: str
    action: str
    input: str
    path: Path
    params: Any
    spec: ActionSpec | None
    group: str
    """The config job's name: shared by the expansions of a glob, else the job's own."""
    depends_on: tuple[str, ...] = ()
    """The names it waits for, as written in the config (once each, in order): a
    config job's name waits for all that job's glob expansions, an expansion's name
    (``logs[a.log]``) for that one alone. Expansions of one glob share the tuple."""
    timeout: float | None = None
    retries: int | None = None
    limits: Mapping[str, int] = field(default_factory=lambda: NO_LIMITS)
    """The named limits it takes and how many slots of each."""
    slots: int = 1
    """How many of the run's slots it takes while it runs."""
    retry_on: RetryOn | None = None
    """What is retried (None: every failure)."""
    retry_delay: float | None = None
    """Its first wait before a retry (None: the run's default)."""
    start_error: Exception | None = None
    """Known before the job starts: unknown action, a glob that matched nothing, an
    input outside the root."""
    raw_params: dict[str, Any] = field(default_factory=dict)
    number: int = 0
    """Its place in the batch, from 1 (config order, glob matches in place)."""
    config_dir: Path = Path()
    """The folder its config's relative paths resolve against."""
    route: Route | None = None
    """How its work runs, once an executor has asked (``asyncbatch.kernel.route_of``)."""

    def context(self, slot: int | None = None, streams: Streams | None = None) -> JobContext:
        """The job as its action's capabilities see it (``slot``: the slot its
        attempt runs in; ``streams``: where a program it runs reports)."""
        return JobContext(self.name, self.number, self.config_dir, slot, streams=streams)

    def outputs(self) -> list[str]:
        """The files it declares it creates (absolute paths); none for most actions."""
        if self.spec is None or self.spec.outputs is None:
            return []
        return self.spec.declared_outputs(self.path, self.params, self.context())


@dataclass(slots=True)
class BatchConfig:
    """A validated config, ready for :func:`asyncbatch.run_batch`."""

    source: str
    base_dir: Path
    jobs: list[Job]
    max_concurrency: int | None = None
    defaults: Defaults = field(default_factory=Defaults)
    limits: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    root: str | None = None
    """The real path of the ``root`` it was loaded with (``--root``), or None."""
    weighted: list[tuple[str, str, int]] = field(default_factory=list)
    """Where a job (or ``defaults``) asks for more than one slot: ``(location, the
    config job's name or "" for defaults, slots)``, to check against the run's
    concurrency once it is known (:func:`asyncbatch.config.check_slots`)."""


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """Bounds on what loading a config may cost, whatever the input: the defaults
    hold a 100,000-job config with room to spare; tests pass small ones."""

    max_config_bytes: int = 64 << 20
    """Largest config read (a 100,000-job config is about 10 MB)."""
    max_yaml_alias_values: int = 1_000_000
    """Most values YAML aliases may add, counted as if each were written out."""
    max_glob_matches: int = 100_000
    """Most files one glob may expand to."""
    max_glob_entries: int = 1_000_000
    """Most directory entries one glob may look at."""
