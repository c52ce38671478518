"""Docker's ways of printing: sizes, ages, tab-aligned tables."""

from __future__ import annotations

from ..words import plural

TYPE_CHECKING = False
if TYPE_CHECKING:  # datetime is imported where it is used: start-up stays short
    from datetime import datetime

__all__ = ["ellipsis", "human_size", "human_duration", "plural", "since", "table"]

_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]


def human_size(size: float, precision: int = 3) -> str:
    """``units.HumanSizeWithPrecision``: decimal units, ``%.3g``."""
    i = 0
    while size >= 1000 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{_UNITS[i]}"


def ellipsis(text: str, width: int) -> str:
    """``stringutils.Ellipsis``: cut to ``width`` characters, the last one ``…``."""
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def human_duration(seconds: float) -> str:
    """``units.HumanDuration``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def since(text: str, now: datetime | None = None) -> str:
    from datetime import UTC, datetime
    from ..timeutil import parse_time
    dt = parse_time(text)
    if dt is None or dt.year <= 1:  # none, or Go's zero time (cosign signatures)
        return "N/A"
    now = now or datetime.now(UTC)
    return human_duration((now - dt).total_seconds()) + " ago"


def table(rows: list[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Go's ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`` as Docker uses it."""
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    lines = []
    for r in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])]
        lines.append("".join(cells) + (r[-1] if r else ""))
    return "\n".join(lines)
