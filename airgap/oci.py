"""OCI and Docker v2 media types, descriptors, manifests, indexes and platforms."""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field
from typing import Any

from .digest import validate_digest
from .errors import FormatError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

MAX_DOCUMENT = 8 << 20  # manifests, indexes and configs are read whole, up to this size


def load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{what}: not valid JSON: {exc}") from None


def canonical_json(obj: Any) -> bytes:
    """Compact JSON with sorted keys: what airgap writes when it makes a document."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, other: Platform) -> bool:
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return not self.variant or not other.variant or self.variant == other.variant


_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i386": "386",
                 "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    arch = _ARCH_ALIASES.get(machine, machine)
    variant = "v8" if arch == "arm64" else ("v7" if machine == "armv7l" else "")
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    from .errors import UsageError
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT]")
    return Platform(*parts)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    platform: Platform | None = field(default=None, hash=False, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_json(cls, obj: Any, what: str) -> Descriptor:
        if not isinstance(obj, dict):
            raise FormatError(f"{what}: descriptor is not an object")
        digest, size = obj.get("digest"), obj.get("size")
        validate_digest(str(digest), what)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise FormatError(f"{what}: descriptor of {digest} has no valid size")
        plat = obj.get("platform")
        platform = None
        if isinstance(plat, dict) and plat.get("os") and plat.get("architecture"):
            platform = Platform(str(plat["os"]), str(plat["architecture"]), str(plat.get("variant", "")))
        ann = obj.get("annotations") or {}
        return cls(str(obj.get("mediaType", "")), str(digest), size,
                   dict(ann) if isinstance(ann, dict) else {}, platform, dict(obj))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.raw)
        out.update({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        else:
            out.pop("annotations", None)
        return out


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config and its layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        return (self.config, *self.layers)


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def media_type_of(data: bytes, what: str, hint: str = "") -> str:
    doc = load_json(data, what)
    if not isinstance(doc, dict):
        raise FormatError(f"{what}: not a JSON object")
    mt = doc.get("mediaType") or hint
    if not mt:
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    return str(mt)


def parse_manifest(data: bytes, what: str) -> Manifest | Index:
    """Parse a manifest or index document, refusing schema 1 and unknown types."""
    doc = load_json(data, what)
    if not isinstance(doc, dict):
        raise FormatError(f"{what}: not a JSON object")
    mt = doc.get("mediaType") or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    if mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise FormatError(f"{what}: Docker schema 1 manifests are not supported "
                          "(deprecated since 2017); re-push the image with a current tool")
    if mt in INDEX_TYPES:
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise FormatError(f"{what}: index has no manifests list")
        return Index(mt, tuple(Descriptor.from_json(d, what) for d in items))
    if mt in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise FormatError(f"{what}: manifest has no layers list")
        return Manifest(mt, Descriptor.from_json(doc.get("config"), f"{what} config"),
                        tuple(Descriptor.from_json(d, f"{what} layer") for d in layers))
    raise FormatError(f"{what}: unsupported manifest media type {mt!r}")


def is_gzip_layer(mt: str) -> bool:
    return mt.endswith("gzip")


def is_uncompressed_layer(mt: str) -> bool:
    return mt in (OCI_LAYER, DOCKER_LAYER, "application/vnd.oci.image.layer.nondistributable.v1.tar")


def config_platform(config: dict[str, Any]) -> Platform:
    return Platform(str(config.get("os", "")), str(config.get("architecture", "")),
                    str(config.get("variant", "") or ""))


def diff_ids(config: dict[str, Any], what: str) -> list[str]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        raise FormatError(f"{what}: config has no rootfs.diff_ids")
    for d in ids:
        validate_digest(d, what)
    return list(ids)
