"""``python -m asyncbatch``: the same as the ``asyncbatch`` command."""

from __future__ import annotations

from asyncbatch.cli import main

main()
