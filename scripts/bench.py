#!/usr/bin/env python3
"""Time airgap against cp + sync, skopeo, docker load, gzip and hashlib on the same data.

    .venv/bin/python scripts/bench.py [--size-mb 1024] [--times 3] [--images 1000] [--no-docker]

Builds three images of real files from /usr (a base of 60% of SIZE and two images of
20% on top of it) with Docker and `docker save`s them (without dockerd: airgap imports
and saves the same files), then times each operation of issue 13 against its reference
on the same bytes (the median of TIMES runs; wall time, throughput, the peak RSS of the
child) and prints the ratio beside its target. Also lists a store of many images.
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
from typing import Callable

VENV_BIN = Path(sys.executable).parent
AIRGAP = str(VENV_BIN / "airgap")
BINARY = Path(__file__).resolve().parent.parent / "dist" / "airgap"  # scripts/build-binary.sh


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


def bytes_read(cmd: list[str]) -> int:
    """What one run of ``cmd`` read through read() calls (``rchar`` of /proc/PID/io, taken
    from the exited child before it is reaped): its input, and the modules it imports."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    with open(f"/proc/{proc.pid}/io") as f:
        rchar = int(next(line for line in f if line.startswith("rchar:")).split()[1])
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return rchar


def drop(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


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


def page_cache(root: Path, keep: bool) -> None:
    """Read every file under ``root`` into the page cache (``keep``) or drop it from there
    (``POSIX_FADV_DONTNEED``; the files are clean, so it goes): a subject and its
    reference start with their input in the same state. A load writes blobs with
    O_DIRECT, so without this a save would read the store from the disk and ``cp`` its
    bundle from memory."""
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    for path in files:
        with open(path, "rb", buffering=0) as f:
            if keep:
                while f.read(4 << 20):
                    pass
            else:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _num(x: float) -> str:
    """Two decimals; three below 0.1 (a reload's seconds and its ratio to a first load)."""
    return f"{x:.3f}" if x < 0.1 else f"{x:.2f}"


def tool(*args: str, stdin: int | None = None, env: dict[str, str] | None = None) -> tuple[float, int]:
    return run(list(args), stdin=stdin, env=env)


def median(fn: Callable[[], tuple[float, int]], times: int, setup: Callable[[], None] | None = None) -> tuple[float, int]:
    """The median wall time of ``times`` runs (``setup`` before each, not timed); the
    largest peak RSS."""
    results = []
    for _ in range(times):
        if setup is not None:
            setup()
        results.append(fn())
    results.sort()
    return results[len(results) // 2][0], max(r[1] for r in results)


QUICK_TIMES = 5  # reloads after each first load; the start-up rows run this many times --times


def interleaved(fns: dict[str, Callable[[], tuple[float, int]]], times: int) -> dict[str, tuple[float, int]]:
    """``median`` of each of ``fns``, run one after the other ``times`` rounds."""
    results: dict[str, list[tuple[float, int]]] = {key: [] for key in fns}
    for _ in range(times):
        for key, fn in fns.items():
            results[key].append(fn())
    return {key: (sorted(r)[len(r) // 2][0], max(x[1] for x in r)) for key, r in results.items()}


def fill_context(root: Path, sizes: list[int]) -> list[Path]:
    """Directories of real files (shared libraries, programs, data from /usr), the first
    SIZES[0] bytes' worth in the first, and so on: content that compresses as images do."""
    dirs = [root / f"ctx{i}" for i in range(len(sizes))]
    for d in dirs:
        d.mkdir(parents=True)
    i, left = 0, sizes[0]
    for top in ("/usr/lib", "/usr/share", "/usr/bin"):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                src = Path(dirpath) / name
                try:
                    if not src.is_file() or src.is_symlink():
                        continue
                    size = src.stat().st_size
                except OSError:
                    continue
                if size == 0 or size > left:
                    continue
                dst = dirs[i] / src.relative_to("/")
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copyfile(src, dst)
                except OSError:
                    continue
                left -= size
                if left < 64 << 10:
                    i += 1
                    if i == len(sizes):
                        return dirs
                    left = sizes[i]
    return dirs


Timed = Callable[[], tuple[float, int]]


class Bench:
    """Rows of the table. A ratio comes from runs interleaved with its reference (A B A
    B ...: this machine's disk and memory change speed from one minute to the next), the
    median of the per-pair ratios."""

    def __init__(self, work: Path, times: int) -> None:
        self.work, self.times = work, times
        self.rows: list[tuple[str, float, int, int, str, float | None, str]] = []

    def row(self, name: str, t: float, rss: int, nbytes: int, ref: str = "", ratio: float | None = None,
            target: str = "") -> None:
        self.rows.append((name, t, rss, nbytes, ref, ratio, target))
        print(f"  {name}: {_num(t)} s" + (f" ({_num(ratio)}x {ref})" if ratio else ""), file=sys.stderr)

    def pair(self, subject: Timed, reference: Timed, setup: Callable[[], None] | None = None,
             ref_setup: Callable[[], None] | None = None) -> tuple[tuple[float, int], tuple[float, int], float]:
        """Median (time, RSS) of the subject and of the reference, and the median ratio."""
        subj: list[tuple[float, int]] = []
        refs: list[tuple[float, int]] = []
        for _ in range(self.times):
            if ref_setup is not None:
                ref_setup()
            refs.append(reference())
            if setup is not None:
                setup()
            subj.append(subject())
        ratios = sorted(a[0] / b[0] for a, b in zip(subj, refs))
        mid = self.times // 2
        return ((sorted(subj)[mid][0], max(r for _, r in subj)), (sorted(refs)[mid][0], max(r for _, r in refs)),
                ratios[mid])

    def airgap(self, store: Path, *args: str, stdin: int | None = None) -> tuple[float, int]:
        return tool(AIRGAP, "--store", str(store), "--progress", "none", *args, stdin=stdin)

    def fresh(self, name: str) -> Callable[[], None]:
        return lambda: drop(self.work / name)

    def cp_sync(self, src: Path) -> tuple[Timed, Callable[[], None]]:
        dst = self.work / "cp.out"
        return (lambda: tool("sh", "-c", f"cp '{src}' '{dst}' && sync"),
                lambda: dst.unlink(missing_ok=True))

    def print(self) -> None:
        print(f"| {'operation':<46} | {'s':>6} | {'MB/s':>5} | {'RSS':>6} | {'ratio':>6} | {'vs':<32} | {'target':<8} |")
        print(f"|{'-' * 48}|{'-' * 8}|{'-' * 7}|{'-' * 8}|{'-' * 8}|{'-' * 34}|{'-' * 10}|")
        for name, t, rss, nbytes, ref, ratio, target in self.rows:
            shown = f"{_num(ratio)}x" if ratio else ""
            print(f"| {name:<46} | {_num(t):>6} | {nbytes / t / 1e6:5.0f} | {rss / 2**20:4.0f}MB | {shown:>6} | "
                  f"{ref:<32} | {target:<8} |")


def compressed_rows(b: Bench, store: Path, names: list[str], method: str, bsize: int, gzip_t: float,
                    plain_save: float) -> int:
    """save --compress METHOD, first with an empty cache, then again; the bundle's size."""
    out = b.work / f"bundle-{method}.tar"

    def uncached() -> None:
        out.unlink(missing_ok=True)
        for d in ("blobs", "compressed-gzip", "compressed-zstd"):
            drop(store / ".cache" / d)

    def save() -> tuple[float, int]:
        return b.airgap(store, "save", "--compress", method, "-o", str(out), *names)

    t = median(save, b.times, uncached)
    b.row(f"save --compress {method} (first: compresses)", *t, bsize, "gzip -1", t[0] / gzip_t, "<= 0.25x")
    size = out.stat().st_size
    t = median(save, b.times, lambda: out.unlink(missing_ok=True))
    b.row(f"save --compress {method} (again: cached)", *t, bsize, "uncompressed save", t[0] / plain_save, "~1x")
    out.unlink(missing_ok=True)
    return size


def docker_images(work: Path, docker: str, dirs: list[Path]) -> list[str]:
    names = ["bench/base:1", "bench/app1:1", "bench/app2:1"]
    for i, (d, name) in enumerate(zip(dirs, names)):
        (d / "Dockerfile").write_text(("FROM scratch\n" if i == 0 else "FROM bench/base:1\n") + "COPY usr /usr\n")
        subprocess.run([*docker.split(), "build", "-q", "-t", name, str(d)], check=True, stdout=subprocess.DEVNULL)
    return names


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--make-many":
        make_many(Path(sys.argv[2]), int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024, help="the three images together (base 60%%, 2 x 20%%)")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--times", type=int, default=3, help="runs per row (the median is shown)")
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args()
    # bytecode for the package, as an installed one has (PYTHONDONTWRITEBYTECODE may be set,
    # and an editable install would then compile every module on every start)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parent.parent / "airgap")],
                   check=True)
    work = Path(tempfile.mkdtemp(prefix="airgap-bench-", dir=args.dir))
    b = Bench(work, args.times)
    n = args.times
    docker = None
    registry = None
    try:
        many = images_listing(work, args.images)  # first, on a quiet machine
        size = args.size_mb << 20
        print(f"copying {args.size_mb} MiB of /usr into three image contexts ...", file=sys.stderr)
        dirs = fill_context(work / "ctx", [size * 3 // 5, size // 5, size // 5])
        archive = work / "docker.tar"
        store = work / "store"
        if not args.no_docker:
            docker = start_dockerd(work)
        if docker is not None:
            names = docker_images(work, docker[1], dirs)
            subprocess.run([*docker[1].split(), "save", "-o", str(archive), *names], check=True)
            source = "docker save"
        else:  # the same images made by airgap: its bundle is a docker-save archive too
            names = ["bench/base:1", "bench/app1:1", "bench/app2:1"]
            src = work / "src"
            for i, (d, name) in enumerate(zip(dirs, names)):
                subprocess.run([AIRGAP, "--store", str(src), "--progress", "none", "import", str(d), name,
                                *(["--base", names[0]] if i else [])], check=True, stdout=subprocess.DEVNULL)
            b.airgap(src, "save", "-o", str(archive), *names)
            drop(src)
            source = "airgap save (no dockerd)"
        drop(work / "ctx")
        asize = archive.stat().st_size
        print(f"{source} archive of 3 images: {asize / 1e6:.0f} MB; timing ...", file=sys.stderr)

        # loads of the docker-save archive
        cp, cp_clean = b.cp_sync(archive)
        # each first load is followed by loads of the same archive again (every image present):
        # the reload's ratio is to the first load just before it, as every ratio here is to a
        # reference run beside it (a VM's stolen CPU moves a row of milliseconds by tens of
        # percent from one minute to the next)
        again: list[tuple[float, tuple[float, int]]] = []

        def first_load() -> tuple[float, int]:
            first = b.airgap(store, "load", "-i", str(archive))
            reloads = sorted(b.airgap(store, "load", "-i", str(archive)) for _ in range(QUICK_TIMES))
            again.append((reloads[QUICK_TIMES // 2][0] / first[0], reloads[QUICK_TIMES // 2]))
            return first

        load, cp_t, ratio = b.pair(first_load, cp, b.fresh("store"), cp_clean)
        b.row("cp + sync of the docker-save archive", *cp_t, asize)
        b.row("load of the docker-save archive (empty store)", *load, asize, "cp + sync", ratio, "<= 1.5x")
        b.row("load again (every image present)", sorted(a[1][0] for a in again)[n // 2], max(a[1][1] for a in again),
              asize, "the first load before it", sorted(a[0] for a in again)[n // 2], "<= 0.05x")
        # rows of milliseconds, run in turn so that they see the same machine, and more often
        quick = {"start-up": lambda: tool(AIRGAP, "load", "--help"),
                 # the floor under both: the interpreter and the standard modules any load imports
                 "floor": lambda: tool(sys.executable, "-c", "import argparse, hashlib, json, pathlib")}
        if BINARY.exists():  # what the disconnected host runs: it unpacks itself at every start
            quick["binary reload"] = lambda: tool(str(BINARY), "--store", str(store), "--progress", "none",
                                                  "load", "-i", str(archive))
            quick["binary start-up"] = lambda: tool(str(BINARY), "load", "--help")
        q = interleaved(quick, QUICK_TIMES * n)
        for key, name in (("start-up", "start-up alone (airgap load --help)"),
                          ("floor", "python + the stdlib modules a load needs"),
                          ("binary reload", "load again, the one-file binary (dist/airgap)"),
                          ("binary start-up", "start-up alone, the one-file binary")):
            if key in q:
                b.row(name, *q[key], asize, "the first load", q[key][0] / load[0], "")
        reread = (bytes_read([AIRGAP, "--store", str(store), "--progress", "none", "load", "-i", str(archive)]),
                  bytes_read([AIRGAP, "load", "--help"]))
        if shutil.which("skopeo"):
            def skopeo() -> tuple[float, int]:
                total, rss = 0.0, 0
                for name in names:
                    t0, r = tool("skopeo", "copy", "-q", f"docker-archive:{archive}:{name}",
                                 f"oci:{work / 'sk'}:{name}")
                    total, rss = total + t0, max(rss, r)
                return total, rss
            t = median(skopeo, n, b.fresh("sk"))
            drop(work / "sk")
            b.row("skopeo copy docker-archive: -> oci: (3 images)", *t, asize)
            b.row("airgap load of the same archive (row 2)", *load, asize, "skopeo copy", load[0] / t[0], "keep ~0.5x")

        # save, and loads of the bundle
        bundle = work / "bundle.tar"
        b.airgap(store, "save", "-o", str(bundle), *names)
        bsize = bundle.stat().st_size
        cp, cp_clean = b.cp_sync(bundle)
        out = work / "saved.tar"

        def saved() -> tuple[float, int]:
            return b.airgap(store, "save", "-o", str(out), *names)

        def cached(keep: bool, then: Callable[[], None]) -> Callable[[], None]:
            def setup() -> None:
                then()
                page_cache(store / "blobs", keep)
                page_cache(bundle, keep)
            return setup
        save, cp_t, ratio = b.pair(saved, cp, cached(True, lambda: out.unlink(missing_ok=True)),
                                   cached(True, cp_clean))
        b.row("cp + sync of the bundle", *cp_t, bsize)
        b.row("save into a bundle (every blob re-hashed)", *save, bsize, "cp + sync", ratio, "<= 1.5x")
        plain_save = save[0]
        save, cp_t, ratio = b.pair(saved, cp, cached(False, lambda: out.unlink(missing_ok=True)),
                                   cached(False, cp_clean))
        out.unlink(missing_ok=True)
        b.row("cp + sync, the bundle read from the disk", *cp_t, bsize)
        b.row("save, the store read from the disk", *save, bsize, "cp + sync from the disk", ratio, "")

        def from_file() -> tuple[float, int]:
            return b.airgap(work / "s2", "load", "-i", str(bundle))

        def piped() -> tuple[float, int]:
            with open(bundle, "rb") as f:
                cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
                assert cat.stdout is not None
                r = b.airgap(work / "s2", "load", stdin=cat.stdout.fileno())
                cat.stdout.close()
                cat.wait()
            return r
        pipe, file_load, ratio = b.pair(piped, from_file, b.fresh("s2"), b.fresh("s2"))
        b.row("load of the bundle from a file", *file_load, bsize)
        b.row("load of the bundle from a pipe (cat |)", *pipe, bsize, "the load from a file", ratio, "<= 1.15x")
        parts = work / "parts" / "bundle.tar"
        parts.parent.mkdir()
        b.airgap(store, "save", "--split", "256M", "-o", str(parts), *names)
        split, _, ratio = b.pair(lambda: b.airgap(work / "s2", "load", "-i", f"{parts}.001"), from_file,
                                 b.fresh("s2"), b.fresh("s2"))
        b.row("load of the bundle from 256 MiB split volumes", *split, bsize, "the load from a file", ratio,
              "<= 1.15x")
        drop(work / "parts")
        drop(work / "s2")
        verify, hashlib_t, ratio = b.pair(lambda: b.airgap(store, "verify", "--verify", "fast", str(bundle)),
                                          lambda: tool(sys.executable, "-c", HASH_FILE, str(bundle)))
        b.row("hashlib sha256 over the bundle", *hashlib_t, bsize)
        b.row("verify --verify fast", *verify, bsize, "hashlib alone", ratio, "keep ~1.15x")

        # compressed bundles
        gz = work / "bundle.tar.gz"
        gzip_t = median(lambda: tool("sh", "-c", f"gzip -1 -c '{bundle}' > '{gz}'"), n)
        gsize = gz.stat().st_size
        gz.unlink()
        b.row("gzip -1 of the bundle", *gzip_t, bsize)
        sizes = {m: compressed_rows(b, store, names, m, bsize, gzip_t[0], plain_save) for m in ("gzip", "zstd")}

        # delivery and Docker
        registry = start_registry(work)
        if registry is not None:
            host = registry[1]
            env = {**os.environ, "AIRGAP_INSECURE_REGISTRIES": host}
            page_cache(store / "blobs", True)  # as skopeo's input below: just written, in memory
            push = tool(AIRGAP, "--store", str(store), "--progress", "none", "push", "--all", f"{host}/ag", env=env)
            if shutil.which("skopeo"):
                def skopeo_push() -> tuple[float, int]:
                    total, rss = 0.0, 0
                    for name in names:
                        t0, r = tool("skopeo", "copy", "-q", "--dest-tls-verify=false",
                                     f"oci:{store}:docker.io/{name}", f"docker://{host}/sk/{name}")
                        total, rss = total + t0, max(rss, r)
                    return total, rss
                sk = skopeo_push()
                b.row("skopeo copy oci: -> docker:// (3 images)", *sk, bsize)
                b.row("push --all into the same registry", *push, bsize, "skopeo copy", push[0] / sk[0], "")
            else:
                b.row("push --all into a local registry", *push, bsize)
        if docker is not None:
            client = docker[1].split()
            subprocess.run([*client, "rmi", *names], check=True, stdout=subprocess.DEVNULL)
            t = tool(*client, "load", "-q", "-i", str(bundle))
            b.row("docker load -i bundle (one run; RSS: client)", *t, bsize, "airgap load", t[0] / file_load[0], "")
    finally:
        if registry is not None:
            registry[0].terminate()
            registry[0].wait(timeout=30)
        if docker:
            docker[0].send_signal(signal.SIGTERM)
            docker[0].wait(timeout=60)
        drop(work)
    print(f"{source} archive {asize / 1e6:.0f} MB, bundle {bsize / 1e6:.0f} MB (3 images, base layer shared); "
          f"compressed: gzip -1 {gsize / 1e6:.0f} MB, --compress gzip {sizes['gzip'] / 1e6:.0f} MB "
          f"({sizes['gzip'] / gsize:.2f}x), zstd {sizes['zstd'] / 1e6:.0f} MB ({sizes['zstd'] / gsize:.2f}x); "
          f"median of {n} (a reload: of {QUICK_TIMES} after each first load; start-up rows: of {QUICK_TIMES * n}, in turn); "
          f"python {sys.version.split()[0]}; {os.cpu_count()} cores")
    b.print()
    print(f"\nread() bytes of one run: load again {reread[0] / 1e6:.2f} MB, start-up alone (its modules) "
          f"{reread[1] / 1e6:.2f} MB, of an archive of {asize / 1e6:.0f} MB that a first load reads whole")
    print(f"\n`airgap images` on a store of {args.images} images: {many:.3f} s (median of 7)")
    return 0


HASH_FILE = """
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb", buffering=0) as f:
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    while n := f.readinto(buf):
        h.update(view[:n])
print(h.hexdigest())
"""


if __name__ == "__main__":
    sys.exit(main())
