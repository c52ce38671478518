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
PIPE_CHUNK = 1 << 20  # a pipe is read in these (not digest.CHUNK, a copy's 4 MiB)


def read_small(path: Path | str, limit: int, what: str, regular_only: bool = False) -> bytes:
    """The bytes of ``path`` (FileNotFoundError and other OSErrors propagate), or a
    FormatError naming it when it holds more than ``limit``. With ``regular_only`` (keys)
    anything but a regular file is refused, a FIFO without waiting for a writer (a list may
    come from a pipe, ``-f <(grep … list)``; a key in a trust directory may not)."""
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if regular_only else 0)
    with open(os.open(path, flags), "rb") as f:
        st = os.fstat(f.fileno())
        if regular_only and not stat.S_ISREG(st.st_mode):
            raise FormatError(f"{what} {path} is not a regular file (a FIFO, a device, a "
                              "directory?); refusing to read it")
        data = read_capped(f, limit, st.st_size)
    if data is None:
        raise FormatError(f"{what} {path}: more than {limit >> 10} KiB; refusing to read it "
                          f"(no {what} is that large)")
    return data


def read_capped(f: BinaryIO, limit: int, size: int) -> bytes | None:
    """All of ``f``, or None when it holds more than ``limit`` bytes. The first read asks
    for the file's ``size`` (a regular file's; 0 for a pipe) and one byte more, the others
    for PIPE_CHUNK: a read takes its whole length in memory at once, and asking for the cap
    (256 MiB for a store index of a few KiB) failed under an address-space limit."""
    data = f.read(min(limit, size if size > 0 else PIPE_CHUNK) + 1)
    if len(data) > limit:
        return None
    part = f.read(min(PIPE_CHUNK, limit + 1 - len(data))) if data else b""
    if not part:
        return data  # a regular file that did not grow: one read, no copy
    grown = bytearray(data)  # a pipe: grown in place, never more than the cap and a chunk
    while part:
        grown += part
        if len(grown) > limit:
            return None
        part = f.read(min(PIPE_CHUNK, limit + 1 - len(grown)))
    return bytes(grown)
