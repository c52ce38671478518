"""search: repositories this host knows, in Docker's columns."""

from __future__ import annotations

import argparse
from collections.abc import Container

from ..errors import InvalidReference, UsageError
from ..words import is_number, printable
from .context import Context, int_arg, path_arg, stable_read
from .format import ellipsis

DESCRIPTION_LABEL = "org.opencontainers.image.description"
SEARCH_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                  "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}


def register(sub: argparse._SubParsersAction, verbs: Container[str]) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("search", help="search the repositories this host knows")
    p.add_argument("term", metavar="TERM")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="is-official=true|false, stars=N")
    p.add_argument("--limit", type=int_arg, default=25, help="at most this many results (1-100)")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate descriptions")
    p.add_argument("--format", help="Go template, 'table TEMPLATE', or 'json'")
    p.add_argument("--registry", metavar="HOST", help="also search HOST's /v2/_catalog")
    p.add_argument("--ca-cert", type=path_arg, help="CA certificate to trust for the registry")
    p.set_defaults(func=cmd_search)


def _filters(items: list[str]) -> tuple[bool | None, int]:
    official: bool | None = None
    stars = 0
    for item in items:
        key, _, value = item.partition("=")
        if key == "is-official" and value in ("true", "false"):
            official = value == "true"
        elif key == "stars" and is_number(value):
            stars = int(value)
        elif key == "is-automated" and value in ("true", "false"):
            if value == "true":
                stars = 1 << 62  # nothing here is an automated build
        else:
            raise UsageError(f"invalid filter '{item}'")
    return official, stars


def known_repositories(ctx: Context, args: argparse.Namespace) -> dict[str, tuple[str, bool]]:
    """Familiar name -> (description, official), newest image's description first."""
    from ..reference import parse_reference
    from ..store.query import all_images
    from .images import newest_first
    repos: dict[str, tuple[str, bool]] = {}
    for info in newest_first(all_images(ctx.store)):
        for n in info.names:
            if n.familiar_name not in repos or not repos[n.familiar_name][0]:
                repos[n.familiar_name] = (info.labels.get(DESCRIPTION_LABEL, ""), n.is_official)
    if args.registry:
        from ..registry.client import RegistryClient
        client = RegistryClient(args.registry, ca_cert=args.ca_cert)
        try:
            listed = client.catalog()
        finally:
            client.close()
        invalid = []
        for path in listed:
            try:
                ref = parse_reference(f"{args.registry}/{path}")
            except InvalidReference:
                invalid.append(path)
                continue
            repos.setdefault(ref.familiar_name, ("", ref.is_official))
        for path in invalid[:5]:
            ctx.info(f"WARNING: {args.registry}: ignored the repository name {path[:300]!r} "
                     "its catalog lists: not a valid name")
        if len(invalid) > 5:
            ctx.info(f"WARNING: {args.registry}: ignored {len(invalid) - 5} more invalid names")
    return repos


@stable_read
def cmd_search(ctx: Context, args: argparse.Namespace) -> int:
    from .images import render
    if not 1 <= args.limit <= 100:
        raise UsageError(f"limit {args.limit} is outside the range of [1, 100]")
    official, stars = _filters(args.filter)
    term = args.term.lower()
    rows = []
    for name, (desc, is_official) in sorted(known_repositories(ctx, args).items()):
        if term not in name.lower() and term not in desc.lower():
            continue
        if official is not None and official != is_official:
            continue
        if stars > 0:
            continue  # no stars offline
        desc = desc.replace("\r", " ").replace("\n", " ")
        if args.format is None:  # the table is for a terminal: a label from an archive must not
            desc = printable(desc)  # retitle or clear it (--format output is data, as Docker's)
        rows.append({"Name": name, "Description": desc if args.no_trunc else ellipsis(desc, 45),
                     "StarCount": "0", "IsOfficial": "[OK]" if is_official else "",
                     "IsAutomated": ""})
    rows = rows[: args.limit]
    render(ctx, args.format or "table {{.Name}}\\t{{.Description}}\\t{{.StarCount}}\\t{{.IsOfficial}}",
           rows, SEARCH_HEADERS)
    return 0
