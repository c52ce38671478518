"""Against the real Docker engine: what it saves airgap loads, what airgap saves it loads."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from typing import Any

from ..conftest import Airgap, Docker, snapshot, write_tree

pytestmark = pytest.mark.interop


@pytest.fixture
def docker_images(docker: Docker, tmp_path: Path) -> dict[str, str]:
    """base:1 and two apps FROM it, built by Docker; name -> Docker's image ID."""
    ids = {}
    ctx = write_tree(tmp_path / "ctx-base", {"base.bin": os.urandom(30000), "etc/release": "base\n"})
    ids["airgap-test/base:1"] = docker.build(ctx, "airgap-test/base:1",
                                             "FROM scratch\nCOPY . /\nLABEL org.opencontainers.image.description=base\n")
    for n in ("one", "two"):
        ctx = write_tree(tmp_path / f"ctx-{n}", {f"{n}.txt": f"{n}\n" * 50})
        ids[f"airgap-test/app-{n}:1"] = docker.build(ctx, f"airgap-test/app-{n}:1",
                                                     f"FROM airgap-test/base:1\nCOPY {n}.txt /\n")
    return ids


def test_docker_save_loads_with_same_ids(docker: Docker, docker_images: dict[str, str], airgap: Airgap, tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    docker("save", "-o", str(archive), *docker_images)
    res = airgap("load", "-i", str(archive))
    assert sorted(res.out.splitlines()) == sorted(f"Loaded image: {n}" for n in docker_images)
    for name, image_id in docker_images.items():
        assert airgap.image_id(name) == image_id
        docker_layers = json.loads(docker("inspect", name).stdout)[0]["RootFS"]["Layers"]
        assert json.loads(airgap("inspect", name).out)[0]["RootFS"]["Layers"] == docker_layers
    # the base layer is shared by all three images and stored once
    base_layer = json.loads(docker("inspect", "airgap-test/base:1").stdout)[0]["RootFS"]["Layers"][0]
    assert (airgap.store / "blobs" / "sha256" / base_layer[7:]).is_file()
    layer_blobs = {d for n in docker_images for d in json.loads(airgap("inspect", n).out)[0]["RootFS"]["Layers"]}
    assert len(layer_blobs) == 3


def sign_key(tmp_path: Path) -> str:
    from airgap.signing import generate_key
    return str(generate_key(str(tmp_path / "signer"))[0])


def test_airgap_bundle_loads_into_docker(docker: Docker, docker_images: dict[str, str], airgap: Airgap, tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    docker("save", "-o", str(archive), *docker_images)
    airgap("load", "-i", str(archive))
    # and an image airgap made itself, on top of Docker's base
    extra = write_tree(tmp_path / "extra", {"extra.txt": "made by airgap\n"})
    airgap("import", str(extra), "airgap-test/made:1", "--base", "airgap-test/base:1")
    made_id = airgap.image_id("airgap-test/made:1")
    bundle = tmp_path / "bundle.tar"
    key = sign_key(tmp_path)
    airgap("save", "--sign", key, "-o", str(bundle), *docker_images, "airgap-test/made:1")
    docker.reset()
    assert docker("images", "-q").stdout.strip() == ""
    out = docker("load", "-i", str(bundle)).stdout
    assert sorted(out.splitlines()) == sorted(f"Loaded image: {n}" for n in [*docker_images, "airgap-test/made:1"])
    with tarfile.open(bundle) as tf:
        assert tf.getnames()[1:3] == ["airgap/bundle.json", "airgap/bundle.json.sig"]
    for name, image_id in {**docker_images, "airgap-test/made:1": made_id}.items():
        info = json.loads(docker("inspect", name).stdout)[0]
        assert info["Id"] == image_id
        assert info["RepoTags"] == [name]



def _recompressed(docker: Docker, docker_images: dict[str, str], airgap: Airgap, tmp_path: Path,
                  method: str, magic: bytes) -> tuple[Path, Path]:
    """Docker's save of the images, loaded by airgap and saved with ``--compress method``:
    every layer of the bundle starts with ``magic``."""
    archive = tmp_path / "docker.tar"
    docker("save", "-o", str(archive), *docker_images)
    airgap("load", "-i", str(archive))
    bundle = tmp_path / f"{method}.tar"
    airgap("save", "--compress", method, "-o", str(bundle), *docker_images)
    with tarfile.open(bundle) as tf:
        for entry in json.load(tf.extractfile("manifest.json")):  # type: ignore[arg-type]
            for layer in entry["Layers"]:
                assert tf.extractfile(layer).read(len(magic)) == magic  # type: ignore[union-attr]
    return archive, bundle

def test_compressed_bundle_loads_into_docker_with_same_ids(docker: Docker, docker_images: dict[str, str],
                                                          airgap: Airgap, tmp_path: Path) -> None:
    """`docker save` layers are plain tars; `save --compress gzip` ships them gzip'd and
    Docker (20.10 here) loads them with the image IDs it gave them itself."""
    archive, bundle = _recompressed(docker, docker_images, airgap, tmp_path, "gzip", b"\x1f\x8b")
    assert bundle.stat().st_size < archive.stat().st_size
    docker.reset()
    out = docker("load", "-i", str(bundle)).stdout
    assert sorted(out.splitlines()) == sorted(f"Loaded image: {n}" for n in docker_images)
    for name, image_id in docker_images.items():
        info = json.loads(docker("inspect", name).stdout)[0]
        assert info["Id"] == image_id
        assert info["RootFS"]["Layers"] == json.loads(airgap("inspect", name).out)[0]["RootFS"]["Layers"]


def _docker25_archive(legacy: Path, out: Path) -> None:
    """Rewrite a legacy ``docker save`` archive in the layout Docker 25+ writes."""
    with tarfile.open(legacy) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        files = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile() or m.issym()}  # type: ignore[union-attr]
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}
    index: list[Any] = []
    new_manifest: list[Any] = []
    repositories: dict[str, Any] = {}
    for entry in manifest:
        config = blob(files[entry["Config"]])
        layers = [blob(files[name]) for name in entry["Layers"]]
        oci = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **d} for d in layers]}
        mdesc = blob(json.dumps(oci).encode())
        for tag in entry["RepoTags"]:
            index.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **mdesc,
                          "annotations": {"io.containerd.image.name": f"docker.io/{tag}",
                                          "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[1]}})
            repo, t = tag.rsplit(":", 1)
            repositories.setdefault(repo, {})[t] = str(layers[-1]["digest"])[7:]
        new_manifest.append({"Config": f"blobs/sha256/{str(config['digest'])[7:]}", "RepoTags": entry["RepoTags"],
                             "Layers": [f"blobs/sha256/{str(d['digest'])[7:]}" for d in layers]})
    docs = {"index.json": {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": index},
            "manifest.json": new_manifest, "oci-layout": {"imageLayoutVersion": "1.0.0"},
            "repositories": repositories}
    with tarfile.open(out, "w") as tf:
        for digest, data in blobs.items():
            ti = tarfile.TarInfo(f"blobs/sha256/{digest[7:]}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, doc in docs.items():
            data = json.dumps(doc).encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))


def test_docker25_layout_loads(docker: Docker, docker_images: dict[str, str], airgap: Airgap, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.tar"
    docker("save", "-o", str(legacy), *docker_images)
    modern = tmp_path / "modern.tar"
    _docker25_archive(legacy, modern)
    res = airgap("load", "-i", str(modern))
    assert sorted(res.out.splitlines()) == sorted(f"Loaded image: {n}" for n in docker_images)
    with tarfile.open(modern) as tf:
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    for entry in index["manifests"]:
        name = entry["annotations"]["io.containerd.image.name"]
        info = json.loads(airgap("inspect", name).out)[0]
        assert info["Id"] == docker_images[name[len("docker.io/"):]]
        assert info["Descriptor"]["digest"] == entry["digest"]  # the manifest bytes are kept


def test_split_bundle_cat_into_docker_load(docker: Docker, airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """`cat FILE.0* | docker load` works on a split bundle."""
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(3 << 20)})
    airgap("import", str(big), "example/big:1", "--base", "example/base:1")
    out = tmp_path / "split" / "b.tar"
    out.parent.mkdir()
    airgap("save", "--split", "1M", "-o", str(out), "example/big:1", *three_images)
    parts = sorted(out.parent.glob("b.tar.0*"))
    assert len(parts) == 4
    joined = b"".join(p.read_bytes() for p in parts)
    res = docker("load", input=joined)
    assert sorted(res.stdout.splitlines()) == sorted(f"Loaded image: {n}" for n in ["example/big:1", *three_images])
    assert json.loads(docker("inspect", "example/big:1").stdout)[0]["Id"] == airgap.image_id("example/big:1")


@pytest.mark.parametrize("config", [
    {"history": 5}, {"history": [{"created_by": ["sh"]}]}, {"os": 1}, {"created": "yesterday"},
    {"created": "10000-01-01T00:00:00Z"}, {"history": [{"created": "2023-02-29T00:00:00Z"}]}, {"Size": 1.0},
    {"config": {"Env": "A=1"}}, {"config": {"Labels": {"a": 1}}}, {"container_config": {"ExposedPorts": {"80/tcp": "x"}}},
    {"config": {"Volumes": []}}, {"config": {"Tty": 1}}, {"config": {"StopTimeout": True}},
    {"config": {"Healthcheck": {"Interval": 1.5}}}, {"config": {"Healthcheck": {"Test": "true"}}}, {"config": {"env": "A=1"}},
    {"history": [{"created_by": "a"}, {"created_by": "b"}]}, {"os": "linux/amd64"}])
def test_a_config_docker_cannot_read_is_refused_by_both(docker: Docker, airgap: Airgap, tmp_path: Path,
                                                        config: dict[str, Any]) -> None:
    """airgap refuses the configs the engine itself refuses to load: what airgap stores,
    Docker could take."""
    from airgap.digest import sha256_digest
    from ..builders import layer_tar, tar_of
    layer = layer_tar({"a.txt": b"a\n"})
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                      "diff_ids": [sha256_digest(layer)]}, **config}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["example/typed:1"], "Layers": ["layer.tar"]}])
    archive = tmp_path / "typed.tar"
    archive.write_bytes(tar_of([("config.json", cfg), ("layer.tar", layer), ("manifest.json", manifest.encode())]))
    assert docker("load", "-i", str(archive), check=False).returncode != 0
    res = airgap("load", "-i", str(archive), ok=False)
    assert res.code == 3 and any(w in res.err for w in ("config field", "spelled another way", "non-empty layers", "platform component")), res.err


def test_a_config_of_every_type_docker_reads_loads_in_both(docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    """The other side of the rule above: a config with every container-config field in the
    types Docker (and containerd) read, nulls where Go takes them, and times at the edges of
    RFC 3339 (year 0, a leap day, a comma fraction, a -23:59 offset) loads in the engine and
    in airgap with one image ID."""
    from airgap.digest import sha256_digest
    from ..builders import layer_tar, tar_of
    layer = layer_tar({"a.txt": b"a\n"})
    container = {"Hostname": "", "Domainname": "", "User": "1000", "AttachStdin": False, "AttachStdout": False,
                 "AttachStderr": False, "ExposedPorts": {"80/tcp": {}, "53/udp": None}, "Tty": False,
                 "OpenStdin": False, "StdinOnce": False, "Env": ["A=1", None], "Cmd": ["sh", "-c", "true"],
                 "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Retries": 3, "Timeout": None},
                 "ArgsEscaped": True, "Image": "", "Volumes": {"/data": {}}, "WorkingDir": "/", "Entrypoint": None,
                 "OnBuild": None, "Labels": {"a": "b", "n": None}, "StopSignal": "SIGTERM", "StopTimeout": 10,
                 "Shell": ["/bin/sh", "-c"], "NetworkDisabled": False, "MacAddress": ""}
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "0000-02-29T00:00:00,5-23:59",
                      "history": [{"created": "2024-02-29T23:59:59.123456789Z", "created_by": "COPY"}],
                      "config": container, "container_config": container, "Size": 0,
                      "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["example/typed:1"], "Layers": ["layer.tar"]}])
    archive = tmp_path / "typed.tar"
    archive.write_bytes(tar_of([("config.json", cfg), ("layer.tar", layer), ("manifest.json", manifest.encode())]))
    docker("load", "-i", str(archive))
    airgap("load", "-i", str(archive))
    assert json.loads(docker("inspect", "example/typed:1").stdout)[0]["Id"] == airgap.image_id("example/typed:1") \
        == sha256_digest(cfg)


def test_docker_reads_a_field_in_another_case_so_airgap_refuses_it(docker: Docker, airgap: Airgap,
                                                                   tmp_path: Path) -> None:
    """Go's JSON reader matches field names in any case, the last one winning: given
    ``Config`` and then ``config``, the engine loads the second image. airgap, reading
    ``Config``, would have checked the first: it refuses the archive instead."""
    from airgap.digest import sha256_digest
    from ..builders import layer_tar, tar_of
    layer = layer_tar({"a.txt": b"a\n"})
    configs = [json.dumps({"architecture": "amd64", "os": "linux", "comment": which,
                           "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]}}).encode()
               for which in ("checked", "loaded")]
    manifest = (b'[{"Config": "a.json", "RepoTags": ["example/spelled:1"], "Layers": ["layer.tar"], '
                b'"config": "b.json"}]')
    archive = tmp_path / "spelled.tar"
    archive.write_bytes(tar_of([("a.json", configs[0]), ("b.json", configs[1]), ("layer.tar", layer),
                                ("manifest.json", manifest)]))
    docker("load", "-i", str(archive))
    assert json.loads(docker("inspect", "example/spelled:1").stdout)[0]["Id"] == sha256_digest(configs[1])
    res = airgap("load", "-i", str(archive), ok=False)
    assert res.code == 3 and "spelled another way" in res.err, res.err


def _layer_with(member: str, kind: str, link: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(tarfile.TarInfo("d"), io.BytesIO(b""))
        ti = tarfile.TarInfo(member)
        ti.type = {"file": tarfile.REGTYPE, "hard link": tarfile.LNKTYPE, "symlink": tarfile.SYMTYPE}[kind]
        ti.linkname = link
        tf.addfile(ti, io.BytesIO(b""))
    return buf.getvalue()


@pytest.mark.parametrize("member,kind,link", [("../x", "file", ""), ("a/../../x", "file", ""),
                                               ("s/t", "symlink", "../../etc/passwd")])
def test_names_leaving_a_layers_root_are_clamped_as_docker_does(docker: Docker, airgap: Airgap, tmp_path: Path,
                                                                member: str, kind: str, link: str) -> None:
    """Docker applies a layer inside a chroot of its root, so ``../x`` is ``/x`` there:
    `docker import` takes such a tar, and so does `airgap import`, whose image then loads
    into Docker. (airgap never unpacks a layer.)"""
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_layer_with(member, kind, link))
    docker("import", str(layer), "example/docker-made:1")
    airgap("import", str(layer), "example/odd:1")
    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), "example/odd:1")
    docker("load", "-i", str(bundle))
    assert docker("inspect", "-f", "{{.Id}}", "example/odd:1").stdout.strip() == airgap.image_id("example/odd:1")


def test_import_takes_what_gnu_tar_writes_and_refuses_a_cut_tar(docker: Docker, airgap: Airgap,
                                                                 tmp_path: Path) -> None:
    """A tar as GNU tar writes it (GNU long names, its last record filled with zeros) gets
    the layer Docker gets from it, padding hashed in as Docker hashes it; the same tar cut
    short is refused by both (airgap read only its first header, and stored what it was
    given: an image no `docker load` would take)."""
    root = tmp_path / "root"
    deep = root / ("d" * 120) / ("f" * 110)
    deep.parent.mkdir(parents=True)
    deep.write_bytes(os.urandom(30000))
    (root / "small").write_text("x\n")
    layer = tmp_path / "gnu.tar"
    subprocess.run(["tar", "--format=gnu", "-cf", str(layer), "-C", str(root), "."], check=True)
    assert layer.stat().st_size % 10240 == 0 and b"././@LongLink" in layer.read_bytes()
    docker("import", str(layer), "example/gnu:1")
    airgap("import", str(layer), "example/gnu:1")
    want = json.loads(docker("inspect", "example/gnu:1").stdout)[0]["RootFS"]["Layers"]
    assert json.loads(airgap("inspect", "example/gnu:1").out)[0]["RootFS"]["Layers"] == want
    cut = tmp_path / "cut.tar"
    cut.write_bytes(layer.read_bytes()[:20000])
    assert docker("import", str(cut), "example/cut:1", check=False).returncode != 0
    airgap("images")
    before = snapshot(airgap.store)
    res = airgap("import", str(cut), "example/cut:1", ok=False)
    assert res.code == 3 and f"{cut}: truncated" in res.err, res.err
    assert snapshot(airgap.store) == before


def test_a_load_that_takes_a_name_says_so_as_docker_does(docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    """A name moved to a newly loaded image: Docker prints "The image X already exists,
    renaming the old one with ID <old image ID> to empty string" on stdout, before its
    "Loaded image" line. airgap printed it on stderr, with the old manifest's digest."""
    site = Airgap(tmp_path / "site", airgap.capsys)
    for i in (1, 2):
        airgap("import", str(write_tree(tmp_path / f"d{i}", {"f": f"{i}\n"})), "example/moved:1")
        bundle = tmp_path / f"b{i}.tar"
        airgap("save", "-o", str(bundle), "example/moved:1")
        want = docker("load", "-i", str(bundle)).stdout
        got = site("load", "-i", str(bundle)).out
        assert got == want, (got, want)
    assert "renaming the old one with ID sha256:" in got


def test_an_image_that_repeats_a_layer_goes_both_ways(docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    """A file written, changed, and written back as it was makes a third layer byte for byte
    the first: the manifest lists one blob twice and the config one diff_id twice. Loaded
    from `docker save`, saved again and loaded by Docker, the image keeps its ID and its
    whole layer list; the blob is stored and carried once."""
    ctx = write_tree(tmp_path / "ctx", {"a/same.txt": "the first\n" * 100, "b/same.txt": "the second\n"})
    os.utime(ctx / "a" / "same.txt", (1_600_000_000, 1_600_000_000))
    image_id = docker.build(ctx, "airgap-test/twice:1", "FROM scratch\nCOPY a/ /\nCOPY b/ /\nCOPY a/ /\n")
    layers = json.loads(docker("inspect", "airgap-test/twice:1").stdout)[0]["RootFS"]["Layers"]
    assert len(layers) == 3 and layers[0] == layers[2] != layers[1]  # what the test is about
    archive = tmp_path / "docker.tar"
    docker("save", "-o", str(archive), "airgap-test/twice:1")
    assert airgap("load", "-i", str(archive)).out == "Loaded image: airgap-test/twice:1\n"
    assert airgap.image_id("airgap-test/twice:1") == image_id
    assert json.loads(airgap("inspect", "airgap-test/twice:1").out)[0]["RootFS"]["Layers"] == layers
    airgap("store", "check")
    bundle = tmp_path / "bundle.tar"
    airgap("save", "-o", str(bundle), "airgap-test/twice:1")
    with tarfile.open(bundle) as tf:
        names = tf.getnames()
    assert len(names) == len(set(names)) and names.count(f"blobs/sha256/{layers[0][7:]}") == 1
    docker("rmi", "airgap-test/twice:1")
    assert "Loaded image: airgap-test/twice:1" in docker("load", "-i", str(bundle)).stdout
    again = json.loads(docker("inspect", "airgap-test/twice:1").stdout)[0]
    assert again["Id"] == image_id and again["RootFS"]["Layers"] == layers



def test_an_image_without_layers_loads_into_docker(docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    """An image of a config alone (no layer: what `FROM scratch` + `LABEL` builds, which
    `docker save` refuses to export) comes in an OCI archive; airgap loads and saves it, and
    Docker loads the bundle with the same image ID."""
    from ..builders import image, index_entry, oci_archive
    img = image(layers=[], config={"config": {"Labels": {"only": "label"}}})
    archive = oci_archive(tmp_path / "oci.tar", [img], [index_entry(img, "docker.io/airgap-test/empty:1")])
    assert airgap("load", "-i", str(archive)).out == "Loaded image: airgap-test/empty:1\n"
    assert airgap.image_id("airgap-test/empty:1") == img.config_digest
    bundle = tmp_path / "bundle.tar"
    airgap("save", "-o", str(bundle), "airgap-test/empty:1")
    assert "Loaded image: airgap-test/empty:1" in docker("load", "-i", str(bundle)).stdout
    info = json.loads(docker("inspect", "airgap-test/empty:1").stdout)[0]
    assert info["Id"] == img.config_digest and info["Config"]["Labels"] == {"only": "label"}



def test_a_plain_layer_listed_as_gzip_loads_in_both(docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    """Docker tells a layer's compression by its first bytes (as containerd does:
    test_oci_tools), not by its media type: airgap loads an image whose plain tar layer is
    listed as tar+gzip, and Docker loads airgap's bundle of it with the same image ID and
    the tar's digest as the layer's diff_id."""
    from airgap.oci import OCI_LAYER_GZIP
    from ..builders import image, index_entry, layer_tar, oci_archive
    tar = layer_tar({"plain.txt": b"plain\n" * 100})
    img = image(layers=[tar], layer_type=OCI_LAYER_GZIP)
    archive = oci_archive(tmp_path / "oci.tar", [img], [index_entry(img, "docker.io/airgap-test/labelled:1")])
    assert airgap("load", "-i", str(archive)).out == "Loaded image: airgap-test/labelled:1\n"
    bundle = tmp_path / "bundle.tar"
    airgap("save", "-o", str(bundle), "airgap-test/labelled:1")
    assert "airgap-test/labelled:1" in docker("load", "-i", str(bundle)).stdout
    info = json.loads(docker("inspect", "airgap-test/labelled:1").stdout)[0]
    assert info["Id"] == airgap.image_id("airgap-test/labelled:1") == img.config_digest
    assert info["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(tar).hexdigest()]


def test_a_compressed_layer_listed_as_a_plain_tar_is_refused_by_both(docker: Docker, airgap: Airgap,
                                                                     tmp_path: Path) -> None:
    """The other way round: gzip bytes listed as a plain tar, the config giving their digest
    as the diff_id. Docker decompresses them (it goes by the bytes) and refuses the image;
    so does airgap."""
    import gzip
    from ..builders import image, index_entry, layer_tar, tar_of
    tar = layer_tar({"plain.txt": b"plain\n" * 100})
    gz = gzip.compress(tar, mtime=0)
    gz_digest = "sha256:" + hashlib.sha256(gz).hexdigest()
    img = image(layers=[gz], diff_ids=[gz_digest])
    index = json.dumps({"schemaVersion": 2, "manifests": [index_entry(img, "docker.io/airgap-test/liar:1")]})
    manifest = json.dumps([{"Config": f"blobs/sha256/{img.config_digest[7:]}", "RepoTags": ["airgap-test/liar:1"],
                            "Layers": [f"blobs/sha256/{gz_digest[7:]}"]}])
    archive = tmp_path / "liar.tar"
    archive.write_bytes(tar_of([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index.encode()),
                                ("manifest.json", manifest.encode()),
                                *((f"blobs/sha256/{d[7:]}", b) for d, b in img.blobs.items())]))
    refused = docker("load", "-i", str(archive), check=False)
    # it decompressed the layer: it names the tar's digest as what it got
    assert refused.returncode != 0 and hashlib.sha256(tar).hexdigest() in refused.stderr, refused.stderr
    res = airgap("load", "-i", str(archive), ok=False)
    assert res.code == 3 and "listed as an uncompressed layer" in res.err, res.err


def test_a_load_of_the_same_image_again_says_what_docker_says(docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    """The same image under another manifest digest (its layers compressed by `save
    --compress`): Docker compares image IDs, says nothing of renaming and leaves no
    `<none>` image; nor does airgap."""
    airgap("import", str(write_tree(tmp_path / "d", {"f": "same\n"})), "example/same:1")
    plain, packed = tmp_path / "plain.tar", tmp_path / "packed.tar"
    airgap("save", "-o", str(plain), "example/same:1")
    airgap("save", "--compress", "gzip", "-o", str(packed), "example/same:1")
    site = Airgap(tmp_path / "site", airgap.capsys)
    for bundle in (plain, packed):
        want = docker("load", "-i", str(bundle)).stdout
        got = site("load", "-i", str(bundle)).out
        assert got == want, (got, want)
    assert docker("images", "-aq", "--no-trunc").stdout.split() == site("images", "-aq", "--no-trunc").out.split()


def test_docker_loads_at_most_125_layers_and_airgap_says_so(docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    """Docker's layer store refuses a chain deeper than 125 ("max depth exceeded"), at
    `docker load` too. `import --base` refuses to make a 126th layer, as `docker commit`
    does; `save` of a deeper image (a registry's) warns, and Docker does refuse it."""
    from ..builders import image, index_entry, layer_tar, oci_archive
    images = {n: image(layers=[layer_tar({f"f{i}": b"%d\n" % i}) for i in range(n)]) for n in (124, 126)}
    for n, img in images.items():
        archive = oci_archive(tmp_path / f"deep{n}.tar", [img], [index_entry(img, f"docker.io/example/deep:{n}")])
        airgap("load", "-i", str(archive))
    ctx = write_tree(tmp_path / "top", {"top": "top\n"})
    airgap("import", str(ctx), "example/deep:125", "--base", "example/deep:124")  # the 125th layer
    res = airgap("import", str(ctx), "example/deep:too", "--base", "example/deep:125", ok=False)
    assert res.code == 1 and "max depth exceeded" in res.err, res.err
    assert "example/deep:too" not in airgap("images").out
    ok, deep = tmp_path / "ok.tar", tmp_path / "deep.tar"
    res = airgap("save", "-o", str(ok), "example/deep:125")
    assert "WARNING" not in res.err
    assert "Loaded image: example/deep:125" in docker("load", "-i", str(ok)).stdout
    assert json.loads(docker("inspect", "example/deep:125").stdout)[0]["Id"] == airgap.image_id("example/deep:125")
    res = airgap("save", "-o", str(deep), "example/deep:126")
    assert "WARNING: example/deep:126 has 126 layers: `docker load` refuses more than 125" in res.err, res.err
    refused = docker("load", "-i", str(deep), check=False)
    assert refused.returncode != 0 and "max depth exceeded" in refused.stderr, refused.stderr


def test_a_windows_image_is_saved_with_a_warning_docker_on_linux_refuses_it(docker: Docker, airgap: Airgap,
                                                                             tmp_path: Path) -> None:
    """A Windows image loads into the store and saves (a Windows site takes it), with a
    warning: Docker on Linux refuses it, as it says. A Linux image gets no warning."""
    from ..builders import image, index_entry, oci_archive
    for name, os_ in (("win", "windows"), ("lin", "linux")):
        img = image({name: b"x"}, config={"os": os_, "architecture": "amd64"})
        airgap("load", "-i", str(oci_archive(tmp_path / f"{name}.tar", [img], [index_entry(img, f"docker.io/example/{name}:1")])))
        bundle = tmp_path / f"{name}-bundle.tar"
        res = airgap("save", "-o", str(bundle), f"example/{name}:1")
        loaded = docker("load", "-i", str(bundle), check=False)
        if os_ == "windows":
            assert "WARNING: example/win:1 is a Windows image: Docker on Linux refuses it" in res.err, res.err
            assert loaded.returncode != 0 and "cannot load windows image on linux" in loaded.stderr, loaded.stderr
        else:
            assert "WARNING" not in res.err and loaded.returncode == 0, (res.err, loaded.stderr)


def test_zstd_bundles_are_for_docker_23_and_later(docker: Docker, docker_images: dict[str, str],
                                                  airgap: Airgap, tmp_path: Path) -> None:
    """`save --compress zstd` is for Docker >= 23 (README, `save --help`): an engine from
    before refuses its layers (Debian 12's 20.10: "archive/tar: invalid tar header"); a
    later one loads them with the image IDs it gave the images itself."""
    _, bundle = _recompressed(docker, docker_images, airgap, tmp_path, "zstd", b"\x28\xb5\x2f\xfd")
    docker.reset()
    version = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    loaded = docker("load", "-i", str(bundle), check=False)
    if int(version.split(".")[0]) < 23:
        assert loaded.returncode != 0 and "invalid tar header" in loaded.stderr, (version, loaded.stderr)
        return
    assert loaded.returncode == 0, (version, loaded.stderr)
    for name, image_id in docker_images.items():
        assert json.loads(docker("inspect", name).stdout)[0]["Id"] == image_id
