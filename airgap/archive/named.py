"""Archive files whose read errors name them.

A USB stick pulled out or failing mid-load makes the kernel answer reads with EIO, and
Python's error for it carries no file name: the load ended in "Input/output error" and
nothing else. Archives and split parts are opened through ``open_named``, whose errors
say which file could not be read.
"""

from __future__ import annotations

import io

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _NamedFileIO(io.FileIO):
    """What a BufferedReader calls of its raw file: readinto, readall, seek."""

    def __init__(self, file: str | int, label: str) -> None:
        super().__init__(file, "r")
        self.label = label

    def _named(self, exc: OSError) -> OSError:
        return OSError(exc.errno, exc.strerror, self.label) if exc.filename is None and exc.errno else exc

    def readinto(self, b: Any) -> int | None:
        try:
            return super().readinto(b)
        except OSError as exc:
            raise self._named(exc) from None

    def readall(self) -> bytes:
        try:
            return super().readall()
        except OSError as exc:
            raise self._named(exc) from None

    def seek(self, pos: int, whence: int = 0) -> int:
        try:
            return super().seek(pos, whence)
        except OSError as exc:
            raise self._named(exc) from None


def open_named(file: str | int, label: str) -> io.BufferedReader:
    """``open(path, "rb")`` (or of a descriptor), whose read and seek errors name ``label``."""
    return io.BufferedReader(_NamedFileIO(file, label))
