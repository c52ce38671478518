"""``--format json`` of the transfer verbs: one JSON document of what was done."""

from __future__ import annotations

import argparse
import json

from .context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..copy import CopyResult, Plan
    from ..signing import TrustResult


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="json: one JSON document on stdout, and nothing else")


def images(plan: Plan) -> list[dict[str, Any]]:
    return [{
        "references": [str(n) for n in img.names if not n.digest],
        "repoDigests": [str(n) for n in img.names if n.digest],
        "digest": img.descriptor.digest,
        "mediaType": img.descriptor.media_type,
        "id": img.host_manifest.manifest.config.digest,
        "platforms": [str(m.platform) for m in img.manifests],
    } for img in plan.images]


def transfer(result: CopyResult) -> dict[str, Any]:
    return {"blobs": {"total": len(result.plan.blobs), "added": len(result.added),
                      "skipped": len(result.skipped)},
            "bytes": {"total": result.plan.total_bytes, "added": result.bytes_added,
                      "skipped": result.bytes_skipped}}


def trust(t: TrustResult) -> dict[str, Any]:
    return {"status": t.status, "signer": t.signer or None, "trustedKey": t.source or None}


def emit(ctx: Context, doc: dict[str, Any]) -> None:
    ctx.print(json.dumps(doc, indent=2, sort_keys=True))
