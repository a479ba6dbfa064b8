"""The live display's drawing (:func:`asyncbatch.output.progress.live_progress`):
rich renders it, on stderr, from a :class:`~asyncbatch.output.progress.ProgressState`.
Imported only when the display starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from asyncbatch.output.progress import (
    BAR_WIDTH,
    MIN_BAR_WIDTH,
    ProgressState,
    fit_parts,
    notes,
    status_parts,
)

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult


class ProgressLine:
    """The live display: a bar and the status line, then its :func:`notes`. What does
    not fit a narrow terminal is left out by rank (:func:`status_parts`), the bar
    among the rest, rather than cut at the edge; the bar takes what is left, up to
    :data:`BAR_WIDTH`, and keeps room for the counts to grow, so it does not jitter
    as they do."""

    def __init__(self, state: ProgressState) -> None:
        self.state = state
        self._bar_width = (0, BAR_WIDTH)  # (terminal width, bar width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        state, width = self.state, options.max_width
        growth = len(f"{state.total:,}") - len(f"{state.done:,}") + 2
        parts, bar_width = fit_parts(status_parts(state), width - growth)
        text = Text(", ").join(Text(part.text, style=part.style) for part in parts)
        if bar_width and self._bar_width[0] == width and self._bar_width[1]:
            bar_width = min(bar_width, self._bar_width[1])  # shrinks, never grows back
        if bar_width:
            self._bar_width = (width, bar_width)
        grid = Table.grid(padding=(0, 1, 0, 0))
        cells: list[RenderableType] = []
        if bar_width >= MIN_BAR_WIDTH:
            grid.add_column(width=bar_width, no_wrap=True)
            total = max(state.total, 1)
            cells.append(ProgressBar(total=total, completed=state.done, width=bar_width))
        grid.add_column(no_wrap=True, overflow="ellipsis")
        cells.append(text)
        grid.add_row(*cells)
        yield grid
        for note, style in notes(state, width):
            yield Text(note, style=style, no_wrap=True, overflow="ellipsis")
