"""The one load sequence: open what ``load`` and ``verify`` read, apply the trust policy
before anything else is read, receive a streamed bundle, plan, check a delta's
prerequisites and the free space, and transfer. ``load`` runs it into the store,
``verify`` into nothing; the CLI only reports.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from .errors import NotFound
from . import signing
from .records import NamedTuple
from .signing import TrustPolicy, TrustResult
from .space import check_space, disk_full
from .words import plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Callable

    from .copy import CopyResult, Plan, Progress
    from .oci import Platform
    from .store import Store
    from .transports.base import BundleSource, Sink


class Opened(NamedTuple):
    source: BundleSource
    trust: TrustResult


def open_checked(path: str, policy: TrustPolicy, insecure: bool, stack: contextlib.ExitStack, *,
                 spool: Path | None, stream_into: Store | None = None,
                 present: Callable[[str], bool] | None = None,
                 on_read: Callable[[int], None] | None = None) -> Opened:
    """Open the archive and apply the trust policy before anything else is read.

    A file's ``bundle.json`` and signature are checked before its headers are walked. A
    stream (a pipe, a compressed archive, a .7z) that carries an airgap bundle is read in
    one pass into ``stream_into``'s resume area (a scratch store when there is none, as
    for ``verify``); one that cannot be a signed bundle is refused at its first bytes when
    the policy demands a signature, and spooled to disk otherwise.
    """
    from .archive.input import open_input, spool as spool_stream
    from .transports.archive import ArchiveSource
    demand = policy.in_force and not insecure
    inp = open_input(path, spool, on_read=on_read)
    source: BundleSource
    try:
        if inp.seekable:
            if demand:  # before the header walk
                from .transports.stream import read_bundle_head
                signing.check(policy, inp.name, *read_bundle_head(inp.f, inp.name))
            source = ArchiveSource(inp.f, inp.name)
        else:
            import tempfile  # streams only: a file's load never needs them
            from .transports.stream import StreamedBundle, peek_bundle
            is_bundle, stream = peek_bundle(inp.f)
            if is_bundle:
                if stream_into is None:
                    from .store import Store
                    stream_into = Store(stack.enter_context(tempfile.TemporaryDirectory(prefix="airgap-verify-")))
                source = StreamedBundle(stream, inp.name, stream_into, present, inp.volumes)
            else:
                if demand:
                    _first_header(stream, inp.name)  # a damaged or foreign file says so first
                    signing.check(policy, inp.name, None, None)
                with disk_full(spool or Path(tempfile.gettempdir()), 0):
                    source = ArchiveSource(spool_stream(stream, spool, inp.name), inp.name)
    except BaseException:
        inp.f.close()
        raise
    stack.callback(source.close)
    trust = signing.check(policy, source.name, source.bundle_raw, source.signature_raw, insecure)
    return Opened(source, trust)


def _first_header(stream: BinaryIO, name: str) -> None:
    """Refuse input that is not a tar archive at all, by its first block."""
    from .archive.tar import TarStream
    TarStream(io.BytesIO(stream.peek(512)[:512]), name).next()  # type: ignore[attr-defined]


def load_into(source: BundleSource, sink: Sink, *, has_blob: Callable[[str], bool],
              platform: Platform | None = None, progress: Progress | None = None,
              verify_full: bool = False, space: Path | None = None,
              skip_delta: bool = False, before: Callable[[Plan], None] | None = None,
              trust: TrustResult | None = None) -> CopyResult:
    """Receive, plan, check the delta and the space, transfer: after ``open_checked``.

    ``has_blob`` is what the target already holds (the store's transaction; for
    ``verify``, nothing but what a delta bundle leaves out when ``skip_delta``). With a
    ``trust`` that verified the signer, the layer sizes bundle.json declares are believed
    (a layer may then decompress to more than gzip could: its declared size bounds it).
    """
    from .copy import bytes_to_add, plan, transfer
    source.receive()
    p = plan(source, source.images(), platform=platform)
    p.sizes_signed = trust is not None and trust.status == "verified"
    needed = source.expected_present(p)
    if not skip_delta:
        missing = [d.digest for d in needed if not has_blob(d.digest)]
        if missing:
            raise NotFound(f"{source.name} is a delta bundle: it leaves out {plural(len(needed), 'layer')} that "
                           f"the store must already hold, and {len(missing)} of them are not here (first: "
                           f"{missing[0]}). Load the full bundle, or a delta made from this store's "
                           "`airgap inventory`")
    if space is not None:
        check_space(space, bytes_to_add(p, lambda d: has_blob(d) or source.has_staged(d)),
                    f"load {source.name}")
    if before is not None:
        before(p)
    return transfer(source, sink, p, progress, verify_full)
