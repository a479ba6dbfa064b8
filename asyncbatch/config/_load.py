"""Read a JSON/TOML/YAML config, validate it, and expand it into runnable jobs.

Every problem is collected and raised at once as one :class:`ConfigError`, each
located the way the user would point at it (``jobs[2].params.pattern: ...``), so a
config is fixed in one pass. Nothing here opens an input: globs list directories,
which is all ``--dry-run`` may do.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from pydantic import ValidationError

from asyncbatch.config._bulk import Resolver, validate_jobs, without_gc
from asyncbatch.config._expand import check_expanded_names, expand_jobs, first_of_each
from asyncbatch.config._formats import parse_config, read_config_stream, read_config_text
from asyncbatch.config._graph import resolve_dependencies, with_dependencies
from asyncbatch.config._models import BatchConfig, BatchFile, JobConfig, LoadLimits
from asyncbatch.config._outputs import check_job_outputs
from asyncbatch.config._problems import did_you_mean, locate_errors
from asyncbatch.config._weights import check_limits, weighted
from asyncbatch.errors import ConfigError
from asyncbatch.files.confine import real_root
from asyncbatch.registry import ActionRegistry, ActionSpec, entry_point_references

DISCOVERED_NAMES = ("asyncbatch.toml", "asyncbatch.yaml", "asyncbatch.yml", "asyncbatch.json")


def find_config(directory: Path) -> Path | None:
    """The config ``run`` uses without an argument, as make finds its Makefile."""
    for name in DISCOVERED_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load_config(
    source: str | os.PathLike[str],
    *,
    registry: ActionRegistry,
    strict: bool = False,
    stdin: TextIO | BinaryIO | None = None,
    root: str | os.PathLike[str] | None = None,
    limits: LoadLimits | None = None,
) -> BatchConfig:
    """Read, validate and expand a config, its actions found in ``registry``; raise
    :class:`ConfigError` listing every problem. ``source`` ``"-"`` reads JSON from
    ``stdin`` (default: ``sys.stdin``; paths then resolve against the current directory) as UTF-8
    bytes, like a file, whatever the locale: a binary stream, or the ``buffer`` of
    a text stream; a text stream without one (``io.StringIO``) is read as text.

    With ``root`` (an existing directory, ``--root``): a job whose input resolves
    outside it (symbolic links followed) gets ``start_error`` ``OutsideRoot``, so
    it fails without opening anything (each glob match is checked on its own), and
    a ``"module:function"`` action is a config error unless an installed plugin
    declares it: importing it would run code the root cannot confine. ``limits``
    bounds the config's size, YAML aliases and globs (:class:`LoadLimits`)."""
    limits = limits or LoadLimits()
    real = _checked_root(root)
    label = os.fspath(source)
    if label == "-":
        stream = stdin if stdin is not None else sys.stdin
        text = read_config_stream(stream, label, limits.max_config_bytes)
        raw = parse_config(text, ".json", label, limits.max_yaml_alias_values)
        base_dir = Path.cwd()
    else:
        path = Path(label)
        text = read_config_text(path, label, limits.max_config_bytes)
        raw = parse_config(text, path.suffix.lower(), label, limits.max_yaml_alias_values)
        base_dir = path.absolute().parent
    config_file = None if label == "-" else label
    with without_gc():  # tens of thousands of objects, no cycles: skip the collector
        return _build(raw, label, base_dir, registry, strict, real, limits, config_file=config_file)


def load_config_data(
    raw: Any,
    *,
    base_dir: str | os.PathLike[str],
    label: str,
    registry: ActionRegistry,
    strict: bool = False,
    root: str | os.PathLike[str] | None = None,
    limits: LoadLimits | None = None,
    name_matches_by_path: bool = False,
    literal_inputs: bool = False,
) -> BatchConfig:
    """:func:`load_config` for a config already parsed (a dict as a config file
    holds), whose paths resolve against ``base_dir``; ``label`` stands for the file
    in messages and in the report. With ``name_matches_by_path``, each match of a
    glob is named by its path as the glob spells it (not ``job[path]``), and a file
    reached twice under the same name (given twice, or matched by two globs) is one
    job, the first. With ``literal_inputs``, no input is a glob: each names a file as
    it is, whatever characters it holds (``asyncbatch each``, which expands its
    globs itself)."""
    real = _checked_root(root)
    with without_gc():
        return _build(
            raw,
            label,
            Path(base_dir).absolute(),
            registry,
            strict,
            real,
            limits or LoadLimits(),
            name_matches_by_path=name_matches_by_path,
            literal_inputs=literal_inputs,
        )


def _checked_root(root: str | os.PathLike[str] | None) -> str | None:
    """The real path of ``--root`` (None without one); not a directory: ConfigError."""
    if root is None:
        return None
    if not os.path.isdir(root):
        raise ConfigError([f"--root: {os.fspath(root)!r} is not a directory"])
    return real_root(root)


def select_jobs(config: BatchConfig, names: Sequence[str]) -> BatchConfig:
    """``--only``: the named jobs (a config name selects all its glob expansions)
    and everything they depend on, in config order. An unknown name is a
    :class:`ConfigError`."""
    groups = list(dict.fromkeys(job.group for job in config.jobs))
    known = {job.name for job in config.jobs}.union(groups)
    problems = []
    for name in names:
        if name not in known:
            hint = did_you_mean(name, groups)
            problems.append(f"--only: unknown job {name!r}{hint}")
    if problems:
        raise ConfigError(problems, source=config.source)
    return dataclasses.replace(config, jobs=with_dependencies(config.jobs, names))


def _build(
    raw: Any,
    label: str,
    base_dir: Path,
    registry: ActionRegistry,
    strict: bool,
    root: str | None,
    limits: LoadLimits,
    *,
    name_matches_by_path: bool = False,
    literal_inputs: bool = False,
    config_file: str | None = None,
) -> BatchConfig:
    if not isinstance(raw, dict):
        raise ConfigError(["the top level must be an object with a 'jobs' list"], source=label)
    problems: list[str] = []
    raw_jobs = raw.get("jobs")
    header = _validate_header(raw, problems)
    if not isinstance(raw_jobs, list):
        raise ConfigError(problems, source=label)
    warnings: list[str] = []
    entries, invalid_names = _validate_jobs(
        raw_jobs,
        _Context(Resolver(registry, base_dir), registry, strict, _Confined(root)),
        problems,
        warnings,
    )
    problems.extend(_check_names(entries))
    raw_limits = raw.get("limits")
    declared: dict[str, Any] = raw_limits if isinstance(raw_limits, dict) else {}
    problems.extend(check_limits(entries, declared))
    defaults = header.defaults if header is not None else None
    jobs = expand_jobs(
        entries,
        base_dir,
        problems,
        root,
        limits,
        defaults=defaults,
        name_matches_by_path=name_matches_by_path,
        literal_inputs=literal_inputs,
    )
    if name_matches_by_path:
        jobs = first_of_each(jobs)
    problems.extend(check_expanded_names(jobs))
    problems.extend(resolve_dependencies(entries, jobs, invalid_names))
    position = {config_job.name: index for index, config_job, _, _ in entries}
    problems.extend(check_job_outputs(jobs, config_file, position, base_dir))
    if problems or header is None:
        raise ConfigError(problems, source=label)
    warnings = [f"{label}: {warning}" for warning in warnings]  # located as errors are
    warnings.extend(registry.plugin_warnings)
    return BatchConfig(
        source=label,
        base_dir=base_dir,
        jobs=jobs,
        max_concurrency=header.max_concurrency,
        defaults=header.defaults,
        limits=dict(header.limits),
        warnings=warnings,
        root=root,
        weighted=weighted(entries, defaults),
    )


def _validate_header(raw: dict[str, Any], problems: list[str]) -> BatchFile | None:
    """The top level without its jobs, validated (problems appended)."""
    raw_jobs = raw.get("jobs")
    try:
        return BatchFile.model_validate({**raw, "jobs": []} if isinstance(raw_jobs, list) else raw)
    except ValidationError as exc:
        problems.extend(locate_errors(exc, "", BatchFile))
        return None


def _validate_jobs(
    raw_jobs: list[Any], context: _Context, problems: list[str], warnings: list[str]
) -> tuple[list[tuple[int, JobConfig, ActionSpec | None, Any]], set[str]]:
    """Every job validated with its action and params: the valid ones as
    ``(index, job, spec, params)``, and the names of the invalid ones (they exist,
    so depending on them is no further problem)."""
    entries: list[tuple[int, JobConfig, ActionSpec | None, Any]] = []
    invalid_names: set[str] = set()
    valid = validate_jobs(raw_jobs)  # one call; job by job only to locate problems
    for index, raw_job in enumerate(raw_jobs):
        where = f"jobs[{index}]"
        try:
            job = valid[index] if valid is not None else JobConfig.model_validate(raw_job)
        except ValidationError as exc:
            problems.extend(locate_errors(exc, where, JobConfig))
            _check_invalid_job(raw_job, exc, where, context, problems)
            if isinstance(raw_job, dict) and isinstance(raw_job.get("name"), str):
                invalid_names.add(raw_job["name"])
            continue
        spec, params = _resolve_action(job, where, context, problems, warnings)
        entries.append((index, job, spec, params))
    return entries, invalid_names


@dataclasses.dataclass(frozen=True, slots=True)
class _Context:
    """What resolving a job's action needs."""

    resolver: Resolver
    registry: ActionRegistry
    strict: bool
    confined: _Confined


def _check_invalid_job(
    raw_job: Any,
    exc: ValidationError,
    where: str,
    context: _Context,
    problems: list[str],
) -> None:
    """A job that failed validation still has its action and params checked when
    those two are sound, so that every problem is reported at once."""
    bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
    if not isinstance(raw_job, dict) or bad & {"action", "params"}:
        return
    partial = JobConfig.model_construct(
        name=str(raw_job.get("name")),
        action=raw_job["action"],
        input="",
        params=raw_job.get("params", {}),
    )
    _resolve_action(partial, where, context, problems, [])


def _resolve_action(
    job: JobConfig,
    where: str,
    context: _Context,
    problems: list[str],
    warnings: list[str],
) -> tuple[ActionSpec | None, Any]:
    """The job's action spec and validated params (problems and warnings appended)."""
    resolver = context.resolver
    if not context.confined.allows(job.action):
        problems.append(
            f"{where}.action: {job.action!r} is refused with --root: a 'module:function' "
            "action is imported and runs unconfined; use a built-in or an installed plugin"
        )
        return None, None
    try:
        spec = resolver.resolve(job.action)
    except (ImportError, TypeError) as exc:
        problems.append(f"{where}.action: cannot use {job.action!r}: {exc}")
        return None, None
    if spec is None:
        known = [s.name for s in context.registry]
        hint = did_you_mean(job.action, known)
        if context.strict:
            problems.append(f"{where}.action: unknown action {job.action!r}{hint}")
        else:
            warnings.append(
                f"{where}.action: unknown action {job.action!r}{hint}; job {job.name!r} is "
                "skipped (--strict makes it an error)"
            )
        return None, None
    if context.confined.root is not None and spec.unconfined is not None:
        problems.append(f"{where}.action: {job.action!r} is refused with --root: {spec.unconfined}")
        return None, None
    try:
        return spec, resolver.validate_params(spec, job.params)
    except ValidationError as exc:
        problems.extend(locate_errors(exc, f"{where}.params", spec.params))
        return spec, None


class _Confined:
    """Which actions a run under ``--root`` may use: registered names (built-ins,
    ``@action``, plugins) and ``"module:function"`` references only when an
    installed ``asyncbatch.actions`` entry point declares exactly that reference.
    Decided before anything is imported."""

    def __init__(self, root: str | None) -> None:
        self.root = root
        self._plugins: frozenset[str] | None = None

    def allows(self, action: str) -> bool:
        if self.root is None or ":" not in action:
            return True
        if self._plugins is None:
            self._plugins = entry_point_references()
        return action in self._plugins


def _check_names(entries: Sequence[tuple[int, JobConfig, Any, Any]]) -> Iterable[str]:
    first_seen: dict[str, int] = {}
    for index, job, _, _ in entries:
        if job.name in first_seen:
            first = first_seen[job.name]
            yield f"jobs[{index}].name: duplicate name {job.name!r} (also jobs[{first}])"
        else:
            first_seen[job.name] = index
