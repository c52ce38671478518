"""A registry repository as a Source (pull) and as a Sink (push)."""

from __future__ import annotations

import io
import threading

from ..digest import HashingReader, check_bytes
from ..errors import DigestMismatch
from ..layers import uncompressed_digest
from ..errors import NotFound
from ..oci import (COSIGN_SUFFIXES, INDEX_TYPES, MANIFEST_TYPES, Descriptor, Index, attached, cosign_tag,
                   is_uncompressed_layer, parse_manifest)
from ..reference import Reference
from ..registry.client import RegistryClient, check_manifest_digest
from .base import Outcome, ProgressFn, SourceImage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable

    from ..copy import Plan


class RegistrySource:
    """The image a reference names on a registry; manifests are kept as served."""

    jobs = 3  # blobs fetched at once

    def __init__(self, client: RegistryClient, ref: Reference, with_attached: bool = True) -> None:
        self.client, self.ref = client, ref
        self.repo = ref.path
        self.name = f"{ref.domain}/{ref.path}"
        self._manifests: dict[str, bytes] = {}
        what = ref.familiar()
        data, media_type, header = client.get_manifest(self.repo, ref.digest or ref.tag or "latest", what)
        digest = check_manifest_digest(data, ref.digest, header, what)
        self._manifests[digest] = data
        if not media_type or media_type not in (*MANIFEST_TYPES, *INDEX_TYPES):
            parsed = parse_manifest(data, what)  # refuses schema 1 and unknown types clearly
            media_type = parsed.media_type
        self.top = Descriptor(media_type, digest, len(data))
        names = [ref] if ref.tag and not ref.digest else []
        names.append(Reference(ref.domain, ref.path, None, digest))
        self.image = SourceImage(self.top, names, ref.familiar())
        self.attached = self._attachments(digest, what) if with_attached else []

    def images(self) -> list[SourceImage]:
        return [self.image, *self.attached]

    def _attachments(self, digest: str, what: str) -> list[SourceImage]:
        """Signatures, SBOMs and attestations of ``digest``: cosign's tags
        (``sha256-<hex>.sig``, ``.att``, ``.sbom``) and OCI referrers (the API, else the
        fallback tag ``sha256-<hex>``)."""
        out: list[SourceImage] = []
        for suffix, kind in COSIGN_SUFFIXES.items():
            tag = cosign_tag(digest, suffix)
            try:
                data, media_type, header = self.client.get_manifest(self.repo, tag, f"{what}: {tag}")
            except NotFound:
                continue
            got = check_manifest_digest(data, None, header, f"{what}: {tag}")
            self._manifests[got] = data
            media_type = media_type if media_type in (*MANIFEST_TYPES, *INDEX_TYPES) \
                else parse_manifest(data, f"{what}: {tag}").media_type
            desc = attached(Descriptor(media_type, got, len(data)), digest, kind)
            out.append(SourceImage(desc, [Reference(self.ref.domain, self.ref.path, tag)], f"{kind} of {what}"))
        listed = self.client.referrers(self.repo, digest, f"{what}: referrers")
        if listed is None:
            tag = cosign_tag(digest, "")
            try:
                data, _, header = self.client.get_manifest(self.repo, tag, f"{what}: {tag}")
            except NotFound:
                data = b""
            if data:
                check_manifest_digest(data, None, header, f"{what}: {tag}")
                doc = parse_manifest(data, f"{what}: {tag}")
                listed = list(doc.manifests) if isinstance(doc, Index) else []
        for d in listed or []:
            desc = attached(Descriptor(d.media_type, d.digest, d.size), digest, "referrer")
            out.append(SourceImage(desc, [], f"referrer {d.digest[:19]} of {what}"))
        return out

    def has_blob(self, digest: str) -> bool:
        return True

    def where(self, desc: Descriptor) -> str:
        return f"{self.name}@{desc.digest}"

    def read_document(self, desc: Descriptor, what: str) -> bytes:
        data = self._manifests.get(desc.digest)
        if data is None:
            if desc.media_type in (*MANIFEST_TYPES, *INDEX_TYPES):
                data, _, header = self.client.get_manifest(self.repo, desc.digest, what)
                check_manifest_digest(data, desc.digest, header, what)
            else:
                data = self.client.get_blob_bytes(self.repo, desc, what)
        return check_bytes(data, desc.digest, desc.size, what)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.client.open_blob(self.repo, desc, self.where(desc))

    def check_plan(self, plan: Plan) -> None:
        pass

    def uncompressed(self, desc: Descriptor) -> tuple[str, int]:
        if is_uncompressed_layer(desc.media_type):
            return desc.digest, desc.size
        with self.open_blob(desc) as f:
            return uncompressed_digest(f, desc, self.where(desc))

    def close(self) -> None:
        pass


class PushLedger:
    """What one push run has put where, shared by its sinks (and threads), so that each
    blob is uploaded at most once per run: a blob another repository of this run already
    has is mounted from there; two sinks that need the same new blob wait for one upload."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._where: dict[str, set[str]] = {}          # digest -> repositories that have it
        self._busy: dict[str, threading.Event] = {}    # digest -> an upload under way

    def repos_with(self, digest: str) -> set[str]:
        with self._lock:
            return set(self._where.get(digest, ()))

    def claim(self, digest: str) -> threading.Event | None:
        """None: the caller uploads (and calls ``done``); else an event to wait for."""
        with self._lock:
            event = self._busy.get(digest)
            if event is None:
                self._busy[digest] = threading.Event()
            return event

    def done(self, digest: str, repo: str | None) -> None:
        with self._lock:
            if repo is not None:
                self._where.setdefault(digest, set()).add(repo)
            event = self._busy.pop(digest, None)
        if event is not None:
            event.set()

    def seen(self, digest: str, repo: str) -> None:
        with self._lock:
            self._where.setdefault(digest, set()).add(repo)


class RegistrySink:
    """Pushes to one repository: blobs it lacks (mounted from a sibling repository when
    possible), then child manifests by digest, then the top manifest by tag (or, for an
    image known only by digest, by digest)."""

    jobs = 3

    def __init__(self, client: RegistryClient, dest: Reference, mount_from: list[str],
                 reopen: Callable[[Descriptor], BinaryIO], ledger: PushLedger | None = None) -> None:
        self.client, self.dest, self.reopen = client, dest, reopen
        self.repo = dest.path
        self.ledger = ledger or PushLedger()
        self.mount_from = [r for r in mount_from if r != self.repo]
        self.mounted_from: dict[str, str] = {}  # digest -> the repository it was mounted from
        self._manifests: dict[str, tuple[bytes, str]] = {}
        self._top: list[Descriptor] = []
        self._lock = threading.Lock()
        self.pushed_digest = ""

    def has_blob(self, digest: str) -> bool:
        return False  # asked per blob in put_* instead, so manifests are always (re)written

    def begin(self, plan: Plan) -> None:
        pass

    def _exists(self, desc: Descriptor) -> Outcome | None:
        known = self.ledger.repos_with(desc.digest)
        if self.repo in known:
            return Outcome.PRESENT
        if self.client.has_blob(self.repo, desc.digest, "pull,push"):
            self.ledger.seen(desc.digest, self.repo)
            return Outcome.PRESENT
        for source in [*sorted(known), *self.mount_from]:
            if source == self.repo:
                continue
            location = self.client.mount_blob(self.repo, desc.digest, source)
            if location is None:
                with self._lock:
                    self.mounted_from[desc.digest] = source
                self.ledger.seen(desc.digest, self.repo)
                return Outcome.MOUNTED
        return None

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: ProgressFn | None = None) -> Outcome:
        while (wait := self.ledger.claim(desc.digest)) is not None:
            wait.wait()  # another image of this run is uploading it: then mount or skip
        uploaded = False
        try:
            found = self._exists(desc)
            if found is not None:
                return found

            def opener() -> Any:  # opened again for a retried PUT; checked as it is read
                return HashingReader(self.reopen(desc), desc.digest, desc.size, what, progress)
            self.client.upload_blob(self.repo, desc, opener)
            uploaded = True
            return Outcome.ADDED
        finally:
            self.ledger.done(desc.digest, self.repo if uploaded else None)

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> Outcome:
        if desc.media_type in (*MANIFEST_TYPES, *INDEX_TYPES):
            self._manifests[desc.digest] = (data, desc.media_type)
            return Outcome.ADDED
        return self.put_blob(io.BytesIO(data), desc, what)

    def put_image(self, desc: Descriptor, names: list[Reference]) -> None:
        self._top.append(desc)

    def commit(self) -> None:
        top = {d.digest for d in self._top}
        order = [d for d in self._manifests if d not in top] + [d.digest for d in self._top]
        for digest in order:
            data, media_type = self._manifests[digest]
            ref = (self.dest.tag or self.dest.digest or "latest") if digest in top else digest
            what = f"{self.dest.domain}/{self.repo}:{ref}"
            got = self.client.put_manifest(self.repo, ref, data, media_type, what)
            if got and got != digest:
                raise DigestMismatch(f"{what}: the registry stored the manifest", digest, got)
            if digest in top:
                self.pushed_digest = digest
