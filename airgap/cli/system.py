"""image prune, system prune, system df, store check."""

from __future__ import annotations

import argparse
from collections.abc import Container
import sys

from ..errors import StoreCorrupt
from .context import Context, stable_read
from .format import human_size, since, table
from ..words import plural


def register_image_prune(isub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = isub.add_parser("prune", help="remove dangling images and the blobs only they used")
    p.add_argument("-a", "--all", action="store_true", help="remove every image without a tag")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_image_prune)


def register(sub: argparse._SubParsersAction, verbs: Container[str]) -> None:  # type: ignore[type-arg]
    if "system" in verbs:
        system = sub.add_parser("system", help="store-wide space: df, prune")
        ssub = system.add_subparsers(dest="system_command", metavar="COMMAND")
        ssub.required = True
        p = ssub.add_parser("prune", help="remove dangling images, unreferenced blobs, stale temp files")
        p.add_argument("-a", "--all", action="store_true", help="remove every image without a tag")
        p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
        p.set_defaults(func=cmd_system_prune)
        p = ssub.add_parser("df", help="show the space images use and what sharing saves")
        p.add_argument("-v", "--verbose", action="store_true", help="per image: shared and unique size")
        p.set_defaults(func=cmd_df)

    if "store" in verbs:
        store = sub.add_parser("store", help="the store itself")
        stsub = store.add_subparsers(dest="store_command", metavar="COMMAND")
        stsub.required = True
        p = stsub.add_parser("check", help="re-hash every blob and check every reference")
        p.set_defaults(func=cmd_check)


def confirm(ctx: Context, warning: str) -> bool:
    """Docker's prompt: the answer is read from stdin; anything but y/yes is no."""
    ctx.out.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    ctx.out.flush()
    answer = sys.stdin.readline()
    if not sys.stdin.isatty():
        ctx.out.write("\n")  # the answer came from a pipe: end the prompt's line
    return answer.strip().lower() in ("y", "yes")


def _prune(ctx: Context, args: argparse.Namespace, warning: str, system: bool) -> int:
    from ..store.gc import clean_temp, prune_images
    if not args.force and not confirm(ctx, warning):
        ctx.info("Cancelled: nothing was removed.")
        ctx.print("Total reclaimed space: 0B")
        return 0
    store = ctx.store
    with store.lock():
        events, freed = prune_images(store, args.all)
        if system:
            freed += clean_temp(store)
    if events:
        ctx.print("Deleted Images:")
        for kind, value in events:
            ctx.print(f"{kind}: {value}")
        ctx.print()
    ctx.print(f"Total reclaimed space: {human_size(freed)}")
    return 0


def cmd_image_prune(ctx: Context, args: argparse.Namespace) -> int:
    what = "all images without at least one tag" if args.all else "all dangling images"
    return _prune(ctx, args, f"WARNING! This will remove {what}.", system=False)


def cmd_system_prune(ctx: Context, args: argparse.Namespace) -> int:
    what = "all images without at least one tag" if args.all else "all dangling images"
    warning = (f"WARNING! This will remove:\n  - {what}\n  - all blobs no image references\n"
               "  - all temporary files of interrupted loads\n")
    return _prune(ctx, args, warning, system=True)


@stable_read
def cmd_df(ctx: Context, args: argparse.Namespace) -> int:
    from ..store.gc import reachable, temp_files, without_orphaned_attachments
    from ..store.query import all_images
    store = ctx.store
    infos = all_images(store)
    users: dict[str, int] = {}
    for info in infos:
        for d in set(info.layer_digests):
            users[d] = users.get(d, 0) + 1
    # what prune keeps: every stored image and what is attached to one (not an attachment alone)
    keep = reachable(store, (e.digest for e in without_orphaned_attachments(store, store.entries())), strict=False)
    blob_sizes = {d: store.blob_size(d) for d in store.all_blobs()}
    leftovers = sum(size for _, size in temp_files(store))  # what system prune also removes
    total = sum(blob_sizes.values()) + leftovers
    reclaim = sum(s for d, s in blob_sizes.items() if d not in keep) + leftovers
    dangling = [i for i in infos if not i.names]
    dangling_layers = {d for i in dangling for d in i.layer_digests}
    named_layers = {d for i in infos if i.names for d in i.layer_digests}
    reclaim += sum(blob_sizes.get(d, 0) for d in dangling_layers - named_layers)
    pct = f" ({100 * reclaim // total}%)" if total else ""
    rows = [["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
            ["Images", str(len(infos)), str(len(infos) - len(dangling)), human_size(total),
             human_size(reclaim) + pct]]
    if not args.verbose:
        ctx.print(table(rows))
        return 0
    ctx.print("Images space usage:\n")
    out = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"]]
    from .images import newest_first
    for info in newest_first(infos):
        first = info.tags[0] if info.tags else None
        shared = sum(s for d, s in zip(info.layer_digests, (l.size for l in info.manifest.layers))
                     if users.get(d, 0) > 1)
        out.append([first.familiar_name if first else "<none>", first.tag or "<none>" if first else "<none>",
                    info.id[7:19], since(info.created), human_size(info.size), human_size(shared),
                    human_size(info.size - shared), "0"])
    ctx.print(table(out))
    ctx.print(f"\nBlobs: {len(blob_sizes)}, {human_size(total)} on disk; layers shared by several "
              f"images are stored once")
    return 0


def cmd_check(ctx: Context, args: argparse.Namespace) -> int:
    from ..store.check import check_store
    with ctx.store.lock(shared=True):  # rmi and prune wait: a blob they remove is not damage
        report = check_store(ctx.store)
    for problem in report.problems:
        ctx.print(f"DAMAGED: {problem}")
    summary = (f"{plural(report.images, 'image')}, {plural(report.blobs, 'blob')}, {human_size(report.bytes)} re-hashed "
               f"in {ctx.store.root}")
    if report.unreferenced:
        n = len(report.unreferenced)
        ctx.info(f"note: {plural(n, 'blob')} ({human_size(sum(report.unreferenced.values()))}) "
                 f"{'is' if n == 1 else 'are'} referenced by no image (left by an interrupted change); "
                 f"`airgap system prune` removes {'it' if n == 1 else 'them'}")
    if report.problems:
        raise StoreCorrupt(f"{plural(len(report.problems), 'problem')} found; {summary}. Repair damaged blobs "
                           "with `airgap load --repair -i BUNDLE` from a bundle that holds them; "
                           "`airgap rmi` and `system prune` remove the rest")
    ctx.print(f"OK: {summary}")
    return 0
