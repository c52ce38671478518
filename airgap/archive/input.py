"""Opening what ``load`` and ``verify`` read: a file, or stdin spooled to disk."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..digest import CHUNK
from ..errors import AirgapError, NotFound


def _seekable(f: BinaryIO) -> bool:
    try:
        f.seek(0, os.SEEK_CUR)
        return f.seekable()
    except OSError:
        return False


def stdin_is_pipe() -> bool:
    return not sys.stdin.isatty() and not _seekable(sys.stdin.buffer)


def open_input(path: str, spool_dir: Path | None, stdin: BinaryIO | None = None) -> tuple[BinaryIO, str]:
    """Return a seekable binary file and the name to use in messages.

    ``FILE.001`` (or ``FILE`` when only its parts exist) opens a split bundle: every
    part is checked against ``FILE.sha256`` and the parts are read as one file.

    A pipe on stdin is copied to an unlinked temp file in ``spool_dir`` (the store's
    temp area, so that nothing is held in memory and nothing is left behind).
    """
    if path == "-":
        if sys.stdin.isatty():
            raise AirgapError("requested load from stdin, but stdin is empty; use -i FILE")
        stdin = stdin or sys.stdin.buffer
        if _seekable(stdin):
            return stdin, "stdin"
        fd, tmp = tempfile.mkstemp(dir=spool_dir, prefix=f"{os.getpid()}-stdin-")
        os.unlink(tmp)
        spool = os.fdopen(fd, "w+b")
        while True:
            chunk = stdin.read(CHUNK)
            if not chunk:
                break
            spool.write(chunk)
        spool.flush()
        spool.seek(0)
        return spool, "stdin"
    from .sevenzip import is_7z, open_7z
    from .split import open_split, split_base
    base = split_base(path)
    if base is not None:
        joined, name = open_split(base)
        return joined, name  # type: ignore[return-value]
    if is_7z(path):
        return open_7z(path, spool_dir)
    try:
        return open(path, "rb"), path
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AirgapError(f"{path}: is a directory, not an archive") from None
