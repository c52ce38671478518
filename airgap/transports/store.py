"""The local store as a Source (save, push, serve) and as a Sink (load, pull, import)."""

from __future__ import annotations


from ..digest import validate_digest
from ..errors import DigestMismatch, FormatError, IntegrityError
from ..layers import HEAD, check_layer_file, check_layer_head, uncompressed_digest
from ..oci import Descriptor, is_uncompressed_layer
from ..words import is_number
from ..reference import Reference
from ..store.layout import Store, Transaction
from .base import Outcome, ProgressFn, SourceImage, StagedBlob

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import BinaryIO

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

    def uncompressed(self, desc: Descriptor) -> tuple[str, int]:
        """Decompress once and remember the answer in the store's cache."""
        if is_uncompressed_layer(desc.media_type):
            return desc.digest, desc.size
        cached = (self.store.cache_get("uncompressed", desc.digest) or "").split()
        if len(cached) == 2 and is_number(cached[1]):  # else damaged: work it out again
            try:
                validate_digest(cached[0])
                return cached[0], int(cached[1])
            except FormatError:
                pass
        with self.store.open_blob(desc.digest) as f:
            diff_id, n = uncompressed_digest(f, desc, self.where(desc), bound=False)
        self.store.cache_put("uncompressed", desc.digest, f"{diff_id} {n}")
        return diff_id, n

    def close(self) -> None:
        pass


class StoreSink:
    """Stages into a store Transaction; nothing is visible before ``commit()``.

    With ``check_diff_ids`` (pull, as ``docker pull``), each compressed layer it receives is
    decompressed once its digest has been verified, and must give the diff_id its image
    config lists; the answer is kept in the store's cache for ``save``."""

    jobs = 0

    def __init__(self, txn: Transaction, check_diff_ids: bool = False) -> None:
        self.txn = txn
        self.check_diff_ids = check_diff_ids
        self._diff_ids: dict[str, str] = {}
        self._uncompressed: dict[str, str] = {}  # for the store's cache, once committed

    def has_blob(self, digest: str) -> bool:
        return self.txn.has_blob(digest)

    def begin(self, plan: Plan) -> None:
        """A blob the store has is not read again: the size the images give it must be the
        size it has (a manifest that says otherwise lies, and would be stored unchecked).
        Nothing is staged yet (one transfer per transaction): what it has is stored.

        A layer it has is checked against its listing (``_check_head``) unless every
        manifest of the plan that lists it is stored too: those listings were checked when
        they were stored (a reload reads no layer at all)."""
        self._diff_ids = dict(plan.diff_ids)
        has = self.txn.has_blob  # with --repair, a damaged blob is not "had"
        listed_anew = {layer.digest for img in plan.images for m in img.manifests
                       if not has(m.descriptor.digest) for layer in m.manifest.layers}
        for digest, desc in plan.blobs.items():
            if has(digest):
                size = self.txn.store.blob_size(digest)
                if size != desc.size:
                    raise IntegrityError(f"{plan.labels.get(digest, 'blob')}: listed at {desc.size} bytes, but "
                                         f"blob {digest} has {size} (if the store's copy is damaged, "
                                         "`airgap load --repair` replaces it)")
                if digest in listed_anew:
                    self._check_head(desc, self.txn.store.blob_path(digest), plan.labels.get(digest, "layer"))

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: ProgressFn | None = None) -> Outcome:
        if isinstance(stream, StagedBlob) and stream.staged_path.parent == self.txn.store.resume:
            # hashed into this store's resume area as it streamed in: taken over by rename
            if self.txn.has_blob(desc.digest):
                return Outcome.PRESENT
            self.txn.stage(stream.staged_path, desc.digest)
            if progress is not None:
                progress(desc.size)
        elif not self.txn.put_blob(stream, desc, what, progress):
            return Outcome.PRESENT
        self._check_head(desc, self.txn.staged_path(desc.digest), what)
        diff_id = self._diff_ids.get(desc.digest)
        if self.check_diff_ids and diff_id and not is_uncompressed_layer(desc.media_type):
            self._check_diff_id(desc, diff_id, what)
        return Outcome.ADDED

    def _check_head(self, desc: Descriptor, path: Path, what: str) -> None:
        """An image layer's first bytes against its listing (``check_layer_file``)."""
        if desc.digest in self._diff_ids:
            check_layer_file(path, desc, what)

    def _check_diff_id(self, desc: Descriptor, diff_id: str, what: str) -> None:
        """Decompress the staged (verified) layer; its tar must be the diff_id the config says."""
        with open(self.txn.staged_path(desc.digest), "rb") as f:
            got, size = uncompressed_digest(f, desc, what)
        if got != diff_id:  # docker pull: "layers from manifest don't match image configuration"
            raise DigestMismatch(f"{what}: uncompressed content (diff_id, as the image config lists it)",
                                 diff_id, got)
        self._uncompressed[desc.digest] = f"{got} {size}"

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> Outcome:
        return Outcome.ADDED if self.txn.put_bytes(data, desc, what) else Outcome.PRESENT

    def put_image(self, desc: Descriptor, names: list[Reference]) -> None:
        for name in names:
            self.txn.add_name(desc, name)
        if not names:
            self.txn.add_name(desc, None)

    def commit(self) -> None:
        """Publish; then what the checks learnt goes to the cache: a refused pull leaves
        the store as it was, its cache included."""
        self.txn.commit()
        for digest, value in self._uncompressed.items():
            self.txn.store.cache_put("uncompressed", digest, value)


class NullSink:
    """Reads and checks every blob, keeps nothing: what ``verify`` copies into. ``skip``
    names blobs not to read (those a delta bundle leaves out)."""

    jobs = 0

    def __init__(self, skip: set[str] | None = None) -> None:
        self.skip = skip or set()
        self._diff_ids: dict[str, str] = {}

    def has_blob(self, digest: str) -> bool:
        return digest in self.skip

    def begin(self, plan: Plan) -> None:
        self._diff_ids = dict(plan.diff_ids)

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: ProgressFn | None = None) -> Outcome:
        """Checked as the store sink checks it: a load refuses what ``verify`` refuses."""
        from ..archive.input import Prefixed, read_head
        from ..digest import copy_verified
        layer = desc.digest in self._diff_ids
        head = read_head(stream, HEAD) if layer else b""
        copy_verified(Prefixed(head, stream) if layer else stream, None, expected=desc.digest,
                      size=desc.size, what=what, progress=progress)
        if layer:
            check_layer_head(head, desc, what)
        return Outcome.ADDED

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> Outcome:
        from ..digest import check_bytes
        check_bytes(data, desc.digest, desc.size, what)
        return Outcome.ADDED

    def put_image(self, desc: Descriptor, names: list[Reference]) -> None:
        pass

    def commit(self) -> None:
        pass
