"""Opening what ``load`` and ``verify`` read: a file, split parts, a .7z, or stdin; whole
archives compressed with gzip, bzip2, xz or zstd are decompressed as they are read
(recognized by their first bytes, not their names), as ``docker load`` does."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..digest import CHUNK, STREAM_BUFFER
from ..errors import AirgapError, FormatError, NotFound

from ..layers import MAGIC, MAX_LZMA_DICTIONARY, bomb, compression_of, expansion_limit
from ..records import NamedTuple
from ..words import is_number

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from .split import JoinedFile

SEVENZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"  # a .7z is opened by archive/sevenzip.py, imported only then


def looks_like(head: bytes) -> str:
    """A guess at what a file that is not a tar archive is, for the error message."""
    text = head.lstrip()
    if not head:
        return "an empty file"
    if head.startswith(SEVENZIP_MAGIC):
        return "a 7z archive"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        decoded = ""
    if decoded and all(c.isprintable() or c in "\r\n\t" for c in decoded):
        first = decoded.lstrip().split("\n", 1)[0]
        if text[:1] in (b"{", b"["):
            return "a JSON document"
        if len(first) > 66 and all(c in "0123456789abcdef" for c in first[:64]) and first[64:66] in ("  ", " *"):
            return "a sha256sum list (FILE.sha256 of a split bundle: load FILE.001 instead)"
        return "a text file"
    return "binary data"


class Counting(io.RawIOBase):
    """Reads through to ``f``, telling ``on_read`` how many bytes came."""

    def __init__(self, f: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._f, self._on_read = f, on_read

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)  # type: ignore[attr-defined]
        if n:
            self._on_read(n)
        return n or 0

    def close(self) -> None:
        self._f.close()
        super().close()


class Prefixed(io.RawIOBase):
    """A stream with the bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._rest.readinto(b)  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        self._rest.close()
        super().close()


def read_head(stream: BinaryIO, n: int) -> bytes:
    head = b""
    while len(head) < n:
        chunk = stream.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _decompressing(kind: str, stream: BinaryIO, name: str, head: bytes = b"") -> BinaryIO:
    counted = _Consumed(stream)
    src: Any = counted
    if kind == "gzip":
        from isal import igzip
        out: Any = igzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[no-untyped-call]
    elif kind in ("bzip2", "xz"):
        out = _StreamsReader(src, name, kind)
    else:
        from ..layers import zstd_reader
        out = zstd_reader(src, head, name)
    return _Decompressed(out, kind, name, counted)  # type: ignore[return-value]


MAX_PADDING = 1 << 20  # zero bytes between xz streams read before the input counts as ended


class _StreamsReader(io.RawIOBase):
    """.xz or .bz2: concatenated streams (``pbzip2``, ``xz -T``), and for xz the zero padding
    between them, as ``xz -d`` and Go's bzip2 reader (Docker's) read them; other bytes after
    a stream are refused, as gzip's and zstd's readers refuse them (Python's ``LZMAFile`` and
    ``BZ2File`` drop them silently). xz is decoded under a memory budget (``LZMAFile`` has
    none: 90 KB of xz whose header asks for a 1.5 GiB dictionary filled 650 MB of it)."""

    def __init__(self, stream: BinaryIO, name: str, kind: str) -> None:
        self._s, self._name, self._kind = stream, name, kind
        self._magic = next(magic for magic, k in MAGIC if k == kind)
        self._d: Any = None  # the decoder of the stream under way; None between streams
        self._raw = b""      # input read, not yet given to a decoder
        self._streams = 0
        self._padding = 0    # zero bytes skipped between xz streams

    def readable(self) -> bool:
        return True

    def _decoder(self) -> Any:
        if self._kind == "xz":
            import lzma
            return lzma.LZMADecompressor(memlimit=MAX_LZMA_DICTIONARY)
        import bz2
        return bz2.BZ2Decompressor()

    def readinto(self, b: Any) -> int:
        while True:
            if self._d is None or self._d.needs_input:
                if not self._raw:
                    self._raw = self._s.read(CHUNK)
                    if not self._raw:
                        if self._d is not None:
                            raise EOFError(f"the input ended before the end of the {self._kind} stream")
                        return 0
                if self._d is None:
                    if self._kind == "xz":  # stream padding: a few bytes, by the format
                        stripped = self._raw.lstrip(b"\0")
                        self._padding += len(self._raw) - len(stripped)
                        self._raw = stripped
                        if self._padding > MAX_PADDING:  # endless zeros on a pipe: the end
                            return 0
                        if not self._raw:
                            continue
                    if self._streams and not self._raw.startswith(self._magic[:len(self._raw)]):
                        raise FormatError(f"{self._name}: data after the end of the {self._kind} stream "
                                          f"(at its byte {self._raw[:1]!r}), not another {self._kind} stream")
                    self._d = self._decoder()
                    self._streams += 1
            raw, self._raw = self._raw, b""
            try:
                data = self._d.decompress(raw, len(b))
            except Exception as exc:  # LZMAError, or OSError from bz2
                if "memory" in str(exc).lower() and self._kind == "xz":
                    raise FormatError(f"{self._name}: the xz stream needs more than {MAX_LZMA_DICTIONARY >> 20} "
                                      "MiB to decode (its dictionary); refused (recompress with xz -9 "
                                      "or lower)") from None
                raise
            if self._d.eof:
                self._raw, self._d = self._d.unused_data, None
            if data:
                b[:len(data)] = data
                return len(data)


class _Consumed(io.RawIOBase):
    """Reads through to ``f``, counting what the decoder took."""

    def __init__(self, f: BinaryIO) -> None:
        self._f, self.taken = f, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b) or 0  # type: ignore[attr-defined]
        self.taken += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


class _Decompressed(io.RawIOBase):
    """A decompressing reader whose decoder errors are FormatErrors naming the input, and
    which stops at ``expansion_limit`` of what it read: the archive is spooled to the disk
    whole, and a few MB of zstd, xz or bzip2 (an RLE block) decompress to terabytes."""

    def __init__(self, f: Any, kind: str, name: str, raw: _Consumed) -> None:
        self._f, self.kind, self.name, self._raw = f, kind, name, raw
        self._given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self._f.read(len(b))
        except AirgapError:
            raise
        except (OSError, EOFError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            raise FormatError(f"{self.name}: damaged {self.kind} data ({exc})") from None
        except Exception as exc:  # zstandard.ZstdError
            raise FormatError(f"{self.name}: damaged {self.kind} data ({exc})") from None
        self._given += len(data)
        if self._given > expansion_limit(self._raw.taken):
            raise bomb(f"{self.name} ({self.kind})", f"the {self._raw.taken} bytes read",
                       " (decompress it to a file first if it is not one)")
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._f.close()
        self._raw.close()  # the decoders leave the file they read open
        super().close()


class Input(NamedTuple):
    """What was opened: a seekable file, or a stream (a pipe, or decompressed data)."""

    f: BinaryIO
    name: str
    seekable: bool
    volumes: JoinedFile | None = None  # a split bundle's parts (to name a damaged one)


def _seekable(f: BinaryIO) -> bool:
    """Whether ``f`` can be read by offset: it seeks to its end too (a file of /proc or
    /sys is "regular" and seeks from its start, but not from its end: a stream then)."""
    try:
        pos = f.seek(0, os.SEEK_CUR)
        f.seek(0, os.SEEK_END)
        f.seek(pos)
        return f.seekable()
    except OSError:
        return False


def _widen_pipe(f: BinaryIO) -> None:
    """Ask for a 1 MiB pipe buffer (Linux F_SETPIPE_SZ): fewer, larger reads."""
    import fcntl
    try:
        fcntl.fcntl(f.fileno(), 1031, 1 << 20)
    except (OSError, ValueError, AttributeError):
        pass  # not a pipe, not Linux, or the limit is lower: 64 KiB reads still work


def open_input(path: str, spool_dir: Path | None, stdin: BinaryIO | None = None,
               on_read: Callable[[int], None] | None = None) -> Input:
    """Open ``path`` (``-`` for stdin), decompressing a compressed archive as it is read.

    ``FILE.001`` (or ``FILE`` when only its parts exist) opens a split bundle, a ``.7z``
    the bundle inside it. ``on_read`` hears of every byte read from a pipe.
    """
    if path == "-":
        if sys.stdin.isatty():
            raise AirgapError("requested to read stdin, but stdin is a terminal; name a FILE or redirect")
        raw = stdin or _named_stdin()
        name, volumes = "stdin", None
        seekable = _seekable(raw)
        if not seekable:
            raw = _pipe(raw, on_read)
    else:
        raw, name, seekable, volumes = _open_path(path, on_read)
    try:
        head = read_head(raw, 32)
        kind = compression_of(head)
        if kind:
            stream: BinaryIO = raw if seekable else Prefixed(head, raw)  # type: ignore[assignment]
            if seekable:
                raw.seek(0)
            reader = io.BufferedReader(_decompressing(kind, stream, name, head), CHUNK)  # type: ignore[type-var]
            return Input(reader, f"{name} ({kind})", False, volumes)
        if volumes is not None:  # read in one pass, its parts checked on the way (seekable still)
            raw.seek(0)
            return Input(io.BufferedReader(volumes, STREAM_BUFFER), name, False, volumes)
        if seekable:
            raw.seek(0)
            return Input(raw, name, True)
        return Input(io.BufferedReader(Prefixed(head, raw), STREAM_BUFFER), name, False)
    except BaseException:
        raw.close()
        raise


def _named_stdin() -> BinaryIO:
    """Standard input, whose read errors name it (a file on a failing stick, ``< b.tar``)."""
    from .named import open_named
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a wrapper with no descriptor
        return sys.stdin.buffer
    return open_named(os.dup(fd), "stdin")


def _pipe(raw: BinaryIO, on_read: Callable[[int], None] | None) -> BinaryIO:
    """A pipe read as a stream: a wider pipe buffer, and every byte counted for progress."""
    _widen_pipe(raw)
    return io.BufferedReader(Counting(raw, on_read), STREAM_BUFFER) if on_read is not None else raw


def split_base(path: str) -> Path | None:
    """The base name when ``path`` is a part (``FILE.001``) or a split bundle's name
    (``FILE`` when only its parts exist)."""
    p = Path(path)
    base, dot, number = p.name.rpartition(".")
    if base and dot and len(number) == 3 and is_number(number) and p.exists():
        return p.with_name(base)
    if not p.exists():
        from .split import part_name
        if part_name(p, 1).exists():
            return p
    return None


def _open_path(path: str, on_read: Callable[[int], None] | None) -> tuple[BinaryIO, str, bool, JoinedFile | None]:
    """A split bundle (and its volumes), a .7z, a file, or a FIFO (``<(…)``,
    ``/dev/stdin`` on a pipe): opened once, for a FIFO's bytes are gone once read.
    archive/split.py is imported for split bundles only."""
    import stat
    base = split_base(path)
    if base is not None:
        from .split import open_split
        joined, name = open_split(base)
        return joined, name, True, joined  # type: ignore[return-value]
    from .named import open_named
    try:
        f: BinaryIO = open_named(path, path)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AirgapError(f"{path}: is a directory, not an archive{_archives_in(path)}") from None
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) or not _seekable(f):
        return _pipe(f, on_read), path, False, None
    if os.pread(f.fileno(), len(SEVENZIP_MAGIC), 0) == SEVENZIP_MAGIC:
        f.close()
        from .sevenzip import open_7z
        return (*open_7z(path), False, None)
    return f, path, True, None


def _archives_in(directory: str) -> str:
    """A hint naming the archives a directory holds (`-i /media/usb`), from its first
    names only (a stick may hold many files)."""
    import itertools
    if os.path.isfile(os.path.join(directory, "oci-layout")):
        return (f" (it is an OCI layout: load it as an archive, `tar -C {directory} -c . | airgap load`, "
                f"or with skopeo copy oci:{directory} oci-archive:FILE)")
    try:
        with os.scandir(directory) as it:
            names = sorted(e.name for e in itertools.islice(it, 1000)
                           if e.name.endswith((".tar", ".001", ".7z", ".gz", ".xz", ".zst", ".bz2")))
    except OSError:
        return ""
    if not names:
        return ""
    return "; name the archive in it: " + ", ".join(os.path.join(directory, n) for n in names[:3]) + \
        (", …" if len(names) > 3 else "")


def spool(stream: BinaryIO, spool_dir: Path | None, name: str) -> BinaryIO:
    """Copy a tar stream into an anonymous temp file (gone when closed, or if we are
    killed), up to its end-of-archive marker: what follows is not read (a pipe of zeros
    ends at its first block), and every header is checked on the way."""
    import tempfile
    from .tar import TarStream
    out = tempfile.TemporaryFile(dir=spool_dir, prefix=f"{os.getpid()}-stdin-")
    try:
        walk = TarStream(Tee(stream, out), name)  # type: ignore[arg-type]
        while walk.next() is not None:  # each member's data is read past, through the tee
            pass
        out.flush()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    finally:
        stream.close()
    return out


class Tee:
    """A reader of ``f`` that writes what it reads to ``out``."""

    def __init__(self, f: BinaryIO, out: BinaryIO) -> None:
        self._f, self._out = f, out

    def read(self, n: int) -> bytes:
        data = self._f.read(n)
        self._out.write(data)
        return data

    def readinto(self, b: memoryview) -> int:
        n = self._f.readinto(b) or 0  # type: ignore[attr-defined]
        self._out.write(b[:n])
        return n
