"""An airgap bundle read once from a pipe, without spooling the whole stream first.

``airgap/bundle.json`` and its signature come first in a bundle, so the loader can check
them before it reads a blob; each blob is then hashed into the store's temp area as it
streams by (or drained, when the store has it), checked against ``bundle.json``, and
later published by rename, not copied again. Other archives on a pipe are spooled
(``archive/input.py``), because their index comes last.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..archive.input import Prefixed, read_head
from ..archive.split import JoinedFile
from ..archive.tar import Header, TarStream
from ..bundle import MAX_BUNDLE_JSON, Bundle
from ..digest import STREAM_BUFFER, check_bytes, copy_verified
from ..errors import AirgapError, FormatError
from ..oci import MAX_DOCUMENT, Descriptor
from ..space import check_space, disk_full
from ..store.layout import Store
from .archive import (BUNDLE_JSON, BUNDLE_SIG, blob_member, bundle_expected_present, bundle_source_images,
                      bundle_uncompressed, check_bundle_plan)
from .base import SourceImage, StagedBlob

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Callable

    from ..copy import Plan

MAX_SIGNATURE = 1 << 20
_PEEK = 1536  # three tar blocks: the "airgap/" directory header and bundle.json's header


def peek_bundle(stream: BinaryIO) -> tuple[bool, BinaryIO]:
    """Whether a stream carries an airgap bundle, and the stream with nothing lost."""
    head = read_head(stream, _PEEK)
    if stream.seekable():  # split volumes: kept seekable, so blobs the store has are skipped
        stream.seek(0)
    names = [head[i:i + 100].split(b"\0", 1)[0] for i in (0, 512)]
    is_bundle = any(n in (b"airgap/", b"airgap", BUNDLE_JSON.encode()) for n in names)
    if stream.seekable():
        return is_bundle, stream
    return is_bundle, io.BufferedReader(Prefixed(head, stream), STREAM_BUFFER)


def read_bundle_head(f: BinaryIO, name: str) -> tuple[bytes | None, bytes | None]:
    """``bundle.json`` and its signature when they open the archive on a seekable file:
    what the trust policy needs, read before the rest of the archive is looked at."""
    end = f.seek(0, os.SEEK_END)
    f.seek(0)
    tar = TarStream(f, name, seekable=True, end=end)
    found: list[bytes | None] = []
    try:
        for member, limit in ((BUNDLE_JSON, MAX_BUNDLE_JSON), (BUNDLE_SIG, MAX_SIGNATURE)):
            m = tar.next()
            while m is not None and m.isdir():
                m = tar.next()
            if m is None or not m.isreg() or m.name != member or m.size > limit:
                break
            found.append(tar.data().read())
    finally:
        f.seek(0)
    found += [None, None]
    return found[0], found[1] if found[0] is not None else None


class StreamedBundle:
    """The Source for a bundle on a pipe. ``receive()`` reads the stream, after the trust
    check; then the engine plans and publishes as for any source."""

    jobs = 0

    def __init__(self, stream: BinaryIO, name: str, store: Store,
                 present: Callable[[str], bool] | None = None, volumes: JoinedFile | None = None) -> None:
        self.name, self.store, self.stream = name, store, stream
        self.present = present or store.has_blob  # a repairing load re-checks stored blobs
        self.volumes = volumes  # split parts: a blob the store has is seeked past, not read
        if volumes is not None:
            volumes.lazy()  # every blob is checked by its digest; parts only to name damage
        self._since = 0  # where the member being read began (to name a damaged part)
        self._pending_since = 0
        skip = volumes is not None and stream.seekable()
        self.size = volumes.size if skip and volumes else None  # of the tar itself, when known
        self.tar = TarStream(stream, name, seekable=skip, end=self.size)
        self._staged: dict[str, Path] = {}
        self._files: dict[str, bytes] = {}
        self._pending: Header | None = None
        self.bundle: Bundle | None = None
        self.notes: list[str] = []
        self.resumed: dict[str, int] = {}  # blobs an interrupted load had verified already
        self.bundle_raw = self._read_first(BUNDLE_JSON, MAX_BUNDLE_JSON)
        self.signature_raw = self._read_first(BUNDLE_SIG, MAX_SIGNATURE, optional=True)
        self._images: list[SourceImage] | None = None

    # -- reading the stream ------------------------------------------------------
    def _next(self) -> Header | None:
        """The next member that is not a directory; ``_since`` is where its header began."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._since = self._pending_since
            return pending
        while True:
            self._since = self.tar.consumed
            m = self.tar.next()
            if m is None or not m.isdir():
                return m

    def _data(self, m: Header, limit: int) -> bytes:
        if m.size > limit:
            raise FormatError(f"{self.name}: member {m.name} is {m.size} bytes, more than {limit}")
        data = self.tar.data().read() if m.size else b""
        if len(data) != m.size:
            raise FormatError(f"{self.name}: truncated: member {m.name}")
        return data

    def _read_first(self, member: str, limit: int, optional: bool = False) -> bytes | None:
        m = self._next()
        if m is not None and m.name == member and m.isreg():
            return self._data(m, limit)
        if not optional:
            raise FormatError(f"{self.name}: not an airgap bundle: it does not start with {member}")
        self._pending, self._pending_since = m, self._since
        return None

    def receive(self) -> None:
        """Read the rest of the stream against bundle.json: stage what the store lacks."""
        self.bundle = bundle = Bundle.from_bytes(self.bundle_raw or b"", f"{self.name}: {BUNDLE_JSON}")
        listed = {blob_member(b.digest): b for b in bundle.blobs}
        claimed = sum(b.size for b in bundle.blobs)
        if self.size is not None and claimed > self.size:  # parts on disk bound what they hold
            raise FormatError(f"{self.name}: {BUNDLE_JSON} lists {claimed} bytes of blobs, more than "
                              f"the {self.size} bytes of its parts: a size it lists is false")
        check_space(self.store.root, sum(b.size for b in bundle.blobs if not self.present(b.digest)),
                    f"load {self.name}")
        seen: set[str] = {BUNDLE_JSON, BUNDLE_SIG}
        try:
            while (m := self._next()) is not None:
                name = m.name  # clean, and given once (TarStream)
                seen.add(name)
                if not m.isreg():
                    raise FormatError(f"{self.name}: member {name} is not a regular file; bundles hold only files")
                if name in bundle.files:
                    data = self._data(m, MAX_DOCUMENT)
                    digest, size = bundle.files[name]
                    self._files[name] = check_bytes(data, digest, size, f"{self.name}: member {name}")
                    continue
                blob = listed.get(name)
                if blob is None:
                    raise FormatError(f"{self.name}: member {name} is not listed in {BUNDLE_JSON}")
                if m.size != blob.size:
                    raise FormatError(f"{self.name}: member {name} is {m.size} bytes, {BUNDLE_JSON} says {blob.size}")
                if self.present(blob.digest):
                    continue  # the next header is read past it
                kept = self.store.resumable(blob.digest, blob.size)
                if kept is not None:  # verified by an interrupted load: read past, not again
                    self._staged[blob.digest] = kept
                    self.resumed[blob.digest] = blob.size
                    continue
                self._stage(m, name, blob.digest, blob.size)
        except AirgapError as exc:
            damaged = self._damaged_part()
            self.close()
            if damaged is not None:  # the part is the cause: say which
                raise damaged from exc
            raise
        except BaseException:
            self.close()
            raise
        missing = [n for n in [*listed, *bundle.files] if n not in seen]
        if missing:
            self.close()
            raise FormatError(f"{self.name}: truncated or incomplete: member {missing[0]} is missing "
                              f"({len(missing)} listed in {BUNDLE_JSON} never came)")
        if not bundle.images:
            raise FormatError(f"{self.name}: {BUNDLE_JSON} lists no images")

    def _damaged_part(self) -> FormatError | None:
        try:
            return self.volumes.damaged_part(self._since) if self.volumes is not None else None
        except OSError:
            return None  # the stick is gone: the error met first says enough

    def _stage(self, m: Header, name: str, digest: str, size: int) -> None:
        staged = self.store.new_staged()
        try:
            with disk_full(self.store.root, size):
                copy_verified(self.tar.data(), staged, expected=digest, size=size,
                              what=f"{self.name}: member {name}")
                self._staged[digest] = staged.finish(digest, size)
        finally:
            staged.discard()

    # -- Source ----------------------------------------------------------------
    def images(self) -> list[SourceImage]:
        assert self.bundle is not None, "receive() first"
        return bundle_source_images(self.bundle)

    def has_blob(self, digest: str) -> bool:
        return digest in self._staged or self.present(digest)

    def has_staged(self, digest: str) -> bool:
        return digest in self._staged

    def where(self, desc: Descriptor) -> str:
        return f"{self.name}: member {blob_member(desc.digest)}"

    def read_document(self, desc: Descriptor, what: str) -> bytes:
        path = self._staged.get(desc.digest)
        if path is None:
            if not self.store.has_blob(desc.digest):
                raise FormatError(f"{what}: the bundle has no member {blob_member(desc.digest)}")
            return self.store.read_blob(desc.digest)
        return check_bytes(path.read_bytes(), desc.digest, desc.size, what)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        path = self._staged.get(desc.digest)
        if path is None:
            return self.store.open_blob(desc.digest)
        f = StagedBlob(path, "rb")
        f.staged_path = path
        return f

    def check_plan(self, plan: Plan) -> None:
        assert self.bundle is not None
        check_bundle_plan(self.bundle, self.name, plan)

    def expected_present(self, plan: Plan) -> list[Descriptor]:
        return bundle_expected_present(self.bundle, plan)

    def uncompressed(self, desc: Descriptor) -> tuple[str, int]:
        return bundle_uncompressed(self, self.bundle, desc)

    def close(self) -> None:
        """What no sink took over stays in the resume area, verified, for the next load
        (a sink that took it has renamed it away)."""
        self._staged.clear()
        self.stream.close()

