"""``airgap/bundle.json``: the typed, versioned document that pins a bundle's content.

Schema (``schemaVersion`` 1, media type ``application/vnd.airgap.bundle.v1+json``)::

    tool        {"name": "airgap", "version": "..."}
    created     RFC 3339 time
    images      [{references: [full names], digest, mediaType, size,
                  manifests: [{digest, config, platform}]}]
    blobs       [{digest, size, mediaType, diffID?, uncompressedSize?}]   every blob shipped
    files       {"index.json"|"manifest.json"|"repositories"|"oci-layout": {digest, size}}
    expectedPresent  [{digest, size, mediaType}]   blobs a delta bundle leaves out

Every member of the bundle tar other than ``airgap/*`` is pinned here by digest and size,
and the signature covers this document's exact bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .digest import validate_digest
from .errors import FormatError
from .reference import Reference, parse_reference

SCHEMA_VERSION = 1
MEDIA_TYPE = "application/vnd.airgap.bundle.v1+json"
MAX_BUNDLE_JSON = 64 << 20
TOP_FILES = ("index.json", "manifest.json", "repositories", "oci-layout")


@dataclass(frozen=True)
class BundleBlob:
    digest: str
    size: int
    media_type: str
    diff_id: str | None = None
    uncompressed_size: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "size": self.size, "mediaType": self.media_type}
        if self.diff_id:
            out["diffID"] = self.diff_id
        if self.uncompressed_size is not None:
            out["uncompressedSize"] = self.uncompressed_size
        return out


@dataclass(frozen=True)
class BundleManifest:
    digest: str
    config: str
    platform: str


@dataclass
class BundleImage:
    references: list[Reference]
    digest: str
    media_type: str
    size: int
    manifests: list[BundleManifest]


@dataclass
class Bundle:
    created: str
    images: list[BundleImage]
    blobs: list[BundleBlob]
    files: dict[str, tuple[str, int]]
    expected_present: list[BundleBlob] = field(default_factory=list)
    tool: str = f"airgap {__version__}"

    def blob(self, digest: str) -> BundleBlob | None:
        return self._by_digest.get(digest)

    @property
    def _by_digest(self) -> dict[str, BundleBlob]:
        return {b.digest: b for b in [*self.blobs, *self.expected_present]}

    def to_bytes(self) -> bytes:
        name, _, version = self.tool.partition(" ")
        doc = {
            "schemaVersion": SCHEMA_VERSION,
            "mediaType": MEDIA_TYPE,
            "tool": {"name": name, "version": version},
            "created": self.created,
            "images": [{
                "references": [str(r) for r in img.references],
                "digest": img.digest, "mediaType": img.media_type, "size": img.size,
                "manifests": [{"digest": m.digest, "config": m.config, "platform": m.platform}
                              for m in img.manifests],
            } for img in self.images],
            "blobs": [b.to_json() for b in self.blobs],
            "files": {k: {"digest": d, "size": s} for k, (d, s) in sorted(self.files.items())},
        }
        if self.expected_present:
            doc["expectedPresent"] = [b.to_json() for b in self.expected_present]
        return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Bundle:
        try:
            doc = json.loads(data)
            return cls._from_doc(doc, where)
        except FormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FormatError(f"{where}: not a valid airgap bundle document ({exc!r})") from None

    @classmethod
    def _from_doc(cls, doc: dict[str, Any], where: str) -> Bundle:
        if doc.get("schemaVersion") != SCHEMA_VERSION or doc.get("mediaType") != MEDIA_TYPE:
            raise FormatError(f"{where}: unsupported bundle schema {doc.get('schemaVersion')!r} "
                              f"{doc.get('mediaType')!r}; a newer airgap may read it")
        images = []
        for img in doc["images"]:
            validate_digest(img["digest"], where)
            manifests = [BundleManifest(validate_digest(m["digest"], where) and m["digest"],
                                        validate_digest(m["config"], where) and m["config"],
                                        str(m["platform"])) for m in img["manifests"]]
            images.append(BundleImage([parse_reference(r) for r in img["references"]],
                                      img["digest"], str(img["mediaType"]), _size(img["size"], where),
                                      manifests))
        files = {}
        for name, f in doc["files"].items():
            if name not in TOP_FILES:
                raise FormatError(f"{where}: unexpected file entry {name!r}")
            validate_digest(f["digest"], where)
            files[name] = (f["digest"], _size(f["size"], where))
        tool = doc.get("tool") or {}
        return cls(str(doc["created"]), images, [_blob(b, where) for b in doc["blobs"]], files,
                   [_blob(b, where) for b in doc.get("expectedPresent") or []],
                   f"{tool.get('name', '?')} {tool.get('version', '?')}")


def _size(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"{where}: invalid size {value!r}")
    return value


def _blob(b: dict[str, Any], where: str) -> BundleBlob:
    validate_digest(b["digest"], where)
    diff_id = b.get("diffID")
    if diff_id is not None:
        validate_digest(diff_id, where)
    usize = b.get("uncompressedSize")
    return BundleBlob(b["digest"], _size(b["size"], where), str(b["mediaType"]), diff_id,
                      None if usize is None else _size(usize, where))
