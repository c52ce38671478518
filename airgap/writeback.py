"""Start writing to disk early, so that the fsync at the end has little left to wait for.

A blob or bundle is fsynced before it counts as written. Without help the kernel keeps
the bytes dirty in memory until then (its background writeback starts only past
gigabytes of dirty memory), and the fsync waits for all of them while nothing else
happens. ``Writeback.wrote`` asks the kernel (Linux ``sync_file_range`` with
``SYNC_FILE_RANGE_WRITE``: start, do not wait) to begin writing every few MiB behind the
writer, so the disk works while the copy goes on, as it does under ``cp`` and ``sync``.
Where the call is missing (not Linux), nothing changes: the fsync still makes it durable.
"""

from __future__ import annotations

from typing import Any

STEP = 16 << 20            # bytes between two requests
_SYNC_FILE_RANGE_WRITE = 2
_call: Any = None
_tried = False


def _sync_file_range() -> Any:
    global _call, _tried
    if not _tried:
        _tried = True
        import ctypes  # here, not at start-up: a reload writes nothing
        import ctypes.util
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fn = libc.sync_file_range
            fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _call = fn
        except (OSError, AttributeError):
            _call = None
    return _call


class Writeback:
    """Tell it the bytes written to ``fd`` (from ``start``); it starts their writeback."""

    def __init__(self, fd: int, start: int = 0) -> None:
        self.fd = fd
        self._done = start   # writeback requested up to here
        self._pos = start    # written up to here

    def wrote(self, n: int) -> None:
        self._pos += n
        if self._pos - self._done >= STEP:
            fn = _sync_file_range()
            if fn is not None:
                fn(self.fd, self._done, self._pos - self._done, _SYNC_FILE_RANGE_WRITE)
            self._done = self._pos


class WritebackFile:
    """A binary file whose writes start their writeback as they go (see above)."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._wb = Writeback(f.fileno(), f.tell() if f.seekable() else 0)

    def write(self, data: Any) -> int:
        n: int = self._f.write(data)  # a buffered file takes all of it, or raises
        self._wb.wrote(n)
        return n

    def flush(self) -> None:
        self._f.flush()

    def fileno(self) -> int:
        return int(self._f.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

