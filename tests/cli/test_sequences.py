"""Random walks over the store's verbs (seeded, so a failure replays): after every step the
store passes `store check`, every listed image inspects, and every bundle a save writes
verifies and loads into a second store that passes `store check` too.

The store holds plain images, a multi-platform index and an image with an attached
signature: `store check` once took a signature's empty config for a damaged image config,
which only a store holding one, checked after a load, showed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ..builders import Image, desc, image, index_entry, oci_archive, referrer
from ..conftest import Airgap, write_tree

from airgap.digest import sha256_digest
from airgap.oci import OCI_INDEX, OCI_MANIFEST, canonical_json

NAMES = ["multi:1", "signed:1", "a:1", "a:2", "b:1", "example/c:latest", "reg.local:5000/d/e:3"]
STEPS = 40


def _archives(tmp_path: Path) -> list[tuple[Path, list[str]]]:
    amd = image({"amd": b"amd64" * 100}, config={"architecture": "amd64"})
    arm = image({"arm": b"arm64" * 100}, config={"architecture": "arm64"})
    raw = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        desc(OCI_MANIFEST, amd.manifest, platform={"os": "linux", "architecture": "amd64"}),
        desc(OCI_MANIFEST, arm.manifest, platform={"os": "linux", "architecture": "arm64"})]})
    multi = Image(raw, {**amd.blobs, **arm.blobs, sha256_digest(raw): raw})
    entry = {**desc(OCI_INDEX, raw), "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"}}
    signed = image({"s": b"signed" * 50})
    sig = referrer(signed.manifest, "sig")
    return [(oci_archive(tmp_path / "multi.tar", [multi], [entry]), ["multi:1"]),
            (oci_archive(tmp_path / "signed.tar", [signed, sig],
                         [index_entry(signed, "docker.io/library/signed:1"), index_entry(sig)]), ["signed:1"])]


def _names(airgap: Airgap) -> list[str]:
    out = airgap("images", "--format", "{{.Repository}}:{{.Tag}}").out.split()
    return [n for n in out if not n.endswith(":<none>")]


def _consistent(airgap: Airgap, after: tuple[str, ...]) -> None:
    res = airgap("store", "check", ok=False)
    assert res.code == 0 and res.out.startswith("OK: "), (after, res.out, res.err)
    ids = airgap("images", "-aq", "--no-trunc").out.split()
    if ids:
        assert len(json.loads(airgap("inspect", *ids).out)) == len(ids), after
    airgap("system", "df", "-v")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_walk_keeps_the_store_whole(seed: int, make_airgap, tmp_path: Path) -> None:
    rng = random.Random(seed)
    airgap, site = make_airgap("store"), make_airgap("site")
    contexts = [write_tree(tmp_path / f"ctx{i}", {f"f{i}": str(i) * 1000 * (i + 1)}) for i in range(3)]
    bundles = _archives(tmp_path)
    for step in range(STEPS):
        have = _names(airgap)
        op = rng.choice(["import", "import", "tag", "rmi", "rmi", "prune", "save", "load", "load"])
        args: tuple[str, ...]
        if op == "import":
            base = ("--base", rng.choice(have)) if have and rng.random() < 0.4 else ()
            args = ("import", str(rng.choice(contexts)), rng.choice(NAMES), *base)
        elif op == "tag" and have:
            args = ("tag", rng.choice(have), rng.choice(NAMES))
        elif op == "rmi" and have:
            args = ("rmi", *(["-f"] if rng.random() < 0.5 else []), rng.choice(have))
        elif op == "prune":
            args = rng.choice([("image", "prune", "-f"), ("image", "prune", "-a", "-f"), ("system", "prune", "-f")])
        elif op == "save" and have:
            bundle = tmp_path / f"b{step}.tar"
            images = rng.sample(have, k=min(len(have), rng.randint(1, 3)))
            args = ("save", "-o", str(bundle), *images)
            if rng.random() < 0.3:
                args += ("--compress", rng.choice(["gzip", "zstd"]))
            if rng.random() < 0.3:
                inventory = tmp_path / f"inv{step}.json"
                site("inventory", "-o", str(inventory))
                args += ("--exclude-from", str(inventory))
        elif op == "load":
            bundle, images = rng.choice(bundles)
            args = ("load", "-i", str(bundle))
            if rng.random() < 0.2:
                args += ("--platform", rng.choice(["linux/amd64", "linux/arm64"]))
        else:
            continue
        res = airgap(*args, ok=False)
        assert res.code in (0, 1), (args, res.err)  # 1: a conflict (rmi), no such platform
        _consistent(airgap, args)
        if op == "save" and res.code == 0:
            bundles.append((bundle, images))
            airgap("verify", str(bundle))
            loaded = site("load", "-i", str(bundle), ok=False)
            assert loaded.code in (0, 1), (args, loaded.err)  # 1: a delta whose layers the site lost
            _consistent(site, ("site", *args))
        elif op == "load" and res.code == 0:
            assert set(images) <= set(_names(airgap)), (args, _names(airgap))
