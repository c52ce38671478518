"""The Source and Sink contracts that every transport implements.

The copy engine (``copy.py``) drives them in a fixed order, as containers/image's
``ImageDestination`` is driven:

1. ``Source.images()`` names what to copy; ``plan()`` reads every manifest, index and
   config with ``Source.read_document`` (checked against its descriptor), then calls
   ``Source.check_plan(plan)``.
2. ``Sink.begin(plan)`` once, before any blob: a sink that writes a tar writes its
   leading files there.
3. For each blob: ``Sink.has_blob(digest)`` first (a blob the sink has is never read),
   then ``Sink.put_bytes`` (documents, already in memory) or ``Sink.put_blob(stream,…)``
   with a stream from ``Source.open_blob``. The engine opens the stream and closes it
   after ``put_blob`` returns or raises; ``put_blob`` reads it to its end, verifying
   every byte against the descriptor. Documents come first, in digest order; then the
   other blobs, several at once when both ends' ``jobs`` allow (0: no preference, 1: in
   order, N: up to N at once), so ``put_blob`` may run on several threads.
4. ``Sink.put_image(descriptor, names)`` for each top-level image, after all its blobs.
5. ``Sink.commit()``: nothing a sink receives is visible before it. A sink whose
   ``commit`` was not called (an error, an interrupt) leaves nothing behind: the
   store's ``Transaction`` aborts, a bundle's temp file is removed.

``put_blob``/``put_bytes`` return what happened (``Outcome``), which the engine records
in ``CopyResult.outcomes``.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Callable
from pathlib import Path

from ..oci import Descriptor
from ..reference import Reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Protocol

    from ..bundle import Bundle
    from ..copy import Plan

ProgressFn = Callable[[int], None]


class Outcome(enum.Enum):
    """What a sink did with a blob."""

    ADDED = "added"        # received and verified (uploaded, staged, written)
    PRESENT = "present"    # the sink already had it
    MOUNTED = "mounted"    # a registry linked it from another repository


class Platforms(enum.Enum):
    """Which manifests of a multi-platform image to take."""

    AUTO = "auto"  # the whole index when the source has every platform, else the host's
    HOST = "host"  # one platform: --platform, else the host's
    ALL = "all"    # the whole index, every platform


class StagedBlob(io.FileIO):
    """A verified blob already in a store's resume area: a sink in that store takes it
    over by rename instead of copying it (``staged_path``)."""

    staged_path: Path


class SourceImage:
    """A top-level manifest or index a source offers, and the names to give it."""

    __slots__ = ("descriptor", "names", "label")

    def __init__(self, descriptor: Descriptor, names: list[Reference] | None = None, label: str = "") -> None:
        self.descriptor = descriptor
        self.names: list[Reference] = [] if names is None else names
        self.label = label  # how errors name the image when it has no name

    def display(self) -> str:
        if self.names:
            return ", ".join(n.familiar() for n in self.names)
        return self.label or self.descriptor.digest


if TYPE_CHECKING:  # the contracts exist for the type checker only (typing is not imported at run time)
    class Source(Protocol):
        name: str
        jobs: int  # blobs it can give at once: 0 no preference, 1 in order, N up to N

        def images(self) -> list[SourceImage]: ...

        def has_blob(self, digest: str) -> bool: ...

        def read_document(self, desc: Descriptor, what: str) -> bytes:
            """A manifest, index or config whole, checked against ``desc``."""
            ...

        def open_blob(self, desc: Descriptor) -> BinaryIO: ...

        def check_plan(self, plan: Plan) -> None:
            """Source-specific checks of a finished plan (a bundle: everything is listed)."""
            ...

        def uncompressed(self, desc: Descriptor) -> tuple[str, int]:
            """A layer's diff_id and tar size: the digest and size of its bytes decompressed."""
            ...

        def where(self, desc: Descriptor) -> str:
            """Where a blob comes from, for error messages (an archive member, a URL...)."""
            ...

        def close(self) -> None: ...


    class BundleSource(Source, Protocol):
        """An archive that may be an airgap bundle (file or stream): what ``load`` and
        ``verify`` need besides a Source."""

        bundle_raw: bytes | None      # airgap/bundle.json as read, None for other archives
        signature_raw: bytes | None   # airgap/bundle.json.sig
        bundle: Bundle | None         # parsed, once ``images()`` or ``receive()`` ran
        notes: list[str]              # what was ignored, for the user (an invalid name)
        resumed: dict[str, int]       # blobs reused from an interrupted load (digest -> size)

        def receive(self) -> None:
            """Read what the source must read before planning (a stream: all of it); after
            the trust check. A source on a file has nothing to do here."""
            ...

        def expected_present(self, plan: Plan) -> list[Descriptor]:
            """The blobs a delta bundle leaves out, which the target must already have."""
            ...

        def has_staged(self, digest: str) -> bool:
            """Whether the blob is already on the target's disk (staged while streaming)."""
            ...


    class Sink(Protocol):
        jobs: int  # blobs it accepts at once: 0 no preference, 1 in order, N up to N

        def has_blob(self, digest: str) -> bool: ...

        def begin(self, plan: Plan) -> None: ...

        def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                     progress: ProgressFn | None = None) -> Outcome: ...

        def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> Outcome: ...

        def put_image(self, desc: Descriptor, names: list[Reference]) -> None: ...

        def commit(self) -> None: ...
