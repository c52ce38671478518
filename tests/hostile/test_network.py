"""Issue 10: a registry that lies or stalls, clients that abuse `serve`, save racing rmi."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from airgap.digest import sha256_digest
from airgap.oci import OCI_LAYER_GZIP

from ..builders import image, tar_of
from ..conftest import Airgap, snapshot
from ..registry_peer import start_serve
from .limits import run_airgap

Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def fake_registry(handle: Handler, rcvbuf: int = 0) -> Iterator[str]:
    """A registry on 127.0.0.1 whose every GET/HEAD is ``handle``; yields host:port.
    ``rcvbuf``: a socket receive buffer that small (bytes the kernel takes unread)."""
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:
            try:
                handle(self)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_HEAD = do_POST = do_PUT = do_PATCH = do_GET

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H, bind_and_activate=False)
    if rcvbuf:  # before listen(): accepted sockets take it from the listening one
        httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    httpd.server_bind()
    httpd.server_activate()
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    for k, v in {"Content-Length": str(len(body)), "Content-Type": "application/json", **(headers or {})}.items():
        h.send_header(k, v)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def _endless(h: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
    h.send_response(200)
    for k, v in {"Transfer-Encoding": "chunked", **headers}.items():
        h.send_header(k, v)
    h.end_headers()
    chunk = b"\x7b" * 65536
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + "c" * 64, "size": 100},
                       "layers": []}).encode()


def _manifest_refused(client: Any) -> tuple[str, float]:
    """The RegistryError a manifest request ends in, and the seconds it took; the client
    is closed."""
    from airgap.errors import RegistryError
    t0 = time.monotonic()
    try:
        with pytest.raises(RegistryError) as err:
            client.get_manifest("team/app", "1", "team/app:1")
    finally:
        client.close()
    return str(err.value), time.monotonic() - t0


_DRIPPED_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                 b"X-Padding: " + b"a" * 150 + b"\r\nContent-Length: %d\r\n\r\n" % len(MANIFEST))


def _drip_the_answer(h: BaseHTTPRequestHandler) -> None:
    """The status line and headers four bytes every 50 ms (~3 s), then the manifest."""
    for i in range(0, len(_DRIPPED_HEAD), 4):
        h.wfile.write(_DRIPPED_HEAD[i:i + 4])
        h.wfile.flush()
        time.sleep(0.05)
    h.wfile.write(MANIFEST)


@pytest.mark.parametrize("via", ["direct", "proxy"])
def test_an_answer_whose_headers_drip_is_broken_off(monkeypatch: pytest.MonkeyPatch, via: str) -> None:
    """A status line and headers sent a few bytes at a time pass every read timeout (h11
    takes 16 KiB of them: eleven days at a byte a minute): the answer must come whole
    within ANSWER_TIME; the request is retried, then given up. Sent whole after ~3 s:
    without the clock the manifest is read. The same through a proxy that $HTTP_PROXY
    names (which is used, as Docker and skopeo use it: the requests come to it in absolute
    form)."""
    from airgap.registry import answerclock
    from airgap.registry import client as reg
    monkeypatch.setattr(answerclock, "ANSWER_TIME", 1.0)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    served: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        served.append(h.path)
        if h.path.endswith("/v2/"):
            return _send(h, 200, b"{}")
        _drip_the_answer(h)
    with fake_registry(handle) as host:
        if via == "proxy":  # the registry's name is another loopback address, plain HTTP
            monkeypatch.setenv("HTTP_PROXY", f"http://{host}")
            monkeypatch.setenv("HTTPS_PROXY", f"http://{host}")
        target = host if via == "direct" else "127.0.0.2:5999"
        said, took = _manifest_refused(reg.RegistryClient(target, retries=1, backoff=0.0))
    assert "no whole answer (status and headers) in 1 s" in said, said
    dripped = [p for p in served if "/manifests/" in p]
    assert len(dripped) == 2 and took < 5, (served, took)
    if via == "proxy":
        assert dripped[0] == "http://127.0.0.2:5999/v2/team/app/manifests/1", served



def test_a_silent_registry_ends_in_the_read_timeout_not_the_answer_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry that sends nothing at all: the read timeout, shorter here than what is
    left of the answer's time, is what ends each try, and the error says so (the answer
    clock, which bounds a dripped answer, is not blamed for it)."""
    from airgap.registry import answerclock
    from airgap.registry import client as reg
    monkeypatch.setattr(answerclock, "ANSWER_TIME", 30.0)
    monkeypatch.setattr(reg, "READ_TIMEOUT", 0.5)
    served: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        served.append(h.path)
        if h.path.endswith("/v2/"):
            return _send(h, 200, b"{}")
        time.sleep(3)  # silent, then gone
    with fake_registry(handle) as host:
        said, took = _manifest_refused(reg.RegistryClient(host, retries=1, backoff=0.0))
    assert "no whole answer" not in said and "timed out" in said, said
    assert len([p for p in served if "/manifests/" in p]) == 2 and took < 5, (served, took)


def test_leaving_a_watchdog_waits_for_a_firing_under_way() -> None:
    """The watchdog shuts a socket down from its own thread: the block it guards must not
    be left (and the socket closed, its descriptor reused) while that is under way."""
    import threading
    from airgap.registry.answerclock import Watchdog
    events: list[str] = []
    firing = threading.Event()

    def fire() -> None:
        firing.set()
        time.sleep(0.3)
        events.append("fired")
    with Watchdog(0.05, fire) as dog:
        assert firing.wait(5)
    events.append("left")
    assert dog.fired and events == ["fired", "left"], events

def test_a_tls_handshake_dripped_a_byte_at_a_time_is_broken_off(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A TLS handshake is one call with a timeout per socket read: a server that sends its
    certificate a few bytes at a time passed them all. It must end within ANSWER_TIME (1 s
    here; this server's first flight takes ~10 s): the connection is cut, retried, then
    given up."""
    import ssl
    from airgap.registry import answerclock
    from airgap.registry import client as reg
    from ..registry_peer import make_ca
    monkeypatch.setattr(answerclock, "ANSWER_TIME", 1.0)
    ca, cert, key = make_ca(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))
    handshakes: list[int] = []

    def handshake(conn: socket.socket) -> None:  # the server's side, its bytes dripped
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
        handshakes.append(1)
        with conn:
            try:
                while True:
                    try:
                        tls.do_handshake()
                        return
                    except ssl.SSLWantReadError:
                        pass
                    out = outgoing.read()
                    for i in range(0, len(out), 4):
                        conn.sendall(out[i:i + 4])
                        time.sleep(0.03)
                    data = conn.recv(65536)
                    if not data:
                        return
                    incoming.write(data)
            except (OSError, ssl.SSLError):
                return

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handshake, args=(conn,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    client = reg.RegistryClient(f"127.0.0.1:{server.getsockname()[1]}", ca_cert=str(ca), retries=1, backoff=0.0)
    client._scheme = "https"  # no probe: straight to the request
    try:
        said, took = _manifest_refused(client)
    finally:
        server.close()
    assert "the TLS handshake took more than 1 s" in said, said
    assert len(handshakes) == 2 and took < 5, (handshakes, took)


@pytest.mark.parametrize("endless", ["manifest", "config", "catalog"])
def test_endless_bodies(tmp_path: Path, endless: str) -> None:
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        if "/manifests/" in h.path:
            if endless == "manifest":
                return _endless(h, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            return _send(h, 200, MANIFEST, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        if "/blobs/" in h.path or "/tags/" in h.path or "_catalog" in h.path:
            return _endless(h, {})
        _send(h, 404)
    with fake_registry(handle) as host:
        if endless == "catalog":
            run = run_airgap(tmp_path / "s", "search", "--registry", host, "x", timeout=60)
            assert run.code in (1, 3) and "more than" in run.err and run.seconds < 20, run.err
            return
        run = run_airgap(tmp_path / "s", "pull", f"{host}/team/app:1", timeout=60)
    assert run.code in (1, 3) and "Traceback" not in run.err, run.err
    assert run.seconds < 20 and run.max_rss_mb < 100, (run.seconds, run.max_rss_mb)


@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_a_drip_fed_response_is_broken_off(monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    """A few bytes now and then pass any read timeout (a byte a minute: 8 MiB in sixteen
    years): a small body (here a manifest) must arrive whole within DOCUMENT_TIME, and a
    blob must keep SLOW_RATE over each SLOW_WINDOW; a slow blob is resumed as a broken
    download is, then given up. Both are sent in full after ~13 s: without the bounds the
    reads succeed."""
    from airgap.errors import RegistryError
    from airgap.oci import Descriptor
    from airgap.registry import client as reg
    monkeypatch.setattr(reg, "DOCUMENT_TIME", 1.0)
    monkeypatch.setattr(reg, "SLOW_WINDOW", 1.0)
    body = MANIFEST if what == "manifest" else b"x" * 4096
    piece = len(body) // 256 + 1
    served: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        served.append(h.path)
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        h.end_headers()
        for i in range(0, len(body), piece):
            h.wfile.write(body[i:i + piece])
            h.wfile.flush()
            time.sleep(0.05)
    with fake_registry(handle) as host:
        client = reg.RegistryClient(host, retries=1, backoff=0.0)
        t0 = time.monotonic()
        try:
            with pytest.raises(RegistryError) as err:
                if what == "manifest":
                    client.get_manifest("team/app", "1", "team/app:1")
                else:
                    with client.open_blob("team/app", Descriptor("application/octet-stream",
                                                                 sha256_digest(body), len(body)), "blob") as f:
                        while f.read(1 << 20):
                            pass
        finally:
            client.close()
    took = time.monotonic() - t0
    if what == "manifest":
        assert "more than 1 s" in str(err.value) and "stalled" in str(err.value) and len(served) == 1
    else:  # two slow windows: the first resumed, the second given up
        assert "slower than 16 KiB/s for 1 s" in str(err.value) and len(served) == 2, (str(err.value), served)
    assert took < 5, took


@pytest.mark.parametrize("pages", ["circle", "endless"])
def test_a_catalog_without_end_is_refused(tmp_path: Path, pages: str) -> None:
    """``search --registry`` follows the catalog's Link pages: a registry whose pages link
    back to one already read, or that never stops listing new ones, is refused in seconds."""
    served: list[int] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        if h.path.startswith("/v2/_catalog"):
            served.append(1)
            n = len(served)
            names = [f"r{n:05d}{i:05d}/app" for i in range(30_000)]
            last = "x" if pages == "circle" else str(n)
            return _send(h, 200, json.dumps({"repositories": names}).encode(),
                         {"Link": f'</v2/_catalog?n=1000&last={last}>; rel="next"'})
        _send(h, 404)
    with fake_registry(handle) as host:
        run = run_airgap(tmp_path / "s", "search", "--registry", host, "x", timeout=60)
    needle = "linked to twice" if pages == "circle" else "more than 100000 repositories"
    assert run.code == 1 and needle in run.err and "Traceback" not in run.err, run.err
    assert len(served) == (2 if pages == "circle" else 4) and run.seconds < 20, (len(served), run.seconds)


@pytest.mark.parametrize("lie", ["long link", "empty pages"])
def test_catalog_links_and_pages_are_capped(monkeypatch: pytest.MonkeyPatch, lie: str) -> None:
    """The two other bounds of the catalog walk: a next-page link over MAX_LINK characters
    (each one is remembered to tell a circle), and pages without end that list nothing."""
    from airgap.errors import RegistryError
    from airgap.registry import client as reg
    monkeypatch.setattr(reg, "MAX_CATALOG_PAGES", 5)
    served: list[int] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        served.append(1)
        last = "x" * 9000 if lie == "long link" else str(len(served))
        _send(h, 200, b'{"repositories": []}', {"Link": f'</v2/_catalog?n=1&last={last}>; rel="next"'})
    with fake_registry(handle) as host:
        client = reg.RegistryClient(host)
        try:
            with pytest.raises(RegistryError, match="more than 8192 characters" if lie == "long link" else "more than 5 pages"):
                client.catalog()
        finally:
            client.close()
    assert len(served) == (1 if lie == "long link" else 5)


def test_invalid_names_in_a_catalog_are_said_and_skipped(tmp_path: Path) -> None:
    """A name in the registry's catalog that is no repository name is not the operator's
    usage error: search lists the valid ones and warns about the rest."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        if h.path.startswith("/v2/_catalog"):
            return _send(h, 200, json.dumps({"repositories": [
                "team/tool", "UPPER/tool", "a/../tool", "\x1b[2Jtool"]}).encode())
        _send(h, 404)
    with fake_registry(handle) as host:
        run = run_airgap(tmp_path / "s", "search", "--registry", host, "--format", "{{.Name}}", "tool")
    assert run.code == 0, run.err
    assert run.out == f"{host}/team/tool\n", run.out
    assert run.err.count("WARNING") == 3 and "'UPPER/tool'" in run.err and "\x1b" not in run.err, run.err


def _image_registry(manifest: bytes, blobs: dict[str, bytes],
                    served: Callable[[str, bytes], bytes] = lambda d, b: b) -> Handler:
    """A registry of one image (``team/app:1``); ``served`` may change a blob's bytes."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        if h.path.endswith("/manifests/1") or h.path.endswith(sha256_digest(manifest)):
            return _send(h, 200, manifest, {"Content-Type": json.loads(manifest)["mediaType"],
                                            "Docker-Content-Digest": sha256_digest(manifest)})
        digest = h.path.rsplit("/", 1)[-1]
        if "/blobs/" in h.path and digest in blobs:
            return _send(h, 200, served(digest, blobs[digest]), {"Content-Type": "application/octet-stream"})
        _send(h, 404, b"{}")
    return handle


@pytest.mark.parametrize("lie", ["longer", "shorter"])
def test_a_blob_served_at_another_length_is_refused(tmp_path: Path, lie: str) -> None:
    """A registry whose Content-Length for a blob is not the size the manifest lists is
    refused at once (exit 3), not read up to the listed size and the rest ignored."""
    img = image(layers=[gzip.compress(tar_of([("a", b"a" * 1000)]), 1)], layer_type=OCI_LAYER_GZIP,
                diff_ids=[sha256_digest(tar_of([("a", b"a" * 1000)]))])
    layer = json.loads(img.manifest)["layers"][0]["digest"]

    def served(digest: str, data: bytes) -> bytes:
        if digest != layer:
            return data
        return data + b"more" if lie == "longer" else data[:-4]
    with fake_registry(_image_registry(img.manifest, img.blobs, served)) as host:
        run = run_airgap(tmp_path / "s", "pull", f"{host}/team/app:1")
    assert run.code == 3 and "Content-Length" in run.err and layer in run.err, run.err
    assert run_airgap(tmp_path / "s", "images", "-q").out == ""


def _zstd_bomb() -> bytes:
    """A few hundred KiB of zstd that inflate to 2 GiB of zeros."""
    import zstandard
    w = zstandard.ZstdCompressor(level=1).compressobj()
    zeros = bytes(64 << 20)
    return b"".join(w.compress(zeros) for _ in range(32)) + w.flush()


@pytest.mark.parametrize("where", ["manifest", "error body", "blob"])
def test_content_coding_is_neither_asked_for_nor_decoded(tmp_path: Path, where: str) -> None:
    """A registry may answer with ``Content-Encoding`` whatever the client asked: a zstd
    body of ~200 KiB inflates to gigabytes in one decoding step, before a size limit sees
    it (2 GiB of memory, seen). airgap asks for ``identity`` and refuses a coded answer,
    naming it; memory stays small."""
    img = image(layers=[gzip.compress(tar_of([("a", b"a")]), 1)], layer_type=OCI_LAYER_GZIP,
                diff_ids=[sha256_digest(tar_of([("a", b"a")]))])
    layer = json.loads(img.manifest)["layers"][0]["digest"]
    bomb = _zstd_bomb()
    asked: list[str] = []
    honest = _image_registry(img.manifest, img.blobs)

    def handle(h: BaseHTTPRequestHandler) -> None:
        asked.append(h.headers.get("Accept-Encoding", ""))
        if where == "manifest" and "/manifests/" in h.path:
            return _send(h, 200, bomb, {"Content-Type": json.loads(img.manifest)["mediaType"],
                                        "Content-Encoding": "zstd"})
        if where == "error body" and "/manifests/" in h.path:
            return _send(h, 500, bomb, {"Content-Encoding": "zstd"})
        if where == "blob" and h.path.endswith(layer):
            data = gzip.compress(img.blobs[layer])
            return _send(h, 200, data, {"Content-Encoding": "gzip"})
        honest(h)
    with fake_registry(handle) as host:
        run = run_airgap(tmp_path / "s", "pull", f"{host}/team/app:1", timeout=60,
                         env={"AIRGAP_MAX_RETRY_WAIT": "0"})
    assert run.code in (1, 3) and "Traceback" not in run.err, run.err
    if where == "error body":
        assert "500" in run.err, run.err
    else:
        assert ("zstd" if where == "manifest" else "gzip") in run.err and "encoded" in run.err, run.err
    assert run.max_rss_mb < 100, run.max_rss_mb
    assert asked and set(asked) == {"identity"}, set(asked)
    assert run_airgap(tmp_path / "s", "images", "-q").out == ""


def test_pull_checks_each_layer_against_its_diff_id(tmp_path: Path) -> None:
    """As ``docker pull`` ("layers from manifest don't match image configuration"): a
    compressed layer whose tar is not the diff_id its config lists is refused, nothing is
    stored; an honest one is pulled and its diff_id kept for ``save``."""
    raw = tar_of([("a", b"a")])
    layer = gzip.compress(raw, 1)
    liar = image(layers=[layer], layer_type=OCI_LAYER_GZIP, diff_ids=[sha256_digest(tar_of([("b", b"b")]))])
    store = tmp_path / "s"
    with fake_registry(_image_registry(liar.manifest, liar.blobs)) as host:
        run = run_airgap(store, "pull", f"{host}/team/app:1")
    assert run.code == 3 and "diff_id" in run.err and sha256_digest(layer) in run.err, run.err
    assert run_airgap(store, "images", "-q").out == ""
    assert not list((store / "blobs" / "sha256").iterdir())
    honest = image(layers=[layer], layer_type=OCI_LAYER_GZIP, diff_ids=[sha256_digest(raw)])
    with fake_registry(_image_registry(honest.manifest, honest.blobs)) as host:
        run = run_airgap(store, "pull", f"{host}/team/app:1")
    assert run.code == 0, run.err
    cached = store / ".cache" / "uncompressed" / sha256_digest(layer)[7:]
    assert cached.read_text() == f"{sha256_digest(raw)} {len(raw)}"



def test_a_refused_pull_leaves_the_store_as_it_was_cache_included(tmp_path: Path) -> None:
    """One layer's tar is its diff_id, the other's is not: the pull is refused, and the
    diff_id worked out for the honest layer is not kept either (it went to .cache/ before
    the refusal): the store is as it was, file for file."""
    good_raw, bad_raw = tar_of([("a", b"a")]), tar_of([("b", b"b")])
    good, bad = gzip.compress(good_raw, 1), gzip.compress(bad_raw, 1)
    liar = image(layers=[good, bad], layer_type=OCI_LAYER_GZIP,
                 diff_ids=[sha256_digest(good_raw), sha256_digest(tar_of([("c", b"c")]))])
    store = tmp_path / "s"
    run_airgap(store, "images")
    before = snapshot(store)
    with fake_registry(_image_registry(liar.manifest, liar.blobs)) as host:
        run = run_airgap(store, "pull", f"{host}/team/app:1")
    assert run.code == 3 and "diff_id" in run.err and sha256_digest(bad) in run.err, run.err
    assert snapshot(store) == before

def test_retry_after_is_capped(tmp_path: Path) -> None:
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        _send(h, 503, b"{}", {"Retry-After": "100000"})
    with fake_registry(handle) as host:
        run = run_airgap(tmp_path / "s", "pull", f"{host}/team/app:1", timeout=60)
    assert run.code == 1 and "100000" in run.err and "AIRGAP_MAX_RETRY_WAIT" in run.err, run.err
    assert run.seconds < 10


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "\u0663", "1e3", "10s"])
def test_max_retry_wait_must_be_seconds(tmp_path: Path, value: str) -> None:
    """``float()`` read ``nan`` (no wait compares longer, so a Retry-After of days was slept)
    and ``٣``; anything but seconds in ASCII digits is a usage error, said before a byte
    moves."""
    served: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        served.append(h.path)
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        _send(h, 503, b"{}", {"Retry-After": "100000"})
    with fake_registry(handle) as host:
        run = run_airgap(tmp_path / "s", "pull", f"{host}/team/app:1", timeout=30,
                         env={"AIRGAP_MAX_RETRY_WAIT": value})
    assert run.code == 2 and "AIRGAP_MAX_RETRY_WAIT" in run.err and not served, (run.err, served)


def test_numbers_in_headers_are_ascii_digits(tmp_path: Path) -> None:
    """``Retry-After: ²`` (a latin-1 header byte that str.isdigit takes and float() refuses)
    is no number: the client backs off as for a missing one, and says what failed."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        h.wfile.write(b"HTTP/1.1 503 Busy\r\nRetry-After: \xb2\r\nContent-Length: 2\r\n\r\n{}")
    with fake_registry(handle) as host:
        run = run_airgap(tmp_path / "s", "pull", f"{host}/team/app:1", timeout=60)
    assert run.code == 1 and "503" in run.err and "internal error" not in run.err, run.err


@pytest.mark.parametrize("where,needle", [("ftp://127.0.0.1/x", "not HTTP(S)"), ("loop", "redirects")])
def test_redirects(tmp_path: Path, where: str, needle: str) -> None:
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        _send(h, 307, b"", {"Location": h.path if where == "loop" else where})
    with fake_registry(handle) as host:
        run = run_airgap(tmp_path / "s", "pull", f"{host}/team/app:1", timeout=60)
    assert run.code == 1 and needle in run.err and "internal error" not in run.err, run.err


def test_credentials_stay_on_their_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A redirect to another host gets no Authorization; a plain-HTTP realm elsewhere no password."""
    seen: list[str | None] = []

    def other(h: BaseHTTPRequestHandler) -> None:
        seen.append(h.headers.get("Authorization"))
        _send(h, 404, b"{}")
    with fake_registry(other) as elsewhere:
        def handle(h: BaseHTTPRequestHandler) -> None:
            if h.path == "/v2/":
                return _send(h, 200, b"{}")
            if h.headers.get("Authorization") is None:
                return _send(h, 401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
            _send(h, 307, b"", {"Location": f"http://{elsewhere.replace('127.0.0.1', 'localhost')}/v2/x"})
        cfg = tmp_path / "docker"
        cfg.mkdir()
        import base64
        with fake_registry(handle) as host:
            (cfg / "config.json").write_text(json.dumps({"auths": {host: {
                "auth": base64.b64encode(b"user:secret").decode()}}}))
            run = run_airgap(tmp_path / "s", "pull", f"{host}/team/app:1", env={"DOCKER_CONFIG": str(cfg)})
        assert run.code != 0 and seen and all(a is None for a in seen), seen

    from airgap.registry import auth
    from airgap.registry.client import RegistryClient

    def realm(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        _send(h, 401, b"{}", {"WWW-Authenticate": 'Bearer realm="http://tokens.example.invalid/token",service="x"'})
    with fake_registry(realm) as host:
        client = RegistryClient(host, credentials=auth.Credentials("user", "secret"))
        try:
            from airgap.errors import RegistryError
            with pytest.raises(RegistryError, match="refusing to send the password"):
                client.get_manifest("team/app", "1", "pull")
        finally:
            client.close()


def _store_to_push(tmp_path: Path) -> Path:
    """A store holding one small image, ``team/app:1``."""
    src = tmp_path / "rootfs"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    store = tmp_path / "s"
    assert run_airgap(store, "import", str(src), "team/app:1").code == 0
    return store


def test_an_upload_sent_to_another_host_gets_no_credentials(tmp_path: Path) -> None:
    """A registry (or whoever answers for it) that starts an upload with a Location on
    another host gets the bytes there, never the password: Docker sends its credentials
    only to the host it authenticated with."""
    seen: list[tuple[str, str | None]] = []

    def other(h: BaseHTTPRequestHandler) -> None:
        seen.append((h.command, h.headers.get("Authorization")))
        h.rfile.read(int(h.headers.get("Content-Length") or 0))
        _send(h, 404, b"{}")
    with fake_registry(other) as elsewhere:
        def handle(h: BaseHTTPRequestHandler) -> None:
            h.rfile.read(int(h.headers.get("Content-Length") or 0))
            if h.path == "/v2/":
                return _send(h, 200, b"{}")
            if h.headers.get("Authorization") is None:
                return _send(h, 401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
            if h.command == "POST":
                return _send(h, 202, b"", {"Location": f"http://{elsewhere.replace('127.0.0.1', 'localhost')}/up/1"})
            _send(h, 404, b"{}")
        cfg = tmp_path / "docker"
        cfg.mkdir()
        import base64
        store = _store_to_push(tmp_path)
        with fake_registry(handle) as host:
            (cfg / "config.json").write_text(json.dumps({"auths": {host: {
                "auth": base64.b64encode(b"user:secret").decode()}}}))
            run = run_airgap(store, "push", "team/app:1", f"{host}/team/app:1", env={"DOCKER_CONFIG": str(cfg)})
    assert run.code != 0 and seen and all(a is None for _, a in seen), (seen, run.err)


def test_a_registry_that_reads_an_upload_a_byte_at_a_time_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry that reads a little now and then passes every write timeout (each send
    moves some bytes): a PATCH whose body has not moved on by a piece for SLOW_WINDOW is
    broken off (its own connections closed under it) and retried, then given up. Without
    the watchdog the upload waits until this registry stops dripping (20 s) and succeeds."""
    import io
    from airgap.errors import RegistryError
    from airgap.oci import Descriptor
    from airgap.registry import client as reg
    monkeypatch.setattr(reg, "SLOW_WINDOW", 1.0)
    data = os.urandom(24 << 20)  # more than both ends' socket buffers hold

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        if h.command == "POST":
            return _send(h, 202, b"", {"Location": "/v2/team/app/blobs/uploads/u1"})
        if h.command == "PATCH":
            left = int(h.headers.get("Content-Length") or 0)
            until = time.monotonic() + 20
            while left and time.monotonic() < until:  # 512 KiB/s: a 1 MiB piece takes 2 s
                left -= len(h.rfile.read(min(left, 128 << 10)))
                time.sleep(0.25)
            while left:
                left -= len(h.rfile.read(min(left, 1 << 20)) or b"x" * left)
            return _send(h, 202, b"", {"Location": "/v2/team/app/blobs/uploads/u1"})
        if h.command == "PUT":
            return _send(h, 201, b"")
        _send(h, 404, b"{}")
    with fake_registry(handle, rcvbuf=4096) as host:
        client = reg.RegistryClient(host, retries=1, backoff=0.0)
        t0 = time.monotonic()
        try:
            with pytest.raises(RegistryError, match="slower than 1024 KiB in 1 s"):
                client.upload_blob("team/app", Descriptor("application/octet-stream", sha256_digest(data),
                                                          len(data)), lambda: io.BytesIO(data))
        finally:
            client.close()
    assert time.monotonic() - t0 < 15


@pytest.mark.parametrize("lie", ["ftp://x/up/1", "http://[bad/up/1", "redirected PATCH"])
def test_an_upload_sent_nowhere_is_refused(tmp_path: Path, lie: str) -> None:
    """An upload's Location that is no HTTP(S) URL, and a PATCH answered with a redirect
    (its bytes are streamed: httpx cannot send them again), are registry errors (exit 1,
    said), not internal ones."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if h.path == "/v2/":
            return _send(h, 200, b"{}")
        if h.command == "POST":
            return _send(h, 202, b"", {"Location": "/up/1" if lie == "redirected PATCH" else lie})
        if h.command == "PATCH":
            return _send(h, 307, b"", {"Location": "/up/2"})
        _send(h, 404, b"{}")
    store = _store_to_push(tmp_path)
    with fake_registry(handle) as host:
        run = run_airgap(store, "push", "team/app:1", f"{host}/team/app:1", timeout=60)
    said = "redirected an upload" if lie == "redirected PATCH" else "Location is no HTTP(S) URL"
    assert run.code == 1 and said in run.err and "internal error" not in run.err, run.err


# -- serve ---------------------------------------------------------------------------------

@contextmanager
def served(store: Path) -> Iterator[tuple[str, Path]]:
    log = store.parent / "serve.log"
    with open(log, "wb") as f:
        proc, port = start_serve(store, f)
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_never_waits_for_its_log(airgap: Airgap, three_images: list[str]) -> None:
    """`serve`'s log on a pipe nobody reads (here for a while): the pipe fills after a few
    hundred lines, and every request is still answered (the log was written in the request's
    own thread, under a lock: one blocked write stalled every request and the accept loop).
    Once the pipe is read again, every line arrives."""
    import fcntl
    proc, port = start_serve(airgap.store, subprocess.PIPE)
    try:
        assert proc.stderr is not None
        fcntl.fcntl(proc.stderr.fileno(), 1031, 4096)  # F_SETPIPE_SZ: the smallest pipe, filled sooner
        with httpx.Client(timeout=10) as client:
            for i in range(600):  # ~60 KB of log lines
                assert client.get(f"http://127.0.0.1:{port}/v2/example/nothing-{i:04d}/tags/list").status_code == 404
        proc.send_signal(signal.SIGTERM)
        text = proc.stderr.read().decode()  # read at last: the lines waited, none was lost
        assert proc.wait(timeout=30) == 0
        assert "nothing-0599" in text and "dropped" not in text and text.rstrip().endswith("stopped"), text[-500:]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


def test_serve_log_drops_lines_beyond_its_bound_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the log takes nothing, lines wait up to MAX_LOG_PENDING characters (memory
    stays bounded whatever clients send); the rest are dropped and counted, said once the
    log takes lines again."""
    from airgap.registry import server as srv
    monkeypatch.setattr(srv, "MAX_LOG_PENDING", 100)
    release, written = threading.Event(), []

    class Stuck:
        def write(self, text: str) -> int:
            release.wait(10)
            written.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    log = srv._Log(Stuck())  # type: ignore[arg-type]
    log.say("first")
    time.sleep(0.2)  # the writer holds "first" and waits
    for i in range(30):
        log.say(f"line {i:02d}")  # 7 characters each, "first" still counted: 13 wait, 17 are dropped
    release.set()
    assert log.flush(timeout=10)
    log.say("after")
    assert log.flush(timeout=10)
    text = "".join(written)
    assert text.startswith("first\nline 00\n") and "line 12\n" in text and "line 13" not in text, text
    assert "log: 17 lines dropped" in text and text.rstrip().endswith("after"), text


def test_serve_answers_small_requests_at_once(airgap: Airgap, three_images: list[str]) -> None:
    """100 manifest HEADs and small answers on one keep-alive connection, as a node asks: in
    well under 2 s. With Nagle's algorithm on, each answer's body waited for the client's
    delayed ACK of its headers: 40 ms a request, 4.4 s here."""
    with served(airgap.store) as (url, _):
        with httpx.Client(timeout=10) as client:
            client.get(f"{url}/v2/")
            t0 = time.monotonic()
            for i in range(50):
                assert client.head(f"{url}/v2/example/app-a/manifests/latest").status_code in (200, 404)
                assert client.get(f"{url}/v2/example/nothing-{i}/tags/list").status_code == 404
            took = time.monotonic() - t0
    assert took < 2, f"100 small requests took {took:.1f} s"


def test_serve_answers_malformed_requests(airgap: Airgap, three_images: list[str]) -> None:
    info = json.loads(airgap("inspect", three_images[0]).out)[0]
    layer = info["RootFS"]["Layers"][-1]
    with served(airgap.store) as (url, log):
        blob = f"{url}/v2/example/app-a/blobs/{layer}"
        for rng in ("bytes=9-2", "bytes=" + "9" * 30 + "-", "bytes=x-y", "items=0-1", "bytes=-", "bytes=1-2,x",
                    "bytes=" + "0-0," * 101):
            r = httpx.get(blob, headers={"Range": rng})
            assert r.status_code == 416, (rng, r.status_code)
        whole = httpx.get(blob).content
        for rng, code, part in (("bytes= 10 - 19", 206, whole[10:20]), ("bytes=10-19,", 206, whole[10:20]),
                                ("bytes=0-1,3-4", 200, whole), ("bytes=-5", 206, whole[-5:]),
                                (f"bytes={len(whole)}-,0-0", 206, whole[:1])):  # as Go's ServeContent reads them
            r = httpx.get(blob, headers={"Range": rng})  # (several: the whole blob, where Go sends multipart)
            assert (r.status_code, r.content) == (code, part), (rng, r.status_code)
        assert httpx.get(f"{url}/v2/_catalog?n=abc").status_code == 400
        assert httpx.get(f"{url}/v2/_catalog?n=" + "9" * 40).status_code == 400
        assert httpx.get(f"{url}/v2/_catalog?n=0").status_code == 200
        assert httpx.get(f"{url}/nothing/here").status_code == 404
        assert httpx.get(f"{url}/v2/example/app-a/manifests/..%2f..").status_code == 404
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:  # what httpx will not send
            c.sendall(b"POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
            assert c.recv(100).startswith(b"HTTP/1.1 400")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:  # a digit to isdigit, not to int
            c.sendall(b"POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n")
            assert c.recv(100).startswith(b"HTTP/1.1 400")
        assert httpx.get(f"{url}/v2/_catalog?n=%C2%B2").status_code == 400
        assert httpx.get(f"{url}/v2/_catalog?n=%D9%A3").status_code == 400  # an Arabic 3
        assert httpx.request("DELETE", f"{url}/v2/x/manifests/y").status_code == 405
        for method in ("OPTIONS", "TRACE"):  # JSON like the other refusals, not http.server's HTML 501
            r = httpx.request(method, f"{url}/v2/")
            assert r.status_code == 405 and r.json()["errors"][0]["code"] == "UNSUPPORTED", (method, r.text)
        assert httpx.get(f"{url}/v2/").headers["Server"] == "airgap"  # not the Python version
        # what http.server refuses itself (an unknown method, a request line or a header it
        # cannot read) in the registry's JSON too, not its HTML page
        for raw, status in ((b"GETX /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", b"501"),
                            (b"GARBAGE\r\n\r\n", b"400"), (b"GET /v2/ HTTP/9.9\r\n\r\n", b"505"),
                            (b"GET /v2/ HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b"431")):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(raw)
                answer = b""
                while chunk := c.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 " + status) and b"Content-Type: application/json" in head, answer[:300]
            assert json.loads(body)["errors"][0]["code"] in ("UNSUPPORTED", "UNKNOWN"), body
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:  # an escape sequence for the log
            c.sendall(b"GET /v2/\x1b]0;owned\x07\\/x HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(100).startswith(b"HTTP/1.1 4")
        time.sleep(0.3)
        text = log.read_text()
    assert "Traceback" not in text
    assert text.count("\n") >= 13, text
    assert "/v2/\\x1b]0;owned\\x07\\x5c/x" in text and "\x1b" not in text, text


def test_serve_keeps_serving_past_idle_and_slow_clients(airgap: Airgap, three_images: list[str]) -> None:
    with served(airgap.store) as (url, log):
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        stop = time.monotonic() + 8

        def drip() -> None:
            while time.monotonic() < stop:
                for s in slow:
                    try:
                        s.send(b"G")
                    except OSError:
                        pass
                time.sleep(1)
        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        try:
            for _ in range(10):
                t0 = time.monotonic()
                r = httpx.get(f"{url}/v2/_catalog", timeout=10)
                assert r.status_code == 200 and time.monotonic() - t0 < 2
                time.sleep(0.3)
        finally:
            dripper.join()
            for s in idle + slow:
                s.close()
        assert "Traceback" not in log.read_text()


def test_idle_connections_are_closed(airgap: Airgap, three_images: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from airgap.registry import server as srv
    monkeypatch.setattr(srv, "REQUEST_TIMEOUT", 1.0)
    import io
    from airgap.store import Store
    s = srv.make_server(Store(airgap.store), "127.0.0.1", 0, log=io.StringIO())
    threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        c = socket.create_connection(("127.0.0.1", int(s.server_address[1])))
        c.settimeout(10)
        t0 = time.monotonic()
        c.send(b"GET /v2/ HT")  # and then nothing
        assert c.recv(100) == b""  # the server hung up
        assert time.monotonic() - t0 < 5
        c.close()
    finally:
        s.shutdown()
        s.server_close()


# -- save racing rmi ----------------------------------------------------------------------

def test_save_racing_rmi_never_claims_damage(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    import os
    big = tmp_path / "big"
    big.mkdir()
    (big / "big.bin").write_bytes(os.urandom(30 << 20))
    for i in range(3):
        airgap("import", str(big), f"example/race:{i}", "--base", "example/base:1")
        airgap("tag", f"example/race:{i}", f"example/race-keep:{i}")
    for i in range(3):
        saver = subprocess.Popen([sys.executable, "-m", "airgap", "--store", str(airgap.store), "save", "-o",
                                  str(tmp_path / f"r{i}.tar"), f"example/race:{i}"], stderr=subprocess.PIPE)
        time.sleep(0.05 * i)
        rmi = run_airgap(airgap.store, "rmi", "-f", f"example/race:{i}", f"example/race-keep:{i}")
        _, err = saver.communicate(timeout=120)
        assert saver.returncode in (0, 1), err
        assert b"damage" not in err and b"missing" not in err, err
        assert rmi.code == 0, rmi.err
        if saver.returncode == 0:
            assert run_airgap(tmp_path / f"check{i}", "load", "-i", str(tmp_path / f"r{i}.tar")).code == 0
    assert airgap("store", "check").out.startswith("OK:")


def test_serve_pages_its_catalog_as_distribution_does(airgap: Airgap, three_images: list[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A `_catalog` without `n` listed every repository of the store in one answer (a
    client's limit is a few MiB; distribution answers 1000 and a `Link` to the next page).
    Pages of CATALOG_PAGE (made 2 here), followed to the end, list them all once."""
    import io
    import threading
    from airgap.registry import server as srv
    from airgap.store import Store
    monkeypatch.setattr(srv, "CATALOG_PAGE", 2)
    server = srv.make_server(Store(airgap.store), "127.0.0.1", 0, log=io.StringIO())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        seen, path, pages = [], "/v2/_catalog", 0
        while path:
            r = httpx.get(base + path)
            assert r.status_code == 200 and len(r.json()["repositories"]) <= 2
            seen += r.json()["repositories"]
            link = r.headers.get("Link", "")
            path = link[1:link.index(">")] if link else ""
            pages += 1
        assert pages == 2 and seen == sorted(set(seen)) and len(seen) == 4, seen
        assert len(httpx.get(base + "/v2/_catalog?n=10").json()["repositories"]) == 4
    finally:
        server.shutdown()
        server.server_close()
