"""Shared fixtures: the asyncio backend (aiofiles needs it), a probe of test actions
and a config writer. Shared helpers are in :mod:`support`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import ROUTES, Probe

from asyncbatch.engine import LocalExecutor


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """aiofiles calls asyncio directly, so every async test runs on asyncio."""
    return "asyncio"


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a JSON config (a dict) into tmp_path and return its path."""

    def write(config: dict[str, Any], name: str = "batch.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    return write


@pytest.fixture(params=list(ROUTES))
def route(request: pytest.FixtureRequest) -> str:
    """Each of the local executor's routes in turn (see ``support.ROUTES``)."""
    name: str = request.param
    return name


@pytest.fixture
def executor(route: str) -> LocalExecutor:
    """The local executor, with thresholds that put every file on ``route``."""
    tuning, cpus = ROUTES[route]
    return LocalExecutor(tuning, cpus=cpus)
