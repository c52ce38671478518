"""Pull, push, login, search and serve against the real distribution registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airgap.digest import sha256_digest
from airgap.oci import OCI_INDEX

from ..conftest import Airgap, Containerd, Docker, need, podman, run_tool, snapshot, write_tree
from ..registry_peer import PASSWORD, USER, BreakingProxy, Registry, start_registry, start_serve

pytestmark = pytest.mark.interop
MODES = ["plain", "basic", "tls", "token"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ~/.docker for credentials."""
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    return cfg


def _start(tmp_path: Path, mode: str, name: str, monkeypatch: pytest.MonkeyPatch) -> Registry:
    reg = start_registry(need("docker-registry"), tmp_path / name, mode)
    if mode != "tls":
        hosts = [h for h in os.environ.get("AIRGAP_INSECURE_REGISTRIES", "").split(",") if h]
        monkeypatch.setenv("AIRGAP_INSECURE_REGISTRIES", ",".join([*hosts, reg.host]))
    return reg


@pytest.fixture(params=MODES)
def registry(request: pytest.FixtureRequest, tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    reg = _start(tmp_path, request.param, "reg", monkeypatch)
    yield reg
    reg.stop()


@pytest.fixture
def plain(tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    reg = _start(tmp_path, "plain", "plain", monkeypatch)
    yield reg
    reg.stop()


def tls_args(reg: Registry) -> list[str]:
    return ["--ca-cert", str(reg.ca)] if reg.mode == "tls" else []


def login(a: Airgap, reg: Registry) -> None:
    if reg.mode in ("basic", "token"):
        res = a("login", "-u", USER, "-p", PASSWORD, reg.host, *tls_args(reg))
        assert res.out.strip() == "Login Succeeded"


def skopeo_push(reg: Registry, layout: Path, ref: str, dest: str, *extra: str) -> str:
    """Push from an OCI layout as Docker v2s2 with gzip layers; return the registry's digest."""
    run_tool("skopeo", "copy", "--quiet", "--format", "v2s2", "--dest-compress", *extra,
             *reg.skopeo_tls("dest"), *([f"--dest-creds={USER}:{PASSWORD}"] if reg.skopeo_creds else []),
             f"oci:{layout}:{ref}", f"docker://{reg.host}/{dest}")
    raw = run_tool("skopeo", "inspect", "--raw", *reg.skopeo_tls(""), *reg.skopeo_creds, f"docker://{reg.host}/{dest}")
    return sha256_digest(raw.encode())


@pytest.fixture
def source_layout(airgap: Airgap, tmp_path: Path) -> Path:
    """An airgap store (an OCI layout) with example/app:1 on example/base:1, 1 MiB each."""
    base = write_tree(tmp_path / "b", {"base.bin": os.urandom(1 << 20)})
    airgap("import", str(base), "example/base:1")
    app = write_tree(tmp_path / "a", {"app.bin": os.urandom(1 << 20)})
    airgap("import", str(app), "example/app:1", "--base", "example/base:1")
    return airgap.store


def test_pull_by_tag_and_digest(registry: Registry, source_layout: Path, make_airgap: Any) -> None:
    digest = skopeo_push(registry, source_layout, "docker.io/example/app:1", "test/app:1")
    a = make_airgap("pulled")
    login(a, registry)
    res = a("pull", f"{registry.host}/test/app:1", *tls_args(registry))
    assert f"Digest: {digest}" in res.out
    assert res.out.rstrip().endswith(f"{registry.host}/test/app:1")
    assert res.out.count("Pull complete") == 2
    row = a("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}").out.strip()
    assert row == f"{registry.host}/test/app 1 {digest}"
    info = json.loads(a("inspect", f"{registry.host}/test/app:1").out)[0]
    assert info["RepoDigests"] == [f"{registry.host}/test/app@{digest}"]
    config = json.loads(run_tool("skopeo", "inspect", "--raw", *registry.skopeo_tls(""), *registry.skopeo_creds,
                                 f"docker://{registry.host}/test/app:1"))["config"]["digest"]
    assert info["Id"] == config
    a("store", "check")
    # again: nothing new
    again = a("pull", f"{registry.host}/test/app:1", *tls_args(registry))
    assert "Status: Image is up to date" in again.out and again.out.count("Already exists") == 2
    doc = json.loads(a("pull", "--format", "json", f"{registry.host}/test/app:1", *tls_args(registry)).out)
    assert doc["pulled"][0]["digest"] == digest and doc["pulled"][0]["blobs"]["added"] == 0
    assert doc["pulled"][0]["images"][0]["id"] == info["Id"]
    # by digest, into another store
    b = make_airgap("by-digest")
    res = b("pull", "-q", f"{registry.host}/test/app@{digest}", *tls_args(registry))
    assert res.out.strip() == f"{registry.host}/test/app@{digest}"
    row = b("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}").out.strip()
    assert row == f"{registry.host}/test/app <none> {digest} {config[7:19]}"


def _index_layout(airgap: Airgap, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An OCI layout whose 'multi' is an index of a linux/amd64 and a linux/arm64 image."""
    configs = {}
    for arch in ("amd64", "arm64"):
        src = write_tree(tmp_path / f"p-{arch}", {"arch.txt": arch * 1000})
        configs[arch] = airgap("import", str(src), f"example/plat:{arch}", "--platform", f"linux/{arch}").out.strip()
    layout = tmp_path / "index-layout"
    shutil.copytree(airgap.store / "blobs", layout / "blobs")
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    children = []
    for arch in ("amd64", "arm64"):
        desc = json.loads(airgap("inspect", f"example/plat:{arch}").out)[0]["Descriptor"]
        children.append({"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"],
                         "platform": {"os": "linux", "architecture": arch, **({"variant": "v8"} if arch == "arm64" else {})}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    digest = sha256_digest(index)
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(index)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_INDEX, "digest": digest, "size": len(index),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    return layout, {"index": digest, **configs}


def test_multi_platform(registry: Registry, airgap: Airgap, make_airgap: Any, tmp_path: Path) -> None:
    layout, ids = _index_layout(airgap, tmp_path)
    run_tool("skopeo", "copy", "--quiet", "--all", *registry.skopeo_tls("dest"),
             *([f"--dest-creds={USER}:{PASSWORD}"] if registry.skopeo_creds else []),
             f"oci:{layout}:multi", f"docker://{registry.host}/test/multi:1")
    ref = f"{registry.host}/test/multi:1"
    # skopeo compressed the layers on the way, so the registry's index is its own
    raw = run_tool("skopeo", "inspect", "--raw", *registry.skopeo_tls(""), *registry.skopeo_creds, f"docker://{ref}")
    assert json.loads(raw)["mediaType"] == OCI_INDEX
    ids["index"] = sha256_digest(raw.encode())
    host = make_airgap("host")
    login(host, registry)
    host("pull", ref, *tls_args(registry))
    info = json.loads(host("inspect", ref).out)[0]
    assert (info["Architecture"], info["Id"]) == ("amd64", ids["amd64"])
    assert info["RepoDigests"] == [f"{registry.host}/test/multi@{ids['index']}"]
    # one platform travels as `docker save` has it: without the index's digest, which the far
    # side could not check (the index is not in the bundle) and would refuse
    single = tmp_path / "single.tar"
    host("save", "-o", str(single), ref)
    near = make_airgap("near")
    near("load", "-i", str(single))
    info = json.loads(near("inspect", ref).out)[0]
    assert (info["Id"], info["RepoDigests"]) == (ids["amd64"], [])
    login(near, registry)
    near("push", ref, f"{registry.host}/test/single:1", *tls_args(registry))
    raw = run_tool("skopeo", "inspect", "--raw", *registry.skopeo_tls(""), *registry.skopeo_creds,
                   f"docker://{registry.host}/test/single:1")
    assert sha256_digest(raw.encode()) == info["Descriptor"]["digest"]
    for push in (["push", ref, f"{registry.host}/test/single-from-pull:1"], ["push", "--all", f"{registry.host}/all"]):
        host(*push, *tls_args(registry))
    for pushed in ("test/single-from-pull:1", "all/test/multi:1"):
        raw = run_tool("skopeo", "inspect", "--raw", *registry.skopeo_tls(""), *registry.skopeo_creds,
                       f"docker://{registry.host}/{pushed}")
        assert sha256_digest(raw.encode()) == info["Descriptor"]["digest"]
    arm = make_airgap("arm")
    arm("pull", "--platform", "linux/arm64", ref, *tls_args(registry))
    info = json.loads(arm("inspect", ref).out)[0]
    assert (info["Architecture"], info["Id"]) == ("arm64", ids["arm64"])
    every = make_airgap("all")
    every("pull", "--all-platforms", ref, *tls_args(registry))
    info = json.loads(every("inspect", ref).out)[0]
    assert info["Descriptor"]["digest"] == ids["index"] and info["Descriptor"]["mediaType"] == OCI_INDEX
    assert every("images", "--digests", "--format", "{{.Digest}}").out.strip() == ids["index"]
    every("store", "check")
    # and it travels whole: save, load elsewhere, and push keeps the index digest
    bundle = tmp_path / "multi.tar"
    every("save", "-o", str(bundle), ref)
    far = make_airgap("far")
    far("load", "-i", str(bundle))
    far("push", ref, f"{registry.host}/test/multi-copy:1", *tls_args(registry))
    raw = run_tool("skopeo", "inspect", "--raw", *registry.skopeo_tls(""), *registry.skopeo_creds,
                   f"docker://{registry.host}/test/multi-copy:1")
    assert sha256_digest(raw.encode()) == ids["index"]


def test_pull_save_load_push_keeps_digest(registry: Registry, plain: Registry, source_layout: Path,
                                           make_airgap: Any, tmp_path: Path) -> None:
    digest = skopeo_push(registry, source_layout, "docker.io/example/app:1", "test/app:1")
    connected = make_airgap("connected")
    login(connected, registry)
    connected("pull", f"{registry.host}/test/app:1", *tls_args(registry))
    bundle = tmp_path / "carry.tar"
    connected("save", "-o", str(bundle), f"{registry.host}/test/app:1")
    site = make_airgap("site")
    site("load", "-i", str(bundle), "--verify", "full")
    assert site("images", "--digests", "--format", "{{.Digest}}").out.strip() == digest
    res = site("push", f"{registry.host}/test/app:1", f"{plain.host}/mirror/app:1")
    assert f"1: digest: {digest} " in res.out
    pushed = json.loads(site("push", "--format", "json", f"{registry.host}/test/app:1", f"{plain.host}/mirror/app:1").out)
    assert pushed["digest"] == digest and pushed["blobs"] == {"pushed": 0, "mounted": 0, "existing": 3}
    info = json.loads(run_tool("skopeo", "inspect", "--tls-verify=false", f"docker://{plain.host}/mirror/app:1"))
    assert info["Digest"] == digest
    # a second push skips every blob; a push to a sibling repository mounts them
    assert site("push", f"{registry.host}/test/app:1", f"{plain.host}/mirror/app:1").out.count("Layer already exists") == 2
    site("tag", f"{registry.host}/test/app:1", f"{plain.host}/mirror/app:1")
    res = site("push", f"{plain.host}/mirror/app:1", f"{plain.host}/mirror/other:1")
    assert res.out.count("Mounted from mirror/app") == 2


def test_wrong_credentials_and_unknown(registry: Registry, source_layout: Path, make_airgap: Any, env: Path) -> None:
    skopeo_push(registry, source_layout, "docker.io/example/app:1", "test/app:1")
    a = make_airgap("denied")
    a("images")
    before = snapshot(a.store)
    if registry.mode in ("basic", "token"):
        res = a("login", "-u", USER, "-p", "wrong", registry.host, *tls_args(registry), ok=False)
        assert res.code == 1 and "UNAUTHORIZED" in res.err and not (env / "config.json").exists()
        res = a("pull", f"{registry.host}/test/app:1", *tls_args(registry), ok=False)
        assert res.code == 1 and "UNAUTHORIZED" in res.err and "airgap login" in res.err
        login(a, registry)
    res = a("pull", f"{registry.host}/test/nothing:1", *tls_args(registry), ok=False)
    assert res.code == 1 and ("MANIFEST_UNKNOWN" in res.err or "NAME_UNKNOWN" in res.err or "not found" in res.err)
    res = a("pull", f"{registry.host}/test/app@sha256:{'0' * 64}", *tls_args(registry), ok=False)
    assert res.code == 1
    assert snapshot(a.store) == before


class _FakeRegistry:
    """A registry over a store's blobs, written for one test: ``answer`` decides what a GET
    gets as (status, body, content type, extra headers)."""

    def __init__(self, store: Path, manifest: str) -> None:
        self.store = store
        self.manifest = (store / "blobs" / "sha256" / manifest[7:]).read_bytes()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body, ctype, extra = outer.answer(self.path, dict(self.headers))
                self.send_response(status)
                for k, v in {"Content-Type": ctype, "Content-Length": str(len(body)), **extra}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def honest(self, path: str) -> tuple[int, bytes, str, dict[str, str]]:
        if "/manifests/" in path:
            return 200, self.manifest, json.loads(self.manifest)["mediaType"], {}
        if "/blobs/" in path:
            return 200, self.blob(path.rsplit("/", 1)[1]), "application/octet-stream", {}
        return (200, b"{}", "application/json", {}) if path == "/v2/" else (404, b"", "text/plain", {})

    def blob(self, digest: str) -> bytes:
        return (self.store / "blobs" / "sha256" / digest[7:]).read_bytes()

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, str, dict[str, str]]:
        return self.honest(path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Liar(_FakeRegistry):
    """Serves the real manifest (for a tag and for any digest) but a damaged layer."""

    def __init__(self, store: Path, manifest: str) -> None:
        super().__init__(store, manifest)
        self.layer = json.loads(self.manifest)["layers"][-1]["digest"]

    def blob(self, digest: str) -> bytes:
        data = super().blob(digest)
        return data[:100] + bytes([data[100] ^ 1]) + data[101:] if digest == self.layer else data


@contextmanager
def _faking(cls: type[_FakeRegistry], airgap: Airgap, store: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A fake registry serving example/app:1 of ``store``, and that image's inspect."""
    info = json.loads(airgap("inspect", "example/app:1").out)[0]
    reg = cls(store, info["Descriptor"]["digest"])
    monkeypatch.setenv("AIRGAP_INSECURE_REGISTRIES", reg.host)
    try:
        yield reg, info
    finally:
        reg.close()


def test_lying_registry_stores_nothing(source_layout: Path, airgap: Airgap, make_airgap: Any,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with _faking(_Liar, airgap, source_layout, monkeypatch) as (liar, info):
        manifest = info["Descriptor"]["digest"]
        a = make_airgap("victim")
        a("images")
        before = snapshot(a.store)
        res = a("pull", f"{liar.host}/x/app:1", ok=False)
        assert res.code == 3 and liar.layer in res.err
        assert snapshot(a.store) == before and list((a.store / ".tmp").iterdir()) == []
        other = "sha256:" + "ab" * 32
        res = a("pull", f"{liar.host}/x/app@{other}", ok=False)
        assert res.code == 3 and other in res.err and manifest in res.err
        assert snapshot(a.store) == before


def test_resume_after_dropped_connection(plain: Registry, source_layout: Path, make_airgap: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    digest = skopeo_push(plain, source_layout, "docker.io/example/app:1", "test/app:1")
    proxy = BreakingProxy(plain.host, limit=300_000)
    monkeypatch.setenv("AIRGAP_INSECURE_REGISTRIES", f"{plain.host},{proxy.host}")
    try:
        a = make_airgap("resumed")
        res = a("pull", f"{proxy.host}/test/app:1")
        assert f"Digest: {digest}" in res.out
        assert proxy.cuts == 1
        assert any(b"range: bytes=" in r.lower() for r in proxy.requests), \
            [r.split(b"\r\n")[:3] for r in proxy.requests]
        a("store", "check")
    finally:
        proxy.close()


@pytest.fixture
def served(source_layout: Path, airgap: Airgap) -> Iterator[str]:
    proc, port = start_serve(source_layout, subprocess.PIPE)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err  # a clean shutdown on SIGTERM
    assert b'"GET /v2/' in err  # a log line per request


def test_docker_and_skopeo_pull_from_serve(served: str, docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    info = json.loads(airgap("inspect", "example/app:1").out)[0]
    docker("pull", f"{served}/example/app:1")
    got = json.loads(docker("inspect", f"{served}/example/app:1").stdout)[0]
    assert got["Id"] == info["Id"]
    assert got["RepoDigests"] == [f"{served}/example/app@{info['Descriptor']['digest']}"]
    run_tool("skopeo", "copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", f"docker://{served}/example/app:1", f"oci:{tmp_path / 'copy'}:x")
    copied = json.loads(run_tool("skopeo", "inspect", f"oci:{tmp_path / 'copy'}:x"))
    assert copied["Digest"] == info["Descriptor"]["digest"]
    res = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'copy'}:x",
                          f"docker://{served}/example/new:1"], capture_output=True, text=True)
    assert res.returncode != 0 and "UNSUPPORTED" in res.stderr or "unsupported" in res.stderr.lower()


def test_serve_api(served: str) -> None:
    import httpx
    base = f"http://{served}"
    assert httpx.get(f"{base}/v2/").status_code == 200
    assert httpx.get(f"{base}/v2/_catalog").json() == {"repositories": ["example/app", "example/base"]}
    assert httpx.get(f"{base}/v2/example/app/tags/list").json() == {"name": "example/app", "tags": ["1"]}
    m = httpx.get(f"{base}/v2/example/app/manifests/1")
    assert m.headers["Docker-Content-Digest"] == sha256_digest(m.content)
    assert m.headers["Content-Type"] == json.loads(m.content)["mediaType"]
    layer = json.loads(m.content)["layers"][0]
    head = httpx.head(f"{base}/v2/example/app/blobs/{layer['digest']}")
    assert int(head.headers["Content-Length"]) == layer["size"]
    part = httpx.get(f"{base}/v2/example/app/blobs/{layer['digest']}", headers={"Range": "bytes=10-19"})
    full = httpx.get(f"{base}/v2/example/app/blobs/{layer['digest']}")
    assert part.status_code == 206 and part.content == full.content[10:20]
    assert sha256_digest(full.content) == layer["digest"]
    assert httpx.get(f"{base}/v2/example/other/manifests/1").json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert httpx.get(f"{base}/v2/example/app/manifests/9").json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert httpx.put(f"{base}/v2/example/app/manifests/2", content=b"{}").json()["errors"][0]["code"] == "UNSUPPORTED"


def test_serve_answers_bad_blob_digests_as_distribution(served: str, plain: Registry) -> None:
    """A blob path whose digest has a digest's shape but is not one airgap can hold is a
    400 DIGEST_INVALID, anything else not found: the real registry's answers, code for code."""
    import httpx

    def answer(host: str, digest: str) -> tuple[int, str]:
        r = httpx.get(f"http://{host}/v2/example/app/blobs/{digest}")
        code = r.json()["errors"][0]["code"] if r.headers.get("Content-Type", "").startswith("application/json") else ""
        return r.status_code, code

    invalid, unrouted = (400, "DIGEST_INVALID"), (404, "")
    cases = {"sha256:" + "a" * 40: invalid, "sha256:" + "A" * 64: invalid, "sha512:" + "a" * 64: invalid,
             "md5:" + "a" * 32: invalid, "sha256:zz": invalid, "a-b:c": invalid, "1a:=": invalid,
             "sha256:" + "a" * 64: (404, "BLOB_UNKNOWN"), "notadigest": unrouted, "sha256:": unrouted,
             ":abc": unrouted, "x:y:z": unrouted, "SHA256:" + "a" * 64: unrouted, "a..b:" + "a" * 32: unrouted,
             "-:a": unrouted}
    for digest, want in cases.items():
        assert answer(plain.host, digest) == want, ("distribution", digest)
        got = answer(served, digest)
        assert got == want or (want == (404, "") and got[0] == 404), ("serve", digest, got)


def test_search_catalog_and_logout(plain: Registry, source_layout: Path, airgap: Airgap, env: Path) -> None:
    skopeo_push(plain, source_layout, "docker.io/example/app:1", "team/tool:1")
    out = airgap("search", "--registry", plain.host, "--format", "{{.Name}}", "tool").out
    assert out.strip() == f"{plain.host}/team/tool"
    (env / "config.json").write_text(json.dumps({"auths": {plain.host: {"auth": "eDp5"}}}))
    assert airgap("logout", plain.host).out.strip() == f"Removing login credentials for {plain.host}"
    assert json.loads((env / "config.json").read_text())["auths"] == {}


def test_pulled_bundle_loads_into_docker(plain: Registry, source_layout: Path, make_airgap: Any,
                                         docker: Docker, tmp_path: Path) -> None:
    """Pulled images keep their gzip layers and registry manifests in the bundle, and
    docker load still gives Docker's image ID."""
    digest = skopeo_push(plain, source_layout, "docker.io/example/app:1", "test/app:1")
    a = make_airgap("pulled")
    a("pull", f"{plain.host}/test/app:1")
    bundle = tmp_path / "pulled.tar"
    a("save", "-o", str(bundle), f"{plain.host}/test/app:1")
    with __import__("tarfile").open(bundle) as tf:
        doc = json.load(tf.extractfile("airgap/bundle.json"))
    assert doc["images"][0]["digest"] == digest
    assert {b["mediaType"] for b in doc["blobs"] if "diffID" in b} == {"application/vnd.docker.image.rootfs.diff.tar.gzip"}
    assert all(b["uncompressedSize"] > b["size"] - 2000 for b in doc["blobs"] if "diffID" in b)
    out = docker("load", "-i", str(bundle)).stdout
    assert out.strip() == f"Loaded image: {plain.host}/test/app:1"
    assert json.loads(docker("inspect", f"{plain.host}/test/app:1").stdout)[0]["Id"] == a.image_id(f"{plain.host}/test/app:1")


class _Flaky(_FakeRegistry):
    """An honest registry that answers 503, then 429, before the first answer to each path."""

    def __init__(self, store: Path, manifest: str) -> None:
        super().__init__(store, manifest)
        self.hits: dict[str, int] = {}

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, str, dict[str, str]]:
        n = self.hits[path] = self.hits.get(path, 0) + 1
        if path != "/v2/" and n <= 2:
            return (503 if n == 1 else 429), b"", "text/plain", {"Retry-After": "0"}
        return self.honest(path)


def test_retries_on_503_and_429(source_layout: Path, airgap: Airgap, make_airgap: Any,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    with _faking(_Flaky, airgap, source_layout, monkeypatch) as (flaky, info):
        a = make_airgap("patient")
        a("pull", f"{flaky.host}/x/app:1")
        assert a.image_id(f"{flaky.host}/x/app:1") == info["Id"]
        assert all(n >= 3 for path, n in flaky.hits.items() if path != "/v2/")


class _Expiring(_FakeRegistry):
    """Token auth whose first token expires after two requests, as Docker Hub's expire
    during a long pull."""

    def __init__(self, store: Path, manifest: str) -> None:
        super().__init__(store, manifest)
        self.issued = 0
        self.uses = 0

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, str, dict[str, str]]:
        if path.startswith("/token"):
            self.issued += 1
            return 200, json.dumps({"token": f"t{self.issued}"}).encode(), "application/json", {}
        auth = headers.get("Authorization", "")
        valid = auth.startswith("Bearer t") and (auth != "Bearer t1" or self.uses < 2)
        if not valid:
            challenge = f'Bearer realm="http://{self.host}/token",service="fake",scope="repository:x/app:pull"'
            return 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}', \
                "application/json", {"WWW-Authenticate": challenge}
        self.uses += 1
        return self.honest(path)


def test_expired_token_is_renewed(source_layout: Path, airgap: Airgap, make_airgap: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with _faking(_Expiring, airgap, source_layout, monkeypatch) as (reg, info):
        a = make_airgap("renewed")
        a("pull", f"{reg.host}/x/app:1")
        assert reg.issued >= 2 and a.image_id(f"{reg.host}/x/app:1") == info["Id"]


def test_credential_helper(tmp_path: Path, env: Path, source_layout: Path, make_airgap: Any,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """credHelpers in ~/.docker/config.json: the helper is asked, as Docker asks it."""
    reg = _start(tmp_path, "basic", "helped", monkeypatch)
    try:
        skopeo_push(reg, source_layout, "docker.io/example/app:1", "test/app:1")
        bindir = tmp_path / "bin"
        bindir.mkdir()
        log = tmp_path / "helper.log"
        helper = bindir / "docker-credential-airgaptest"
        helper.write_text("#!/bin/sh\n"
                          f'read server; echo "$1 $server" >> {log}\n'
                          f'printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\' "$server"\n')
        helper.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
        (env / "config.json").write_text(json.dumps({"credHelpers": {reg.host: "airgaptest"}}))
        a = make_airgap("helped")
        a("pull", f"{reg.host}/test/app:1")
        assert log.read_text().split() == ["get", reg.host]
        # login and logout go to the registry's helper too, as Docker's: its secret never
        # lands in config.json beside a helper that keeps this registry's secrets
        res = a("login", "-u", USER, "-p", PASSWORD, reg.host)
        assert "Login Succeeded" in res.out and "docker-credential-airgaptest" in res.err
        assert "--password via the CLI is insecure" in res.err
        a("logout", reg.host)
        calls = log.read_text().splitlines()
        assert calls[1].startswith("store {") and json.loads(calls[1][6:])["ServerURL"] == reg.host, calls
        assert calls[2:] == [f"erase {reg.host}"], calls
        assert json.loads((env / "config.json").read_text()) == {"credHelpers": {reg.host: "airgaptest"}}
    finally:
        reg.stop()


def test_login_password_stdin(tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--password-stdin` reads all of standard input less one line end, as docker login
    does (it read one line, and without end: from /dev/zero it grew until memory ran out);
    more than 64 KiB is a usage error, said at once."""
    reg = _start(tmp_path, "basic", "basic", monkeypatch)
    try:
        cmd = [sys.executable, "-m", "airgap", "login", "-u", USER, "--password-stdin", reg.host]
        res = subprocess.run(cmd, input=f"{PASSWORD}\r\n".encode(), capture_output=True, timeout=60)
        assert res.returncode == 0 and b"Login Succeeded" in res.stdout, res.stderr
        assert (env / "config.json").exists()
        with open("/dev/zero", "rb") as zeros:
            res = subprocess.run(cmd, stdin=zeros, capture_output=True, timeout=60)
        assert res.returncode == 2 and b"more than 65536 characters" in res.stderr, res.stderr
        res = subprocess.run(cmd, input=f"{PASSWORD}\nsecond line\n".encode(), capture_output=True, timeout=60)
        assert res.returncode == 1 and b"UNAUTHORIZED" in res.stderr, res.stderr  # the whole input is the password
        res = subprocess.run(cmd, input=b"\xff\xfe\n", capture_output=True, timeout=60)
        assert res.returncode == 2 and b"not UTF-8" in res.stderr, res.stderr  # was an internal error
    finally:
        reg.stop()


def test_containerd_and_podman_pull_from_serve(served: str, containerd: Containerd, airgap: Airgap,
                                               tmp_path: Path) -> None:
    """The nodes of a disconnected cluster pull from `airgap serve`: containerd (`ctr pull`,
    its own resolver: HEAD of the manifest, then blobs) and podman, with the registry's
    digest and Docker's image ID."""
    info = json.loads(airgap("inspect", "example/app:1").out)[0]
    ref = f"{served}/example/app:1"
    containerd.ctr("images", "pull", "--plain-http", ref)
    # and, as a node does, the original name resolved at serve by mirror-config's hosts.toml
    # (containerd adds ?ns=docker.io to what it asks a mirror)
    hosts = tmp_path / "certs.d"
    airgap("mirror-config", "containerd", "--registry", served, "--insecure", "-o", str(hosts))
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts), "docker.io/example/app:1")
    try:
        listed = containerd.ctr("images", "ls").stdout
        for name in (ref, "docker.io/example/app:1"):
            assert any(line.startswith(name + " ") and info["Descriptor"]["digest"] in line
                       for line in listed.splitlines()), (name, listed)
    finally:
        containerd.ctr("images", "rm", ref, "docker.io/example/app:1")
    with podman(tmp_path / "proot") as base:
        res = subprocess.run([*base, "pull", "-q", "--tls-verify=false", ref], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        got = subprocess.run([*base, "image", "inspect", "--format", "{{.Id}} {{.Digest}}", ref],
                             capture_output=True, text=True, timeout=120).stdout.split()
    assert got == [info["Id"][7:], info["Descriptor"]["digest"]], got
