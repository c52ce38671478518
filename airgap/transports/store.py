"""The local store as a Source (save, push, serve) and as a Sink (load, pull, import)."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

from ..errors import IntegrityError
from ..layers import uncompressed_digest
from ..oci import Descriptor, is_uncompressed_layer
from ..reference import Reference
from ..store.layout import Store, Transaction
from .base import Outcome, ProgressFn, SourceImage, StagedBlob

if TYPE_CHECKING:
    from ..copy import Plan


class StoreSource:
    jobs = 0

    def __init__(self, store: Store, images: list[SourceImage]) -> None:
        self.store = store
        self.name = str(store.root)
        self._images = images

    def images(self) -> list[SourceImage]:
        return list(self._images)

    def has_blob(self, digest: str) -> bool:
        return self.store.has_blob(digest)

    def read_document(self, desc: Descriptor, what: str) -> bytes:
        return self.store.read_blob(desc.digest)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.store.open_blob(desc.digest)

    def where(self, desc: Descriptor) -> str:
        return f"store blob {desc.digest}"

    def check_plan(self, plan: Plan) -> None:
        pass

    def uncompressed_size(self, desc: Descriptor) -> int:
        """Decompress once and remember the answer in the store's cache."""
        if is_uncompressed_layer(desc.media_type):
            return desc.size
        cached = self.store.cache_get("uncompressed", desc.digest)
        if cached is not None:
            return int(cached.split()[1])
        with self.store.open_blob(desc.digest) as f:
            diff_id, size = uncompressed_digest(f, desc.media_type, self.where(desc))
        self.store.cache_put("uncompressed", desc.digest, f"{diff_id} {size}")
        return size

    def close(self) -> None:
        pass


class StoreSink:
    """Stages into a store Transaction; nothing is visible before ``commit()``."""

    jobs = 0

    def __init__(self, txn: Transaction) -> None:
        self.txn = txn

    def has_blob(self, digest: str) -> bool:
        return self.txn.has_blob(digest)

    def begin(self, plan: Plan) -> None:
        """A blob the store has is not read again: the size the images give it must be the
        size it has (a manifest that says otherwise lies, and would be stored unchecked).
        Nothing is staged yet (one transfer per transaction): what it has is stored."""
        for digest, desc in plan.blobs.items():
            if self.txn.has_blob(digest):  # with --repair, a damaged blob is not "had"
                size = self.txn.store.blob_size(digest)
                if size != desc.size:
                    raise IntegrityError(f"{plan.labels.get(digest, 'blob')}: listed at {desc.size} bytes, but "
                                         f"blob {digest} has {size} (if the store's copy is damaged, "
                                         "`airgap load --repair` replaces it)")

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: ProgressFn | None = None) -> Outcome:
        if isinstance(stream, StagedBlob) and stream.staged_path.parent == self.txn.store.resume:
            # hashed into this store's resume area as it streamed in: taken over by rename
            if self.txn.has_blob(desc.digest):
                return Outcome.PRESENT
            self.txn.stage(stream.staged_path, desc.digest)
            if progress is not None:
                progress(desc.size)
            return Outcome.ADDED
        return Outcome.ADDED if self.txn.put_blob(stream, desc, what, progress) else Outcome.PRESENT

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> Outcome:
        return Outcome.ADDED if self.txn.put_bytes(data, desc, what) else Outcome.PRESENT

    def put_image(self, desc: Descriptor, names: list[Reference]) -> None:
        for name in names:
            self.txn.add_name(desc, name)
        if not names:
            self.txn.add_name(desc, None)

    def commit(self) -> None:
        self.txn.commit()


class NullSink:
    """Reads and checks every blob, keeps nothing: what ``verify`` copies into. ``skip``
    names blobs not to read (those a delta bundle leaves out)."""

    jobs = 0

    def __init__(self, skip: set[str] | None = None) -> None:
        self.skip = skip or set()

    def has_blob(self, digest: str) -> bool:
        return digest in self.skip

    def begin(self, plan: Plan) -> None:
        pass

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: ProgressFn | None = None) -> Outcome:
        from ..digest import copy_verified
        copy_verified(stream, None, expected=desc.digest, size=desc.size, what=what,
                      progress=progress)
        return Outcome.ADDED

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> Outcome:
        from ..digest import check_bytes
        check_bytes(data, desc.digest, desc.size, what)
        return Outcome.ADDED

    def put_image(self, desc: Descriptor, names: list[Reference]) -> None:
        pass

    def commit(self) -> None:
        pass
