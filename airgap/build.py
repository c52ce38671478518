"""``airgap import``: an image from a tarball or a directory, optionally on a stored base."""

from __future__ import annotations

import os
import stat
import tarfile
import time
from datetime import datetime, UTC
from pathlib import Path

from .digest import CHUNK, HashingWriter, sha256_digest
from .errors import AirgapError, FormatError, NotFound
from .oci import (DOCKER_MAX_LAYERS, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, Platform, canonical_json,
                  host_platform)
from .reference import Reference
from .store.layout import Store, Transaction
from .store.query import ImageInfo
from .timeutil import format_rfc3339, source_date_epoch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


STDIN = "-"  # ``airgap import - REF``, as ``docker import -``
MAX_PADDING = 1 << 20  # zeros after a tar's end: GNU tar and bsdtar fill a 10 KiB record


def _reset_owner(ti: tarfile.TarInfo) -> tarfile.TarInfo:
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def _write_layer(src: Path, out: HashingWriter) -> None:
    if src.is_dir():
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
            # depth first, each directory's entries by name (tarfile.add's own order), with a
            # stack of our own: tarfile.add recurses, and a tree 1,000 deep ended in RecursionError
            stack = [(entry, entry.name) for entry in sorted(src.iterdir(), reverse=True)]
            while stack:
                path, arcname = stack.pop()
                tf.add(path, arcname=arcname, recursive=False, filter=_reset_owner)
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    stack += [(path / name, f"{arcname}/{name}") for name in sorted(os.listdir(path), reverse=True)]
        return
    from .archive.input import Tee, open_input  # "-", FIFOs, and gzip/bzip2/xz/zstd, as load reads them
    from .archive.tar import TarStream
    inp = open_input(str(src), None)
    with inp.f as stream:
        # the whole tar, its headers checked on the way: a cut or damaged one is refused here,
        # not found by the `docker load` at the far end of the trip
        walk = TarStream(Tee(stream, out), inp.name, layer=True)  # type: ignore[arg-type]
        while walk.next() is not None:
            pass
        # then the zeros tar writes to fill its last record (10 KiB), hashed with the rest as
        # Docker hashes them; anything else after the end, or zeros without end, is refused
        padding = 0
        while chunk := stream.read(CHUNK):
            if chunk.count(0) != len(chunk):
                raise FormatError(f"{inp.name}: data after the end of the tar archive")
            padding += len(chunk)
            if padding > MAX_PADDING:
                raise FormatError(f"{inp.name}: more than {MAX_PADDING >> 20} MiB of zeros after the end "
                                  "of the tar archive")
            out.write(chunk)


def _now() -> str:
    epoch = source_date_epoch()
    return format_rfc3339(datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC))


def import_image(store: Store, txn: Transaction, src: Path, ref: Reference | None,
                 base: ImageInfo | None, labels: dict[str, str], message: str = "",
                 platform: Platform | None = None) -> str:
    """Stage the layer, config and manifest of a new image; return its manifest digest."""
    if str(src) != STDIN and not src.exists():
        raise NotFound(f"{src}: no such file or directory")
    if base is not None and len(base.manifest.layers) >= DOCKER_MAX_LAYERS:  # as docker commit says it
        raise AirgapError(f"max depth exceeded: the base image has {len(base.manifest.layers)} layers, and "
                          f"Docker loads no image of more than {DOCKER_MAX_LAYERS}")
    staged = store.new_staged()
    try:
        hf = HashingWriter(staged)
        _write_layer(src, hf)
        path = staged.finish(hf.digest, hf.size)
    finally:
        staged.discard()
    txn.stage(path, hf.digest)
    layer = {"mediaType": OCI_LAYER, "digest": hf.digest, "size": hf.size}
    config = _config(base, hf.digest, labels, message, src, platform)
    config_raw = canonical_json(config)
    config_desc = Descriptor(OCI_CONFIG, sha256_digest(config_raw), len(config_raw))
    txn.put_bytes(config_raw, config_desc, "image config")
    layers = [d.to_json() for d in base.manifest.layers] if base else []
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_desc.digest,
                           "size": config_desc.size},
                "layers": [*layers, layer]}
    raw = canonical_json(manifest)
    desc = Descriptor(OCI_MANIFEST, sha256_digest(raw), len(raw))
    txn.put_bytes(raw, desc, "image manifest")
    txn.add_name(desc, ref)
    return config_desc.digest


def _config(base: ImageInfo | None, diff_id: str, labels: dict[str, str], message: str,
            src: Path, platform: Platform | None) -> dict[str, Any]:
    now = _now()
    if base is not None:
        cfg = dict(base.config)
        inner = dict(cfg.get("config") or {})
        ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        history = list(cfg.get("history") or [])
    else:
        cfg, inner, ids, history = {}, {}, [], []
    if base is None or platform is not None:
        plat = platform or host_platform()
        cfg.update({"architecture": plat.architecture, "os": plat.os})
        cfg.pop("variant", None)
        if plat.variant:
            cfg["variant"] = plat.variant
    if labels:
        inner["Labels"] = {**(inner.get("Labels") or {}), **labels}
    cfg["config"] = inner
    cfg["created"] = now
    cfg["rootfs"] = {"type": "layers", "diff_ids": [*ids, diff_id]}
    entry = {"created": now, "created_by": f"airgap import {src.name}"}
    if message:
        entry["comment"] = message
    cfg["history"] = [*history, entry]
    if not isinstance(cfg.get("architecture"), str):
        raise AirgapError("base image config has no architecture")
    return cfg
