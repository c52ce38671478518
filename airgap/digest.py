"""Digests and the one verified copy loop every blob goes through."""

from __future__ import annotations

import hashlib
import re
from typing import Any, BinaryIO, Callable, Protocol

from .errors import DigestMismatch, FormatError

CHUNK = 4 << 20
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


class Hasher:
    """A running sha256 whose result reads as a digest (``sha256:<hex>``)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate_digest(digest: object, what: str = "digest") -> str:
    """Return the hex part of a sha256 digest; refuse anything else before it becomes a path."""
    if not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest):
        raise FormatError(f"{what}: not a sha256 digest: {str(digest)[:80]!r}")
    return digest[7:]


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


class Reader(Protocol):
    def readinto(self, buffer: Any, /) -> int | None: ...


class Writer(Protocol):
    def write(self, data: Any, /) -> Any: ...


def _write_all(dst: Writer, chunk: memoryview) -> None:
    """A raw file may take fewer bytes than offered (a disk filling up): write the rest,
    and fail rather than drop bytes that were hashed."""
    while chunk:
        n = dst.write(chunk)
        if n is None or n == len(chunk):  # buffered writers take all or raise
            return
        if n <= 0:
            import errno
            raise OSError(errno.ENOSPC, "the writer took no bytes")
        chunk = chunk[n:]


def copy_verified(src: Reader | BinaryIO, dst: Writer | None, *, expected: str | None, size: int | None,
                  what: str, progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` hashing as it goes; never read past ``size``.

    Raises DigestMismatch when the digest or size differs, FormatError when the source
    ends early. Returns the (digest, size) that was seen.
    """
    hasher = hashlib.sha256()
    remaining = size if size is not None else -1
    seen = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while remaining != 0:
        want = CHUNK if remaining < 0 else min(CHUNK, remaining)
        n = src.readinto(view[:want])  # type: ignore[union-attr]
        if not n:
            if size is not None:
                raise FormatError(f"{what}: truncated: got {seen} of {size} bytes")
            break
        chunk = view[:n]
        hasher.update(chunk)
        if dst is not None:
            _write_all(dst, chunk)
        seen += n
        if remaining > 0:
            remaining -= n
        if progress is not None:
            progress(n)
    got = "sha256:" + hasher.hexdigest()
    if expected is not None and got != expected:
        raise DigestMismatch(what, expected, got, size, seen)
    return got, seen
