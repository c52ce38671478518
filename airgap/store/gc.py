"""Reference counting and removal: names first, then blobs that nothing references."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

from ..errors import AirgapError, Conflict, StoreCorrupt
from ..oci import Descriptor, Index, Manifest, parse_manifest, subject_of
from ..reference import Reference
from ..compress import METHODS
from .layout import CACHED_BLOBS, Store, entry_name
from .query import ImageInfo, all_images, by_name, find_image


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


def without_orphaned_attachments(store: Store, entries: list[Descriptor], strict: bool = False) -> list[Descriptor]:
    """``entries`` less what is attached to an image no longer there (its signatures and
    SBOMs go with it; what is attached to those, too), or never there (an archive that
    carried a signature without its image). With ``strict``, a manifest or index that
    cannot be read raises (``reachable``): what is attached to it would look orphaned."""
    keep = [e for e in entries if subject_of(e) is None]
    alive = reachable(store, (e.digest for e in keep), strict=strict)
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


class LayerUse:
    """How many images have each image ID and use each layer chain: what Docker reports
    deleted with an image (its ID, then each layer chain, top first, that no other image
    uses), counted once for many removals instead of over every image at each one."""

    def __init__(self, infos: Iterable[ImageInfo]) -> None:
        self.ids: Counter[str] = Counter()
        self.chains: Counter[str] = Counter()
        for info in infos:
            self.ids[info.id] += 1
            self.chains.update(_chains_of(info))

    def release(self, info: ImageInfo) -> None:
        """``info`` (counted here) is gone."""
        self.ids[info.id] -= 1
        self.chains.subtract(_chains_of(info))

    def deleted(self, info: ImageInfo) -> list[str]:
        """What goes with ``info``, which these counts do not hold."""
        if self.ids[info.id] > 0:
            return []  # another manifest of the same image keeps it
        out = [info.id]
        for cid in reversed(_chains_of(info)):
            if self.chains[cid] > 0:
                break
            out.append(cid)
        return out


def _chains_of(info: ImageInfo) -> list[str]:
    try:
        return info.chain_ids
    except AirgapError:
        return []


def _single_reference(refs: list[Reference]) -> bool:
    """Docker's isSingleReference: at most one tag, and every name in one repository."""
    tags = [r for r in refs if not r.digest]
    return bool(refs) and len(tags) <= 1 and len({r.name for r in refs}) == 1


class Removal:
    """``rmi``: each image removed in turn, with Docker's rules, over one reading of the
    index, which is written once at the end (``write``). Use with the lock held. (Reading
    and writing the whole index for each name took `rmi` of 2,000 names of a 20,000-name
    store over ten minutes; each removal here costs about the same whatever the store.)"""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.entries = store.entries()
        self.infos = all_images(store, self.entries)  # those not removed yet
        self.by_name = by_name(self.infos)
        self.tags: Counter[tuple[str, str]] = Counter()  # (image, repository) -> its tags there
        self.pinned: dict[tuple[str, str], list[Reference]] = {}  # -> its digest references there
        for info in self.infos:
            for n in info.names:
                if n.digest:
                    self.pinned.setdefault((info.digest, n.name), []).append(n)
                else:
                    self.tags[(info.digest, n.name)] += 1
        self.gone: set[str] = set()  # digests of the images removed
        self.untagged: set[tuple[str, Reference]] = set()
        self._use: LayerUse | None = None

    def remove(self, text: str, force: bool) -> list[tuple[str, str]]:
        """By name: untag it (and the repository's digest references when it was the last
        tag there); the image goes when nothing names it. By ID: an image with one tag, or
        only names in one repository, loses them and goes; otherwise only with ``force``.
        Returns the events ``("Untagged", name)`` and ``("Deleted", id)``."""
        info, ref = find_image(self.store, text, self.infos, self.by_name)
        if ref is not None and self.by_name.get(ref) is info:
            untag = [ref]
            if not ref.digest and self.tags[(info.digest, ref.name)] == 1:
                untag += sorted(self.pinned.get((info.digest, ref.name), ()), key=str)
        elif not info.names or _single_reference(info.names) or force:
            untag = sorted(info.names, key=str)
        else:
            raise Conflict(f"conflict: unable to delete {info.id[7:19]} (must be forced) - "
                           "image is referenced in multiple repositories")
        events = [("Untagged", n.familiar()) for n in untag]
        deleted: list[str] = []
        if len(untag) == len(info.names):  # nothing names it any more: it goes
            if self._use is None:
                self._use = LayerUse(self.infos)
            self._use.release(info)
            deleted = self._use.deleted(info)
            self.gone.add(info.digest)
            self.infos.remove(info)
        for n in untag:
            self.untagged.add((info.digest, n))
            if self.by_name.get(n) is info:
                del self.by_name[n]
            info.names.remove(n)
            if n.digest:
                self.pinned[(info.digest, n.name)].remove(n)
            else:
                self.tags[(info.digest, n.name)] -= 1
        return events + [("Deleted", i) for i in deleted]

    def write(self) -> None:
        """Write the index as the removals left it (unchanged if there were none)."""
        if not self.gone and not self.untagged:
            return
        touched = {d for d, _ in self.untagged}
        keep = [e for e in self.entries if e.digest not in self.gone
                and not (e.digest in touched and (e.digest, entry_name(e)) in self.untagged)]
        self.store.write_entries(without_orphaned_attachments(self.store, keep))


def prune_images(store: Store, untagged: bool) -> tuple[list[tuple[str, str]], int]:
    """Remove dangling images (no name), or with ``untagged`` every image without a tag,
    and the attachments whose subject is not stored (that went with them, or never came);
    then the blobs nothing references. Call with the lock held. Nothing is removed when a
    stored manifest or index cannot be read (what it references is then unknown)."""
    infos = all_images(store)
    doomed = [i for i in infos if (not i.tags if untagged else not i.names)]
    events: list[tuple[str, str]] = []
    gone = {i.digest for i in doomed}
    use = LayerUse(i for i in infos if i.digest not in gone)
    for info in doomed:
        events += [("untagged", n.familiar()) for n in info.digest_refs]
        events += [("deleted", i) for i in use.deleted(info)]
    entries = store.entries()
    remaining = [e for e in entries if e.digest not in gone]
    kept = without_orphaned_attachments(store, remaining, strict=True)
    orphans = {e.digest for e in remaining} - {e.digest for e in kept}
    events += [("deleted", d) for d in sorted(orphans)]
    if len(kept) != len(entries):
        store.write_entries(kept)
    _, freed = collect_garbage(store)
    return events, freed
