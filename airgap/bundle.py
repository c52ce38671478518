"""``airgap/bundle.json``: the typed, versioned document that pins a bundle's content.

Schema (``schemaVersion`` 1, media type ``application/vnd.airgap.bundle.v1+json``)::

    tool        {"name": "airgap", "version": "..."}
    created     RFC 3339 time
    images      [{references: [full names], digest, mediaType, size,
                  manifests: [{digest, config, platform}],
                  subject?, attachment?}]   (attached artifacts: the image they belong to)
    blobs       [{digest, size, mediaType, diffID?, uncompressedSize?}]   every blob shipped
    files       {"index.json"|"manifest.json"|"repositories"|"oci-layout": {digest, size}}
    expectedPresent  [{digest, size, mediaType}]   blobs a delta bundle leaves out

Every member of the bundle tar other than ``airgap/*`` is pinned here by digest and size,
and the signature covers this document's exact bytes.
"""

from __future__ import annotations

import json

from . import __version__
from .digest import validate_digest
from .errors import AirgapError, FormatError
from .oci import MAX_MANIFESTS, load_json, need_list, need_str
from .records import NamedTuple
from .reference import Reference, parse_reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHEMA_VERSION = 1
MEDIA_TYPE = "application/vnd.airgap.bundle.v1+json"
MAX_BUNDLE_JSON = 16 << 20
MAX_IMAGES = 10_000     # images in one bundle
MAX_NAMES = 10_000      # names of one image
MAX_ALL_NAMES = 100_000  # names in one archive: each is an entry of the store's index.json,
                         # which every later command reads (500,000 from a 7 MB manifest.json
                         # took a load 12 s and 1 GB, and `images` 18 s, ever after)
MAX_BLOBS = 100_000     # blobs in one bundle
TOP_FILES = ("index.json", "manifest.json", "repositories", "oci-layout")


class BundleBlob(NamedTuple):
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


class BundleManifest(NamedTuple):
    digest: str
    config: str
    platform: str


class BundleImage:
    __slots__ = ("references", "digest", "media_type", "size", "manifests", "subject", "attachment")

    def __init__(self, references: list[Reference], digest: str, media_type: str, size: int,
                 manifests: list[BundleManifest], subject: str | None = None,
                 attachment: str | None = None) -> None:
        self.references = references
        self.digest = digest
        self.media_type = media_type
        self.size = size
        self.manifests = manifests
        self.subject = subject            # attached to this image (a signature, an SBOM)
        self.attachment = attachment      # signature, attestation, sbom, referrer


class Bundle:
    __slots__ = ("created", "images", "blobs", "files", "expected_present", "tool", "_by_digest")

    def __init__(self, created: str, images: list[BundleImage], blobs: list[BundleBlob],
                 files: dict[str, tuple[str, int]], expected_present: list[BundleBlob] | None = None,
                 tool: str = f"airgap {__version__}") -> None:
        self.created = created
        self.images = images
        self.blobs = blobs
        self.files = files
        self.expected_present: list[BundleBlob] = [] if expected_present is None else expected_present
        self.tool = tool
        self._by_digest = {b.digest: b for b in [*self.blobs, *self.expected_present]}

    def blob(self, digest: str) -> BundleBlob | None:
        return self._by_digest.get(digest)

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
                **({"subject": img.subject, "attachment": img.attachment} if img.subject else {}),
            } for img in self.images],
            "blobs": [b.to_json() for b in self.blobs],
            "files": {k: {"digest": d, "size": s} for k, (d, s) in sorted(self.files.items())},
        }
        if self.expected_present:
            doc["expectedPresent"] = [b.to_json() for b in self.expected_present]
        return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Bundle:
        doc = load_json(data, where, max_containers=4 * MAX_BLOBS)
        try:
            return cls._from_doc(doc, where)
        except FormatError:
            raise
        except AirgapError as exc:  # an invalid reference: damage, not a usage error
            raise FormatError(f"{where}: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FormatError(f"{where}: not a valid airgap bundle document ({exc!r})") from None

    @classmethod
    def _from_doc(cls, doc: Any, where: str) -> Bundle:
        if not isinstance(doc, dict):
            raise FormatError(f"{where}: not a JSON object")
        if doc.get("schemaVersion") != SCHEMA_VERSION or doc.get("mediaType") != MEDIA_TYPE:
            raise FormatError(f"{where}: unsupported bundle schema {doc.get('schemaVersion')!r} "
                              f"{doc.get('mediaType')!r}; a newer airgap may read it")
        images: list[BundleImage] = []
        named = 0
        for img in need_list(doc["images"], where, "images", MAX_IMAGES):
            _need_dict(img, where, "an image")
            validate_digest(img["digest"], where)
            manifests = []
            for m in need_list(img["manifests"], where, "manifests", MAX_MANIFESTS):
                _need_dict(m, where, "a manifest")
                manifests.append(BundleManifest(validate_digest(m["digest"], where) and m["digest"],
                                                validate_digest(m["config"], where) and m["config"],
                                                need_str(m["platform"], where, "platform")))
            named = count_names(named, need_list(img["references"], where, "references", MAX_NAMES), where)
            refs = [parse_reference(need_str(r, where, "a reference")) for r in img["references"]]
            subject = img.get("subject")
            if subject is not None:
                validate_digest(subject, where)
            kind = img.get("attachment")
            images.append(BundleImage(refs, img["digest"], need_str(img["mediaType"], where, "mediaType"),
                                      _size(img["size"], where), manifests, subject,
                                      None if kind is None else need_str(kind, where, "attachment")))
        files_doc = doc["files"]
        _need_dict(files_doc, where, "files")
        files = {}
        for name, f in files_doc.items():
            if name not in TOP_FILES:
                raise FormatError(f"{where}: unexpected file entry {name!r}")
            _need_dict(f, where, f"files.{name}")
            validate_digest(f["digest"], where)
            files[name] = (f["digest"], _size(f["size"], where))
        tool = doc.get("tool") or {}
        _need_dict(tool, where, "tool")
        blobs = [_blob(b, where) for b in need_list(doc["blobs"], where, "blobs", MAX_BLOBS)]
        present = [_blob(b, where) for b in need_list(doc.get("expectedPresent") or [], where,
                                                      "expectedPresent", MAX_BLOBS)]
        return cls(need_str(doc["created"], where, "created"), images, blobs, files, present,
                   f"{tool.get('name', '?')} {tool.get('version', '?')}")


def _need_dict(value: Any, where: str, what: str) -> None:
    if not isinstance(value, dict):
        raise FormatError(f"{where}: {what} must be a JSON object")


def count_names(so_far: int, names: list[Any], where: str) -> int:
    """``so_far`` plus ``names``, refused past MAX_ALL_NAMES (before they are parsed)."""
    total = so_far + len(names)
    if total > MAX_ALL_NAMES:
        raise FormatError(f"{where}: more than {MAX_ALL_NAMES} image names in one archive, more than "
                          "airgap allows")
    return total


def _size(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 1 << 50:
        raise FormatError(f"{where}: invalid size {value!r}")
    return value


def _blob(b: Any, where: str) -> BundleBlob:
    _need_dict(b, where, "a blob")
    validate_digest(b["digest"], where)
    diff_id = b.get("diffID")
    if diff_id is not None:
        validate_digest(diff_id, where)
    usize = b.get("uncompressedSize")
    return BundleBlob(b["digest"], _size(b["size"], where), need_str(b["mediaType"], where, "mediaType"),
                      diff_id, None if usize is None else _size(usize, where))


def check_loadable(raw: bytes, files: dict[str, bytes]) -> None:
    """Refuse to write a bundle that a loader would refuse for its size: ``bundle.json``
    and the top files are read against the same limits a load applies (a save of thousands
    of images would otherwise ship a bundle no airgap takes)."""
    from .errors import UsageError
    from .oci import MAX_DOCUMENT
    advice = "save the images in several bundles"
    if len(raw) > MAX_BUNDLE_JSON:
        raise UsageError(f"this bundle's bundle.json would take {len(raw)} bytes, more than the "
                         f"{MAX_BUNDLE_JSON} a load reads; {advice}")
    for name, data in files.items():
        if len(data) > MAX_DOCUMENT:
            raise UsageError(f"this bundle's {name} would take {len(data)} bytes, more than the "
                             f"{MAX_DOCUMENT} a load reads; {advice}")
    try:
        Bundle.from_bytes(raw, "bundle.json")
    except FormatError as exc:
        raise UsageError(f"this save would make a bundle that airgap cannot load ({exc}); {advice}") from None
