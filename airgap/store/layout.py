"""Blobs, ``index.json`` and the writer lock of a store directory.

A blob is written into an anonymous file (``O_TMPFILE`` in ``.tmp/``: a killed process
leaves nothing behind), hashed as it is written, checked against its digest and size,
fsynced and only then linked into the resume area ``.resume/`` under its digest. A
transaction publishes its staged blobs into ``blobs/`` by rename and then replaces
``index.json`` (write, fsync, rename); if the index cannot be written, the blobs it
published are taken back, so blobs and names appear together or not at all. Writers
hold an exclusive ``flock`` on ``.lock``; readers take none and see either the old or
the new ``index.json`` (a blob that the old one named may be gone by the time they read
it: the CLI's ``stable_read`` reads again then; ``save`` and ``store check`` take the lock
shared instead). Files are created with the process umask and, when the writer
is not the store's owner (root loading into a user's store), handed to the owner.
"""

from __future__ import annotations

import _thread
import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from ..digest import check_bytes, copy_verified, hashes_to, sha256_digest, validate_digest
from ..errors import AirgapError, FormatError, IntegrityError, NotFound, StoreCorrupt
from ..records import NamedTuple
from ..words import is_number
from ..oci import (ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, IMAGE_CONFIG_TYPES, MAX_DOCUMENT, OCI_INDEX,
                   Descriptor, load_json, subject_of)
from ..reference import Reference, parse_reference
from ..smallfile import read_capped, read_small
from ..space import disk_full

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
TMP_DIR = ".tmp"
RESUME_DIR = ".resume"
CACHED_BLOBS = "blobs"  # under .cache/: compressed forms of stored layers
LOCK_FILE = ".lock"
MAX_INDEX = 256 << 20  # index.json: some 600,000 images' entries
MAX_INDEX_CONTAINERS = 4_000_000  # its JSON objects and arrays (two or three an entry)


def default_store_path() -> Path:
    """``$AIRGAP_STORE``; /var/lib/airgap for root; ``$XDG_DATA_HOME/airgap`` (a relative
    one is ignored, as the XDG spec says), else ``~/.local/share/airgap``. No home directory
    is an error: never a store made in the current directory (``~`` left as it is)."""
    env = os.environ.get("AIRGAP_STORE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/airgap")
    data = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data):
        from ..userdirs import home
        data = os.path.join(home("name a store with --store DIR or $AIRGAP_STORE"), ".local", "share")
    return Path(data) / "airgap"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_UMASK: int | None = None


def file_mode() -> int:
    """0666 less the process umask (0644 under the usual 022)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


_FLINK: str | None = None  # how this kernel links an O_TMPFILE file: "proc", "empty", "" (it cannot)
_FLINK_LOCK = _thread.allocate_lock()


def _linkat_empty(fd: int, target: Path) -> None:
    from ..libc import last_error, libc
    c = libc()
    if c is None:
        raise OSError(f"no C library to link {target} with")
    at_fdcwd, at_empty_path = -100, 0x1000
    if c.linkat(fd, b"", at_fdcwd, os.fsencode(target), at_empty_path) != 0:
        raise last_error(str(target))


def _flink(fd: int, target: Path) -> None:
    """Give the anonymous file ``fd`` the name ``target`` (which must not exist)."""
    if _FLINK == "proc":
        os.link(f"/proc/self/fd/{fd}", target, follow_symlinks=True)
    else:
        _linkat_empty(fd, target)


def _tmpfile_works(tmp: Path) -> str:
    """Probe once how (and whether) anonymous files can be linked here."""
    global _FLINK
    with _FLINK_LOCK:
        if _FLINK is None:
            _FLINK = ""
            try:
                fd = os.open(tmp, os.O_TMPFILE | os.O_RDWR, 0o600)
            except (AttributeError, OSError):
                return _FLINK
            probe = tmp / f"{os.getpid()}-probe"
            try:
                for way in ("proc", "empty"):
                    probe.unlink(missing_ok=True)
                    try:
                        _FLINK = way
                        _flink(fd, probe)
                        break
                    except (OSError, ImportError, AttributeError):  # no /proc, no ctypes
                        _FLINK = ""
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        return _FLINK


def _alive(pid: int) -> bool:
    """Whether ``pid`` may run: only "no such process" says it does not (another user's
    process, or a number no pid can be, is kept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        pass
    return True


class StagedFile:
    """A file being written in the store, invisible (and gone if the process dies) until
    ``finish()`` checks its size, fsyncs it and links it under its digest."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path: Path | None = None  # set only for the named fallback
        self.size = 0
        if _tmpfile_works(store.tmp):
            self.fd = os.open(store.tmp, os.O_TMPFILE | os.O_RDWR, file_mode())
        else:  # no anonymous files here: a named temp file, removed on any failure
            import tempfile
            fd, name = tempfile.mkstemp(dir=store.tmp, prefix=f"{os.getpid()}-")
            os.fchmod(fd, file_mode())
            self.fd, self.path = fd, Path(name)
        store.own(self.fd)
        from ..writeback import DiskWriter  # what is written: a reload stages nothing
        self._out = DiskWriter(self.fd)  # so the fsync in finish() has little to wait for

    def write(self, data: bytes | memoryview) -> int:
        self._out.write(data)
        self.size += len(data)
        return len(data)

    def finish(self, digest: str, size: int, target: Path | None = None) -> Path:
        """fsync, check the size on disk, link into the resume area (or at ``target``);
        return that path."""
        try:
            os.fsync(self.fd)
            on_disk = os.fstat(self.fd).st_size
            if on_disk != size or self.size != size:
                raise IntegrityError(f"blob {digest}: {on_disk} bytes reached the disk, "
                                     f"expected {size}; nothing was published")
            if target is None:
                target = self.store.resume_path(digest)
                self.store.verified_here.add(digest)
            self.store.link_staged(self, target)
        finally:
            self.close()
        return target

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class Image(NamedTuple):
    """One stored image or index: its descriptor and the names that point at it."""

    descriptor: Descriptor
    names: list[Reference]

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def subject(self) -> str | None:
        """The image this one is attached to (a signature, an SBOM), or None for an image."""
        return subject_of(self.descriptor)


class Attachments:
    """What is attached to what among ``images`` (signatures, SBOMs, attestations, by their
    subject), tabled once for any number of lookups."""

    def __init__(self, images: list[Image]) -> None:
        self.position = {id(img): i for i, img in enumerate(images)}
        self.by_subject: dict[str, list[Image]] = {}
        for img in images:
            if img.subject is not None:
                self.by_subject.setdefault(img.subject, []).append(img)

    def of(self, digests: set[str], transitive: bool = False) -> list[Image]:
        """What is attached to any of ``digests``, in index order; with ``transitive`` what
        is attached to those too, a level at a time."""
        out: list[Image] = []
        seen: set[str] = set()
        level = set(digests)
        while level:
            found = sorted({id(a): a for s in level for a in self.by_subject.get(s, ())
                            if a.digest not in seen}.values(), key=lambda a: self.position[id(a)])
            seen.update(a.digest for a in found)
            out += found
            level = {a.digest for a in found} if transitive else set()
        return out


def entry_name(desc: Descriptor) -> Reference | None:
    name = desc.annotations.get(ANNOTATION_REF_NAME) or desc.annotations.get(ANNOTATION_CONTAINERD_NAME)
    if not name:
        return None
    try:
        return parse_reference(name)
    except AirgapError:
        return None


def named_descriptor(desc: Descriptor, name: Reference | None) -> Descriptor:
    """The index entry for ``desc`` under ``name`` (no name: a dangling entry)."""
    ann = {k: v for k, v in desc.annotations.items()
           if k not in (ANNOTATION_REF_NAME, ANNOTATION_CONTAINERD_NAME)}
    if name is not None:
        ann[ANNOTATION_REF_NAME] = str(name)
        ann[ANNOTATION_CONTAINERD_NAME] = str(name)
    raw = {k: v for k, v in desc.raw.items() if k in ("platform", "artifactType")}
    return Descriptor(desc.media_type, desc.digest, desc.size, ann, desc.platform, raw)


class Store:
    """A store directory. ``create=True`` (the default) makes the layout if it is missing;
    ``on_wait`` is told the pid of another writer when the lock has to be waited for."""

    def __init__(self, root: Path | str, create: bool = True,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.tmp = self.root / TMP_DIR
        self.resume = self.root / RESUME_DIR
        self.index_path = self.root / "index.json"
        self.on_wait = on_wait
        self._owner: tuple[int, int] | None = None
        self.verified_here: set[str] = set()  # staged into the resume area by this process
        if create:
            self._ensure()

    def exists(self) -> bool:
        return self.index_path.is_file()

    def _ensure(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            st = self.root.stat()
            if st.st_uid != os.geteuid():
                self._owner = (st.st_uid, st.st_gid)
            for d in (self.root / "blobs", self.blobs, self.tmp, self.resume):
                if not d.is_dir():
                    d.mkdir(exist_ok=True)
                    self.own_path(d)
            if not (self.root / "oci-layout").exists():
                self._atomic_write(self.root / "oci-layout", LAYOUT)
            if not self.index_path.exists():
                self._check_new()
                self._atomic_write(self.index_path, self._index_bytes([]))
        except FileExistsError as exc:  # mkdir(exist_ok) over a file
            raise AirgapError(f"cannot create store at {self.root}: {exc.filename or self.root} exists "
                              "and is not a directory") from None
        except OSError as exc:
            raise AirgapError(f"cannot create store at {self.root}: {exc.strerror}") from None

    # -- ownership -------------------------------------------------------------
    def own(self, fd: int) -> None:
        """Give a new file to the store's owner when another user (root) writes it."""
        if self._owner is not None:
            os.fchown(fd, *self._owner)

    def own_path(self, path: Path) -> None:
        if self._owner is not None:
            os.chown(path, *self._owner)

    # -- locking ---------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, shared: bool = False) -> Iterator[None]:
        """Hold the writer lock (``shared``: a reader's, which writers wait for, as ``save``
        takes so that nothing it reads is removed under it); blocks, saying so, while
        another process holds it the other way. A reader that may not write the store (on a
        read-only filesystem, or another user's) takes its shared lock on the file opened
        read-only, or none when there is no lock file it could open: nothing it could
        coordinate with has one."""
        path = self.root / LOCK_FILE
        writable = True
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
        except OSError as exc:
            if not shared or exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            writable = False
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                fd = -1
        if fd < 0:
            yield
            return
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            if writable:
                self.own(fd)
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.on_wait is not None:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                    self.on_wait(f"waiting for the store lock held by pid {holder} ({self.root})")
                fcntl.flock(fd, mode)
            if not shared:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    def sweep_dead_temps(self) -> None:
        """Remove the temp names (``.tmp/PID-...``) of writers killed between creating and
        renaming them; a name whose process still runs (or cannot be told) is kept. Call with
        the lock held."""
        try:
            entries = list(os.scandir(self.tmp))
        except OSError:
            return
        for entry in entries:
            pid = entry.name.split("-", 1)[0]
            if not is_number(pid) or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)

    # -- blobs -----------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / validate_digest(digest)

    def resume_path(self, digest: str) -> Path:
        return self.resume / validate_digest(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def open_blob(self, digest: str) -> BinaryIO:
        """A stored blob, open for reading; anything but a regular file at its name (a FIFO
        would block the reader forever, a directory) is damage, said as such."""
        try:
            fd = os.open(self.blob_path(digest), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StoreCorrupt(f"blob {digest} is missing from the store {self.root}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StoreCorrupt(f"blob {digest} in the store {self.root} is not a regular file; "
                               "run `airgap store check`")
        os.set_blocking(fd, True)
        return open(fd, "rb")

    def read_blob(self, digest: str, limit: int = MAX_DOCUMENT, verify: bool = True) -> bytes:
        """Read a small blob (manifest, config) whole and check its digest.

        ``verify=False`` is for listings: blobs were checked when they were written, and
        ``store check`` re-hashes them; what leaves the store is always checked.
        """
        with self.open_blob(digest) as f:
            data = read_capped(f, limit, os.fstat(f.fileno()).st_size)
        if data is None:
            raise StoreCorrupt(f"blob {digest} is larger than {limit} bytes")
        if verify and sha256_digest(data) != digest:
            raise StoreCorrupt(f"blob {digest} in the store is damaged (its content has another digest)")
        return data

    def blob_intact(self, digest: str) -> bool:
        """Re-hash a stored blob: is it still what its name says?"""
        return hashes_to(self.blob_path(digest), digest, None)

    def all_blobs(self) -> Iterator[str]:
        for entry in os.scandir(self.blobs):
            if entry.is_file() and len(entry.name) == 64:
                yield "sha256:" + entry.name

    def resumable(self, digest: str, size: int) -> Path | None:
        """A blob an interrupted load verified and left in the resume area, if it is whole
        and still what its name says. It is hashed again here (from the store's disk, not
        the input): it was checked by another process, perhaps days ago, and enters
        ``blobs/`` from here unread; a damaged one is passed over (the blob is read from
        the input again and replaces it)."""
        path = self.resume_path(digest)
        try:
            st = path.lstat()
        except FileNotFoundError:
            return None
        if not (stat.S_ISREG(st.st_mode) and st.st_size == size):
            return None
        if digest in self.verified_here:  # staged by this very load: just checked
            return path
        return path if hashes_to(path, digest, size) else None

    def new_staged(self) -> StagedFile:
        return StagedFile(self)

    def link_staged(self, staged: StagedFile, target: Path) -> None:
        """Give a staged file the name ``target`` (replacing a file of that name)."""
        if staged.path is not None:
            os.replace(staged.path, target)
            staged.path = None
            return
        try:  # a new name is linked at once: nothing is left behind if the process dies here
            _flink(staged.fd, target)
            return
        except FileExistsError:
            pass
        tmp = self.tmp / f"{os.getpid()}-{_thread.get_ident()}-link"
        tmp.unlink(missing_ok=True)
        _flink(staged.fd, tmp)
        try:
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _atomic_write(self, path: Path, data: bytes) -> None:
        if not self.tmp.is_dir():  # creating the layout: .tmp comes first, but be safe
            self.tmp.mkdir(parents=True, exist_ok=True)
        staged = StagedFile(self)
        try:
            staged.write(data)
            os.fsync(staged.fd)
            self.link_staged(staged, path)
        finally:
            staged.discard()
        _fsync_dir(path.parent)

    def cache_get(self, kind: str, digest: str) -> str | None:
        """Facts derived from a blob (never trusted for integrity, only to save work); a
        cache entry that is not a small regular file is no entry."""
        try:
            data = read_small(self.root / ".cache" / kind / validate_digest(digest), 4096, "cache entry",
                              regular_only=True)
            return data.decode()
        except (OSError, FormatError, UnicodeDecodeError):
            return None

    def cache_put(self, kind: str, digest: str, value: str) -> None:
        try:
            self._atomic_write(self._cache_dir(kind) / validate_digest(digest), value.encode())
        except OSError:
            pass  # a cache that cannot be written only costs time

    def _cache_dir(self, kind: str) -> Path:
        d = self.root / ".cache" / kind
        for p in (d.parent, d):
            if not p.is_dir():
                p.mkdir(exist_ok=True)
                self.own_path(p)
        return d

    def cached_blob_path(self, digest: str) -> Path:
        """A blob derived from stored ones (a layer's compressed form), kept to save work:
        not part of the store's content (``system prune`` removes them)."""
        return self.root / ".cache" / CACHED_BLOBS / validate_digest(digest)

    def put_cached_blob(self, staged: StagedFile, digest: str, size: int) -> Path:
        """Give a written, checked blob its name in the cache (``StagedFile.finish``)."""
        target = staged.finish(digest, size, self._cache_dir(CACHED_BLOBS) / validate_digest(digest))
        _fsync_dir(target.parent)
        return target

    # -- index -----------------------------------------------------------------
    def index_stamp(self) -> tuple[int, int] | None:
        """What changes whenever ``index.json`` is replaced (its inode and time), or None."""
        try:
            st = os.stat(self.index_path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def entries(self) -> list[Descriptor]:
        try:  # a regular file (a FIFO there would block every verb), of a bounded size
            data = read_small(self.index_path, MAX_INDEX, "store index", regular_only=True)
        except FileNotFoundError:
            self._check_new()
            return []
        except FormatError as exc:
            raise StoreCorrupt(str(exc)) from None
        doc = load_json(data, f"{self.index_path}", max_containers=MAX_INDEX_CONTAINERS, depth=False)
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
            raise StoreCorrupt(f"{self.index_path} is not an OCI index (no manifests list)")
        return [Descriptor.from_json(d, str(self.index_path)) for d in doc["manifests"]]

    def _check_new(self) -> None:
        """A store without ``index.json`` is a new one only if it holds no blob. Otherwise
        its names are lost, and to prune every blob would look unreferenced: refuse."""
        try:
            with os.scandir(self.blobs) as it:
                held = next(it, None) is not None
        except FileNotFoundError:
            held = False
        if held:
            raise StoreCorrupt(f"{self.index_path} is missing, but the store holds blobs: its names "
                               "are lost, and airgap will not take it for an empty store (restore "
                               "index.json, or load the bundles again into a new store)")

    @staticmethod
    def _index_bytes(entries: list[Descriptor]) -> bytes:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                               "manifests": [e.to_json() for e in entries]}
        # compact: json's C encoder (an indented one runs in Python, ~10x slower: seconds
        # for a store of 100,000 names, and every change of a name writes the whole index)
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    def write_entries(self, entries: list[Descriptor]) -> None:
        """Replace index.json atomically. Call with the lock held. An index that ``entries``
        would refuse to read back (the store then unusable) is not written."""
        data = self._index_bytes(entries)
        if len(data) > MAX_INDEX or data.count(b"{") + data.count(b"[") > MAX_INDEX_CONTAINERS:
            raise AirgapError(f"{self.root}: the store's index would list {len(entries)} entries in "
                              f"{len(data)} bytes, more than airgap reads back ({MAX_INDEX >> 20} MiB); "
                              "remove images (rmi, image prune) or use another store")
        with disk_full(self.root, 0):
            self._atomic_write(self.index_path, data)

    def same_image(self, a: Descriptor, b: Descriptor) -> bool:
        """Whether two stored manifests or indexes are one image to Docker: the same image
        ID (the config digest of the manifest, or of an index's manifest for this host).
        Anything unreadable is not the same (what loses its name then stays, dangling)."""
        from .query import ImageInfo
        try:
            one, other = ImageInfo(self, Image(a, [])).manifest, ImageInfo(self, Image(b, [])).manifest
        except AirgapError:
            return False
        # artifacts (OCI's empty config is every artifact's) are never one image by their config
        return one.config.media_type in IMAGE_CONFIG_TYPES and one.config.digest == other.config.digest

    def images(self, entries: list[Descriptor] | None = None) -> list[Image]:
        """Every stored image (of ``entries``, by default the index's), in index order,
        with its names (none: dangling)."""
        by_digest: dict[str, Image] = {}
        seen: set[tuple[str, Reference]] = set()
        for desc in self.entries() if entries is None else entries:
            img = by_digest.get(desc.digest)
            if img is None:
                img = by_digest[desc.digest] = Image(named_descriptor(desc, None), [])
            name = entry_name(desc)
            if name is not None and (desc.digest, name) not in seen:
                seen.add((desc.digest, name))
                img.names.append(name)
        return list(by_digest.values())

    def attachments(self, digests: set[str], transitive: bool = False) -> list[Image]:
        """What is attached to any of ``digests``: ``Attachments.of`` over one reading of
        the index, whatever the depth (a chain of 2,000 took minutes)."""
        return Attachments(self.images()).of(digests, transitive)

    def resolve_name(self, ref: Reference) -> Image | None:
        for img in self.images():
            if ref in img.names:
                return img
        return None

    def begin(self, repair: bool = False) -> Transaction:
        return Transaction(self, repair)


class Transaction:
    """A change to the store: staged blobs and names, published by ``commit()``.

    Use as a context manager; leaving it without ``commit()`` removes every blob it
    staged. The writer lock is held from ``__enter__`` to ``__exit__``. With ``repair``
    a stored blob counts as present only after it is re-hashed; a damaged one is
    replaced from the input.
    """

    def __init__(self, store: Store, repair: bool = False) -> None:
        self.store = store
        self.repair = repair
        self._staged: dict[str, Path] = {}
        self._names: list[tuple[Descriptor, Reference | None]] = []
        self._lock: contextlib.AbstractContextManager[None] | None = None
        self._staging = _thread.allocate_lock()  # blobs may be staged by several threads
        self._intact: dict[str, bool] = {}
        self.repaired: list[str] = []
        self.resumed: dict[str, int] = {}  # digest -> size: reused from an interrupted load

    def __enter__(self) -> Transaction:
        self._lock = self.store.lock()
        self._lock.__enter__()
        self.store.sweep_dead_temps()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.abort()
        finally:
            assert self._lock is not None
            self._lock.__exit__(None, None, None)

    def _stored(self, digest: str) -> bool:
        if not self.store.has_blob(digest):
            return False
        if not self.repair:
            return True
        ok = self._intact.get(digest)
        if ok is None:
            ok = self._intact[digest] = self.store.blob_intact(digest)
        return ok

    def has_blob(self, digest: str) -> bool:
        return digest in self._staged or self._stored(digest)

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: Any = None) -> bool:
        """Stage a blob from ``stream``, verified against ``desc``. False if already there."""
        if self.has_blob(desc.digest):
            return False
        kept = self.store.resumable(desc.digest, desc.size)
        if kept is not None:  # verified by an earlier load that was interrupted: not read again
            self.stage(kept, desc.digest)
            if desc.digest not in self.store.verified_here:  # not just streamed in by this load
                self.resumed[desc.digest] = desc.size
            if progress is not None:
                progress(desc.size)
            return True
        staged = self.store.new_staged()
        try:
            with disk_full(self.store.root, desc.size):
                copy_verified(stream, staged, expected=desc.digest, size=desc.size, what=what,
                              progress=progress)
                path = staged.finish(desc.digest, desc.size)
        except BaseException:
            staged.discard()
            raise
        self.stage(path, desc.digest)
        return True

    def staged_path(self, digest: str) -> Path:
        """Where a blob this transaction staged waits for ``commit()``."""
        with self._staging:
            return self._staged[digest]

    def stage(self, path: Path, digest: str) -> None:
        """Take over a verified blob in the resume area (``StagedFile.finish``)."""
        with self._staging:
            if digest in self._staged:
                return
            self._staged[digest] = path

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> bool:
        import io
        return self.put_blob(io.BytesIO(check_bytes(data, desc.digest, desc.size, what)), desc, what)

    def add_name(self, desc: Descriptor, name: Reference | None) -> None:
        """Point ``name`` at ``desc`` on commit (None: keep it as an unnamed image)."""
        self._names.append((desc, name))

    def commit(self) -> None:
        """Publish the staged blobs, then the names; if the names cannot be written, take
        the published blobs back: both appear, or neither."""
        store = self.store
        published: list[Path] = []
        try:
            with disk_full(store.root, 0):
                self._publish(published)
        except BaseException:
            for target in published:
                target.unlink(missing_ok=True)
            raise

    def _publish(self, published: list[Path]) -> None:
        store = self.store
        for digest, path in self._staged.items():
            target = store.blob_path(digest)
            if target.exists() and not (self.repair and not self._intact.get(digest, True)):
                path.unlink(missing_ok=True)
                continue
            replacing = target.exists()
            os.replace(path, target)
            if replacing:
                self.repaired.append(digest)
            else:
                published.append(target)
        if self._staged:
            _fsync_dir(store.blobs)
        self._staged.clear()
        if self._names:
            before = store.entries()
            after = apply_names(before, self._names, store.same_image)
            if [e.to_json() for e in after] != [e.to_json() for e in before]:  # a reload changes nothing
                store.write_entries(after)
        self._names.clear()

    def abort(self) -> None:
        """Nothing becomes visible. The verified blobs staged so far stay in the resume
        area, for the next load of the same content (``system prune`` removes them)."""
        self._staged.clear()
        self._names.clear()


def apply_names(entries: list[Descriptor], changes: list[tuple[Descriptor, Reference | None]],
                same_image: Callable[[Descriptor, Descriptor], bool] = lambda a, b: False) -> list[Descriptor]:
    """Return ``entries`` with each ``(desc, name)`` applied in order, in one pass.

    A name moves to its new image; the image that loses its last name stays as an unnamed
    (dangling) entry, as Docker's ``<none>:<none>``, unless ``same_image`` says the name's
    new image is the same image (Docker's rule, by image ID: a platform's manifest whose
    name moves to the index that holds it); ``(desc, None)`` keeps ``desc`` as an unnamed
    image; an unnamed entry for an image that also has a name is dropped.
    """
    final: dict[Reference, Descriptor] = {}
    unnamed: list[Descriptor] = []
    for desc, name in changes:
        if name is None:
            unnamed.append(desc)
        else:
            final.pop(name, None)  # a name set again moves to the end, as set one by one
            final[name] = desc
    out: list[Descriptor] = []
    orphaned: list[tuple[Descriptor, Descriptor]] = []  # an entry whose name moved, and where to
    for e in entries:
        name = entry_name(e)
        if name is not None and name in final:
            if e.digest != final[name].digest:
                orphaned.append((e, final[name]))
            continue
        out.append(e)
    out += [named_descriptor(d, n) for n, d in final.items()]
    out += [named_descriptor(d, None) for d in unnamed]
    present = {e.digest for e in out}
    moved: dict[str, bool] = {}  # orphan digest -> whether every name went to the same image
    for e, to in orphaned:
        moved[e.digest] = moved.get(e.digest, True) and same_image(e, to)
    for e, _ in orphaned:
        if e.digest not in present:
            present.add(e.digest)
            if not moved[e.digest]:
                out.append(named_descriptor(e, None))
    return dedupe_entries(out)


def dedupe_entries(entries: list[Descriptor]) -> list[Descriptor]:
    names = [entry_name(e) for e in entries]
    named = {e.digest for e, n in zip(entries, names) if n is not None}
    seen: set[tuple[str, Reference | None]] = set()
    out = []
    for e, name in zip(entries, names):
        key = (e.digest, name)
        if key in seen or (name is None and e.digest in named):
            continue
        seen.add(key)
        out.append(e)
    return out
