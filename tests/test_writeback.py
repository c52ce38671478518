"""How staged bytes reach the disk: O_DIRECT while the writes allow it, the page cache
after; and the three-thread copy loop that feeds it."""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airgap.digest import CHUNK, buffer, copy_verified, sha256_digest
from airgap.writeback import ALIGN, DiskWriter


def _direct_supported(directory: Path) -> bool:
    try:
        fd = os.open(directory / "probe", os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


def _is_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


def _filled(n: int) -> memoryview:
    view = buffer()
    view[:n] = os.urandom(n)
    return view[:n]


def _on_disk(directory: Path) -> bool:
    """O_DIRECT works, and the files are not kept in memory anyway (as a tmpfs keeps them)."""
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(directory)], capture_output=True, text=True).stdout
    return _direct_supported(directory) and fstype.strip() not in ("tmpfs", "ramfs")


@pytest.fixture
def direct_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a disk whose filesystem takes O_DIRECT: the temp dir, else (a
    tmpfs) one beside the checkout."""
    if _on_disk(tmp_path):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as d:
        if not _on_disk(Path(d)):
            pytest.fail(f"neither {tmp_path} nor {d} is a disk that takes O_DIRECT; this test needs one")
        yield Path(d)


@pytest.mark.parametrize("sizes, direct_after", [
    ([CHUNK, CHUNK, 12345], [True, True, False]),            # whole chunks, then a blob's tail
    ([CHUNK, 3 * ALIGN + 1, CHUNK], [True, False, False]),   # once buffered, buffered to the end
    ([100, CHUNK], [False, False]),                          # small first write: never direct
])
def test_every_byte_reaches_the_file(direct_dir: Path, sizes: list[int], direct_after: list[bool]) -> None:
    path = direct_dir / "blob"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    w = DiskWriter(fd)
    expected = bytearray()
    states = []
    for n in sizes:
        chunk = _filled(n)
        w.write(chunk)
        expected += chunk
        states.append(_is_direct(fd))
    os.close(fd)
    assert path.read_bytes() == expected and w.pos == len(expected)
    assert states == direct_after


def test_unaligned_memory_falls_back_without_losing_bytes(direct_dir: Path) -> None:
    """``bytes`` are not page-aligned: the kernel refuses the direct write (EINVAL,
    nothing written) and the same bytes go through the page cache."""
    path = direct_dir / "blob"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    w = DiskWriter(fd)
    aligned = _filled(CHUNK)
    w.write(aligned)
    assert _is_direct(fd)
    payload = b"\x01" + os.urandom(4 * ALIGN)  # a bytes object: its data sit 32 bytes into it
    w.write(memoryview(payload)[1:])
    assert not _is_direct(fd)
    os.close(fd)
    assert path.read_bytes() == bytes(aligned) + payload[1:]


def test_a_failing_writer_stops_the_copy(tmp_path: Path) -> None:
    """The writing thread's error ends the copy with that error; no thread is left."""
    class Full:
        def __init__(self) -> None:
            self.calls = 0

        def write(self, data: Any) -> int:
            self.calls += 1
            if self.calls == 2:
                raise OSError(28, "No space left on device")
            return len(data)
    payload = os.urandom(16 * CHUNK + 5)
    src = io.BytesIO(payload)
    before = threading.active_count()
    dst = Full()
    with pytest.raises(OSError, match="No space"):
        copy_verified(src, dst, expected=sha256_digest(payload), size=len(payload), what="x")
    assert threading.active_count() == before
    assert dst.calls == 2  # nothing written after the failure
    assert src.tell() < 8 * CHUNK  # and reading stopped: a few chunks in flight at most


def test_the_pipelined_copy_writes_in_order(tmp_path: Path) -> None:
    payload = os.urandom(5 * CHUNK + 7)
    out = io.BytesIO()
    got = copy_verified(io.BytesIO(payload), out, expected=sha256_digest(payload), size=len(payload), what="x")
    assert got == (sha256_digest(payload), len(payload)) and out.getvalue() == payload


def test_copies_reuse_one_ring_of_buffers() -> None:
    """Fresh memory costs a page fault per 4 KiB: a copy takes the buffers the last one
    gave back, and no more than a ring is kept."""
    from airgap import digest
    payload = os.urandom(3 * CHUNK)
    copy_verified(io.BytesIO(payload), io.BytesIO(), expected=sha256_digest(payload), size=len(payload), what="x")
    kept = {id(v.obj) for v in digest._pool}
    assert len(kept) == digest.RING
    out = io.BytesIO()
    copy_verified(io.BytesIO(payload), out, expected=sha256_digest(payload), size=len(payload), what="x")
    assert {id(v.obj) for v in digest._pool} == kept and out.getvalue() == payload


def test_copies_at_once_never_share_a_buffer() -> None:
    """Pipelined and side-by-side copies on several threads, each checked byte for byte."""
    from airgap.digest import side_by_side
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(4):
                payload = os.urandom((seed + i) % 3 * CHUNK + 1000 * seed + 1)
                out = io.BytesIO()
                if (seed + i) % 2:
                    with side_by_side():
                        copy_verified(io.BytesIO(payload), out, expected=sha256_digest(payload),
                                      size=len(payload), what="x")
                else:
                    copy_verified(io.BytesIO(payload), out, expected=sha256_digest(payload),
                                  size=len(payload), what="x")
                assert out.getvalue() == payload
        except BaseException as exc:
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(s,)) for s in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_copy_beside_others_takes_the_simple_loop_on_its_own_thread_only() -> None:
    """Inside ``side_by_side`` a big copy starts no threads of its own; another thread, and
    the same one after it, pipeline again."""
    from airgap.digest import side_by_side
    payload = os.urandom(3 * CHUNK)
    pipelined: list[bool] = []

    class Spy(io.BytesIO):
        def readinto(self, b: Any) -> int:
            pipelined.append(any(t.name in ("sha256", "write") for t in threading.enumerate()))
            return super().readinto(b)

    def copy() -> bool:
        pipelined.clear()
        copy_verified(Spy(payload), io.BytesIO(), expected=sha256_digest(payload), size=len(payload), what="x")
        return any(pipelined)

    elsewhere: list[bool] = []
    with side_by_side():
        assert not copy()
        t = threading.Thread(target=lambda: elsewhere.append(copy()))
        t.start()
        t.join()
    assert elsewhere == [True]
    assert copy()


def test_a_load_leaves_its_blobs_out_of_the_page_cache(direct_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real path: a layer loaded from a bundle reaches the disk with O_DIRECT from the
    copy's aligned buffers, so at most its last partial page stays in memory (measured
    with util-linux's fincore)."""
    from .conftest import Airgap, write_tree
    packer = Airgap(direct_dir / "packer", capsys)
    big = write_tree(direct_dir / "ctx", {"big.bin": os.urandom(3 * CHUNK + 12345)})
    packer("import", str(big), "example/big:1")
    bundle = direct_dir / "b.tar"
    packer("save", "-o", str(bundle), "example/big:1")
    site = Airgap(direct_dir / "site", capsys)
    site("load", "-i", str(bundle))
    blobs = sorted((site.store / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer = blobs[-1]
    assert layer.stat().st_size > 3 * CHUNK

    def cached() -> int:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(layer)],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())
    assert cached() <= ALIGN, f"{layer}: {cached()} bytes of it in the page cache"
    site("load", "-i", str(bundle))  # a reload reads the present layer's first bytes
    assert cached() <= ALIGN, f"{layer}: {cached()} bytes of it in the page cache after a reload"
