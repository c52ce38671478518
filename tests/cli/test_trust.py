"""Signatures, the trust policy, and the corruption matrix: load and verify both refuse."""

from __future__ import annotations

import gzip
import io
import json
import stat
import tarfile
from pathlib import Path

import pytest

from airgap.digest import sha256_digest
from airgap.oci import OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST, Descriptor, canonical_json
from airgap.reference import parse_reference
from airgap.store import Store

from ..conftest import Airgap, flip, rewrite_tar, snapshot


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIRGAP_TRUST", raising=False)
    monkeypatch.delenv("AIRGAP_KEY_PASSPHRASE", raising=False)
    from airgap.signing import generate_key
    generate_key("packager")
    generate_key("stranger")
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "correct horse")
    generate_key("locked")
    monkeypatch.delenv("AIRGAP_KEY_PASSPHRASE")
    return {n: tmp_path / n for n in ("packager", "stranger", "locked")}


@pytest.fixture
def signed(airgap: Airgap, three_images: list[str], keys: dict[str, Path], tmp_path: Path) -> Path:
    out = tmp_path / "signed.tar"
    res = airgap("save", "--sign", str(keys["packager"]) + ".key", "-o", str(out), three_images[0])
    assert "Signed by: sha256:" in res.out and "Bundle digest: sha256:" in res.out
    return out


@pytest.fixture
def site(make_airgap, airgap: Airgap, tmp_path: Path) -> Airgap:
    """A loading host whose store already holds an image."""
    site: Airgap = make_airgap("site")
    src = tmp_path / "seed"
    src.mkdir()
    (src / "seed.txt").write_text("seed")
    site("import", str(src), "seed:1")
    return site


def _refused_both(site: Airgap, archive: Path, trust: list[str], *needles: str) -> None:
    before = snapshot(site.store)
    for verb in (["load", "-i", str(archive)], ["verify", str(archive)]):
        res = site(*verb, *[a for k in trust for a in ("--trust", k)], ok=False)
        assert res.code == 3, (verb, res.err)
        assert "Traceback" not in res.err
        for needle in needles:
            assert needle in res.err, (verb, res.err)
        assert res.out == ""
        assert snapshot(site.store) == before
        assert list((site.store / ".tmp").iterdir()) == []


def test_key_files(keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    key = keys["packager"].with_suffix(".key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert keys["locked"].with_suffix(".key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert keys["packager"].with_suffix(".pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_signed_bundle_with_and_without_trust(site: Airgap, signed: Path, keys: dict[str, Path], three_images: list[str]) -> None:
    res = site("verify", str(signed))
    assert "signer NOT verified" in res.out
    res = site("verify", "--trust", f"{keys['packager']}.pub", str(signed))
    assert f"trusted key {keys['packager']}.pub" in res.out
    assert "Load would add" in res.out
    res = site("load", "-i", str(signed), "--trust", f"{keys['packager']}.pub")
    assert res.out == f"Loaded image: {three_images[0]}\n"
    assert "trusted key" in res.err
    digest = json.loads(site("inspect", three_images[0]).out)[0]["Descriptor"]["digest"]
    assert f"  {three_images[0]}  digest {digest}  linux/" in site("verify", str(signed)).out  # not the IMAGE ID


def test_trust_from_env_dir_and_key_list(site: Airgap, signed: Path, keys: dict[str, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    trust = tmp_path / "trust.d"
    trust.mkdir()
    (trust / "packager.pub").write_bytes(Path(f"{keys['packager']}.pub").read_bytes())
    monkeypatch.setenv("AIRGAP_TRUST", str(trust))
    listed = site("key", "list").out
    from airgap.signing import fingerprint, load_public_key
    assert fingerprint(load_public_key(trust / "packager.pub")) in listed
    site("load", "-i", str(signed))
    (trust / "packager.pub").write_bytes(Path(f"{keys['stranger']}.pub").read_bytes())
    _refused_both(site, signed, [], "not trusted")


def _member_digests(airgap: Airgap, name: str) -> dict[str, str]:
    info = json.loads(airgap("inspect", name).out)[0]
    return {"manifest": info["Descriptor"]["digest"], "config": info["Id"], "layer": info["RootFS"]["Layers"][-1]}


@pytest.mark.parametrize("member", ["airgap/bundle.json", "airgap/bundle.json.sig", "index.json",
                                    "manifest.json", "manifest", "config", "layer"])
def test_flipped_byte(site: Airgap, airgap: Airgap, signed: Path, keys: dict[str, Path], three_images: list[str],
                      tmp_path: Path, member: str) -> None:
    digests = _member_digests(airgap, three_images[0])
    name = "blobs/sha256/" + digests[member][7:] if member in digests else member
    bad = tmp_path / "bad.tar"
    at = 30 if member.startswith("airgap/") else None  # inside the JSON text
    rewrite_tar(signed, bad, lambda m, d: [(m, flip(d or b"", at) if m.name == name else d)])
    needles = ["airgap/bundle.json"] if member.startswith("airgap/") else [name]
    _refused_both(site, bad, [f"{keys['packager']}.pub"], *needles)
    # without a trust policy the signature's own key and the digests still catch it
    _refused_both(site, bad, [], *needles)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.95, 0.9995])
def test_truncated(site: Airgap, signed: Path, keys: dict[str, Path], tmp_path: Path, fraction: float) -> None:
    data = signed.read_bytes()
    bad = tmp_path / "cut.tar"
    bad.write_bytes(data[: int(len(data) * fraction)])
    _refused_both(site, bad, [f"{keys['packager']}.pub"], "cut.tar")


def test_duplicated_member(site: Airgap, airgap: Airgap, signed: Path, keys: dict[str, Path], three_images: list[str], tmp_path: Path) -> None:
    name = "blobs/sha256/" + _member_digests(airgap, three_images[0])["layer"][7:]
    bad = tmp_path / "bad.tar"
    rewrite_tar(signed, bad, lambda m, d: [(m, d), (m, d)] if m.name == name else [(m, d)])
    _refused_both(site, bad, [f"{keys['packager']}.pub"], "duplicate member", name)


def test_unlisted_member(site: Airgap, signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    extra = b"not in the bundle"
    name = "blobs/sha256/" + sha256_digest(extra)[7:]
    bad = tmp_path / "bad.tar"

    def edit(m, d):
        if m.name == "index.json":
            return [(m, d), (tarfile.TarInfo(name), extra)]
        return [(m, d)]
    rewrite_tar(signed, bad, edit)
    _refused_both(site, bad, [f"{keys['packager']}.pub"], name, "not listed")


def test_listed_blob_missing(site: Airgap, airgap: Airgap, signed: Path, keys: dict[str, Path], three_images: list[str], tmp_path: Path) -> None:
    name = "blobs/sha256/" + _member_digests(airgap, three_images[0])["config"][7:]
    bad = tmp_path / "bad.tar"
    rewrite_tar(signed, bad, lambda m, d: [] if m.name == name else [(m, d)])
    _refused_both(site, bad, [f"{keys['packager']}.pub"], name, "missing")


def test_untrusted_signer(site: Airgap, airgap: Airgap, three_images: list[str], keys: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "stranger.tar"
    airgap("save", "--sign", f"{keys['stranger']}.key", "-o", str(out), three_images[0])
    _refused_both(site, out, [f"{keys['packager']}.pub"], "not trusted")


def test_unsigned_and_foreign_under_policy(site: Airgap, airgap: Airgap, three_images: list[str], keys: dict[str, Path], tmp_path: Path) -> None:
    unsigned = tmp_path / "unsigned.tar"
    airgap("save", "-o", str(unsigned), three_images[0])
    _refused_both(site, unsigned, [f"{keys['packager']}.pub"], "not signed")
    foreign = tmp_path / "foreign.tar"
    rewrite_tar(unsigned, foreign, lambda m, d: [] if m.name.startswith("airgap") else [(m, d)])
    _refused_both(site, foreign, [f"{keys['packager']}.pub"], "not an airgap bundle")
    signed = tmp_path / "signed.tar"  # a signed bundle whose bundle.json was moved to the end
    airgap("save", "--sign", f"{keys['packager']}.key", "-o", str(signed), three_images[0])
    late = tmp_path / "late.tar"
    with tarfile.open(signed) as tf:
        members = [(m, tf.extractfile(m).read() if m.isreg() else None) for m in tf.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(late, "w", format=tarfile.PAX_FORMAT) as out:
        for m, d in sorted(members, key=lambda md: md[0].name.startswith("airgap")):
            out.addfile(m, io.BytesIO(d) if d is not None else None)
    _refused_both(site, late, [f"{keys['packager']}.pub"], "no airgap/bundle.json at its start")
    res = site("load", "-i", str(foreign), "--trust", f"{keys['packager']}.pub", "--insecure-skip-signature")
    assert "WARNING" in res.err and res.out == f"Loaded image: {three_images[0]}\n"
    # without a policy both load, and say they are unsigned
    assert "unsigned" in site("verify", str(unsigned)).out


def test_wrong_passphrase(airgap: Airgap, three_images: list[str], keys: dict[str, Path], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "wrong")
    res = airgap("save", "--sign", f"{keys['locked']}.key", "-o", str(tmp_path / "x.tar"), three_images[0], ok=False)
    assert res.code == 3 and "wrong passphrase" in res.err and "locked.key" in res.err
    assert not (tmp_path / "x.tar").exists()
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "correct horse")
    airgap("save", "--sign", f"{keys['locked']}.key", "-o", str(tmp_path / "x.tar"), three_images[0])


def _gzip_image(store: Path, name: str, lie: bool, zstd: bool = False) -> tuple[str, str]:
    """A one-layer image with a gzip (or zstd) layer; with ``lie`` the config's diff_id is
    wrong. Returns the layer's digest and the store's cache entry for it, as the config says."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"real content\n"
        ti = tarfile.TarInfo("file.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    tar = buf.getvalue()
    if zstd:
        import zstandard
        layer = zstandard.ZstdCompressor().compress(tar)
    else:
        layer = gzip.compress(tar, mtime=0)
    media_type = OCI_LAYER_ZSTD if zstd else OCI_LAYER_GZIP
    diff_id = sha256_digest(tar + (b"\0" * 512 if lie else b""))
    config = canonical_json({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}})
    manifest = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
                               "layers": [{"mediaType": media_type, "digest": sha256_digest(layer), "size": len(layer)}]})
    s = Store(store)
    with s.begin() as txn:
        txn.put_bytes(layer, Descriptor(media_type, sha256_digest(layer), len(layer)), "layer")
        txn.put_bytes(config, Descriptor(OCI_CONFIG, sha256_digest(config), len(config)), "config")
        desc = Descriptor(OCI_MANIFEST, sha256_digest(manifest), len(manifest))
        txn.put_bytes(manifest, desc, "manifest")
        txn.add_name(desc, parse_reference(name).with_default_tag())
        txn.commit()
    return sha256_digest(layer), f"{diff_id} {len(tar)}"


@pytest.mark.parametrize("zstd", [False, True], ids=["gzip", "zstd"])
def test_verify_full_catches_wrong_diff_id(airgap: Airgap, site: Airgap, keys: dict[str, Path], tmp_path: Path,
                                           zstd: bool) -> None:
    _gzip_image(airgap.store, "honest:1", lie=False, zstd=zstd)
    layer, lie = _gzip_image(airgap.store, "liar:1", lie=True, zstd=zstd)
    for name in ("honest:1", "liar:1"):
        out = tmp_path / f"{name[:-2]}.tar"
        if name == "liar:1":  # a packager that believes the config: airgap's save works the
            # diff_id out and refuses the liar, unless its cache has been told the lie
            assert airgap("save", "-o", str(out), name, ok=False).code == 3
            Store(airgap.store).cache_put("uncompressed", layer, lie)
        airgap("save", "--sign", f"{keys['packager']}.key", "-o", str(out), name)
        with tarfile.open(out) as tf:
            bundle = json.load(tf.extractfile("airgap/bundle.json"))  # type: ignore[arg-type]
        assert all("uncompressedSize" in b for b in bundle["blobs"] if "diffID" in b)
    trust = ["--trust", f"{keys['packager']}.pub"]
    site("load", "-i", str(tmp_path / "honest.tar"), "--verify", "full", *trust)
    # the liar's layer matches its distribution hash, so only full verification sees it
    before = snapshot(site.store)
    for verb in (["verify", str(tmp_path / "liar.tar")], ["load", "-i", str(tmp_path / "liar.tar"), "--verify", "full"]):
        res = site(*verb, *trust, ok=False)
        assert res.code == 3 and "diff_id" in res.err and "liar:1" in res.err, res.err
        assert snapshot(site.store) == before
    site("load", "-i", str(tmp_path / "liar.tar"), *trust)  # fast: digests and sizes only


@pytest.mark.parametrize("kind", ["fifo in a trust directory", "fifo named", "device in a trust directory"])
def test_a_key_that_is_not_a_regular_file_is_refused_at_once(signed: Path, keys: dict[str, Path], tmp_path: Path,
                                                              kind: str) -> None:
    """A FIFO among the trusted keys made the load wait forever for a writer (and a device
    was read up to the cap): keys are regular files, anything else is refused by name."""
    import os
    from ..hostile.limits import run_airgap
    trust = tmp_path / "trust.d"
    trust.mkdir()
    (trust / "packager.pub").write_bytes(keys["packager"].with_suffix(".pub").read_bytes())
    odd = trust / "odd.pub"
    if kind.startswith("fifo"):
        os.mkfifo(odd)
    else:
        odd.symlink_to("/dev/zero")
    entry = odd if kind == "fifo named" else trust
    run = run_airgap(tmp_path / "s", "load", "--trust", str(entry), "-i", str(signed), timeout=20)
    assert run.code == 3 and f"{odd} is not a regular file" in run.err and run.seconds < 10, run.err
    if kind == "fifo named":
        (tmp_path / "root").mkdir()
        assert run_airgap(tmp_path / "s", "import", str(tmp_path / "root"), "x:1").code == 0
        run = run_airgap(tmp_path / "s", "save", "--sign", str(odd), "-o", str(tmp_path / "b.tar"), "x:1", timeout=20)
        assert run.code == 3 and "is not a regular file" in run.err, run.err


def test_a_key_file_of_several_keys_is_refused(site: Airgap, signed: Path, keys: dict[str, Path],
                                              tmp_path: Path) -> None:
    """PEM readers take a file's first block and ignore the rest: a file of two keys would
    trust only the first, whatever its writer meant. One key per file; a directory holds several."""
    both = tmp_path / "both.pub"
    both.write_bytes(keys["packager"].with_suffix(".pub").read_bytes() + keys["stranger"].with_suffix(".pub").read_bytes())
    _refused_both(site, signed, [str(both)], "both.pub holds more than one PEM block")
    folder = tmp_path / "keys"
    folder.mkdir()
    for n in ("packager", "stranger"):
        (folder / f"{n}.pub").write_bytes(keys[n].with_suffix(".pub").read_bytes())
    assert "Loaded image" in site("load", "-i", str(signed), "--trust", str(folder)).out
