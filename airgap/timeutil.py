"""Times as image configs carry them (RFC 3339, nanoseconds allowed)."""

from __future__ import annotations

import re

from .words import is_number

TYPE_CHECKING = False
if TYPE_CHECKING:  # datetime is imported where a time is read or made: not on a load's path
    from datetime import datetime


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time as images carry it (nanoseconds allowed)."""
    from datetime import datetime, UTC
    if not text:
        return None
    t = text.strip().replace("Z", "+00:00")
    if "." in t:
        head, _, rest = t.partition(".")
        frac = "".join(ch for ch in rest if "0" <= ch <= "9")
        tz = rest[len(frac):]
        t = f"{head}.{frac[:6]}{tz}"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


_RFC3339 = r"(?a)(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$"


def rfc3339nano(text: str) -> str:
    """Go's ``time.RFC3339Nano`` rendering of a config time: trailing zeros dropped."""
    m = re.match(_RFC3339, text.strip()) if text else None
    if not m:
        return text
    frac = (m.group(2) or "").rstrip("0")
    zone = "Z" if m.group(3) in ("Z", "+00:00") else m.group(3)
    return m.group(1) + (f".{frac}" if frac else "") + zone


def format_rfc3339(dt: datetime) -> str:
    from datetime import UTC
    return rfc3339nano(dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def source_date_epoch() -> int | None:
    """``$SOURCE_DATE_EPOCH`` (reproducible builds), when it is set to a number."""
    import os
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(epoch) if is_number(epoch) else None
