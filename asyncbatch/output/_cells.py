"""Text cut to fit a terminal, counted in cells (a CJK character takes two); rich,
which knows the widths, is imported only when text is cut."""

from __future__ import annotations


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` terminal cells, cut in the middle where it is
    longer (an ellipsis marks the cut): the end is kept first, its last path part
    whole where it fits (the file name that tells apart the jobs of one glob, all
    of which start with the same folder), then as much of the start as is left."""
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "\u2026"[:width]
    room = width - 1
    slash = text.rfind("/", 0, len(text) - 1)
    wanted = cell_len(text[slash + 1 :]) if slash >= 0 else room // 2
    tail = max(room // 2, min(wanted, room - max(1, room // 6)))
    return _first_cells(text, room - tail) + "\u2026" + _last_cells(text, tail)


def _first_cells(text: str, cells: int) -> str:
    from rich.cells import get_character_cell_size

    used = 0
    for end, char in enumerate(text):
        used += get_character_cell_size(char)
        if used > cells:
            return text[:end]
    return text


def _last_cells(text: str, cells: int) -> str:
    return _first_cells(text[::-1], cells)[::-1]
