"""Verbs that talk to registries: pull, push, login, logout, serve."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Container

from ..errors import UsageError
from ..words import is_port, plural
from .context import Context, jobs_arg, name_arg, path_arg
from . import report

MAX_PASSWORD = 64 << 10  # characters of --password-stdin (a token is a few KiB)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..copy import Plan
    from ..store import Store, Transaction


def register(sub: argparse._SubParsersAction, verbs: Container[str]) -> None:  # type: ignore[type-arg]
    if "pull" in verbs:
        p = sub.add_parser("pull", help="copy images from a registry into the store")
        p.add_argument("refs", nargs="*", metavar="NAME[:TAG|@DIGEST]")
        p.add_argument("-f", "--file", metavar="LIST", type=path_arg, help="also the images a list names (one per line, # comments)")
        p.add_argument("--no-attached", action="store_true",
                       help="leave signatures, SBOMs and attestations attached to the images behind")
        plat = p.add_mutually_exclusive_group()
        plat.add_argument("--platform", help="OS/ARCH[/VARIANT] to take from a multi-platform image")
        plat.add_argument("--all-platforms", action="store_true", help="keep the index and every platform")
        p.add_argument("-q", "--quiet", action="store_true", help="print only the image reference")
        p.add_argument("--ca-cert", type=path_arg, help="CA certificate to trust for the registry")
        report.add_format(p)
        p.set_defaults(func=cmd_pull)

    if "push" in verbs:
        p = sub.add_parser("push", help="copy images from the store (or a bundle) to a registry")
        p.add_argument("source", metavar="SRC", nargs="?", type=name_arg, help="the image (with --all or -f: DEST)")
        p.add_argument("dest", nargs="?", metavar="DEST", type=name_arg,
                       help="registry/repository[:tag] (default: SRC); with --all or -f: registry[:port][/prefix]")
        p.add_argument("--all", action="store_true", help="every named image of the store (or of the bundle, -i)")
        p.add_argument("-f", "--file", metavar="LIST", type=path_arg, help="the images a list names (one per line, # comments)")
        p.add_argument("-i", "--input", metavar="BUNDLE", type=path_arg, help="push from a bundle, after the trust checks of load")
        p.add_argument("--jobs", type=jobs_arg, default=4, help="images pushed at once (default 4, at most 64)")
        p.add_argument("--no-attached", action="store_true",
                       help="leave the signatures, SBOMs and attestations attached to the images behind")
        p.add_argument("--trust", action="append", default=[], metavar="PUBKEY", type=path_arg, help="as for load")
        p.add_argument("--require-signature", action="store_true", help="as for load")
        p.add_argument("--insecure-skip-signature", action="store_true", help="as for load")
        p.add_argument("-q", "--quiet", action="store_true", help="print only the digest")
        p.add_argument("--ca-cert", type=path_arg, help="CA certificate to trust for the registry")
        report.add_format(p)
        p.set_defaults(func=cmd_push)

    if "login" in verbs:
        p = sub.add_parser("login", help="save credentials for a registry in ~/.docker/config.json")
        p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
        p.add_argument("-u", "--username")
        p.add_argument("-p", "--password")
        p.add_argument("--password-stdin", action="store_true")
        p.add_argument("--ca-cert", type=path_arg, help="CA certificate to trust for the registry")
        p.set_defaults(func=cmd_login)

    if "logout" in verbs:
        p = sub.add_parser("logout", help="remove saved credentials for a registry")
        p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
        p.set_defaults(func=cmd_logout)

    if "serve" in verbs:
        p = sub.add_parser("serve", help="serve the store read-only over the OCI distribution API")
        p.add_argument("--addr", default="127.0.0.1:5000", metavar="HOST:PORT")
        p.add_argument("--tls-cert", metavar="FILE", type=path_arg)
        p.add_argument("--tls-key", metavar="FILE", type=path_arg)
        p.set_defaults(func=cmd_serve)


def cmd_pull(ctx: Context, args: argparse.Namespace) -> int:
    from ..copy import copy
    from ..digest import short_id
    from ..oci import parse_platform
    from ..reference import Reference, parse_reference
    from ..registry.client import RegistryClient
    from ..transports.base import Platforms
    from ..transports.registry import RegistrySource
    from ..transports.store import StoreSink
    from .progress import make_progress
    store = ctx.store
    platform = parse_platform(args.platform) if args.platform else None
    quiet = args.quiet or args.format == "json"
    pulled: list[dict[str, object]] = []
    if args.file:
        from .delivery import read_list
        args.refs = [*args.refs, *read_list(args.file)]
    if not args.refs:
        raise UsageError("pull needs an image (or -f LIST)")
    for text in args.refs:
        ref = parse_reference(text)
        if ref.tag is None and ref.digest is None:
            if not quiet:
                ctx.print(f"Using default tag: {ref.with_default_tag().tag}")
            ref = ref.with_default_tag()
        client = RegistryClient(ref.domain, ca_cert=args.ca_cert)
        try:
            if not quiet:
                ctx.print(f"{ref.digest or ref.tag}: Pulling from {ref.path}")
            source = RegistrySource(client, ref, with_attached=not args.no_attached)
            before = store.resolve_name(ref)
            with store.begin() as txn:
                result = copy(source, StoreSink(txn, check_diff_ids=True), platform=platform,
                              platforms=Platforms.ALL if args.all_platforms else Platforms.HOST,
                              progress=make_progress(ctx.progress_mode, "Pulling"),
                              before=_space_check(store, txn, f"pull {ref.familiar()}"))
        finally:
            client.close()
        shown = Reference(ref.domain, ref.path, ref.tag, ref.digest)
        if args.format == "json":
            pulled.append({"reference": str(shown), "digest": source.top.digest,
                           "images": report.images(result.plan), **report.transfer(result)})
            continue
        if args.quiet:
            ctx.print(str(shown))
            continue
        skipped = set(result.skipped)
        for img in result.plan.images:
            if img.subject is not None:
                continue  # signatures and SBOMs: counted below
            for im in img.manifests:
                for layer in im.manifest.layers:
                    state = "Already exists" if layer.digest in skipped else "Pull complete"
                    ctx.print(f"{short_id(layer.digest)}: {state}")
        extras = [img for img in result.plan.images if img.subject is not None]
        if extras:
            ctx.print(f"Attached: {plural(len(extras), 'artifact')} (signatures, SBOMs, attestations)")
        ctx.print(f"Digest: {source.top.digest}")
        new = result.added or before is None or before.digest != result.plan.images[0].descriptor.digest
        status = "Downloaded newer image for" if new else "Image is up to date for"
        ctx.print(f"Status: {status} {shown.familiar()}")
        ctx.print(str(shown))
    if args.format == "json":
        report.emit(ctx, {"pulled": pulled})
    return 0


def _space_check(store: Store, txn: Transaction, what: str) -> Callable[[Plan], None]:
    """Before a pull writes: refuse when what it adds does not fit in the store."""
    from ..copy import bytes_to_add
    from ..space import check_space
    return lambda p: check_space(store.root, bytes_to_add(p, txn.has_blob), what)


def cmd_push(ctx: Context, args: argparse.Namespace) -> int:
    from ..copy import copy
    from ..digest import short_id
    from ..reference import parse_reference
    from ..registry.client import RegistryClient
    from ..store.query import find_image
    from ..transports.base import SourceImage
    from ..oci import INDEX_TYPES, MANIFEST_TYPES
    from ..transports.base import Outcome
    from ..transports.registry import RegistrySink
    from ..transports.store import StoreSource
    from .progress import make_progress
    if args.all or args.file or args.input:
        if args.input and not (args.all or args.file):
            raise UsageError("push -i BUNDLE needs --all or -f LIST")
        from .delivery import cmd_push_many
        return cmd_push_many(ctx, args)
    if not args.source:
        raise UsageError("push needs an image (or --all / -f LIST with a DEST)")
    store = ctx.store
    info, named = find_image(store, args.source)
    if args.dest:
        dest = parse_reference(args.dest)
    elif named is not None and not named.digest:
        dest = named
    else:
        raise UsageError(f"{args.source}: an image given by ID needs a DEST name to push to")
    if dest.digest:
        raise UsageError(f"{args.dest}: push to a tag, not a digest")
    dest = dest.with_default_tag()
    if not args.quiet and args.format != "json":
        ctx.print(f"The push refers to repository [{dest.name}]")
    mount_from = sorted({n.path for n in info.names if n.domain == dest.domain})
    client = RegistryClient(dest.domain, ca_cert=args.ca_cert)
    try:
        source = StoreSource(store, [SourceImage(info.image.descriptor, [dest], dest.familiar())])
        sink = RegistrySink(client, dest, mount_from, lambda d: store.open_blob(d.digest))
        result = copy(source, sink, progress=make_progress(ctx.progress_mode, "Pushing"))
    finally:
        client.close()
    top = result.plan.images[0].descriptor
    blobs = {d: o for d, o in result.outcomes.items()  # configs and layers: manifests are not blobs
             if result.plan.blobs[d].media_type not in (*MANIFEST_TYPES, *INDEX_TYPES)}
    if args.format == "json":
        counts = {o: sum(1 for x in blobs.values() if x is o) for o in Outcome}
        report.emit(ctx, {"reference": str(dest), "digest": top.digest, "size": top.size,
                          "blobs": {"pushed": counts[Outcome.ADDED], "mounted": counts[Outcome.MOUNTED],
                                    "existing": counts[Outcome.PRESENT]},
                          "images": report.images(result.plan)})
        return 0
    if args.quiet:
        ctx.print(top.digest)
        return 0
    words = {Outcome.ADDED: "Pushed", Outcome.PRESENT: "Layer already exists"}
    status = {d: words.get(o) or f"Mounted from {sink.mounted_from.get(d, '?')}" for d, o in blobs.items()}
    for img in result.plan.images:
        for im in img.manifests:
            for layer in reversed(im.manifest.layers):
                ctx.print(f"{short_id(layer.digest)}: {status.get(layer.digest, 'Layer already exists')}")
    ctx.print(f"{dest.tag}: digest: {top.digest} size: {top.size}")
    return 0


def cmd_login(ctx: Context, args: argparse.Namespace) -> int:
    import getpass

    from ..registry import auth
    from ..registry.client import RegistryClient
    host = args.server.removeprefix("https://").removeprefix("http://").rstrip("/")
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = "docker.io"
    user = args.username
    if args.password_stdin:
        if args.password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        # all of stdin less one line end, as docker login reads it; with a cap (it may be /dev/zero)
        try:
            password = sys.stdin.read(MAX_PASSWORD + 1)
        except UnicodeDecodeError:
            password = "\udcff"  # said below
        if len(password) > MAX_PASSWORD:
            raise UsageError(f"--password-stdin: more than {MAX_PASSWORD} characters on standard input")
        password = password.removesuffix("\n").removesuffix("\r")
    else:
        password = args.password
        if password is not None:  # as docker login says it
            ctx.info("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not user:
        if not sys.stdin.isatty():
            raise UsageError("give -u USERNAME (no terminal to ask on)")
        user = input("Username: ")
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError("give --password-stdin or -p (no terminal to ask on)")
        password = getpass.getpass("Password: ")
    for what, text in (("the username", user), ("the password", password)):
        try:
            text.encode()
        except UnicodeEncodeError:
            raise UsageError(f"{what} is not UTF-8 text") from None
    creds = auth.Credentials(user, password)
    client = RegistryClient(host, ca_cert=args.ca_cert, credentials=creds)
    try:
        client.ping()
    finally:
        client.close()
    where = auth.store(host, creds)
    ctx.info(f"Credentials saved in {where}")
    ctx.print("Login Succeeded")
    return 0


def cmd_logout(ctx: Context, args: argparse.Namespace) -> int:
    from ..registry import auth
    host = args.server.removeprefix("https://").removeprefix("http://").rstrip("/")
    if auth.erase(host):
        ctx.print(f"Removing login credentials for {host}")
    else:
        ctx.print(f"Not logged in to {host}")
    return 0


def cmd_serve(ctx: Context, args: argparse.Namespace) -> int:
    from ..registry.server import serve
    host, sep, port = args.addr.rpartition(":")
    if not sep or not is_port(port):
        raise UsageError(f"--addr {args.addr!r}: expected HOST:PORT (a port from 0 to 65535)")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    serve(ctx.store, host.strip("[]") or "0.0.0.0", int(port), args.tls_cert, args.tls_key, ctx.err)
    return 0

