"""Temp stores, generated images, and the real peers (dockerd, containerd, skopeo, ...)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airgap.cli.main import main

IN_CI = os.environ.get("CI") == "true"


def need(binary: str) -> str:
    """The path of a peer program; missing is a failure in CI and a skip elsewhere."""
    path = shutil.which(binary)
    if path is None:
        msg = f"{binary} is not installed (scripts/test.sh installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@contextmanager
def podman(root: Path) -> Iterator[list[str]]:
    """The podman command line for a private store at ``root`` (vfs, no cgroups or events,
    as a test runs it); its runroot is made under /tmp (podman wants it under 50
    characters) and removed after."""
    binary = need("podman")
    runroot = tempfile.mkdtemp(prefix="pm-", dir="/tmp")
    try:
        yield [binary, "--root", str(root), "--runroot", runroot, "--storage-driver", "vfs",
               "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


@dataclass
class Result:
    code: int
    out: str
    err: str


class Airgap:
    """Runs the CLI in-process against one store."""

    def __init__(self, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.store = store
        self.capsys = capsys

    def __call__(self, *args: str, ok: bool = True) -> Result:
        self.capsys.readouterr()
        code = main(["--store", str(self.store), "--progress", "none", *args])
        cap = self.capsys.readouterr()
        res = Result(code, cap.out, cap.err)
        if ok and code != 0:
            raise AssertionError(f"airgap {' '.join(args)} exited {code}: {cap.err}")
        return res

    def image_id(self, name: str) -> str:
        return str(json.loads(self("inspect", name).out)[0]["Id"])


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def airgap(store: Path, capsys: pytest.CaptureFixture[str]) -> Airgap:
    return Airgap(store, capsys)


@pytest.fixture
def make_airgap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[[str], Airgap]:
    return lambda name: Airgap(tmp_path / name, capsys)


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


@pytest.fixture
def three_images(airgap: Airgap, tmp_path: Path) -> list[str]:
    """base:1 and three images on top of it (app-a, app-b, app-c), sharing its layer."""
    base = write_tree(tmp_path / "t-base", {"etc/os-release": "ID=airgap\n", "bin/tool": os.urandom(40000)})
    airgap("import", str(base), "example/base:1")
    names = []
    for n in "abc":
        d = write_tree(tmp_path / f"t-{n}", {f"app/{n}.txt": f"app {n}\n" * 100})
        airgap("import", str(d), f"example/app-{n}:1", "--base", "example/base:1")
        names.append(f"example/app-{n}:1")
    return names


def snapshot(store: Path) -> dict[str, str]:
    """Every file of the store as readers see it, with a hash of its content: 'unchanged'
    means equal snapshots. The resume area (verified blobs an interrupted or refused load
    keeps for the next one, never visible as images) is not part of it."""
    out = {}
    for p in sorted(store.rglob("*")):
        if p.is_file() and p.name != ".lock" and ".resume" not in p.relative_to(store).parts:
            out[str(p.relative_to(store))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def rewrite_tar(src: Path, dst: Path, edit: Callable[[tarfile.TarInfo, bytes | None], list[tuple[tarfile.TarInfo, bytes | None]]]) -> None:
    """Copy a tar member by member through ``edit``, which returns the members to write."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            for nm, nd in edit(m, data):
                if nd is not None:
                    nm.size = len(nd)
                tout.addfile(nm, io.BytesIO(nd) if nd is not None else None)


def flip(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


# -- real peers -------------------------------------------------------------------------

def _rundir() -> Path:
    base = os.environ.get("AIRGAP_TEST_RUNDIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="airgap-peer-", dir=base))


def _wait(cond: Callable[[], bool], what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start; its log:\n{log.read_text()[-3000:]}")


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Docker:
    def __init__(self, sock: Path, client: str) -> None:
        self.host = f"unix://{sock}"
        self.client = client

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": str(Path(self.host[7:]).parent / "cfg")}
        res = subprocess.run([self.client, "-H", self.host, *args], input=input, capture_output=True, env=env)
        out = subprocess.CompletedProcess(res.args, res.returncode, res.stdout.decode(), res.stderr.decode())
        if check and res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {out.stderr}")
        return out

    def build(self, context: Path, tag: str, dockerfile: str) -> str:
        (context / "Dockerfile").write_text(dockerfile)
        self("build", "-q", "-t", tag, str(context))
        return self("inspect", "-f", "{{.Id}}", tag).stdout.strip()

    def reset(self) -> None:
        """Remove every image; children first (a parent cannot go while a child is there)."""
        for _ in range(10):
            ids = self("images", "-aq").stdout.split()
            if not ids:
                return
            self("rmi", "-f", *sorted(set(ids)), check=False)
        raise AssertionError(f"docker images left: {self('images', '-a').stdout}")


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Docker]:
    dockerd = need("dockerd")
    client = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else need("docker")
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("dockerd needs root")
        pytest.skip("dockerd needs root")
    run = _rundir()
    sock = run / "docker.sock"
    log = run / "dockerd.log"
    proc = _spawn(
        [dockerd, "--host", f"unix://{sock}", "--data-root", str(run / "root"),
         "--exec-root", str(run / "exec"), "--pidfile", str(run / "docker.pid"),
         "--storage-driver=vfs", "--iptables=false", "--bridge=none", "--ip-masq=false",
         "--containerd-namespace", "airgap-test", "--containerd-plugins-namespace", "airgap-test-plugins"], log)
    docker = Docker(sock, client)
    try:
        _wait(lambda: sock.exists() and docker("version", check=False).returncode == 0, "dockerd", log)
        yield docker
    finally:
        _stop(proc)
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def docker(docker_engine: Docker) -> Iterator[Docker]:
    docker_engine.reset()
    yield docker_engine
    docker_engine.reset()


class Containerd:
    def __init__(self, sock: Path) -> None:
        self.sock = sock

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([need("ctr"), "-a", str(self.sock), "-n", "airgap", *args],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} failed: {res.stderr}")
        return res


@pytest.fixture(scope="session")
def containerd() -> Iterator[Containerd]:
    binary = need("containerd")
    need("ctr")
    run = _rundir()
    sock = run / "containerd.sock"
    cfg = run / "config.toml"
    cfg.write_text(f'version = 2\nroot = "{run}/root"\nstate = "{run}/state"\n'
                   f'[grpc]\n  address = "{sock}"\n'
                   '[plugins."io.containerd.grpc.v1.cri"]\n  disable = true\n')
    log = run / "containerd.log"
    proc = _spawn([binary, "--config", str(cfg)], log)
    try:
        _wait(lambda: sock.exists(), "containerd", log)
        yield Containerd(sock)
    finally:
        _stop(proc)
        shutil.rmtree(run, ignore_errors=True)


def run_tool(*args: str) -> str:
    need(args[0])
    res = subprocess.run(list(args), capture_output=True, text=True)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({res.returncode}): {res.stderr}")
    return res.stdout


def json_of(text: str) -> Any:
    return json.loads(text)
