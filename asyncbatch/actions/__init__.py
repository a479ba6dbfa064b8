"""The built-in actions. Importing this package registers them in the default registry.

A module per family: :mod:`.text` (count_lines, count_words, search_pattern) and
:mod:`.files` (file_size, checksum); :mod:`._io` is their only way to read a file.
"""

from __future__ import annotations

from asyncbatch.actions import files, text

__all__ = ["files", "text"]
