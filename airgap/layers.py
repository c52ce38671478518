"""Layer contents: decompress a layer as a stream to learn its diff_id and size."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from .digest import CHUNK
from .errors import DigestMismatch, FormatError
from .oci import is_uncompressed_layer

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _decompressing(stream: BinaryIO, media_type: str, head: bytes) -> BinaryIO:
    if media_type.endswith("zstd") or head.startswith(_ZSTD_MAGIC):
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
    if media_type.endswith("gzip") or head.startswith(_GZIP_MAGIC):
        from isal import igzip
        return igzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[no-untyped-call,return-value]
    return stream


class _Peek:
    """Put back the bytes read to sniff the compression."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        return self.rest.read(n)

    def readinto(self, b: memoryview) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def uncompressed_digest(stream: BinaryIO, media_type: str, what: str) -> tuple[str, int]:
    """The sha256 and size of the layer's tar, decompressing gzip or zstd as needed."""
    head = stream.read(4)
    src: BinaryIO = _Peek(head, stream)  # type: ignore[assignment]
    if not is_uncompressed_layer(media_type) or head.startswith((_GZIP_MAGIC, _ZSTD_MAGIC)):
        src = _decompressing(src, media_type, head)
    h = hashlib.sha256()
    size = 0
    try:
        while chunk := src.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    except (OSError, EOFError, ValueError) as exc:
        raise FormatError(f"{what}: cannot decompress ({exc})") from None
    except Exception as exc:  # zstandard.ZstdError is not an OSError
        if type(exc).__name__ == "ZstdError":
            raise FormatError(f"{what}: cannot decompress ({exc})") from None
        raise
    return "sha256:" + h.hexdigest(), size


def check_diff_id(stream: BinaryIO, media_type: str, diff_id: str, what: str) -> int:
    """Decompress and compare with the config's diff_id; return the uncompressed size."""
    got, size = uncompressed_digest(stream, media_type, what)
    if got != diff_id:
        raise DigestMismatch(f"{what}: uncompressed content (diff_id)", diff_id, got)
    return size
