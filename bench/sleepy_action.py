"""A custom action for the Dask scale simulation in ``dask_bench.py``: it waits
0.1 s, as an action waiting on I/O would, and does nothing else.

Referenced from a config as ``"sleepy_action:nap"``; the bench puts this folder on
the ``PYTHONPATH`` of the run and of the cluster's workers, which import it by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

NAP_SECONDS = 0.1


async def nap(path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Wait ``params["seconds"]`` (0.1 by default) without holding a CPU."""
    seconds = float(params.get("seconds", NAP_SECONDS))
    await anyio.sleep(seconds)
    return {"slept": seconds}
