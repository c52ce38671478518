"""Verbs that move images: load, save, import."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Container, Iterator
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # the implementations are imported where they are used: start-up stays fast
    from typing import BinaryIO, Callable

    from ..copy import Plan
    from ..intake import Opened
    from ..reference import Reference
    from ..store import Store
    from ..store.layout import Image
    from ..store.query import ImageInfo
    from ..oci import Platform
    from ..transports.base import BundleSource, Source, SourceImage
from ..errors import AirgapError, NotFound, UsageError
from . import report
from .context import Context, path_arg
from .format import human_size, plural
from ..words import printable
from ..space import check_space, disk_full

INVENTORY_MEDIA_TYPE = "application/vnd.airgap.inventory.v1+json"


def register(sub: argparse._SubParsersAction, verbs: Container[str]) -> None:  # type: ignore[type-arg]
    if "load" in verbs:
        p = sub.add_parser("load", help="load images from an archive or bundle into the store")
        p.add_argument("-i", "--input", default="-", type=path_arg,
                       help="archive to read (default: stdin); plain or gzip/bzip2/xz/zstd-compressed")
        p.add_argument("--platform", help="pick OS/ARCH[/VARIANT] from a multi-platform image")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        p.add_argument("--repair", action="store_true",
                       help="re-hash the blobs the store already has and replace damaged ones from the input")
        p.add_argument("stray", nargs="*", help=argparse.SUPPRESS)  # `load b.tar`: said plainly below
        _trust_args(p)
        report.add_format(p)
        p.set_defaults(func=cmd_load)

    if "verify" in verbs:
        p = sub.add_parser("verify", help="check a bundle without touching the store")
        p.add_argument("input", metavar="FILE", nargs="?", type=path_arg)
        p.add_argument("-i", "--input", dest="input_opt", metavar="FILE", type=path_arg, help="the same as FILE (as for load)")
        _trust_args(p)
        report.add_format(p)
        p.set_defaults(func=cmd_verify, verify="full", quiet=False, repair=False)

    if "save" in verbs:
        p = sub.add_parser("save", help="save images from the store into a bundle")
        p.add_argument("-o", "--output", type=path_arg, help="file to write (- for stdout)")
        p.add_argument("--platform", help="save only this OS/ARCH[/VARIANT] of multi-platform images")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        p.add_argument("--sign", metavar="KEYFILE", type=path_arg, help="sign the bundle with this Ed25519 private key")
        p.add_argument("--exclude-from", metavar="INVENTORY", type=path_arg,
                       help="leave out the layers listed in this `airgap inventory` of the target store")
        p.add_argument("--split", metavar="SIZE",
                       help="cut the bundle into FILE.001, FILE.002, … of SIZE (4G, 700M, fat32) and FILE.sha256")
        p.add_argument("--compress", choices=("gzip", "zstd"),
                       help="compress the uncompressed layers (of `docker save` archives, `import`); compressed "
                            "ones are kept as they are. gzip: every Docker, containerd, podman loads it; zstd: "
                            "smaller, for Docker >= 23, containerd >= 1.5, podman. Image IDs are unchanged; "
                            "the manifests of the images it compresses get new digests")
        report.add_format(p)
        p.add_argument("-f", "--file", metavar="LIST", type=path_arg, help="also the images a list names (one per line, # comments)")
        p.add_argument("--no-attached", action="store_true",
                       help="leave the signatures, SBOMs and attestations attached to the images out")
        p.add_argument("images", nargs="*", metavar="IMAGE")
        p.set_defaults(func=cmd_save)

    if "inventory" in verbs:
        p = sub.add_parser("inventory", help="list the blobs this store holds, for a delta bundle")
        p.add_argument("-o", "--output", type=path_arg, help="file to write (default: stdout)")
        p.set_defaults(func=cmd_inventory)

    if "import" in verbs:
        p = sub.add_parser("import", help="make an image from a tarball or a directory")
        p.add_argument("source", metavar="FILE|DIR|-", type=path_arg, help="a tar (gzip too), a directory, or - for stdin")
        p.add_argument("reference", metavar="REF", nargs="?")
        p.add_argument("--base", metavar="IMAGE", help="stored image to add the layer on top of")
        p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--platform", help="OS/ARCH[/VARIANT] to record (default: the base's, else the host's)")
        p.add_argument("-m", "--message", default="", help="commit message in the history")
        p.set_defaults(func=cmd_import)


def _trust_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust", action="append", default=[], metavar="PUBKEY", type=path_arg,
                   help="trust this public key (repeatable; also $AIRGAP_TRUST/*.pub and "
                        "/etc/airgap/trust.d/*.pub)")
    p.add_argument("--require-signature", action="store_true",
                   help="refuse anything not signed by a trusted key, even when no key is configured "
                        "(also $AIRGAP_REQUIRE_SIGNATURE=1 or the file /etc/airgap/require-signature)")
    p.add_argument("--insecure-skip-signature", action="store_true",
                   help="load even if the signature is missing, bad or untrusted "
                        "(refused where a signature is required)")
    p.add_argument("--verify", choices=("fast", "full"), default="fast",
                   help="full: also decompress every layer and check its diff_id "
                        "(the default of `verify`; `load` defaults to fast)")


def _open(ctx: Context, args: argparse.Namespace, stack: contextlib.ExitStack, spool: Path | None,
          stream_into: Store | None = None, present: Callable[[str], bool] | None = None) -> Opened:
    """The engine's ``open_checked`` with this verb's flags, progress and notes."""
    from .. import signing
    from ..intake import open_checked
    from .progress import make_read_progress
    policy = signing.TrustPolicy.load(args.trust, args.require_signature)
    reading = make_read_progress(ctx.progress_mode, "Reading")
    stack.callback(reading.close)  # a streamed bundle is read until the load ends
    opened = open_checked(args.input, policy, args.insecure_skip_signature, stack, spool=spool,
                          stream_into=stream_into, present=present, on_read=reading.update)
    if opened.trust.status == "skipped":
        ctx.info("WARNING: the signature is not checked (--insecure-skip-signature); "
                 "every digest still is")
    return opened


def cmd_load(ctx: Context, args: argparse.Namespace) -> int:
    if args.stray:  # before stdin is read
        raise UsageError(f"load takes the archive with -i: airgap load -i {printable(args.stray[0])} "
                         "(or on stdin)")
    from ..intake import load_into
    from ..oci import parse_platform
    from ..transports.store import StoreSink
    from .progress import make_progress
    store = ctx.store
    platform = parse_platform(args.platform) if args.platform else None
    with store.begin(repair=args.repair) as txn, contextlib.ExitStack() as stack:
        # the lock is held from the first byte: prune must not take our staged files
        opened = _open(ctx, args, stack, store.tmp, stream_into=store, present=txn.has_blob)
        source, trust = opened.source, opened.trust
        if not args.quiet and args.format != "json":
            ctx.info(f"{source.name}: {trust.describe()}")
        before = {str(n): img for img in store.images() for n in img.names}
        result = load_into(source, StoreSink(txn), has_blob=txn.has_blob, platform=platform,
                           progress=make_progress(ctx.progress_mode, "Loading"),
                           verify_full=args.verify == "full", space=store.root,
                           before=lambda p: _notes(ctx, source), trust=trust)
        repaired = list(txn.repaired)
        resumed = {**txn.resumed, **source.resumed}
    if resumed:
        ctx.info(f"Resumed: {plural(len(resumed), 'blob')} ({human_size(sum(resumed.values()))}) verified by an "
                 "earlier, interrupted load were reused, not read again")
    for digest in repaired:
        ctx.info(f"Repaired damaged blob {digest}")
    for img in result.plan.images:
        for n in img.names:
            old = before.get(str(n))
            if old is None or old.digest == img.descriptor.digest:
                continue
            if not store.same_image(old.descriptor, img.descriptor):  # by image ID, as Docker
                say = ctx.info if args.format == "json" else ctx.print  # Docker's words, on stdout
                say(f"The image {n.familiar()} already exists, renaming the old one with ID "
                    f"{_image_id(store, old)} to empty string")
    if args.format == "json":
        report.emit(ctx, {"source": source.name, "signature": report.trust(trust),
                          "images": report.images(result.plan), **report.transfer(result),
                          "repaired": repaired})
        return 0
    for img in result.plan.images:
        if img.subject is not None:
            continue
        tags = [n for n in img.names if not n.digest]
        for n in tags:
            ctx.print(f"Loaded image: {n.familiar()}")
        if not tags:
            ctx.print(f"Loaded image ID: {img.host_manifest.manifest.config.digest}")
    extras = {img.descriptor.digest for img in result.plan.images if img.subject is not None}
    if extras:
        ctx.info(f"Loaded {plural(len(extras), 'attached artifact')} (signatures, SBOMs, attestations)")
        _note_orphans(ctx, store, extras)
    return 0


def _note_orphans(ctx: Context, store: Store, loaded: set[str]) -> None:
    """Say which of the attachments just loaded are attached to no stored image (an
    archive that carried a signature without its image): prune removes those."""
    from ..store.gc import without_orphaned_attachments
    kept = {e.digest for e in without_orphaned_attachments(store, store.entries())}
    lone = sorted(loaded - kept)
    if lone:
        ctx.info(f"note: {plural(len(lone), 'attached artifact')} ({', '.join(d[:19] for d in lone)}) "
                 f"{'is' if len(lone) == 1 else 'are'} attached to an image the store does not have; "
                 "`airgap image prune` removes them unless that image is loaded first")


def _image_id(store: Store, img: Image) -> str:
    """Docker's image ID of a stored image (its config digest); its digest if that cannot
    be read."""
    from ..errors import AirgapError
    from ..store.query import ImageInfo
    try:
        return ImageInfo(store, img).id
    except AirgapError:
        return img.digest


def _notes(ctx: Context, source: BundleSource) -> None:
    for note in source.notes:
        ctx.info(f"WARNING: {note}")


def cmd_verify(ctx: Context, args: argparse.Namespace) -> int:
    from ..digest import sha256_digest
    from ..intake import load_into
    from ..transports.store import NullSink
    from .progress import make_progress
    if args.input and args.input_opt:
        raise UsageError("give the bundle once: FILE or -i FILE")
    args.input = args.input or args.input_opt
    if not args.input:
        raise UsageError("verify needs a bundle: airgap verify FILE (or -i FILE; - for stdin)")
    from ..store import Store
    store = Store(ctx.store_path, create=False)  # verify looks at the store, never makes one
    with contextlib.ExitStack() as stack:
        opened = _open(ctx, args, stack, None)
        source, trust = opened.source, opened.trust
        sink = NullSink()

        def skip_delta(p: Plan) -> None:  # what a delta leaves out is not in it to check
            _notes(ctx, source)
            sink.skip.update(d.digest for d in source.expected_present(p))
        result = load_into(source, sink, has_blob=lambda d: False, skip_delta=True,
                           progress=make_progress(ctx.progress_mode, "Verifying"),
                           verify_full=args.verify == "full", before=skip_delta, trust=trust)
        p = result.plan
        delta = source.expected_present(p)
    shipped = [d for d in p.blobs.values() if d not in delta]
    new = [d for d in shipped if not store.has_blob(d.digest)]
    have = [d for d in shipped if store.has_blob(d.digest)]
    lacking = [d for d in delta if not store.has_blob(d.digest)]
    if args.format == "json":
        report.emit(ctx, {
            "source": source.name, "airgapBundle": source.bundle_raw is not None,
            "bundleDigest": sha256_digest(source.bundle_raw) if source.bundle_raw else None,
            "signature": report.trust(trust), "verify": args.verify, "images": report.images(p),
            "blobs": len(shipped), "bytes": sum(d.size for d in shipped),
            "wouldAdd": {"blobs": len(new), "bytes": sum(d.size for d in new)},
            "alreadyPresent": {"blobs": len(have), "bytes": sum(d.size for d in have)},
            "delta": {"expectedPresent": len(delta), "missingHere": [d.digest for d in lacking]}})
        return 0
    if source.bundle_raw is not None:
        ctx.print(f"Bundle:     {source.name} (bundle.json {sha256_digest(source.bundle_raw)})")
    else:
        ctx.print(f"Archive:    {source.name} (not an airgap bundle)")
    ctx.print(f"Signature:  {trust.describe()}")
    ctx.print("Images:")
    for img in p.images:
        names = ", ".join(n.familiar() for n in img.names) or "<none>"
        plats = printable(", ".join(str(m.platform) for m in img.manifests))  # from the configs: any text
        ctx.print(f"  {names}  digest {img.descriptor.digest}  {plats}")  # as `images --digests`
    ctx.print(f"Blobs:      {len(shipped)}, {human_size(sum(d.size for d in shipped))}, all digests and sizes checked"
              + (", layers decompressed and diff_ids checked" if args.verify == "full" else ""))
    ctx.print(f"Load would add {plural(len(new), 'blob')} ({human_size(sum(d.size for d in new))}); "
              f"{plural(len(have), 'blob')} ({human_size(sum(d.size for d in have))}) already in {store.root}")
    if delta:
        ctx.print(f"Delta:      leaves out {plural(len(delta), 'layer')} the target store must hold; "
                  + (f"{len(lacking)} of them are NOT in {store.root}" if lacking else f"{store.root} has them all"))
    return 0


def _save_selection(ctx: Context, names: list[str]) -> list[SourceImage]:
    """Docker's rules: a tag saves that name, a bare repository all its tags, an ID no name."""
    from ..reference import parse_reference
    from ..store.query import all_images, by_name, find_image
    from ..transports.base import SourceImage
    store = ctx.store
    images = all_images(store)
    named_by = by_name(images)
    repositories: dict[str, list[tuple[ImageInfo, Reference]]] = {}  # a bare repository: its names
    for each in images:
        for name in each.names:
            repositories.setdefault(name.name, []).append((each, name))
    chosen: dict[str, SourceImage] = {}
    for text in names:
        matched: list[tuple[ImageInfo, Reference | None]] = []
        try:
            ref = parse_reference(text)
        except AirgapError:
            ref = None
        if ref is not None and ref.tag is None and ref.digest is None:
            matched = list(repositories.get(ref.name, ()))
        if not matched:
            info, named = find_image(store, text, images, named_by)
            matched = [(info, named if named is not None and named.tag else None)]
        for info, n in matched:
            img = chosen.setdefault(info.digest, SourceImage(info.image.descriptor, [], info.id))
            # a name brings the registry digests of its repository along (RepoDigests), those
            # that are this image's digest: an image pulled for one platform of an index has the
            # index's digest as its RepoDigest (as in Docker), which the far side cannot check
            # without the index, and refuses; it travels as `docker save` has it, without it
            for m in [n, *[d for d in info.digest_refs
                           if n is not None and d.name == n.name and d.digest == info.digest]]:
                if m is not None and m not in img.names:
                    img.names.append(m)
    return list(chosen.values())


def attachments_of(store: Store, images: list[SourceImage]) -> list[SourceImage]:
    """What is attached to ``images`` (and to what is attached to them): signatures,
    SBOMs, attestations, by their subject (the image, or the index a RepoDigest names)."""
    from ..oci import ANNOTATION_ATTACHMENT
    from ..transports.base import SourceImage
    subjects = {i.descriptor.digest for i in images} | {n.digest for i in images for n in i.names if n.digest}
    return [SourceImage(a.descriptor, list(a.names),
                        f"{a.descriptor.annotations.get(ANNOTATION_ATTACHMENT, 'artifact')} {a.digest[:19]}")
            for a in store.attachments(subjects, transitive=True)]


def _source_date() -> str | None:
    """$SOURCE_DATE_EPOCH as the bundle's time; without it the bundle sink takes the
    newest image's, so that saving the same images twice gives the same bytes."""
    from ..timeutil import source_date_epoch
    epoch = source_date_epoch()
    if epoch is not None:
        from datetime import UTC, datetime
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _destination(path: str | None) -> str:
    """What ``-o`` names: ``stdout`` (``-``, or a name of our standard output such as
    /dev/stdout), ``stream`` (a FIFO, a device, a symbolic link: written through as it
    is, never replaced by a file: ``-o /dev/null`` as root must not replace /dev/null),
    or ``file`` (written beside it and renamed into place when whole)."""
    import stat
    if path in (None, "-"):
        return "stdout"
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode) and not os.path.exists(path):
            return "stream"  # a link to a file yet to be made: made through it
        st = os.stat(path)
    except OSError:
        return "file"  # missing (or unreadable: opening it says why)
    try:
        out = os.fstat(sys.stdout.fileno())
        if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            return "stdout"
    except (OSError, ValueError):
        pass  # no standard output
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"-o {path} is a directory; name the bundle's file (-o {path.rstrip('/')}/images.tar)")
    return "stream" if os.path.islink(path) or not stat.S_ISREG(st.st_mode) else "file"


def _check_output(path: str | None, dest: str, split: int | None, p: Plan) -> None:
    """Before a byte is written: the directory exists, the bundle fits, and a FAT
    filesystem (USB sticks) can hold each file (FAT32 files end at 4 GiB - 1)."""
    if path is None or dest == "stdout" or (dest == "stream" and split is None):
        return  # parts of a split save are files beside the stream's name
    from ..space import FAT32_MAX, is_fat
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise NotFound(f"{parent}: no such directory (for -o {path})")
    estimate = p.total_bytes + 1024 * (len(p.blobs) + 8)  # tar headers and top files
    if split is not None:
        from ..archive.split import MAX_PARTS
        parts = -(-estimate // split)
        if parts > MAX_PARTS:  # FILE.001 … FILE.999: a 1000th would not be found
            least = -(-estimate // (MAX_PARTS << 20))  # in MiB, as --split takes it
            raise UsageError(f"--split: a bundle of about {human_size(estimate)} needs {parts} "
                             f"parts of {split} bytes, more than the {MAX_PARTS} that FILE.001 … FILE.{MAX_PARTS} "
                             f"can name; use --split {least}M or more")
    if is_fat(parent):
        if split is not None and split > FAT32_MAX:
            raise UsageError(f"{parent} is on a FAT filesystem, whose files end at 4 GiB - 1 "
                             f"({FAT32_MAX} bytes): parts of {human_size(split)} do not fit; "
                             "use --split fat32")
        if split is None and estimate > FAT32_MAX:
            raise UsageError(f"{parent} is on a FAT filesystem, whose files end at 4 GiB - 1: a "
                             f"bundle of about {human_size(estimate)} does not fit; use --split fat32")
    check_space(parent, estimate, f"save to {path}")


@contextlib.contextmanager
def _output(ctx: Context, path: str | None, dest: str, split: int | None = None) -> Iterator[BinaryIO]:
    """stdout, a stream written through, or a temp file (or parts) renamed into place only
    when the bundle is complete."""
    if split is not None:
        if path is None or dest == "stdout":
            raise UsageError("--split needs -o FILE")
        from ..archive.split import SplitWriter
        base = Path(path)
        writer = SplitWriter(base, split)
        try:
            with disk_full(base.parent, 0):
                yield writer  # type: ignore[misc]
                writer.commit()
        except BaseException:
            writer.abort()
            if writer.done:  # hidden files on the stick: say what they are and how to drop them
                ctx.info(f"Kept {plural(len(writer.done), 'whole part')} of this save in {base.parent} "
                         f"(.{base.name}.NNN.part): the same save run again resumes from them; "
                         f"rm {base.parent}/.{base.name}.* discards them")
            raise
        return
    if path is None or dest == "stdout":
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal; use -o FILE or redirect")
        try:
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            raise _reader_gone("stdout") from None
        except OSError as exc:
            raise _full("stdout", exc) from None
        return
    if dest == "stream":
        try:
            with open(path, "wb") as stream:
                yield stream
        except BrokenPipeError:
            raise _reader_gone(path) from None
        except OSError as exc:
            raise _full(path, exc) from None
        return
    target = Path(path)
    if not target.parent.is_dir():
        raise NotFound(f"{target.parent}: no such directory (for -o {path})")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        from ..newfile import create
        with disk_full(target.parent, 0), open(create(tmp), "wb") as f:
            from ..writeback import WritebackFile
            yield WritebackFile(f)  # type: ignore[misc]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _full(where: str, exc: OSError) -> OSError | AirgapError:
    """A device or stdout that is full, said with its name (a write's OSError has none)."""
    import errno
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return AirgapError(f"{where}: no space left on device; what was written is not a whole bundle")
    return exc


def _reader_gone(where: str) -> AirgapError:
    return AirgapError(f"{where}: the reader stopped before the end (broken pipe); what it read is not a "
                       "whole bundle")


def cmd_save(ctx: Context, args: argparse.Namespace) -> int:
    if args.output not in (None, "-"):
        ctx.refuse_inside_store(args.output, "-o")
    store = ctx.store
    with store.lock(shared=True):  # rmi and prune wait: nothing is removed while it is read
        return _save(ctx, args, store)


def _compressed(ctx: Context, store: Store, p: Plan, method: str,
                platform: Platform | None) -> tuple[Source, Plan]:
    """The plan again, over the compressed layers and the manifests that name them."""
    from ..compress import compress_images
    from ..copy import plan
    from .progress import make_progress
    source, notes = compress_images(p, store, method, make_progress(ctx.progress_mode, "Compressing"))
    for note in notes:
        ctx.info(note)
    if source.layers:
        before = sum(c.uncompressed_size for c in source.layers.values())
        after = sum(c.size for c in source.layers.values())
        ctx.info(f"Compressed {plural(len(source.layers), 'layer')} with {method}: "
                 f"{human_size(before)} -> {human_size(after)}")
    return source, plan(source, source.images(), platform=platform)


def _docker_warnings(ctx: Context, p: Plan) -> None:
    """Images `docker load` on Linux refuses, saved with a warning: more layers than it
    takes (a registry's, built by BuildKit or containerd, which load it), or Windows only."""
    from ..oci import DOCKER_MAX_LAYERS
    for img in p.images:
        if img.subject is not None:
            continue
        deepest = max(len(m.manifest.layers) for m in img.manifests)
        if deepest > DOCKER_MAX_LAYERS:
            ctx.info(f"WARNING: {img.display()} has {deepest} layers: `docker load` refuses more than "
                     f"{DOCKER_MAX_LAYERS} (max depth exceeded); containerd and podman load it")
        if all(m.platform.os == "windows" for m in img.manifests):
            ctx.info(f"WARNING: {img.display()} is a Windows image: Docker on Linux refuses it "
                     "(cannot load windows image on linux)")


def _save(ctx: Context, args: argparse.Namespace, store: Store) -> int:
    from ..copy import TooManyDocuments, plan, transfer
    from ..digest import sha256_digest
    from ..oci import parse_platform
    from ..transports.archive import BundleSink
    from ..transports.store import StoreSource
    from .progress import make_progress
    if args.file:
        from .delivery import read_list
        args.images = [*args.images, *read_list(args.file)]
    if not args.images:
        raise UsageError("save needs an image (or -f LIST)")
    selection = _save_selection(ctx, args.images)
    if not args.no_attached:
        selection += attachments_of(store, selection)
    platform = parse_platform(args.platform) if args.platform else None
    created = _source_date()
    from ..archive.split import parse_size
    split = parse_size(args.split) if args.split else None
    signer = None
    fp = ""
    if args.sign:
        from .. import signing
        key = signing.load_private_key(Path(args.sign))
        fp = signing.fingerprint(key.public_key())
        signer = lambda data: signing.sign(data, key)
    exclude = _inventory(args.exclude_from) if args.exclude_from else None
    source: Source = StoreSource(store, selection)
    try:
        p = plan(source, source.images(), platform=platform)
    except TooManyDocuments as exc:  # the store's own images: too many for one bundle, not damage
        raise UsageError(str(exc)) from None
    _docker_warnings(ctx, p)
    if args.compress:
        source, p = _compressed(ctx, store, p, args.compress, platform)
    dest = _destination(args.output)
    _check_output(args.output, dest, split, p)
    with _output(ctx, args.output, dest, split) as out:
        sink = BundleSink(out, created, signer, exclude)
        if split:  # whole parts an interrupted save of the same bundle left are kept
            sink.prepare(p)
            kept = out.resume(sha256_digest(sink.bundle_raw + sink.signature_raw))  # type: ignore[attr-defined]
            if kept:
                ctx.info(f"Resumed: {plural(kept, 'part')} ({human_size(kept * split)}) written by an "
                         "interrupted save checked and kept, not written again")
        result = transfer(source, sink, p, make_progress(ctx.progress_mode, "Saving"))
    if args.format == "json":
        report.emit(ctx if dest != "stdout" else _stderr(ctx), {
            "output": args.output or "-", "bundleDigest": sha256_digest(sink.bundle_raw),
            "signer": fp or None, "images": report.images(result.plan), "size": sink.tar.written,
            **report.transfer(result)})
        return 0
    say = ctx.print if dest != "stdout" else ctx.info
    if dest != "stdout":
        where = args.output
        if split:
            n = -(-sink.tar.written // split)
            where = (f"{args.output}.001 … {args.output}.{n:03d}" if n > 1 else f"{args.output}.001") \
                + f" and {args.output}.sha256"
        ctx.info(f"Saved {plural(len(result.plan.images), 'image')}, {plural(len(result.plan.blobs), 'blob')}, "
                 f"{human_size(sink.tar.written)} to {where}")
    say(f"Bundle digest: {sha256_digest(sink.bundle_raw)}")
    say(f"Signed by: {fp}" if fp else "Signed by: nobody (unsigned bundle; use --sign KEYFILE)")
    return 0


def _inventory(path: str) -> set[str]:
    from ..oci import load_json, need_list
    from ..smallfile import INVENTORY_LIMIT, MAX_INVENTORY_BLOBS, read_small
    try:
        doc = load_json(read_small(path, INVENTORY_LIMIT, "inventory"), path, max_containers=MAX_INVENTORY_BLOBS + 2)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    if not isinstance(doc, dict) or doc.get("mediaType") != INVENTORY_MEDIA_TYPE:
        raise UsageError(f"{path}: not an airgap inventory (make one with `airgap inventory -o FILE`)")
    blobs = need_list(doc.get("blobs") or [], path, "blobs", MAX_INVENTORY_BLOBS)
    return {str(b["digest"]) for b in blobs if isinstance(b, dict) and "digest" in b}


def cmd_inventory(ctx: Context, args: argparse.Namespace) -> int:
    if args.output not in (None, "-"):
        ctx.refuse_inside_store(args.output, "-o")
    from ..smallfile import INVENTORY_LIMIT, MAX_INVENTORY_BLOBS
    store = ctx.store
    blobs = [{"digest": d, "size": store.blob_size(d)} for d in sorted(store.all_blobs())]
    if len(blobs) > MAX_INVENTORY_BLOBS:  # what `save --exclude-from` reads back, no more
        raise AirgapError(f"{store.root} holds {len(blobs)} blobs, more than an inventory lists "
                          f"({MAX_INVENTORY_BLOBS}); prune the store, or make full bundles")
    doc = {"schemaVersion": 1, "mediaType": INVENTORY_MEDIA_TYPE, "store": str(store.root),
           "blobs": blobs}
    text = json.dumps(doc, indent=1) + "\n"
    if len(text) > INVENTORY_LIMIT:
        raise AirgapError(f"the inventory of {store.root} would take {len(text)} bytes, more than a save "
                          f"reads ({INVENTORY_LIMIT >> 20} MiB); prune the store, or make full bundles")
    dest = _destination(args.output)
    if dest == "stdout":
        ctx.out.write(text)
        return 0
    with _output(ctx, args.output, dest) as out:  # as save's: the old one stays whole until then
        out.write(text.encode())
    ctx.info(f"{plural(len(blobs), 'blob')} listed in {args.output}")
    return 0


def _stderr(ctx: Context) -> Context:
    """A context whose results go to stderr (the bundle itself is on stdout)."""
    import copy as _copy
    other = _copy.copy(ctx)
    other.out = ctx.err
    return other


def cmd_import(ctx: Context, args: argparse.Namespace) -> int:
    from ..build import import_image
    from ..oci import parse_platform
    from ..reference import parse_reference
    from ..store.query import find_image
    store = ctx.store
    ref = parse_reference(args.reference).with_default_tag() if args.reference else None
    if ref is not None and ref.digest:
        raise UsageError(f"{args.reference}: cannot import to a digest reference")
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid label {item!r}: expected KEY=VALUE")
        labels[key] = value
    with store.begin() as txn:
        base = find_image(store, args.base)[0] if args.base else None
        platform = parse_platform(args.platform) if args.platform else None
        image_id = import_image(store, txn, Path(args.source), ref, base, labels, args.message, platform)
        txn.commit()
    ctx.print(image_id)
    return 0
