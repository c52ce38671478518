"""Images and archives built byte by byte, for tests that need what no honest tool makes."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airgap.digest import sha256_digest
from airgap.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, canonical_json


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data), **extra}


@dataclass
class Image:
    """One image: its blobs (digest -> bytes) and its manifest."""

    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return str(json.loads(self.manifest)["config"]["digest"])


def image(files: dict[str, bytes] | None = None, *, config: dict[str, Any] | None = None,
          diff_ids: list[str] | None = None, layers: list[bytes] | None = None,
          layer_type: str = OCI_LAYER) -> Image:
    """An image of uncompressed layers; ``config`` entries override the generated ones."""
    layers = layers if layers is not None else [layer_tar(files or {"hello.txt": b"hello\n"})]
    cfg: dict[str, Any] = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                           "config": {}, "rootfs": {"type": "layers",
                                                    "diff_ids": diff_ids or [sha256_digest(x) for x in layers]}}
    cfg.update(config or {})
    config_raw = canonical_json(cfg)
    manifest = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": desc(OCI_CONFIG, config_raw),
                               "layers": [desc(layer_type, x) for x in layers]})
    blobs = {sha256_digest(x): x for x in [config_raw, *layers, manifest]}
    return Image(manifest, blobs)


def index_entry(img: Image, name: str | None = None, **extra: Any) -> dict[str, Any]:
    entry = desc(OCI_MANIFEST, img.manifest, **extra)
    if name is not None:
        entry["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name}
    return entry


def oci_archive(path: Path, images: list[Image], entries: list[dict[str, Any]] | None = None,
                extra: dict[str, bytes] | None = None, index: bytes | None = None) -> Path:
    """An OCI archive (as skopeo's oci-archive:) of ``images``, named by ``entries``."""
    blobs: dict[str, bytes] = {}
    for img in images:
        blobs.update(img.blobs)
    if index is None:
        index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                "manifests": entries if entries is not None else [index_entry(i) for i in images]})
    members = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index,
               **{f"blobs/sha256/{d[7:]}": b for d, b in sorted(blobs.items())}, **(extra or {})}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def members_of(path: Path) -> list[tuple[str, bytes]]:
    """The regular files of a tar, in order."""
    with tarfile.open(path) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers() if m.isreg()]  # type: ignore[union-attr]


def resign(members: list[tuple[str, bytes]], bundle: dict[str, Any], key_file: Path) -> list[tuple[str, bytes]]:
    """Replace a bundle's bundle.json (with its top files re-pinned) and sign it again."""
    from airgap.signing import load_private_key, sign
    files = dict(members)
    for name in list(bundle.get("files", {})):
        data = files[name]
        bundle["files"][name] = {"digest": sha256_digest(data), "size": len(data)}
    raw = json.dumps(bundle, indent=1, sort_keys=True).encode() + b"\n"
    sig = sign(raw, load_private_key(key_file))
    out = [(n, raw if n == "airgap/bundle.json" else sig if n == "airgap/bundle.json.sig" else d)
           for n, d in members]
    return out


def archive_with_field(path: Path, where: str, field: str, value: Any) -> Path:
    """An OCI archive of one image (``example/typed:1``) with ``field`` set to ``value`` in
    its manifest, its layer's descriptor, its index.json entry, or index.json itself."""
    img = image({"a": b"a"})
    if where in ("manifest", "layer"):
        doc = json.loads(img.manifest)
        (doc if where == "manifest" else doc["layers"][0])[field] = value
        img.manifest = canonical_json(doc)
        img.blobs[sha256_digest(img.manifest)] = img.manifest
    entry = index_entry(img, "docker.io/example/typed:1")
    index = None
    if where == "entry":
        entry[field] = value
    elif where == "index.json":
        index = canonical_json({field: value, "mediaType": OCI_INDEX, "manifests": [entry]})
    return oci_archive(path, [img], [entry], index=index)


EMPTY_CONFIG = b"{}"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def referrer(subject: bytes, note: str, artifact_type: str = "application/vnd.dev.cosign.artifact.sig.v1+json") -> Image:
    """An OCI 1.1 artifact manifest attached to the manifest ``subject`` (as cosign and oras
    write them into a layout), with its blobs."""
    empty = desc(OCI_EMPTY, EMPTY_CONFIG)
    manifest = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                               "config": empty, "layers": [empty], "subject": desc(OCI_MANIFEST, subject),
                               "annotations": {"note": note}})
    return Image(manifest, {sha256_digest(EMPTY_CONFIG): EMPTY_CONFIG, sha256_digest(manifest): manifest})
