"""Reference counting and removal: names first, then blobs that nothing references."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..errors import AirgapError, Conflict, StoreCorrupt
from ..oci import Descriptor, Index, Manifest, parse_manifest, subject_of
from ..reference import Reference
from ..compress import METHODS
from .layout import CACHED_BLOBS, Store, entry_name
from .query import ImageInfo, all_images, find_image


def reachable(store: Store, roots: Iterable[str], strict: bool = True) -> set[str]:
    """Every blob digest reachable from the given manifest or index digests.

    ``strict`` (what garbage collection uses) fails closed: a root whose manifest is
    missing, or any manifest or index that cannot be read, parsed or re-hashed, raises
    StoreCorrupt naming it, since what it references is then unknown. (A platform an
    index lists but the store never took is normal and skipped.) Listings pass
    ``strict=False`` and skip what they cannot read.
    """
    seen: set[str] = set()
    stack = [(d, True) for d in roots]
    while stack:
        digest, is_root = stack.pop()
        if digest in seen:
            continue
        seen.add(digest)
        if not store.has_blob(digest):
            if strict and is_root:
                raise StoreCorrupt(f"manifest {digest} of a stored image is missing; nothing was "
                                   "removed (run `airgap store check`)")
            continue
        try:
            doc = parse_manifest(store.read_blob(digest), f"manifest {digest}")
        except (AirgapError, OSError) as exc:
            if strict:
                raise StoreCorrupt(f"cannot read manifest {digest} ({exc}); nothing was removed: "
                                   "what it references is unknown (run `airgap store check`, then "
                                   "`airgap load --repair` from its bundle or `airgap rmi` it)") from None
            continue
        if isinstance(doc, Index):
            stack.extend((d.digest, False) for d in doc.manifests)
        elif isinstance(doc, Manifest):
            seen.update(d.digest for d in doc.blobs)
    return seen


def referenced(store: Store, strict: bool = True) -> set[str]:
    return reachable(store, (e.digest for e in store.entries()), strict)


def collect_garbage(store: Store) -> tuple[list[str], int]:
    """Delete every blob no index entry reaches. Call with the lock held. Raises (and
    deletes nothing) when any reference cannot be followed."""
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


def temp_files(store: Store) -> list[tuple[str, int]]:
    """What ``system prune`` removes besides images: temp files of interrupted writers,
    verified blobs kept for resuming a load, and compressed layers kept for ``save``."""
    out = []
    cache = store.root / ".cache"
    for d in (store.tmp, store.resume, cache / CACHED_BLOBS, *(cache / f"compressed-{m}" for m in METHODS)):
        try:
            entries = list(os.scandir(d))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                out.append((entry.path, entry.stat(follow_symlinks=False).st_size))
            except OSError:
                continue
    return out


def clean_temp(store: Store) -> int:
    """Remove leftovers of interrupted writers. Call with the lock held."""
    freed = 0
    for path, size in temp_files(store):
        try:
            os.unlink(path)
        except OSError:
            continue
        freed += size
    return freed


def without_orphaned_attachments(store: Store, entries: list[Descriptor]) -> list[Descriptor]:
    """``entries`` less what is attached to an image no longer there (its signatures and
    SBOMs go with it; what is attached to those, too)."""
    keep = [e for e in entries if subject_of(e) is None]
    alive = reachable(store, (e.digest for e in keep), strict=False)
    for e in keep:  # a RepoDigest names the index a single-platform image came from
        name = entry_name(e)
        if name is not None and name.digest:
            alive.add(name.digest)
    by_subject: dict[str, list[Descriptor]] = {}
    for e in entries:
        subject = subject_of(e)
        if subject is not None:
            by_subject.setdefault(subject, []).append(e)
    kept: set[int] = set()  # the entries kept, by identity (a chain of them: one pass)
    level = [d for d in by_subject if d in alive]
    while level:
        found = [e for d in level for e in by_subject.pop(d, ())]
        kept.update(id(e) for e in found)
        level = [e.digest for e in found if e.digest in by_subject]
    return [e for e in entries if subject_of(e) is None or id(e) in kept]


def deleted_ids(info: ImageInfo, others: list[ImageInfo]) -> list[str]:
    """What Docker reports deleted with an image: its ID, then each layer chain (top
    first) that no remaining image uses."""
    if any(o.id == info.id for o in others):
        return []  # another manifest of the same image keeps it
    used: set[str] = set()
    for o in others:
        try:
            used.update(o.chain_ids)
        except AirgapError:
            continue
    out = [info.id]
    for cid in reversed(info.chain_ids):
        if cid in used:
            break
        out.append(cid)
    return out


def _single_reference(refs: list[Reference]) -> bool:
    """Docker's isSingleReference: at most one tag, and every name in one repository."""
    tags = [r for r in refs if not r.digest]
    return bool(refs) and len(tags) <= 1 and len({r.name for r in refs}) == 1


def remove(store: Store, text: str, force: bool) -> list[tuple[str, str]]:
    """``rmi``, with Docker's rules. Call with the lock held.

    By name: untag it (and the repository's digest references when it was the last tag
    there); the image goes when nothing names it. By ID: an image with one tag, or only
    names in one repository, loses them and goes; otherwise only with ``force``.
    Returns the events ``("Untagged", name)`` and ``("Deleted", id)``.
    """
    infos = all_images(store)
    info, ref = find_image(store, text, infos)
    refs = sorted(info.names, key=str)
    if ref is not None and ref in refs:
        untag = [ref]
        if not ref.digest and not any(r.name == ref.name and not r.digest and r != ref for r in refs):
            untag += [r for r in refs if r.digest and r.name == ref.name]
    elif not refs or _single_reference(refs) or force:
        untag = refs
    else:
        raise Conflict(f"conflict: unable to delete {info.id[7:19]} (must be forced) - "
                       "image is referenced in multiple repositories")
    events = [("Untagged", n.familiar()) for n in untag]
    keep = [e for e in store.entries() if not (e.digest == info.digest and entry_name(e) in untag)]
    if not any(e.digest == info.digest and entry_name(e) is not None for e in keep):
        keep = [e for e in keep if e.digest != info.digest]
        events += [("Deleted", i) for i in deleted_ids(info, [o for o in infos if o.digest != info.digest])]
    store.write_entries(without_orphaned_attachments(store, keep))
    return events


def prune_images(store: Store, untagged: bool) -> tuple[list[tuple[str, str]], int]:
    """Remove dangling images (no name), or with ``untagged`` every image without a tag,
    then the blobs nothing references. Call with the lock held."""
    infos = all_images(store)
    doomed = [i for i in infos if (not i.tags if untagged else not i.names)]
    events: list[tuple[str, str]] = []
    gone = {i.digest for i in doomed}
    remaining = [i for i in infos if i.digest not in gone]
    for info in doomed:
        events += [("untagged", n.familiar()) for n in info.digest_refs]
        events += [("deleted", i) for i in deleted_ids(info, remaining)]
    if doomed:
        store.write_entries(without_orphaned_attachments(
            store, [e for e in store.entries() if e.digest not in gone]))
    _, freed = collect_garbage(store)
    return events, freed
