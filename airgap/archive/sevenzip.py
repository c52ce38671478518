"""Bundles inside a ``.7z`` (as some transfer kiosks want them), read with py7zr.

The one tar inside is never extracted to disk whole: py7zr decompresses it in a thread
into a pipe, and the loader reads the pipe as it reads stdin — ``bundle.json`` and its
signature first, then only the members ``bundle.json`` lists, at their listed sizes.
When the loader stops (a refusal, or the end of the tar), the pipe is closed and the
decompression stops with it: a small .7z that expands to gigabytes costs nothing more.
"""

from __future__ import annotations

import io
import os

from ..errors import FormatError
from .input import SEVENZIP_MAGIC

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    import threading

MAX_HEADER = 64 << 10  # the header of a 7z of one tar takes well under 1 KiB


def _check_header_size(path: str) -> None:
    """Refuse a header larger than MAX_HEADER before py7zr reads it: py7zr holds every
    entry it lists as objects (200,000 empty files, a 120 KB .7z, took 200 MB)."""
    with open(path, "rb") as f:
        sig = f.read(32)
    if len(sig) == 32 and sig.startswith(SEVENZIP_MAGIC):
        size = int.from_bytes(sig[20:28], "little")  # NextHeaderSize
        if size > MAX_HEADER:
            raise FormatError(f"{path}: the 7z header takes {size} bytes, more than the "
                              f"{MAX_HEADER} a 7z of one tar needs; refused")


def _unread_coders() -> dict[bytes, str]:
    """The 7z coders airgap does not let py7zr decode (beyond what 7-Zip writes by default):
    PPMd, whose decoder (pyppmd) crashes the process on damaged data (a bit flipped in a
    2 KB .7z: SIGSEGV, no message), and Zstandard and Brotli, which 7-Zip does not write.
    They are taken out of py7zr's table of decoders, so that an encoded header using one
    is refused too, before it is decoded."""
    import py7zr.compressor as decoders
    from py7zr.properties import COMPRESSION_METHOD as ids, FILTER_BROTLI, FILTER_PPMD, FILTER_ZSTD
    for unread in (FILTER_PPMD, FILTER_ZSTD, FILTER_BROTLI):
        decoders.algorithm_class_map.pop(unread, None)
    return {ids.PPMD: "PPMd (its decoder crashes on damaged data)",
            ids.MISC_ZSTD: "Zstandard (7-Zip does not write it)", ids.MISC_BROTLI: "Brotli (7-Zip does not write it)"}


def _check_coders(z: Any, path: str, unread: dict[bytes, str]) -> None:
    """Before py7zr decodes a byte of the tar: refuse the coders in ``unread``, and LZMA or
    LZMA2 dictionaries over the memory budget: py7zr sets no limit (a 90 KB .7z with a
    768 MiB dictionary held the 600 MB it decoded), nor does Python's raw decoder."""
    from ..layers import MAX_LZMA_DICTIONARY
    for folder in z.header.main_streams.unpackinfo.folders if z.header.main_streams else ():
        for coder in folder.coders:
            method, props = bytes(coder.get("method") or b""), bytes(coder.get("properties") or b"")
            if method in unread:
                raise FormatError(f"{path}: the 7z archive is compressed with {unread[method]}, which "
                                  "airgap does not read; recompress with 7z's default (LZMA2)")
            need = 0
            if method == b"\x21" and props:  # LZMA2: a dictionary size code, as in .xz
                code = min(props[0], 40)
                need = (1 << 32) - 1 if code == 40 else (2 | (code & 1)) << (code // 2 + 11)
            elif method == b"\x03\x01\x01" and len(props) >= 5:  # LZMA: lc/lp/pb, then the dictionary
                need = int.from_bytes(props[1:5], "little")
            if need > MAX_LZMA_DICTIONARY:
                raise FormatError(f"{path}: the 7z archive needs {need >> 20} MiB to decode (its "
                                  f"dictionary), more than airgap allows ({MAX_LZMA_DICTIONARY >> 20} "
                                  "MiB); refused (7z -mx=9 and lower stay under it)")


def _damaged(path: str, exc: BaseException) -> FormatError:
    return FormatError(f"{path}: damaged 7z archive ({type(exc).__name__}: {exc})")


class _PipeReader(io.RawIOBase):
    """The read end of the decompression pipe; a decoder error surfaces at its end."""

    def __init__(self, fd: int, path: str, worker: threading.Thread, failure: list[BaseException]) -> None:
        self._fd, self._path, self._worker, self._failure = fd, path, worker, failure

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = os.readv(self._fd, [b])
        if n == 0:
            self._worker.join()
            if self._failure:
                if isinstance(self._failure[0], FormatError):  # ours, said as it is
                    raise self._failure[0]
                raise _damaged(self._path, self._failure[0])
        return n

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)  # the writer gets EPIPE and the decompression stops
            self._worker.join(timeout=30)
        super().close()


def open_7z(path: str) -> tuple[BinaryIO, str]:
    """A stream of the one tar the archive holds, and the name to use in messages."""
    import py7zr
    import py7zr.py7zr as engine
    from py7zr.io import Py7zIO, WriterFactory
    # py7zr decompresses in chunks of up to 128 MB (its get_memory_limit): a chunk that
    # size, and its copies, would be the loader's whole memory budget. 1 MiB is plenty.
    engine.get_memory_limit = lambda: 1 << 20  # type: ignore[attr-defined]
    # and an encoded (compressed) header decodes to at most MAX_HEADER, checked by py7zr
    # against the size the header declares, before it decodes it (py7zr's own cap: 256 MiB)
    import py7zr.archiveinfo as headers
    headers.MAX_HEADER_SIZE = MAX_HEADER
    unread = _unread_coders()
    _check_header_size(path)
    from .named import open_named
    f = open_named(path, path)  # a read error names the file; py7zr leaves it to us to close
    try:
        z = py7zr.SevenZipFile(f, "r")
    except OSError as exc:
        f.close()
        if exc.errno is not None:
            raise
        raise _damaged(path, exc) from None
    except Exception as exc:  # the decoders raise their own kinds (LZMAError, Bad7zFile, ...)
        f.close()
        if "header size exceeds limit" in str(exc):  # py7zr's check of MAX_HEADER_SIZE (above)
            raise FormatError(f"{path}: the 7z header decodes to more than the {MAX_HEADER} bytes a "
                              "7z of one tar needs; refused") from None
        raise _damaged(path, exc) from None
    try:
        if z.needs_password():
            raise FormatError(f"{path}: the 7z archive is encrypted; airgap reads plain 7z only")
        _check_coders(z, path, unread)
        items = [i for i in z.list() if not i.is_directory]
        if len(items) != 1:
            raise FormatError(f"{path}: a 7z bundle must hold exactly one tar, it holds "
                              f"{len(items)} files ({', '.join(i.filename for i in items[:5])})")
        name = items[0].filename
        if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
            raise FormatError(f"{path}: member {name!r} points outside the archive")
        if getattr(items[0], "is_symlink", False):
            raise FormatError(f"{path}: {name} is a symbolic link, not a tar")
    except BaseException:
        z.close()
        f.close()
        raise
    from ..layers import bomb, expansion_limit
    size = os.fstat(f.fileno()).st_size
    limit = expansion_limit(size)  # as for the other compressions: the tar is spooled
    r, w = os.pipe()
    failure: list[BaseException] = []
    written = 0

    class Writer(Py7zIO):
        def write(self, s: bytes | bytearray) -> int:
            nonlocal written
            written += len(s)
            if written > limit:
                raise bomb(f"{path}: {name}", f"the archive's {size} bytes", " (extract it first if it is not one)")
            view = memoryview(s)
            while view:
                view = view[os.write(w, view):]
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return 0

    class Factory(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            return Writer()

    def extract() -> None:
        try:
            z.extract(targets=[name], factory=Factory())
        except BrokenPipeError:
            pass  # the reader stopped: a refusal, or the tar ended
        except BaseException as exc:
            failure.append(exc)
        finally:
            os.close(w)
            z.close()
            f.close()
    import threading
    worker = threading.Thread(target=extract, name="7z", daemon=True)
    worker.start()
    return io.BufferedReader(_PipeReader(r, path, worker, failure), 1 << 20), f"{path}!{name}"
