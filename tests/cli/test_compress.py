"""save --compress gzip|zstd: uncompressed layers travel compressed, IDs unchanged, the
compressed form cached in the store; layers already compressed are kept byte for byte."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from airgap.oci import OCI_LAYER_GZIP, OCI_LAYER_ZSTD

from ..builders import image, index_entry, layer_tar, oci_archive
from ..conftest import Airgap, flip, snapshot, write_tree


def _layers(bundle: Path) -> dict[str, list[dict[str, object]]]:
    """image name -> its manifest's layer descriptors, read from the bundle's OCI side."""
    out = {}
    with tarfile.open(bundle) as tf:
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
        for entry in index["manifests"]:
            man = json.load(tf.extractfile("blobs/sha256/" + entry["digest"][7:]))  # type: ignore[arg-type]
            out[entry["annotations"]["io.containerd.image.name"]] = man["layers"]
    return out


@pytest.mark.parametrize("method,media_type,magic", [("gzip", OCI_LAYER_GZIP, b"\x1f\x8b"),
                                                      ("zstd", OCI_LAYER_ZSTD, b"\x28\xb5\x2f\xfd")])
def test_compressed_bundle_keeps_image_ids(airgap: Airgap, make_airgap, three_images: list[str], tmp_path: Path,
                                           method: str, media_type: str, magic: bytes) -> None:
    big = write_tree(tmp_path / "big", {"words.txt": b"the quick brown fox jumps over the lazy dog\n" * 50000})
    airgap("import", str(big), "example/big:1", "--base", "example/base:1")
    names = ["example/big:1", *three_images]
    plain, packed = tmp_path / "plain.tar", tmp_path / "packed.tar"
    airgap("save", "-o", str(plain), *names)
    res = airgap("save", "--compress", method, "-o", str(packed), *names)
    assert f"Compressed 5 layers with {method}" in res.err  # base + big + three apps
    assert packed.stat().st_size < plain.stat().st_size / 5
    layers = _layers(packed)
    for name in names:
        for lay in layers[f"docker.io/{name}"]:
            assert lay["mediaType"] == media_type
            with tarfile.open(packed) as tf:
                assert tf.extractfile("blobs/sha256/" + str(lay["digest"])[7:]).read(4).startswith(magic)  # type: ignore[union-attr]
    airgap("verify", "--verify", "full", str(packed))  # every layer decompressed to its diff_id
    site = make_airgap("site")
    site("load", "-i", str(packed))
    for name in names:
        assert site.image_id(name) == airgap.image_id(name)
        assert json.loads(site("inspect", name).out)[0]["RootFS"] == json.loads(airgap("inspect", name).out)[0]["RootFS"]
    # the second save takes the compressed layers from the cache: the same bytes
    again = tmp_path / "again.tar"
    airgap("save", "--compress", method, "-o", str(again), *names)
    assert again.read_bytes() == packed.read_bytes()
    # saved again from the far side, compressed layers are kept as they are (digests too)
    onward = tmp_path / "onward.tar"
    site("save", "--compress", "gzip" if method == "zstd" else "zstd", "-o", str(onward), *names)
    assert _layers(onward) == layers


def test_second_save_does_not_compress_again(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from airgap import compress
    from airgap.cli.main import main
    calls: list[str] = []
    real = compress._compress

    def counted(src, out, method: str, size: int) -> None:
        calls.append(method)
        real(src, out, method, size)

    monkeypatch.setattr(compress, "_compress", counted)
    args = ["--store", str(airgap.store), "--progress", "none", "save", "--compress", "gzip"]
    assert main([*args, "-o", str(tmp_path / "one.tar"), *three_images]) == 0
    assert calls == ["gzip"] * 4
    assert main([*args, "-o", str(tmp_path / "two.tar"), *three_images]) == 0
    assert calls == ["gzip"] * 4  # from the cache
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()


def test_damaged_cache_and_rotten_layer_are_refused(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    out = tmp_path / "b.tar"
    airgap("save", "--compress", "gzip", "-o", str(out), three_images[0])
    cached = sorted((airgap.store / ".cache" / "blobs").iterdir())
    assert cached
    for path in cached:
        path.write_bytes(flip(path.read_bytes()))
    res = airgap("save", "--compress", "gzip", "-o", str(tmp_path / "c.tar"), three_images[0], ok=False)
    assert res.code == 3 and "compressed layer" in res.err and "system prune" in res.err, res.err
    assert not (tmp_path / "c.tar").exists()
    # system df counts the cache, system prune clears it; the next save makes it again
    def df_size() -> str:
        return airgap("system", "df").out.splitlines()[1].split()[3]
    with_cache = df_size()
    assert airgap("system", "prune", "-f").code == 0
    assert df_size() != with_cache
    assert not any((airgap.store / ".cache" / "blobs").iterdir())
    airgap("save", "--compress", "gzip", "-o", str(tmp_path / "c.tar"), three_images[0])
    assert (tmp_path / "c.tar").read_bytes() == out.read_bytes()
    # a stored layer that rotted is not compressed into a bundle with a fresh digest
    airgap("system", "prune", "-f")
    layer = json.loads(airgap("inspect", three_images[0]).out)[0]["RootFS"]["Layers"][-1]
    rotten = airgap.store / "blobs" / "sha256" / layer[7:]
    rotten.write_bytes(flip(rotten.read_bytes(), 100))
    res = airgap("save", "--compress", "zstd", "-o", str(tmp_path / "d.tar"), three_images[0], ok=False)
    assert res.code == 3 and layer in res.err, res.err
    assert not (tmp_path / "d.tar").exists()
    assert not (airgap.store / ".cache" / "compressed-zstd" / layer[7:]).exists()


@pytest.mark.parametrize("where", ["fact", "blob"])
def test_a_cache_entry_that_is_not_a_file_is_made_again(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                        where: str) -> None:
    """A FIFO in the cache (where a layer's compressed digest is noted, or the compressed
    blob itself, with a note that matches a FIFO's size) had the next save wait forever."""
    import os
    import subprocess
    import sys
    airgap("save", "--compress", "gzip", "-o", str(tmp_path / "one.tar"), three_images[0])
    notes = sorted((airgap.store / ".cache" / "compressed-gzip").iterdir())
    assert notes
    for note in notes:
        digest = note.read_text().split()[0]
        target = note if where == "fact" else airgap.store / ".cache" / "blobs" / digest[7:]
        if where == "blob":
            note.write_text(f"{digest} 0")
        target.unlink()
        os.mkfifo(target)
    proc = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "--progress", "none",
                           "save", "--compress", "gzip", "-o", str(tmp_path / "two.tar"), three_images[0]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "two.tar").read_bytes() == (tmp_path / "one.tar").read_bytes()


def test_pinned_manifests_are_kept(airgap: Airgap, make_airgap, tmp_path: Path) -> None:
    """A name that pins a digest (as pulled by digest) must still name that digest."""
    img = image(layers=[layer_tar({"a.txt": b"a" * 10000})])
    other = image(layers=[layer_tar({"b.txt": b"b" * 10000})])
    archive = oci_archive(tmp_path / "in.tar", [img, other],
                          [index_entry(img, f"docker.io/example/pinned@{img.digest}"),
                           index_entry(other, "docker.io/example/free:1")])
    airgap("load", "-i", str(archive))
    out = tmp_path / "b.tar"
    res = airgap("save", "--compress", "gzip", "-o", str(out), "example/pinned", "example/free:1")
    assert "kept uncompressed (a name pins its digest)" in res.err
    site = make_airgap("site")
    before = snapshot(site.store)
    site("load", "-i", str(out))
    assert snapshot(site.store) != before
    pinned = json.loads(site("inspect", f"example/pinned@{img.digest}").out)[0]
    assert pinned["Descriptor"]["digest"] == img.digest
    assert _layers(out)["docker.io/example/free:1"][0]["mediaType"] == OCI_LAYER_GZIP


def test_a_zstd_layer_past_gzips_bound_needs_a_trusted_signature(airgap: Airgap, make_airgap, three_images: list[str],
                                                                 tmp_path: Path) -> None:
    """A layer of zeros compresses with zstd ~32,000 times. bundle.json declares its size,
    but in a bundle no trusted key signed, that is the sender's word: --verify full stops
    the layer at gzip's bound, as for an archive without bundle.json. Signed by a trusted
    key, the declared size bounds it and it verifies; --verify fast loads it either way."""
    from airgap.signing import generate_key
    zeros = write_tree(tmp_path / "zeros", {"zeros.bin": bytes(256 << 20)})
    airgap("import", str(zeros), "example/zeros:1", "--base", "example/base:1")
    priv, pub = generate_key(str(tmp_path / "k"))[:2]
    unsigned, signed = tmp_path / "u.tar", tmp_path / "s.tar"
    airgap("save", "--compress", "zstd", "-o", str(unsigned), "example/zeros:1")
    airgap("save", "--compress", "zstd", "--sign", str(priv), "-o", str(signed), "example/zeros:1")
    for bundle in (unsigned, signed):  # the signed one, with no key trusted: intact, signer unknown
        res = airgap("verify", "--verify", "full", str(bundle), ok=False)
        assert res.code == 3 and "more than 1032 times its" in res.err and "decompression bomb" in res.err, res.err
    airgap("verify", "--verify", "full", "--trust", str(pub), str(signed))
    site = make_airgap("site")
    site("load", "--verify", "full", "--trust", str(pub), "-i", str(signed))
    site("load", "-i", str(unsigned))
    assert site.image_id("example/zeros:1") == airgap.image_id("example/zeros:1")
