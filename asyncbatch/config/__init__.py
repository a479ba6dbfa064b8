"""Configs: read a JSON, TOML or YAML file, validate it, expand it into runnable jobs.

Every problem is collected and raised at once as one :class:`ConfigError`, located
the way the user would point at it (``jobs[2].params.pattern: ...``). Nothing here
opens an input: globs list directories, which is all ``--dry-run`` may do.

- :mod:`._models`: the file's pydantic models, and the loaded :class:`BatchConfig`;
- :mod:`._load`: :func:`load_config` (a file), :func:`load_config_data` (a parsed
  config) and :func:`select_jobs` (``--only``);
- :mod:`._each`: the config of ``asyncbatch each`` (jobs from command-line inputs),
  and :mod:`._inputs`, where those inputs come from (stdin, ``-a`` files, fields);
- :mod:`._outputs`: the outputs jobs declare destroy nothing that is not theirs
  (:func:`outputs_taken`: nor the run's report, journal or lock);
- :mod:`._formats` (with :mod:`._toml` and :mod:`._yaml`, imported only for their
  formats), :mod:`._globs`, :mod:`._expand`, :mod:`._graph`, :mod:`._bulk`,
  :mod:`._problems`, :mod:`._weights`: parsing, glob expansion, dependencies,
  many-job shortcuts, located messages, and the slots jobs take;
- :mod:`.schema`: the JSON Schema of the format, for editors.
"""

from __future__ import annotations

from asyncbatch.config._each import each_config, parse_params
from asyncbatch.config._expand import is_glob
from asyncbatch.config._inputs import LABEL, Entry, InputsError, Sources, read_entries
from asyncbatch.config._load import (
    DISCOVERED_NAMES,
    find_config,
    load_config,
    load_config_data,
    select_jobs,
)
from asyncbatch.config._models import (
    BatchConfig,
    BatchFile,
    Defaults,
    Job,
    JobConfig,
    LoadLimits,
    RetryOn,
)
from asyncbatch.config._outputs import outputs_taken
from asyncbatch.config._weights import DEFAULT_CONCURRENCY, check_slots, concurrency
from asyncbatch.errors import ConfigError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DISCOVERED_NAMES",
    "LABEL",
    "BatchConfig",
    "BatchFile",
    "ConfigError",
    "Defaults",
    "Entry",
    "InputsError",
    "Job",
    "JobConfig",
    "LoadLimits",
    "RetryOn",
    "Sources",
    "check_slots",
    "concurrency",
    "each_config",
    "find_config",
    "is_glob",
    "load_config",
    "load_config_data",
    "outputs_taken",
    "parse_params",
    "read_entries",
    "select_jobs",
]
