"""``push --all``, ``push -f LIST``, ``push -i BUNDLE --all``: many images into the site
registry in one run, names kept, each blob uploaded at most once."""

from __future__ import annotations

import argparse
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AirgapError, UsageError
from ..words import plural
from . import report
from .context import Context
from .format import human_size

if TYPE_CHECKING:
    from ..reference import Reference
    from ..transports.base import Source, SourceImage


def read_list(path: str) -> list[str]:
    """An image list: one reference per line, ``#`` comments and blank lines ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (an image list)") from None
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    if not out:
        raise UsageError(f"{path}: lists no images")
    return out


@dataclass
class Target:
    """One image and the names it gets at the destination."""

    image: SourceImage
    dests: list[Reference] = field(default_factory=list)


def parse_dest(text: str) -> tuple[str, str]:
    """``registry[:port][/prefix]`` -> (registry, prefix)."""
    from ..reference import parse_reference
    host, _, prefix = text.strip("/").partition("/")
    if not host or ("." not in host and ":" not in host and host != "localhost"):
        raise UsageError(f"{text!r}: DEST must be a registry: host[:port][/prefix]")
    if prefix:
        parse_reference(f"{host}/{prefix}/x")  # refuses a prefix that no name could have
    return host, prefix


def map_names(images: list[SourceImage], dest: str) -> list[Target]:
    """The source host dropped, the path and tag kept, under DEST; an image with no tag
    goes by digest. Two images that would get one name: refused before any upload."""
    from ..reference import parse_reference
    host, prefix = parse_dest(dest)
    owner: dict[str, SourceImage] = {}
    out = []
    for img in images:
        t = Target(img)
        tags = [n for n in img.names if not n.digest]
        for n in tags or [n for n in img.names if n.digest][:1]:
            path = f"{prefix}/{n.path}" if prefix else n.path
            ref = parse_reference(f"{host}/{path}" + (f":{n.tag}" if n.tag else f"@{img.descriptor.digest}"))
            other = owner.setdefault(str(ref), img)
            if other is not img and other.descriptor.digest != img.descriptor.digest:
                raise UsageError(f"{other.display()} and {img.display()} would both be pushed as {ref}; "
                                 "push them separately, or to different prefixes")
            if ref not in t.dests:
                t.dests.append(ref)
        if not t.dests:
            raise UsageError(f"image {img.display()} has no name to push it under; tag it first")
        out.append(t)
    return out


def cmd_push_many(ctx: Context, args: argparse.Namespace) -> int:
    from ..registry.client import RegistryClient
    from ..transports.registry import PushLedger
    positional = [a for a in (args.source, args.dest) if a]
    if len(positional) != 1:
        raise UsageError("push --all / -f LIST takes one DEST: registry[:port][/prefix]")
    dest = positional[0]
    host, _ = parse_dest(dest)
    with contextlib.ExitStack() as stack:
        source, images = _source_and_images(ctx, args, stack)
        targets = map_names(images, dest)
        client = RegistryClient(host, ca_cert=args.ca_cert)
        stack.callback(client.close)
        ledger = PushLedger()
        rows: list[dict[str, Any]] = []
        failed = 0
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [(t, pool.submit(_push_one, source, t, client, ledger)) for t in targets]
            for t, f in futures:
                try:
                    rows.append(f.result())
                except AirgapError as exc:
                    failed += 1
                    rows.append({"image": t.image.display(), "references": [str(d) for d in t.dests],
                                 "status": "failed", "error": str(exc)})
    totals = {k: sum(r.get(k, 0) for r in rows) for k in ("uploaded", "mounted", "present", "bytes")}
    if args.format == "json":
        report.emit(ctx, {"destination": dest, "images": rows, **totals, "failed": failed})
    else:
        for r in rows:
            for ref in r["references"]:
                ctx.print(f"{ref}: {r['status']}" + (f" ({r['error']})" if r.get("error") else ""))
        ctx.print(f"{plural(len(rows), 'image')}; blobs: {totals['uploaded']} uploaded "
                  f"({human_size(totals['bytes'])}), {totals['mounted']} mounted, "
                  f"{totals['present']} already there" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def _push_one(source: Source, t: Target, client: Any, ledger: Any) -> dict[str, Any]:
    from ..copy import plan, transfer
    from ..oci import INDEX_TYPES, MANIFEST_TYPES
    from ..transports.base import Outcome, SourceImage
    from ..transports.registry import RegistrySink
    counts = {o: 0 for o in Outcome}
    added_bytes = 0
    digest = ""
    for i, ref in enumerate(t.dests):
        p = plan(source, [SourceImage(t.image.descriptor, [ref], t.image.label)])
        sink = RegistrySink(client, ref, [], lambda d: source.open_blob(d), ledger)
        result = transfer(source, sink, p)
        digest = sink.pushed_digest
        for d, o in result.outcomes.items():
            if i == 0 and p.blobs[d].media_type not in (*MANIFEST_TYPES, *INDEX_TYPES):
                counts[o] += 1
                if o is Outcome.ADDED:
                    added_bytes += p.blobs[d].size
    status = "pushed" if counts[Outcome.ADDED] or counts[Outcome.MOUNTED] else "up to date"
    return {"image": t.image.display(), "references": [str(d) for d in t.dests], "digest": digest,
            "status": status, "uploaded": counts[Outcome.ADDED], "mounted": counts[Outcome.MOUNTED],
            "present": counts[Outcome.PRESENT], "bytes": added_bytes}


def _source_and_images(ctx: Context, args: argparse.Namespace,
                       stack: contextlib.ExitStack) -> tuple[Source, list[SourceImage]]:
    """The store's named images (or those a list names), or a bundle's after its trust checks."""
    wanted = read_list(args.file) if args.file else None
    if args.input:
        from .. import signing
        from ..intake import open_checked
        policy = signing.TrustPolicy.load(args.trust, args.require_signature)
        opened = open_checked(args.input, policy, args.insecure_skip_signature, stack, spool=None)
        source = opened.source
        source.receive()
        images = source.images()
        if wanted is not None:
            from ..reference import parse_reference
            want = {parse_reference(w).with_default_tag() for w in wanted}
            images = [i for i in images if want & set(i.names)]
        return source, images
    from ..store.query import all_images, find_image
    from ..transports.base import SourceImage
    from ..transports.store import StoreSource
    store = ctx.store
    stack.enter_context(store.lock(shared=True))
    if wanted is None:
        chosen = [SourceImage(i.image.descriptor, list(i.names), i.id) for i in all_images(store) if i.names]
    else:
        infos = all_images(store)
        picked: dict[str, SourceImage] = {}
        for text in wanted:
            info, ref = find_image(store, text, infos)
            img = picked.setdefault(info.digest, SourceImage(info.image.descriptor, [], info.id))
            names = [ref] if ref is not None else list(info.names)
            img.names += [n for n in names if n not in img.names]
        chosen = list(picked.values())
    return StoreSource(store, chosen), chosen
