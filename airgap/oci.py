"""OCI and Docker v2 media types, descriptors, manifests, indexes and platforms."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from types import MappingProxyType

from .digest import validate_digest
from .errors import FormatError
from .gotypes import check_container_config, check_fields
from .records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

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
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
# what airgap writes beside a name in index.json: the image an artifact is attached to
ANNOTATION_SUBJECT = "io.airgap.subject"
ANNOTATION_ATTACHMENT = "io.airgap.attachment"  # signature, attestation, sbom, referrer
COSIGN_SUFFIXES = {".sig": "signature", ".att": "attestation", ".sbom": "sbom"}
IMAGE_CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)


def cosign_tag(digest: str, suffix: str) -> str:
    """cosign's tag for what is attached to ``digest``: ``sha256-<hex>.sig``."""
    return digest.replace(":", "-") + suffix


def attached(desc: Descriptor, subject: str, kind: str) -> Descriptor:
    """``desc`` marked as attached to ``subject`` (a signature, an SBOM...)."""
    return Descriptor(desc.media_type, desc.digest, desc.size,
                      {**desc.annotations, ANNOTATION_SUBJECT: subject, ANNOTATION_ATTACHMENT: kind},
                      desc.platform, desc.raw)


def subject_of(desc: Descriptor) -> str | None:
    return desc.annotations.get(ANNOTATION_SUBJECT)

MAX_DOCUMENT = 8 << 20  # manifests, indexes and configs are read whole, up to this size
MAX_CONTAINERS = 200_000  # JSON objects and arrays in one document: a real one has far fewer
MAX_LAYERS = 20_000       # layers in one manifest
DOCKER_MAX_LAYERS = 125   # what `docker load` takes (moby's layer store): more is "max depth exceeded"
MAX_MANIFESTS = 20_000    # manifests in one index
MAX_DEPTH = 200           # JSON nesting (a real image document nests under 10)


def load_json(data: bytes, what: str, max_containers: int = MAX_CONTAINERS, depth: bool = True) -> Any:
    """Parse a document from outside: bounded in objects (a few MB of ``[{},{},...]`` would
    take many times its size in memory) and in nesting, to MAX_DEPTH whatever the reader's
    own stack allows where it runs (Python's reader stops ~1,000 deep less the calls above
    it: a config that loaded at one depth of the stack was refused by `images` at another);
    any failure is a FormatError. ``depth=False`` is for the store's own index, which
    airgap writes (its nesting is fixed) and which may hold millions of objects."""
    containers = data.count(b"{") + data.count(b"[")
    if containers > max_containers:
        raise FormatError(f"{what}: more than {max_containers} JSON objects and arrays; "
                          "refusing to parse it")
    try:
        doc = json.loads(data, parse_constant=_not_json)
    except RecursionError:
        raise FormatError(f"{what}: JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, and numbers too long
        raise FormatError(f"{what}: not valid JSON: {exc}") from None
    if depth and containers > MAX_DEPTH and _nesting(doc) > MAX_DEPTH:
        raise FormatError(f"{what}: JSON nested more than {MAX_DEPTH} deep")
    return doc


def _nesting(doc: Any) -> int:
    """How deep ``doc``'s objects and arrays nest, walked with a stack."""
    deepest, todo = 0, [(doc, 1)]
    while todo:
        value, level = todo.pop()
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if items is None:
            continue
        deepest = max(deepest, level)
        todo += [(x, level + 1) for x in items if isinstance(x, (dict, list))]
    return deepest


def _not_json(word: str) -> Any:
    """Python's reader takes NaN and Infinity; JSON (and Go's reader) does not."""
    raise ValueError(f"{word} is not a JSON value")


def need_str(value: Any, what: str, field: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"{what}: {field} must be a string, not {type(value).__name__}")
    return value


def need_list(value: Any, what: str, field: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise FormatError(f"{what}: {field} must be a list, not {type(value).__name__}")
    if len(value) > limit:
        raise FormatError(f"{what}: {field} has {len(value)} entries, more than airgap allows ({limit})")
    return value


def canonical_json(obj: Any) -> bytes:
    """Compact JSON with sorted keys: what airgap writes when it makes a document."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Platform(NamedTuple):
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def normalized(self) -> Platform:
        """As containerd normalizes it: ``Linux/x86_64`` is ``linux/amd64``."""
        arch = self.architecture.lower()
        return Platform(self.os.lower(), _ARCH_ALIASES.get(arch, arch), self.variant.lower())

    def matches(self, other: Platform) -> bool:
        """The same platform, as containerd compares them: normalized, and a variant on one
        side only agrees. (Platforms are kept as written, for what airgap prints.)"""
        a, b = self.normalized(), other.normalized()
        if (a.os, a.architecture) != (b.os, b.architecture):
            return False
        return not a.variant or not b.variant or a.variant == b.variant


_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i386": "386",
                 "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}


def host_platform() -> Platform:
    machine = os.uname().machine.lower()
    arch = _ARCH_ALIASES.get(machine, machine)
    variant = "v8" if arch == "arm64" else ("v7" if machine == "armv7l" else "")
    return Platform("linux", arch, variant)


_KNOWN_OS = frozenset("aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd "
                      "openbsd plan9 solaris wasip1 windows zos".split())
_KNOWN_ARCH = frozenset("386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 mips64le "
                        "mips64p32 mips64p32le ppc ppc64 ppc64le riscv riscv64 s390 s390x sparc sparc64 "
                        "wasm".split())
_PLATFORM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def _platform_word(text: str) -> bool:
    """A platform component as containerd and Docker parse one: ASCII letters, digits, '_'
    and '-', at least one."""
    return bool(text) and not text.strip(_PLATFORM_CHARS)


def parse_platform(text: str) -> Platform:
    """``OS/ARCH[/VARIANT]``, or one part as containerd's ``platforms.Parse`` takes it: a
    known OS (``linux``: this host's architecture) or a known architecture (``arm64``:
    linux)."""
    from .errors import UsageError
    parts = text.split("/")
    if len(parts) > 3 or not all(_platform_word(p) for p in parts):
        raise UsageError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT], each part of "
                         "letters, digits, '_' and '-'")
    if len(parts) > 1:
        return Platform(*parts).normalized()
    word = parts[0].lower()
    if word in _KNOWN_OS:
        host = host_platform()
        return Platform(word, host.architecture, host.variant if word == "linux" else "")
    arch = Platform("linux", word).normalized()
    if arch.architecture in _KNOWN_ARCH:
        return Platform("linux", arch.architecture, "v8" if arch.architecture == "arm64" else "")
    raise UsageError(f"invalid platform {text!r}: {word!r} is no operating system or architecture "
                     "airgap knows; expected OS/ARCH[/VARIANT]")


# the fields of the documents Go programs read into structs (case-insensitively), with their
# JSON kinds: of a manifest or an index (index.json too), of a descriptor, of a platform
DOCUMENT = {"schemaVersion": "int", "mediaType": "string", "artifactType": "string", "config": "object",
            "layers": "list", "manifests": "list", "subject": "object", "annotations": "string map"}
_DESCRIPTOR = {"mediaType": "string", "artifactType": "string", "digest": "string", "size": "int",
               "urls": "strings", "annotations": "string map", "platform": "object", "data": "base64"}
_PLATFORM = {"architecture": "string", "os": "string", "os.version": "string", "os.features": "strings",
             "variant": "string", "features": "strings"}


_NONE: Mapping[str, Any] = MappingProxyType({})  # shared by descriptors without annotations or
                                                # extra fields; read-only, so none can change it
_PLAIN = frozenset(("mediaType", "digest", "size"))


class Descriptor:
    """A blob's media type, digest and size (what equality and hashing go by), with the
    annotations, platform and other fields of the JSON it came from (``raw``)."""

    __slots__ = ("media_type", "digest", "size", "annotations", "platform", "raw")

    def __init__(self, media_type: str, digest: str, size: int, annotations: Mapping[str, str] | None = None,
                 platform: Platform | None = None, raw: Mapping[str, Any] | None = None) -> None:
        self.media_type: Final = media_type  # Final: mypy refuses any assignment after this
        self.digest: Final = digest
        self.size: Final = size
        self.annotations: Final[Mapping[str, str]] = _NONE if annotations is None else annotations
        self.platform: Final = platform
        self.raw: Final[Mapping[str, Any]] = _NONE if raw is None else raw

    def _key(self) -> tuple[str, str, int]:
        return self.media_type, self.digest, self.size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descriptor) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Descriptor(media_type={self.media_type!r}, digest={self.digest!r}, size={self.size!r}, "
                f"annotations={self.annotations!r}, platform={self.platform!r})")

    @classmethod
    def from_json(cls, obj: Any, what: str) -> Descriptor:
        if not isinstance(obj, dict):
            raise FormatError(f"{what}: descriptor is not an object")
        check_fields(obj, _DESCRIPTOR, what)
        digest, size = obj.get("digest"), obj.get("size")
        validate_digest(digest, what)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > 1 << 50:
            raise FormatError(f"{what}: descriptor of {digest} has no valid size")
        plat = obj.get("platform")
        platform = None
        if plat is not None:
            if not isinstance(plat, dict):
                raise FormatError(f"{what}: descriptor of {digest}: platform must be an object")
            check_fields(plat, _PLATFORM, what, "platform.")
            fields = [plat.get(k) or "" for k in ("os", "architecture", "variant")]
            if fields[0] and fields[1]:
                platform = Platform(*fields)
        ann = obj.get("annotations") or {}
        if not isinstance(ann, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in ann.items()):
            raise FormatError(f"{what}: descriptor of {digest}: annotations must map strings to strings")
        # no dicts of its own for a plain descriptor (most are: a manifest may list 20,000)
        return cls(sys.intern(need_str(obj.get("mediaType", ""), what, "mediaType")), sys.intern(str(digest)), size,
                   dict(ann) if ann else _NONE, platform, dict(obj) if obj.keys() - _PLAIN else _NONE)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.raw)
        out.update({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        else:
            out.pop("annotations", None)
        return out


class Manifest(NamedTuple):
    """An image manifest: one config and its layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    subject: str | None = None  # the digest of the manifest this one is attached to (OCI 1.1)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        return (self.config, *self.layers)


class Index(NamedTuple):
    media_type: str
    manifests: tuple[Descriptor, ...]
    subject: str | None = None


def parse_manifest(data: bytes, what: str, declared: str | None = None) -> Manifest | Index:
    """Parse a manifest or index document, refusing schema 1 and unknown types; and, given
    the media type its descriptor ``declared``, a document of the other kind (an index
    where a manifest is declared, or the reverse: containerd goes by the descriptor's
    type; an OCI and a Docker type of the same kind read alike)."""
    doc = load_json(data, what)
    if not isinstance(doc, dict):
        raise FormatError(f"{what}: not a JSON object")
    check_fields(doc, DOCUMENT, what)
    subject = None
    if doc.get("subject") is not None:
        subject = Descriptor.from_json(doc["subject"], f"{what} subject").digest
    mt = doc.get("mediaType") or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    if not isinstance(mt, str):
        raise FormatError(f"{what}: mediaType must be a string")
    if mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise FormatError(f"{what}: Docker schema 1 manifests are not supported "
                          "(deprecated since 2017); re-push the image with a current tool")
    kinds = (INDEX_TYPES, MANIFEST_TYPES)
    if declared is not None and any(mt in k for k in kinds) and not any(mt in k and declared in k for k in kinds):
        raise FormatError(f"{what}: its descriptor says media type {declared[:200]!r}, "
                          f"the document {mt[:200]!r}")
    if mt in INDEX_TYPES:
        items = need_list(doc.get("manifests"), what, "manifests", MAX_MANIFESTS)
        return Index(mt, tuple(Descriptor.from_json(d, what) for d in items), subject)
    if mt in MANIFEST_TYPES:
        layers = need_list(doc.get("layers"), what, "layers", MAX_LAYERS)
        return Manifest(mt, Descriptor.from_json(doc.get("config"), f"{what} config"),
                        tuple(Descriptor.from_json(d, f"{what} layer") for d in layers), subject)
    raise FormatError(f"{what}: unsupported manifest media type {mt!r}")


def is_uncompressed_layer(mt: str) -> bool:
    return mt in (OCI_LAYER, DOCKER_LAYER, "application/vnd.oci.image.layer.nondistributable.v1.tar")


def config_platform(config: dict[str, Any]) -> Platform:
    return Platform(str(config.get("os") or ""), str(config.get("architecture") or ""),
                    str(config.get("variant") or ""))


# The fields of an image config and their JSON kinds as Docker reads them (its image.Image:
# a mistyped field makes `docker load` fail to unmarshal it; containerd's are a subset).
IMAGE_CONFIG = {**dict.fromkeys(("id", "parent", "comment", "container", "docker_version", "author",
                                 "architecture", "variant", "os", "os.version"), "string"),
                "created": "time", "config": "object", "container_config": "object", "rootfs": "object",
                "history": "list", "os.features": "strings", "Size": "int"}
_ROOTFS = {"type": "string", "diff_ids": "list"}
_HISTORY = {"created": "time", "author": "string", "created_by": "string", "comment": "string",
            "empty_layer": "bool"}


def parse_config(data: bytes, what: str) -> tuple[dict[str, Any], list[str]]:
    """An image config from outside, its fields of the types Docker requires; with its
    diff_ids. Anything else is a FormatError, so that readers of the store can rely on it."""
    config = load_json(data, what)
    if not isinstance(config, dict):
        raise FormatError(f"{what}: not a JSON object")
    check_fields(config, IMAGE_CONFIG, what, word="config field")
    for key in ("config", "container_config"):
        if config.get(key) is not None:
            check_container_config(config[key], what, f"{key}.")
    if config.get("rootfs") is not None:
        check_fields(config["rootfs"], _ROOTFS, what, "rootfs.", "config field")
    history = need_list(config.get("history") or [], what, "config field 'history'", MAX_CONTAINERS)
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise FormatError(f"{what}: config field 'history[{i}]' must be an object")
        check_fields(entry, _HISTORY, what, f"history[{i}].", "config field")
    os_name = config.get("os")
    if os_name and not _platform_word(os_name):  # Docker parses it as a platform
        raise FormatError(f"{what}: config field 'os' is {os_name[:60]!r}: a platform component is "
                          "letters, digits, '_' and '-' (Docker refuses it)")
    ids = diff_ids(config, what)
    made = sum(1 for entry in history if not entry.get("empty_layer"))
    if made > len(ids):  # Docker's image store refuses it (and `docker history` would fail)
        raise FormatError(f"{what}: config history has {made} entries that made a layer, but rootfs "
                          f"lists {len(ids)} diff_ids (Docker: too many non-empty layers in History section)")
    return config, ids


def diff_ids(config: dict[str, Any], what: str) -> list[str]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        raise FormatError(f"{what}: config has no rootfs.diff_ids")
    need_list(ids, what, "rootfs.diff_ids", MAX_LAYERS)
    for d in ids:
        validate_digest(d, what)
    return list(ids)
