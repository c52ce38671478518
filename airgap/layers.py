"""Layer contents: decompress a layer as a stream to learn its diff_id and size.

Decompression is the expensive step, so it never runs on bytes whose distribution digest
has not been checked, never past the uncompressed size ``bundle.json`` declares, and,
unless a trusted signature vouches for that size, never past what a gzip layer of the
same size could give (``expansion_limit``); a zstd frame that asks for a window larger
than ``MAX_ZSTD_WINDOW`` is refused before any memory is spent on it.
"""

from __future__ import annotations

import io
import os

from .digest import CHUNK, Hasher, copy_verified
from .errors import DigestMismatch, FormatError
from .oci import Descriptor, is_uncompressed_layer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable

MAGIC = [(b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd")]
HEAD = max(len(magic) for magic, _ in MAGIC)  # the first bytes that tell them all
MAX_ZSTD_WINDOW = 32 << 20  # zstd's default levels use 8 MiB at most; --long=27 would need 128
MAX_LZMA_DICTIONARY = 80 << 20  # xz -9e and 7z -mx=9 decode in ~65 MiB (a 64 MiB dictionary)
MAX_EXPANSION = 1032  # deflate's own limit: a 258-byte match in 2 bits
EXPANSION_SLACK = 64 << 20  # so that a small layer of one repeated byte (test data, padding) passes


def compression_of(head: bytes) -> str:
    """``gzip``, ``bzip2``, ``xz``, ``zstd`` by magic bytes (the one table); ``""`` else."""
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    return ""


def compression(head: bytes) -> str:
    """A layer's compression, ``gzip``, ``zstd`` or ``""``, by its first bytes alone, as
    Docker, containerd and skopeo read a layer whatever its media type says: a plain tar
    listed as ``tar+gzip`` is read as the tar it is (so it loads, saves and pushes as it
    does in Docker), and anything else as the raw bytes it is (a bzip2 or xz layer is
    refused before: ``check_layer_head``)."""
    kind = compression_of(head)
    return kind if kind in ("gzip", "zstd") else ""


def check_layer_head(head: bytes, desc: Descriptor, what: str) -> None:
    """An image layer's first bytes (``HEAD`` of them) against its listing. Listed as a
    plain tar (its digest is then its diff_id), it must not be compressed: Docker and
    containerd tell compression by the first bytes, would decompress it and find another
    diff_id than its config gives (and refuse the image). And no layer is bzip2 or xz:
    OCI layers are tar, gzip or zstd; Docker would decompress such a one, containerd could
    not read it, so what its diff_id is depends on who reads it."""
    kind = compression_of(head)
    if kind in ("bzip2", "xz"):
        raise FormatError(f"{what}: its bytes are {kind}-compressed, which no image layer is (OCI "
                          "layers are tar, gzip or zstd: Docker would decompress it, containerd could not)")
    if kind and is_uncompressed_layer(desc.media_type):
        raise FormatError(f"{what}: listed as an uncompressed layer ({desc.media_type}), but its bytes "
                          f"are {kind}-compressed: Docker and containerd would decompress it and find "
                          "another diff_id than its config gives")



def check_layer_file(path: str | os.PathLike[str], desc: Descriptor, what: str) -> None:
    """``check_layer_head`` on a stored or staged layer's first bytes, read without leaving
    the blob in the page cache (a layer goes to the disk with O_DIRECT)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        head = os.pread(fd, HEAD, 0)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    check_layer_head(head, desc, what)

def zstd_reader(stream: BinaryIO, head: bytes, what: str) -> BinaryIO:
    """A zstd stream reader that refuses frames needing more memory than the budget."""
    import zstandard
    try:
        window = zstandard.get_frame_parameters(head).window_size
    except zstandard.ZstdError:
        window = 0  # a damaged header: the decoder says so
    if window > MAX_ZSTD_WINDOW:
        raise FormatError(f"{what}: the zstd frame needs a {window >> 20} MiB window, more than "
                          f"airgap allows ({MAX_ZSTD_WINDOW >> 20} MiB); recompress it with a "
                          "default level (no --long)")
    return zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW).stream_reader(
        stream, read_across_frames=True)


def expansion_limit(compressed_size: int) -> int:
    """What a layer whose uncompressed size nobody declared may decompress to: as much as
    a gzip layer of its size could (deflate cannot pass 1032:1), so that a zstd one (an
    RLE block reaches ~32,000:1) is no bigger a bomb."""
    return compressed_size * MAX_EXPANSION + EXPANSION_SLACK


def bomb(what: str, of: str, then: str = "") -> FormatError:
    """The refusal of data that decompressed past ``expansion_limit`` of ``of`` bytes."""
    return FormatError(f"{what}: decompresses to more than {MAX_EXPANSION} times {of}, which no gzip "
                       f"can; refused as a decompression bomb{then}")


def uncompressed_digest(stream: BinaryIO, desc: Descriptor, what: str, declared: int | None = None,
                        bound: bool = True) -> tuple[str, int]:
    """The sha256 and size of the layer's tar, decompressing gzip or zstd as needed;
    refuses to produce more than the ``declared`` size (bundle.json's) and, with ``bound``,
    more than ``expansion_limit`` of the layer's size. No bound is for sizes a trusted
    signature vouches for, and for stored layers (each passed one as it entered)."""
    limits = ([] if declared is None else [declared]) + ([expansion_limit(desc.size)] if bound else [])
    limit = min(limits) if limits else None
    head = stream.read(32)
    check_layer_head(head, desc, what)
    kind = compression(head)
    from .archive.input import Prefixed
    src: BinaryIO = io.BufferedReader(Prefixed(head, stream), CHUNK)
    try:
        if kind == "zstd":
            src = zstd_reader(src, head, what)
        elif kind == "gzip":
            from isal import igzip
            src = igzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[no-untyped-call,assignment]
        h = Hasher()
        size = 0
        while chunk := src.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if limit is not None and size > limit:
                if limit == declared:
                    raise FormatError(f"{what}: decompresses to more than the {limit} bytes bundle.json "
                                      "declares; stopped there")
                raise bomb(what, f"its {desc.size} bytes")
    except (OSError, EOFError, ValueError) as exc:
        raise FormatError(f"{what}: cannot decompress ({exc})") from None
    except FormatError:
        raise
    except Exception as exc:  # zstandard.ZstdError is not an OSError
        if type(exc).__name__ == "ZstdError":
            raise FormatError(f"{what}: cannot decompress ({exc})") from None
        raise
    return h.digest(), size


def check_layer(open_blob: Callable[[], BinaryIO], desc: Descriptor, diff_id: str, what: str,
                declared: int | None, bound: bool = True) -> int:
    """The full check of a compressed layer: its distribution digest first (cheap, and what
    the signature pins), then its diff_id, decompressing at most ``declared`` bytes (and,
    with ``bound``, ``expansion_limit``). Returns the uncompressed size."""
    with open_blob() as f:
        copy_verified(f, None, expected=desc.digest, size=desc.size, what=what)
    with open_blob() as f:
        got, size = uncompressed_digest(f, desc, what, declared, bound)
    if got != diff_id:
        raise DigestMismatch(f"{what}: uncompressed content (diff_id)", diff_id, got)
    if declared is not None and declared != size:
        raise FormatError(f"{what}: uncompressed size {size}, the bundle says {declared}")
    return size


class DiffIdTee(io.RawIOBase):
    """Reads through ``stream`` (for a sink that verifies the distribution digest) and
    feeds the same bytes, through a pipe, to a thread that decompresses and hashes them,
    capped at the ``declared`` uncompressed size: the diff_id is checked in the same read
    as the digest, on the other core. ``finish()`` after the sink has accepted the blob
    (its digest matched) raises what the decompression found."""

    def __init__(self, stream: BinaryIO, desc: Descriptor, diff_id: str, declared: int, what: str,
                 bound: bool = True) -> None:
        import threading
        self._stream, self.desc, self.diff_id, self.declared, self.what = stream, desc, diff_id, declared, what
        r, self._w = os.pipe()
        self._found: list[tuple[str, int] | BaseException] = []

        def work() -> None:
            with os.fdopen(r, "rb") as pipe:
                try:
                    self._found.append(uncompressed_digest(pipe, desc, what, declared, bound))
                except BaseException as exc:  # reported by finish(), after the digest check
                    self._found.append(exc)
        self._thread = threading.Thread(target=work, name="diff_id", daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._stream.readinto(b)  # type: ignore[attr-defined]
        if n and self._w >= 0:
            view = memoryview(b)[:n]
            try:
                while view:
                    view = view[os.write(self._w, view):]
            except BrokenPipeError:  # the decompressor stopped (the cap, damage): keep copying
                self._close_pipe()
        elif not n:
            self._close_pipe()
        return int(n or 0)

    def _close_pipe(self) -> None:
        if self._w >= 0:
            os.close(self._w)
            self._w = -1

    def finish(self) -> None:
        self._close_pipe()
        self._thread.join()
        found = self._found[0] if self._found else FormatError(f"{self.what}: decompression stopped")
        if isinstance(found, BaseException):
            raise found
        got, size = found
        if got != self.diff_id:
            raise DigestMismatch(f"{self.what}: uncompressed content (diff_id)", self.diff_id, got)
        if size != self.declared:
            raise FormatError(f"{self.what}: uncompressed size {size}, the bundle says {self.declared}")

    def close(self) -> None:
        self._close_pipe()
        self._thread.join()
        self._stream.close()
        super().close()
