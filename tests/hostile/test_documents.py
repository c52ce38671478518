"""Issue 10: documents and names from outside, and no expensive work before trust."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airgap.digest import sha256_digest
from airgap.oci import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, canonical_json

from ..builders import archive_with_field, desc, image, index_entry, layer_tar, members_of, oci_archive, resign, tar_of
from ..conftest import Airgap, need, snapshot
from .limits import load_from_file_and_pipe, refused, run_airgap


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


@pytest.mark.parametrize("where", ["index.json", "manifest", "config"])
def test_deeply_nested_json(tmp_path: Path, where: str) -> None:
    img = image({"a": b"a"})
    if where == "index.json":
        path = oci_archive(tmp_path / "a.tar", [img], index=b'{"manifests": ' + _deep(100_000) + b"}")
    else:
        bad = b'{"schemaVersion": 2, "x": ' + _deep(50_000) + b"}"
        target = img.digest if where == "manifest" else img.config_digest
        blobs = dict(img.blobs)
        blobs[target] = bad  # stored under the old name: the digest check comes first...
        entry = index_entry(img, "docker.io/library/deep:1")
        if where == "manifest":  # ...so make the index point at the deep document honestly
            blobs.pop(target)
            blobs[sha256_digest(bad)] = bad
            entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                     "digest": sha256_digest(bad), "size": len(bad),
                     "annotations": {"io.containerd.image.name": "docker.io/library/deep:1"}}
        img.blobs = blobs
        path = oci_archive(tmp_path / "a.tar", [img], [entry])
    run = run_airgap(tmp_path / "s", "load", "-i", str(path))
    refused(run, "nested too deeply" if where != "config" else "")


def test_json_nesting_is_bounded_the_same_wherever_it_is_read(airgap: Airgap, tmp_path: Path) -> None:
    """Python's JSON reader stops ~1,000 deep less the calls above it: a config 985 deep
    loaded, and then `images` (which reads it deeper in the stack) refused the whole
    store's listing as damaged. Nesting is bounded at 200 wherever a document is read:
    refused at load, the store unchanged; 150 deep loads, lists, and prints."""
    from airgap.cli.govalues import go_value
    airgap("images")
    before = snapshot(airgap.store)
    from ..builders import Image
    layer = layer_tar({"a": b"a"})
    for depth, ok in ((985, False), (250, False), (150, True)):  # written as bytes: too deep for this stack
        config = (b'{"architecture":"amd64","config":{"X":' + _deep(depth) + b'},"os":"linux",'
                  b'"rootfs":{"diff_ids":["' + sha256_digest(layer).encode() + b'"],"type":"layers"}}')
        manifest = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                   "config": desc("application/vnd.oci.image.config.v1+json", config),
                                   "layers": [desc(OCI_LAYER, layer)]})
        img = Image(manifest, {sha256_digest(x): x for x in (config, layer, manifest)})
        path = oci_archive(tmp_path / f"deep{depth}.tar", [img], [index_entry(img, f"docker.io/example/deep:{depth}")])
        res = airgap("load", "-i", str(path), ok=ok)
        if not ok:
            assert res.code == 3 and ("JSON nested more than 200 deep" in res.err or depth > 900), res.err
            assert "JSON nested" in res.err, res.err  # (985 may stop Python's reader first, here in pytest)
            assert snapshot(airgap.store) == before
    assert "example/deep" in airgap("images").out
    # inspect shows Docker's container config, which has no field X (Docker drops it too)
    assert airgap("inspect", "-f", "{{.Config.Env}} {{len .RootFS.Layers}}", "example/deep:150").out == "[] 1\n"
    assert '"X"' not in airgap("inspect", "example/deep:150").out
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    assert go_value(deep) == "[" * 5001 + "]" * 5001  # Go's %v with a stack, not recursion


def test_deeply_nested_bundle_json_and_signature(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    from airgap.signing import generate_key
    key, pub, _, _ = generate_key(str(tmp_path / "k"))
    bundle = tmp_path / "b.tar"
    airgap("save", "--sign", str(key), "-o", str(bundle), three_images[0])
    members = members_of(bundle)
    for member in ("airgap/bundle.json", "airgap/bundle.json.sig"):
        bad = tmp_path / "bad.tar"
        bad.write_bytes(tar_of([(n, _deep(100_000) if n == member else d) for n, d in members]))
        for trust in ([], ["--trust", str(pub)]):
            run = run_airgap(tmp_path / "s", "load", "-i", str(bad), *trust)
            refused(run, member)


@pytest.mark.parametrize("field,value", [
    ("RepoTags", "abc"), ("RepoTags", [1]), ("Layers", "blobs/x"), ("Layers", [7]), ("Config", 5),
])
def test_wrong_json_types_in_manifest_json(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                           field: str, value: Any) -> None:
    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), three_images[0])
    members = [(n, d) for n, d in members_of(bundle) if not n.startswith("airgap/") and n != "index.json"]
    doc = json.loads(dict(members)["manifest.json"])
    doc[0][field] = value
    bad = tmp_path / "bad.tar"
    bad.write_bytes(tar_of([(n, json.dumps(doc).encode() if n == "manifest.json" else d) for n, d in members]))
    airgap("images")
    before = snapshot(airgap.store)
    other = Airgap(tmp_path / "other", airgap.capsys)
    res = other("load", "-i", str(bad), ok=False)
    assert res.code == 3 and "manifest.json" in res.err, res.err
    assert not (tmp_path / "other" / "index.json").exists() or other("images", "-q").out == ""
    assert snapshot(airgap.store) == before


def test_wrong_json_types_in_descriptors(tmp_path: Path) -> None:
    img = image({"a": b"a"})
    for bad_entry in ({**index_entry(img), "size": "12"}, {**index_entry(img), "mediaType": 5},
                      {**index_entry(img), "annotations": {"io.containerd.image.name": ["x"]}},
                      {**index_entry(img), "platform": "linux/amd64"}):
        path = oci_archive(tmp_path / "a.tar", [img], [bad_entry])
        refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "index.json")


@pytest.mark.parametrize("where,field,value,says", [
    ("manifest", "schemaVersion", {"v": 2}, "'schemaVersion' must be an integer"),
    ("manifest", "schemaVersion", 2.0, "'schemaVersion' must be an integer"),
    ("manifest", "annotations", {"a": 1}, "'annotations' must be an object of strings"),
    ("manifest", "artifactType", 5, "'artifactType' must be a string"),
    ("manifest", "subject", {"digest": "sha256:" + "0" * 64, "size": 1, "urls": "http://x"}, "'urls' must be a list"),
    ("layer", "urls", [1], "'urls' must be a list of strings"),
    ("layer", "data", "not base64!", "'data' must be base64 text"),
    ("layer", "artifactType", [], "'artifactType' must be a string"),
    ("entry", "platform", {"os": "linux", "architecture": "amd64", "os.features": "x"},
     "'platform.os.features' must be a list of strings"),
    ("entry", "platform", {"os": "linux", "architecture": "amd64", "variant": 8}, "'platform.variant' must be a string"),
    ("index.json", "schemaVersion", "2", "'schemaVersion' must be an integer"),
])
def test_documents_of_types_go_cannot_read_are_refused(tmp_path: Path, where: str, field: str, value: Any,
                                                       says: str) -> None:
    """containerd decodes manifests, indexes, descriptors and platforms into typed structs
    (``cannot unmarshal object into Go struct field Index.schemaVersion of type int``, found
    by a differential fuzz with ``ctr images import``): refused on load, not stored."""
    path = archive_with_field(tmp_path / "a.tar", where, field, value)
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), says)


@pytest.mark.parametrize("field,value,says", [
    ("history", 5, "'history' must be a list"),
    ("history", [7], "'history[0]' must be an object"),
    ("history", [{"created_by": ["sh"]}], "'history[0].created_by' must be a string"),
    ("history", [{"empty_layer": "yes"}], "'history[0].empty_layer' must be true or false"),
    ("os", 1, "'os' must be a string"),
    ("created", {"at": 1}, "'created' must be an RFC 3339 time"),
    ("config", "Env=1", "'config' must be an object"),
    ("rootfs", {"type": 7, "diff_ids": []}, "'rootfs.type' must be a string"),
    ("os.features", "sse4", "'os.features' must be a list of strings"),
    ("created", "yesterday", "'created' must be an RFC 3339 time"),
    ("created", "2024-01-01T00:00:00+24:00", "'created' must be an RFC 3339 time"),
    ("history", [{"created": "2023-02-29T00:00:00Z"}], "'history[0].created' must be an RFC 3339 time"),
    ("Size", 1.0, "'Size' must be an integer"),
    ("config", {"Env": "A=1"}, "'config.Env' must be a list of strings"),
    ("config", {"Cmd": "sh"}, "'config.Cmd' must be a list of strings"),  # Docker takes it, containerd not
    ("container_config", {"Labels": {"a": 1}}, "'container_config.Labels' must be an object of strings"),
    ("config", {"ExposedPorts": {"80/tcp": "x"}}, "'config.ExposedPorts' must be an object of objects"),
    ("config", {"Tty": 1}, "'config.Tty' must be true or false"),
    ("config", {"User": 0}, "'config.User' must be a string"),
    ("config", {"StopTimeout": 2 ** 63}, "'config.StopTimeout' must be an integer"),
    ("config", {"Healthcheck": {"Interval": 1e9}}, "'config.Healthcheck.Interval' must be an integer"),
    ("config", {"Healthcheck": {"TEST": ["x"]}}, "spelled another way"),
    ("history", [{"created_by": "a"}, {"created_by": "b", "empty_layer": False}], "too many non-empty layers"),
    ("os", "linux/amd64", "a platform component is letters"),
])
def test_a_config_of_mistyped_fields_is_refused(tmp_path: Path, field: str, value: Any, says: str) -> None:
    """A config whose digest is right but whose fields Docker could not read (its loader
    fails to unmarshal them): refused on load, not stored to fail ``inspect`` later."""
    layers = [layer_tar({"a": b"a"})]
    cfg = {field: value}
    if field == "rootfs":
        cfg = {"rootfs": {**value, "diff_ids": [sha256_digest(layers[0])]}}
    img = image(layers=layers, config=cfg)
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/typed:1")])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), says)
    assert not (tmp_path / "s" / "blobs" / "sha256" / sha256_digest(layers[0])[7:]).exists()


def test_a_config_with_every_field_docker_writes_loads(tmp_path: Path) -> None:
    """null stands for an absent field; the types Docker writes are all taken."""
    img = image(config={"history": [{"created": "2024-01-01T00:00:00Z", "created_by": "COPY . /", "empty_layer": False,
                                     "author": "me", "comment": "buildkit"}, {"empty_layer": True}],
                        "container_config": {"Env": ["A=1"]}, "config": None, "variant": None, "os.version": "10",
                        "os.features": ["x"], "docker_version": None, "author": None, "parent": "", "id": None})
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/typed:1")])
    run = run_airgap(tmp_path / "s", "load", "-i", str(path))
    assert run.code == 0, run.err
    run = run_airgap(tmp_path / "s", "inspect", "example/typed:1")
    doc = json.loads(run.out)[0]
    assert run.code == 0 and doc["Comment"] == "" and doc["Author"] == doc["DockerVersion"] == "", run.err


@pytest.mark.parametrize("declared", ["example/base:1", OCI_INDEX, DOCKER_LIST, ""])
def test_a_manifest_of_another_kind_than_its_descriptor_says_is_refused(tmp_path: Path, declared: str) -> None:
    """containerd reads a blob as what its descriptor declares: an image manifest listed
    as an index (or as nothing known) would be stored under a type no runtime can use."""
    img = image({"a": b"a"})
    path = oci_archive(tmp_path / "a.tar", [img], [{**index_entry(img, "docker.io/example/kind:1"),
                                                     "mediaType": declared}])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "its descriptor says media type")


def test_a_docker_manifest_listed_as_an_oci_one_loads(tmp_path: Path) -> None:
    """The same kind under the other family's name reads alike (containerd takes it)."""
    img = image({"a": b"a"})
    doc = json.loads(img.manifest)
    doc["mediaType"] = DOCKER_MANIFEST
    raw = json.dumps(doc).encode()
    blobs = {**img.blobs, sha256_digest(raw): raw}
    entry = {"mediaType": OCI_MANIFEST, "digest": sha256_digest(raw), "size": len(raw),
             "annotations": {"io.containerd.image.name": "docker.io/example/kind:1"}}
    path = tmp_path / "a.tar"
    path.write_bytes(tar_of([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                             ("index.json", json.dumps({"schemaVersion": 2, "manifests": [entry]}).encode()),
                             *((f"blobs/sha256/{d[7:]}", b) for d, b in blobs.items())]))
    run = run_airgap(tmp_path / "s", "load", "-i", str(path))
    assert run.code == 0 and "Loaded image: example/kind:1" in run.out, run.err



@pytest.mark.parametrize("also_as_tar", [False, True], ids=["alone", "also-listed-as-tar"])
def test_a_plain_layer_listed_as_gzip_is_read_as_the_tar_it_is(tmp_path: Path, also_as_tar: bool) -> None:
    """Docker, containerd and skopeo tell a layer's compression by its first bytes, so a
    plain tar listed as ``tar+gzip`` loads in Docker (tests/interop): here it loads, saves
    (decompressing nothing) and loads again under --verify full; alone, and when another
    image lists the same blob as the plain tar it is. Reading it as gzip loaded it and
    then refused every save of it."""
    from airgap.oci import OCI_LAYER_GZIP
    tar = layer_tar({"a": b"a" * 3000})
    labelled = image(layers=[tar], layer_type=OCI_LAYER_GZIP, config={"author": "gz"})
    images, entries = [labelled], [index_entry(labelled, "docker.io/example/gz:1")]
    if also_as_tar:
        plain = image(layers=[tar])
        images, entries = [plain, labelled], [index_entry(plain, "docker.io/example/tar:1"), *entries]
    path = oci_archive(tmp_path / "a.tar", images, entries)
    run = run_airgap(tmp_path / "s", "load", "-i", str(path))
    assert run.code == 0 and "Loaded image: example/gz:1" in run.out, run.err
    bundle = tmp_path / "b.tar"
    run = run_airgap(tmp_path / "s", "save", "-o", str(bundle), "example/gz:1")
    assert run.code == 0, run.err
    listed = json.loads(dict(members_of(bundle))["airgap/bundle.json"])["blobs"]
    layer = next(b for b in listed if b["digest"] == sha256_digest(tar))
    assert (layer["mediaType"], layer["diffID"], layer["uncompressedSize"]) == (OCI_LAYER_GZIP, sha256_digest(tar), len(tar))
    run = run_airgap(tmp_path / "s2", "load", "--verify", "full", "-i", str(bundle))
    assert run.code == 0 and "Loaded image: example/gz:1" in run.out, run.err


@pytest.mark.parametrize("case", ["alone", "stored", "gzip-listing-first"])
def test_a_compressed_layer_listed_as_a_plain_tar_is_refused(tmp_path: Path, case: str) -> None:
    """gzip bytes listed as a plain tar, the config giving their digest as the diff_id:
    Docker and containerd go by the bytes, decompress them and refuse the image (see
    tests/interop), so airgap refuses it too, before anything is stored: the blob new,
    already in the store (from an honest image), or listed as gzip by another image first."""
    from airgap.oci import OCI_LAYER_GZIP
    tar = layer_tar({"a": b"a" * 3000})
    gz = gzip.compress(tar, mtime=0)
    liar = image(layers=[gz], diff_ids=[sha256_digest(gz)], config={"author": "liar"})
    images, entries = [liar], [index_entry(liar, "docker.io/example/liar:1")]
    if case == "stored":
        honest = image(layers=[gz], diff_ids=[sha256_digest(tar)], layer_type=OCI_LAYER_GZIP)
        path = oci_archive(tmp_path / "h.tar", [honest], [index_entry(honest, "docker.io/example/honest:1")])
        assert run_airgap(tmp_path / "s", "load", "-i", str(path)).code == 0
    if case == "gzip-listing-first":  # its config agrees (fast verify does not decompress)
        first = image(layers=[gz], diff_ids=[sha256_digest(gz)], layer_type=OCI_LAYER_GZIP)
        images, entries = [first, liar], [index_entry(first, "docker.io/example/first:1"), *entries]
    run_airgap(tmp_path / "s", "images")
    before = snapshot(tmp_path / "s")
    path = oci_archive(tmp_path / "a.tar", images, entries)
    for verb in (["verify"], ["load", "-i"]):  # verify says what a load would
        refused(run_airgap(tmp_path / "s", *verb, str(path)), sha256_digest(gz)[7:19],
                "listed as an uncompressed layer", "gzip-compressed", "example/liar:1")  # the listing that lies
    assert snapshot(tmp_path / "s") == before


def test_store_check_finds_a_compressed_layer_stored_as_a_plain_tar(tmp_path: Path) -> None:
    """A store an airgap older than the layer check filled may hold gzip bytes listed as a
    plain tar (a reload does not read stored layers again): `store check` reads every image
    layer's first bytes against its listing, and names the one that lies."""
    from airgap.oci import OCI_MANIFEST, Descriptor
    from airgap.reference import parse_reference
    from airgap.store import Store
    gz = gzip.compress(layer_tar({"a": b"a" * 3000}), mtime=0)
    liar, honest = image(layers=[gz], diff_ids=[sha256_digest(gz)], config={"author": "old"}), image()
    store = Store(tmp_path / "s")
    with store.begin() as txn:  # as an older airgap stored it: no layer check
        for img, name in ((liar, "example/old:1"), (honest, "example/fine:1")):
            for digest, data in img.blobs.items():
                txn.put_bytes(data, Descriptor("application/octet-stream", digest, len(data)), "blob")
            txn.add_name(Descriptor(OCI_MANIFEST, sha256_digest(img.manifest), len(img.manifest)),
                         parse_reference(name))
        txn.commit()
    res = run_airgap(tmp_path / "s", "store", "check")
    damaged = [line for line in res.out.splitlines() if line.startswith("DAMAGED:")]
    assert res.code == 3 and len(damaged) == 1, (res.out, res.err)
    assert "example/old:1" in damaged[0] and sha256_digest(gz)[7:19] in damaged[0] \
        and "listed as an uncompressed layer" in damaged[0], damaged


@pytest.mark.parametrize("kind", ["bzip2", "xz"])
@pytest.mark.parametrize("listed_as", ["plain", "gzip"])
def test_a_bzip2_or_xz_layer_is_refused(tmp_path: Path, kind: str, listed_as: str) -> None:
    """OCI layers are tar, gzip or zstd. Docker decompresses a bzip2 or xz one, containerd
    cannot read it: its diff_id depends on the reader, so it is refused, by verify and by a
    default load, whatever media type it is listed under (its config giving the digest of
    its raw bytes, which is what a reader that does not decompress it would find)."""
    import bz2
    import lzma
    from airgap.oci import OCI_LAYER_GZIP
    tar = layer_tar({"a": b"a" * 3000})
    raw = bz2.compress(tar) if kind == "bzip2" else lzma.compress(tar)
    img = image(layers=[raw], diff_ids=[sha256_digest(raw)],
                layer_type=OCI_LAYER if listed_as == "plain" else OCI_LAYER_GZIP)
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/odd:1")])
    run_airgap(tmp_path / "s", "images")
    before = snapshot(tmp_path / "s")
    for verb in (["verify", "--verify", "fast"], ["verify"], ["load", "-i"]):
        refused(run_airgap(tmp_path / "s", *verb, str(path)), sha256_digest(raw)[7:19],
                f"its bytes are {kind}-compressed, which no image layer is")
    assert snapshot(tmp_path / "s") == before

def _lying(img: Any, layer_size: int | None = None, diff_id: str | None = None) -> Any:
    """``img`` with its manifest listing its layer at ``layer_size`` bytes, or its config
    giving the layer ``diff_id``: the digests all right, the claim false."""
    from ..builders import Image, desc
    manifest = json.loads(img.manifest)
    blobs = dict(img.blobs)
    if diff_id is not None:
        config = json.loads(blobs[manifest["config"]["digest"]])
        config["rootfs"]["diff_ids"] = [diff_id]
        raw = json.dumps(config).encode()
        blobs[sha256_digest(raw)] = raw
        manifest["config"] = desc(manifest["config"]["mediaType"], raw)
    if layer_size is not None:
        manifest["layers"][0]["size"] = layer_size
    raw = json.dumps(manifest).encode()
    blobs[sha256_digest(raw)] = raw
    return Image(raw, blobs)


def test_a_stored_layer_listed_at_another_size_is_refused(tmp_path: Path) -> None:
    """A layer the store has, listed at another size than the archive's member has: refused
    (the store would hold a manifest that lies); without the member, the archive is damaged.
    (A delta bundle's layer is checked against the stored blob: test_fail_closed.)"""
    layer = layer_tar({"a": b"a" * 3000})
    honest = image(layers=[layer])
    honest_path = oci_archive(tmp_path / "h.tar", [honest], [index_entry(honest, "docker.io/example/honest:1")])
    assert run_airgap(tmp_path / "s", "load", "-i", str(honest_path)).code == 0
    before = snapshot(tmp_path / "s")
    liar = _lying(image(layers=[layer], config={"author": "liar"}), layer_size=len(layer) - 512)
    path = oci_archive(tmp_path / "l.tar", [liar], [index_entry(liar, "docker.io/example/liar:1")])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)),  # the archive's member says it first
            f"member blobs/sha256/{sha256_digest(layer)[7:]}", f"size {len(layer)}, expected {len(layer) - 512}")
    del liar.blobs[sha256_digest(layer)]  # without the member: damage before any size is compared
    path = oci_archive(tmp_path / "l.tar", [liar], [index_entry(liar, "docker.io/example/liar:1")])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)),
            f"the archive has no member blobs/sha256/{sha256_digest(layer)[7:]}")
    assert snapshot(tmp_path / "s") == before


def test_one_layer_listed_at_two_sizes_is_refused(tmp_path: Path) -> None:
    layer = layer_tar({"a": b"a" * 3000})
    honest, liar = image(layers=[layer]), _lying(image(layers=[layer], config={"author": "x"}), layer_size=1)
    path = oci_archive(tmp_path / "a.tar", [honest, liar], [index_entry(honest, "docker.io/example/a:1"),
                                                            index_entry(liar, "docker.io/example/b:1")])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "is listed at", f"{sha256_digest(layer)}")


def test_one_layer_given_two_diff_ids_is_refused(tmp_path: Path) -> None:
    """A compressed layer has one diff_id: two configs that disagree cannot both be right,
    and only one would be checked (with --verify full)."""
    from airgap.oci import OCI_LAYER_GZIP
    tar = layer_tar({"a": b"a" * 3000})
    gz = gzip.compress(tar, mtime=0)
    one = image(layers=[gz], diff_ids=[sha256_digest(tar)], layer_type=OCI_LAYER_GZIP)
    two = _lying(image(layers=[gz], diff_ids=[sha256_digest(tar)], layer_type=OCI_LAYER_GZIP,
                       config={"author": "x"}), diff_id="sha256:" + "1" * 64)
    path = oci_archive(tmp_path / "a.tar", [one, two], [index_entry(one, "docker.io/example/a:1"),
                                                        index_entry(two, "docker.io/example/b:1")])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "diff_id", sha256_digest(tar))


def test_a_descriptor_whose_size_lies_is_refused(tmp_path: Path) -> None:
    """The right digest with the wrong size is a descriptor that lies: refused."""
    img = image({"a": b"a"})
    entry = index_entry(img)
    path = oci_archive(tmp_path / "a.tar", [img], [{**entry, "size": entry["size"] + 1}])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)),
            f"content does not match: size {entry['size']}, expected {entry['size'] + 1}")


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_an_archive_without_a_blob_it_names_is_refused_even_when_the_store_has_it(tmp_path: Path,
                                                                                    kind: str) -> None:
    """An archive that names a layer it does not hold is damaged (docker load refuses it),
    also when the store already has that layer from an earlier load: refused, naming the
    member, the store left as it was."""
    from ..builders import Image
    layer = layer_tar({"shared": b"shared layer"})
    first, second = image(layers=[layer], config={"comment": "1"}), image(layers=[layer], config={"comment": "2"})
    store = tmp_path / "s"
    assert run_airgap(store, "load", "-i", str(oci_archive(tmp_path / "1.tar", [first],
                                                                   [index_entry(first, "docker.io/x/one:1")]))).code == 0
    before = snapshot(store)
    lacking = Image(second.manifest, {d: b for d, b in second.blobs.items() if b != layer})
    if kind == "oci":
        path = oci_archive(tmp_path / "2.tar", [lacking], [index_entry(lacking, "docker.io/x/two:1")])
        says = f"the archive has no member blobs/sha256/{sha256_digest(layer)[7:]}"
    else:
        config = next(b for b in second.blobs.values() if b.startswith(b'{"architecture"'))
        manifest = [{"Config": "c.json", "RepoTags": ["x/two:1"], "Layers": ["l/layer.tar"]}]
        path = tmp_path / "2.tar"
        path.write_bytes(tar_of([("c.json", config), ("manifest.json", json.dumps(manifest).encode())]))
        says = "names layer l/layer.tar, which the archive does not have"
    refused(run_airgap(store, "load", "-i", str(path)), says)
    assert snapshot(store) == before


def test_a_size_beyond_the_disk_is_a_lie_not_a_full_disk(tmp_path: Path) -> None:
    """A layer descriptor claiming a petabyte for a member of 10 KiB: the tar header says
    the member's size, so the claim is damage (exit 3, the member named), not a store too
    small for it (exit 1)."""
    img = image({"a": b"a"})
    doc = json.loads(img.manifest)
    doc["layers"][0]["size"] = 10 ** 15
    img.manifest = canonical_json(doc)
    img.blobs[sha256_digest(img.manifest)] = img.manifest
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/big:1")])
    assert run_airgap(tmp_path / "s", "images").code == 0
    before = snapshot(tmp_path / "s")
    for _, run in load_from_file_and_pipe(tmp_path / "s", path):
        refused(run, f"member blobs/sha256/{doc['layers'][0]['digest'][7:]}", "layer",
                f"expected {10 ** 15}")
        assert snapshot(tmp_path / "s") == before


def test_split_parts_bound_the_sizes_bundle_json_claims(airgap: Airgap, three_images: list[str],
                                                       tmp_path: Path) -> None:
    """Split parts are read as a stream, but their size is known: a bundle.json whose
    blobs add up to more than the parts is refused before the space check, not taken for
    a full disk."""
    import hashlib as _h
    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), three_images[0])
    members = members_of(bundle)
    doc = json.loads(dict(members)["airgap/bundle.json"])
    layer = next(b for b in doc["blobs"] if "layer" in b["mediaType"])
    layer["size"] = layer["uncompressedSize"] = 10 ** 15
    whole = tar_of([(n, json.dumps(doc).encode() if n == "airgap/bundle.json" else d) for n, d in members])
    names = []
    for i in range(0, len(whole), 16 << 10):
        names.append(f"b2.tar.{i // (16 << 10) + 1:03d}")
        (tmp_path / names[-1]).write_bytes(whole[i:i + (16 << 10)])
    (tmp_path / "b2.tar.sha256").write_text("".join(
        f"{_h.sha256((tmp_path / n).read_bytes()).hexdigest()}  {n}\n" for n in names))
    assert len(names) > 1
    store = tmp_path / "s"
    assert run_airgap(store, "images").code == 0
    before = snapshot(store)
    refused(run_airgap(store, "load", "-i", str(tmp_path / names[0])), "bundle.json lists",
            f"more than the {len(whole)} bytes of its parts")
    assert snapshot(store) == before


def test_invalid_references_inside_archives_are_damage(airgap: Airgap, three_images: list[str],
                                                       tmp_path: Path) -> None:
    from airgap.signing import generate_key
    key, pub, _, _ = generate_key(str(tmp_path / "k"))
    bundle = tmp_path / "b.tar"
    airgap("save", "--sign", str(key), "-o", str(bundle), three_images[0])
    members = members_of(bundle)
    doc = json.loads(dict(members)["airgap/bundle.json"])
    doc["images"][0]["references"] = ["docker.io/UPPER/case:1"]
    bad = tmp_path / "bad.tar"
    bad.write_bytes(tar_of(resign(members, doc, key)))
    refused(run_airgap(tmp_path / "s", "load", "-i", str(bad), "--trust", str(pub)), "bundle.json")


@pytest.mark.parametrize("name,why", [
    ("docker.io/UPPER/app:1", "lowercase"), ("docker.io/a//b:1", "invalid reference"),
    ("docker.io/library/" + "x" * 300 + ":1", "255"), ("docker.io/library/app:1\n", "invalid reference"),
    ("docker.io/library/app:tãg", "invalid reference"),
    ("sha256:" + "0" * 64, "reads as an image ID"),
    ("docker.io/UPPER\x1b]0;owned\x07/app:1", "UPPER\\x1b]0;owned\\x07/app) must be lowercase"),
])
def test_ignored_names_are_said(tmp_path: Path, name: str, why: str) -> None:
    img = image({"a": b"a"})
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, name)])
    run = run_airgap(tmp_path / "s", "load", "-i", str(path))
    assert run.code == 0, run.err
    assert "ignored the name" in run.err and why in run.err, run.err
    assert "Loaded image ID" in run.out and "\x1b" not in run.err


def test_images_index_json_lists_beside_manifest_json_are_said(tmp_path: Path) -> None:
    """An archive with both lists: ``manifest.json`` is what ``docker load`` reads and what
    airgap loads; an image only ``index.json`` lists is named on stderr, not dropped in
    silence. An index whose platform manifest manifest.json lists is not (Docker 25+)."""
    a, b, c = image({"a": b"a"}), image({"b": b"b"}), image({"c": b"c"})
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": [desc(OCI_MANIFEST, c.manifest, platform={"architecture": "amd64", "os": "linux"})]})

    def docker_entry(img: Any, tag: str) -> dict[str, Any]:
        m = json.loads(img.manifest)
        return {"Config": f"blobs/sha256/{m['config']['digest'][7:]}", "RepoTags": [tag],
                "Layers": [f"blobs/sha256/{x['digest'][7:]}" for x in m["layers"]]}
    entries = [index_entry(a, "docker.io/library/a:1"), index_entry(b, "docker.io/library/b:1"),
               {**desc(OCI_INDEX, index), "annotations": {"io.containerd.image.name": "docker.io/library/c:1"}}]
    path = oci_archive(tmp_path / "both.tar", [a, b, c], entries, extra={
        "manifest.json": json.dumps([docker_entry(a, "a:1"), docker_entry(c, "c:1")]).encode(),
        f"blobs/sha256/{sha256_digest(index)[7:]}": index})
    run = run_airgap(tmp_path / "s", "load", "-i", str(path))
    assert run.code == 0, run.err
    assert run.err.count("WARNING") == 1 and f"{b.digest[:19]} (b:1)" in run.err, run.err
    assert "manifest.json does not: not loaded" in run.err
    assert sorted(run_airgap(tmp_path / "s", "images", "--format", "{{.Repository}}").out.split()) == ["a", "c"]
    # c:1 is the index's platform manifest, bytes kept (not one made up from manifest.json)
    assert json.loads(run_airgap(tmp_path / "s", "inspect", "c:1").out)[0]["Descriptor"]["digest"] == c.digest


def test_names_that_collide_after_normalization(tmp_path: Path) -> None:
    a, b, c = image({"a": b"a"}), image({"b": b"b"}), image({"c": b"c"})
    path = oci_archive(tmp_path / "a.tar", [a, b, c],
                       [index_entry(a, "nginx:1"), index_entry(b, "library/nginx:1"),
                        index_entry(c, "docker.io/library/nginx:1")])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "docker.io/library/nginx:1",
            "two different images")


def test_created_out_of_range_does_not_break_images(airgap: Airgap, tmp_path: Path) -> None:
    imgs = [image({"a": b"a"}, config={"created": "0000-01-01T00:00:00Z"}),
            image({"b": b"b"}, config={"created": "9999-12-31T23:59:59.999999999-23:59"}),
            image({"c": b"c"}, config={"created": "0001-01-01T00:00:00+23:59"}),
            image({"d": b"d"})]
    path = oci_archive(tmp_path / "a.tar", imgs, [index_entry(i, f"docker.io/library/t{n}:1") for n, i in enumerate(imgs)])
    airgap("load", "-i", str(path))
    out = airgap("images").out
    assert all(f"t{n} " in out for n in range(4)), out
    assert out.count("N/A") >= 2  # years Python cannot hold; the far future is "Less than a second ago", as Docker
    airgap("images", "--format", "{{.CreatedAt}}")
    airgap("inspect", "t0:1", "t1:1", "t2:1")


def test_the_documents_of_all_the_images_are_capped_together(tmp_path: Path) -> None:
    """Manifests and configs are held from planning to writing; each is at most 8 MiB, but
    a hundred 4 MiB configs held 850 MB. Together they may take 32 MiB (thousands of real
    images), more is refused, naming the image where the sum went over."""
    images = [image({"a": b"a"}, config={"comment": f"{i}" + "x" * (3 << 20)}) for i in range(12)]
    path = oci_archive(tmp_path / "fat.tar", images,
                       [index_entry(img, f"docker.io/example/fat{i}:1") for i, img in enumerate(images)])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path), timeout=60), "more than 32 MiB together",
            "config of image example/fat10:1")
    assert run_airgap(tmp_path / "s", "images", "-q").out == ""


def test_the_names_of_one_archive_are_capped_together(tmp_path: Path) -> None:
    """10,000 names an image, but 11 images of 10,000 names (a 2 MB manifest.json) would make
    the store's index.json list 110,000 names that every later command reads: refused
    before they are parsed, the store left as it was; 100,000 load."""
    img = image({"a": b"a"})
    config = next(b for b in img.blobs.values() if b.startswith(b'{"architecture"'))
    layer = next(b for b in img.blobs.values() if b != config and b != img.manifest)

    def archive(path: Path, entries: int) -> Path:
        manifest = [{"Config": "c.json", "Layers": ["l.tar"], "RepoTags": [f"x{e}/{i}:1" for i in range(10_000)]}
                    for e in range(entries)]
        path.write_bytes(tar_of([("c.json", config), ("l.tar", layer),
                                 ("manifest.json", json.dumps(manifest).encode())]))
        return path

    store = tmp_path / "s"
    assert run_airgap(store, "images", "-q").out == ""
    before = snapshot(store)
    refused(run_airgap(store, "load", "-i", str(archive(tmp_path / "many.tar", 11)), timeout=60),
            "manifest.json: more than 100000 image names in one archive")
    assert snapshot(store) == before
    res = run_airgap(store, "load", "-i", str(archive(tmp_path / "most.tar", 10)), timeout=120)
    assert res.code == 0, res.err
    assert len(run_airgap(store, "images", "--format", "{{.Repository}}", timeout=60).out.split()) == 100_000


def test_manifests_of_many_layers_are_held_compactly(tmp_path: Path) -> None:
    """Seven images of 20,000 layers each (one small blob, listed again and again) are
    31 MB of manifests and configs, under the cap; each layer's descriptor held two dicts
    of its own and its own copies of the digest and media type strings (144 MB at peak).
    Plain descriptors share them now, and the load stays under 100 MB."""
    from ..builders import Image
    layer = layer_tar({"a": b"a"})
    entry = desc(OCI_LAYER, layer)
    images = []
    for i in range(7):
        config = canonical_json({"architecture": "amd64", "os": "linux", "comment": str(i),
                                 "rootfs": {"type": "layers", "diff_ids": [entry["digest"]] * 20_000}})
        manifest = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                   "config": desc("application/vnd.oci.image.config.v1+json", config),
                                   "layers": [entry] * 20_000})
        images.append(Image(manifest, {sha256_digest(config): config, entry["digest"]: layer,
                                       sha256_digest(manifest): manifest}))
    path = oci_archive(tmp_path / "long.tar", images,
                       [index_entry(img, f"docker.io/example/long{i}:1") for i, img in enumerate(images)])
    run = run_airgap(tmp_path / "s", "load", "-i", str(path), timeout=120)
    assert run.code == 0, run.err
    assert run.max_rss_mb < 100, f"peak RSS {run.max_rss_mb:.0f} MB"


def test_documents_of_many_tiny_objects(tmp_path: Path) -> None:
    index = b'{"manifests": [' + b",".join([b"{}"] * 2_500_000) + b"]}"  # 7.5 MB
    path = oci_archive(tmp_path / "a.tar", [image({"a": b"a"})], index=index)
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "index.json", "JSON objects", seconds=10)


# -- no expensive work before trust ---------------------------------------------------------

@pytest.fixture
def policy(tmp_path: Path) -> list[str]:
    from airgap.signing import generate_key
    _, pub, _, _ = generate_key(str(tmp_path / "trusted"))
    return ["--trust", str(pub)]


def test_a_pipe_of_zeros_under_a_policy(tmp_path: Path, policy: list[str]) -> None:
    zeros = subprocess.Popen(["head", "-c", str(2 << 30), "/dev/zero"], stdout=subprocess.PIPE)
    assert zeros.stdout is not None
    try:
        run = run_airgap(tmp_path / "s", "load", *policy, stdin=zeros.stdout, timeout=60)
    finally:
        zeros.stdout.close()
        zeros.kill()
        zeros.wait()
    refused(run, "not an airgap bundle", seconds=5)
    assert list((tmp_path / "s" / ".tmp").iterdir()) == []


@pytest.mark.parametrize("archive", ["none", "foreign"])
def test_an_endless_pipe_without_a_policy(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                          archive: str) -> None:
    """A foreign archive on a pipe is spooled up to its end-of-archive marker: zeros after
    it (or instead of it) are not read to the end, nor spooled to the disk."""
    head = b""
    if archive == "foreign":
        bundle = tmp_path / "b.tar"
        airgap("save", "-o", str(bundle), three_images[0])
        head = tar_of([(n, d) for n, d in members_of(bundle) if not n.startswith("airgap/")])
    feed = subprocess.Popen([sys.executable, "-c", "import sys\nout = sys.stdout.buffer\nout.write(sys.stdin.buffer.read())\n"
                             "block = bytes(1 << 20)\nwhile True:\n    out.write(block)\n"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert feed.stdin is not None and feed.stdout is not None
    feed.stdin.write(head)
    feed.stdin.close()
    try:
        run = run_airgap(tmp_path / "s", "load", stdin=feed.stdout, timeout=60)
    finally:
        feed.stdout.close()
        feed.kill()
        feed.wait()
    if archive == "none":
        refused(run, "not an image archive", seconds=5)
    else:
        assert run.code == 0 and run.seconds < 10 and f"Loaded image: {three_images[0]}" in run.out, run.err
    assert list((tmp_path / "s" / ".tmp").iterdir()) == []


def test_a_foreign_archive_on_a_pipe_under_a_policy(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                    policy: list[str]) -> None:
    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), *three_images)
    foreign = tmp_path / "foreign.tar"
    foreign.write_bytes(tar_of([(n, d) for n, d in members_of(bundle) if not n.startswith("airgap/")]))
    cat = subprocess.Popen(["cat", str(foreign)], stdout=subprocess.PIPE)
    assert cat.stdout is not None
    try:
        run = run_airgap(tmp_path / "s", "load", *policy, stdin=cat.stdout)
    finally:
        cat.stdout.close()
        cat.wait()
    refused(run, "not an airgap bundle", seconds=5)


def test_a_7z_bomb_is_not_extracted(tmp_path: Path, policy: list[str]) -> None:
    """A small .7z whose tar would expand to 1 GiB: refused by its first bytes, not after."""
    import py7zr
    inner = tmp_path / "payload.tar"
    with open(inner, "wb") as f:
        f.write(tar_of([("blob", b"")])[:512])  # a tar header, then zeros
        f.truncate(1 << 30)
    packed = tmp_path / "bomb.7z"
    with py7zr.SevenZipFile(packed, "w") as z:
        z.write(inner, "payload.tar")
    inner.unlink()
    assert packed.stat().st_size < 1 << 20
    refused(run_airgap(tmp_path / "s", "load", "-i", str(packed), *policy, timeout=60), "not an airgap bundle",
            seconds=10)
    refused(run_airgap(tmp_path / "s", "load", "-i", str(packed), timeout=60), seconds=30)


def test_a_7z_that_inflates_past_what_gzip_can_is_refused(tmp_path: Path) -> None:
    """A .7z of a tar whose one member is 256 MiB of zeros (LZMA2 makes ~40 KB of it): the
    tar would be spooled to the disk whole, so past 1032 times the archive's size plus
    64 MiB it is refused as a bomb, as the other compressions are."""
    import py7zr
    import tarfile
    inner = tmp_path / "payload.tar"
    info = tarfile.TarInfo("zeros")
    info.size = 256 << 20
    with open(inner, "wb") as f:
        f.write(info.tobuf())
        f.truncate(512 + info.size + 1024)
    packed = tmp_path / "bomb.7z"
    with py7zr.SevenZipFile(packed, "w") as z:
        z.write(inner, "payload.tar")
    inner.unlink()
    assert packed.stat().st_size < 1 << 20
    assert run_airgap(tmp_path / "s", "images").code == 0
    before = snapshot(tmp_path / "s")
    run = run_airgap(tmp_path / "s", "load", "-i", str(packed), timeout=60)
    refused(run, str(packed), "decompression bomb", seconds=30)
    assert "damaged" not in run.err, run.err  # said as the refusal it is
    assert snapshot(tmp_path / "s") == before


def _xz_asking_for(dict_code: int, payload: int) -> bytes:
    """An .xz of a tar of ``payload`` zero bytes, whose block header then claims the LZMA2
    dictionary ``dict_code`` stands for (38: 2 GiB), its CRC made right: the decoder keeps
    as much of the output as the dictionary holds."""
    import lzma
    import zlib
    enc = lzma.LZMACompressor(format=lzma.FORMAT_XZ, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1,
                                                                "dict_size": 1 << 20}])
    head = tar_of([("layer.tar", b"")])[:512]  # a member header; its size patched below
    head = head[:124] + b"%011o\0" % payload + head[136:]
    head = head[:148] + b"        " + head[156:]
    head = head[:148] + b"%06o\0 " % sum(head) + head[156:]
    out = [enc.compress(head)]
    zeros = bytes(8 << 20)
    for _ in range(payload // len(zeros)):
        out.append(enc.compress(zeros))
    data = bytearray(b"".join(out) + enc.flush())
    size = (data[12] + 1) * 4  # the first block header, after the 12-byte stream header
    at = data.index(b"\x21\x01", 12, 12 + size)  # filter LZMA2, one byte of properties
    data[at + 2] = dict_code
    data[12 + size - 4:12 + size] = zlib.crc32(bytes(data[12:12 + size - 4])).to_bytes(4, "little")
    return bytes(data)


def test_an_xz_asking_for_a_huge_dictionary_is_refused(tmp_path: Path) -> None:
    """lzma.LZMAFile has no memory limit: 90 KB of xz whose header asks for a 1.5 GiB
    dictionary held the 600 MB it decoded (650 MB of memory, seen). airgap decodes xz
    under 80 MiB (xz -9e needs 65) and refuses more at the header."""
    bomb = tmp_path / "bomb.tar.xz"
    bomb.write_bytes(_xz_asking_for(38, 300 << 20))
    assert bomb.stat().st_size < 1 << 20
    refused(run_airgap(tmp_path / "s", "load", "-i", str(bomb), timeout=60), "MiB to decode", seconds=15)
    refused(run_airgap(tmp_path / "s", "verify", str(bomb), timeout=60), "MiB to decode", seconds=15)
    import lzma  # the same bytes with a dictionary xz -9 uses are read (and refused as no image)
    ok = tmp_path / "ok.tar.xz"
    ok.write_bytes(lzma.compress(tar_of([("a", b"a")]), preset=9 | lzma.PRESET_EXTREME))
    run = run_airgap(tmp_path / "s", "load", "-i", str(ok))
    assert run.code == 3 and "no manifest.json" in run.err, run.err


def test_endless_zeros_after_an_xz_stream_end_the_input(tmp_path: Path) -> None:
    """Zero bytes between xz streams are padding, skipped; a pipe that sends them without
    end after half an archive was read forever. Past 1 MiB of them the input has ended,
    and the cut archive is refused."""
    import lzma
    import threading
    r, w = os.pipe()
    head = lzma.compress(tar_of([("a", os.urandom(4096))])[:3000])

    def feed() -> None:
        with os.fdopen(w, "wb") as out:
            try:
                out.write(head)
                while True:
                    out.write(bytes(1 << 20))
            except (BrokenPipeError, ValueError):
                pass
    threading.Thread(target=feed, daemon=True).start()
    refused(run_airgap(tmp_path / "s", "load", stdin=r, timeout=60), "truncated", seconds=20)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
def test_bytes_after_the_last_compressed_stream_are_refused(tmp_path: Path, kind: str) -> None:
    """Concatenated streams are one input (pbzip2, xz -T, pigz write them); anything else
    after the last one is damage, for every compression alike (Python's bz2 and lzma files
    dropped it silently; Go's readers, Docker's, refuse it)."""
    import bz2
    import lzma
    import zstandard
    squeeze = {"gzip": lambda b: gzip.compress(b, mtime=0), "bzip2": bz2.compress, "xz": lzma.compress,
               "zstd": zstandard.ZstdCompressor().compress}[kind]
    img = image({"a": b"a"})
    whole = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/z:1")]).read_bytes()
    two = tmp_path / "two"
    two.write_bytes(squeeze(whole[:5000]) + squeeze(whole[5000:]))
    assert run_airgap(tmp_path / "s", "load", "-i", str(two)).code == 0
    bad = tmp_path / "bad"
    bad.write_bytes(squeeze(whole) + b"GARBAGE after the stream")
    assert run_airgap(tmp_path / "s2", "images").code == 0
    before = snapshot(tmp_path / "s2")
    for name, run in load_from_file_and_pipe(tmp_path / "s2", bad):
        refused(run, name, kind)
        assert snapshot(tmp_path / "s2") == before


def _inflating(kind: str, zeros_mib: int) -> bytes:
    """A tar whose one member is ``zeros_mib`` MiB of zeros, as concatenated ``kind``
    streams of a MiB each (and the end-of-archive blocks): a few KB that decompress to as
    much as asked."""
    import bz2
    import lzma
    import tarfile
    import zstandard
    squeeze = {"bzip2": bz2.compress, "xz": lambda b: lzma.compress(b, preset=0),
               "zstd": zstandard.ZstdCompressor().compress}[kind]
    info = tarfile.TarInfo("zeros")
    info.size = zeros_mib << 20
    mib = squeeze(bytes(1 << 20))
    return squeeze(info.tobuf()) + mib * zeros_mib + squeeze(bytes(1024))


@pytest.mark.parametrize("kind", ["bzip2", "xz", "zstd"])
def test_a_compressed_archive_that_inflates_past_what_gzip_can_is_refused(tmp_path: Path, kind: str) -> None:
    """A compressed archive is spooled to the disk whole as it decompresses, and a few MB
    of bzip2, xz or zstd (RLE) decompress to terabytes: past 1032 times what was read (no
    gzip can) plus 64 MiB, refused as a bomb, from a file and from a pipe; below it, read."""
    assert run_airgap(tmp_path / "s", "images").code == 0
    before = snapshot(tmp_path / "s")
    bomb = tmp_path / f"bomb.tar.{kind}"
    bomb.write_bytes(_inflating(kind, 4096))  # 4 GiB
    assert bomb.stat().st_size < 2 << 20
    for name, run in load_from_file_and_pipe(tmp_path / "s", bomb):
        refused(run, name, "decompression bomb", seconds=20)
        assert snapshot(tmp_path / "s") == before
    small = tmp_path / f"small.tar.{kind}"
    small.write_bytes(_inflating(kind, 32))
    run = run_airgap(tmp_path / "s", "load", "-i", str(small))
    assert run.code == 3 and "decompression bomb" not in run.err and "no manifest.json" in run.err, run.err


_7Z_CODERS = {  # how py7zr writes each, and where its memory size sits in the header
    "LZMA2": ({"id": 0x21, "preset": 1}, b"\x21\x21\x01", 1),       # one byte: a size code
    "LZMA": ({"id": 0x4000000000000001, "dict_size": 1 << 20}, b"\x23\x03\x01\x01\x05", 4),
}


def _7z_asking_for(tmp_path: Path, method: str, memory: int) -> Path:
    """A .7z of one small tar whose coder then claims a dictionary of ``memory`` bytes,
    the header's CRCs made right."""
    import zlib
    import py7zr
    filters, pattern, width = _7Z_CODERS[method]
    path = tmp_path / f"big-{method}.7z"
    z = py7zr.SevenZipFile(path, "w", filters=[filters])
    z.encoded_header_mode = False  # the coder's properties in plain bytes
    z.writestr(tar_of([("a", b"a")]), "b.tar")
    z.close()
    data = bytearray(path.read_bytes())
    start = 32 + int.from_bytes(data[12:20], "little")
    end = start + int.from_bytes(data[20:28], "little")
    at = data.index(pattern, start, end) + len(pattern)
    if width == 1:  # LZMA2's code: 2 or 3 times a power of two, as in .xz
        data[at] = next(c for c in range(41) if (2 | (c & 1)) << (c // 2 + 11) >= memory)
    else:  # after LZMA's lc/lp/pb byte
        data[at + 1:at + 5] = memory.to_bytes(4, "little")
    data[28:32] = zlib.crc32(bytes(data[start:end])).to_bytes(4, "little")
    data[8:12] = zlib.crc32(bytes(data[12:32])).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("method", sorted(_7Z_CODERS))
def test_a_7z_asking_for_a_huge_dictionary_is_refused(tmp_path: Path, method: str) -> None:
    """py7zr sets no memory limit, and Python's raw LZMA decoder takes none: a 90 KB .7z
    with a 768 MiB dictionary held the 600 MB it decoded. The coders' properties are read
    first, and a dictionary over 80 MiB is refused before a byte is decoded."""
    refused(run_airgap(tmp_path / "s", "load", "-i", str(_7z_asking_for(tmp_path, method, 2 << 30)),
                       timeout=60), "needs 2048 MiB to decode", seconds=15)
    run = run_airgap(tmp_path / "s", "load", "-i", str(_7z_asking_for(tmp_path, method, 64 << 20)))
    assert run.code == 3 and "no manifest.json" in run.err, run.err  # 64 MiB (7z -mx=9): read


def test_a_ppmd_7z_is_refused_before_its_decoder_runs(tmp_path: Path) -> None:
    """py7zr decodes PPMd with pyppmd, which crashed the loader (SIGSEGV, no message, exit
    -11) on a .7z with a bit flipped in its data. PPMd is refused by its coder, before any
    decoding, damaged or not (7-Zip writes LZMA2 unless told otherwise)."""
    tar = tmp_path / "b.tar"
    tar.write_bytes(tar_of([("a", os.urandom(20_000))]))
    path = tmp_path / "ppmd.7z"
    subprocess.run([need("7zz"), "a", "-m0=PPMd:mem=1m:o=6", "-mhc=off", str(path), str(tar)],
                   check=True, capture_output=True)
    data = bytearray(path.read_bytes())
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "compressed with PPMd")
    for at in (37, 172, 188):  # where flipped bits crashed pyppmd (seen)
        data[at] ^= 0x10
    path.write_bytes(bytes(data))
    refused(run_airgap(tmp_path / "s", "verify", str(path)), "compressed with PPMd")


@pytest.mark.parametrize("encoded", [True, False])
def test_a_7z_of_many_entries_is_refused_by_its_header_size(tmp_path: Path, encoded: bool) -> None:
    """py7zr turns every entry of a 7z header into objects: 200,000 empty files (a 120 KB
    .7z) took 200 MB before airgap could count them. A header over 64 KiB, compressed
    (py7zr checks the size it declares before decoding) or not, is refused first."""
    import py7zr
    packed = tmp_path / "many.7z"
    with py7zr.SevenZipFile(packed, "w") as z:
        z.encoded_header_mode = encoded
        for i in range(5000):
            z.writestr(b"", f"f{i}")
    refused(run_airgap(tmp_path / "s", "load", "-i", str(packed)),
            f"{packed}: the 7z header decodes to more than the 65536 bytes" if encoded else "the 7z header takes",
            seconds=5)


def _gzip_image_bundle(airgap: Airgap, tmp_path: Path, layer: bytes, key: Path) -> Path:
    """A signed bundle of one image whose only layer is the gzip ``layer``."""
    import zlib

    from airgap.oci import OCI_LAYER_GZIP
    d = zlib.decompressobj(wbits=47)
    tar = b""
    while chunk := d.decompress(layer, 1 << 20):  # only small layers come here
        tar += chunk
        layer = d.unconsumed_tail
    img = image(layers=[gzip.compress(tar, 1, mtime=0)], diff_ids=[sha256_digest(tar)], layer_type=OCI_LAYER_GZIP)
    archive = oci_archive(tmp_path / "gz.tar", [img], [index_entry(img, "docker.io/library/gz:1")])
    airgap("load", "-i", str(archive))
    out = tmp_path / "gz-bundle.tar"
    airgap("save", "--sign", str(key), "-o", str(out), "gz:1")
    return out


def test_verify_full_checks_the_digest_before_decompressing(airgap: Airgap, tmp_path: Path) -> None:
    """A tampered layer that inflates to gigabytes is refused by its digest, at once."""
    from airgap.signing import generate_key
    key, pub, _, _ = generate_key(str(tmp_path / "k"))
    tar = tar_of([("f", os.urandom(3 << 20))])
    bundle = _gzip_image_bundle(airgap, tmp_path, gzip.compress(tar, 1), key)
    members = members_of(bundle)
    doc = json.loads(dict(members)["airgap/bundle.json"])
    layer = next(b for b in doc["blobs"] if "diffID" in b)
    name = "blobs/sha256/" + layer["digest"][7:]
    bomb_src = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb_src, mode="wb", compresslevel=9) as g:
        zeros = b"\0" * (1 << 20)
        for _ in range(4 << 10):  # 4 GiB of zeros: about 4 MB of gzip
            g.write(zeros)
            if bomb_src.tell() > layer["size"]:
                break
    bomb = bomb_src.getvalue()[: layer["size"]].ljust(layer["size"], b"\0")
    bad = tmp_path / "bomb.tar"
    bad.write_bytes(tar_of([(n, bomb if n == name else d) for n, d in members]))
    run = run_airgap(tmp_path / "s", "verify", str(bad), "--trust", str(pub), timeout=120)
    refused(run, layer["digest"], seconds=5)


def test_zstd_window_beyond_the_budget(tmp_path: Path) -> None:
    import zstandard
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=28, write_content_size=False)
    cobj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    payload = cobj.compress(tar_of([("a", b"a" * 1000)]) + b"\0" * 1024) + cobj.flush()
    assert zstandard.get_frame_parameters(payload).window_size == 1 << 28
    path = tmp_path / "x.tar.zst"
    path.write_bytes(payload)
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "window", "MiB")


@pytest.mark.parametrize("kind", ["zstd", "gzip"])
def test_a_layer_that_inflates_past_what_gzip_can_is_refused(airgap: Airgap, three_images: list[str],
                                                            tmp_path: Path, kind: str) -> None:
    """An archive without bundle.json declares no layer's uncompressed size, and with
    --verify full its diff_id is checked by decompressing it (as pull checks each layer): a
    zstd layer can expand ~32,000 times (a 30 MB layer, a terabyte to hash), a gzip one 1032
    times at most. A layer past that is refused as a bomb, by its digest, in bounded time,
    the store unchanged; gzip's own maximum (zeros at level 9) still loads."""
    import zstandard
    from airgap.oci import OCI_LAYER_GZIP, OCI_LAYER_ZSTD
    tar = layer_tar({"zeros": bytes(256 << 20)})
    layer = zstandard.ZstdCompressor().compress(tar) if kind == "zstd" else gzip.compress(tar, 9)
    img = image(layers=[layer], layer_type=OCI_LAYER_ZSTD if kind == "zstd" else OCI_LAYER_GZIP,
                diff_ids=[sha256_digest(tar)])
    path = oci_archive(tmp_path / "zeros.tar", [img], [index_entry(img, "example/zeros:1")])
    before = snapshot(airgap.store)
    run = run_airgap(airgap.store, "load", "--verify", "full", "-i", str(path), timeout=120)
    if kind == "zstd":
        refused(run, sha256_digest(layer)[7:], "more than 1032 times its", "decompression bomb", seconds=10)
        assert snapshot(airgap.store) == before
    else:
        assert run.code == 0, run.err
        assert "example/zeros:1" in airgap("images", "--format", "{{.Repository}}:{{.Tag}}").out


@pytest.mark.parametrize("option", ["--trust", "--sign", "--exclude-from", "-f"])
def test_files_named_on_the_command_line_are_read_with_a_cap(airgap: Airgap, three_images: list[str],
                                                             tmp_path: Path, option: str) -> None:
    """A key, an inventory (it comes back from the far side) or an image list that is a
    device or a huge file is refused by name, not read into memory (a key that is no
    regular file without reading it at all)."""
    verb = ["load", "-i", str(tmp_path / "none.tar")] if option == "--trust" else \
        ["save", "-o", str(tmp_path / "out.tar"), three_images[0]]
    key = option in ("--trust", "--sign")
    run = run_airgap(airgap.store, *verb, option, "/dev/zero", timeout=30)
    refused(run, "/dev/zero is not a regular file" if key else "/dev/zero: more than", seconds=10)
    if key:  # and a regular file over the cap
        huge = tmp_path / "huge"
        huge.write_bytes(b"-----BEGIN PUBLIC KEY-----\n" + b"A" * (64 << 10))
        refused(run_airgap(airgap.store, *verb, option, str(huge), timeout=30), f"{huge}: more than", seconds=10)


@pytest.mark.parametrize("doc,code,says", [
    ({"mediaType": "application/vnd.airgap.inventory.v1+json", "blobs": 5}, 3, "blobs must be a list"),
    ({"mediaType": "application/vnd.airgap.inventory.v1+json", "blobs": "sha256:x"}, 3, "blobs must be a list"),
    ({"mediaType": "text/plain"}, 2, "not an airgap inventory"),
])
def test_an_inventory_of_the_wrong_shape_is_refused(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                    doc: dict[str, Any], code: int, says: str) -> None:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(doc))
    run = run_airgap(airgap.store, "save", "--exclude-from", str(inventory), "-o", str(tmp_path / "o.tar"),
                     three_images[0])
    refused(run, says, code=code)
    assert not (tmp_path / "o.tar").exists()


def test_an_image_list_that_is_not_text_is_a_usage_error(airgap: Airgap, three_images: list[str],
                                                         tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"example/base:1\n\xff\xfe\n")
    refused(run_airgap(airgap.store, "save", "-f", str(listing), "-o", str(tmp_path / "o.tar")),
            "not UTF-8 text at byte 15", code=2)


@pytest.mark.parametrize("field", ["Config", "Layers"])
def test_names_from_an_archive_cannot_reach_the_terminal_raw(airgap: Airgap, three_images: list[str],
                                                             tmp_path: Path, field: str) -> None:
    """An escape sequence (or a bidi override) in a name the archive gives is printed
    escaped: it must not recolour, retitle or rewrite the operator's terminal."""
    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), three_images[0])
    members = [(n, d) for n, d in members_of(bundle) if not n.startswith("airgap/") and n != "index.json"]
    doc = json.loads(dict(members)["manifest.json"])
    hostile = "blobs/\x1b]0;owned\x07\x1b[2J\u202etxt.exe"
    if field == "Config":
        doc[0]["Config"] = hostile
    else:
        doc[0]["Layers"][0] = hostile
    bad = tmp_path / "bad.tar"
    bad.write_bytes(tar_of([(n, json.dumps(doc).encode() if n == "manifest.json" else d) for n, d in members]))
    run = run_airgap(tmp_path / "s", "load", "-i", str(bad))
    refused(run, "blobs/\\x1b]0;owned\\x07\\x1b[2J\\u202etxt.exe")
    assert not any(c in run.err for c in "\x1b\x07\u202e"), run.err


def test_a_description_label_is_printed_escaped_in_the_search_table(tmp_path: Path) -> None:
    """`search` shows an image's description label: from an archive, it may carry escape
    sequences, which the table (for a terminal) writes escaped; `--format` is data, as
    Docker's, and keeps them."""
    hostile = "evil\x1b]0;owned\x07\x1b[2J\u202edesc"
    img = image({"a": b"a"}, config={"config": {"Labels": {"org.opencontainers.image.description": hostile}}})
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/evil:1")])
    store = tmp_path / "s"
    assert run_airgap(store, "load", "-i", str(path)).code == 0
    run = run_airgap(store, "search", "--no-trunc", "evil")
    assert run.code == 0 and "evil\\x1b]0;owned\\x07\\x1b[2J\\u202edesc" in run.out, run.out
    assert not any(c in run.out for c in "\x1b\x07\u202e"), run.out
    assert run_airgap(store, "search", "--format", "{{.Description}}", "evil").out == hostile + "\n"


def test_a_history_from_a_config_is_printed_escaped_in_the_history_table(tmp_path: Path) -> None:
    """`history` shows the config's commands and comments, from an archive: the table writes
    them escaped; `--format` is data and keeps them."""
    hostile = "evil\x1b]0;owned\x07\x1b[2J\u202ecmd"
    img = image({"a": b"a"}, config={"history": [{"created_by": hostile, "comment": "c\x1b[31m"}]})
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/hist:1")])
    store = tmp_path / "s"
    assert run_airgap(store, "load", "-i", str(path)).code == 0
    for args in ([], ["--no-trunc"]):
        run = run_airgap(store, "history", *args, "example/hist:1")
        assert run.code == 0 and "evil\\x1b]0;owned\\x07\\x1b[2J\\u202ecmd" in run.out and "c\\x1b[31m" in run.out, run.out
        assert not any(c in run.out for c in "\x1b\x07\u202e"), run.out
    assert run_airgap(store, "history", "--format", "{{.CreatedBy}}", "example/hist:1").out == hostile + "\n"


def test_a_platform_from_a_config_is_printed_escaped(tmp_path: Path) -> None:
    img = image({"a": b"a"}, config={"architecture": "amd64\x1b[2J", "os": "linux", "variant": "v8\u202e"})
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/plat:1")])
    run = run_airgap(tmp_path / "s", "verify", str(path))
    assert run.code == 0 and "linux/amd64\\x1b[2J/v8\\u202e" in run.out, (run.out, run.err)
    assert "\x1b" not in run.out + run.err and "\u202e" not in run.out + run.err


def test_lone_surrogates_in_a_config_print_as_replacements(tmp_path: Path) -> None:
    """JSON may escape half of a UTF-16 pair (``"\\udc80"``); Python reads it into a string
    that cannot be written as UTF-8. Printed by ``inspect -f`` it was an internal error;
    it is written as "?" (Go's reader makes it U+FFFD), and the JSON of ``inspect`` keeps
    the escape."""
    img = image({"a": b"a"}, config={"author": "\udc80x", "config": {"Labels": {"\ud800k": "v\udfff"},
                                                                       "WorkingDir": "\ud83d"}})
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/half:1")])
    store = tmp_path / "s"
    assert run_airgap(store, "load", "-i", str(path)).code == 0
    run = run_airgap(store, "inspect", "-f", "{{.Author}} {{.Config.Labels}} {{.Config.WorkingDir}}",
                     "example/half:1")
    assert (run.code, run.out) == (0, "?x map[?k:v?] ?\n"), (run.out, run.err)
    run = run_airgap(store, "inspect", "example/half:1")
    assert run.code == 0 and json.loads(run.out)[0]["Author"] == "\udc80x", (run.out, run.err)


def _index_of(tmp_path: Path, children: list[tuple[dict[str, str], dict[str, str]]]) -> Path:
    """An OCI archive of one multi-platform image (``example/multi:1``): for each child, the
    platform its index entry claims and the platform fields of its config."""
    from ..builders import Image
    images, entries = [], []
    for i, (claimed, config) in enumerate(children):
        img = image({f"f{i}": str(i).encode()}, config=config)
        images.append(img)
        entries.append(desc(OCI_MANIFEST, img.manifest, platform=claimed))
    raw = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    top = Image(raw, {sha256_digest(raw): raw})
    name = "docker.io/example/multi:1"
    entry = desc(OCI_INDEX, raw, annotations={"io.containerd.image.name": name,
                                              "org.opencontainers.image.ref.name": name})
    return oci_archive(tmp_path / "multi.tar", [*images, top], [entry])


def test_an_index_that_lies_about_a_platform_is_refused(tmp_path: Path) -> None:
    """An index whose entry says linux/amd64 for a manifest whose config says linux/arm64
    would have a node pull and run the wrong architecture (containerd and Docker pick by
    the index): refused, naming the manifest. Spellings containerd normalizes agree."""
    path = _index_of(tmp_path, [({"os": "linux", "architecture": "amd64"}, {"architecture": "arm64"}),
                                ({"os": "linux", "architecture": "arm64"}, {"architecture": "amd64"})])
    index = json.loads(_tar_member(path, "index.json"))["manifests"][0]["digest"]
    bad = json.loads(_tar_member(path, f"blobs/sha256/{index[7:]}"))["manifests"][0]["digest"]
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), bad, "as linux/amd64", "says linux/arm64")
    assert run_airgap(tmp_path / "s", "images", "-aq").out == ""
    path = _index_of(tmp_path, [({"os": "linux", "architecture": "arm64", "variant": "v8"}, {"architecture": "arm64"}),
                                ({"os": "Linux", "architecture": "x86_64"}, {"architecture": "amd64"})])
    assert run_airgap(tmp_path / "s", "load", "-i", str(path)).code == 0


def _tar_member(path: Path, name: str) -> bytes:
    return dict(members_of(path))[name]


def _respelled(img: Any, edit: Any) -> Any:
    """``img`` with ``edit`` applied to its manifest document, the digests made right."""
    from ..builders import Image
    doc = json.loads(img.manifest)
    edit(doc)
    raw = json.dumps(doc).encode()
    return Image(raw, {**img.blobs, sha256_digest(raw): raw})


@pytest.mark.parametrize("where", ["manifest", "layer descriptor", "config descriptor", "platform",
                                   "index.json", "config", "rootfs", "history", "manifest.json"])
def test_a_field_spelled_in_another_case_is_refused(tmp_path: Path, where: str) -> None:
    """Go's encoding/json matches field names case-insensitively (and folds ſ to s, K to k):
    Docker and containerd would read ``LAYERS`` or ``ſize`` as the field, airgap would not."""
    other = layer_tar({"evil": b"evil"})
    config: dict[str, Any] = {}
    if where == "config":
        config = {"RootFS": {"type": "layers", "diff_ids": [sha256_digest(other)]}}
    if where == "rootfs":
        config = {"rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar({"a": b"a"}))],
                             "Diff_IDs": [sha256_digest(other)]}}
    if where == "history":
        config = {"history": [{"created_by": "COPY a /", "Created_By": "COPY evil /"}]}
    img = image({"a": b"a"}, config=config)
    entry = index_entry(img, "docker.io/example/spelled:1")
    if where == "manifest":
        img = _respelled(img, lambda d: d.update(LAYERS=[desc(OCI_LAYER, other)]))
    if where == "layer descriptor":
        img = _respelled(img, lambda d: d["layers"][0].update({"\u017fize": 1}))
    if where == "config descriptor":
        img = _respelled(img, lambda d: d["config"].update(Digest=sha256_digest(b"{}")))
    entry = index_entry(img, "docker.io/example/spelled:1")
    if where == "platform":
        entry["platform"] = {"os": "linux", "architecture": "amd64", "Architecture": "arm64"}
    index = None
    if where == "index.json":
        index = json.dumps({"schemaVersion": 2, "manifests": [entry], "Manifests": []}).encode()
    path = oci_archive(tmp_path / "a.tar", [img], [entry], index=index)
    if where == "manifest.json":
        members = members_of(path)
        doc = [{"Config": f"blobs/sha256/{img.config_digest[7:]}", "config": "blobs/sha256/x",
                "RepoTags": ["example/spelled:1"],
                "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in json.loads(img.manifest)["layers"]]}]
        path.write_bytes(tar_of([*members, ("manifest.json", json.dumps(doc).encode())]))
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "spelled another way")
    assert not [p for p in (tmp_path / "s").glob("blobs/sha256/*")]


def test_maps_may_hold_keys_in_any_case(tmp_path: Path) -> None:
    """Labels and annotations are maps, not fields: ``Version`` and ``version`` both load."""
    img = image({"a": b"a"}, config={"config": {"Labels": {"Version": "1", "version": "2"}}})
    entry = index_entry(img, "docker.io/example/labels:1")
    entry["annotations"] = {**entry["annotations"], "Org": "a", "org": "b"}
    path = oci_archive(tmp_path / "a.tar", [img], [entry])
    run = run_airgap(tmp_path / "s", "load", "-i", str(path))
    assert run.code == 0 and "Loaded image: example/labels:1" in run.out, run.err


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity"])
def test_numbers_json_does_not_have_are_refused(tmp_path: Path, word: str) -> None:
    """Python's JSON reader takes NaN and Infinity, Go's refuses them: a config holding one
    would be stored, and `docker load` of it fail."""
    layers = [layer_tar({"a": b"a"})]
    img = image(layers=layers, config={"config": {"Healthcheck": {"Interval": 0}}})
    raw = img.blobs[img.config_digest].replace(b'"Interval":0', b'"Interval":' + word.encode())
    from ..builders import Image
    manifest = json.loads(img.manifest)
    manifest["config"] = desc(manifest["config"]["mediaType"], raw)
    doc = json.dumps(manifest).encode()
    img = Image(doc, {**{d: b for d, b in img.blobs.items() if d != img.config_digest}, sha256_digest(raw): raw,
                      sha256_digest(doc): doc})
    path = oci_archive(tmp_path / "a.tar", [img], [index_entry(img, "docker.io/example/nan:1")])
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), f"{word} is not a JSON value")
