"""``store check``: re-hash every blob and walk every reference from ``index.json``."""

from __future__ import annotations

from ..digest import copy_verified
from ..errors import AirgapError
from ..oci import IMAGE_CONFIG_TYPES, Descriptor, Index, Manifest, parse_config, parse_manifest
from .layout import Store, entry_name


class CheckReport:
    __slots__ = ("blobs", "bytes", "images", "problems", "unreferenced")

    def __init__(self) -> None:
        self.blobs = 0
        self.bytes = 0
        self.images = 0
        self.problems: list[str] = []
        self.unreferenced: dict[str, int] = {}  # digest -> size: not damage


def check_store(store: Store) -> CheckReport:
    report = CheckReport()
    damaged: set[str] = set()
    for digest in sorted(store.all_blobs()):
        try:
            with store.open_blob(digest) as f:
                _, size = copy_verified(f, None, expected=digest, size=None, what=f"blob {digest}")
            report.bytes += size
        except AirgapError as exc:
            damaged.add(digest)
            report.problems.append(str(exc))
        report.blobs += 1
    try:
        entries = store.entries()
    except AirgapError as exc:
        report.problems.append(str(exc))
        return report
    from .gc import referenced
    keep = referenced(store, strict=False)
    report.unreferenced = {d: store.blob_size(d) for d in store.all_blobs() if d not in keep}
    seen: set[str] = set()
    for e in entries:
        name = entry_name(e)
        label = f"image {name.familiar() if name else e.digest}"
        if e.digest not in seen:
            seen.add(e.digest)
            report.images += 1
            _check_document(store, e.digest, e.size, label, damaged, report, depth=0)
    return report


def _check_document(store: Store, digest: str, size: int, label: str, damaged: set[str],
                    report: CheckReport, depth: int) -> None:
    if not _present(store, digest, size, f"{label}: manifest", damaged, report):
        return
    try:
        doc = parse_manifest(store.read_blob(digest), f"{label}: manifest {digest}")
        if isinstance(doc, Index):
            if depth:
                raise AirgapError(f"{label}: nested index {digest}")
            for child in doc.manifests:
                if store.has_blob(child.digest):  # an index may hold only some platforms
                    _check_document(store, child.digest, child.size, label, damaged, report, 1)
            return
        assert isinstance(doc, Manifest)
        if _present(store, doc.config.digest, doc.config.size, f"{label}: config", damaged, report) \
                and doc.config.media_type in IMAGE_CONFIG_TYPES:  # an artifact's (a signature's) is not one
            parse_config(store.read_blob(doc.config.digest), f"{label}: config {doc.config.digest}")
        image = doc.config.media_type in IMAGE_CONFIG_TYPES
        for layer in doc.layers:
            if _present(store, layer.digest, layer.size, f"{label}: layer", damaged, report) and image:
                _check_head(store, layer, f"{label}: layer {layer.digest}", report)
    except AirgapError as exc:
        report.problems.append(str(exc))


def _check_head(store: Store, layer: Descriptor, what: str, report: CheckReport) -> None:
    """A layer's first bytes against its listing, as a load checks them (a store an older
    airgap filled was not checked so; a load of present images does not read them)."""
    from ..layers import check_layer_file
    try:
        check_layer_file(store.blob_path(layer.digest), layer, what)
    except AirgapError as exc:
        report.problems.append(str(exc))


def _present(store: Store, digest: str, size: int, what: str, damaged: set[str],
             report: CheckReport) -> bool:
    if not store.has_blob(digest):
        report.problems.append(f"{what} {digest} is missing")
        return False
    if digest in damaged:
        return False  # already reported
    if store.blob_size(digest) != size:
        report.problems.append(f"{what} {digest} is {store.blob_size(digest)} bytes, "
                               f"the descriptor says {size}")
        return False
    return True
