"""Small files named on the command line (trusted keys, image lists, inventories from the
far side), read whole but with a cap: a device or a huge file is refused by name, never
read into memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import FormatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

KEY_LIMIT = 64 << 10         # a PEM key is under 1 KiB
LIST_LIMIT = 16 << 20        # an image list: 100,000 names of 160 bytes
INVENTORY_LIMIT = 64 << 20   # an inventory: MAX_INVENTORY_BLOBS blobs of ~110 bytes each
MAX_INVENTORY_BLOBS = 500_000  # blobs one inventory lists: `inventory` writes no more, a save reads no more
CHUNK = 1 << 20


def read_small(path: Path | str, limit: int, what: str, regular_only: bool = False) -> bytes:
    """The bytes of ``path`` (FileNotFoundError and other OSErrors propagate), or a
    FormatError naming it when it holds more than ``limit``. With ``regular_only`` (keys)
    anything but a regular file is refused, a FIFO without waiting for a writer (a list may
    come from a pipe, ``-f <(grep … list)``; a key in a trust directory may not)."""
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if regular_only else 0)
    with open(os.open(path, flags), "rb") as f:
        if regular_only and not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise FormatError(f"{what} {path} is not a regular file (a FIFO, a device, a "
                              "directory?); refusing to read it")
        data = read_upto(f, limit + 1, os.fstat(f.fileno()).st_size)
    if len(data) > limit:
        raise FormatError(f"{what} {path}: more than {limit >> 10} KiB; refusing to read it "
                          f"(no {what} is that large)")
    return data


def read_upto(f: BinaryIO, most: int, size: int) -> bytes:
    """At most ``most`` bytes of ``f``, in reads of the file's ``size`` (a regular file's;
    0 for a pipe), then of CHUNK: a read asks for its whole length in memory at once, and
    256 MiB asked for a store index of a few KiB failed under an address-space limit."""
    parts: list[bytes] = []
    want = size + 1 if size > 0 else CHUNK  # one read for a regular file that does not grow meanwhile
    while most > 0:
        part = f.read(min(most, want))
        if not part:
            break
        parts.append(part)
        most -= len(part)
        want = CHUNK
    return b"".join(parts)
