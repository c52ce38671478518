"""Where a user's own files go: the home directory, which must be known."""

from __future__ import annotations

import os

from .errors import UsageError


def home(instead: str) -> str:
    """The user's home directory (``$HOME``, else the password database's). None at all is a
    usage error that says what to set ``instead``: ``~`` left as it is would make a directory
    of that name in the current one."""
    found = os.path.expanduser("~")
    if not os.path.isabs(found):
        raise UsageError(f"no home directory ($HOME is not set and the user has none in the password "
                         f"database); {instead}")
    return found
