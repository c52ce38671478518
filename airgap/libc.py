"""The C library calls Python's ``os`` lacks (``linkat`` with ``AT_EMPTY_PATH``,
``sync_file_range``, ``malloc_trim``): one lookup of the process's own symbols, made the
first time one is needed (``ctypes`` is not imported at start-up: a reload writes nothing)."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_LIBC: Any = None
_LOOKED = False


def libc() -> Any:
    """The process's C library through ctypes, or None where it cannot be had."""
    global _LIBC, _LOOKED
    if not _LOOKED:  # two threads may both look: the same library either way
        try:
            import ctypes  # the process's own symbols: find_library would run ldconfig
            _LIBC = ctypes.CDLL(None, use_errno=True)
        except (OSError, ImportError):
            _LIBC = None
        _LOOKED = True
    return _LIBC


def last_error(target: str) -> OSError:
    """The error the last call through ``libc()`` left in errno."""
    import ctypes
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), target)
