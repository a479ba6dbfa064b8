"""The config's shape: pydantic models of the file as written (strict, unknown keys
refused) and the dataclasses of a loaded, expanded config that a run takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from asyncbatch.registry import JobContext

if TYPE_CHECKING:
    from asyncbatch.kernel import Route
    from asyncbatch.registry import ActionSpec, Streams

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Retries = Annotated[int, Field(ge=0, le=1000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Defaults(_Model):
    """Values a job gets when it does not set its own."""

    timeout: Seconds | None = Field(None, description="Per-attempt timeout in seconds.")
    retries: Retries | None = Field(None, description="Extra attempts after a failure.")


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
    limits: list[str] = Field(
        default_factory=list, description="Named limits this job holds a slot of."
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
    limits: tuple[str, ...] = ()
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
