"""Digests and the one verified copy loop every blob goes through."""

from __future__ import annotations

# _thread's lock, not threading's: importing threading cost a reload (which starts no thread)
# 3 M instructions; threading is imported where threads are started
import _thread
import contextlib
import hashlib
import io
import os
import stat
from collections.abc import Iterator
from contextvars import ContextVar

from .errors import DigestMismatch, FormatError, IntegrityError
from .words import is_hex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable, Protocol

    class Reader(Protocol):
        def readinto(self, buffer: Any, /) -> int | None: ...

    class Writer(Protocol):
        def write(self, data: Any, /) -> Any: ...

CHUNK = 4 << 20
# The buffer of a stream that blobs are copied from in CHUNK-sized reads (a pipe, a
# split bundle): smaller than CHUNK, because a BufferedReader copies through its buffer
# only reads smaller than it; larger ones go straight into the caller's buffer, so the
# bytes of a blob are not copied once more per layer of wrapping.
STREAM_BUFFER = 256 << 10


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


def check_bytes(data: bytes, digest: str, size: int | None, what: str) -> bytes:
    """``data``, when it hashes to ``digest`` and is ``size`` bytes long (None: any
    length); DigestMismatch otherwise."""
    got = sha256_digest(data)
    if got != digest or (size is not None and len(data) != size):
        raise DigestMismatch(what, digest, got, size, len(data))
    return data


def validate_digest(digest: object, what: str = "digest") -> str:
    """Return the hex part of a sha256 digest; refuse anything else before it becomes a path."""
    if not isinstance(digest, str) or not digest.startswith("sha256:") or not is_hex(digest[7:], 64):
        raise FormatError(f"{what}: not a sha256 digest: {str(digest)[:80]!r}")
    return digest[7:]


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


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


_side_by_side: ContextVar[bool] = ContextVar("side_by_side", default=False)  # per thread


@contextlib.contextmanager
def side_by_side() -> Iterator[None]:
    """Copies made in here run beside others (the engine copies several blobs at once,
    each on its own thread): the cores are busy already, so each takes the simple loop,
    with one buffer, and memory stays at one chunk per copy."""
    token = _side_by_side.set(True)
    try:
        yield
    finally:
        _side_by_side.reset(token)


def copy_verified(src: Reader | BinaryIO, dst: Writer | None, *, expected: str | None, size: int | None,
                  what: str, progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` hashing as it goes; never read past ``size``.

    Raises DigestMismatch when the digest or size differs, FormatError when the source
    ends early. Returns the (digest, size) that was seen. A copy of more than a few
    chunks reads, hashes and writes on three threads (hashlib and file I/O release the
    GIL), so the three overlap: a small ring of buffers, memory stays flat.
    """
    pipelined = dst is not None and (size is None or size > 2 * CHUNK) and not _side_by_side.get()
    with buffers(RING if pipelined else 1) as ring:
        if pipelined and dst is not None:
            seen, got = _copy_pipelined(ring, src, dst, size, progress)
        else:
            seen, got = _copy_simple(ring[0], src, dst, size, progress)
    if size is not None and seen < size:
        raise FormatError(f"{what}: truncated: got {seen} of {size} bytes")
    if expected is not None and got != expected:
        raise DigestMismatch(what, expected, got, size, seen)
    return got, seen


def hashes_to(path: str | os.PathLike[str], digest: str, size: int | None) -> bool:
    """Whether the file at ``path`` still holds ``digest`` (and ``size`` bytes, when given):
    a file kept to be used again unread (a stored blob, a resume blob, a split part)."""
    try:  # not blocking on a FIFO at that name: only a regular file can hold it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (size is not None and st.st_size != size):
            return False
        os.set_blocking(fd, True)
        try:
            copy_verified(f, None, expected=digest, size=size, what=str(path))
        except (IntegrityError, OSError):
            return False
    return True


def buffer() -> memoryview:
    """A CHUNK of page-aligned memory (so that it can be written with O_DIRECT)."""
    import mmap
    return memoryview(mmap.mmap(-1, CHUNK))


_pool: list[memoryview] = []
_pool_lock = _thread.allocate_lock()


@contextlib.contextmanager
def buffers(n: int) -> Iterator[list[memoryview]]:
    """``n`` buffers, kept for the next copy when this one is done: fresh memory costs a
    page fault per 4 KiB on first touch (~20 ms for a ring, more than a 10 MB layer's own
    copy), so a bundle of many layers would pay it per layer. At most a ring is kept."""
    with _pool_lock:
        got = [_pool.pop() for _ in range(min(n, len(_pool)))]
    got += [buffer() for _ in range(n - len(got))]
    try:
        yield got
    finally:
        with _pool_lock:
            _pool.extend(got[:max(0, RING - len(_pool))])


def _copy_simple(view: memoryview, src: Reader | BinaryIO, dst: Writer | None, size: int | None,
                 progress: Callable[[int], None] | None) -> tuple[int, str]:
    hasher = Hasher()
    remaining = size if size is not None else -1
    seen = 0
    while remaining != 0:
        want = CHUNK if remaining < 0 else min(CHUNK, remaining)
        n = src.readinto(view[:want])  # type: ignore[union-attr]
        if not n:
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
    return seen, hasher.digest()


RING = 4  # buffers in flight: one read, one hashed, one written, one spare


def _copy_pipelined(ring: list[memoryview], src: Reader | BinaryIO, dst: Writer, size: int | None,
                    progress: Callable[[int], None] | None) -> tuple[int, str]:
    """Three stages on three threads, a chunk apart: this one reads chunk i+2 while chunk
    i+1 is hashed and chunk i is written (the writer may block on the disk; a pipe is
    drained meanwhile). Each buffer goes read -> hashed -> written -> free again; when
    this returns, the other two have stopped (the ring may serve the next copy)."""
    import queue
    import threading
    hasher = Hasher()
    # SimpleQueue, not Queue: its put and get are C calls that hold no Python-level lock, so
    # a Ctrl-C landing in one cannot leave a lock taken. (With Queue it once did: the cleanup
    # below then waited forever for a lock the interrupted thread itself held.)
    free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
    for view in ring:
        free.put(view)
    to_hash: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
    to_write: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
    failed: list[BaseException] = []

    def hash_chunks() -> None:
        while (chunk := to_hash.get()) is not None:
            hasher.update(chunk)
            to_write.put(chunk)
        to_write.put(None)

    def write_chunks() -> None:
        while (chunk := to_write.get()) is not None:
            if not failed:
                try:
                    _write_all(dst, chunk)
                except BaseException as exc:  # raised again by the reading thread
                    failed.append(exc)
            free.put(memoryview(chunk.obj))  # the whole buffer, back to the ring

    threads = [threading.Thread(target=fn, name=name, daemon=True)
               for fn, name in ((hash_chunks, "sha256"), (write_chunks, "write"))]
    for t in threads:
        t.start()
    remaining = size if size is not None else -1
    seen = 0
    try:
        while remaining != 0 and not failed:
            view = free.get()
            want = CHUNK if remaining < 0 else min(CHUNK, remaining)
            n = 0
            while n < want:  # fill the chunk: a pipe gives 64 KiB at a time
                got = src.readinto(view[n:want])  # type: ignore[union-attr]
                if not got:
                    break
                n += got
            if not n:
                free.put(view)
                break
            to_hash.put(view[:n])
            seen += n
            if remaining > 0:
                remaining -= n
            if progress is not None:
                progress(n)
    finally:
        to_hash.put(None)
        for t in threads:
            t.join()
    if failed:
        raise failed[0]
    return seen, hasher.digest()


class HashingReader(io.RawIOBase):
    """The one hashing reader: reads through ``f``, hashing every byte, never past
    ``size``; when ``f`` ends the bytes must be ``size`` long and hash to ``expected``
    (DigestMismatch, or FormatError when they stop short). ``progress`` hears of each read."""

    def __init__(self, f: BinaryIO, expected: str | None = None, size: int | None = None,
                 what: str = "", progress: Callable[[int], None] | None = None) -> None:
        self._f, self.expected, self.size, self.what, self._progress = f, expected, size, what, progress
        self._h = Hasher()
        self.seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b)
        if self.size is not None:
            view = view[: self.size - self.seen]
        n = self._f.readinto(view) if view else 0  # type: ignore[attr-defined]
        if not n:
            self._check()
            return 0
        self._h.update(view[:n])
        self.seen += n
        if self._progress is not None:
            self._progress(n)
        return int(n)

    def _check(self) -> None:
        if self.size is not None and self.seen < self.size:
            raise FormatError(f"{self.what}: truncated: got {self.seen} of {self.size} bytes")
        got = self._h.digest()
        if self.expected is not None and got != self.expected:
            raise DigestMismatch(self.what, self.expected, got, self.size, self.seen)

    def digest(self) -> str:
        return self._h.digest()

    def close(self) -> None:
        self._f.close()
        super().close()


class HashingWriter:
    """Writes through to ``f`` (every byte, see ``copy_verified``), hashing and counting."""

    def __init__(self, f: Writer) -> None:
        self._f, self._h, self.size = f, Hasher(), 0

    def write(self, data: bytes | memoryview) -> int:
        self._h.update(data)
        _write_all(self._f, memoryview(data))
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        flush = getattr(self._f, "flush", None)
        if flush is not None:
            flush()

    @property
    def digest(self) -> str:
        return self._h.digest()
