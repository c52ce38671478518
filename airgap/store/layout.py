"""Blobs, ``index.json`` and the writer lock of a store directory.

Every change is a temp file in ``.tmp/`` that is hashed while written, checked, fsynced
and renamed into place; ``index.json`` is replaced the same way, after the blobs it
names. Writers hold an exclusive ``flock`` on ``.lock`` for the whole change; readers
take none and see either the old or the new ``index.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..digest import copy_verified, sha256_digest, validate_digest
from ..errors import AirgapError, DigestMismatch, NotFound, StoreCorrupt
from ..oci import (ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MAX_DOCUMENT, OCI_INDEX,
                   Descriptor, load_json)
from ..reference import Reference, parse_reference

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
TMP_DIR = ".tmp"
LOCK_FILE = ".lock"


def default_store_path() -> Path:
    env = os.environ.get("AIRGAP_STORE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/airgap")
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "airgap"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Image:
    """One stored image or index: its descriptor and the names that point at it."""

    descriptor: Descriptor
    names: list[Reference]

    @property
    def digest(self) -> str:
        return self.descriptor.digest


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
    """A store directory. Creating the object creates the layout if it is missing."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.tmp = self.root / TMP_DIR
        self.index_path = self.root / "index.json"
        self._ensure()

    def _ensure(self) -> None:
        try:
            self.blobs.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(exist_ok=True)
            if not (self.root / "oci-layout").exists():
                self._atomic_write(self.root / "oci-layout", LAYOUT)
            if not self.index_path.exists():
                self._atomic_write(self.index_path, self._index_bytes([]))
        except OSError as exc:
            raise AirgapError(f"cannot create store at {self.root}: {exc.strerror}") from None

    # -- locking ---------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the writer lock; blocks while another writer holds it."""
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- blobs -----------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / validate_digest(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise StoreCorrupt(f"blob {digest} is missing from the store {self.root}") from None

    def read_blob(self, digest: str, limit: int = MAX_DOCUMENT, verify: bool = True) -> bytes:
        """Read a small blob (manifest, config) whole and check its digest.

        ``verify=False`` is for listings: blobs were checked when they were written, and
        ``store check`` re-hashes them; what leaves the store is always checked.
        """
        with self.open_blob(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise StoreCorrupt(f"blob {digest} is larger than {limit} bytes")
        if verify and sha256_digest(data) != digest:
            raise StoreCorrupt(f"blob {digest} in the store is damaged (its content has another digest)")
        return data

    def all_blobs(self) -> Iterator[str]:
        for entry in os.scandir(self.blobs):
            if entry.is_file() and len(entry.name) == 64:
                yield "sha256:" + entry.name

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp if self.tmp.exists() else path.parent,
                                   prefix="w-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)

    def cache_get(self, kind: str, digest: str) -> str | None:
        """Facts derived from a blob (never trusted for integrity, only to save work)."""
        try:
            return (self.root / ".cache" / kind / validate_digest(digest)).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def cache_put(self, kind: str, digest: str, value: str) -> None:
        d = self.root / ".cache" / kind
        try:
            d.mkdir(parents=True, exist_ok=True)
            self._atomic_write(d / validate_digest(digest), value.encode())
        except OSError:
            pass  # a cache that cannot be written only costs time

    def temp_file(self) -> tuple[BinaryIO, Path]:
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix=f"{os.getpid()}-")
        return os.fdopen(fd, "wb", buffering=0), Path(tmp)

    # -- index -----------------------------------------------------------------
    def entries(self) -> list[Descriptor]:
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return []
        doc = load_json(data, f"{self.index_path}")
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise StoreCorrupt(f"{self.index_path} is not an OCI index")
        return [Descriptor.from_json(d, str(self.index_path)) for d in doc.get("manifests") or []]

    @staticmethod
    def _index_bytes(entries: list[Descriptor]) -> bytes:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                               "manifests": [e.to_json() for e in entries]}
        return json.dumps(doc, indent=2).encode() + b"\n"

    def write_entries(self, entries: list[Descriptor]) -> None:
        """Replace index.json atomically. Call with the lock held."""
        self._atomic_write(self.index_path, self._index_bytes(entries))

    def images(self) -> list[Image]:
        """Every stored image, in index order, with its names (none: dangling)."""
        by_digest: dict[str, Image] = {}
        for desc in self.entries():
            img = by_digest.get(desc.digest)
            if img is None:
                img = by_digest[desc.digest] = Image(named_descriptor(desc, None), [])
            name = entry_name(desc)
            if name is not None and name not in img.names:
                img.names.append(name)
        return list(by_digest.values())

    def resolve_name(self, ref: Reference) -> Image | None:
        for img in self.images():
            if ref in img.names:
                return img
        return None

    def begin(self) -> Transaction:
        return Transaction(self)


class Transaction:
    """A change to the store: staged blobs and names, published by ``commit()``.

    Use as a context manager; leaving it without ``commit()`` removes every staged file.
    The writer lock is held from ``__enter__`` to ``__exit__``.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._staged: dict[str, Path] = {}
        self._names: list[tuple[Descriptor, Reference | None]] = []
        self._lock: contextlib.AbstractContextManager[None] | None = None
        self._staging = threading.Lock()  # blobs may be staged by several threads
        self.added_bytes = 0

    def __enter__(self) -> Transaction:
        self._lock = self.store.lock()
        self._lock.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.abort()
        finally:
            assert self._lock is not None
            self._lock.__exit__(None, None, None)

    def has_blob(self, digest: str) -> bool:
        return digest in self._staged or self.store.has_blob(digest)

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: Any = None) -> bool:
        """Stage a blob from ``stream``, verified against ``desc``. False if already there."""
        if self.has_blob(desc.digest):
            return False
        f, tmp = self.store.temp_file()
        try:
            with f:
                copy_verified(stream, f, expected=desc.digest, size=desc.size, what=what,
                              progress=progress)
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with self._staging:
            if desc.digest in self._staged:
                tmp.unlink(missing_ok=True)
                return False
            self._staged[desc.digest] = tmp
            self.added_bytes += desc.size
        return True

    def stage(self, tmp: Path, digest: str, size: int) -> None:
        """Take over a verified temp file made with ``store.temp_file()``."""
        if self.has_blob(digest):
            tmp.unlink(missing_ok=True)
            return
        self._staged[digest] = tmp
        self.added_bytes += size

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> bool:
        import io
        if sha256_digest(data) != desc.digest or len(data) != desc.size:
            raise DigestMismatch(what, desc.digest, sha256_digest(data), desc.size, len(data))
        return self.put_blob(io.BytesIO(data), desc, what)

    def add_name(self, desc: Descriptor, name: Reference | None) -> None:
        """Point ``name`` at ``desc`` on commit (None: keep it as an unnamed image)."""
        self._names.append((desc, name))

    def commit(self) -> None:
        store = self.store
        for digest, tmp in self._staged.items():
            target = store.blob_path(digest)
            if target.exists():
                tmp.unlink(missing_ok=True)
            else:
                os.replace(tmp, target)
        if self._staged:
            _fsync_dir(store.blobs)
        self._staged.clear()
        if self._names:
            entries = store.entries()
            for desc, name in self._names:
                entries = set_name(entries, desc, name)
            store.write_entries(entries)
        self._names.clear()

    def abort(self) -> None:
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        self._staged.clear()
        self._names.clear()


def set_name(entries: list[Descriptor], desc: Descriptor, name: Reference | None) -> list[Descriptor]:
    """Return ``entries`` with ``name`` moved to ``desc``.

    The image that loses its last name stays as an unnamed (dangling) entry, as Docker's
    ``<none>:<none>``; an unnamed entry for an image that also has a name is dropped.
    """
    out: list[Descriptor] = []
    orphaned: list[Descriptor] = []
    for e in entries:
        if name is not None and entry_name(e) == name:
            if e.digest != desc.digest:
                orphaned.append(e)
            continue
        out.append(e)
    out.append(named_descriptor(desc, name))
    for e in orphaned:
        if not any(x.digest == e.digest for x in out):
            out.append(named_descriptor(e, None))
    return dedupe_entries(out)


def dedupe_entries(entries: list[Descriptor]) -> list[Descriptor]:
    named = {e.digest for e in entries if entry_name(e) is not None}
    seen: set[tuple[str, Reference | None]] = set()
    out = []
    for e in entries:
        key = (e.digest, entry_name(e))
        if key in seen or (key[1] is None and e.digest in named):
            continue
        seen.add(key)
        out.append(e)
    return out
