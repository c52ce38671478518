"""Issue 9: nothing unverified or unintended happens on the loading host."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airgap.digest import copy_verified, sha256_digest
from airgap.errors import IntegrityError

from ..builders import image, index_entry, members_of, oci_archive, resign, tar_of
from ..conftest import Airgap, flip, snapshot, write_tree


def _bundle(airgap: Airgap, tmp_path: Path, *names: str, sign: Path | None = None) -> Path:
    out = tmp_path / f"b-{len(list(tmp_path.iterdir()))}.tar"
    airgap("save", "-o", str(out), *names, *(["--sign", str(sign)] if sign else []))
    return out


def _blob(store: Path, digest: str) -> Path:
    return store / "blobs" / "sha256" / digest.split(":")[1]


def _layer_of(airgap: Airgap, name: str) -> str:
    info = json.loads(airgap("inspect", name).out)[0]
    manifest = json.loads(_blob(airgap.store, info["Descriptor"]["digest"]).read_bytes())
    return str(manifest["layers"][-1]["digest"])


# -- 0. complete, verified blobs only ------------------------------------------------------

class _ShortWriter:
    """A raw file that takes at most 1000 bytes a call, as a filling disk may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: Any) -> int:
        n = min(len(b), 1000)
        self.data += bytes(b[:n])
        return n


def test_short_writes_are_completed() -> None:
    payload = os.urandom(70000)
    dst = _ShortWriter()
    copy_verified(io.BytesIO(payload), dst, expected=sha256_digest(payload), size=len(payload), what="x")
    assert bytes(dst.data) == payload


def test_a_blob_short_on_disk_is_never_published(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                 make_airgap: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    from airgap.store import layout

    def lossy(fd: int, data: Any) -> None:  # a disk that silently drops the end of a write
        os.write(fd, bytes(data)[: max(len(data) - 7, 0)])
    monkeypatch.setattr(layout, "write_all", lossy)
    res = site("load", "-i", str(bundle), ok=False)
    assert res.code == 3 and "reached the disk" in res.err
    assert snapshot(site.store) == before


def test_late_failure_publishes_nothing(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                        make_airgap: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """index.json does not fit on the disk: the blobs renamed into blobs/ are taken back."""
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    from airgap.store.layout import Store

    def full(self: Store, entries: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Store, "write_entries", full)
    res = site("load", "-i", str(bundle), ok=False)
    assert res.code == 1 and "no space left on device" in res.err and str(site.store) in res.err
    assert snapshot(site.store) == before


@pytest.mark.parametrize("via", ["file", "pipe"])
def test_load_repair(airgap: Airgap, three_images: list[str], tmp_path: Path, make_airgap: Any, via: str) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site("load", "-i", str(bundle))
    layer = _blob(site.store, _layer_of(site, three_images[1]))
    good = layer.read_bytes()
    layer.chmod(0o644)
    layer.write_bytes(flip(good))
    res = site("store", "check", ok=False)
    assert res.code == 3 and "load --repair" in res.err
    site("load", "-i", str(bundle))  # a plain load trusts what the store has
    assert layer.read_bytes() != good
    if via == "file":
        res = site("load", "--repair", "-i", str(bundle))
    else:
        cmd = [sys.executable, "-m", "airgap", "--store", str(site.store), "load", "--repair"]
        with open(bundle, "rb") as f:
            proc = _piped(cmd, f)
        assert proc.returncode == 0, proc.stderr
        res = type(res)(0, proc.stdout, proc.stderr)
    assert "Repaired damaged blob" in res.err
    assert layer.read_bytes() == good
    assert site("store", "check").out.startswith("OK:")


def _piped(cmd: list[str], f: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with ``f`` arriving through a pipe (not a seekable file)."""
    cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
    assert cat.stdout is not None
    try:
        return subprocess.run(cmd, stdin=cat.stdout, capture_output=True, text=True, timeout=300)
    finally:
        cat.stdout.close()
        cat.wait()


def test_a_digest_name_must_be_that_digest(airgap: Airgap, tmp_path: Path) -> None:
    x, y = image({"x": b"x"}), image({"y": b"y"})
    liar = oci_archive(tmp_path / "liar.tar", [x, y],
                       [index_entry(x, "docker.io/library/nginx:1"),
                        index_entry(y, f"docker.io/library/nginx@{x.digest}")])
    airgap("images")
    before = snapshot(airgap.store)
    res = airgap("load", "-i", str(liar), ok=False)
    assert res.code == 3 and x.digest in res.err and "nginx@" in res.err
    assert snapshot(airgap.store) == before
    honest = oci_archive(tmp_path / "honest.tar", [x], [index_entry(x, f"docker.io/library/nginx@{x.digest}")])
    airgap("load", "-i", str(honest))
    assert airgap.image_id(f"nginx@{x.digest}") == x.config_digest


def _served(store: Path, log: io.StringIO) -> tuple[Any, str]:
    from airgap.registry.server import make_server
    from airgap.store import Store
    server = make_server(Store(store), "127.0.0.1", 0, log=log)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_serve_cuts_a_rotten_blob(airgap: Airgap, three_images: list[str]) -> None:
    import httpx
    digest = _layer_of(airgap, three_images[0])
    path = _blob(airgap.store, digest)
    good = path.read_bytes()
    log = io.StringIO()
    server, url = _served(airgap.store, log)
    try:
        blob_url = f"{url}/v2/example/app-a/blobs/{digest}"
        assert httpx.get(blob_url).content == good
        path.chmod(0o644)
        path.write_bytes(flip(good, len(good) - 3))  # bit rot near the end
        for headers in ({}, {"Range": "bytes=10-"}, {"Range": f"bytes=0-{len(good) - 1}"}):
            with pytest.raises(httpx.HTTPError):  # the body ends early: never all of it
                httpx.get(blob_url, headers=headers)
        assert "damaged on disk" in log.getvalue() and "Traceback" not in log.getvalue()
    finally:
        server.shutdown()
        server.server_close()


def test_serve_answers_every_failure(airgap: Airgap, three_images: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from airgap.registry import server as srv
    log = io.StringIO()
    server, url = _served(airgap.store, log)
    try:
        def broken(self: Any) -> Any:
            raise PermissionError(13, "Permission denied", "index.json")
        monkeypatch.setattr(srv._View, "repos", broken)
        res = httpx.get(f"{url}/v2/_catalog")
        assert res.status_code == 500 and res.json()["errors"][0]["code"] == "UNKNOWN"
        import socket
        with socket.create_connection(server.server_address[:2]) as s:  # a TLS hello to plain HTTP
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(40) + b"\r\n\r\n")
            s.recv(1000)
        text = log.getvalue()
        assert "Traceback" not in text and "\x16" not in text and "\\x16" in text
        assert all(line.count(" - ") >= 1 for line in text.splitlines()), text
    finally:
        server.shutdown()
        server.server_close()


# -- 1. trust settings that find no key --------------------------------------------------------

@pytest.fixture
def signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    from airgap import signing
    monkeypatch.delenv("AIRGAP_TRUST", raising=False)
    monkeypatch.delenv("AIRGAP_REQUIRE_SIGNATURE", raising=False)
    monkeypatch.delenv("AIRGAP_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr(signing, "SYSTEM_TRUST_DIR", tmp_path / "etc-trust.d")
    monkeypatch.setattr(signing, "REQUIRE_FILE", tmp_path / "etc-require-signature")
    out = {}
    for name in ("packager", "stranger"):
        key, pub, _, _ = signing.generate_key(str(tmp_path / name))
        out[name], out[name + ".pub"] = key, pub
    return out


def test_trust_entries_fail_closed(airgap: Airgap, three_images: list[str], tmp_path: Path, make_airgap: Any,
                                   signer: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _bundle(airgap, tmp_path, three_images[0], sign=signer["stranger"])
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    pem_dir = tmp_path / "pem-dir"
    pem_dir.mkdir()
    (pem_dir / "release.pem").write_bytes(signer["packager.pub"].read_bytes())
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    cases = {  # $AIRGAP_TRUST -> what the refusal says
        str(signer["packager.pub"]): "not trusted",          # a key file, not a directory
        str(pem_dir): "not trusted",                          # the key is named release.pem
        str(tmp_path / "trsut.d"): "does not exist",          # misspelled
        str(empty): "holds no public key",
        f"{signer['packager.pub']}:{tmp_path / 'missing.pub'}": "does not exist",
    }
    for value, needle in cases.items():
        monkeypatch.setenv("AIRGAP_TRUST", value)
        for verb in (["load", "-i", str(bundle)], ["verify", str(bundle)]):
            res = site(*verb, ok=False)
            assert res.code == 3 and needle in res.err, (value, res.err)
        assert snapshot(site.store) == before
    monkeypatch.delenv("AIRGAP_TRUST")
    res = site("load", "-i", str(bundle), "--trust", str(tmp_path / "nope.pub"), ok=False)
    assert res.code == 3 and "nope.pub" in res.err and "expected" in res.err
    (tmp_path / "private.pem").write_bytes(signer["packager"].read_bytes())
    res = site("load", "-i", str(bundle), "--trust", str(tmp_path / "private.pem"), ok=False)
    assert res.code == 3 and "private key" in res.err
    monkeypatch.setenv("AIRGAP_TRUST", f"{pem_dir}:{signer['stranger.pub']}")  # several entries
    site("load", "-i", str(bundle))


def test_system_trust_dir_without_keys(airgap: Airgap, three_images: list[str], tmp_path: Path, make_airgap: Any,
                                       signer: dict[str, Path]) -> None:
    from airgap import signing
    bundle = _bundle(airgap, tmp_path, three_images[0], sign=signer["stranger"])
    site = make_airgap("site")
    signing.SYSTEM_TRUST_DIR.mkdir()
    (signing.SYSTEM_TRUST_DIR / "README").write_text("put keys here\n")
    res = site("load", "-i", str(bundle), ok=False)
    assert res.code == 3 and "holds no public key" in res.err and str(signing.SYSTEM_TRUST_DIR) in res.err


@pytest.mark.parametrize("how", ["flag", "env", "file"])
def test_require_signature(airgap: Airgap, three_images: list[str], tmp_path: Path, make_airgap: Any,
                           signer: dict[str, Path], monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from airgap import signing
    signed = _bundle(airgap, tmp_path, three_images[0], sign=signer["packager"])
    unsigned = _bundle(airgap, tmp_path, three_images[0])
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    flag = ["--require-signature"] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("AIRGAP_REQUIRE_SIGNATURE", "1")
    if how == "file":
        signing.REQUIRE_FILE.write_text("")
    for bundle, extra in ((signed, []), (unsigned, []), (signed, ["--insecure-skip-signature"])):
        res = site("load", "-i", str(bundle), *flag, *extra, ok=False)
        assert res.code == 3 and "required" in res.err, res.err
    assert snapshot(site.store) == before
    site("load", "-i", str(signed), *flag, "--trust", str(signer["packager.pub"]))
    res = site("load", "-i", str(unsigned), *flag, "--trust", str(signer["packager.pub"]), ok=False)
    assert res.code == 3


def test_key_generate_warns_when_unencrypted(airgap: Airgap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIRGAP_KEY_PASSPHRASE", raising=False)
    assert "NOT encrypted" in airgap("key", "generate", "plain").err
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "pw")
    assert "NOT encrypted" not in airgap("key", "generate", "locked").err


# -- 2. garbage collection fails closed ---------------------------------------------------------

@pytest.mark.parametrize("verb", [["rmi", "example/app-b:1"], ["system", "prune", "-f"], ["image", "prune", "-f"]])
def test_gc_stops_at_a_damaged_manifest(airgap: Airgap, three_images: list[str], verb: list[str]) -> None:
    info = json.loads(airgap("inspect", "example/app-a:1").out)[0]
    manifest = _blob(airgap.store, info["Descriptor"]["digest"])
    manifest.chmod(0o644)
    manifest.write_bytes(flip(manifest.read_bytes()))
    blobs = sorted(p.name for p in (airgap.store / "blobs" / "sha256").iterdir())
    res = airgap(*verb, ok=False)
    assert res.code == 3 and info["Descriptor"]["digest"] in res.err and "store check" in res.err
    assert sorted(p.name for p in (airgap.store / "blobs" / "sha256").iterdir()) == blobs


# -- 3. modes and owners ------------------------------------------------------------------------

def test_store_files_follow_the_umask_and_the_owner(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                    make_airgap: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand files to another user")
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site.store.mkdir()
    os.chown(site.store, 4321, 4321)
    old = os.umask(0o022)
    try:
        site("load", "-i", str(bundle))
    finally:
        os.umask(old)
    for p in [site.store / "index.json", *(site.store / "blobs" / "sha256").iterdir()]:
        st = p.stat()
        assert stat.S_IMODE(st.st_mode) == 0o644 and (st.st_uid, st.st_gid) == (4321, 4321), p
    for d in (site.store / "blobs", site.store / "blobs" / "sha256", site.store / ".tmp"):
        st = d.stat()
        assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 4321, d


# -- 4. no partial file after kill -9 -----------------------------------------------------------

@pytest.mark.parametrize("via", ["file", "pipe"])
def test_kill_9_leaves_no_partial_file(airgap: Airgap, three_images: list[str], tmp_path: Path, via: str) -> None:
    import signal
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(96 << 20)})
    airgap("import", str(big), "example/big:1", "--base", "example/base:1")
    bundle = _bundle(airgap, tmp_path, "example/big:1", *three_images)
    target = Airgap(tmp_path / "target", airgap.capsys)
    target("images")
    cmd = [sys.executable, "-m", "airgap", "--store", str(target.store), "load"]
    if via == "file":
        loader = subprocess.Popen([*cmd, "-i", str(bundle)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        feeder = subprocess.Popen([sys.executable, "-c",
                                   "import sys, time\nf = open(sys.argv[1], 'rb')\n"
                                   "while chunk := f.read(1 << 20):\n"
                                   "    sys.stdout.buffer.write(chunk); sys.stdout.buffer.flush(); time.sleep(0.02)\n",
                                   str(bundle)], stdout=subprocess.PIPE)
        loader = subprocess.Popen(cmd, stdin=feeder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert feeder.stdout is not None
        feeder.stdout.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any((target.store / ".tmp").iterdir()) \
            and not any((target.store / ".resume").iterdir()):
        time.sleep(0.005)
    time.sleep(0.2)
    loader.send_signal(signal.SIGKILL)
    loader.wait()
    if via == "pipe":
        feeder.kill()
        feeder.wait()
    assert list((target.store / ".tmp").iterdir()) == []
    for p in (target.store / ".resume").iterdir():  # only whole, verified blobs
        assert sha256_digest(p.read_bytes()) == "sha256:" + p.name
    assert target("images", "-q").out == ""
    df = target("system", "df").out
    leftovers = sum(p.stat().st_size for p in (target.store / ".resume").iterdir())
    if leftovers:
        assert "0B (0%)" not in df
    target("system", "prune", "-f")
    assert list((target.store / ".resume").iterdir()) == []
    target("load", "-i", str(bundle))
    assert target("store", "check").out.startswith("OK:")
