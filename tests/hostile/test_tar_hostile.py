"""Issue 10, tar headers: every field validated, every walk step forward, PAX capped."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from airgap.archive.tar import TarIndex, TarStream
from airgap.errors import FormatError

from ..conftest import Airgap
from .limits import pipe_of, refused, run_airgap
from .tarcraft import END, base256, header, member, pax, tiny_members

HEADER_CASES = {
    "negative base-256 size": header(b"blobs/x", size=base256(-1024)) + b"\0" * 1024 + END,
    "negative base-256 size of a directory": header(b"blobs/", size=base256(-512), typeflag=b"5") + END,
    "absurd base-256 size": header(b"blobs/x", size=base256(1 << 80)) + END,
    "size past the end of the file": header(b"blobs/x", size_int=10 << 20) + b"x" * 512 + END,
    "directory with an absurd size": header(b"blobs/", size_int=8 << 30, typeflag=b"5") + END,
    # Go's reader (Docker's) and tarfile read no data after a directory or link whatever its
    # size: a reader that skipped that many bytes would not see the member Docker loads
    "a directory whose size hides a member": header(b"blobs/", size_int=1024, typeflag=b"5")
                                             + member(b"manifest.json", b"[]") + END,
    "a symlink whose size hides a member": header(b"l", size_int=512, typeflag=b"2") + member(b"x", b"x") + END,
    "non-ASCII octal digits": header(b"blobs/x", size="٠٠٠٠٠٠٠٠١٢".encode()[:11] + b"\0") + END,
    "junk in the size field": header(b"blobs/x", size=b"12abc\0\0\0\0\0\0\0") + END,
    "a NUL inside the size field": header(b"blobs/x", size=b"00000000\x00777") + END,  # tarfile reads 0
    "PAX size negative": pax({b"size": b"-1"}) + member(b"blobs/x", b"") + END,
    "PAX size in Arabic-Indic digits": pax({b"size": "١٢".encode()}) + member(b"blobs/x", b"") + END,
    "PAX size with a sign": pax({b"size": b"+5"}) + member(b"blobs/x", b"") + END,
    "PAX size with underscores": pax({b"size": b"1_0"}) + member(b"blobs/x", b"") + END,
    "PAX size absurd": pax({b"size": b"9" * 40}) + member(b"blobs/x", b"") + END,
    "PAX record length lies": header(b"PaxHeader", size_int=20, typeflag=b"x") + b"99 size=1\n".ljust(512, b"\0")
                              + member(b"blobs/x", b"") + END,
    "PAX record length zero": header(b"PaxHeader", size_int=12, typeflag=b"x") + b"0 size=1\n".ljust(512, b"\0")
                              + member(b"blobs/x", b"") + END,
    "old GNU sparse member": header(b"blobs/x", size_int=512, typeflag=b"S") + b"x" * 512 + END,
    "GNU volume header": header(b"vol", typeflag=b"V") + END,
    "a contiguous file (tarfile reads it, Docker's untar refuses it)": member(b"blobs/x", b"x", typeflag=b"7") + END,
    "bad checksum field": header(b"blobs/x", chksum=b"12x4567\0") + END,
    "a checksum that does not add up": header(b"blobs/x", chksum=b"0001234\0 ") + END,
    "junk in a ustar header's devmajor field": header(b"blobs/x", devmajor=b"12x\0") + END,  # as Go reads it
    # one name, two things: Docker's untar replaces the first with the second, so what it
    # loads is not what a reader that kept the first one checked
    "a directory over a file": member(b"manifest.json", b"[]") + header(b"manifest.json/", typeflag=b"5") + END,
    "a file over a directory": header(b"blobs/", typeflag=b"5") + member(b"blobs", b"x") + END,
    "a file over an earlier member's directory": member(b"blobs/sha256/x", b"x") + member(b"blobs", b"x") + END,
    "a member under a file": member(b"blobs", b"x") + member(b"blobs/sha256/x", b"x") + END,
    "a member under a link": header(b"blobs", typeflag=b"2", linkname=b"other") + member(b"blobs/x", b"") + END,
    "a link over a file": member(b"x", b"x") + header(b"./x", typeflag=b"2", linkname=b"y") + END,
    "a file with no name": member(b"./", b"x") + END,
    # the name prefix as Go reads it: in POSIX ustar headers only (GNU keeps times there,
    # V7 has none), 131 bytes of it in star's: the name Docker reads is the one checked
    "a GNU header's times read as a prefix": member(b"blobs", b"x")
                                             + header(b"blobs", magic=b"ustar  \x00", prefix=b"zz") + END,
    "a V7 header's bytes read as a prefix": member(b"blobs", b"x") + header(b"blobs", magic=b"\0" * 8, prefix=b"zz")
                                            + END,
    "a star header's times read as a prefix": header(b"x", prefix=b"a" * 131)
                                              + header(b"x", prefix=b"a" * 131 + b"0000000000\0", tail=b"tar\0") + END,
    "a name longer than PATH_MAX": pax({b"path": b"a/" * 2100 + b"x"}) + member(b"x", b"") + END,
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_hostile_headers_are_refused_from_file_and_pipe(case: str, tmp_path: Path) -> None:
    data = HEADER_CASES[case]
    path = tmp_path / "evil.tar"
    path.write_bytes(data)
    store = tmp_path / "store"
    refused(run_airgap(store, "load", "-i", str(path), timeout=30))
    refused(run_airgap(store, "load", stdin=pipe_of(data), timeout=30))


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_readers_refuse_each_case(case: str) -> None:
    """The same rule in the header walk (files) and the stream reader (pipes)."""
    data = HEADER_CASES[case]
    with pytest.raises(FormatError):
        TarIndex(io.BytesIO(data), "evil.tar")
    ts = TarStream(io.BufferedReader(io.BytesIO(data)), "evil.tar")
    with pytest.raises(FormatError):
        for _ in range(100):
            m = ts.next()
            if m is None:
                break
            if m.size:
                ts.data().read()


@pytest.mark.parametrize("case", ["a directory whose size hides a member", "a symlink whose size hides a member"])
def test_a_header_only_member_with_a_size_is_what_the_readers_disagree_on(case: str) -> None:
    """The premise of those two cases: tarfile, as Go's archive/tar (Docker's), reads no data
    after a directory or a link, so it sees the member a reader skipping "size" bytes would not."""
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(HEADER_CASES[case])) as tf:
        assert tf.getnames()[-1] in ("manifest.json", "x")


def test_an_old_style_directory_named_by_pax_is_a_directory() -> None:
    """Go reads a member of type NUL as a directory when its name, PAX path included, ends
    in "/", and then reads no data after it: with a size, what tarfile would take for the
    member's data Docker reads as the next header, so it is refused; without one, it is a
    directory that members may lie under."""
    hidden = header(b"x", size_int=1024, typeflag=b"\0") + member(b"manifest.json", b"[]")
    with pytest.raises(FormatError, match="directory with a size"):
        TarIndex(io.BytesIO(pax({b"path": b"d/"}) + hidden + END), "a.tar")
    data = pax({b"path": b"d/"}) + header(b"x", typeflag=b"\0") + member(b"d/f", b"f") + END
    assert TarIndex(io.BytesIO(data), "a.tar").read("d/f", 10) == b"f"


def test_a_number_field_with_leading_nuls_is_read_as_go_reads_it() -> None:
    """Go's archive/tar (Docker's, containerd's) trims NULs and spaces at both ends of an
    octal field; tarfile stops at the first NUL and reads 0. airgap reads the member's 5
    bytes as Docker does, not its data as the next header."""
    data = header(b"x", size=b"\x000000000005\x00") + b"hello".ljust(512, b"\0") + END
    assert TarIndex(io.BytesIO(data), "nul.tar").read("x", 10) == b"hello"
    ts = TarStream(io.BufferedReader(io.BytesIO(data)), "nul.tar")
    m = ts.next()
    assert m is not None and m.size == 5 and ts.data().read() == b"hello" and ts.next() is None


def test_an_old_style_directory_is_a_directory() -> None:
    """A V7 tar's directory: a regular-file flag (NUL) and a name ending in "/", read as a
    directory (as tarfile and Go read it), so that members under it are not refused."""
    import tarfile
    data = header(b"blobs/", typeflag=b"\0") + member(b"blobs/x", b"x") + END
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.getmember("blobs").isdir()
    assert TarIndex(io.BytesIO(data), "v7.tar").read("blobs/x", 10) == b"x"


def test_pax_header_cap(tmp_path: Path) -> None:
    """A 150 MB PAX header is refused at its header, never read into memory."""
    path = tmp_path / "big-pax.tar"
    size = 150 << 20
    with open(path, "wb") as f:
        f.write(header(b"PaxHeader", size_int=size, typeflag=b"x"))
        f.truncate(512 + size + (-size % 512))
        f.seek(0, 2)
        f.write(member(b"blobs/x", b"x") + END)
    refused(run_airgap(tmp_path / "s", "load", "-i", str(path)), "PAX", seconds=10)


def test_the_names_held_to_tell_duplicates_are_capped() -> None:
    """9,000 members of 4,000-byte names (36 MB of names, each under PATH_MAX): refused
    at the cap (32 MiB), not held whole however many follow."""
    body = b"".join(pax({b"path": b"d%05d/" % i + b"x" * 3993}) + member(b"x", b"") for i in range(9000)) + END
    ts = TarStream(io.BufferedReader(io.BytesIO(body)), "names.tar")
    with pytest.raises(FormatError, match="MiB of member names"):
        while ts.next() is not None:
            pass


def test_pax_header_of_many_tiny_records_is_linear() -> None:
    """A 1 MiB PAX header of 6-byte records (170,000 of them): read in well under a second
    (a reader that re-scanned the rest of the header per record took minutes)."""
    import time
    body = b"6 a=b\n" * ((1 << 20) // 6)
    data = header(b"PaxHeader", size_int=len(body), typeflag=b"x") + body + b"\0" * (-len(body) % 512) \
        + member(b"blobs/x", b"") + END
    t0 = time.monotonic()
    ts = TarStream(io.BufferedReader(io.BytesIO(data)), "pax.tar")
    assert ts.next() is not None
    assert time.monotonic() - t0 < 2


def test_many_tiny_members(tmp_path: Path) -> None:
    """100,000 empty members: refused (not an image archive) in bounded time and memory."""
    path = tmp_path / "many.tar"
    with open(path, "wb") as f:
        f.writelines(tiny_members(100_000))
        f.write(END)
    run = run_airgap(tmp_path / "s", "load", "-i", str(path), timeout=60)
    refused(run, "not an image archive", seconds=30)


def test_many_tiny_members_under_a_trust_policy(tmp_path: Path) -> None:
    """500,000 members and a trust policy: refused at the first member, in a moment."""
    from airgap.signing import generate_key
    key, pub, _, _ = generate_key(str(tmp_path / "k"))
    path = tmp_path / "many.tar"
    with open(path, "wb") as f:
        f.writelines(tiny_members(500_000))
        f.write(END)
    run = run_airgap(tmp_path / "s", "load", "-i", str(path), "--trust", str(pub), timeout=60)
    refused(run, "not an airgap bundle", seconds=5)


def _bundle_bytes(airgap: Airgap, tmp_path: Path, names: list[str]) -> bytes:
    out = tmp_path / "b.tar"
    airgap("save", "-o", str(out), *names)
    return out.read_bytes()


@pytest.mark.parametrize("cut", [512 + 100, 1024, 1024 + 512])
def test_one_rule_for_a_cut_trailer(airgap: Airgap, three_images: list[str], tmp_path: Path, cut: int) -> None:
    """The end-of-archive marker cut: a file and a pipe give the same answer."""
    data = _bundle_bytes(airgap, tmp_path, three_images)
    assert data.endswith(END)
    bad = tmp_path / "cut.tar"
    bad.write_bytes(data[: len(data) - cut] if cut != 1024 + 512 else data[: len(data) - 1024] + b"\x01" * 512)
    a = run_airgap(tmp_path / "a", "load", "-i", str(bad))
    b = run_airgap(tmp_path / "b", "load", stdin=pipe_of(bad.read_bytes()))
    assert a.code == b.code == 3, (a.err, b.err)
    said = a.err.splitlines()[-1].replace(str(bad), "X")
    assert said == b.err.splitlines()[-1].replace("stdin", "X"), (a.err, b.err)  # the same words
    if cut != 1024 + 512:
        assert "end-of-archive marker" in said
    good = tmp_path / "one-zero-block.tar"
    good.write_bytes(data[: len(data) - 512])  # one zero block, then the end: accepted (as Go)
    assert run_airgap(tmp_path / "c", "load", "-i", str(good)).code == 0
    assert run_airgap(tmp_path / "d", "load", stdin=pipe_of(good.read_bytes())).code == 0


def test_split_parts_must_be_regular_files(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    base = tmp_path / "b.tar"
    airgap("save", "--split", "1M", "-o", str(base), *three_images)
    parts = sorted(tmp_path.glob("b.tar.0*"))
    assert len(parts) >= 1
    victim = parts[-1]
    saved = victim.read_bytes()
    victim.unlink()
    victim.symlink_to("/dev/zero")
    refused(run_airgap(tmp_path / "s", "load", "-i", str(parts[0]), timeout=20), victim.name, "symbolic link",
            seconds=10)
    victim.unlink()
    os.mkfifo(victim)
    refused(run_airgap(tmp_path / "s", "load", "-i", str(parts[0]), timeout=20), victim.name,
            "not a regular file", seconds=10)
    victim.unlink()
    victim.write_bytes(saved)
    sums = tmp_path / "b.tar.sha256"
    good = sums.read_text()
    sums.write_text(good.replace(f"  {parts[0].name}", "  ../../etc/passwd", 1))
    refused(run_airgap(tmp_path / "s", "load", "-i", str(parts[0]), timeout=20), "../../etc/passwd", seconds=10)
    sums.write_text(good.rstrip("\n") + "\n" + good.splitlines()[0] + "\n")  # a part listed twice: its bytes would be read twice
    refused(run_airgap(tmp_path / "s", "load", "-i", str(parts[0]), timeout=20), f"names {parts[0].name!r} twice",
            seconds=10)
    sums.unlink()
    sums.symlink_to(tmp_path / "not-mounted" / "b.tar.sha256")  # dangling: refused, not taken for absent
    refused(run_airgap(tmp_path / "s", "load", "-i", str(parts[0]), timeout=20), sums.name, "symbolic link",
            seconds=10)
    sums.unlink()
    sums.write_text(good)
    assert run_airgap(tmp_path / "s", "load", "-i", str(parts[0])).code == 0
