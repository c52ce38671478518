"""Reference counting and removal: names first, then blobs that nothing references."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..errors import AirgapError
from ..oci import Index, Manifest, parse_manifest
from .layout import Store


def reachable(store: Store, roots: Iterable[str]) -> set[str]:
    """Every blob digest reachable from the given manifest or index digests."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in seen:
            continue
        seen.add(digest)
        if not store.has_blob(digest):
            continue
        try:
            doc = parse_manifest(store.read_blob(digest), f"manifest {digest}")
        except AirgapError:
            continue  # a damaged document keeps what it names unknown; store check reports it
        if isinstance(doc, Index):
            stack.extend(d.digest for d in doc.manifests)
        elif isinstance(doc, Manifest):
            seen.update(d.digest for d in doc.blobs)
    return seen


def referenced(store: Store) -> set[str]:
    return reachable(store, (e.digest for e in store.entries()))


def collect_garbage(store: Store) -> tuple[list[str], int]:
    """Delete every blob no index entry reaches. Call with the lock held."""
    keep = referenced(store)
    removed, freed = [], 0
    for digest in store.all_blobs():
        if digest in keep:
            continue
        path = store.blob_path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(digest)
        freed += size
    return removed, freed


def clean_temp(store: Store) -> int:
    """Remove leftovers of interrupted writers. Call with the lock held."""
    freed = 0
    for entry in os.scandir(store.tmp):
        try:
            freed += entry.stat().st_size
            os.unlink(entry.path)
        except OSError:
            continue
    return freed
