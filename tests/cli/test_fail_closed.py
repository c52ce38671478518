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
from airgap.oci import OCI_LAYER_GZIP

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
    from airgap.writeback import DiskWriter

    def lossy(self: DiskWriter, data: Any) -> None:  # a disk that silently drops the end of a write
        os.write(self.fd, bytes(data)[: max(len(data) - 7, 0)])
    monkeypatch.setattr(DiskWriter, "write", lossy)
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


def _stored_layer_damaged(airgap: Airgap, three_images: list[str], tmp_path: Path, make_airgap: Any,
                          damage: Any) -> tuple[Path, Airgap, Path, bytes]:
    """A bundle, a site that loaded it, and that site's copy of a layer rewritten by
    ``damage`` (with its good bytes)."""
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site("load", "-i", str(bundle))
    layer = _blob(site.store, _layer_of(site, three_images[1]))
    good = layer.read_bytes()
    layer.chmod(0o644)
    layer.write_bytes(damage(good))
    return bundle, site, layer, good


@pytest.mark.parametrize("via", ["file", "pipe"])
def test_load_repair(airgap: Airgap, three_images: list[str], tmp_path: Path, make_airgap: Any, via: str) -> None:
    bundle, site, layer, good = _stored_layer_damaged(airgap, three_images, tmp_path, make_airgap, flip)
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


def test_a_stored_blob_cut_short_is_refused_then_repaired(airgap: Airgap, three_images: list[str],
                                                          tmp_path: Path, make_airgap: Any) -> None:
    """A stored layer of the wrong size is not taken as present: a plain load refuses
    (pointing at --repair), and --repair replaces it."""
    bundle, site, layer, good = _stored_layer_damaged(airgap, three_images, tmp_path, make_airgap,
                                                      lambda good: good[:-512])
    res = site("load", "-i", str(bundle), ok=False)
    assert res.code == 3 and f"but blob sha256:{layer.name} has {len(good) - 512}" in res.err, res.err
    assert "load --repair" in res.err
    assert "Repaired damaged blob" in site("load", "--repair", "-i", str(bundle)).err
    assert layer.read_bytes() == good


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
    server = make_server(Store(store), "127.0.0.1", 0, log=log)
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
        server.log.flush(timeout=10)  # written by the log's own thread
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
        server.log.flush(timeout=10)
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
        "": "names no key",                                   # set, but to nothing
        ":": "names no key",
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


@pytest.mark.parametrize("how", ["flag", "env", "file", "dangling link"])
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
    if how == "dangling link":  # to a file on a mount that is not there: still "required"
        signing.REQUIRE_FILE.symlink_to(tmp_path / "not-mounted" / "require-signature")
    for bundle, extra in ((signed, []), (unsigned, []), (signed, ["--insecure-skip-signature"])):
        res = site("load", "-i", str(bundle), *flag, *extra, ok=False)
        assert res.code == 3 and "required" in res.err, res.err
    assert snapshot(site.store) == before
    site("load", "-i", str(signed), *flag, "--trust", str(signer["packager.pub"]))
    res = site("load", "-i", str(unsigned), *flag, "--trust", str(signer["packager.pub"]), ok=False)
    assert res.code == 3


def test_require_signature_takes_yes_or_no_and_nothing_else(airgap: Airgap, three_images: list[str],
                                                             tmp_path: Path, make_airgap: Any,
                                                             signer: dict[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    unsigned = _bundle(airgap, tmp_path, three_images[0])
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    for value in ("y", "enabled", "2", "required"):  # not read as "no"
        monkeypatch.setenv("AIRGAP_REQUIRE_SIGNATURE", value)
        res = site("load", "-i", str(unsigned), ok=False)
        assert res.code == 2 and "$AIRGAP_REQUIRE_SIGNATURE" in res.err and repr(value) in res.err, res.err
    for value in ("1", "yes", "ON", " true "):
        monkeypatch.setenv("AIRGAP_REQUIRE_SIGNATURE", value)
        res = site("load", "-i", str(unsigned), ok=False)
        assert res.code == 3 and "required" in res.err, res.err
    assert snapshot(site.store) == before
    for value in ("", "0", "no", "off", "False"):
        monkeypatch.setenv("AIRGAP_REQUIRE_SIGNATURE", value)
        assert site("verify", str(unsigned)).code == 0
    site("load", "-i", str(unsigned))


@pytest.mark.parametrize("args", [
    ["--store", "", "images"], ["images", "--store", ""], ["load", "-i", ""], ["load", "--trust", "", "-i", "B"],
    ["verify", ""], ["verify", "-i", ""], ["save", "-o", "", "IMG"], ["save", "--sign", "", "-o", "O", "IMG"],
    ["save", "-f", "", "-o", "O"], ["save", "--exclude-from", "", "-o", "O", "IMG"], ["inventory", "-o", ""],
    ["import", "", "x:1"], ["key", "generate", ""], ["key", "list", "--trust", ""], ["pull", "-f", ""],
    ["push", "-i", "", "--all", "127.0.0.1:1"], ["push", "--ca-cert", "", "IMG", "127.0.0.1:1/x"],
    ["search", "--ca-cert", "", "x"], ["serve", "--tls-cert", ""],
    ["mirror-config", "docker", "--registry", "127.0.0.1:1", "-o", ""],
    ["push", "IMG", ""], ["push", "--all", "", "127.0.0.1:1"]])
def test_an_empty_file_name_or_destination_is_a_usage_error(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                             args: list[str]) -> None:
    """``--store "$DIR"`` with DIR unset: Path("") is the current directory, where the
    store, a bundle, or an import of the whole directory would otherwise go. (A child with
    a timeout: were the check gone, serve would serve and load would read stdin.)"""
    bundle = _bundle(airgap, tmp_path, three_images[0])
    before = snapshot(airgap.store)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    args = [str(bundle) if a == "B" else three_images[0] if a == "IMG" else str(tmp_path / "out.tar")
            if a == "O" else a for a in args]
    cmd = [sys.executable, "-m", "airgap", *(args if args[0] == "--store" else ["--store", str(airgap.store), *args])]
    res = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "an empty " in res.stderr, (res.returncode, res.stderr)
    assert list(cwd.iterdir()) == [] and not (tmp_path / "out.tar").exists()
    assert snapshot(airgap.store) == before


def test_key_generate_warns_when_unencrypted(airgap: Airgap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIRGAP_KEY_PASSPHRASE", raising=False)
    assert "NOT encrypted" in airgap("key", "generate", "plain").err
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "pw")
    assert "NOT encrypted" not in airgap("key", "generate", "locked").err


@pytest.mark.parametrize("planted", [".b.tar.{pid}.tmp", ".b.tar.001.tmp", ".b.tar.002.tmp", ".b.tar.resume.tmp",
                                     ".b.tar.000.tmp", "docker/.config.json.{pid}"])
def test_no_write_goes_through_a_link_planted_at_a_temp_name(airgap: Airgap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              planted: str) -> None:
    """The names save writes before renaming (``.FILE.PID.tmp``, the parts, the resume
    journal, the checksum file) and login's config are predictable; in a shared directory
    a link planted at one had the bundle written wherever it pointed (as root, /etc/...)."""
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / planted.format(pid=os.getpid())
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(victim)
    if planted.startswith("docker/"):
        monkeypatch.setenv("DOCKER_CONFIG", str(link.parent))
        from airgap.registry import auth
        auth.store("registry.example:5000", auth.Credentials("u", "p"))
        assert "registry.example:5000" in (link.parent / "config.json").read_text()
    else:  # an image of 2.5 MB: three parts of 1M, a journal written after the first
        airgap("import", str(write_tree(tmp_path / "big", {"big": os.urandom(5 << 19)})), "example/big:1")
        split = [] if planted.endswith(".{pid}.tmp") else ["--split", "1M"]
        airgap("save", "-o", str(tmp_path / "b.tar"), *split, "example/big:1")
        assert airgap("verify", str(tmp_path / ("b.tar.001" if split else "b.tar"))).code == 0
        assert not split or (tmp_path / "b.tar.003").exists()
    assert victim.read_text() == "keep" and not link.exists()

@pytest.mark.parametrize("planted", ["k.key", "k.pub"])
def test_key_generate_writes_through_no_link(airgap: Airgap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             planted: str) -> None:
    """A dangling link where a key file goes (planted in a shared directory) would have the
    key written wherever it points: refused, nothing made there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "pw")
    (tmp_path / planted).symlink_to(tmp_path / "elsewhere")
    res = airgap("key", "generate", "k", ok=False)
    assert res.code == 1 and f"{planted} already exists" in res.err
    assert not (tmp_path / "elsewhere").exists()


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


@pytest.mark.parametrize("damage", ["no manifests list", "index.json missing", "index.json a FIFO"])
@pytest.mark.parametrize("verb", [["system", "prune", "-a", "-f"], ["image", "prune", "-a", "-f"],
                                  ["tag", "example/app-b:1", "example/x:1"]])
def test_gc_stops_at_a_damaged_index(airgap: Airgap, three_images: list[str], damage: str, verb: list[str]) -> None:
    """An index.json without its manifests list, or gone, read as an empty store: prune
    then deleted every blob, and a writer replaced the index with its own names only."""
    index = airgap.store / "index.json"
    if damage == "index.json missing":
        index.unlink()
    elif damage == "index.json a FIFO":  # every verb waited for a writer, forever
        index.unlink()
        os.mkfifo(index)
    else:
        index.write_text('{"schemaVersion": 2}')
    before = snapshot(airgap.store)
    res = airgap(*verb, ok=False)
    assert res.code == 3 and str(index) in res.err, res.err
    assert snapshot(airgap.store) == before
    from airgap.errors import StoreCorrupt
    from airgap.store import Store
    with pytest.raises(StoreCorrupt, match="index.json"):  # read by a store opened without creating
        Store(airgap.store, create=False).entries()


@pytest.mark.parametrize("lock_file", ["there", "missing"])
def test_save_reads_a_store_it_may_not_write(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, lock_file: str) -> None:
    """A store on a read-only filesystem (or another user's): save opened the lock file
    to write it, for its shared lock, and stopped at "Read-only file system: STORE/.lock".
    Its shared lock is taken on the file opened read-only, or none when there is none;
    a writer still fails, naming the file."""
    lock = airgap.store / ".lock"
    if lock_file == "missing":
        lock.unlink(missing_ok=True)
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if str(path).startswith(str(airgap.store)) and flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kw)
    monkeypatch.setattr(os, "open", read_only)
    airgap("save", "-o", str(tmp_path / "b.tar"), three_images[0])
    res = airgap("tag", three_images[0], "example/other:1", ok=False)
    assert res.code == 1 and "Read-only file system" in res.err and ".lock" in res.err, res.err
    monkeypatch.undo()
    site = Airgap(tmp_path / "site", airgap.capsys)
    assert site("load", "-i", str(tmp_path / "b.tar")).out == f"Loaded image: {three_images[0]}\n"


def test_the_store_never_writes_an_index_it_cannot_read_back(airgap: Airgap, three_images: list[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """index.json was read with the cap of a document from outside (200,000 JSON objects):
    a store of some 70,000 names, which tags and loads could make, then refused every verb
    as damaged. The store reads its own index with its own, larger caps, and a writer
    refuses an index past them (the caps are made small here)."""
    from airgap.store import layout
    monkeypatch.setattr(layout, "MAX_INDEX_CONTAINERS", 40)
    made = []
    for i in range(40):
        res = airgap("tag", three_images[0], f"example/many:{i}", ok=False)
        if res.code:
            break
        made.append(f"example/many:{i}")
    assert res.code == 1 and "more than airgap reads back" in res.err, res.err
    listing = airgap("images", "--format", "{{.Repository}}:{{.Tag}}").out.split()
    assert made and f"example/many:{len(made)}" not in listing
    before = snapshot(airgap.store)
    assert airgap("tag", three_images[0], "example/many:x", ok=False).code == 1
    assert snapshot(airgap.store) == before
    listed = airgap("images", "--format", "{{.Repository}}:{{.Tag}}").out.split()
    assert set(made) <= set(listed)
    monkeypatch.setattr(layout, "MAX_INDEX_CONTAINERS", 4_000_000)  # by its size, too: the index as it
    monkeypatch.setattr(layout, "MAX_INDEX", (airgap.store / "index.json").stat().st_size + 10)  # is reads back,
    res = airgap("tag", three_images[0], "example/one-more:1", ok=False)  # one name more would not
    assert res.code == 1 and "more than airgap reads back" in res.err, res.err
    monkeypatch.setattr(layout, "MAX_INDEX", 1000)  # and by its size: damage, exit 3, never read whole
    res = airgap("images", ok=False)
    assert res.code == 3 and "index.json: more than 0 KiB" in res.err, res.err
    # and an index of 110,000 names (220,000 JSON objects) reads back at the real caps
    monkeypatch.undo()
    index = json.loads((airgap.store / "index.json").read_bytes())
    entry = index["manifests"][0]
    index["manifests"] = [{**entry, "annotations": {"org.opencontainers.image.ref.name": f"docker.io/x/y:{i}"}}
                          for i in range(110_000)]
    (airgap.store / "index.json").write_text(json.dumps(index))
    from airgap.store import Store
    assert len(Store(airgap.store, create=False).entries()) == 110_000


# -- 3. modes and owners ------------------------------------------------------------------------

def test_store_files_follow_the_umask_and_the_owner(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                    make_airgap: Any) -> None:
    if os.geteuid() != 0:
        from ..conftest import IN_CI
        if IN_CI:
            pytest.fail("needs root to hand files to another user")
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

def _half_written(pid: int, directory: Path, at_least: int) -> bool:
    """Whether process ``pid`` has a file under ``directory`` open (anonymous ones too)
    that holds ``at_least`` bytes so far."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:  # an fd may close while we look: that one is simply not it
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(directory) + "/") and \
                    os.stat(f"/proc/{pid}/fd/{fd}").st_size >= at_least:
                return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize("via", ["file", "pipe"])
def test_kill_9_leaves_no_partial_file(airgap: Airgap, three_images: list[str], tmp_path: Path, via: str) -> None:
    import signal
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(96 << 20)})
    airgap("import", str(big), "example/big:1", "--base", "example/base:1")
    bundle = _bundle(airgap, tmp_path, "example/big:1", *three_images)
    target = Airgap(tmp_path / "target", airgap.capsys)
    target("images")
    # each write a little slow, so that the kill surely finds a blob half written
    slow = ("import sys, time\nfrom airgap.writeback import DiskWriter\nwrite = DiskWriter.write\n"
            "DiskWriter.write = lambda self, data: (time.sleep(0.01), write(self, data))[1]\n"
            "from airgap.cli.main import main\nsys.exit(main(sys.argv[1:]))\n")
    cmd = [sys.executable, "-c", slow, "--store", str(target.store), "load"]
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
    caught = False
    try:  # kill while the big blob is half written (an open file in .tmp/ with some of it)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and loader.poll() is None:
            if _half_written(loader.pid, target.store / ".tmp", 8 << 20):
                caught = True
                break
            time.sleep(0.002)
    finally:
        loader.send_signal(signal.SIGKILL)
        loader.wait()
        if via == "pipe":
            feeder.kill()
            feeder.wait()
    assert caught, "the load was never seen with a blob half written"
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


def test_names_left_by_killed_writers_are_swept(airgap: Airgap, three_images: list[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer killed between naming a temp file and renaming it leaves ``.tmp/PID-...``:
    the next writer removes those of dead processes and keeps those of live ones, of
    processes it may not signal, and names no pid can have."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    other_user = 4_000_000  # beyond pid_max: os.kill is made to answer as for another user's
    tmp = airgap.store / ".tmp"
    kept = ["1-140001-link", f"{other_user}-x", "9" * 30 + "-x", "junk"]
    for name in (f"{dead.pid}-140001-link", f"{dead.pid}-x8k2p", *kept):
        (tmp / name).write_bytes(b"half")
    kill = os.kill

    def signal_as_non_root(pid: int, sig: int) -> None:
        if pid == other_user:
            raise PermissionError(1, "Operation not permitted")
        kill(pid, sig)
    monkeypatch.setattr(os, "kill", signal_as_non_root)
    airgap("tag", three_images[0], "example/again:1")
    assert sorted(p.name for p in tmp.iterdir()) == sorted(kept)  # pid 1 runs


def test_a_staged_file_replaces_or_takes_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linked at its name at once when the name is free (no temp name a kill could leave);
    through a temp name and a rename when it is taken."""
    from airgap.store.layout import Store
    store = Store(tmp_path / "s")
    renames: list[str] = []
    replace = os.replace

    def recording(a: Path, b: Path) -> None:
        renames.append(str(a))
        replace(a, b)
    monkeypatch.setattr(os, "replace", recording)
    for content, renamed in ((b"first", 0), (b"second", 1)):
        staged = store.new_staged()
        staged.write(content)
        store.link_staged(staged, tmp_path / "s" / "name")
        staged.discard()
        assert (tmp_path / "s" / "name").read_bytes() == content
        assert list(store.tmp.iterdir()) == [] and len(renames) == renamed, renames


# -- 5. compressed archives, and files that are no archive --------------------------------------

def _compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, 1)
    if kind == "bzip2":
        import bz2
        return bz2.compress(data, 1)
    if kind == "xz":
        import lzma
        return lzma.compress(data, preset=0)
    import zstandard
    return zstandard.ZstdCompressor(level=1).compress(data)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_archives_load_from_file_and_pipe(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                     make_airgap: Any, kind: str) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images).read_bytes()
    foreign = tar_of([(n, d) for n, d in members_of(_bundle(airgap, tmp_path, three_images[1]))
                      if not n.startswith("airgap/")])  # a docker-save/OCI archive, no airgap files
    want = airgap.image_id(three_images[0])
    for i, data in enumerate((bundle, foreign)):
        packed = tmp_path / f"in-{i}.tar.whatever"  # named anything: detected by its bytes
        packed.write_bytes(_compress(data, kind))
        site = make_airgap(f"site-{kind}-{i}")
        res = site("load", "-i", str(packed))
        assert "Loaded image: example/app-" in res.out
        if i == 0:
            assert site.image_id(three_images[0]) == want
        piped = make_airgap(f"piped-{kind}-{i}")
        piped("images")
        with open(packed, "rb") as f:
            proc = _piped([sys.executable, "-m", "airgap", "--store", str(piped.store), "load"], f)
        assert proc.returncode == 0, proc.stderr
        assert piped("images", "-q").out == site("images", "-q").out
        assert list((piped.store / ".tmp").iterdir()) == []


@pytest.mark.parametrize("content,looks", [
    (b'{"schemaVersion": 2, "manifests": []}\n', "JSON"),
    (b"# Release notes\n\nCopy the bundle to the stick.\n" * 20, "text"),
    (("ab" * 32 + "  bundle.tar.001\n").encode() * 3, "sha256sum list"),
    (os.urandom(4096), "binary data"),
    (b"", "empty"),
])
def test_not_an_archive(airgap: Airgap, tmp_path: Path, content: bytes, looks: str) -> None:
    f = tmp_path / "thing"
    f.write_bytes(content)
    airgap("images")
    before = snapshot(airgap.store)
    for verb in (["load", "-i", str(f)], ["verify", str(f)]):
        res = airgap(*verb, ok=False)
        assert res.code == 3 and "not a tar archive" in res.err and looks in res.err, res.err
        assert "USB" not in res.err and "truncated" not in res.err
    assert snapshot(airgap.store) == before


def test_a_file_that_seeks_only_from_its_start(airgap: Airgap, tmp_path: Path) -> None:
    """A file of /proc is "regular" but cannot seek from its end: it was taken for a
    seekable archive and the load stopped at "Invalid argument", naming nothing. It is
    read as a stream: named, and refused for what it holds."""
    airgap("images")
    before = snapshot(airgap.store)
    res = airgap("load", "-i", "/proc/self/status", ok=False)
    assert res.code == 3 and "/proc/self/status: not a tar archive (it looks like a text" in res.err, res.err
    with open("/proc/self/status", "rb") as f:
        proc = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "load"], stdin=f,
                              capture_output=True, text=True)
    assert proc.returncode == 3 and "stdin: not a tar archive" in proc.stderr, proc.stderr
    assert snapshot(airgap.store) == before


def test_a_read_error_names_the_file(airgap: Airgap) -> None:
    """A stick pulled out mid-load answers reads with EIO, whose error carries no name: the
    load said "Input/output error" and nothing more. /proc/self/mem gives a real EIO at
    its first read."""
    airgap("images")
    before = snapshot(airgap.store)
    for verb in (["load", "-i", "/proc/self/mem"], ["verify", "/proc/self/mem"]):
        res = airgap(*verb, ok=False)
        assert res.code == 1 and res.err == "airgap: error: Input/output error: /proc/self/mem\n", res.err
    with open("/proc/self/mem", "rb") as mem:  # this process's memory, as another's stdin: EIO too
        proc = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "load"], stdin=mem,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr == "airgap: error: Input/output error: stdin\n", proc.stderr
    assert snapshot(airgap.store) == before


# -- 6. free space ------------------------------------------------------------------------------

def test_refused_before_writing_when_it_does_not_fit(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                     make_airgap: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airgap import space
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    monkeypatch.setattr(space, "free_bytes", lambda path: 1000)
    res = site("load", "-i", str(bundle), ok=False)
    assert res.code == 1 and f"in {site.store}, 1kB free" in res.err and "needs" in res.err
    assert snapshot(site.store) == before
    with open(bundle, "rb") as f:
        proc = _piped([sys.executable, "-c", "import sys; from airgap import space; "
                       "space.free_bytes = lambda p: 1000; from airgap.cli.main import main; "
                       f"sys.exit(main(['--store', {str(site.store)!r}, 'load']))"], f)
    assert proc.returncode == 1 and "1kB free" in proc.stderr, proc.stderr
    assert snapshot(site.store) == before
    res = airgap("save", "-o", str(tmp_path / "out.tar"), *three_images, ok=False)
    assert res.code == 1 and f"in {tmp_path}, 1kB free" in res.err
    assert not (tmp_path / "out.tar").exists() and not list(tmp_path.glob(".out.tar*"))


def test_a_disk_that_fills_anyway(airgap: Airgap, three_images: list[str], tmp_path: Path, make_airgap: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from airgap.writeback import DiskWriter
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    real = DiskWriter.write
    calls = {"n": 0}

    def filling(self: DiskWriter, data: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, data)
    monkeypatch.setattr(DiskWriter, "write", filling)
    res = site("load", "-i", str(bundle), ok=False)
    assert res.code == 1 and f"no space left on device in {site.store}" in res.err
    assert snapshot(site.store) == before and list((site.store / ".tmp").iterdir()) == []


# -- 7. removable media -------------------------------------------------------------------------

def test_fat_sizes(airgap: Airgap, three_images: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airgap import space
    from airgap.cli.transfer import _check_output
    from airgap.errors import UsageError
    monkeypatch.setattr(space, "filesystem_type", lambda path: "vfat")
    res = airgap("save", "--split", "4G", "-o", str(tmp_path / "b.tar"), *three_images, ok=False)
    assert res.code == 2 and "FAT" in res.err and "--split fat32" in res.err
    assert not list(tmp_path.glob("b.tar*")) and not list(tmp_path.glob(".b.tar*"))
    airgap("save", "--split", "fat32", "-o", str(tmp_path / "b.tar"), *three_images)
    assert (tmp_path / "b.tar.001").exists()

    class Big:
        total_bytes = 5 << 30
        blobs: dict[str, Any] = {}
    with pytest.raises(UsageError, match="fat32"):
        _check_output(str(tmp_path / "whole.tar"), "file", None, Big())  # type: ignore[arg-type]
    monkeypatch.setattr(space, "filesystem_type", lambda path: "ext4")
    monkeypatch.setattr(space, "free_bytes", lambda path: 10 << 30)
    _check_output(str(tmp_path / "whole.tar"), "file", None, Big())  # type: ignore[arg-type]


def test_filesystem_type_reads_the_mounts() -> None:
    from airgap.space import filesystem_type
    assert filesystem_type(Path("/proc/self")) == "proc"
    assert filesystem_type(Path("/")) not in ("", "proc")


# -- 8. progress on pipes -----------------------------------------------------------------------

def test_progress_on_a_pipe(airgap: Airgap, three_images: list[str], tmp_path: Path, make_airgap: Any) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    foreign = tmp_path / "foreign.tar"
    foreign.write_bytes(tar_of([(n, d) for n, d in members_of(bundle) if not n.startswith("airgap/")]))
    for src in (bundle, foreign):
        site = make_airgap(f"site-{src.stem}")
        with open(src, "rb") as f:
            proc = _piped([sys.executable, "-m", "airgap", "--store", str(site.store), "--progress", "plain",
                           "load"], f)
        assert proc.returncode == 0, proc.stderr
        line = [x for x in proc.stderr.splitlines() if x.startswith("Reading stdin:")]
        assert line and "/s)" in line[-1], proc.stderr
        assert "kB" in line[-1] or "MB" in line[-1]


# -- 9. small things ----------------------------------------------------------------------------

def test_zero_created_time(airgap: Airgap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        sig = image({"sig": b"x"}, config={"created": "0001-01-01T00:00:00Z"})
        far = image({"far": b"y"}, config={"created": "9999-12-31T23:59:59Z"})
        airgap("load", "-i", str(oci_archive(tmp_path / "a.tar", [sig, far],
                                             [index_entry(sig, "docker.io/library/sig:1"),
                                              index_entry(far, "docker.io/library/far:1")])))
        out = airgap("images").out
        assert "sig " in out and "N/A" in out
        fmt = airgap("images", "--format", "{{.Repository}} {{.CreatedAt}} {{.CreatedSince}}").out
        assert "sig 0001-01-01 00:00:00 +0000 UTC N/A" in fmt
        assert json.loads(airgap("inspect", "sig:1").out)[0]["Created"] == "0001-01-01T00:00:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_save_a_bare_repository_on_a_registry_with_a_port(airgap: Airgap, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "t", {"a.txt": "a"})
    airgap("import", str(src), "registry.site.lan:5000/team/app:1")
    airgap("tag", "registry.site.lan:5000/team/app:1", "registry.site.lan:5000/team/app:2")
    airgap("save", "-o", str(tmp_path / "b.tar"), "registry.site.lan:5000/team/app")
    loaded = Airgap(tmp_path / "other", airgap.capsys)
    out = loaded("load", "-i", str(tmp_path / "b.tar")).out
    assert "registry.site.lan:5000/team/app:1" in out and "registry.site.lan:5000/team/app:2" in out


def test_verify_takes_dash_i_and_makes_no_store(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    bundle = _bundle(airgap, tmp_path, three_images[0])
    nowhere = tmp_path / "no-store-here"
    other = Airgap(nowhere, airgap.capsys)
    res = other("verify", "-i", str(bundle))
    assert "Load would add" in res.out
    assert not nowhere.exists()
    assert other("verify", str(bundle), "-i", str(bundle), ok=False).code == 2


def test_loopback_registries_are_insecure_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from airgap.registry.client import RegistryClient
    monkeypatch.delenv("AIRGAP_INSECURE_REGISTRIES", raising=False)
    for host, want in [("127.0.0.1:5000", True), ("127.1.2.3", True), ("[::1]:5000", True),
                       ("localhost:5000", True), ("10.0.0.1:5000", False), ("registry.site.lan", False)]:
        client = RegistryClient(host)
        try:
            assert client.insecure is want, host
        finally:
            client.close()


def test_waiting_for_the_lock_says_who_holds_it(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    from airgap.store import Store
    bundle = _bundle(airgap, tmp_path, three_images[0])
    target = tmp_path / "target"
    store = Store(target)
    with store.lock():
        proc = subprocess.Popen([sys.executable, "-m", "airgap", "--store", str(target), "load", "-i", str(bundle)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"waiting for the store lock held by pid {os.getpid()}" in line
    assert proc.wait(timeout=60) == 0
    proc.stderr.close()


def test_prune_answer_no(airgap: Airgap, three_images: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    res = airgap("system", "prune")
    assert "Cancelled: nothing was removed." in res.err and "[y/N] \n" in res.out


def test_save_into_a_missing_directory(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    res = airgap("save", "-o", str(tmp_path / "nope" / "b.tar"), three_images[0], ok=False)
    assert res.code == 1 and f"{tmp_path / 'nope'}: no such directory" in res.err and ".tmp" not in res.err


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_blob_that_is_not_a_file_is_damage(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                             kind: str) -> None:
    """A FIFO where a layer's blob should be had save wait forever for a writer."""
    blob = _blob(airgap.store, _layer_of(airgap, three_images[0]))
    blob.unlink()
    os.mkfifo(blob) if kind == "fifo" else blob.mkdir()
    proc = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "save", "-o",
                           str(tmp_path / "b.tar"), three_images[0]], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and f"blob sha256:{blob.name} in the store" in proc.stderr \
        and "not a regular file" in proc.stderr, proc.stderr


def test_nothing_is_written_into_the_store_by_name(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """``save -o STORE/index.json`` renamed a bundle over the store's index (every image
    gone), ``-o STORE/blobs/sha256/HEX`` over a blob, and ``inventory -o`` truncated what it
    named: a file named inside the store, directly or through a link, is a usage error."""
    store = airgap.store
    before = snapshot(store)
    blob = next((store / "blobs" / "sha256").iterdir())
    (tmp_path / "into").symlink_to(store / "blobs")
    for args in (["save", "-o", str(store / "index.json"), three_images[0]],
                 ["save", "-o", str(blob), "--split", "1M", three_images[0]],
                 ["save", "-o", str(tmp_path / "into" / "sha256" / blob.name), three_images[0]],
                 ["save", "-o", str(store / "new.tar"), three_images[0]],
                 ["inventory", "-o", str(store / "index.json")],
                 ["inventory", "-o", str(store)]):
        res = airgap(*args, ok=False)
        assert res.code == 2 and "is inside the store" in res.err, args
        assert snapshot(store) == before, args
    airgap("save", "-o", str(tmp_path / "b.tar"), three_images[0])  # beside it: fine
    assert airgap("store", "check").code == 0


# -- checks the README promises, each with a test that fails without it ---------------------

def test_bundle_json_diff_id_must_match_the_config(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                   make_airgap: Any, signer: dict[str, Path]) -> None:
    """A signed bundle.json whose diffID for a layer differs from the image config."""
    members = members_of(_bundle(airgap, tmp_path, three_images[0], sign=signer["packager"]))
    bundle = json.loads(dict(members)["airgap/bundle.json"])
    layer = next(b for b in bundle["blobs"] if "diffID" in b)
    layer["diffID"] = "sha256:" + "0" * 64
    forged = tmp_path / "forged.tar"
    forged.write_bytes(tar_of(resign(members, bundle, signer["packager"])))
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    for verb in (["load", "-i", str(forged)], ["verify", str(forged)]):
        res = site(*verb, "--trust", str(signer["packager.pub"]), ok=False)
        assert res.code == 3 and "diff_id" in res.err and layer["digest"] in res.err, res.err
    assert snapshot(site.store) == before


def test_uncompressed_layer_digest_must_be_its_diff_id(airgap: Airgap, tmp_path: Path) -> None:
    liar = image({"a": b"a"}, diff_ids=["sha256:" + "1" * 64])
    archive = oci_archive(tmp_path / "liar.tar", [liar], [index_entry(liar, "docker.io/library/liar:1")])
    airgap("images")
    before = snapshot(airgap.store)
    res = airgap("load", "-i", str(archive), ok=False)
    assert res.code == 3 and "diff_id" in res.err and "liar:1" in res.err
    assert snapshot(airgap.store) == before


def test_save_refuses_a_compressed_layer_that_is_not_its_diff_id(airgap: Airgap, tmp_path: Path) -> None:
    """An OCI archive whose gzip layer decompresses to another tar than its config's diff_id
    loads (``--verify fast`` checks digests only), but ``save`` refuses it before the trip:
    ``docker load`` would refuse the bundle on the far side. A damaged cache entry for the
    layer is worked out again, not believed or crashed on."""
    raw, other = tar_of([("a", b"a")]), tar_of([("b", b"b")])
    layer = gzip.compress(raw, 1)
    honest = image(layers=[gzip.compress(other, 1)], layer_type=OCI_LAYER_GZIP, diff_ids=[sha256_digest(other)])
    liar = image(layers=[layer], layer_type=OCI_LAYER_GZIP, diff_ids=["sha256:" + "1" * 64])
    archive = oci_archive(tmp_path / "two.tar", [honest, liar],
                          [index_entry(honest, "docker.io/library/honest:1"),
                           index_entry(liar, "docker.io/library/liar:1")])
    airgap("load", "-i", str(archive))
    cache = airgap.store / ".cache" / "uncompressed" / sha256_digest(layer)[7:]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("garbage")
    out = tmp_path / "b.tar"
    res = airgap("save", "-o", str(out), "liar:1", ok=False)
    assert res.code == 3 and "diff_id" in res.err and "liar:1" in res.err and sha256_digest(raw) in res.err, res.err
    assert not out.exists() and "Traceback" not in res.err
    assert cache.read_text() == f"{sha256_digest(raw)} {len(raw)}"  # worked out again, and kept
    airgap("save", "-o", str(out), "honest:1")
    assert airgap("save", "-o", str(tmp_path / "c.tar"), "liar:1", ok=False).code == 3  # from the cache too


def test_push_refuses_a_registry_that_stores_another_manifest(airgap: Airgap, three_images: list[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry answers the manifest PUT with a digest that is not the one sent."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Fake(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def _reply(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in {"Content-Length": "0", **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()

        def do_GET(self) -> None:
            self._reply(200)

        def do_HEAD(self) -> None:  # every blob is already there
            self._reply(200, {"Docker-Content-Digest": self.path.rsplit("/", 1)[-1]})

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(201, {"Docker-Content-Digest": "sha256:" + "e" * 64})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{httpd.server_address[1]}"
        res = airgap("push", three_images[0], f"{host}/team/app:1", ok=False)
        assert res.code == 3 and "e" * 64 in res.err, res.err
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_changed_bundle_json_breaks_the_signature(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                    make_airgap: Any, signer: dict[str, Path]) -> None:
    """Valid JSON, every member still matching it, only the signature is stale."""
    members = members_of(_bundle(airgap, tmp_path, three_images[0], sign=signer["packager"]))
    bundle = json.loads(dict(members)["airgap/bundle.json"])
    bundle["created"] = "2000-01-01T00:00:00Z"
    raw = json.dumps(bundle, indent=1, sort_keys=True).encode() + b"\n"
    forged = tmp_path / "forged.tar"
    forged.write_bytes(tar_of([(n, raw if n == "airgap/bundle.json" else d) for n, d in members]))
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    for trust in ([], ["--trust", str(signer["packager.pub"])]):
        res = site("load", "-i", str(forged), *trust, ok=False)
        assert res.code == 3 and "signature does not match" in res.err, res.err
    assert snapshot(site.store) == before


@pytest.mark.parametrize("via", ["file", "pipe"])
def test_member_size_must_be_the_listed_size(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                             make_airgap: Any, signer: dict[str, Path], via: str) -> None:
    """A signed bundle.json that lists a layer with one byte more than the member has."""
    members = members_of(_bundle(airgap, tmp_path, three_images[0], sign=signer["packager"]))
    bundle = json.loads(dict(members)["airgap/bundle.json"])
    layer = next(b for b in bundle["blobs"] if "diffID" in b)
    layer["size"] += 1
    forged = tmp_path / "forged.tar"
    forged.write_bytes(tar_of(resign(members, bundle, signer["packager"])))
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    if via == "file":
        res = site("load", "-i", str(forged), ok=False)
        code, err = res.code, res.err
    else:
        with open(forged, "rb") as f:
            proc = _piped([sys.executable, "-m", "airgap", "--store", str(site.store), "load"], f)
        code, err = proc.returncode, proc.stderr
    assert code == 3 and f"is {layer['size'] - 1} bytes, airgap/bundle.json says {layer['size']}" in err, err
    assert snapshot(site.store) == before


def test_manifest_and_config_disagree_on_the_layers(airgap: Airgap, tmp_path: Path) -> None:
    two = image(layers=[tar_of([("a", b"a")]), tar_of([("b", b"b")])], diff_ids=[sha256_digest(tar_of([("a", b"a")]))])
    archive = oci_archive(tmp_path / "x.tar", [two], [index_entry(two, "docker.io/library/two:1")])
    airgap("images")
    res = airgap("load", "-i", str(archive), ok=False)
    assert res.code == 3 and "lists 2 layers, its config 1 diff_id" in res.err, res.err


@pytest.mark.parametrize("via", ["file", "pipe"])
def test_an_interrupted_load_resumes(airgap: Airgap, three_images: list[str], tmp_path: Path, via: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed at several points, then completed: the same store as an uninterrupted load,
    and what was verified before the kill is not read again."""
    import signal
    for i in range(3):
        big = write_tree(tmp_path / f"big{i}", {"big.bin": os.urandom(40 << 20)})
        airgap("import", str(big), f"example/big{i}:1", "--base", "example/base:1")
    bundle = _bundle(airgap, tmp_path, "example/big0:1", "example/big1:1", "example/big2:1", *three_images)
    control = Airgap(tmp_path / "control", airgap.capsys)
    control("load", "-i", str(bundle))
    target = Airgap(tmp_path / "target", airgap.capsys)
    target("images")
    cmd = [sys.executable, "-m", "airgap", "--store", str(target.store), "load"]
    for point in (0.15, 0.4):  # kill twice, at different points
        with open(bundle, "rb") as f:
            loader = subprocess.Popen(cmd + (["-i", str(bundle)] if via == "file" else []),
                                      stdin=subprocess.DEVNULL if via == "file" else f,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and \
                    sum(p.stat().st_size for p in (target.store / ".resume").iterdir()) < point * (120 << 20):
                time.sleep(0.002)
            loader.send_signal(signal.SIGKILL)
            loader.wait()
        assert target("images", "-q").out == ""
    kept = sum(p.stat().st_size for p in (target.store / ".resume").iterdir())
    assert kept > 30 << 20
    if via == "file":  # counting the bytes read from the bundle: what was kept is not read again
        import io
        from airgap.archive import input as input_mod
        read = [0]

        class Counting(io.FileIO):
            def readinto(self, b):
                n = super().readinto(b)
                read[0] += n or 0
                return n

        monkeypatch.setattr(input_mod, "open", lambda path, mode: io.BufferedReader(Counting(path, "rb")),
                            raising=False)
        res = target("load", "-i", str(bundle))
        err = res.err
        assert read[0] <= bundle.stat().st_size - kept + (1 << 20), (read[0], kept)
    else:
        with open(bundle, "rb") as f:
            proc = _piped([*cmd], f)
        assert proc.returncode == 0, proc.stderr
        err = proc.stderr
    assert "Resumed:" in err and "reused" in err, err
    assert snapshot(target.store) == snapshot(control.store)
    assert list((target.store / ".resume").iterdir()) == []
    assert target("store", "check").out.startswith("OK:")


@pytest.mark.parametrize("via", ["file", "pipe"])
def test_a_damaged_resume_blob_is_not_published(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                via: str) -> None:
    """A blob in `.resume/` was verified by another process, perhaps long ago: it is hashed
    again before it is reused. One whose bytes changed (its size did not) is passed over and
    read from the input again; a sound one is still reused."""
    bundle = _bundle(airgap, tmp_path, *three_images)
    control = Airgap(tmp_path / "control", airgap.capsys)
    control("load", "-i", str(bundle))
    layers = sorted((p for p in (control.store / "blobs" / "sha256").iterdir()), key=lambda p: -p.stat().st_size)
    damaged, sound = layers[0], layers[1]
    target = Airgap(tmp_path / "target", airgap.capsys)
    target("images")
    (target.store / ".resume" / damaged.name).write_bytes(flip(damaged.read_bytes()))
    (target.store / ".resume" / sound.name).write_bytes(sound.read_bytes())
    if via == "file":
        err = target("load", "-i", str(bundle)).err
    else:
        with open(bundle, "rb") as f:
            proc = _piped([sys.executable, "-m", "airgap", "--store", str(target.store), "load"], f)
        assert proc.returncode == 0, proc.stderr
        err = proc.stderr
    assert "Resumed: 1 blob " in err, err
    assert snapshot(target.store) == snapshot(control.store)
    assert target("store", "check").out.startswith("OK:")


@pytest.mark.parametrize("where", ["store", "blobs"])
def test_a_store_path_that_is_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    """`--store FILE` (or a store whose blobs/ is a file) said "File exists"; it names
    what is not a directory, and the file is left as it was."""
    from airgap.cli.main import main
    store = tmp_path / "s"
    if where == "blobs":
        store.mkdir()
    odd = store if where == "store" else store / "blobs"
    odd.write_bytes(b"not a directory")
    assert main(["--store", str(store), "images"]) == 1
    assert f"{odd} exists and is not a directory" in capsys.readouterr().err
    assert odd.read_bytes() == b"not a directory"


@pytest.mark.parametrize("closed,args,code,says", [
    (0, ["load", "-i", "-"], 3, "stdin: not a tar archive"),
    (1, ["save", "-o", "-", "example/none:1"], 1, "No such image"),
])
def test_closed_standard_descriptors(tmp_path: Path, closed: int, args: list[str], code: int, says: str) -> None:
    """`airgap load <&-` was an internal error (sys.stdin is None), and an error with
    `>&-` a traceback; /dev/null stands in for a closed descriptor, as Go's runtime
    does for docker."""
    err = tmp_path / "err"
    with err.open("wb") as f:
        res = subprocess.run([sys.executable, "-m", "airgap", "--store", str(tmp_path / "s"), *args],
                             stdout=subprocess.DEVNULL if closed != 1 else None, stderr=f,
                             preexec_fn=lambda: os.close(closed), timeout=60)
    text = err.read_text()
    assert res.returncode == code and says in text and "Traceback" not in text and "internal" not in text, text


def test_a_full_device_or_stdout_is_named(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """`save -o /dev/full` (and stdout on it) said "No space left on device", naming nothing."""
    cmd = [sys.executable, "-m", "airgap", "--store", str(airgap.store), "--progress", "none", "save"]
    res = subprocess.run([*cmd, "-o", "/dev/full", three_images[0]], capture_output=True, timeout=60)
    assert res.returncode == 1 and b"/dev/full: no space left on device" in res.stderr, res.stderr
    with open("/dev/full", "wb") as full:
        res = subprocess.run([*cmd, "-o", "-", three_images[0]], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert res.returncode == 1 and b"stdout: no space left on device" in res.stderr, res.stderr
