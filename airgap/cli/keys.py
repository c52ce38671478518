"""key generate / key list."""

from __future__ import annotations

import argparse
from collections.abc import Container

from .context import Context, path_arg
from .format import table


def register(sub: argparse._SubParsersAction, verbs: Container[str]) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("key", help="Ed25519 signing keys")
    ksub = p.add_subparsers(dest="key_command", metavar="COMMAND")
    ksub.required = True
    g = ksub.add_parser("generate", help="write NAME.key (private, 0600) and NAME.pub")
    g.add_argument("name", metavar="NAME", type=path_arg)
    g.set_defaults(func=cmd_generate)
    ls = ksub.add_parser("list", help="show the trusted public keys and their fingerprints")
    ls.add_argument("--trust", action="append", default=[], metavar="PUBKEY", type=path_arg)
    ls.set_defaults(func=cmd_list)


def cmd_generate(ctx: Context, args: argparse.Namespace) -> int:
    from ..signing import generate_key
    key, pub, fp, encrypted = generate_key(args.name)
    if not encrypted:
        ctx.info(f"WARNING: {key} is NOT encrypted (no passphrase): anyone who can read the file "
                 "can sign bundles. Set AIRGAP_KEY_PASSPHRASE or answer the prompt to encrypt it.")
    ctx.print(f"Private key: {key} (keep it on the packaging side; mode 0600)")
    ctx.print(f"Public key:  {pub} (copy it to /etc/airgap/trust.d/ on the hosts that load)")
    ctx.print(f"Fingerprint: {fp}")
    return 0


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    from ..signing import SYSTEM_TRUST_DIR, TRUST_ENV, TrustPolicy
    policy = TrustPolicy.load(args.trust)
    if not policy.keys:
        ctx.info(f"no trusted keys (looked at --trust, ${TRUST_ENV} and {SYSTEM_TRUST_DIR})"
                 + (f"; a trusted signature is required ({policy.required}): nothing will load"
                    if policy.required else ""))
        return 0
    rows = [["FINGERPRINT", "FILE"]] + [[fp, src] for fp, (_, src) in sorted(policy.keys.items())]
    ctx.print(table(rows))
    return 0
