"""Seeded, structure-aware fuzzing of `load`: archives whose documents are hostile but
whose digests all agree (what anyone can make without a key: the configs, manifests and
index of two images sharing a base layer, gzip and plain layers under swapped media
types, a multi-platform index, an attached signature), each mutated a few times.

For every archive: `verify` and `load` agree (exit 0 or 3, nothing else); a refused load
leaves the store as it was, file for file; what loads passes `store check`, loads again,
and its save verifies in full and loads elsewhere with the same image IDs. (A session's
run of thousands of these found a plain tar listed as gzip that loaded and then could not
be saved, and gzip bytes listed as a plain tar that loaded though Docker refuses them.)"""

from __future__ import annotations

import copy
import gzip
import random
from pathlib import Path
from typing import Any

import pytest

from airgap.digest import sha256_digest
from airgap.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST, canonical_json

from ..builders import layer_tar, tar_of
from ..conftest import Airgap, snapshot

CASES = 40
ODD: list[Any] = [None, True, 0, -1, 1 << 70, 1.5, "", "a", "../../etc/passwd", "sha256:" + "0" * 64, "sha256:" + "A" * 64,
       "\u202e", [], {}, [1], {"a": 1}, OCI_INDEX, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP,
       "application/vnd.oci.image.layer.v1.tar+zstd", "latest", "a:b:c", "localhost:5000/x:y"]
KEYS = ["urls", "annotations", "platform", "subject", "manifests", "layers", "mediaType", "size", "digest"]


def _mutate(rng: random.Random, doc: Any, digests: list[str]) -> Any:
    """``doc`` with one thing changed somewhere: a value replaced (by an odd one or another
    blob's digest), a key dropped, added or spelled in another case, a list item dropped,
    repeated or multiplied."""
    if isinstance(doc, dict) and doc and rng.random() < 0.8:
        out = dict(doc)
        key = rng.choice(sorted(out))
        op = rng.random()
        if op < 0.2:
            del out[key]
        elif op < 0.3:
            out[key.upper() if key != key.upper() else key.lower()] = out[key]
        elif op < 0.4:
            out[rng.choice(KEYS)] = rng.choice(ODD + digests)
        else:
            out[key] = _mutate(rng, out[key], digests)
        return out
    if isinstance(doc, list) and doc and rng.random() < 0.8:
        items = list(doc)
        i = rng.randrange(len(items))
        op = rng.random()
        if op < 0.2:
            del items[i]
        elif op < 0.4:
            items.insert(rng.randrange(len(items) + 1), copy.deepcopy(items[i]))
        elif op < 0.5:
            items = items * rng.choice([2, 20])
        else:
            items[i] = _mutate(rng, items[i], digests)
        return items
    return copy.deepcopy(rng.choice(ODD + digests))


def _archive(rng: random.Random, path: Path) -> None:
    """Two images on one base layer, every document built after its mutations so that all
    digests agree; sometimes an index over both, sometimes a signature on the first."""
    targets = [rng.choice(["config", "manifest", "index", "entries"]) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
    blobs: dict[str, bytes] = {}
    digests: list[str] = []

    def add(raw: bytes) -> str:
        blobs[sha256_digest(raw)] = raw
        digests.append(sha256_digest(raw))
        return sha256_digest(raw)

    def maybe(doc: Any, what: str) -> Any:
        for t in targets:
            if t == what and rng.random() < 0.6:
                doc = _mutate(rng, doc, digests)
        return doc
    base = layer_tar({"base": bytes(rng.randrange(256) for _ in range(64)) * 40})
    manifests = []
    for k in range(2):
        tars = [base, layer_tar({f"f{k}": b"x" * (k + 1)})]
        layers = []
        for t in tars:
            if rng.random() < 0.3:
                blob, media_type = gzip.compress(t, mtime=0), rng.choice([OCI_LAYER_GZIP, OCI_LAYER])
            else:
                blob, media_type = t, rng.choice([OCI_LAYER] * 4 + [OCI_LAYER_GZIP])
            layers.append({"mediaType": media_type, "digest": add(blob), "size": len(blob)})
        diff_ids = [sha256_digest(t) if rng.random() < 0.75 else layers[i]["digest"] for i, t in enumerate(tars)]
        config = maybe({"architecture": ["amd64", "arm64"][k], "os": "linux", "created": "2024-01-01T00:00:00Z",
                        "config": {"Env": ["A=1"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}, "config")
        raw = canonical_json(config)
        manifest = maybe({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layers,
                          "config": {"mediaType": OCI_CONFIG, "digest": add(raw), "size": len(raw)}}, "manifest")
        raw = canonical_json(manifest)
        manifests.append({"mediaType": OCI_MANIFEST, "digest": add(raw), "size": len(raw),
                          "annotations": {"io.containerd.image.name": f"docker.io/example/img{k}:1"}})
    entries = manifests
    if rng.random() < 0.3:
        children = [{**{k: v for k, v in m.items() if k != "annotations"},
                     "platform": {"os": "linux", "architecture": arch}} for m, arch in zip(manifests, ["amd64", "arm64"])]
        raw = canonical_json(maybe({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, "manifest"))
        entries = [{"mediaType": OCI_INDEX, "digest": add(raw), "size": len(raw),
                    "annotations": {"io.containerd.image.name": "docker.io/example/multi:1"}}]
    if rng.random() < 0.3:
        empty, signature = b"{}", b'{"critical":{}}'
        art = maybe({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                     "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                     "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": add(empty), "size": 2},
                     "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                                 "digest": add(signature), "size": len(signature)}],
                     "subject": {k: manifests[0][k] for k in ("mediaType", "digest", "size")}}, "manifest")
        raw = canonical_json(art)
        entries = [*entries, {"mediaType": OCI_MANIFEST, "digest": add(raw), "size": len(raw)}]
    entries = maybe(entries, "entries")
    index = maybe({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, "index")
    path.write_bytes(tar_of([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", canonical_json(index)),
                             *((f"blobs/sha256/{d[7:]}", b) for d, b in sorted(blobs.items()))]))


@pytest.mark.parametrize("seed", range(4))
def test_hostile_documents_are_refused_whole_or_loaded_whole(seed: int, make_airgap: Any, tmp_path: Path) -> None:
    rng = random.Random(seed)
    for case in range(CASES):
        path = tmp_path / f"a{case}.tar"
        _archive(rng, path)
        here: Airgap = make_airgap(f"s{case}")
        here("images")
        before = snapshot(here.store)
        mode = rng.choice(["fast", "full"])
        checked = here("verify", "--verify", mode, str(path), ok=False)
        loaded = here("load", "--verify", mode, "-i", str(path), ok=False)
        what = f"seed {seed} case {case}: {loaded.err}"
        assert loaded.code in (0, 3) and "internal error" not in loaded.err, what
        assert checked.code == loaded.code, (what, checked.err)
        if loaded.code:
            assert snapshot(here.store) == before, what
            continue
        here("store", "check")
        here("load", "-i", str(path))
        ids = here("images", "-q", "--no-trunc").out.split()
        if not ids:  # what loaded is an attached artifact alone, its image left out
            continue
        bundle = tmp_path / f"b{case}.tar"
        saved = here("save", "-o", str(bundle), *ids, ok=False)
        if saved.code:  # only what a fast load lets in and a save must refuse: a lying diff_id
            assert mode == "fast" and saved.code == 3 and "diff_id" in saved.err, (what, saved.err)
            continue
        there: Airgap = make_airgap(f"t{case}")
        there("verify", "--verify", "full", str(bundle))
        there("load", "-i", str(bundle))
        assert sorted(set(there("images", "-q", "--no-trunc").out.split())) == sorted(set(ids)), what
        there("store", "check")
