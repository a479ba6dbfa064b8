"""The built-in actions. Importing this package registers them in the default registry.

A module per family: :mod:`.text` (count_lines, count_words, search_pattern) and
:mod:`.files` (file_size, checksum). Their plain path reads files through :mod:`._io`
(aiofiles in daemon threads); :mod:`.fastpath` routes the same work to fewer thread
hops or to worker processes, with the same results. search_pattern's scan always runs
in a worker process that a timeout can kill (:mod:`asyncbatch.linescan`).
"""

from __future__ import annotations

from asyncbatch.actions import files, text

__all__ = ["files", "text"]
