"""``mirror-config``: the node configuration that resolves unchanged image names
(``docker.io/library/nginx:1.25``) to the site registry that ``push --all`` fed."""

from __future__ import annotations

import argparse
from collections.abc import Container
import json
from pathlib import Path

from ..errors import UsageError
from .context import Context, path_arg

UPSTREAM = {"docker.io": "https://registry-1.docker.io"}


def register(sub: argparse._SubParsersAction, verbs: Container[str]) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("mirror-config", help="node configuration that pulls through the site registry")
    p.add_argument("kind", choices=("containerd", "docker", "podman", "k3s"))
    p.add_argument("--registry", required=True, metavar="DEST", help="registry[:port][/prefix], as given to push --all")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--insecure", action="store_true", help="the site registry serves plain HTTP")
    tls.add_argument("--ca-cert", metavar="FILE", type=path_arg, help="the CA certificate of the site registry")
    p.add_argument("-o", "--output", metavar="DIR", type=path_arg, help="write the files under DIR (default: print them)")
    p.add_argument("--upstream", action="append", default=[], metavar="REGISTRY",
                   help="registries to mirror (default: those the store's names come from)")
    p.set_defaults(func=cmd_mirror_config)


def cmd_mirror_config(ctx: Context, args: argparse.Namespace) -> int:
    from .delivery import parse_dest
    host, prefix = parse_dest(args.registry)
    for up in args.upstream:  # each becomes a file name under -o DIR and a quoted word in it
        if parse_dest(up) != (up, ""):
            raise UsageError(f"--upstream {up!r}: a registry host[:port], without a path")
    upstreams = args.upstream or sorted({n.domain for img in ctx.store.images() for n in img.names}) or ["docker.io"]
    scheme = "http" if args.insecure else "https"
    ca = str(Path(args.ca_cert).resolve()) if args.ca_cert else None
    if ca is not None and not ca.isprintable():
        raise UsageError(f"--ca-cert {ca!r}: a file name with control characters cannot be written "
                         "into node configuration")
    if ca is not None:  # a node told to trust a file that holds no CA would fail at its first pull
        import ssl
        from ..registry.tls import load_ca
        load_ca(ssl.create_default_context(), ca, "--ca-cert")
    files = {"containerd": _containerd, "docker": _docker, "podman": _podman, "k3s": _k3s}[args.kind](
        host, prefix, scheme, ca, upstreams, ctx)
    if args.output:
        out = Path(args.output)
        for rel, text in files.items():
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            ctx.info(f"wrote {path}")
    else:
        for rel, text in files.items():
            ctx.print(f"# {rel}\n{text}")
    return 0


def _quoted(text: str) -> str:
    """A printable string as a TOML basic string and a YAML double-quoted scalar: both
    read JSON's escapes of ``"`` and ``\\``."""
    return json.dumps(text, ensure_ascii=False)


def _containerd(host: str, prefix: str, scheme: str, ca: str | None, upstreams: list[str],
                ctx: Context) -> dict[str, str]:
    """``certs.d/<upstream>/hosts.toml`` (containerd's config_path, ctr --hosts-dir)."""
    out = {}
    for up in upstreams:
        url = f"{scheme}://{host}" + (f"/v2/{prefix}" if prefix else "")
        lines = [f'server = "{UPSTREAM.get(up, "https://" + up)}"', "", f'[host."{url}"]',
                 '  capabilities = ["pull", "resolve"]']
        if prefix:
            lines.append("  override_path = true")
        if ca:
            lines.append(f"  ca = {_quoted(ca)}")
        out[f"{up}/hosts.toml"] = "\n".join(lines) + "\n"
    return out


def _podman(host: str, prefix: str, scheme: str, ca: str | None, upstreams: list[str],
            ctx: Context) -> dict[str, str]:
    """``registries.conf.d/50-airgap-mirror.conf`` (containers-registries.conf(5))."""
    lines = ["# written by airgap mirror-config: pull through the site registry"]
    for up in upstreams:
        lines += ["", "[[registry]]", f'prefix = "{up}"', f'location = "{up}"', "",
                  "[[registry.mirror]]", f'location = "{host}{"/" + prefix if prefix else ""}"']
        if scheme == "http":
            lines.append("insecure = true")
    if ca:
        ctx.info(f"podman reads CAs from /etc/containers/certs.d/{host}/ca.crt: copy {ca} there")
    return {"registries.conf.d/50-airgap-mirror.conf": "\n".join(lines) + "\n"}


def _k3s(host: str, prefix: str, scheme: str, ca: str | None, upstreams: list[str],
         ctx: Context) -> dict[str, str]:
    """``registries.yaml`` for k3s and RKE2 (mirrors, with a rewrite for the prefix)."""
    lines = ["mirrors:"]
    for up in upstreams:
        lines += [f'  "{up}":', "    endpoint:", f'      - "{scheme}://{host}"']
        if prefix:
            lines += ["    rewrite:", f'      "^(.*)$": "{prefix}/$1"']
    if ca or scheme == "http":
        lines += ["configs:", f'  "{host}":', "    tls:"]
        lines.append(f"      ca_file: {_quoted(ca)}" if ca else "      insecure_skip_verify: true")
    return {"registries.yaml": "\n".join(lines) + "\n"}


def _docker(host: str, prefix: str, scheme: str, ca: str | None, upstreams: list[str],
            ctx: Context) -> dict[str, str]:
    """``daemon.json``: Docker mirrors Docker Hub only, and only at a registry's root."""
    if prefix:
        raise UsageError("Docker's registry-mirrors must be a registry's root: push --all without a "
                         "prefix for Docker nodes, or use containerd/podman/k3s configuration")
    others = [u for u in upstreams if u != "docker.io"]
    if others:
        ctx.info(f"note: Docker's registry-mirrors apply to Docker Hub only; images from "
                 f"{', '.join(others)} must be pulled by their site name ({host}/...)")
    doc: dict[str, list[str]] = {"registry-mirrors": [f"{scheme}://{host}"]}
    if scheme == "http":
        doc["insecure-registries"] = [host]
    if ca:
        ctx.info(f"Docker reads CAs from /etc/docker/certs.d/{host}/ca.crt: copy {ca} there")
    return {"daemon.json": json.dumps(doc, indent=2) + "\n"}
