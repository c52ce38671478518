"""push --all / -f / -i into the real distribution registry: names, digests, each blob once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import Airgap, need
from ..registry_peer import Registry, start_registry

pytestmark = pytest.mark.interop


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    reg = start_registry(need("docker-registry"), tmp_path / "site", "plain")
    yield reg
    reg.stop()


def _digest_at(reg: Registry, repo: str, ref: str) -> str:
    r = httpx.head(f"http://{reg.host}/v2/{repo}/manifests/{ref}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.status_code == 200, (repo, ref, r.status_code)
    return r.headers["Docker-Content-Digest"]


def _catalog(reg: Registry) -> list[str]:
    return list(httpx.get(f"http://{reg.host}/v2/_catalog").json()["repositories"])


def test_push_all_keeps_names_and_digests_and_uploads_each_blob_once(
        airgap: Airgap, three_images: list[str], site: Registry) -> None:
    airgap("tag", "example/app-a:1", "quay.io/team/app:1")
    want = {n: json.loads(airgap("inspect", n).out)[0]["Descriptor"]["digest"]
            for n in ["example/base:1", *three_images, "quay.io/team/app:1"]}
    blobs = set()
    for n in want:
        info = json.loads(airgap("inspect", n).out)[0]
        blobs.add(info["Id"])
        blobs.update(info["RootFS"]["Layers"])  # uncompressed layers: digest = diff_id
    import re

    from ..registry_peer import BreakingProxy
    recorder = BreakingProxy(site.host, limit=1 << 40)  # never cuts: counts what reaches the registry
    try:
        out = json.loads(airgap("push", "--all", "--format", "json", f"{recorder.host}/mirror").out)
        sent = b"".join(recorder.requests)
    finally:
        recorder.close()
    assert out["failed"] == 0 and len(out["images"]) == 4  # app-a has two names
    finals = re.findall(rb"PUT /v2/[^ ]+/blobs/uploads/[^ ]*digest=(sha256(?::|%3A)[0-9a-f]{64})", sent)
    uploaded = [d.decode().replace("%3A", ":") for d in finals]
    assert sorted(uploaded) == sorted(blobs), uploaded  # every blob once, the shared base layer too
    assert out["uploaded"] == len(blobs), out
    assert out["mounted"] >= 3  # ... and mounted into the other repositories
    assert len(re.findall(rb"POST /v2/[^ ]+/blobs/uploads/\?mount=", sent)) >= 3
    for name, digest in want.items():
        path = name.replace("quay.io/", "").replace(":1", "")
        path = path if "/" in path else f"library/{path}"
        assert _digest_at(site, f"mirror/{path}", "1") == digest
    again = json.loads(airgap("push", "--all", "--format", "json", f"{site.host}/mirror").out)
    assert again["uploaded"] == 0 and again["mounted"] == 0
    assert {r["status"] for r in again["images"]} == {"up to date"}
    text = airgap("push", "--all", f"{site.host}/mirror").out
    assert f"{site.host}/mirror/example/app-b:1: up to date" in text and "0 uploaded" in text


def test_push_refuses_colliding_names_before_uploading(airgap: Airgap, three_images: list[str],
                                                       site: Registry) -> None:
    airgap("tag", "example/app-b:1", "other.example.com/example/app-a:1")
    res = airgap("push", "--all", f"{site.host}", ok=False)
    assert res.code == 2 and "example/app-a:1" in res.err and "would both be pushed" in res.err
    assert _catalog(site) == []


def test_push_a_list_and_a_bundle(airgap: Airgap, three_images: list[str], site: Registry,
                                  tmp_path: Path) -> None:
    listing = tmp_path / "images.txt"
    listing.write_text("# what the site needs\n\nexample/app-c:1\n")
    out = json.loads(airgap("push", "-f", str(listing), "--format", "json", f"{site.host}/x").out)
    assert [r["references"] for r in out["images"]] == [[f"{site.host}/x/example/app-c:1"]]
    from airgap.signing import generate_key
    key, pub, _, _ = generate_key(str(tmp_path / "k"))
    bundle = tmp_path / "b.tar"
    airgap("save", "--sign", str(key), "-o", str(bundle), *three_images)
    empty = Airgap(tmp_path / "empty", airgap.capsys)
    res = empty("push", "-i", str(bundle), "--all", "--trust", str(pub), f"{site.host}/y")
    assert res.out.count(": pushed") == 3
    want = json.loads(airgap("inspect", three_images[0]).out)[0]["Descriptor"]["digest"]
    assert _digest_at(site, "y/example/app-a", "1") == want
    stranger, _, _, _ = generate_key(str(tmp_path / "s"))
    res = empty("push", "-i", str(bundle), "--all", "--trust", str(tmp_path / "s.pub"), f"{site.host}/z", ok=False)
    assert res.code == 3 and "not trusted" in res.err
    assert not any(r.startswith("z/") for r in _catalog(site))


def test_save_and_pull_take_the_same_list(airgap: Airgap, three_images: list[str], site: Registry,
                                          tmp_path: Path) -> None:
    listing = tmp_path / "images.txt"
    listing.write_text("example/app-a:1   # the app\n\n# and its sibling\nexample/app-b:1\n")
    airgap("save", "-f", str(listing), "-o", str(tmp_path / "b.tar"))
    other = Airgap(tmp_path / "other", airgap.capsys)
    out = other("load", "-i", str(tmp_path / "b.tar")).out
    assert "example/app-a:1" in out and "example/app-b:1" in out and "app-c" not in out
    airgap("push", "-f", str(listing), f"{site.host}")
    pulled = tmp_path / "pull.txt"
    pulled.write_text(f"{site.host}/example/app-a:1\n{site.host}/example/app-b:1\n")
    third = Airgap(tmp_path / "third", airgap.capsys)
    third("pull", "-q", "-f", str(pulled))
    assert third.image_id(f"{site.host}/example/app-b:1") == airgap.image_id("example/app-b:1")


def test_containerd_pulls_the_original_name_through_the_site_registry(
        airgap: Airgap, three_images: list[str], site: Registry, containerd: Any, tmp_path: Path) -> None:
    """push --all with a prefix, mirror-config containerd, then `ctr images pull --hosts-dir`
    of docker.io/example/app-a:1 resolves at the site registry, with the same digest."""
    airgap("push", "--all", f"{site.host}/mirror")
    hosts = tmp_path / "certs.d"
    airgap("mirror-config", "containerd", "--registry", f"{site.host}/mirror", "--insecure", "-o", str(hosts))
    assert (hosts / "docker.io" / "hosts.toml").is_file()
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts), "docker.io/example/app-a:1")
    listed = containerd.ctr("images", "ls").stdout
    want = json.loads(airgap("inspect", "example/app-a:1").out)[0]["Descriptor"]["digest"]
    line = next(x for x in listed.splitlines() if x.startswith("docker.io/example/app-a:1"))
    assert want in line, listed
    containerd.ctr("images", "rm", "docker.io/example/app-a:1")


def test_mirror_config_files(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    airgap("tag", "example/app-a:1", "quay.io/team/app:1")
    out = airgap("mirror-config", "podman", "--registry", "site.lan:5000/mirror", "--insecure").out
    assert 'prefix = "docker.io"' in out and 'prefix = "quay.io"' in out
    assert 'location = "site.lan:5000/mirror"' in out and "insecure = true" in out
    k3s = airgap("mirror-config", "k3s", "--registry", "site.lan:5000/mirror").out
    assert '"^(.*)$": "mirror/$1"' in k3s and "https://site.lan:5000" in k3s
    res = airgap("mirror-config", "docker", "--registry", "site.lan:5000", "--insecure")
    doc = json.loads(res.out.split("\n", 1)[1])
    assert doc == {"registry-mirrors": ["http://site.lan:5000"], "insecure-registries": ["site.lan:5000"]}
    assert "Docker Hub only" in res.err and "quay.io" in res.err
    assert airgap("mirror-config", "docker", "--registry", "site.lan:5000/mirror", ok=False).code == 2


def test_a_broken_upload_is_completed(airgap: Airgap, site: Registry, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection breaks in the middle of a 6 MiB layer: the client asks the registry
    where the upload stands (distribution gives a broken session up, so a new one
    follows) and the push completes with the right digest."""
    import os

    from airgap.registry import client as registry_client

    from ..conftest import write_tree
    from ..registry_peer import BreakingProxy
    monkeypatch.setattr(registry_client, "UPLOAD_CHUNK", 1 << 20)
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(6 << 20)})
    airgap("import", str(big), "example/big:1")
    proxy = BreakingProxy(site.host, limit=(3 << 20) + 300_000, upward=True)
    try:
        out = json.loads(airgap("push", "--all", "--format", "json", proxy.host).out)
        assert out["failed"] == 0 and proxy.cuts == 1
        assert any(r.startswith(b"GET /v2/example/big/blobs/uploads/") for r in proxy.requests)
        want = json.loads(airgap("inspect", "example/big:1").out)[0]["Descriptor"]["digest"]
        assert _digest_at(site, "example/big", "1") == want
    finally:
        proxy.close()


def test_an_upload_resumes_from_the_reported_offset(airgap: Airgap, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry that keeps a broken session (as the spec allows) reports its offset:
    the rest is sent from there, not from zero."""
    import hashlib
    import os
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from airgap.registry import client as registry_client
    monkeypatch.setattr(registry_client, "UPLOAD_CHUNK", 1 << 20)
    data = os.urandom(5 << 20)
    got = bytearray()
    state = {"patches": 0, "status": 0}

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def _reply(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in {"Content-Length": "0", **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()

        def do_HEAD(self) -> None:
            self._reply(404)

        def do_GET(self) -> None:
            if "/uploads/" in self.path:
                state["status"] += 1
                return self._reply(204, {"Range": f"0-{len(got) - 1}", "Location": "/v2/x/blobs/uploads/u"})
            self._reply(200)

        def do_POST(self) -> None:
            self._reply(202, {"Location": "/v2/x/blobs/uploads/u"})

        def do_PATCH(self) -> None:
            n = int(self.headers["Content-Length"])
            start = int(self.headers["Content-Range"].split("-")[0])
            assert start == len(got)
            body = self.rfile.read(n)
            state["patches"] += 1
            if state["patches"] == 3:  # keep half, then break the connection
                got.extend(body[: n // 2])
                self.close_connection = True
                self.connection.shutdown(2)
                return
            got.extend(body)
            self._reply(202, {"Location": "/v2/x/blobs/uploads/u", "Range": f"0-{len(got) - 1}"})

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if "/blobs/" in self.path:
                ok = "sha256:" + hashlib.sha256(got).hexdigest() in self.path
                return self._reply(201 if ok else 400)
            self._reply(201)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = registry_client.RegistryClient(f"127.0.0.1:{httpd.server_address[1]}")
        from airgap.digest import HashingReader, sha256_digest
        from airgap.oci import Descriptor
        desc = Descriptor("application/octet-stream", sha256_digest(data), len(data))
        client.upload_blob("x", desc, lambda: HashingReader(__import__("io").BytesIO(data), desc.digest, len(data), "b"))
        client.close()
        assert bytes(got) == data and state["status"] == 1 and state["patches"] == 6
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("mode", ["basic", "tls"])
def test_push_all_with_auth_and_tls(airgap: Airgap, three_images: list[str], tmp_path: Path, mode: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from ..registry_peer import PASSWORD, USER
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setattr("airgap.registry.client.is_loopback", lambda host: False)  # really check TLS
    reg = start_registry(need("docker-registry"), tmp_path / "reg", mode)
    try:
        extra = ["--ca-cert", str(reg.ca)] if mode == "tls" else []
        if mode == "basic":
            monkeypatch.setenv("AIRGAP_INSECURE_REGISTRIES", reg.host)
            airgap("login", "-u", USER, "-p", PASSWORD, reg.host)
        out = json.loads(airgap("push", "--all", "--format", "json", *extra, f"{reg.host}/site").out)
        assert out["failed"] == 0 and len(out["images"]) == 4
        if mode == "tls":
            res = airgap("push", "--all", f"{reg.host}/site", ok=False)  # no CA: refused, not ignored
            assert res.code == 1 and "failed" in res.out + res.err
    finally:
        reg.stop()


def test_docker_pulls_from_the_site_registry(airgap: Airgap, three_images: list[str], site: Registry,
                                             docker: Any) -> None:
    """What push --all delivered, the real Docker engine pulls, with the source's image ID."""
    airgap("push", "--all", site.host)
    docker("pull", f"{site.host}/example/app-b:1")
    got = docker("inspect", "-f", "{{.Id}}", f"{site.host}/example/app-b:1").stdout.strip()
    assert got == airgap.image_id("example/app-b:1")


def test_podman_pulls_the_original_name_through_the_mirror(airgap: Airgap, three_images: list[str],
                                                           site: Registry, tmp_path: Path) -> None:
    """push --all with a prefix, mirror-config podman, then `podman pull docker.io/...`."""
    import os
    import subprocess

    from ..conftest import podman
    airgap("push", "--all", f"{site.host}/mirror")
    conf = tmp_path / "containers"
    airgap("mirror-config", "podman", "--registry", f"{site.host}/mirror", "--insecure", "-o", str(conf))
    dropin = conf / "registries.conf.d" / "50-airgap-mirror.conf"
    assert dropin.is_file()
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_CONFIG"}
    env["CONTAINERS_REGISTRIES_CONF"] = str(dropin)
    with podman(tmp_path / "proot") as base:
        res = subprocess.run([*base, "pull", "-q", "docker.io/example/app-c:1"], env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        got = subprocess.run([*base, "image", "inspect", "--format", "{{.Id}}", "docker.io/example/app-c:1"],
                             env=env, capture_output=True, text=True, timeout=120).stdout.strip()
    assert "sha256:" + got == airgap.image_id("example/app-c:1")


def _put_artifacts(reg: Registry, repo: str, subject: dict[str, Any]) -> tuple[str, str]:
    """A cosign-style signature (tag sha256-<hex>.sig) and an OCI 1.1 SBOM referrer (with
    the fallback tag sha256-<hex>, as distribution 2.x has no referrers API) of ``subject``."""
    import io

    from airgap.digest import HashingReader, sha256_digest
    from airgap.oci import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Descriptor, canonical_json
    from airgap.registry.client import RegistryClient
    client = RegistryClient(reg.host)

    def blob(data: bytes, media_type: str) -> dict[str, Any]:
        d = Descriptor(media_type, sha256_digest(data), len(data))
        client.upload_blob(repo, d, lambda: HashingReader(io.BytesIO(data), d.digest, d.size, "b"))
        return {"mediaType": media_type, "digest": d.digest, "size": d.size}

    digest = subject["digest"]
    payload = canonical_json({"critical": {"identity": {"docker-reference": repo},
                                           "image": {"docker-manifest-digest": digest},
                                           "type": "cosign container image signature"}, "optional": None})
    layer = {**blob(payload, "application/vnd.dev.cosign.simplesigning.v1+json"),
             "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDtest"}}
    config = canonical_json({"architecture": "", "os": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                             "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}})
    sig = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": blob(config, OCI_CONFIG),
                          "layers": [layer]})
    client.put_manifest(repo, digest.replace(":", "-") + ".sig", sig, OCI_MANIFEST, "sig")
    sbom = blob(b'{"spdxVersion": "SPDX-2.3", "name": "app"}', "application/spdx+json")
    empty = blob(b"{}", "application/vnd.oci.empty.v1+json")
    ref = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
                          "config": empty, "layers": [sbom], "subject": subject})
    client.put_manifest(repo, sha256_digest(ref), ref, OCI_MANIFEST, "sbom")
    fallback = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256_digest(ref), "size": len(ref),
         "artifactType": "application/spdx+json"}]})
    client.put_manifest(repo, digest.replace(":", "-"), fallback, OCI_INDEX, "fallback")
    client.close()
    return sha256_digest(sig), sha256_digest(ref)


def test_attached_artifacts_travel_with_their_image(airgap: Airgap, three_images: list[str], site: Registry,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    airgap("push", "--all", site.host)
    desc = json.loads(airgap("inspect", "example/app-a:1").out)[0]["Descriptor"]
    subject = {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]}
    sig, sbom = _put_artifacts(site, "example/app-a", subject)
    # pull brings them, linked to their image; images lists the image only
    far = Airgap(tmp_path / "far", airgap.capsys)
    far("pull", f"{site.host}/example/app-a:1")
    info = json.loads(far("inspect", f"{site.host}/example/app-a:1").out)[0]
    assert {(a["Kind"], a["Digest"]) for a in info["Attachments"]} == {("signature", sig), ("referrer", sbom)}
    assert len(far("images", "-q").out.split()) == 1
    # serve serves them: the cosign tag, and the referrers API
    import io
    import threading

    from airgap.registry.server import make_server
    from airgap.store import Store
    server = make_server(Store(far.store), "127.0.0.1", 0, log=io.StringIO())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v2/{site.host}/example/app-a"
        refs = httpx.get(f"{url}/referrers/{desc['digest']}").json()
        assert [m["digest"] for m in refs["manifests"]] == [sbom]
        assert refs["manifests"][0]["artifactType"] == "application/spdx+json"
        assert httpx.get(f"{url}/referrers/{desc['digest']}?artifactType=x/y").json()["manifests"] == []
        tag = desc["digest"].replace(":", "-") + ".sig"
        assert httpx.head(f"{url}/manifests/{tag}").headers["Docker-Content-Digest"] == sig
        assert tag in httpx.get(f"{url}/tags/list").json()["tags"]
    finally:
        server.shutdown()
        server.server_close()
    bare = Airgap(tmp_path / "bare", airgap.capsys)
    bare("pull", "--no-attached", f"{site.host}/example/app-a:1")
    assert "Attachments" not in json.loads(bare("inspect", f"{site.host}/example/app-a:1").out)[0]
    # save puts them in the bundle, under the signature; load keeps them
    from airgap.signing import generate_key
    key, pub, _, _ = generate_key(str(tmp_path / "k"))
    bundle = tmp_path / "b.tar"
    far("save", "--sign", str(key), "-o", str(bundle), f"{site.host}/example/app-a:1")
    import tarfile
    with tarfile.open(bundle) as tf:
        listed = json.load(tf.extractfile("airgap/bundle.json"))  # type: ignore[arg-type]
    assert {i["digest"] for i in listed["images"] if i.get("subject") == desc["digest"]} == {sig, sbom}
    site2 = start_registry(need("docker-registry"), tmp_path / "site2", "plain")
    try:
        home = Airgap(tmp_path / "home", airgap.capsys)
        home("load", "-i", str(bundle), "--trust", str(pub))
        assert len(json.loads(home("inspect", f"{site.host}/example/app-a:1").out)[0]["Attachments"]) == 2
        # push recreates them with the same digests: the cosign tag, the referrer and its fallback tag
        home("push", "--all", site2.host)
        assert _digest_at(site2, "example/app-a", desc["digest"].replace(":", "-") + ".sig") == sig
        assert _digest_at(site2, "example/app-a", sbom) == sbom
        fallback = httpx.get(f"http://{site2.host}/v2/example/app-a/manifests/{desc['digest'].replace(':', '-')}",
                             headers={"Accept": "application/vnd.oci.image.index.v1+json"}).json()
        assert [m["digest"] for m in fallback["manifests"]] == [sbom]
        # rmi of the image removes what is attached to it
        home("rmi", f"{site.host}/example/app-a:1")
        assert json.loads((home.store / "index.json").read_text())["manifests"] == []
    finally:
        site2.stop()
