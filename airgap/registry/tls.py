"""CA certificates a registry is trusted by (``--ca-cert``, the site CA)."""

from __future__ import annotations

import ssl

from ..errors import AirgapError


def load_ca(ctx: ssl.SSLContext, path: str, given: str) -> None:
    """Trust the CA certificates in ``path``; refuse a file that holds none (a trust
    setting that finds no key fails, it is not skipped). ``given`` names where the path
    came from, for the message."""
    try:
        ctx.load_verify_locations(cafile=path)
    except OSError as exc:  # ssl.SSLError too: no certificate in it
        raise AirgapError(f"{given} {path}: cannot read a CA certificate from it "
                          f"({exc.strerror or getattr(exc, 'reason', None) or exc})") from None
