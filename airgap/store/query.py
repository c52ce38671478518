"""Finding stored images by name, digest or (short) ID, and reading what they hold."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cached_property

from ..digest import sha256_digest
from ..errors import AirgapError, AmbiguousReference, Conflict, FormatError, NotFound
from ..oci import Descriptor, Index, Manifest, host_platform, load_json, parse_manifest
from ..reference import Reference, parse_reference
from ..timeutil import parse_time
from .layout import Image, Store
from ..words import plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_HEX_PREFIX = r"(sha256:)?([a-f0-9]{1,64})"


class ImageInfo:
    """A stored image with its manifest and config read (for an index: the host's child)."""

    def __init__(self, store: Store, image: Image) -> None:
        self.store = store
        self.image = image

    @cached_property
    def _resolved(self) -> tuple[Descriptor, Manifest]:
        desc = self.image.descriptor
        doc = parse_manifest(self.store.read_blob(desc.digest, verify=False), f"manifest {desc.digest}")
        if isinstance(doc, Index):
            want = host_platform()
            present = [d for d in doc.manifests if self.store.has_blob(d.digest)]
            chosen = next((d for d in present if d.platform and d.platform.matches(want)),
                          present[0] if present else None)
            if chosen is None:
                raise NotFound(f"index {desc.digest} has no manifest in the store")
            desc = chosen
            doc = parse_manifest(self.store.read_blob(desc.digest, verify=False), f"manifest {desc.digest}")
            if not isinstance(doc, Manifest):
                raise FormatError(f"manifest {desc.digest}: nested indexes are not supported")
        return desc, doc

    @property
    def manifest(self) -> Manifest:
        return self._resolved[1]

    @cached_property
    def config(self) -> dict[str, Any]:
        d = self.manifest.config.digest
        doc = load_json(self.store.read_blob(d, verify=False), f"config {d}")
        return doc if isinstance(doc, dict) else {}

    @property
    def id(self) -> str:
        """Docker's image ID: the config digest."""
        return self.manifest.config.digest

    @property
    def digest(self) -> str:
        return self.image.digest

    @property
    def names(self) -> list[Reference]:
        return self.image.names

    @property
    def tags(self) -> list[Reference]:
        """Tagged names, in Docker's order (lexical on the full reference)."""
        return sorted((n for n in self.names if not n.digest), key=str)

    @property
    def digest_refs(self) -> list[Reference]:
        """``repo@sha256:...`` names: Docker's RepoDigests."""
        return sorted((n for n in self.names if n.digest), key=str)

    @property
    def created(self) -> str:
        return str(self.config.get("created") or "")

    @cached_property
    def created_time(self) -> datetime | None:
        return parse_time(self.created)

    @property
    def diff_ids(self) -> list[str]:
        rootfs = self.config.get("rootfs")
        ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        return [str(d) for d in ids] if isinstance(ids, list) else []

    @property
    def chain_ids(self) -> list[str]:
        """Docker's layer chain IDs: each names a layer with everything below it."""
        out: list[str] = []
        for d in self.diff_ids:
            out.append(d if not out else
                       sha256_digest(f"{out[-1]} {d}".encode()))
        return out

    @property
    def size(self) -> int:
        """Bytes of the layers as stored (compressed where the layers are)."""
        return sum(d.size for d in self.manifest.layers)

    @property
    def layer_digests(self) -> list[str]:
        return [d.digest for d in self.manifest.layers]

    @property
    def labels(self) -> dict[str, str]:
        cfg = self.config.get("config") or {}
        labels = cfg.get("Labels") if isinstance(cfg, dict) else None
        return dict(labels) if isinstance(labels, dict) else {}


def all_images(store: Store, entries: list[Descriptor] | None = None) -> list[ImageInfo]:
    """The stored images (of ``entries``, by default the index's); what is attached to
    them (signatures, SBOMs) is not listed."""
    return [ImageInfo(store, img) for img in store.images(entries) if img.subject is None]


def by_name(images: list[ImageInfo]) -> dict[Reference, ImageInfo]:
    """``images`` by each of their names (the first image of a name, as a scan finds it),
    for ``find_image`` over many arguments."""
    out: dict[Reference, ImageInfo] = {}
    for info in images:
        for n in info.names:
            out.setdefault(n, info)
    return out


def find_image(store: Store, text: str, images: list[ImageInfo] | None = None,
               by_name: dict[Reference, ImageInfo] | None = None) -> tuple[ImageInfo, Reference | None]:
    """Resolve a name, ``name@digest``, full or short ID, as Docker does.

    Returns the image and, when ``text`` was a name, the normalized reference.
    ``by_name``, when given, is ``images`` by each of their names (for many lookups).
    """
    images = all_images(store) if images is None else images
    ref: Reference | None = None
    by_id = re.fullmatch(_HEX_PREFIX, text)
    if by_id and len(by_id.group(2)) == 64:
        return _by_id(images, text, by_id.group(2)), None
    try:
        ref = parse_reference(text).with_default_tag()
    except AmbiguousReference:  # no image can be named so: to a lookup, none is (Docker's answer)
        if not by_id:
            raise NotFound(f"No such image: {text}") from None
    except AirgapError:
        if not by_id:
            raise
    if ref is not None:
        named = by_name.get(ref) if by_name is not None else next((i for i in images if ref in i.names), None)
        if named is not None:
            return named, ref
        if ref.digest:
            for info in images:
                if info.digest == ref.digest and (not info.names or any(n.name == ref.name for n in info.names)):
                    return info, ref
    if by_id:
        return _by_id(images, text, by_id.group(2)), None
    raise NotFound(f"No such image: {text}")


def _by_id(images: list[ImageInfo], text: str, prefix: str) -> ImageInfo:
    hits: dict[str, ImageInfo] = {}
    for info in images:
        try:
            image_id = info.id
        except AirgapError:
            continue
        if image_id[7:].startswith(prefix) or info.digest[7:].startswith(prefix):
            hits.setdefault(image_id, info)
    if not hits:
        raise NotFound(f"No such image: {text}")
    if len(hits) > 1:
        raise Conflict(f"ambiguous image ID {text!r}: it matches {plural(len(hits), 'image')}")
    return next(iter(hits.values()))
