#!/usr/bin/env python3
"""Time airgap against skopeo, docker load and sha256sum on the same data, in one run.

    .venv/bin/python scripts/bench.py [--size-mb 1024] [--images 1000] [--no-docker]

Builds one image of SIZE (four random layers) in a scratch store, saves it as a bundle,
then times each tool on that bundle and prints wall time, throughput, peak RSS and the
ratio to `sha256sum` of the same file. Also lists a store of many images (`images`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
AIRGAP = str(VENV_BIN / "airgap")


def run(cmd: list[str], stdin: int | None = None, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one command, measured on that child alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_maxrss * 1024


def drop(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def make_image(work: Path, size: int) -> Path:
    store = work / "src-store"
    per_layer = size // 4
    base = None
    for i in range(4):
        d = work / f"layer{i}"
        d.mkdir()
        with open(d / f"data{i}.bin", "wb") as f:
            left = per_layer
            while left:
                n = min(left, 8 << 20)
                f.write(os.urandom(n))
                left -= n
        args = [AIRGAP, "--store", str(store), "--progress", "none", "import", str(d), f"bench/img:{i}"]
        if base:
            args += ["--base", base]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        base = f"bench/img:{i}"
        drop(d)
    return store


def start_dockerd(work: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    dockerd = shutil.which("dockerd")
    client = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
    if not dockerd or not client or os.geteuid() != 0:
        return None
    run_dir = work / "docker"
    run_dir.mkdir()
    sock = run_dir / "d.sock"
    log = open(run_dir / "log", "wb")
    proc = subprocess.Popen([dockerd, "--host", f"unix://{sock}", "--data-root", str(run_dir / "root"),
                             "--exec-root", str(run_dir / "exec"), "--pidfile", str(run_dir / "pid"),
                             "--storage-driver=vfs", "--iptables=false", "--bridge=none",
                             "--containerd-namespace", "bench", "--containerd-plugins-namespace", "bench-p"],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(150):
        if sock.exists() and subprocess.run([client, "-H", f"unix://{sock}", "version"],
                                            capture_output=True).returncode == 0:
            return proc, f"{client} -H unix://{sock}"
        time.sleep(0.2)
    proc.terminate()
    return None


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """docker-registry on 127.0.0.1 (plain HTTP), if installed."""
    binary = shutil.which("docker-registry")
    if binary is None:
        return None
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = work / "registry.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
                   f"{work / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    return None


def images_listing(work: Path, count: int) -> float:
    """Median time of `airgap images` on a store of COUNT generated images.

    The store is made by a child process, so that this one stays small: a child's peak
    RSS counts what it inherited before exec, which would skew the column above."""
    store = work / "many"
    subprocess.run([sys.executable, __file__, "--make-many", str(store), str(count)], check=True)
    times = sorted(run([AIRGAP, "--store", str(store), "images"])[0] for _ in range(7))
    return times[3]


def make_many(root: Path, count: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from airgap.digest import sha256_digest
    from airgap.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, canonical_json
    from airgap.reference import parse_reference
    from airgap.store import Store
    store = Store(root)
    layer = b"\0" * 1024
    ldesc = Descriptor(OCI_LAYER, sha256_digest(layer), len(layer))
    with store.begin() as txn:
        txn.put_bytes(layer, ldesc, "layer")
        for i in range(count):
            cfg = canonical_json({"architecture": "amd64", "os": "linux",
                                  "created": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
                                  "config": {"Labels": {"n": str(i)}},
                                  "rootfs": {"type": "layers", "diff_ids": [ldesc.digest]}})
            cdesc = Descriptor(OCI_CONFIG, sha256_digest(cfg), len(cfg))
            txn.put_bytes(cfg, cdesc, "config")
            man = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                  "config": {"mediaType": OCI_CONFIG, "digest": cdesc.digest, "size": cdesc.size},
                                  "layers": [{"mediaType": OCI_LAYER, "digest": ldesc.digest, "size": ldesc.size}]})
            mdesc = Descriptor(OCI_MANIFEST, sha256_digest(man), len(man))
            txn.put_bytes(man, mdesc, "manifest")
            txn.add_name(mdesc, parse_reference(f"bench/many-{i % 50}:{i}"))
        txn.commit()


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--make-many":
        make_many(Path(sys.argv[2]), int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="airgap-bench-", dir=args.dir))
    size = args.size_mb << 20
    rows: list[tuple[str, float, int]] = []
    docker = None
    try:
        many = images_listing(work, args.images)  # first, on a quiet machine
        print(f"building a {args.size_mb} MiB image (4 random layers) ...", file=sys.stderr)
        store = make_image(work, size)
        bundle = work / "bundle.tar"
        t, rss = run([AIRGAP, "--store", str(store), "--progress", "none", "save", "-o", str(bundle), "bench/img:3"])
        rows.append(("airgap save (store -> bundle)", t, rss))
        nbytes = bundle.stat().st_size
        t, rss = run(["sha256sum", str(bundle)])
        base = t
        rows.insert(0, ("sha256sum bundle", t, rss))
        t, rss = run([AIRGAP, "--store", str(work / "s1"), "--progress", "none", "load", "-i", str(bundle)])
        rows.append(("airgap load (bundle -> empty store)", t, rss))
        t, rss = run([AIRGAP, "--store", str(work / "s1"), "--progress", "none", "load", "-i", str(bundle)])
        rows.append(("airgap load again (all blobs present)", t, rss))
        with open(bundle, "rb") as f:
            proc = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
            t, rss = run([AIRGAP, "--store", str(work / "s2"), "--progress", "none", "load"], stdin=proc.stdout.fileno())  # type: ignore[union-attr]
            proc.wait()
        rows.append(("airgap load from a pipe (one pass)", t, rss))
        drop(work / "s2")
        t, rss = run([AIRGAP, "--store", str(work / "s1"), "--progress", "none", "verify", "--verify", "fast", str(bundle)])
        rows.append(("airgap verify --verify fast", t, rss))
        if shutil.which("skopeo"):
            t, rss = run(["skopeo", "copy", "-q", f"oci-archive:{bundle}:docker.io/bench/img:3", f"oci:{work / 'sk'}:x"])
            rows.append(("skopeo copy oci-archive: -> oci:", t, rss))
            drop(work / "sk")
        registry = start_registry(work)
        if registry is not None:
            try:
                host = registry[1]
                env = {**os.environ, "AIRGAP_INSECURE_REGISTRIES": host}
                t, rss = run([AIRGAP, "--store", str(work / "s1"), "--progress", "none", "push", "--all",
                              f"{host}/ag"], env=env)
                rows.append(("airgap push --all (store -> registry)", t, rss))
                if shutil.which("skopeo"):
                    t, rss = run(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                                  f"oci:{work / 's1'}:docker.io/bench/img:3", f"docker://{host}/sk/bench/img:3"])
                    rows.append(("skopeo copy loop (oci: -> docker://)", t, rss))
            finally:
                registry[0].terminate()
                registry[0].wait(timeout=30)
        if not args.no_docker:
            docker = start_dockerd(work)
            if docker:
                t, rss = run([*docker[1].split(), "load", "-q", "-i", str(bundle)])
                rows.append(("docker load -i bundle (RSS: client only)", t, rss))
    finally:
        if docker:
            docker[0].send_signal(signal.SIGTERM)
            docker[0].wait(timeout=60)
        drop(work)
    print(f"bundle: {nbytes / 1e6:.0f} MB; python {sys.version.split()[0]} ({sys.executable})")
    print(f"| {'operation':<40} | {'seconds':>8} | {'MB/s':>7} | {'peak RSS':>9} | {'vs sha256sum':>12} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 9}|{'-' * 11}|{'-' * 14}|")
    for name, t, rss in rows:
        print(f"| {name:<40} | {t:8.2f} | {nbytes / t / 1e6:7.0f} | {rss / 2**20:7.1f}MB | {t / base:11.2f}x |")
    print(f"\n`airgap images` on a store of {args.images} images: {many:.3f} s (median of 7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
