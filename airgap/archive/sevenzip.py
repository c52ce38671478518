"""Bundles inside a ``.7z`` (as some transfer kiosks want them), read with py7zr."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..errors import FormatError

MAGIC = b"7z\xbc\xaf\x27\x1c"


def is_7z(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(6) == MAGIC
    except OSError:
        return False


def open_7z(path: str, spool_dir: Path | None) -> tuple[BinaryIO, str]:
    """Extract the one tar the archive holds into ``spool_dir`` and open it.

    The extracted file is unlinked at once: it lives as long as the open file, and an
    interrupted load leaves nothing behind.
    """
    import py7zr
    try:
        with py7zr.SevenZipFile(path, "r") as z:
            if z.needs_password():
                raise FormatError(f"{path}: the 7z archive is encrypted; airgap reads plain 7z only")
            files = [i.filename for i in z.list() if not i.is_directory]
            if len(files) != 1:
                raise FormatError(f"{path}: a 7z bundle must hold exactly one tar, it holds "
                                  f"{len(files)} files ({', '.join(files[:5])})")
            name = files[0]
            if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
                raise FormatError(f"{path}: member {name!r} points outside the archive")
            work = tempfile.mkdtemp(dir=spool_dir, prefix=f"{os.getpid()}-7z-")
            try:
                z.extract(path=work, targets=files)
                inner = Path(work) / files[0]
                if not inner.is_file() or inner.is_symlink():
                    raise FormatError(f"{path}: {files[0]} is not a regular file")
                f = open(inner, "rb")
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except FormatError:
        raise
    except OSError as exc:
        if exc.errno is not None:  # a real I/O error (disk full, permission), not bad data
            raise
        raise FormatError(f"{path}: damaged 7z archive ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # the decoders raise their own kinds (LZMAError, CrcError, ...)
        raise FormatError(f"{path}: damaged 7z archive ({type(exc).__name__}: {exc})") from None
    return f, f"{path}!{files[0]}"
