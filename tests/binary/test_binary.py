"""End to end through the one-file binary, in an empty environment (`env -i`): no Python,
no venv, no PATH. scripts/test.sh builds dist/airgap and points $AIRGAP_BIN at it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ..conftest import IN_CI, Airgap

pytestmark = pytest.mark.interop


@pytest.fixture(scope="session")
def airgap_bin() -> str:
    path = os.environ.get("AIRGAP_BIN", "")
    if not path or not os.access(path, os.X_OK):
        msg = "no binary: set $AIRGAP_BIN or run scripts/test.sh (which builds dist/airgap)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def run(binary: str, cwd: Path, *args: str, code: int = 0, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([binary, *args], cwd=cwd, env={}, capture_output=True, input=stdin.decode() if stdin else None,
                         text=True, timeout=120)
    assert res.returncode == code, f"airgap {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def test_version(airgap_bin: str, tmp_path: Path) -> None:
    out = run(airgap_bin, tmp_path, "--version").stdout
    assert out.startswith("airgap ") and "commit " in out and "Python 3" in out and "one-file binary" in out


def test_nothing_runs_at_start_that_airgap_does_not_use(airgap_bin: str) -> None:
    """The binary carries neither setuptools nor pkg_resources (cffi's build helpers pull
    them in) and none of the runtime hooks that import them, or inspect, pkgutil and
    multiprocessing, at every start: a start took ~500 ms here with them, ~260 ms without."""
    from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped,import-not-found,unused-ignore]
    archive = CArchiveReader(airgap_bin)
    hooks = {name for name, entry in archive.toc.items() if entry[4] == "s"}
    assert not hooks & {"pyi_rth_pkgres", "pyi_rth_setuptools", "pyi_rth_inspect", "pyi_rth_pkgutil",
                        "pyi_rth_multiprocessing"}, sorted(hooks)
    modules = archive.open_embedded_archive("PYZ.pyz").toc
    assert "airgap.cli.main" in modules
    assert not [m for m in modules if m.split(".")[0] in ("setuptools", "pkg_resources", "distutils")]


def test_disconnected_host_flow(airgap_bin: str, airgap: Airgap, three_images: list[str], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The packager (the venv) signs a bundle; the host (the binary, empty env) loads it."""
    packager = tmp_path / "packager"
    packager.mkdir()
    monkeypatch.chdir(packager)
    airgap("key", "generate", "release")
    airgap("save", "--sign", "release.key", "-o", "bundle.tar", *three_images)
    host = tmp_path / "host"
    host.mkdir()
    for f in ("bundle.tar", "release.pub"):
        (host / f).write_bytes((packager / f).read_bytes())
    store = ["--store", "store"]
    verified = json.loads(run(airgap_bin, host, *store, "verify", "--format", "json", "--trust", "release.pub",
                              "bundle.tar").stdout)
    assert verified["signature"]["status"] == "verified"
    assert verified["wouldAdd"]["blobs"] == 10
    res = run(airgap_bin, host, *store, "load", "--trust", "release.pub", "-i", "bundle.tar")
    assert res.stdout.splitlines() == [f"Loaded image: {n}" for n in three_images]
    listed = run(airgap_bin, host, *store, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(listed) == sorted(three_images)
    info = json.loads(run(airgap_bin, host, *store, "inspect", three_images[0]).stdout)[0]
    assert info["Id"] == airgap.image_id(three_images[0])
    run(airgap_bin, host, *store, "save", "-o", "again.tar", three_images[0])
    assert "Loaded image" in run(airgap_bin, host, "--store", "other", "load", "-i", "again.tar").stdout
    res = run(airgap_bin, host, *store, "rmi", three_images[0])
    assert res.stdout.startswith(f"Untagged: {three_images[0]}\nDeleted: sha256:")
    run(airgap_bin, host, *store, "store", "check")
    # refused: an untrusted bundle, and a tampered one (exit 3), store unchanged
    run(airgap_bin, host, "key", "generate", "stranger")
    run(airgap_bin, host, *store, "load", "--trust", "stranger.pub", "-i", "bundle.tar", code=3)
    run(airgap_bin, host, *store, "verify", "--verify", "full", "--trust", "release.pub", "bundle.tar")
    import tarfile
    layer = "blobs/sha256/" + info["RootFS"]["Layers"][-1][7:]  # removed by the rmi above
    with tarfile.open(host / "bundle.tar") as tf:
        offset = tf.getmember(layer).offset_data
    data = bytearray((host / "bundle.tar").read_bytes())
    data[offset + 700] ^= 1
    (host / "bad.tar").write_bytes(bytes(data))
    res = run(airgap_bin, host, *store, "load", "--trust", "release.pub", "-i", "bad.tar", code=3)
    assert "airgap: error:" in res.stderr and layer in res.stderr and "Traceback" not in res.stderr
    run(airgap_bin, host, *store, "images", "--bogus", code=2)


def test_binary_registry_and_7z(airgap_bin: str, airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """httpx (push, pull) and py7zr (a .7z bundle) work inside the binary too."""
    from ..conftest import need, run_tool
    from ..registry_peer import start_registry
    work = tmp_path / "w"
    work.mkdir()
    bundle = work / "b.tar"
    airgap("save", "-o", str(bundle), three_images[0])
    run_tool("7zz", "a", "-bd", str(work / "b.7z"), str(bundle))
    assert "Loaded image" in run(airgap_bin, work, "--store", "s7", "load", "-i", "b.7z").stdout
    reg = start_registry(need("docker-registry"), tmp_path / "reg", "plain")
    try:
        def env_run(*a: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([airgap_bin, *a], cwd=work, capture_output=True, text=True, timeout=120,
                                  env={"AIRGAP_INSECURE_REGISTRIES": reg.host, "HOME": str(work)})
        pushed = env_run("--store", "s7", "push", "--format", "json", three_images[0], f"{reg.host}/bin/app:1")
        assert pushed.returncode == 0, pushed.stderr
        digest = json.loads(pushed.stdout)["digest"]
        pulled = env_run("--store", "s8", "pull", "-q", f"{reg.host}/bin/app:1")
        assert pulled.returncode == 0, pulled.stderr
        listed = env_run("--store", "s8", "images", "--digests", "--format", "{{.Digest}}")
        assert listed.stdout.strip() == digest
    finally:
        reg.stop()
