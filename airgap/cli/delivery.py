"""``push --all``, ``push -f LIST``, ``push -i BUNDLE --all``: many images into the site
registry in one run, names kept, each blob uploaded at most once."""

from __future__ import annotations

import argparse
import contextlib
from concurrent.futures import ThreadPoolExecutor

from ..errors import AirgapError, UsageError
from ..words import is_port, plural
from . import report
from .context import Context
from .format import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..reference import Reference
    from ..transports.base import Source, SourceImage


def read_list(path: str) -> list[str]:
    """An image list: one reference per line, ``#`` comments and blank lines ignored."""
    from ..smallfile import LIST_LIMIT, read_small
    try:
        text = read_small(path, LIST_LIMIT, "image list").decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (an image list)") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text at byte {exc.start} (an image list)") from None
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    if not out:
        raise UsageError(f"{path}: lists no images")
    return out


class Target:
    """One image and the names it gets at the destination."""

    __slots__ = ("image", "dests")

    def __init__(self, image: SourceImage) -> None:
        self.image = image
        self.dests: list[Reference] = []


def parse_dest(text: str) -> tuple[str, str]:
    """``registry[:port][/prefix]`` -> (registry, prefix)."""
    from ..reference import parse_reference
    host, _, prefix = text.strip("/").partition("/")
    if not host or ("." not in host and ":" not in host and host != "localhost"):
        raise UsageError(f"{text!r}: DEST must be a registry: host[:port][/prefix]")
    parse_reference(f"{host}/{prefix}/x" if prefix else f"{host}/x")  # a host and prefix names can have
    port = host.rpartition("]")[2].partition(":")[2]  # after an IPv6 address's brackets
    if port and not is_port(port):
        raise UsageError(f"{text!r}: port {port} is not a port (0 to 65535)")
    return host, prefix


def map_names(images: list[SourceImage], dest: str) -> list[Target]:
    """The source host dropped, the path and tag kept, under DEST; an image with no tag
    goes by digest. Two images that would get one name: refused before any upload."""
    from ..reference import parse_reference
    from ..oci import subject_of
    host, prefix = parse_dest(dest)
    owner: dict[str, SourceImage] = {}
    out = []
    repos_of: dict[str, set[str]] = {}  # a subject digest -> the repositories it goes to
    for img in sorted(images, key=lambda i: subject_of(i.descriptor) is not None):  # images first
        t = Target(img)
        subject = subject_of(img.descriptor)
        if subject is not None and not img.names:  # an OCI referrer: beside its subject, by digest
            for path in sorted(repos_of.get(subject, ())):
                t.dests.append(parse_reference(f"{host}/{path}@{img.descriptor.digest}"))
            if t.dests:
                out.append(t)
            continue
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
            for d in {img.descriptor.digest, *(m.digest for m in img.names if m.digest)}:
                repos_of.setdefault(d, set()).add(path)
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
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [(t, pool.submit(_push_one, source, t, client, ledger)) for t in targets]
            for t, f in futures:
                try:
                    rows.append(f.result())
                except AirgapError as exc:
                    failed += 1
                    rows.append({"image": t.image.display(), "references": [str(d) for d in t.dests],
                                 "status": "failed", "error": str(exc)})
        if not failed:
            _referrer_fallback_tags(source, targets, client)
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


def _referrer_fallback_tags(source: Source, targets: list[Target], client: Any) -> None:
    """For a registry without the referrers API (distribution 2.x), what refers to an
    image is listed in an index under the tag ``sha256-<hex>`` (OCI 1.1's fallback)."""
    import json

    from ..oci import OCI_INDEX, cosign_tag, load_json, subject_of
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in targets:
        subject = subject_of(t.image.descriptor)
        if subject is None or t.image.names:
            continue
        doc = load_json(source.read_document(t.image.descriptor, f"referrer {t.image.descriptor.digest}"),
                        "referrer")
        desc: dict[str, Any] = {"mediaType": t.image.descriptor.media_type, "digest": t.image.descriptor.digest,
                                "size": t.image.descriptor.size}
        kind = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
        if isinstance(kind, str):
            desc["artifactType"] = kind
        if isinstance(doc.get("annotations"), dict):
            desc["annotations"] = doc["annotations"]
        for d in t.dests:
            groups.setdefault((d.path, subject), []).append(desc)
    for (repo, subject), descs in sorted(groups.items()):
        if client.referrers(repo, subject, f"{repo}: referrers") is not None:
            continue  # the registry indexes them itself
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": sorted(descs, key=lambda x: x["digest"])},
                           separators=(",", ":")).encode()
        client.put_manifest(repo, cosign_tag(subject, ""), index, OCI_INDEX, f"{repo}: referrers of {subject}")


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
        if args.no_attached:
            from ..oci import subject_of
            images = [i for i in images if subject_of(i.descriptor) is None]
        if wanted is not None:
            from ..reference import parse_reference
            want = {parse_reference(w).with_default_tag() for w in wanted}
            images = [i for i in images if want & set(i.names)]
        return source, images
    from ..store.query import all_images, by_name, find_image
    from ..transports.base import SourceImage
    from ..transports.store import StoreSource
    store = ctx.store
    stack.enter_context(store.lock(shared=True))
    from .transfer import attachments_of
    if wanted is None:
        chosen = [SourceImage(i.image.descriptor, list(i.names), i.id) for i in all_images(store) if i.names]
    else:
        infos = all_images(store)
        named = by_name(infos)
        picked: dict[str, SourceImage] = {}
        for text in wanted:
            info, ref = find_image(store, text, infos, named)
            img = picked.setdefault(info.digest, SourceImage(info.image.descriptor, [], info.id))
            names = [ref] if ref is not None else list(info.names)
            img.names += [n for n in names if n not in img.names]
        chosen = list(picked.values())
    if not args.no_attached:
        chosen += attachments_of(store, chosen)
    return StoreSource(store, chosen), chosen
