"""Files airgap writes beside a user's file (a bundle's temp file and split parts, the
docker config it updates): made new, never written through what is already at the name.

The names are predictable (``.b.tar.001.tmp``), and the directory may be shared (``/tmp``):
a link planted there would have airgap, often root, write a bundle wherever it points.
Whatever is at the name is removed, and the file is created with ``O_EXCL``, which never
follows a link: one planted again in between makes the open fail, not write through it.
"""

from __future__ import annotations

import os
from pathlib import Path


def create(path: Path | str, mode: int = 0o666) -> int:
    """A descriptor open for writing on a file just made at ``path`` (``mode`` under the umask)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)


def replace(path: Path, data: bytes, tmp: Path, mode: int = 0o666) -> None:
    """Give ``path`` the content ``data`` whole or not at all: written to ``tmp`` (made
    new), fsynced, and renamed over ``path``."""
    with open(create(tmp, mode), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
