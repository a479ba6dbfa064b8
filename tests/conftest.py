"""Shared fixtures: the asyncio backend (aiofiles needs it) and config factories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """aiofiles calls asyncio directly, so every async test runs on asyncio."""
    return "asyncio"


@pytest.fixture
def write_config(tmp_path: Path) -> Any:
    """Write a JSON config (a dict) into tmp_path and return its path."""

    def write(config: dict[str, Any], name: str = "batch.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    return write
