"""``save --compress gzip|zstd``: uncompressed layers travel compressed.

A layer that is already compressed is kept byte for byte (its registry digest survives);
an uncompressed one (``docker save``, ``import``) is compressed on all cores (isal's
threaded gzip, zstd's worker threads), its bytes hashed against its digest as they are
read. The compressed form is cached in the store (``.cache/blobs/``, keyed by diff_id
and method in ``.cache/compressed-METHOD/``), so the next save reuses it and writes the
same bytes. The images' manifests that point at those layers are rewritten (new
manifest digests; the configs, so the diff_ids and image IDs, are unchanged), and the
engine plans again over a Source that serves the new documents and cached blobs.

Manifests something pins by digest are kept as they are: a name ``repo@sha256:…``, a
signature or SBOM attached to the image. Docker's schema 2 has no zstd layer type, so a
Docker manifest compressed with zstd becomes an OCI manifest (as BuildKit does).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .digest import CHUNK, HashingReader, check_bytes, HashingWriter, sha256_digest
from .errors import FormatError, IntegrityError
from .oci import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG,
                  OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST, Descriptor, load_json)
from .records import NamedTuple
from .transports.base import SourceImage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from .copy import Plan, PlannedImage, Progress
    from .store import Store
    from .transports.base import Source

METHODS = ("gzip", "zstd")
GZIP_LEVEL = 1   # isal's fastest; within a few percent of `gzip -1`'s size, ~10x its speed
ZSTD_LEVEL = 1   # its fast end: still smaller than `gzip -1`, twice level 3's speed on two cores
ZSTD_JOB = 2 << 20  # per worker: keeps memory near 30 MB (the default jobs take ~70 MB)
_COMPRESSIBLE = (OCI_LAYER, DOCKER_LAYER)  # not the non-distributable type: kept as it is
_TO_OCI = {DOCKER_LAYER: OCI_LAYER, DOCKER_LAYER_GZIP: OCI_LAYER_GZIP, DOCKER_CONFIG: OCI_CONFIG,
           OCI_LAYER: OCI_LAYER, OCI_LAYER_GZIP: OCI_LAYER_GZIP, OCI_LAYER_ZSTD: OCI_LAYER_ZSTD,
           OCI_CONFIG: OCI_CONFIG}


class Compressed(NamedTuple):
    """A layer's compressed form in the store's cache."""

    diff_id: str
    digest: str
    size: int
    uncompressed_size: int
    path: Path


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cached_layer(store: Store, layer: Descriptor, method: str) -> Compressed | None:
    """The compressed form of a stored layer a save made before, if it is still whole in
    size (its bytes are hashed again as they are saved)."""
    cached = store.cache_get(f"compressed-{method}", layer.digest)
    if cached is None:
        return None
    try:
        digest, size_text = cached.split()
        size = int(size_text)
        path = store.cached_blob_path(digest)
        st = path.stat()
        if stat.S_ISREG(st.st_mode) and st.st_size == size:  # a FIFO there would block the save
            return Compressed(layer.digest, digest, size, layer.size, path)
    except (ValueError, OSError, FormatError):
        pass  # a damaged or stale entry: made again
    return None


def compress_layer(store: Store, layer: Descriptor, method: str,
                   progress: Progress | None = None, label: str = "") -> Compressed:
    """Compress an uncompressed stored layer into the cache, its bytes checked as read."""
    from .store.layout import StagedFile
    staged = StagedFile(store)
    what = f"store blob {layer.digest}"
    fn = progress.blob(layer, label) if progress is not None else None
    try:
        with store.open_blob(layer.digest) as f:
            src = HashingReader(f, layer.digest, layer.size, what, fn)
            out = HashingWriter(staged)
            _compress(src, out, method, layer.size)  # src checks its size and digest at its end
        path = store.put_cached_blob(staged, out.digest, out.size)
    finally:
        staged.discard()
    store.cache_put(f"compressed-{method}", layer.digest, f"{out.digest} {out.size}")
    return Compressed(layer.digest, out.digest, out.size, layer.size, path)


def _compress(src: HashingReader, out: HashingWriter, method: str, size: int) -> None:
    threads = cpu_count()
    writer: Any
    if method == "gzip":
        from isal import igzip_threaded
        writer = igzip_threaded.open(out, "wb", compresslevel=GZIP_LEVEL, threads=threads)  # type: ignore[no-untyped-call]
    else:
        import zstandard
        params = zstandard.ZstdCompressionParameters.from_level(
            ZSTD_LEVEL, threads=threads if threads > 1 else 0, job_size=ZSTD_JOB if threads > 1 else 0)
        cctx = zstandard.ZstdCompressor(compression_params=params)
        writer = cctx.stream_writer(out, size=size, closefd=False)  # type: ignore[arg-type]
    try:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := src.readinto(buf):
            writer.write(view[:n])
    finally:
        writer.close()


def _give_back_memory() -> None:
    """The compressor's worker threads free their buffers (~30 MB) into glibc's per-thread
    arenas, which keep them resident; hand them back to the system (``malloc_trim``), or
    the save's copy buffers come on top of them and peak RSS passes 64 MB."""
    from .libc import libc
    trim = getattr(libc(), "malloc_trim", None)  # glibc's; elsewhere there is nothing to do
    if trim is not None:
        trim(0)


class CompressingSource:
    """The store as a Source, with the rewritten documents and the compressed layers."""

    jobs = 0

    def __init__(self, inner: Source, documents: dict[str, bytes], layers: dict[str, Compressed],
                 images: list[SourceImage]) -> None:
        self.inner, self.name = inner, inner.name
        self.documents = documents                # new manifests and indexes, by digest
        self.layers = {c.digest: c for c in layers.values()}  # by compressed digest
        self._images = images

    def images(self) -> list[SourceImage]:
        return list(self._images)

    def has_blob(self, digest: str) -> bool:
        return digest in self.documents or digest in self.layers or self.inner.has_blob(digest)

    def read_document(self, desc: Descriptor, what: str) -> bytes:
        data = self.documents.get(desc.digest)
        if data is None:
            return self.inner.read_document(desc, what)
        return check_bytes(data, desc.digest, desc.size, what)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        c = self.layers.get(desc.digest)
        if c is None:
            return self.inner.open_blob(desc)
        try:
            return open(c.path, "rb")
        except FileNotFoundError:
            raise IntegrityError(f"{self.where(desc)} is gone (removed while saving?); save again") from None

    def where(self, desc: Descriptor) -> str:
        c = self.layers.get(desc.digest)
        if c is None:
            return self.inner.where(desc)
        return f"compressed layer {c.path} (of store blob {c.diff_id}; `airgap system prune` clears the cache)"

    def check_plan(self, plan: Plan) -> None:
        self.inner.check_plan(plan)

    def uncompressed(self, desc: Descriptor) -> tuple[str, int]:
        c = self.layers.get(desc.digest)
        return (c.diff_id, c.uncompressed_size) if c is not None else self.inner.uncompressed(desc)

    def close(self) -> None:
        self.inner.close()


def compress_images(p: Plan, store: Store, method: str, progress: Progress) -> tuple[CompressingSource, list[str]]:
    """Compress the uncompressed layers of the planned images; the Source to plan again
    (its ``images()``) and what was kept as it was, for the user."""
    notes: list[str] = []
    todo: list[PlannedImage] = []  # the images whose manifests may be rewritten
    for img in p.images:
        reason = _pinned(img, p)
        if reason is None:
            todo.append(img)
        elif any(lay.media_type in _COMPRESSIBLE for im in img.manifests for lay in im.manifest.layers):
            notes.append(f"{img.display()}: kept uncompressed ({reason})")
    layers: dict[str, Descriptor] = {}
    for img in todo:
        for im in img.manifests:
            for lay in im.manifest.layers:
                if lay.media_type in _COMPRESSIBLE:
                    layers.setdefault(lay.digest, lay)
    done: dict[str, Compressed] = {}
    for digest, desc in layers.items():
        if (hit := cached_layer(store, desc, method)) is not None:
            done[digest] = hit
    work = sorted(d for d in layers if d not in done)
    progress.begin(sum(layers[d].size for d in work), len(work))
    for digest in work:
        done[digest] = compress_layer(store, layers[digest], method, progress, p.labels.get(digest, ""))
    if work:
        _give_back_memory()
    progress.end()
    documents: dict[str, bytes] = {}
    mapped: dict[str, Descriptor] = {}  # old manifest/index digest -> new descriptor
    for img in todo:
        for im in img.manifests:
            if im.descriptor.digest in mapped:
                continue
            rewritten = _rewrite_manifest(p.documents[im.descriptor.digest], im.manifest.media_type, done, method)
            if rewritten is not None:
                raw, media_type = rewritten
                new = _descriptor(im.descriptor, raw, media_type)
                documents[new.digest] = raw
                mapped[im.descriptor.digest] = new
    rewritable = {id(img) for img in todo}
    images: list[SourceImage] = []
    for img in p.images:
        top = img.descriptor
        if top.digest in p.documents and top.digest not in mapped and id(img) in rewritable:
            index = _rewrite_index(p.documents[top.digest], mapped)
            if index is not None:
                new = _descriptor(top, index, top.media_type)
                documents[new.digest] = index
                mapped[top.digest] = new
        if top.digest in mapped:  # the image's top manifest (or index) was rewritten
            images.append(SourceImage(mapped[top.digest], list(img.names), img.source.label))
        else:
            images.append(img.source)
    return CompressingSource(p.source, documents, done, images), notes


def _pinned(img: PlannedImage, p: Plan) -> str | None:
    """Why an image's manifests must keep their digests, or None."""
    if img.subject is not None:
        return "an attached artifact"
    if any(n.digest for n in img.names):
        return "a name pins its digest"
    own = {img.descriptor.digest, img.source.descriptor.digest, *(m.descriptor.digest for m in img.manifests)}
    if any(other.subject in own for other in p.images):
        return "a signature or other artifact is attached to its digest"
    return None


def _descriptor(old: Descriptor, raw: bytes, media_type: str) -> Descriptor:
    digest = sha256_digest(raw)
    return Descriptor(media_type, digest, len(raw), old.annotations, old.platform,
                      {**old.raw, "mediaType": media_type, "digest": digest, "size": len(raw)})


def _rewrite_manifest(raw: bytes, media_type: str, done: dict[str, Compressed],
                      method: str) -> tuple[bytes, str] | None:
    """The manifest with its compressed layers, and its media type; None if unchanged."""
    doc = load_json(raw, "manifest")
    layers = doc.get("layers") or []
    if not any(isinstance(lay, dict) and lay.get("digest") in done for lay in layers):
        return None
    to_oci = media_type == DOCKER_MANIFEST and method == "zstd"  # schema 2 has no zstd layers
    if to_oci:
        types = [doc["config"].get("mediaType"), *(lay.get("mediaType") for lay in layers)]
        if not all(t in _TO_OCI for t in types):
            return None  # a foreign layer type: keep the image as it is
        doc["mediaType"] = OCI_MANIFEST
        doc["config"] = {**doc["config"], "mediaType": _TO_OCI[doc["config"]["mediaType"]]}
    oci = media_type != DOCKER_MANIFEST or to_oci
    out = []
    for lay in layers:
        c = done.get(lay.get("digest"))
        if c is not None:
            lay = {**lay, "mediaType": (OCI_LAYER_GZIP if method == "gzip" else OCI_LAYER_ZSTD) if oci
                   else DOCKER_LAYER_GZIP, "digest": c.digest, "size": c.size}
        elif to_oci:
            lay = {**lay, "mediaType": _TO_OCI[lay["mediaType"]]}
        out.append(lay)
    doc["layers"] = out
    return json.dumps(doc, separators=(",", ":")).encode(), OCI_MANIFEST if to_oci else media_type


def _rewrite_index(raw: bytes, mapped: dict[str, Descriptor]) -> bytes | None:
    doc = load_json(raw, "index")
    entries = doc.get("manifests") or []
    if not any(isinstance(e, dict) and e.get("digest") in mapped for e in entries):
        return None
    doc["manifests"] = [{**e, "mediaType": mapped[e["digest"]].media_type, "digest": mapped[e["digest"]].digest,
                         "size": mapped[e["digest"]].size} if e.get("digest") in mapped else e
                        for e in entries]
    return json.dumps(doc, separators=(",", ":")).encode()
