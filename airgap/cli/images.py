"""Verbs over the store alone: images, inspect, tag, rmi."""

from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any

from ..errors import AirgapError, Conflict, NotFound, UsageError
from ..reference import Reference, parse_reference
from ..store.gc import collect_garbage
from ..store.layout import Store, entry_name
from ..store.query import ImageInfo, all_images, find_image
from .context import Context
from .format import human_size, parse_time, since, table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("images", help="list stored images")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--all", action="store_true", help="show all images (no effect: no intermediates)")
    p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    p.add_argument("--no-trunc", action="store_true", help="full image IDs")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.set_defaults(func=cmd_images)

    p = sub.add_parser("inspect", help="show stored images as JSON")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("tag", help="give a stored image another name")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("rmi", help="untag and remove images")
    p.add_argument("-f", "--force", action="store_true", help="remove an image that has several names")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_rmi)


def sorted_images(store: Store) -> list[ImageInfo]:
    infos = all_images(store)
    def key(info: ImageInfo) -> tuple[float, str]:
        t = parse_time(info.created)
        return (t.timestamp() if t else 0.0, info.id)
    return sorted(infos, key=key, reverse=True)


def _rows(infos: list[ImageInfo], pattern: Reference | None) -> list[tuple[ImageInfo, str, str]]:
    rows = []
    for info in infos:
        names = sorted(info.names, key=lambda n: n.familiar())
        if pattern is not None:
            names = [n for n in names if n.name == pattern.name and (pattern.tag is None or n.tag == pattern.tag)]
            if not names:
                continue
        if not names:
            rows.append((info, "<none>", "<none>"))
        for n in names:
            rows.append((info, n.familiar_name, n.tag or "<none>"))
    return rows


def cmd_images(ctx: Context, args: argparse.Namespace) -> int:
    pattern = parse_reference(args.repository) if args.repository else None
    rows = _rows(sorted_images(ctx.store), pattern)
    def image_id(info: ImageInfo) -> str:
        return info.id if args.no_trunc else info.id[7:19]
    if args.quiet:
        seen: list[str] = []
        for info, _, _ in rows:
            if image_id(info) not in seen:
                seen.append(image_id(info))
        for i in seen:
            ctx.print(i)
        return 0
    header = ["REPOSITORY", "TAG", *(["DIGEST"] if args.digests else []), "IMAGE ID", "CREATED", "SIZE"]
    out = [header]
    for info, repo, tag in rows:
        digest = ["<none>"] if args.digests else []
        out.append([repo, tag, *digest, image_id(info), since(info.created), human_size(info.size)])
    ctx.print(table(out))
    return 0


def inspect_doc(info: ImageInfo) -> dict[str, Any]:
    cfg = info.config
    doc: dict[str, Any] = {
        "Id": info.id,
        "RepoTags": [n.familiar() for n in sorted(info.names, key=lambda n: n.familiar())],
        "RepoDigests": [],
        "Parent": "",
        "Comment": _comment(cfg),
        "Created": cfg.get("created", ""),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": cfg.get("config") or None,
        "Architecture": cfg.get("architecture", ""),
    }
    if cfg.get("variant"):
        doc["Variant"] = cfg["variant"]
    doc.update({
        "Os": cfg.get("os", ""),
        "Size": info.size,
        "RootFS": {"Type": (cfg.get("rootfs") or {}).get("type", "layers"),
                   "Layers": list((cfg.get("rootfs") or {}).get("diff_ids") or [])},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": info.image.descriptor.to_json(),
    })
    return doc


def _comment(cfg: dict[str, Any]) -> str:
    history = cfg.get("history") or []
    return str(history[-1].get("comment", "")) if history and isinstance(history[-1], dict) else ""


def cmd_inspect(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    infos = all_images(store)
    docs, status = [], 0
    for text in args.images:
        try:
            docs.append(inspect_doc(find_image(store, text, infos)[0]))
        except NotFound:
            ctx.info(f"Error: No such object: {text}")
            status = 1
    ctx.print(json.dumps(docs, indent=4))
    return status


def cmd_tag(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    target = parse_reference(args.target)
    if target.digest:
        raise UsageError(f"refusing to create a tag with a digest reference: {args.target}")
    target = target.with_default_tag()
    with store.begin() as txn:
        info = find_image(store, args.source)[0]
        txn.add_name(info.image.descriptor, target)
        txn.commit()
    return 0


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def cmd_rmi(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    status = 0
    with store.lock():
        for text in args.images:
            try:
                for line in _remove(store, text, args.force):
                    ctx.print(line)
            except AirgapError as exc:
                msg = str(exc)
                ctx.info(f"Error: {msg}" if isinstance(exc, NotFound) else f"Error response from daemon: {msg}")
                status = 1
        collect_garbage(store)
    return status


def _remove(store: Store, text: str, force: bool) -> list[str]:
    """Untag ``text`` or delete the image it names; return Docker's output lines."""
    infos = all_images(store)
    info, ref = find_image(store, text, infos)
    entries = store.entries()
    lines: list[str] = []
    if ref is not None and ref in info.names and not ref.digest:
        untag = [ref]
    else:
        repos = {n.name for n in info.names}
        if len(repos) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {info.id[7:19]} (must be forced) - "
                           "image is referenced in multiple repositories")
        untag = list(info.names)
    keep = [e for e in entries if not (e.digest == info.digest and entry_name(e) in untag)]
    lines += [f"Untagged: {n.familiar()}" for n in untag]
    remaining = [e for e in keep if e.digest == info.digest]
    if not any(entry_name(e) is not None for e in remaining):
        keep = [e for e in keep if e.digest != info.digest]
        lines += _deleted_lines(info, [i for i in infos if i.digest != info.digest])
    store.write_entries(keep)
    return lines


def _deleted_lines(info: ImageInfo, others: list[ImageInfo]) -> list[str]:
    if any(o.id == info.id for o in others):
        return []  # another manifest of the same image ID keeps it
    used: set[str] = set()
    for o in others:
        try:
            used.update(chain_ids(list((o.config.get("rootfs") or {}).get("diff_ids") or [])))
        except AirgapError:
            continue
    lines = [f"Deleted: {info.id}"]
    for cid in reversed(chain_ids(list((info.config.get("rootfs") or {}).get("diff_ids") or []))):
        if cid in used:
            break
        lines.append(f"Deleted: {cid}")
    return lines
