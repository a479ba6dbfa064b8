"""Text from a report made safe for the ``show --html`` page: every string there can
hold ``<``, ``&``, quotes, ``</script>`` and control characters (file names can)."""

from __future__ import annotations

import html

from asyncbatch.output.terminal import sanitize


def escape(text: str) -> str:
    """``text`` for HTML text or a quoted attribute: controls made visible, then
    ``<``, ``>``, ``&`` and quotes escaped."""
    return html.escape(sanitize(text), quote=True)
