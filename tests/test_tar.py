"""The tar readers: the indexed one (files) and the streaming one (pipes)."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from airgap.archive.tar import TarIndex, TarStream, TarWriter
from airgap.errors import FormatError


def _tar(members: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.pax_headers = {"comment": "ünïcode"} if len(name) > 100 else {}
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


MEMBERS = {"a.txt": b"alpha", "d/" + "long-" * 30 + "name": b"x" * 70000, "z": b""}


def test_stream_reads_ustar_and_pax() -> None:
    ts = TarStream(io.BufferedReader(io.BytesIO(_tar(MEMBERS))), "t.tar")
    seen = {}
    while (m := ts.next()) is not None:
        seen[m.name] = ts.data().read() if m.size else b""
    assert seen == MEMBERS
    # members left unread are skipped, padding included
    ts = TarStream(io.BufferedReader(io.BytesIO(_tar(MEMBERS))), "t.tar")
    names = []
    while (m := ts.next()) is not None:
        names.append(m.name)
    assert names == list(MEMBERS)


@pytest.mark.parametrize("cut", [100, 600, 1800, 30000, 71000])
def test_stream_truncated(cut: int) -> None:
    data = _tar(MEMBERS)[:cut]
    ts = TarStream(io.BufferedReader(io.BytesIO(data)), "t.tar")
    with pytest.raises(FormatError, match="truncated"):
        while (m := ts.next()) is not None:
            if m.size:
                got = ts.data().read()
                if len(got) != m.size:
                    raise FormatError("t.tar: truncated member")


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_every_format_reads_as_tarfile_reads_it(fmt: int) -> None:
    """ustar (name prefix), GNU and PAX, files, a directory, links and a non-ASCII name: the
    names, types, sizes and link targets tarfile reads (GNU long names aside: refused)."""
    deep = "dir/" + ("p" * 120 if fmt != tarfile.GNU_FORMAT else "p") + "/f"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, kind, data, link in (("dir", tarfile.DIRTYPE, b"", ""), (deep, tarfile.REGTYPE, b"12", ""),
                                       ("dir/é", tarfile.REGTYPE, b"x" * 513, ""), ("s", tarfile.SYMTYPE, b"", "dir/é"),
                                       ("h", tarfile.LNKTYPE, b"", "dir/é")):
            ti = tarfile.TarInfo(name)
            ti.type, ti.size, ti.linkname, ti.uname = kind, len(data), link, "ünï"
            tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        want = [(m.name, m.type, m.size, m.linkname) for m in tf.getmembers()]
    ts = TarStream(io.BufferedReader(io.BytesIO(buf.getvalue())), "t.tar")
    got = []
    while (m := ts.next()) is not None:
        got.append((m.name, m.type, m.size, m.linkname))
    assert got == want
    index = TarIndex(io.BytesIO(buf.getvalue()), "t.tar")
    assert index.read("h", 1000) == index.read("s", 1000) == b"x" * 513


def test_a_signed_checksum_is_read() -> None:
    """Old tars (Sun's, early GNU) summed the header's bytes as signed chars: a name of
    bytes >= 0x80 then sums differently, and both sums are accepted, as by Go and tarfile."""
    data = bytearray(_tar({"é" * 20: b"x"}, tarfile.GNU_FORMAT))
    head = data[:512]
    head[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in head)
    assert signed != sum(head)
    data[148:156] = f"{signed:06o}\0 ".encode()
    ts = TarStream(io.BufferedReader(io.BytesIO(bytes(data))), "t.tar")
    m = ts.next()
    assert m is not None and m.name == "é" * 20
    data[148:156] = f"{signed + 1:06o}\0 ".encode()
    with pytest.raises(FormatError, match="bad checksum"):
        TarStream(io.BufferedReader(io.BytesIO(bytes(data))), "t.tar").next()


def test_stream_damaged_header() -> None:
    data = bytearray(_tar(MEMBERS))
    data[150] ^= 0xFF  # inside the first header's mode/checksum fields
    ts = TarStream(io.BufferedReader(io.BytesIO(bytes(data))), "t.tar")
    with pytest.raises(FormatError, match="damaged"):
        ts.next()


def test_writer_is_read_back_by_both(tmp_path) -> None:
    out = io.BytesIO()
    w = TarWriter(out)
    w.add_dir("blobs")
    w.add_bytes("blobs/one", b"1" * 1000)
    w.begin_file("blobs/two", 3)
    w.write(b"two")
    w.end_file(3)
    w.close()
    path = tmp_path / "w.tar"
    path.write_bytes(out.getvalue())
    with open(path, "rb") as f:
        idx = TarIndex(f, "w.tar")
        assert idx.read("blobs/two", 10) == b"two" and idx.names() == ["blobs/one", "blobs/two"]
    with tarfile.open(path) as tf:
        assert [(m.name, m.mtime, m.uid) for m in tf.getmembers()] == \
            [("blobs", 0, 0), ("blobs/one", 0, 0), ("blobs/two", 0, 0)]


def test_members_read_on_several_threads_at_once(tmp_path: Path) -> None:
    """The engine reads several blobs of one archive at once: each reader gets its own
    member's bytes, never another's (a seek and its read are one step)."""
    members = {f"m{i}": os.urandom(256 << 10) for i in range(6)}
    path = tmp_path / "t.tar"
    path.write_bytes(_tar(members))
    wrong: list[str] = []
    with open(path, "rb") as f:
        index = TarIndex(f, "t.tar")

        def reader(name: str) -> None:
            for _ in range(20):
                r = index.open(index.files[name])
                got = bytearray()
                while chunk := r.read(1000):
                    got += chunk
                if got != members[name]:
                    wrong.append(name)
        threads = [threading.Thread(target=reader, args=(n,)) for n in members]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert wrong == []


def _links(chain: int, loop: bool = False) -> bytes:
    """``l0`` a file, ``l1`` .. ``l<chain>`` each a symbolic link to the one before (with
    ``loop``, ``l0`` a link to the last instead)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("l0")
        if loop:
            ti.type, ti.linkname = tarfile.SYMTYPE, f"l{chain}"
        tf.addfile(ti, io.BytesIO(b""))
        for i in range(1, chain + 1):
            ti = tarfile.TarInfo(f"l{i}")
            ti.type, ti.linkname = tarfile.SYMTYPE, f"l{i - 1}"
            tf.addfile(ti)
    return buf.getvalue()


def test_links_are_followed_a_bounded_number_of_times() -> None:
    from airgap.archive.tar import MAX_LINK_DEPTH
    index = TarIndex(io.BytesIO(_links(MAX_LINK_DEPTH)), "t.tar")
    member = index.lookup(f"l{MAX_LINK_DEPTH}")  # a chain of MAX_LINK_DEPTH links: followed
    assert member is not None and member.name == "l0"
    last = f"l{MAX_LINK_DEPTH + 1}"  # one more: refused, the link named (not the file at its end)
    with pytest.raises(FormatError, match=f"link '{last}' goes round in a loop or through more than"):
        TarIndex(io.BytesIO(_links(MAX_LINK_DEPTH + 1)), "t.tar")
    with pytest.raises(FormatError, match="link 'l0' goes round in a loop"):
        TarIndex(io.BytesIO(_links(3, loop=True)), "t.tar")


def _hard(*links: tuple[str, str]) -> bytes:
    """A file ``f``, then each (name, target) as a hard link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("f")
        ti.size = 2
        tf.addfile(ti, io.BytesIO(b"ok"))
        for name, target in links:
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.LNKTYPE, target
            tf.addfile(ti)
    return buf.getvalue()


def test_a_hard_link_names_a_member_before_it() -> None:
    """As tar and Docker's untar read one: a hard link to a member that comes later (or
    never, or itself) is refused, naming the link; to one before it, it is that file."""
    index = TarIndex(io.BytesIO(_hard(("a", "f"), ("b", "./a"))), "t.tar")
    for name in ("a", "b"):
        member = index.lookup(name)
        assert member is not None and member.name == "f"
    for links in ((("a", "b"), ("b", "f")), (("a", "a"),), (("a", "nowhere"),)):
        with pytest.raises(FormatError, match="t.tar: hard link 'a' names '[a-z]+', which is not a member before it"):
            TarIndex(io.BytesIO(_hard(*links)), "t.tar")
