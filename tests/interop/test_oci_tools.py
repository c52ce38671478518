"""skopeo, umoci and containerd read airgap's store and bundles; skopeo's archives load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ..conftest import Airgap, Containerd, run_tool

pytestmark = pytest.mark.interop


def _manifest_digest(airgap: Airgap, name: str) -> str:
    return str(json.loads(airgap("inspect", name).out)[0]["Descriptor"]["digest"])


def test_store_is_an_oci_layout(airgap: Airgap, three_images: list[str]) -> None:
    listed = run_tool("umoci", "ls", "--layout", str(airgap.store)).split()
    assert sorted(listed) == sorted(f"docker.io/{n}" for n in ["example/base:1", *three_images])
    for name in three_images:
        info = json.loads(run_tool("skopeo", "inspect", f"oci:{airgap.store}:docker.io/{name}"))
        assert info["Digest"] == _manifest_digest(airgap, name)
        config = json.loads(run_tool("skopeo", "inspect", "--config", f"oci:{airgap.store}:docker.io/{name}"))
        assert config["rootfs"]["diff_ids"] == json.loads(airgap("inspect", name).out)[0]["RootFS"]["Layers"]


def test_bundle_read_by_skopeo(airgap: Airgap, make_airgap, three_images: list[str], tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.tar"
    airgap("save", "-o", str(bundle), *three_images)
    for name in three_images:
        info = json.loads(run_tool("skopeo", "inspect", f"oci-archive:{bundle}:docker.io/{name}"))
        assert info["Digest"] == _manifest_digest(airgap, name)
    # the same tar read as a docker-save archive keeps the image ID (the config digest)
    copied = tmp_path / "dir"
    run_tool("skopeo", "copy", f"docker-archive:{bundle}:{three_images[1]}", f"dir:{copied}")
    config = json.loads((copied / "manifest.json").read_text())["config"]["digest"]
    assert config == airgap.image_id(three_images[1])
    # and what skopeo writes as an oci-archive loads back into airgap, manifest digest kept
    archive = tmp_path / "skopeo.tar"
    run_tool("skopeo", "copy", f"dir:{copied}", f"oci-archive:{archive}:example/copied:2")
    digest = json.loads(run_tool("skopeo", "inspect", f"oci-archive:{archive}"))["Digest"]
    other = make_airgap("other")
    assert other("load", "-i", str(archive)).out.strip() == "Loaded image: example/copied:2"
    assert _manifest_digest(other, "example/copied:2") == digest


def test_signed_bundle_imported_by_containerd(containerd: Containerd, airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    from .test_docker import sign_key
    bundle = tmp_path / "bundle.tar"
    airgap("save", "--sign", sign_key(tmp_path), "-o", str(bundle), *three_images)
    containerd.ctr("images", "import", str(bundle))
    listed = {}
    for line in containerd.ctr("images", "ls").stdout.splitlines()[1:]:
        cols = line.split()
        listed[cols[0]] = cols[2]
    for name in three_images:
        assert listed[f"docker.io/{name}"] == _manifest_digest(airgap, name)
    for name in three_images:
        containerd.ctr("images", "rm", f"docker.io/{name}")


def test_zstd_bundle_read_by_containerd_and_skopeo(containerd: Containerd, airgap: Airgap, make_airgap,
                                                   three_images: list[str], tmp_path: Path) -> None:
    """`save --compress zstd` (for containerd, podman, Docker >= 23): containerd imports it
    and unpacks the layers to the same diff_ids; skopeo copies it; airgap loads it back."""
    bundle = tmp_path / "zstd.tar"
    airgap("save", "--compress", "zstd", "-o", str(bundle), *three_images)
    containerd.ctr("images", "import", str(bundle))  # and unpacks them into snapshots
    try:
        snapshots = containerd.ctr("snapshots", "ls").stdout
        for name in three_images:
            ids = json.loads(airgap("inspect", name).out)[0]["RootFS"]["Layers"]
            # a committed snapshot is named by the chain of diff_ids containerd computed
            # from the layers it decompressed
            chain = ids[0]
            for diff_id in ids[1:]:
                chain = "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
            assert chain in snapshots, snapshots
            out = run_tool("skopeo", "inspect", "--config", f"oci-archive:{bundle}:docker.io/{name}")
            assert json.loads(out)["rootfs"]["diff_ids"] == ids
            raw = json.loads(run_tool("skopeo", "inspect", "--raw", f"oci-archive:{bundle}:docker.io/{name}"))
            assert {lay["mediaType"] for lay in raw["layers"]} == {"application/vnd.oci.image.layer.v1.tar+zstd"}
        listed = containerd.ctr("images", "ls").stdout
        assert all(f"docker.io/{n}" in listed for n in three_images)
        run_tool("skopeo", "copy", f"oci-archive:{bundle}:docker.io/{three_images[0]}", f"oci:{tmp_path / 'oci'}:x")
        other = make_airgap("other")
        other("load", "-i", str(bundle))
        for name in three_images:
            assert other.image_id(name) == airgap.image_id(name)
    finally:
        for name in three_images:
            containerd.ctr("images", "rm", f"docker.io/{name}")


def test_bundle_inside_7z(airgap: Airgap, make_airgap, three_images: list[str], tmp_path: Path) -> None:
    """A bundle packed by 7-Zip (7zz) loads and verifies; a damaged .7z is refused."""
    bundle = tmp_path / "bundle.tar"
    airgap("save", "-o", str(bundle), *three_images)
    packed = tmp_path / "bundle.7z"
    run_tool("7zz", "a", "-bd", str(packed), str(bundle))
    listed = run_tool("7zz", "l", str(packed))
    assert "bundle.tar" in listed
    site = make_airgap("site")
    assert "Blobs:" in site("verify", str(packed)).out
    res = site("load", "-i", str(packed))
    assert res.out.splitlines() == [f"Loaded image: {n}" for n in three_images]
    assert list((site.store / ".tmp").iterdir()) == []
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.7z"
    bad.write_bytes(bytes(data))
    other = make_airgap("other")
    other("images")
    res = other("load", "-i", str(bad), ok=False)
    assert res.code == 3 and "bad.7z" in res.err
    assert list((other.store / ".tmp").iterdir()) == []


@pytest.mark.parametrize("where,field,value", [
    ("manifest", "schemaVersion", {"v": 2}), ("manifest", "annotations", {"a": 1}), ("layer", "urls", [1]),
    ("layer", "data", "not base64!"), ("entry", "platform", {"os": "linux", "architecture": "amd64", "variant": 8}),
    ("entry", "platform", {"os": "linux", "architecture": "amd64", "os.features": "x"}),
    ("index.json", "schemaVersion", "2"),
    ("manifest", "subject", {"digest": "sha256:" + "0" * 64, "size": 1, "urls": "http://x"})])
def test_a_document_containerd_cannot_read_is_refused_by_both(containerd: Containerd, airgap: Airgap, tmp_path: Path,
                                                              where: str, field: str, value: object) -> None:
    """What ``ctr images import`` cannot decode (a field of another JSON type than its Go
    struct's), airgap refuses too: what airgap stores, containerd can take."""
    from ..builders import archive_with_field
    path = archive_with_field(tmp_path / "typed.tar", where, field, value)
    with pytest.raises(AssertionError, match="cannot unmarshal|illegal base64"):
        containerd.ctr("images", "import", "--all-platforms", str(path))
    res = airgap("load", "-i", str(path), ok=False)
    assert res.code == 3 and "must be" in res.err, res.err


def test_containerd_reads_a_plain_layer_listed_as_gzip_as_the_tar_it_is(containerd: Containerd, airgap: Airgap,
                                                                       tmp_path: Path) -> None:
    """containerd unpacks a layer by its first bytes, whatever its media type says: a plain
    tar listed as tar+gzip becomes a snapshot named by the tar's digest. airgap reads it so
    too (it loads and saves it: tests/hostile/test_documents)."""
    from airgap.oci import OCI_LAYER_GZIP
    from ..builders import image, index_entry, layer_tar, oci_archive
    tar = layer_tar({"plain.txt": b"plain\n" * 100})
    img = image(layers=[tar], layer_type=OCI_LAYER_GZIP, config={"author": "labelled"})
    archive = oci_archive(tmp_path / "oci.tar", [img], [index_entry(img, "docker.io/airgap-test/labelled:1")])
    containerd.ctr("images", "import", str(archive))
    try:
        assert "sha256:" + hashlib.sha256(tar).hexdigest() in containerd.ctr("snapshots", "ls").stdout
    finally:
        containerd.ctr("images", "rm", "docker.io/airgap-test/labelled:1")
    assert airgap("load", "-i", str(archive)).out == "Loaded image: airgap-test/labelled:1\n"
    airgap("save", "-o", str(tmp_path / "b.tar"), "airgap-test/labelled:1")

def test_podman_loads_plain_gzip_and_zstd_bundles(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """`podman load` of what `save` writes, plain and with `--compress gzip|zstd` (README:
    podman takes all three): the same image IDs as airgap's, every name loaded."""
    import subprocess

    from ..conftest import podman
    for method in ("", "gzip", "zstd"):
        bundle = tmp_path / f"b-{method or 'plain'}.tar"
        airgap("save", *(["--compress", method] if method else []), "-o", str(bundle), *three_images)
        with podman(tmp_path / f"proot-{method}") as base:
            res = subprocess.run([*base, "load", "-i", str(bundle)], capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, (method, res.stderr)
            for name in three_images:
                got = subprocess.run([*base, "image", "inspect", "--format", "{{.Id}}", f"docker.io/{name}"],
                                     capture_output=True, text=True, timeout=120)
                assert got.returncode == 0, (method, name, got.stderr)
                assert "sha256:" + got.stdout.strip() == airgap.image_id(name), (method, name)


def test_podman_loads_several_images_under_their_names(airgap: Airgap, three_images: list[str],
                                                        tmp_path: Path) -> None:
    """podman reads an archive of several images as a docker archive, and takes a familiar
    RepoTags name (example/app-a:1, as `docker save` writes it) for localhost/example/app-a:1.
    airgap writes them in full: podman loads docker.io/example/app-a:1, Docker the familiar
    name as before (tests/interop/test_docker.py loads these bundles)."""
    import subprocess

    from ..conftest import podman
    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), *three_images)
    with podman(tmp_path / "proot") as base:
        res = subprocess.run([*base, "load", "-i", str(bundle)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        listed = subprocess.run([*base, "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                                text=True, timeout=120).stdout.split()
    assert sorted(listed) == sorted(f"docker.io/{n}" for n in three_images), listed
