"""Free space: refuse before writing what will not fit, and say so when a disk fills up."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import AirgapError

FAT32_MAX = 4 * 1024 ** 3 - 1
_FAT_TYPES = {"vfat", "msdos", "fat", "umsdos"}


def _size(n: int) -> str:
    from .cli.format import human_size
    return human_size(n)


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class NoSpace(AirgapError):
    """Not enough room on the target filesystem (exit 1: free space, then try again)."""


def check_space(path: Path, needed: int, what: str = "") -> None:
    """Refuse before writing when ``needed`` bytes do not fit in ``path``'s filesystem."""
    if needed <= 0:
        return
    free = free_bytes(path)
    if needed > free:
        raise NoSpace(f"{what + ': ' if what else ''}not enough space: needs {_size(needed)} "
                      f"in {path}, {_size(free)} free")


@contextlib.contextmanager
def disk_full(path: Path, needed: int) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT met while writing into the same message as ``check_space``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        try:
            free = _size(free_bytes(path))
        except OSError:
            free = "?"
        need = f"needs {_size(needed)} more, " if needed else ""
        raise NoSpace(f"no space left on device in {path} ({need}{free} free); "
                      "nothing was changed") from None


def filesystem_type(path: Path) -> str:
    """The type (``ext4``, ``vfat``…) of the mount holding ``path``, from /proc/mounts."""
    target = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        return ""
    return kind


def is_fat(path: Path) -> bool:
    return filesystem_type(path) in _FAT_TYPES
