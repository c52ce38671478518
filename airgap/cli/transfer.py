"""Verbs that move images: load, save, import."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..archive.input import open_input
from ..build import import_image
from ..copy import copy
from ..errors import AirgapError, UsageError
from ..oci import parse_platform
from ..reference import parse_reference
from ..store.query import all_images, find_image
from ..transports.archive import ArchiveSource, BundleSink
from ..transports.base import SourceImage
from ..transports.store import StoreSink, StoreSource
from .context import Context
from .format import human_size, parse_time
from .progress import make_progress


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("load", help="load images from an archive or bundle into the store")
    p.add_argument("-i", "--input", default="-", help="archive to read (default: stdin)")
    p.add_argument("--platform", help="pick OS/ARCH[/VARIANT] from a multi-platform image")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("save", help="save images from the store into a bundle")
    p.add_argument("-o", "--output", help="file to write (- for stdout)")
    p.add_argument("--platform", help="save only this OS/ARCH[/VARIANT] of multi-platform images")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_save)

    p = sub.add_parser("import", help="make an image from a tarball or a directory")
    p.add_argument("source", metavar="FILE|DIR")
    p.add_argument("reference", metavar="REF", nargs="?")
    p.add_argument("--base", metavar="IMAGE", help="stored image to add the layer on top of")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-m", "--message", default="", help="commit message in the history")
    p.set_defaults(func=cmd_import)


def cmd_load(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    platform = parse_platform(args.platform) if args.platform else None
    f, name = open_input(args.input, store.tmp)
    with f:
        source = ArchiveSource(f, name)
        before = {str(n): img.digest for img in store.images() for n in img.names}
        with store.begin() as txn:
            result = copy(source, StoreSink(txn), platform=platform,
                          progress=make_progress(ctx.progress_mode, "Loading"))
    for img in result.plan.images:
        for n in img.names:
            old = before.get(str(n))
            if old is not None and old != img.descriptor.digest:
                ctx.info(f"The image {n.familiar()} already exists, renaming the old one "
                         f"with digest {old} to empty string")
    for img in result.plan.images:
        if img.names:
            for n in img.names:
                ctx.print(f"Loaded image: {n.familiar()}")
        else:
            ctx.print(f"Loaded image ID: {img.manifests[0].manifest.config.digest}")
    return 0


def _save_selection(ctx: Context, names: list[str]) -> list[SourceImage]:
    """Docker's rules: a tag saves that name, a bare repository all its tags, an ID no name."""
    store = ctx.store
    images = all_images(store)
    chosen: dict[str, SourceImage] = {}
    for text in names:
        matched = []
        try:
            ref = parse_reference(text)
        except AirgapError:
            ref = None
        if ref is not None and ref.tag is None and ref.digest is None and ":" not in text:
            matched = [(info, n) for info in images for n in info.names if n.name == ref.name]
        if not matched:
            info, named = find_image(store, text, images)
            matched = [(info, named if named is not None and named.tag else None)]
        for info, n in matched:
            img = chosen.setdefault(info.digest, SourceImage(info.image.descriptor, [], info.id))
            if n is not None and n not in img.names:
                img.names.append(n)
    return list(chosen.values())


def _created(images: list[SourceImage], ctx: Context) -> str:
    """Bundle time: $SOURCE_DATE_EPOCH, else the newest image's, so saves are reproducible."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        from datetime import datetime, timezone
        return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    times = []
    for info in all_images(ctx.store):
        if any(info.digest == i.descriptor.digest for i in images):
            t = parse_time(info.created)
            if t is not None:
                times.append(t)
    return max(times).strftime("%Y-%m-%dT%H:%M:%SZ") if times else "1970-01-01T00:00:00Z"


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[BinaryIO]:
    """stdout, or a temp file renamed over ``path`` only when the bundle is complete."""
    if path in (None, "-"):
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal; use -o FILE or redirect")
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)  # type: ignore[arg-type]
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_save(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    selection = _save_selection(ctx, args.images)
    platform = parse_platform(args.platform) if args.platform else None
    created = _created(selection, ctx)
    with _output(args.output) as out:
        sink = BundleSink(out, created)
        result = copy(StoreSource(store, selection), sink, platform=platform,
                      progress=make_progress(ctx.progress_mode, "Saving"))
    if args.output not in (None, "-"):
        ctx.info(f"Saved {len(result.plan.images)} image(s), {len(result.plan.blobs)} blobs, "
                 f"{human_size(sink.tar.written)} to {args.output}")
    return 0


def cmd_import(ctx: Context, args: argparse.Namespace) -> int:
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
        image_id = import_image(store, txn, Path(args.source), ref, base, labels, args.message)
        txn.commit()
    ctx.print(image_id)
    return 0
