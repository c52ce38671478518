"""The one copy engine: every verb that moves images is ``copy(source, sink)``.

It runs in two phases. ``plan`` reads only small documents (manifests, indexes, configs),
checks each against its digest and picks platforms; ``transfer`` then streams the blobs,
asking the sink first whether it already has each one, so a shared layer is read once
and a blob the sink holds is never read at all.
"""

from __future__ import annotations

import io

from .digest import CHUNK, short_id, side_by_side
from .errors import FormatError, NotFound
from .layers import DiffIdTee, check_layer
from .oci import (IMAGE_CONFIG_TYPES, MAX_DOCUMENT, Descriptor, Index, Manifest, Platform, attached,
                  config_platform, host_platform, is_uncompressed_layer, parse_config, parse_manifest,
                  subject_of)
from .records import NamedTuple
from .reference import Reference
from .transports.base import Outcome, Platforms, ProgressFn, SourceImage, StagedBlob
from .words import plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable

    from .transports.base import Sink, Source


class Progress:
    """What the engine reports; the CLI draws it. The base class draws nothing."""

    def begin(self, total_bytes: int, blobs: int) -> None: ...

    def blob(self, desc: Descriptor, label: str) -> ProgressFn | None:
        return None

    def skipped(self, desc: Descriptor, label: str) -> None: ...

    def end(self) -> None: ...


MAX_PLAN_DOCUMENTS = 32 << 20
PLANNED_CONFIG = ("os", "architecture", "variant", "created")  # what a plan needs of a config


class TooManyDocuments(FormatError):
    """More manifests and configs than one plan holds: damage from an archive or a registry,
    a request too large when the images are the store's own (``save`` says so, exit 2)."""


class ImageManifest(NamedTuple):
    descriptor: Descriptor
    manifest: Manifest
    config: dict[str, Any]

    @property
    def platform(self) -> Platform:
        return config_platform(self.config)


class PlannedImage(NamedTuple):
    source: SourceImage
    descriptor: Descriptor           # what the names point at: a manifest or an index
    manifests: list[ImageManifest]   # the image manifests it holds (one, or an index's children)

    @property
    def names(self) -> list[Reference]:
        return self.source.names

    @property
    def subject(self) -> str | None:
        """The image this one is attached to (a signature, an SBOM), or None."""
        return subject_of(self.source.descriptor)

    @property
    def host_manifest(self) -> ImageManifest:
        """The manifest Docker would take: the host's platform, else the first."""
        want = host_platform()
        return next((m for m in self.manifests if m.platform.matches(want)), self.manifests[0])

    def display(self) -> str:
        return self.source.display()


class Plan:
    __slots__ = ("source", "images", "documents", "document_bytes", "blobs", "labels", "diff_ids",
                 "uncompressed", "sizes_signed")

    def __init__(self, source: Source) -> None:
        self.source = source
        self.images: list[PlannedImage] = []
        self.documents: dict[str, bytes] = {}     # manifests, indexes, configs
        self.document_bytes = 0                   # their size together (capped)
        self.blobs: dict[str, Descriptor] = {}    # every blob, documents too
        self.labels: dict[str, str] = {}          # digest -> "layer of image x"
        self.diff_ids: dict[str, str] = {}        # layer digest -> diff_id
        self.uncompressed: dict[str, int] = {}    # layer digest -> size a bundle records
        self.sizes_signed = False                 # those sizes vouched for by a trusted signature

    @property
    def total_bytes(self) -> int:
        return sum(d.size for d in self.blobs.values())


class CopyResult:
    __slots__ = ("plan", "added", "skipped", "bytes_added", "bytes_skipped", "outcomes")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.added: list[str] = []
        self.skipped: list[str] = []
        self.bytes_added = 0
        self.bytes_skipped = 0
        self.outcomes: dict[str, Outcome] = {}  # digest -> what the sink did

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes.values() if o is outcome)


def _platform_children(index: Index, platform: Platform | None, platforms: Platforms,
                       source: Source, what: str) -> list[Descriptor]:
    children = list(index.manifests)
    if platform is None and platforms is not Platforms.HOST:
        present = [d for d in children if source.has_blob(d.digest)]
        if platforms is Platforms.ALL or len(present) == len(children):
            return children
    want = platform or host_platform()
    for d in children:
        if d.platform is not None and d.platform.matches(want) and source.has_blob(d.digest):
            return [d]
    available = ", ".join(str(d.platform) for d in children if d.platform) or "none"
    raise NotFound(f"{what}: no manifest for platform {want} (available: {available})")


def plan(source: Source, images: list[SourceImage], *, platform: Platform | None = None,
         platforms: Platforms = Platforms.AUTO) -> Plan:
    """Read and check every manifest and config of ``images``; list the blobs to move."""
    out = Plan(source)
    for img in images:
        what = f"image {img.display()}"
        desc = img.descriptor
        raw = source.read_document(desc, f"{what}: manifest {source.where(desc)}")
        doc = parse_manifest(raw, f"{what}: manifest {source.where(desc)}", desc.media_type)
        claimed = subject_of(desc)
        if claimed is not None and doc.subject is not None and doc.subject != claimed:
            raise FormatError(f"{what}: listed as attached to {claimed}, but its manifest "
                              f"{desc.digest} names {doc.subject} as its subject")
        if doc.subject is not None and claimed is None and not img.names:
            # an OCI 1.1 referrer in a foreign layout (cosign, oras): attached to its subject,
            # as pull keeps the ones it finds through the referrers API; not an image
            img = SourceImage(attached(desc, doc.subject, "referrer"), [], img.label)
            desc = img.descriptor
        manifests: list[ImageManifest] = []
        top = desc
        if isinstance(doc, Index):
            children = _platform_children(doc, platform, platforms, source, what)
            if len(children) == len(doc.manifests):
                _add_doc(out, desc, raw, f"index of {what}")
            else:
                top = children[0]
            for child in children:
                craw = source.read_document(child, f"{what}: manifest {source.where(child)}")
                cdoc = parse_manifest(craw, f"{what}: manifest {source.where(child)}", child.media_type)
                if not isinstance(cdoc, Manifest):
                    raise FormatError(f"{what}: nested index {child.digest} is not supported")
                im = _plan_manifest(out, source, child, craw, cdoc, what)
                if child.platform is not None and im.platform.os and im.platform.architecture \
                        and not child.platform.matches(im.platform):
                    # an index that lies about a child would have a node run another
                    # architecture's image (exec format error); containerd picks by the index
                    raise FormatError(f"{what}: the index lists manifest {child.digest} as "
                                      f"{child.platform}, but its config says {im.platform}")
                manifests.append(im)
        else:  # a single manifest is taken whatever its platform, as docker load does, unless
            m = _plan_manifest(out, source, desc, raw, doc, what)  # one was asked for (Docker 27 too)
            if platform is not None and doc.config.media_type in IMAGE_CONFIG_TYPES \
                    and not m.platform.matches(platform):
                raise NotFound(f"{what}: no manifest for platform {platform} (the image is "
                               f"{str(m.platform) or 'of no platform'}, not a multi-platform image)")
            manifests.append(m)
        for name in img.names:  # a name pinned by digest must be that digest
            if name.digest is not None and name.digest != desc.digest:
                raise FormatError(f"{what}: the name {name.familiar()} pins digest {name.digest}, "
                                  f"but the image it names is {desc.digest}")
        out.images.append(PlannedImage(img, top, manifests))
    _check_names(out, source.name)
    source.check_plan(out)
    return out


def _check_names(p: Plan, where: str) -> None:
    """One name, one image: names that mean the same reference (``nginx:1``,
    ``library/nginx:1``, ``docker.io/library/nginx:1``) given to different images are
    reported, not resolved by whichever comes last."""
    owner: dict[Reference, PlannedImage] = {}
    for img in p.images:
        for name in img.names:
            other = owner.setdefault(name, img)
            if other is not img and other.descriptor.digest != img.descriptor.digest:
                raise FormatError(f"{where}: the name {name} is given to two different images: "
                                  f"{other.display()} ({other.descriptor.digest[:19]}) and "
                                  f"{img.display()} ({img.descriptor.digest[:19]})")


def _add_doc(out: Plan, desc: Descriptor, raw: bytes, label: str) -> None:
    """Keep a manifest, index or config to write it later. They are held in memory, so
    all of them together are capped (each is at most MAX_DOCUMENT): a hundred 4 MiB
    configs held 850 MB. Real ones are KiBs: 32 MiB is a thousand images or more."""
    if desc.digest not in out.documents:
        out.document_bytes += len(raw)
        if out.document_bytes > MAX_PLAN_DOCUMENTS:
            raise TooManyDocuments(f"{out.source.name}: the manifests and configs of the images take more "
                                   f"than {MAX_PLAN_DOCUMENTS >> 20} MiB together (at the {label}); refused "
                                   "(carry the images in several bundles)")
    out.documents[desc.digest] = raw
    _add_blob(out, Descriptor(desc.media_type, desc.digest, desc.size), label)


def _add_blob(out: Plan, desc: Descriptor, label: str) -> None:
    """Plan ``desc``. One digest listed at two sizes (by two manifests) is a lie: only one
    size is checked when the blob is copied, so the other would be stored unchecked. Listed
    as a plain tar by one and as compressed by another, it is planned as the plain tar: the
    claim its bytes are checked against (the store sink refuses a "plain" layer whose bytes
    are compressed); a plain tar listed as compressed is read as the tar it is."""
    known = out.blobs.setdefault(desc.digest, desc)
    if known.size != desc.size:
        raise FormatError(f"{label}: blob {desc.digest} is listed at {desc.size} bytes, and at "
                          f"{known.size} bytes as the {out.labels[desc.digest]}")
    if is_uncompressed_layer(desc.media_type) and not is_uncompressed_layer(known.media_type):
        out.blobs[desc.digest] = desc
        out.labels[desc.digest] = label
    out.labels.setdefault(desc.digest, label)


def _plan_manifest(out: Plan, source: Source, desc: Descriptor, raw: bytes, m: Manifest,
                   what: str) -> ImageManifest:
    _add_doc(out, desc, raw, f"manifest of {what}")
    if m.config.media_type not in IMAGE_CONFIG_TYPES:  # an artifact (an SBOM, a signature): blobs only
        if m.config.size <= MAX_DOCUMENT:
            _add_doc(out, m.config, source.read_document(m.config, f"{what}: config {source.where(m.config)}"),
                     f"config of {what}")
        else:
            _add_blob(out, m.config, f"config of {what}")
        for blob in m.layers:
            _add_blob(out, blob, f"blob {short_id(blob.digest)} of {what}")
        return ImageManifest(desc, m, {})
    craw = source.read_document(m.config, f"{what}: config {source.where(m.config)}")
    config, ids = parse_config(craw, f"{what}: config {source.where(m.config)}")
    config = {k: config[k] for k in PLANNED_CONFIG if k in config}  # the rest is in craw
    _add_doc(out, m.config, craw, f"config of {what}")
    if len(ids) != len(m.layers):
        raise FormatError(f"{what}: manifest {source.where(desc)} lists {plural(len(m.layers), 'layer')}, "
                          f"its config {plural(len(ids), 'diff_id')}")
    for layer, diff_id in zip(m.layers, ids):
        if is_uncompressed_layer(layer.media_type) and layer.digest != diff_id:
            raise FormatError(f"{what}: uncompressed layer {source.where(layer)} has digest "
                              f"{layer.digest}, but the config says its diff_id is {diff_id}")
        _add_blob(out, layer, f"layer {short_id(layer.digest)} of {what}")
        if out.diff_ids.setdefault(layer.digest, diff_id) != diff_id:  # two configs disagree
            raise FormatError(f"{what}: config {source.where(m.config)} gives layer {layer.digest} the "
                              f"diff_id {diff_id}, another image's config {out.diff_ids[layer.digest]}")
    return ImageManifest(desc, m, config)


def transfer(source: Source, sink: Sink, p: Plan, progress: Progress | None = None,
             verify_full: bool = False) -> CopyResult:
    """Move every planned blob the sink lacks, then the names; commit.

    With ``verify_full`` each compressed layer read is also decompressed and its diff_id
    checked against the image config (uncompressed layers are checked by their digest).
    """
    progress = progress or Progress()
    result = CopyResult(p)
    sink.begin(p)
    todo = []
    for digest in sorted(p.blobs):
        desc = p.blobs[digest]
        if sink.has_blob(digest):
            result.skipped.append(digest)
            result.bytes_skipped += desc.size
            result.outcomes[digest] = Outcome.PRESENT
            progress.skipped(desc, p.labels[digest])
        else:
            todo.append(desc)
    streamed = [d for d in todo if d.digest not in p.documents]  # documents are too small to show
    progress.begin(sum(d.size for d in streamed), len(streamed))
    copying = {d.digest for d in todo}
    teed: set[str] = set()
    if verify_full:  # every compressed layer the images use, even one the sink already has
        for digest, diff_id in sorted(p.diff_ids.items()):
            desc = p.blobs[digest]
            if is_uncompressed_layer(desc.media_type) or not source.has_blob(digest):
                continue
            if digest in copying and digest in p.uncompressed:
                teed.add(digest)  # checked in the same read as its copy, up to its declared size
            else:  # digest first, then decompression: two reads
                _check_layer(source, desc, diff_id, p.labels[digest], p)

    def put(desc: Descriptor) -> None:
        label = p.labels[desc.digest]
        if desc.digest in p.documents:
            outcome = sink.put_bytes(p.documents[desc.digest], desc, f"{label} ({source.where(desc)})")
        else:
            outcome = _copy_blob(source, sink, desc, label, progress,
                                 p if desc.digest in teed else None)
        result.outcomes[desc.digest] = outcome

    jobs = _jobs(source, sink)
    if jobs > 1:  # documents first, in order; the big blobs several at a time
        for desc in todo:
            if desc.digest in p.documents:
                put(desc)
        from concurrent.futures import ThreadPoolExecutor  # here: it costs start-up (logging)

        def put_beside(desc: Descriptor) -> None:
            with side_by_side():
                put(desc)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for f in [pool.submit(put_beside, d) for d in todo if d.digest not in p.documents]:
                f.result()
    else:  # in digest order: a bundle's members are sorted
        for desc in todo:
            put(desc)
    result.added = [d.digest for d in todo if result.outcomes.get(d.digest) is Outcome.ADDED]
    result.bytes_added = sum(d.size for d in todo if result.outcomes.get(d.digest) is Outcome.ADDED)
    progress.end()
    for img in p.images:
        sink.put_image(img.descriptor, img.names)
    sink.commit()
    return result


def _jobs(source: Source, sink: Sink) -> int:
    """Blobs copied at once: 1 if either end needs order (a tar), else what they ask for."""
    wants = [source.jobs, sink.jobs]
    if 1 in wants:
        return 1
    return max([*wants, 1])


def _copy_blob(source: Source, sink: Sink, desc: Descriptor, label: str, progress: Progress,
               full: Plan | None = None) -> Outcome:
    """One blob from source to sink; with ``full`` (verify full), its diff_id too."""
    where = f"{source.where(desc)} ({label})"
    stream: BinaryIO = source.open_blob(desc)
    tee = None
    staged = isinstance(stream, StagedBlob)  # verified on arrival; a store sink renames it
    if full is not None and not staged:
        tee = DiffIdTee(stream, desc, full.diff_ids[desc.digest], full.uncompressed[desc.digest], where,
                        bound=not full.sizes_signed)
        stream = io.BufferedReader(tee, CHUNK)
    try:
        outcome = sink.put_blob(stream, desc, where, progress.blob(desc, label))
        if tee is not None:
            tee.finish()  # after the sink accepted the bytes: the digest came first
        elif full is not None:
            _check_layer(source, desc, full.diff_ids[desc.digest], label, full)
        return outcome
    finally:
        stream.close()


def _check_layer(source: Source, desc: Descriptor, diff_id: str, label: str, p: Plan) -> None:
    check_layer(lambda: source.open_blob(desc), desc, diff_id, f"{source.where(desc)} ({label})",
                p.uncompressed.get(desc.digest), bound=not p.sizes_signed)


def copy(source: Source, sink: Sink, images: list[SourceImage] | None = None, *,
         platform: Platform | None = None, platforms: Platforms = Platforms.AUTO,
         progress: Progress | None = None, verify_full: bool = False,
         before: Callable[[Plan], None] | None = None) -> CopyResult:
    """Plan, then transfer. ``before`` sees the plan first and may refuse (free space)."""
    p = plan(source, source.images() if images is None else images,
             platform=platform, platforms=platforms)
    if before is not None:
        before(p)
    return transfer(source, sink, p, progress, verify_full)


def bytes_to_add(p: Plan, has_blob: Callable[[str], bool]) -> int:
    """What a sink that has the blobs ``has_blob`` says will receive: for space checks."""
    return sum(d.size for k, d in p.blobs.items() if not has_blob(k))
