"""load / save / import through the CLI, on generated images: round trips and bad input."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from airgap.digest import sha256_digest
from airgap.errors import AirgapError

from ..conftest import Airgap, flip, rewrite_tar, snapshot, write_tree


def _bundle(airgap: Airgap, tmp_path: Path, *names: str) -> Path:
    out = tmp_path / "bundle.tar"
    airgap("save", "-o", str(out), *names)
    return out


def _members(path: Path) -> list[str]:
    with tarfile.open(path) as tf:
        return tf.getnames()


def test_bundle_layout_and_shared_layer_once(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    names = _members(bundle)
    assert names[:2] == ["airgap", "airgap/bundle.json"]
    assert names == names[:2] + sorted(names[2:])
    blobs = [n for n in names if n.startswith("blobs/sha256/") and len(n) > 13]
    assert len(blobs) == len(set(blobs))
    base_layer = json.loads(airgap("inspect", "example/base:1").out)[0]["RootFS"]["Layers"][0]
    assert names.count("blobs/sha256/" + base_layer[7:]) == 1
    # 3 manifests + 3 configs + 1 shared base layer + 3 app layers
    assert len(blobs) == 10
    with tarfile.open(bundle) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
        for m in tf.getmembers():
            assert (m.mtime, m.uid, m.gid) == (0, 0, 0)
    assert [e["RepoTags"] for e in manifest] == [[f"docker.io/{n}"] for n in three_images]  # in full: podman
    assert [e["annotations"]["io.containerd.image.name"] for e in index["manifests"]] == \
        [f"docker.io/{n}" for n in three_images]


def test_round_trip_keeps_ids_and_dedupes(airgap: Airgap, make_airgap, three_images: list[str], tmp_path: Path) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    other = make_airgap("other")
    res = other("load", "-i", str(bundle))
    assert res.out.splitlines() == [f"Loaded image: {n}" for n in three_images]
    for n in three_images:
        assert other.image_id(n) == airgap.image_id(n)
    blobs = list((other.store / "blobs" / "sha256").iterdir())
    assert len(blobs) == 10
    before = snapshot(other.store)
    again = other("load", "-i", str(bundle))
    assert again.out == res.out
    assert snapshot(other.store) == before


def test_same_images_same_bytes(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    airgap("save", "-o", str(a), *three_images)
    airgap("save", "-o", str(b), *three_images)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_save_to_stdout_and_load_from_pipe(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "airgap", "--store", str(airgap.store)]
    saved = subprocess.run([*cmd, "save", three_images[0]], capture_output=True, check=True)
    assert saved.stdout[:512].startswith(b"airgap/")
    target = tmp_path / "piped"
    # a real pipe, not a file: the loader must spool it
    load = subprocess.Popen([sys.executable, "-m", "airgap", "--store", str(target), "load"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = load.communicate(saved.stdout)
    assert load.returncode == 0, err
    assert out.decode().splitlines() == [f"Loaded image: {three_images[0]}"]
    assert b"Resumed" not in err  # what this load streamed in is not "reused"
    assert list((target / ".tmp").iterdir()) == []


def test_save_by_repository_takes_all_tags_and_by_id_no_name(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    airgap("tag", "example/app-a:1", "example/app-a:2")
    out = tmp_path / "repo.tar"
    airgap("save", "-o", str(out), "example/app-a")
    with tarfile.open(out) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["docker.io/example/app-a:1", "docker.io/example/app-a:2"]
    image_id = airgap.image_id("example/app-b:1")
    airgap("save", "-o", str(out), image_id[7:19])
    with tarfile.open(out) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] is None
    other = Airgap(tmp_path / "o", airgap.capsys)
    assert other("load", "-i", str(out)).out.strip() == f"Loaded image ID: {image_id}"
    assert other("images", "-q").out.split() == [image_id[7:19]]


def test_unknown_image_and_bad_reference(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    res = airgap("save", "-o", str(tmp_path / "x.tar"), "nope:1", ok=False)
    assert res.code == 1 and "No such image: nope:1" in res.err
    assert not (tmp_path / "x.tar").exists()
    assert not list(tmp_path.glob(".x.tar*"))
    res = airgap("tag", "example/app-a:1", "Bad:Name", ok=False)
    assert res.code == 2 and "must be lowercase" in res.err


def test_import_tarball_gzip_and_base(airgap: Airgap, tmp_path: Path) -> None:
    src = tmp_path / "root.tar.gz"
    with tarfile.open(src, "w:gz") as tf:
        data = b"hello\n"
        ti = tarfile.TarInfo("hello.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    image_id = airgap("import", str(src), "hello").out.strip()
    info = json.loads(airgap("inspect", "hello").out)[0]
    assert info["Id"] == image_id and info["RepoTags"] == ["hello:latest"]
    layer = info["RootFS"]["Layers"][0]
    blob = (airgap.store / "blobs" / "sha256" / layer[7:]).read_bytes()
    assert tarfile.open(fileobj=io.BytesIO(blob)).getnames() == ["hello.txt"]
    bad = tmp_path / "not.tar"
    bad.write_bytes(b"this is not a tar archive" * 40)
    before = snapshot(airgap.store)
    res = airgap("import", str(bad), "bad", ok=False)
    assert res.code == 3 and "not.tar" in res.err
    assert snapshot(airgap.store) == before


def test_import_from_stdin_a_fifo_and_xz(airgap: Airgap, tmp_path: Path) -> None:
    """``import - REF`` reads stdin (``docker import -``); a FIFO is read as a pipe; any
    compression load takes, import takes: one layer, the same diff_id every way."""
    import lzma
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("hello.txt")
        ti.size = 6
        tf.addfile(ti, io.BytesIO(b"hello\n"))
    plain = tmp_path / "root.tar"
    plain.write_bytes(buf.getvalue())
    # as `xz -T2` writes, and `xz -d` reads: two streams, zero padding between and after
    half = len(buf.getvalue()) // 2
    (tmp_path / "root.tar.xz").write_bytes(lzma.compress(buf.getvalue()[:half]) + bytes(8)
                                           + lzma.compress(buf.getvalue()[half:]) + bytes(4))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "airgap", "--store", str(airgap.store), "--progress", "none", "import"]
    with open(plain, "rb") as f:
        piped = subprocess.run([*cmd, "-", "from/stdin:1"], stdin=f, capture_output=True)
    cat = subprocess.Popen(f"cat {plain} > {fifo}", shell=True)
    fifoed = subprocess.run([*cmd, str(fifo), "from/fifo:1"], capture_output=True, timeout=60)
    cat.wait(timeout=30)
    assert piped.returncode == 0 and fifoed.returncode == 0, (piped.stderr, fifoed.stderr)
    airgap("import", str(tmp_path / "root.tar.xz"), "from/xz:1")
    airgap("import", str(plain), "from/file:1")
    layers = {n: json.loads(airgap("inspect", n).out)[0]["RootFS"]["Layers"]
              for n in ("from/stdin:1", "from/fifo:1", "from/xz:1", "from/file:1")}
    assert all(v == layers["from/file:1"] for v in layers.values()), layers
    garbage = subprocess.run([*cmd, "-", "from/garbage:1"], input=os.urandom(2048), capture_output=True)
    assert garbage.returncode == 3 and garbage.stderr.startswith(b"airgap: error: stdin: not a tar archive"), \
        garbage.stderr


def test_import_reads_a_tar_to_its_end_and_no_further(airgap: Airgap, tmp_path: Path) -> None:
    """The layer is the whole tar and the zeros that fill its last record; data after its
    end, or zeros without end (``import /dev/zero``, a pipe of them), are refused, and each
    header is checked on the way (a member cut short is named)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo("n" * 300)  # a GNU long name
        ti.size = 5000
        tf.addfile(ti, io.BytesIO(os.urandom(5000)))
    whole = buf.getvalue()
    assert len(whole) % 10240 == 0  # tarfile, as GNU tar, fills its last record
    (tmp_path / "ok.tar").write_bytes(whole)
    airgap("import", str(tmp_path / "ok.tar"), "ok/tar:1")
    diff_id = json.loads(airgap("inspect", "ok/tar:1").out)[0]["RootFS"]["Layers"][0]
    assert diff_id == sha256_digest(whole)
    from airgap.archive import tar
    with pytest.MonkeyPatch.context() as mp:  # a layer is not an image archive: no cap on its headers
        mp.setattr(tar, "MAX_MEMBERS", 2)
        many = io.BytesIO()
        with tarfile.open(fileobj=many, mode="w") as tf:
            for i in range(5):
                tf.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
        (tmp_path / "many.tar").write_bytes(many.getvalue())
        airgap("import", str(tmp_path / "many.tar"), "ok/many:1")
    before = snapshot(airgap.store)
    cases = {"after.tar": (whole + b"more", "data after the end of the tar archive"),
             "zeros.tar": (whole + bytes(3 << 20), "more than 1 MiB of zeros after the end of the tar archive"),
             "cut.tar": (whole[:3000], "truncated: the stream ends inside a member")}
    for name, (data, says) in cases.items():
        (tmp_path / name).write_bytes(data)
        res = airgap("import", str(tmp_path / name), "bad/tar:1", ok=False)
        assert res.code == 3 and res.err == f"airgap: error: {tmp_path / name}: {says}\n", res.err
    proc = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "import", "/dev/zero",
                           "bad/zero:1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "/dev/zero: more than 1 MiB of zeros" in proc.stderr, proc.stderr
    assert snapshot(airgap.store) == before


# -- bad input: each refused with exit 3, naming member and image, store unchanged -------

def _refused(airgap: Airgap, archive: Path, *needles: str) -> None:
    airgap("images")  # the store exists (it is made on first use), so "unchanged" is meaningful
    before = snapshot(airgap.store)
    res = airgap("load", "-i", str(archive), ok=False)
    assert res.code == 3, res.err
    assert "Traceback" not in res.err
    for needle in needles:
        assert needle in res.err, res.err
    assert snapshot(airgap.store) == before
    assert list((airgap.store / ".tmp").iterdir()) == []


@pytest.fixture
def loaded_base(make_airgap, three_images: list[str], airgap: Airgap, tmp_path: Path) -> tuple[Airgap, Path, dict[str, str]]:
    """A bundle of app-a, and a target store that already holds something else."""
    bundle = _bundle(airgap, tmp_path, "example/app-a:1")
    target = make_airgap("target")
    other = tmp_path / "other.tar"
    airgap("save", "-o", str(other), "example/base:1")
    target("load", "-i", str(other))
    raw = json.loads(airgap("inspect", "example/app-a:1").out)[0]
    digests = {"manifest": raw["Descriptor"]["digest"], "config": raw["Id"], "layer": raw["RootFS"]["Layers"][1]}
    return target, bundle, digests


@pytest.mark.parametrize("kind", ["layer", "config", "manifest"])
def test_flipped_byte(loaded_base, tmp_path: Path, kind: str) -> None:
    target, bundle, digests = loaded_base
    member = "blobs/sha256/" + digests[kind][7:]
    bad = tmp_path / "bad.tar"
    rewrite_tar(bundle, bad, lambda m, d: [(m, flip(d or b"") if m.name == member else d)])
    _refused(target, bad, member, "example/app-a:1")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated(loaded_base, tmp_path: Path, fraction: float) -> None:
    target, bundle, _ = loaded_base
    data = bundle.read_bytes()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(data[: int(len(data) * fraction)])
    _refused(target, bad, "bad.tar", "truncated")


def _with_extra(bundle: Path, dst: Path, info: tarfile.TarInfo, data: bytes | None = None) -> None:
    def edit(m, d):
        out = [(m, d)]
        if m.name == "airgap/bundle.json":
            out.append((info, data))
        return out
    rewrite_tar(bundle, dst, edit)


@pytest.mark.parametrize("name,why", [("../evil", "outside the archive"), ("/etc/evil", "absolute path"),
                                      ("blobs/../../evil", "outside the archive")])
def test_traversal_names(loaded_base, tmp_path: Path, name: str, why: str) -> None:
    target, bundle, _ = loaded_base
    bad = tmp_path / "bad.tar"
    _with_extra(bundle, bad, tarfile.TarInfo(name), b"x")
    _refused(target, bad, name, why)


def test_link_outside_and_device(loaded_base, tmp_path: Path) -> None:
    target, bundle, _ = loaded_base
    link = tarfile.TarInfo("blobs/escape")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    bad = tmp_path / "bad.tar"
    _with_extra(bundle, bad, link)
    _refused(target, bad, "blobs/escape", "outside the archive")
    dev = tarfile.TarInfo("blobs/dev")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    _with_extra(bundle, bad, dev)
    _refused(target, bad, "blobs/dev", "character device")


def test_duplicate_member(loaded_base, tmp_path: Path) -> None:
    target, bundle, digests = loaded_base
    member = "blobs/sha256/" + digests["layer"][7:]
    bad = tmp_path / "bad.tar"
    rewrite_tar(bundle, bad, lambda m, d: [(m, d), (m, d)] if m.name == member else [(m, d)])
    _refused(target, bad, "duplicate member", member)


def test_manifest_json_names_missing_file(airgap: Airgap, three_images: list[str], make_airgap, tmp_path: Path) -> None:
    """A docker-save archive (no OCI index) whose manifest.json names an absent layer."""
    bundle = _bundle(airgap, tmp_path, "example/app-a:1")
    bad = tmp_path / "bad.tar"

    def edit(m, d):
        if m.name in ("index.json", "oci-layout") or m.name.startswith("airgap/"):
            return []
        if m.name == "manifest.json":
            doc = json.loads(d)
            doc[0]["Layers"][-1] = "deadbeef/layer.tar"
            return [(m, json.dumps(doc).encode())]
        return [(m, d)]
    rewrite_tar(bundle, bad, edit)
    _refused(make_airgap("t"), bad, "deadbeef/layer.tar", "example/app-a:1")


def test_manifest_json_names_missing_config(airgap: Airgap, three_images: list[str], make_airgap,
                                            tmp_path: Path) -> None:
    bundle = _bundle(airgap, tmp_path, "example/app-a:1")
    bad = tmp_path / "bad.tar"

    def edit(m, d):
        if m.name in ("index.json", "oci-layout") or m.name.startswith("airgap/"):
            return []
        if m.name == "manifest.json":
            doc = json.loads(d)
            doc[0]["Config"] = "cafe.json"
            return [(m, json.dumps(doc).encode())]
        return [(m, d)]
    rewrite_tar(bundle, bad, edit)
    _refused(make_airgap("t"), bad, "cafe.json", "does not have")


def test_member_running_past_the_end(airgap: Airgap, three_images: list[str], make_airgap, tmp_path: Path) -> None:
    """A member whose header promises more bytes than the file has: named at once."""
    from airgap.archive.tar import TarIndex
    bundle = _bundle(airgap, tmp_path, *three_images)
    with open(bundle, "rb") as f:
        biggest = max(TarIndex(f, "b").files.values(), key=lambda m: m.size)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bundle.read_bytes()[: biggest.offset + biggest.size // 2])
    _refused(make_airgap("t"), bad, f"truncated: member '{biggest.name}'", "bytes at offset")


def test_links_inside_archive_are_followed(airgap: Airgap, three_images: list[str], make_airgap, tmp_path: Path) -> None:
    """Legacy docker save writes symlinks between layer dirs; those are legitimate."""
    bundle = _bundle(airgap, tmp_path, "example/app-a:1")
    info = json.loads(airgap("inspect", "example/app-a:1").out)[0]
    layer = info["RootFS"]["Layers"][1][7:]
    linked = tmp_path / "linked.tar"

    def edit(m, d):
        if m.name in ("index.json", "oci-layout") or m.name.startswith("airgap/"):
            return []
        if m.name == "manifest.json":
            doc = json.loads(d)
            doc[0]["Layers"][-1] = "legacy/layer.tar"
            return [(m, json.dumps(doc).encode())]
        if m.name == "repositories":
            link = tarfile.TarInfo("legacy/layer.tar")
            link.type, link.linkname = tarfile.SYMTYPE, f"../blobs/sha256/{layer}"
            return [(m, d), (link, None)]
        return [(m, d)]
    rewrite_tar(bundle, linked, edit)
    other = make_airgap("t")
    assert other("load", "-i", str(linked)).out.strip() == "Loaded image: example/app-a:1"
    assert other.image_id("example/app-a:1") == info["Id"]


def test_not_an_archive(airgap: Airgap, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    res = airgap("load", "-i", str(junk), ok=False)
    assert res.code == 3 and "junk.bin" in res.err
    res = airgap("load", "-i", str(tmp_path / "missing.tar"), ok=False)
    assert res.code == 1 and "missing.tar" in res.err


def test_progress_plain_goes_to_stderr(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from airgap.cli.main import main
    bundle = _bundle(airgap, tmp_path, *three_images)
    capsys.readouterr()
    assert main(["--store", str(tmp_path / "p"), "--progress", "plain", "load", "-i", str(bundle)]) == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines() == [f"Loaded image: {n}" for n in three_images]
    assert "Loading: 4 blobs" in cap.err and ": done" in cap.err
    assert main(["--store", str(tmp_path / "q"), "--progress", "plain", "load", "-q", "-i", str(bundle)]) == 0
    assert capsys.readouterr().err == ""


def test_progress_bars(airgap: Airgap, three_images: list[str], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    """The tqdm bars (what a terminal gets) account for every byte copied."""
    from airgap.cli.progress import BarProgress
    from airgap.copy import copy
    from airgap.store import Store
    from airgap.transports.archive import ArchiveSource
    from airgap.transports.store import StoreSink
    bundle = _bundle(airgap, tmp_path, *three_images)
    progress = BarProgress("Loading")
    with open(bundle, "rb") as f, Store(tmp_path / "bars").begin() as txn:
        result = copy(ArchiveSource(f, str(bundle)), StoreSink(txn), progress=progress)
    layers = sum(d.size for k, d in result.plan.blobs.items() if k not in result.plan.documents)
    assert progress.total.n == progress.total.total == layers > 0
    assert "Loading 4 blobs" in capsys.readouterr().err


@pytest.mark.parametrize("via", ["pipe", "file"])
def test_interrupted_load_leaves_store_as_it_was(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                via: str) -> None:
    """SIGINT in the middle of a load (spooling a pipe, or staging blobs from a file):
    exit 130, no new blob, no new name, no temp file."""
    import signal
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(160 << 20)})
    airgap("import", str(big), "example/big:1", "--base", "example/base:1")
    bundle = _bundle(airgap, tmp_path, "example/big:1", *three_images)
    target = Airgap(tmp_path / "target", airgap.capsys)
    seed = tmp_path / "seed.tar"
    airgap("save", "-o", str(seed), "example/base:1")
    target("load", "-i", str(seed))
    before = snapshot(target.store)
    cmd = [sys.executable, "-X", "faulthandler", "-m", "airgap", "--store", str(target.store), "--progress", "plain",
           "load"]
    # as a terminal's Ctrl-C finds it: a shell starts background jobs with SIGINT ignored,
    # and Python keeps an ignored SIGINT ignored (the test then ran under `cmd &`)
    def default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    feeder = None
    if via == "pipe":  # delivered slowly, so the load is surely under way when interrupted
        feeder = subprocess.Popen([sys.executable, "-c",
                                   "import sys, time\n"
                                   "f = open(sys.argv[1], 'rb')\n"
                                   "while chunk := f.read(1 << 20):\n"
                                   "    sys.stdout.buffer.write(chunk); sys.stdout.buffer.flush(); time.sleep(0.01)\n",
                                   str(bundle)], stdout=subprocess.PIPE)
        loader = subprocess.Popen(cmd, stdin=feeder.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  preexec_fn=default_sigint)
        assert feeder.stdout is not None
        feeder.stdout.close()
        time.sleep(0.5)
    else:  # wait until blobs are being staged
        loader = subprocess.Popen([*cmd, "-i", str(bundle)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  preexec_fn=default_sigint)
        assert loader.stderr is not None
        while not loader.stderr.readline().startswith(b"Loading:"):
            pass
        time.sleep(0.05)
    loader.send_signal(signal.SIGINT)
    try:
        out, err = loader.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # seen once in CI: say where every thread of it was
        loader.send_signal(signal.SIGABRT)  # faulthandler prints each thread's stack
        out, err = loader.communicate(timeout=30)
        raise AssertionError("the loader was still running 60 s after SIGINT; its threads:\n"
                             + err.decode(errors="replace")[-8000:]) from None
    finally:
        if feeder is not None:
            feeder.kill()
            feeder.wait()
    assert loader.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    assert snapshot(target.store) == before
    assert list((target.store / ".tmp").iterdir()) == []


def test_split_bundle(airgap: Airgap, three_images: list[str], make_airgap, tmp_path: Path) -> None:
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(3 << 20)})
    airgap("import", str(big), "example/big:1", "--base", "example/base:1")
    whole = _bundle(airgap, tmp_path, "example/big:1", *three_images)
    out = tmp_path / "usb" / "b.tar"
    out.parent.mkdir()
    airgap("save", "--split", "1M", "-o", str(out), "example/big:1", *three_images)
    parts = sorted(p.name for p in out.parent.iterdir())
    assert parts == ["b.tar.001", "b.tar.002", "b.tar.003", "b.tar.004", "b.tar.sha256"]
    joined = b"".join((out.parent / p).read_bytes() for p in parts[:-1])
    assert joined == whole.read_bytes()  # plain byte ranges of the same tar
    subprocess.run(["sha256sum", "-c", "b.tar.sha256"], cwd=out.parent, check=True, capture_output=True)
    for arg in (f"{out}.001", str(out)):
        site = make_airgap(f"site{len(arg)}")
        assert site("load", "-i", arg).out.count("Loaded image") == 4
    # a damaged part and a missing part are named
    site = make_airgap("broken")
    site("images")
    before = snapshot(site.store)
    data = bytearray((out.parent / "b.tar.003").read_bytes())
    data[5000] ^= 1
    (out.parent / "b.tar.003").write_bytes(bytes(data))
    res = site("load", "-i", f"{out}.001", ok=False)
    assert res.code == 3 and "part b.tar.003 is damaged" in res.err
    (out.parent / "b.tar.003").unlink()
    res = site("load", "-i", str(out), ok=False)
    assert res.code == 3 and "part b.tar.003 is missing" in res.err
    assert snapshot(site.store) == before
    assert airgap("save", "--split", "1M", "-o", "-", "example/big:1", ok=False).code == 2
    assert airgap("save", "--split", "lots", "-o", str(out), "example/big:1", ok=False).code == 2


def test_a_sha256_list_in_binary_mode_or_with_crlf_is_read(airgap: Airgap, three_images: list[str], make_airgap,
                                                           tmp_path: Path) -> None:
    """FILE.sha256 remade on the way (`sha256sum -b`, as Git Bash on a Windows kiosk writes
    it: `HEX *NAME`, perhaps with CRLF) is still sha256sum format: read, and still checked."""
    out = tmp_path / "usb" / "b.tar"
    out.parent.mkdir()
    airgap("save", "--split", "1M", "-o", str(out), *three_images)
    parts = sorted(p.name for p in out.parent.glob("b.tar.0*"))
    listing = subprocess.run(["sha256sum", "-b", *parts], cwd=out.parent, check=True, capture_output=True).stdout
    assert b" *b.tar.001" in listing
    (out.parent / "b.tar.sha256").write_bytes(listing.replace(b"\n", b"\r\n"))
    assert make_airgap("site")("load", "-i", str(out)).out.count("Loaded image") == len(three_images)
    data = bytearray((out.parent / parts[-1]).read_bytes())
    data[-2000] ^= 1
    (out.parent / parts[-1]).write_bytes(bytes(data))
    res = make_airgap("other")("load", "-i", str(out), ok=False)
    assert res.code == 3 and f"part {parts[-1]} is damaged" in res.err, res.err
    (out.parent / "b.tar.sha256").write_text("sha256 of every part, see mail\n")
    res = make_airgap("third")("load", "-i", str(out), ok=False)
    assert res.code == 3 and "line 1 is not a sha256sum line" in res.err, res.err


def test_import_of_a_deep_tree(airgap: Airgap, tmp_path: Path) -> None:
    """A directory 1,200 levels deep ended `import` in RecursionError (tarfile.add recurses):
    the tree is walked with a stack of its own, in tarfile's own order, so the layer is the
    tar `tarfile.add` makes of a tree it can walk (same bytes, same diff_id)."""
    deep = tmp_path / "deep"
    path = deep
    deep.mkdir()
    for _ in range(1200):  # one level at a time (Path.mkdir(parents=True) recurses too)
        path = path / "a"
        path.mkdir()
    (path / "f").write_text("bottom\n")
    try:
        airgap("import", str(deep), "example/deep:1")
    finally:  # pytest's own clean-up (shutil.rmtree) recurses too: take the tree down from the bottom
        (path / "f").unlink()
        while path != tmp_path:
            path.rmdir()
            path = path.parent
    tree = write_tree(tmp_path / "tree", {"x/y/f": "1", "B/g": "2", "a.txt": "3", "x/z": "4"})
    (tree / "lnk").symlink_to("x")
    os.link(tree / "x" / "y" / "f", tree / "hard")
    airgap("import", str(tree), "example/tree:1")
    layer = json.loads(airgap("inspect", "example/tree:1").out)[0]["RootFS"]["Layers"][0]

    def owner(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for entry in sorted(tree.iterdir()):
            tf.add(entry, arcname=entry.name, filter=owner)
    assert layer == sha256_digest(buf.getvalue())


def test_load_without_dash_i_says_how(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """`airgap load b.tar` (as `verify b.tar` is typed) was "unrecognized arguments"; it
    says how to name the archive, exit 2, and reads nothing (not stdin either)."""
    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), three_images[0])
    proc = subprocess.run([sys.executable, "-m", "airgap", "--store", str(tmp_path / "s"), "load", str(bundle)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"airgap load -i {bundle}" in proc.stderr, proc.stderr
    assert not (tmp_path / "s").exists()


def test_a_directory_given_as_the_archive_gets_a_hint(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """`-i /media/usb` names the archives the directory holds; an OCI layout directory (a
    store, `skopeo copy … oci:DIR`) says how to load it, and that way works."""
    usb = tmp_path / "usb"
    usb.mkdir()
    airgap("save", "-o", str(usb / "images.tar"), three_images[0])
    (usb / "notes.txt").write_text("read me")
    res = airgap("load", "-i", str(usb), ok=False)
    assert res.code == 1 and f"is a directory, not an archive; name the archive in it: {usb / 'images.tar'}" \
        in res.err, res.err
    res = airgap("load", "-i", str(airgap.store), ok=False)
    assert res.code == 1 and "it is an OCI layout" in res.err and f"tar -C {airgap.store} -c . | airgap load" \
        in res.err, res.err
    tar = subprocess.run(["tar", "-C", str(airgap.store), "-c", "."], capture_output=True, check=True).stdout
    proc = subprocess.run([sys.executable, "-m", "airgap", "--store", str(tmp_path / "site"), "load"], input=tar,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0 and b"Loaded image: example/app-a:1" in proc.stdout, proc.stderr


def test_one_split_save_at_a_time_in_a_directory(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """Two split saves of one name share the hidden part names (`.FILE.001.tmp`, the
    journal): each would write over the other's parts. The second is told at once."""
    usb = tmp_path / "usb"
    usb.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(usb)!r}, os.O_RDONLY)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        res = airgap("save", "--split", "1M", "-o", str(usb / "b.tar"), three_images[0], ok=False)
        assert res.code == 1 and "another airgap save is writing split parts" in res.err, res.err
        assert list(usb.iterdir()) == []
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    airgap("save", "--split", "1M", "-o", str(usb / "b.tar"), three_images[0])
    assert sorted(p.name for p in usb.iterdir()) == ["b.tar.001", "b.tar.sha256"]


def test_a_part_is_named_by_three_ascii_digits(tmp_path: Path) -> None:
    """`load -i FILE.001` (or FILE) finds the split bundle FILE; FILE.01, FILE.1000 and
    FILE.٠٠١ (Arabic-Indic digits) are files of their own, never parts."""
    from airgap.archive.input import split_base
    for name in ("b.tar.001", "b.tar.01", "b.tar.1000", "b.tar.\u0660\u0660\u0661", "x.001.tar"):
        (tmp_path / name).write_bytes(b"")
    assert split_base(str(tmp_path / "b.tar.001")) == tmp_path / "b.tar"
    assert split_base(str(tmp_path / "b.tar")) == tmp_path / "b.tar"  # FILE.001 exists beside it
    for name in ("b.tar.01", "b.tar.1000", "b.tar.\u0660\u0660\u0661", "x.001.tar", "nothing.001"):
        assert split_base(str(tmp_path / name)) is None, name


def test_a_split_save_never_makes_more_parts_than_can_be_named(airgap: Airgap, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts are FILE.001 … FILE.999: `--split 1M` of a 1.1 GB bundle wrote FILE.1000 …
    FILE.1051, which the loader refused ("more than 999 parts") and `cat FILE.0*` left out.
    Refused before a byte is written, with the size that fits (the limit is made 3 here)."""
    from airgap.archive import split
    monkeypatch.setattr(split, "MAX_PARTS", 3)
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(3 << 20)})
    airgap("import", str(big), "example/big:1")
    out = tmp_path / "usb" / "b.tar"
    out.parent.mkdir()
    res = airgap("save", "--split", "1M", "-o", str(out), "example/big:1", ok=False)
    assert res.code == 2 and "needs 4 parts of 1048576 bytes, more than the 3" in res.err, res.err
    assert "use --split 2M or more" in res.err and list(out.parent.iterdir()) == []
    airgap("save", "--split", "2M", "-o", str(out), "example/big:1")
    assert sorted(p.name for p in out.parent.iterdir()) == ["b.tar.001", "b.tar.002", "b.tar.sha256"]
    # and the writer itself stops at the limit, should an estimate ever fall short
    monkeypatch.setattr(split, "MAX_PARTS", 1)
    writer = split.SplitWriter(tmp_path / "w.tar", 1 << 20)
    writer.write(bytes(1 << 20))
    with pytest.raises(AirgapError, match="more than 1 parts"):
        writer.write(b"x")
    writer.abort()


@pytest.mark.parametrize("limit,says", [("MAX_IMAGES", "images has 3 entries, more than airgap allows (2)"),
                                         ("MAX_ALL_NAMES", "more than 2 image names in one archive"),
                                         ("MAX_BUNDLE_JSON", "bundle.json would take"),
                                         ("MAX_DOCUMENT", "index.json would take")])
def test_save_never_writes_a_bundle_too_large_to_load(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, limit: str, says: str) -> None:
    """A load refuses a bundle.json of more than 10,000 images or 16 MiB (and top files
    over 8 MiB): a save of that many images wrote one anyway, to be refused at the far
    end. The save is refused instead (the limits are made small here)."""
    from airgap import bundle, oci
    monkeypatch.setattr(*{"MAX_IMAGES": (bundle, "MAX_IMAGES", 2), "MAX_ALL_NAMES": (bundle, "MAX_ALL_NAMES", 2),
                          "MAX_BUNDLE_JSON": (bundle, "MAX_BUNDLE_JSON", 2000),
                          "MAX_DOCUMENT": (oci, "MAX_DOCUMENT", 300)}[limit])
    out = tmp_path / "out"
    out.mkdir()
    res = airgap("save", "-o", str(out / "b.tar"), *three_images, ok=False)
    assert res.code == 2 and says in res.err and "several bundles" in res.err, res.err
    assert list(out.iterdir()) == []


def test_a_save_of_too_many_documents_is_a_usage_error(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifests and configs one plan holds are capped together (32 MiB): from an
    archive, more is damage (exit 3); for the store's own images it is a save too large
    for one bundle (exit 2), not an integrity failure. (The cap is made small here.)"""
    from airgap import copy
    monkeypatch.setattr(copy, "MAX_PLAN_DOCUMENTS", 1500)
    res = airgap("save", "-o", str(tmp_path / "b.tar"), *three_images, ok=False)
    assert res.code == 2 and "together" in res.err and "several bundles" in res.err, res.err
    assert not (tmp_path / "b.tar").exists()


def test_split_bundle_is_read_once(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each part is checked against FILE.sha256 in the same read that loads its blobs
    (no first pass), and a reload seeks past the blobs the store has."""
    from airgap.archive import split
    from airgap.cli.main import main
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(3 << 20)})
    airgap("import", str(big), "example/big:1", "--base", "example/base:1")
    out = tmp_path / "usb" / "b.tar"
    out.parent.mkdir()
    airgap("save", "--split", "1M", "-o", str(out), "example/big:1", *three_images)
    total = sum(p.stat().st_size for p in out.parent.glob("b.tar.0*"))
    read: dict[str, int] = {}
    opened = split._open_part

    class Counting(io.FileIO):
        def readinto(self, b):
            n = super().readinto(b)
            read[Path(self.name).name] = read.get(Path(self.name).name, 0) + (n or 0)
            return n

    def counting(path: Path, base: Path, i: int, n: int):
        opened(path, base, i, n).close()  # the same checks
        return Counting(str(path), "rb")

    monkeypatch.setattr(split, "_open_part", counting)
    store = tmp_path / "site"
    assert main(["--store", str(store), "--progress", "none", "load", "-q", "-i", f"{out}.001"]) == 0
    assert "Resumed" not in capsys.readouterr().err  # nothing was interrupted
    # every byte once (and the first 32 again: the compression sniff)
    assert total <= sum(v for k, v in read.items() if k != "b.tar.sha256") <= total + 32
    read.clear()
    assert main(["--store", str(store), "--progress", "none", "load", "-q", "-i", f"{out}.001"]) == 0
    assert sum(v for k, v in read.items() if k != "b.tar.sha256") < total // 2  # the big layer is seeked past (reads are of whole buffers)


@pytest.mark.parametrize("which", ["first", "last"])
def test_damaged_part_is_named_whichever_blob_it_hits(airgap: Airgap, make_airgap, tmp_path: Path,
                                                      which: str) -> None:
    """The part is named when the damage is early in a blob spread over several parts:
    the first blob too (its header is read while looking for a signature), and the last."""
    for attempt in range(40):  # a big layer whose digest sorts first (or last) among the blobs
        big = write_tree(tmp_path / f"big{attempt}", {"big.bin": os.urandom(3 << 20)})
        airgap("import", str(big), f"example/big:{attempt}")
        info = json.loads(airgap("inspect", f"example/big:{attempt}").out)[0]
        digests = sorted([info["RootFS"]["Layers"][0], info["Id"], info["Descriptor"]["digest"]])
        if digests[0 if which == "first" else -1] == info["RootFS"]["Layers"][0]:
            break
    else:
        pytest.fail("no layer digest sorted where wanted in 40 tries")
    out = tmp_path / "usb" / "b.tar"
    out.parent.mkdir()
    airgap("save", "--split", "1M", "-o", str(out), f"example/big:{attempt}")
    parts = sorted(out.parent.glob("b.tar.0*"))
    joined = tmp_path / "joined.tar"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(joined) as tf:
        layer = tf.getmember("blobs/sha256/" + info["RootFS"]["Layers"][0][7:])
    at = layer.offset_data + 100  # early: several parts before the blob ends
    part = parts[at // (1 << 20)]
    assert (layer.offset_data + layer.size) // (1 << 20) > at // (1 << 20)
    data = bytearray(part.read_bytes())
    data[at % (1 << 20)] ^= 1
    part.write_bytes(bytes(data))
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    res = site("load", "-i", f"{out}.001", ok=False)
    assert res.code == 3 and f"part {part.name} is damaged" in res.err, res.err
    assert snapshot(site.store) == before


def test_split_foreign_archive_part_checked_as_read(airgap: Airgap, tmp_path: Path) -> None:
    """An archive that is not a bundle (its bytes are not all pinned by a bundle.json),
    cut into parts by hand, is spooled in one read and each part checked as it ends."""
    import hashlib as _h
    from ..builders import image, index_entry, layer_tar, oci_archive
    img = image(layers=[layer_tar({"a.bin": os.urandom(3 << 20)})])
    whole = oci_archive(tmp_path / "oci.tar", [img], [index_entry(img, "docker.io/example/foreign:1")]).read_bytes()
    usb = tmp_path / "usb"
    usb.mkdir()
    names = []
    for i in range(0, len(whole), 1 << 20):
        name = f"f.tar.{i // (1 << 20) + 1:03d}"
        (usb / name).write_bytes(whole[i:i + (1 << 20)])
        names.append(name)
    (usb / "f.tar.sha256").write_text("".join(f"{_h.sha256((usb / n).read_bytes()).hexdigest()}  {n}\n"
                                             for n in names))
    data = bytearray((usb / names[1]).read_bytes())
    data[1000] ^= 1
    (usb / names[1]).write_bytes(bytes(data))
    airgap("images")
    before = snapshot(airgap.store)
    res = airgap("load", "-i", str(usb / names[0]), ok=False)
    assert res.code == 3 and f"part {names[1]} is damaged" in res.err, res.err
    assert snapshot(airgap.store) == before


def test_a_part_that_shrinks_while_read_is_named(tmp_path: Path) -> None:
    from airgap.archive.split import open_split
    from airgap.errors import FormatError
    for n in (1, 2):
        (tmp_path / f"x.tar.00{n}").write_bytes(b"\0" * 4096)
    joined, _ = open_split(tmp_path / "x.tar")
    with joined:
        assert len(joined.read(4096)) == 4096
        os.truncate(tmp_path / "x.tar.002", 100)
        with pytest.raises(FormatError, match="part #2 shrank"):
            joined.readall()


def test_a_reload_does_not_rewrite_the_index(airgap: Airgap, three_images: list[str], make_airgap,
                                             tmp_path: Path) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site("load", "-i", str(bundle))
    index = site.store / "index.json"
    before = (index.stat().st_ino, index.read_bytes())
    site("load", "-i", str(bundle))
    assert (index.stat().st_ino, index.read_bytes()) == before


def test_a_reload_reads_no_layer(airgap: Airgap, three_images: list[str], make_airgap, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored layer's first bytes are checked against a listing that is new (a manifest
    the store lacks), not read again for the manifests the store has (checked when stored):
    a reload opens no layer. An image that adds a manifest over stored layers has them checked."""
    from airgap.cli.main import main
    from airgap.transports.store import StoreSink
    site = make_airgap("site")
    site("load", "-i", str(_bundle(airgap, tmp_path, three_images[0])))
    checked: list[str] = []
    real = StoreSink._check_head

    def check_head(self: StoreSink, desc: Any, path: Path, what: str) -> None:
        checked.append(desc.digest)
        real(self, desc, path, what)
    monkeypatch.setattr(StoreSink, "_check_head", check_head)
    both = tmp_path / "both.tar"
    airgap("save", "-o", str(both), *three_images[:2])
    def layers(of: Airgap, name: str) -> set[str]:  # uncompressed: digests are diff_ids
        return set(json.loads(of("inspect", "--format", "{{json .RootFS.Layers}}", name).out))
    shared = layers(site, three_images[0]) & layers(airgap, three_images[1])
    assert main(["--store", str(site.store), "--progress", "none", "load", "-i", str(both)]) == 0
    assert shared and shared <= set(checked), "the new manifest's stored layers were not checked"
    checked.clear()
    assert main(["--store", str(site.store), "--progress", "none", "load", "-i", str(both)]) == 0
    assert checked == [], f"a reload read the layers {checked}"


# what a load of present images must not import: each costs its start-up (dataclasses
# and inspect ~15 ms here, plus ~1 ms for every class made; typing ~3 ms; each module of
# airgap's own ~0.1 ms), and the reload is mostly start-up: what writes, streams or starts threads
HEAVY_MODULES = ("typing", "locale", "dataclasses", "inspect", "tempfile", "datetime", "cryptography", "concurrent.futures",
                 "tqdm", "httpx", "py7zr", "zstandard", "isal", "subprocess", "platform", "base64", "threading",
                 "bisect", "tarfile", "shutil", "bz2", "lzma", "airgap.archive.split", "airgap.writeback", "airgap.newfile", "airgap.timeutil", "airgap.transports.stream",
                 "airgap.archive.sevenzip")


def test_a_reload_imports_only_what_it_needs(airgap: Airgap, three_images: list[str], make_airgap,
                                             tmp_path: Path) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    site("load", "-i", str(bundle))
    # the first compile() of a string builds the parser's AST types, 8 M instructions, 5% of a
    # reload (typing.NamedTuple compiled each field's annotation that is a string; airgap's
    # records read none). eval(), as namedtuple uses it for its __new__, does not build them.
    code = ("import sys\ncompiled = []\n"
            "sys.addaudithook(lambda ev, a: compiled.append(a[0]) if ev == 'compile' and a[1] == '<string>'"
            " and not a[0].startswith(b'lambda _cls,') else None)\n"
            "from airgap.cli.main import main\n"
            f"rc = main(['--store', {str(site.store)!r}, '--progress', 'none', 'load', '-i', {str(bundle)!r}])\n"
            f"print(rc, *[m for m in {HEAVY_MODULES!r} if m in sys.modules], file=sys.stderr)\n"
            "print(repr(compiled), file=sys.stderr)")
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert said.splitlines()[-2].split() == ["0"], f"the reload imported {said.splitlines()[-2].split()[1:]}"
    assert said.splitlines()[-1] == "[]", f"the reload compiled the strings {said.splitlines()[-1]}"


def test_interrupted_split_save_resumes(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Whole parts of an interrupted `save --split` stay (hidden, with a journal); the same
    save run again checks them, keeps them (not written again) and writes the rest:
    the same parts as an uninterrupted save. A damaged kept part is written again."""
    from airgap.archive import split
    from airgap.cli.main import main
    key = tmp_path / "k"
    from airgap.signing import generate_key
    priv = str(generate_key(str(key))[0])
    big = write_tree(tmp_path / "big", {"big.bin": os.urandom(5 << 20)})
    airgap("import", str(big), "example/big:1", "--base", "example/base:1")
    names = ["example/big:1", *three_images]
    ref = tmp_path / "ref" / "b.tar"
    ref.parent.mkdir()
    airgap("save", "--sign", priv, "--split", "1M", "-o", str(ref), *names)
    out = tmp_path / "usb" / "b.tar"
    out.parent.mkdir()
    args = ["--store", str(airgap.store), "--progress", "none", "save", "--sign", priv, "--split", "1M",
            "-o", str(out), *names]
    real = split.SplitWriter._finish_part

    def interrupted(self: split.SplitWriter) -> None:
        real(self)
        if len(self.done) == 3:
            raise KeyboardInterrupt  # Ctrl-C, an unplugged stick: after three whole parts

    monkeypatch.setattr(split.SplitWriter, "_finish_part", interrupted)
    capsys.readouterr()
    assert main(args) == 130
    left = sorted(p.name for p in out.parent.iterdir())
    assert left == [".b.tar.001.part", ".b.tar.002.part", ".b.tar.003.part", ".b.tar.resume"]
    assert (f"Kept 3 whole parts of this save in {out.parent} (.b.tar.NNN.part): the same save run again "
            f"resumes from them; rm {out.parent}/.b.tar.* discards them") in capsys.readouterr().err
    monkeypatch.setattr(split.SplitWriter, "_finish_part", real)
    capsys.readouterr()
    # the second part rots on the stick: it is checked and written again
    damaged = out.parent / ".b.tar.002.part"
    damaged.write_bytes(flip(damaged.read_bytes()))
    inodes = {n: (out.parent / f".b.tar.00{n}.part").stat().st_ino for n in (1, 3)}
    assert main(args) == 0
    assert "Resumed: 2 parts (2.1MB) written by an interrupted save checked and kept" in capsys.readouterr().err
    assert {n: (out.parent / f"b.tar.00{n}").stat().st_ino for n in (1, 3)} == inodes  # not written again
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(p.name for p in ref.parent.iterdir())
    for part in ref.parent.iterdir():
        assert (out.parent / part.name).read_bytes() == part.read_bytes()
    # parts left by a save of other images are not taken
    monkeypatch.setattr(split.SplitWriter, "_finish_part", interrupted)
    assert main([*args[:-len(names)], "example/big:1"]) == 130
    monkeypatch.setattr(split.SplitWriter, "_finish_part", real)
    capsys.readouterr()
    assert main(args) == 0
    assert "Resumed" not in capsys.readouterr().err
    for part in ref.parent.iterdir():
        assert (out.parent / part.name).read_bytes() == part.read_bytes()
    assert not list(out.parent.glob(".*"))
    # a kept part whose journal was rewritten to match it is still not what this save
    # writes: refused, never shipped
    monkeypatch.setattr(split.SplitWriter, "_finish_part", interrupted)
    assert main(args) == 130
    monkeypatch.setattr(split.SplitWriter, "_finish_part", real)
    forged = out.parent / ".b.tar.002.part"
    forged.write_bytes(flip(forged.read_bytes()))
    journal = json.loads((out.parent / ".b.tar.resume").read_text())
    journal["parts"]["2"] = hashlib.sha256(forged.read_bytes()).hexdigest()
    (out.parent / ".b.tar.resume").write_text(json.dumps(journal))
    capsys.readouterr()
    assert main(args) == 1
    assert "part 2 kept from an interrupted save is not what this save writes" in capsys.readouterr().err


def test_delta_bundle(airgap: Airgap, three_images: list[str], make_airgap, tmp_path: Path) -> None:
    """inventory on the far side, save --exclude-from on this side: the shared base layer
    stays home, and the delta loads only where that layer already is."""
    site = make_airgap("site")
    seed = tmp_path / "seed.tar"
    airgap("save", "-o", str(seed), "example/base:1")
    site("load", "-i", str(seed))
    inv = tmp_path / "inventory.json"
    site("inventory", "-o", str(inv))
    assert json.loads(inv.read_text())["mediaType"] == "application/vnd.airgap.inventory.v1+json"
    full = tmp_path / "full.tar"
    delta = tmp_path / "delta.tar"
    airgap("save", "-o", str(full), *three_images)
    airgap("save", "--exclude-from", str(inv), "-o", str(delta), *three_images)
    base_layer = json.loads(airgap("inspect", "example/base:1").out)[0]["RootFS"]["Layers"][0]
    with tarfile.open(delta) as tf:
        names = tf.getnames()
        doc = json.load(tf.extractfile("airgap/bundle.json"))  # type: ignore[arg-type]
    assert "blobs/sha256/" + base_layer[7:] not in names
    assert [b["digest"] for b in doc["expectedPresent"]] == [base_layer]
    assert delta.stat().st_size < full.stat().st_size - 40000
    assert "has them all" in site("verify", str(delta)).out
    assert [line for line in site("load", "-i", str(delta)).out.splitlines()] == \
        [f"Loaded image: {n}" for n in three_images]
    for n in three_images:
        assert site.image_id(n) == airgap.image_id(n)
    site("store", "check")
    # a store without the base layer refuses it (exit 1) and is unchanged
    empty = make_airgap("empty")
    empty("images")
    before = snapshot(empty.store)
    res = empty("load", "-i", str(delta), ok=False)
    assert res.code == 1 and "delta bundle" in res.err and base_layer in res.err
    assert snapshot(empty.store) == before
    assert "NOT in" in empty("verify", str(delta)).out
    assert empty("save", "--exclude-from", str(seed), "-o", str(tmp_path / "x.tar"), three_images[0], ok=False).code in (1, 2)


def test_inventory_replaces_its_file_whole(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """`inventory -o` wrote its file in place (a crash left half an inventory, and the old one
    was gone): it is written beside it and renamed, as save's bundle is."""
    inv = tmp_path / "inventory.json"
    inv.write_text("old inventory\n")
    keep = tmp_path / "link"
    os.link(inv, keep)  # a second name of the old file: it must still say what it said
    res = airgap("inventory", "-o", str(inv))
    assert "listed in" in res.err
    assert keep.read_text() == "old inventory\n"
    assert json.loads(inv.read_text())["mediaType"] == "application/vnd.airgap.inventory.v1+json"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp left
    res = airgap("inventory", "-o", str(tmp_path / "nodir" / "inv.json"), ok=False)
    assert res.code == 1 and "nodir: no such directory" in res.err, res.err


def test_an_inventory_of_a_large_store_is_read_back(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An inventory was read with the cap of any outside document (200,000 JSON objects): a
    far store of 200,000 blobs wrote one that `save --exclude-from` then refused. Both ends
    share one limit now (500,000 blobs): `inventory` refuses to write past it."""
    inv = tmp_path / "inventory.json"
    airgap("inventory", "-o", str(inv))
    doc = json.loads(inv.read_text())
    doc["blobs"] += [{"digest": f"sha256:{i:064x}", "size": 1} for i in range(210_000)]
    inv.write_text(json.dumps(doc, indent=1))
    airgap("save", "--exclude-from", str(inv), "-o", str(tmp_path / "delta.tar"), three_images[0])
    layers = json.loads(airgap("inspect", three_images[0]).out)[0]["RootFS"]["Layers"]
    with tarfile.open(tmp_path / "delta.tar") as tf:
        doc = json.load(tf.extractfile("airgap/bundle.json"))  # type: ignore[arg-type]
    assert sorted(b["digest"] for b in doc["expectedPresent"]) == sorted(layers)  # all were there
    from airgap import smallfile
    monkeypatch.setattr(smallfile, "MAX_INVENTORY_BLOBS", 3)
    res = airgap("inventory", "-o", str(tmp_path / "small.json"), ok=False)
    assert res.code == 1 and "more than an inventory lists (3)" in res.err, res.err
    monkeypatch.setattr(smallfile, "MAX_INVENTORY_BLOBS", 500_000)
    monkeypatch.setattr(smallfile, "INVENTORY_LIMIT", 300)  # and by its size in bytes
    res = airgap("inventory", "-o", str(tmp_path / "small.json"), ok=False)
    assert res.code == 1 and "more than a save reads" in res.err, res.err
    assert not (tmp_path / "small.json").exists()


def _load_from_pipe(store: Path, archive: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """`cat archive | airgap load`: a real pipe, which cannot seek."""
    cat = subprocess.Popen(["cat", str(archive)], stdout=subprocess.PIPE)
    res = subprocess.run([sys.executable, "-m", "airgap", "--store", str(store), "--progress", "none", "load", *extra],
                         stdin=cat.stdout, capture_output=True)
    assert cat.stdout is not None
    cat.stdout.close()
    cat.wait()
    return res


def test_pipe_loads_stream_bundles_and_spool_others(airgap: Airgap, three_images: list[str], make_airgap,
                                                     tmp_path: Path) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    site = make_airgap("site")
    res = _load_from_pipe(site.store, bundle)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().splitlines() == [f"Loaded image: {n}" for n in three_images]
    for n in three_images:
        assert site.image_id(n) == airgap.image_id(n)
    site("store", "check")
    before = snapshot(site.store)
    assert _load_from_pipe(site.store, bundle).returncode == 0  # all present: nothing staged
    assert snapshot(site.store) == before
    # a plain docker-save/OCI archive on a pipe is spooled, and loads the same
    foreign = tmp_path / "foreign.tar"
    rewrite_tar(bundle, foreign, lambda m, d: [] if m.name.startswith("airgap") else [(m, d)])
    other = make_airgap("other")
    res = _load_from_pipe(other.store, foreign)
    assert res.returncode == 0, res.stderr
    assert sorted(i for i in other("images", "-q").out.split()) == sorted(airgap.image_id(n)[7:19] for n in three_images)


def test_save_writes_through_what_is_not_a_plain_file(airgap: Airgap, three_images: list[str],
                                                       tmp_path: Path) -> None:
    """``-o`` naming a FIFO, a device, a link or our own stdout writes into it; a file is
    made beside and renamed over only a plain file (as root, ``-o /dev/null`` had replaced
    /dev/null with the bundle, and ``-o /dev/stdout`` the /dev/stdout link)."""
    import threading
    name = three_images[0]
    plain = tmp_path / "plain.tar"
    airgap("save", "-o", str(plain), name)
    want = plain.read_bytes()
    # a FIFO, read as it is written
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    airgap("save", "-o", str(fifo), name)
    reader.join(timeout=10)  # (a reader left waiting on a replaced FIFO is a daemon: it ends with us)
    assert got == [want] and stat.S_ISFIFO(fifo.lstat().st_mode)
    # a link to a device, and a link to a file not made yet: both written through
    null = tmp_path / "null"
    null.symlink_to("/dev/null")
    airgap("save", "-o", str(null), name)
    assert null.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    link = tmp_path / "link.tar"
    link.symlink_to(tmp_path / "target.tar")
    airgap("save", "-o", str(link), name)
    assert link.is_symlink() and (tmp_path / "target.tar").read_bytes() == want
    # our own standard output by another name: the bundle alone goes there, the report to stderr
    out = tmp_path / "out.tar"
    with open(out, "wb") as f:
        res = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "--progress", "none",
                              "save", "-o", "/proc/self/fd/1", name], stdout=f, stderr=subprocess.PIPE)
    assert res.returncode == 0 and b"Bundle digest" in res.stderr, res.stderr
    assert out.read_bytes() == want
    to_dir = airgap("save", "-o", str(tmp_path), name, ok=False)
    assert to_dir.code == 2 and "is a directory" in to_dir.err


@pytest.mark.parametrize("where", ["-", "fifo"])
def test_save_says_when_its_reader_stops(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                         where: str) -> None:
    """`airgap save -o - | ssh …` when ssh dies: exit 1 and a message, not a silent failure
    (nor Python's 'Exception ignored' at exit)."""
    out = where
    if where == "fifo":
        out = str(tmp_path / "fifo")
        os.mkfifo(out)
    save = subprocess.Popen([sys.executable, "-m", "airgap", "--store", str(airgap.store), "--progress", "none",
                             "save", "-o", out, *three_images],
                            stdout=subprocess.PIPE if where == "-" else subprocess.DEVNULL, stderr=subprocess.PIPE)
    if where == "-":
        assert save.stdout is not None
        save.stdout.read(1000)
        save.stdout.close()
    else:
        with open(out, "rb") as f:
            f.read(1000)
    _, err = save.communicate(timeout=60)
    assert save.returncode == 1, err
    assert b"the reader stopped before the end (broken pipe)" in err and b"Exception ignored" not in err, err


@pytest.mark.parametrize("kind", ["bundle", "foreign", "gzip"])
def test_a_fifo_named_by_i_is_read_as_a_pipe(airgap: Airgap, three_images: list[str], make_airgap,
                                             tmp_path: Path, kind: str) -> None:
    """``-i <(ssh host cat b.tar)``, ``-i /dev/stdin`` or a named FIFO: opened once and read
    as a stream (it cannot seek, and its first bytes must not be taken by a look at them)."""
    import gzip
    bundle = _bundle(airgap, tmp_path, *three_images)
    if kind == "foreign":
        rewrite_tar(bundle, tmp_path / "foreign.tar", lambda m, d: [] if m.name.startswith("airgap") else [(m, d)])
        bundle = tmp_path / "foreign.tar"
    if kind == "gzip":
        (tmp_path / "b.tar.gz").write_bytes(gzip.compress(bundle.read_bytes(), 1))
        bundle = tmp_path / "b.tar.gz"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cat = subprocess.Popen(f"cat {bundle} > {fifo}", shell=True)
    site = make_airgap("site")
    res = subprocess.run([sys.executable, "-m", "airgap", "--store", str(site.store), "--progress", "none", "load",
                          "-i", str(fifo)], capture_output=True, timeout=120)
    cat.wait(timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().splitlines() == [f"Loaded image: {n}" for n in three_images]
    for n in three_images:
        assert site.image_id(n) == airgap.image_id(n)


@pytest.mark.parametrize("damage", ["layer", "truncate", "unlisted", "duplicate", "missing"])
def test_pipe_refuses_bad_bundles(airgap: Airgap, three_images: list[str], make_airgap, tmp_path: Path,
                                  damage: str) -> None:
    bundle = _bundle(airgap, tmp_path, *three_images)
    layer = "blobs/sha256/" + json.loads(airgap("inspect", three_images[0]).out)[0]["RootFS"]["Layers"][-1][7:]
    bad = tmp_path / "bad.tar"
    if damage == "layer":
        rewrite_tar(bundle, bad, lambda m, d: [(m, flip(d or b"") if m.name == layer else d)])
    elif damage == "truncate":
        bad.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    elif damage == "unlisted":
        rewrite_tar(bundle, bad, lambda m, d: [(m, d), (tarfile.TarInfo("blobs/sha256/" + "0" * 64), b"x")]
                    if m.name == "index.json" else [(m, d)])
    elif damage == "duplicate":
        rewrite_tar(bundle, bad, lambda m, d: [(m, d), (m, d)] if m.name == layer else [(m, d)])
    else:
        rewrite_tar(bundle, bad, lambda m, d: [] if m.name == layer else [(m, d)])
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    res = _load_from_pipe(site.store, bad)
    assert res.returncode == 3, res.stderr
    assert b"Traceback" not in res.stderr and b"stdin" in res.stderr
    want = {"layer": b"does not match", "truncate": b"truncated", "unlisted": b"not listed",
            "duplicate": b"duplicate member", "missing": b"never came"}[damage]
    assert want in res.stderr, res.stderr
    assert snapshot(site.store) == before
    assert list((site.store / ".tmp").iterdir()) == []


def test_pipe_checks_the_signature_before_staging(airgap: Airgap, three_images: list[str], make_airgap,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    airgap("key", "generate", "packager")
    airgap("key", "generate", "stranger")
    bundle = tmp_path / "signed.tar"
    airgap("save", "--sign", "packager.key", "-o", str(bundle), *three_images)
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    res = _load_from_pipe(site.store, bundle, "--trust", str(tmp_path / "stranger.pub"))
    assert res.returncode == 3 and b"not trusted" in res.stderr
    assert snapshot(site.store) == before
    res = _load_from_pipe(site.store, bundle, "--trust", str(tmp_path / "packager.pub"), "--verify", "full")
    assert res.returncode == 0, res.stderr


def test_a_platform_asked_of_a_single_platform_image_must_be_its_own(airgap: Airgap, three_images: list[str],
                                                                     tmp_path: Path, make_airgap: Any) -> None:
    """docker load/save --platform (Docker 27): an image that is not multi-platform is taken
    whatever its platform only when none is asked for; asked for another, it is refused,
    not loaded in its stead. The platform is read as containerd normalizes it."""
    from airgap.oci import host_platform
    airgap("import", str(write_tree(tmp_path / "s390x", {"f": "x"})), "example/other:1", "--platform", "linux/s390x")
    bundle = _bundle(airgap, tmp_path, three_images[0], "example/other:1")
    site = make_airgap("site")
    site("images")
    before = snapshot(site.store)
    res = site("load", "-i", str(bundle), "--platform", "linux/s390x", ok=False)
    assert res.code == 1 and f"image {three_images[0]}: no manifest for platform linux/s390x" in res.err, res.err
    assert f"the image is {host_platform().os}/{host_platform().architecture}" in res.err, res.err
    assert snapshot(site.store) == before
    out = tmp_path / "one.tar"
    res = airgap("save", "--platform", "linux/s390x", "-o", str(out), three_images[0], ok=False)
    assert res.code == 1 and "no manifest for platform linux/s390x" in res.err and not out.exists()
    airgap("save", "--platform", "Linux/S390X", "-o", str(out), "example/other:1")
    site("load", "-i", str(out), "--platform", "linux/s390x")
    site("load", "-i", str(bundle))  # none asked for: each image as it is
    assert sorted(site("images", "--format", "{{.Repository}}").out.split()) == ["example/app-a", "example/other"]


def test_a_foreign_layouts_referrers_load_as_attachments(airgap: Airgap, tmp_path: Path) -> None:
    """An OCI archive as cosign or oras write one: an image and, untagged, artifact
    manifests whose ``subject`` is the image (and one attached to that artifact). They were
    loaded as dangling images ("Loaded image ID" of the empty config); they are the image's
    attachments, as pull keeps the referrers it finds: not in `images -a`, listed by
    `inspect`, carried by `save` (bundle.json names their subject), removed by `rmi`."""
    from ..builders import image, index_entry, oci_archive, referrer
    from airgap.digest import sha256_digest
    img = image({"a": b"a"})
    sig = referrer(img.manifest, "sig")
    sbom = referrer(sig.manifest, "on the sig", "application/spdx+json")
    archive = oci_archive(tmp_path / "cosign.tar", [img, sig, sbom],
                          [index_entry(img, "docker.io/example/signed:1"), index_entry(sig), index_entry(sbom)])
    res = airgap("load", "-i", str(archive))
    assert "Loaded image ID" not in res.out and "Loaded image: example/signed:1" in res.out, res.out
    assert airgap("images", "-aq").out.split() == [airgap.image_id("example/signed:1")[7:19]]
    doc = json.loads(airgap("inspect", "example/signed:1").out)[0]
    assert [(a["Kind"], a["Digest"]) for a in doc["Attachments"]] == [("referrer", sig.digest)]
    # store check took the artifacts' empty configs for damaged image configs
    assert airgap("store", "check").out.startswith("OK: 3 images, ")
    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), "example/signed:1")
    with tarfile.open(bundle) as tf:
        listed = json.loads(tf.extractfile("airgap/bundle.json").read())  # type: ignore[union-attr]
    subjects = {i["digest"]: i.get("subject") for i in listed["images"]}
    assert subjects.get(sig.digest) == img.digest and subjects.get(sbom.digest) == sig.digest, listed["images"]
    airgap("rmi", "example/signed:1")
    assert json.loads((airgap.store / "index.json").read_text())["manifests"] == []
    assert not (airgap.store / "blobs" / "sha256" / sha256_digest(sbom.manifest)[7:]).exists()


def test_an_attachment_whose_subject_never_came_goes_with_the_next_prune(airgap: Airgap, tmp_path: Path) -> None:
    """An OCI archive that carries a signature without its image loads it (the image may
    come later); `image prune` removes it, and its blobs, while its subject is not stored,
    as `rmi` removes an image's attachments with it. An attachment whose subject is stored
    stays. With a stored manifest that cannot be read, prune removes nothing: what is
    attached to it would look orphaned."""
    from ..builders import image, index_entry, oci_archive, referrer
    from airgap.digest import sha256_digest
    img, lone = image({"a": b"a"}), image({"b": b"b"})
    sig, stray = referrer(img.manifest, "sig"), referrer(lone.manifest, "stray")
    said = airgap("load", "-i", str(oci_archive(tmp_path / "signed.tar", [img, sig],
                                                [index_entry(img, "docker.io/example/signed:1"),
                                                 index_entry(sig)]))).err
    assert "Loaded 1 attached artifact" in said and "does not have" not in said, said
    said = airgap("load", "-i", str(oci_archive(tmp_path / "stray.tar", [stray], [index_entry(stray)]))).err
    assert f"({stray.digest[:19]}) is attached to an image the store does not have" in said, said
    index = airgap.store / "index.json"
    assert stray.digest in index.read_text()
    damaged = airgap.store / "blobs" / "sha256" / img.digest[7:]
    good = damaged.read_bytes()
    damaged.write_bytes(b"{")
    before = index.read_bytes()
    res = airgap("image", "prune", "-f", ok=False)
    assert res.code != 0 and img.digest in res.err and index.read_bytes() == before, res.err
    damaged.write_bytes(good)
    reclaimable = airgap("system", "df").out.splitlines()[1].split()[4]
    out = airgap("image", "prune", "-f").out
    assert f"deleted: {stray.digest}" in out and sig.digest not in out, out
    assert out.splitlines()[-1] == f"Total reclaimed space: {reclaimable}" != "Total reclaimed space: 0B", out
    listed = [m["digest"] for m in json.loads(index.read_text())["manifests"]]
    assert sorted(listed) == sorted([img.digest, sig.digest])
    assert not (airgap.store / "blobs" / "sha256" / sha256_digest(stray.manifest)[7:]).exists()
    assert airgap("store", "check").out.startswith("OK: 2 images, ")


def test_an_attachment_listed_under_another_subject_is_refused(airgap: Airgap, tmp_path: Path) -> None:
    """A bundle.json (or a registry's referrers list) that lists a signature as attached to
    image A when its manifest names image B as its subject: refused, naming both, even
    when the bundle is signed (a packager's tool that got it wrong)."""
    from airgap.signing import generate_key
    from ..builders import image, index_entry, members_of, oci_archive, referrer, resign, tar_of
    a, b = image({"a": b"a"}), image({"b": b"b"})
    sig = referrer(b.manifest, "sig of b")
    archive = oci_archive(tmp_path / "cosign.tar", [a, b, sig], [index_entry(a, "docker.io/example/a:1"),
                                                              index_entry(b, "docker.io/example/b:1"), index_entry(sig)])
    airgap("load", "-i", str(archive))
    key, pub, _, _ = generate_key(str(tmp_path / "k"))
    bundle = tmp_path / "b.tar"
    airgap("save", "--sign", str(key), "-o", str(bundle), "example/a:1", "example/b:1")
    members = members_of(bundle)
    doc = json.loads(dict(members)["airgap/bundle.json"])
    listed = [i for i in doc["images"] if i["digest"] == sig.digest]
    assert listed and listed[0]["subject"] == b.digest
    listed[0]["subject"] = a.digest
    liar = tmp_path / "liar.tar"
    liar.write_bytes(tar_of(resign(members, doc, key)))
    site = Airgap(tmp_path / "site", airgap.capsys)
    res = site("load", "-i", str(liar), "--trust", str(pub), ok=False)
    assert res.code == 3 and f"attached to {a.digest}" in res.err and f"names {b.digest}" in res.err, res.err
    assert site("images", "-aq").out == ""


def test_a_name_that_moves_to_the_same_image_leaves_nothing_dangling(airgap: Airgap, tmp_path: Path) -> None:
    """Docker's rule, by image ID: a name moved to another manifest of the same image (one
    platform of an index, then the whole index; a bundle, then the same image compressed)
    neither says "renaming the old one" nor leaves a `<none>` row of that same ID. A name
    moved to another image does both, as before."""
    from ..builders import Image, desc, image, oci_archive
    from airgap.digest import sha256_digest
    from airgap.oci import OCI_INDEX, OCI_MANIFEST, canonical_json, host_platform
    here = host_platform()
    other = "arm64" if here.architecture != "arm64" else "amd64"
    mine = image({"mine": b"m" * 100}, config={"architecture": here.architecture, "os": "linux"})
    theirs = image({"theirs": b"t" * 100}, config={"architecture": other, "os": "linux"})
    raw = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        desc(OCI_MANIFEST, mine.manifest, platform={"os": "linux", "architecture": here.architecture}),
        desc(OCI_MANIFEST, theirs.manifest, platform={"os": "linux", "architecture": other})]})
    multi = Image(raw, {**mine.blobs, **theirs.blobs, sha256_digest(raw): raw})
    entry = {**desc(OCI_INDEX, raw), "annotations": {"io.containerd.image.name": "docker.io/example/multi:1"}}
    archive = oci_archive(tmp_path / "multi.tar", [multi], [entry])

    def rows() -> list[str]:
        return airgap("images", "-a", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").out.splitlines()

    mine_id = mine.config_digest[7:19]
    res = airgap("load", "-i", str(archive), "--platform", f"linux/{here.architecture}")
    assert rows() == [f"example/multi:1 {mine_id}"]
    res = airgap("load", "-i", str(archive))  # the whole index now: the same image here
    assert "renaming" not in res.out + res.err and rows() == [f"example/multi:1 {mine_id}"], (res.out, rows())
    assert json.loads(airgap("inspect", "example/multi:1").out)[0]["Descriptor"]["digest"] == multi.digest
    res = airgap("load", "-i", str(archive), "--platform", f"linux/{other}")  # another image
    assert f"renaming the old one with ID {mine.config_digest} to empty string" in res.out, res.out
    assert rows() == [f"example/multi:1 {theirs.config_digest[7:19]}", f"<none>:<none> {mine_id}"], rows()
    # a bundle, then the same image with its layers compressed (another manifest digest)
    airgap("import", str(write_tree(tmp_path / "d", {"f": "f\n"})), "example/app:1")
    plain, packed = tmp_path / "plain.tar", tmp_path / "packed.tar"
    airgap("save", "-o", str(plain), "example/app:1")
    airgap("save", "--compress", "gzip", "-o", str(packed), "example/app:1")
    site = Airgap(tmp_path / "site", airgap.capsys)
    site("load", "-i", str(plain))
    res = site("load", "-i", str(packed))
    assert res.out == "Loaded image: example/app:1\n" and "renaming" not in res.err, (res.out, res.err)
    assert site("images", "-aq").out.split() == [airgap.image_id("example/app:1")[7:19]]
    # two named artifacts share OCI's empty config, hence an "image ID": not one image for that
    empty = b"{}"
    for n in (1, 2):
        data = f"artifact {n}\n".encode()
        raw_m = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.example",
                                "config": desc("application/vnd.oci.empty.v1+json", empty),
                                "layers": [desc("application/x.example.data", data)]})
        art = Image(raw_m, {sha256_digest(empty): empty, sha256_digest(data): data, sha256_digest(raw_m): raw_m})
        entry = {**desc(OCI_MANIFEST, raw_m), "annotations": {"io.containerd.image.name": "docker.io/example/art:1"}}
        res = site("load", "-i", str(oci_archive(tmp_path / f"art{n}.tar", [art], [entry])))
    assert "renaming the old one" in res.out, res.out
    assert site("images", "-a", "--format", "{{.Repository}}").out.split().count("<none>") == 1
