"""Times as image configs carry them (RFC 3339, nanoseconds allowed)."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time as images carry it (nanoseconds allowed)."""
    if not text:
        return None
    t = text.strip().replace("Z", "+00:00")
    if "." in t:
        head, _, rest = t.partition(".")
        frac = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(frac):]
        t = f"{head}.{frac[:6]}{tz}"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
