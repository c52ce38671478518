"""Safe tar reading by index, and deterministic tar writing.

The reader walks the headers once (seeking past the data), refuses what a malicious
archive could use against the loader (absolute or ``..`` names, links leaving the
archive, device members, duplicate names, data past the end of the file) and then hands
out bounded readers for single members. The writer emits PAX headers with mtime 0 and
uid/gid 0, so the same content gives the same bytes.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import FormatError
from .input import looks_like

BLOCK = 512
MAX_LINK_DEPTH = 16


@dataclass(frozen=True)
class Member:
    name: str
    offset: int
    size: int


def clean_name(raw: str, archive: str) -> str:
    """Normalize a member name; refuse absolute paths and ``..`` components."""
    if "\x00" in raw:
        raise FormatError(f"{archive}: member name {raw!r} contains a NUL byte")
    if raw.startswith("/"):
        raise FormatError(f"{archive}: member {raw!r} has an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FormatError(f"{archive}: member {raw!r} points outside the archive (..)")
    return "/".join(parts)


class SectionReader(io.RawIOBase):
    """A bounded, read-only view of ``size`` bytes at ``offset`` of a seekable file."""

    def __init__(self, f: BinaryIO, offset: int, size: int) -> None:
        self._f, self._start, self._size, self._pos = f, offset, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(b), self._size - self._pos)
        if want <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        n = self._f.readinto(memoryview(b)[:want])  # type: ignore[attr-defined]
        self._pos += n or 0
        return n or 0


class TarIndex:
    """The regular-file members of a tar on a seekable file, links resolved."""

    def __init__(self, f: BinaryIO, archive: str) -> None:
        self.f, self.archive = f, archive
        self.files: dict[str, Member] = {}
        self._links: dict[str, tuple[str, bool]] = {}  # name -> (target, is_symlink)
        self._walk()

    def _walk(self) -> None:
        f = self.f
        f.seek(0, os.SEEK_END)
        end = f.tell()
        f.seek(0)
        headers = TarStream(f, self.archive, seekable=True)
        seen_dirs: set[str] = set()
        while (m := headers.next()) is not None:
            self._add(m, f.tell(), end, seen_dirs)
        self._check_trailer(f.tell(), end)
        for name in self._links:
            self.lookup(name)  # every link must resolve inside the archive

    def _add(self, m: tarfile.TarInfo, offset: int, end: int, seen_dirs: set[str]) -> None:
        archive = self.archive
        name = clean_name(m.name, archive)
        if m.isdir():
            seen_dirs.add(name)
            return
        if name in self.files or name in self._links or name in seen_dirs:
            raise FormatError(f"{archive}: duplicate member {name!r}")
        if m.isreg():
            if m.issparse():
                raise FormatError(f"{archive}: member {name!r} is a sparse file")
            if offset + m.size > end:
                raise FormatError(f"{archive}: truncated: member {name!r} needs {m.size} bytes "
                                  f"at offset {offset}, the file has {end}")
            self.files[name] = Member(name, offset, m.size)
        elif m.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname))
            if m.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise FormatError(f"{archive}: link {name!r} points outside the archive ({m.linkname!r})")
            self._links[name] = (target, True)
        elif m.islnk():
            self._links[name] = (clean_name(m.linkname, archive), False)
        else:
            kind = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                    tarfile.FIFOTYPE: "fifo"}.get(m.type, f"type {m.type!r}")
            raise FormatError(f"{archive}: member {name!r} is a {kind}, not allowed in an image archive")

    def _check_trailer(self, offset: int, end: int) -> None:
        """After the first zero block: a second one, or the end of the file (as Go's reader
        allows). Anything else is a damaged or cut archive."""
        self.f.seek(offset)
        rest = self.f.read(BLOCK)
        if rest and (len(rest) < BLOCK or rest.count(0) != BLOCK):
            raise FormatError(f"{self.archive}: truncated or damaged: the archive ends at byte {end} "
                              "inside its end-of-archive marker")

    def lookup(self, name: str) -> Member | None:
        """The regular file behind ``name``, following links inside the archive."""
        for _ in range(MAX_LINK_DEPTH):
            if name in self.files:
                return self.files[name]
            link = self._links.get(name)
            if link is None:
                return None
            name = link[0]
        raise FormatError(f"{self.archive}: link loop at {name!r}")

    def names(self) -> list[str]:
        return sorted([*self.files, *self._links])

    def open(self, member: Member) -> SectionReader:
        return SectionReader(self.f, member.offset, member.size)

    def read(self, name: str, limit: int) -> bytes:
        m = self.lookup(name)
        if m is None:
            raise FormatError(f"{self.archive}: member {name!r} is missing")
        if m.size > limit:
            raise FormatError(f"{self.archive}: member {name!r} is {m.size} bytes, more than {limit}")
        data = self.open(m).read()
        if len(data) != m.size:
            raise FormatError(f"{self.archive}: truncated member {name!r}")
        return data


def _header(name: str, size: int, kind: bytes) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mtime = size, kind, 0
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class TarWriter:
    """Writes a deterministic tar stream; members are given in the order they should appear."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.written = 0

    def _w(self, data: bytes | memoryview) -> None:
        self.out.write(data)
        self.written += len(data)

    def add_dir(self, name: str) -> None:
        self._w(_header(name.rstrip("/") + "/", 0, tarfile.DIRTYPE))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._w(_header(name, len(data), tarfile.REGTYPE))
        self._w(data)
        self._pad(len(data))

    def begin_file(self, name: str, size: int) -> None:
        """Write a header; the caller then writes exactly ``size`` bytes and calls ``end_file``."""
        self._w(_header(name, size, tarfile.REGTYPE))

    def write(self, data: bytes | memoryview) -> None:
        self._w(data)

    def end_file(self, size: int) -> None:
        self._pad(size)

    def _pad(self, size: int) -> None:
        rem = size % BLOCK
        if rem:
            self._w(b"\0" * (BLOCK - rem))

    def close(self) -> None:
        self._w(b"\0" * (2 * BLOCK))


class _Bounded(io.RawIOBase):
    """Exactly ``size`` bytes of a stream, no more; short input is an error for the reader."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f, self.left = f, size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(b), self.left)
        if want <= 0:
            return 0
        n = self._f.readinto(memoryview(b)[:want]) or 0  # type: ignore[attr-defined]
        self.left -= n
        return n


class TarStream:
    """Reads a tar one member at a time, with no copies of the data: ``next()`` gives a
    header, ``data()`` a reader of exactly its bytes. On a stream, unread data is read
    past; with ``seekable`` it is seeked past (a header walk). Handles ustar headers and
    PAX extended headers (``path``, ``size``, ``linkpath``); refuses sparse files.
    """

    def __init__(self, f: BinaryIO, archive: str, seekable: bool = False) -> None:
        self.f, self.archive, self.seekable = f, archive, seekable
        self._open: _Bounded | None = None
        self._pad = 0
        self._first = True  # the first header tells a tar from something else

    def _read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            if self._first and (not data or looks_like(data) != "binary data"):
                raise FormatError(f"{self.archive}: not a tar archive (it looks like {looks_like(data)})")
            if self._first:
                raise FormatError(f"{self.archive}: truncated, or not a tar archive: it ends after "
                                  f"{len(data)} bytes, inside the first tar header (it looks like "
                                  f"{looks_like(data)})")
            raise FormatError(f"{self.archive}: truncated: the stream ends inside a tar header")
        return data

    def _finish(self) -> None:
        """Skip what the caller did not read of the last member, and its padding."""
        if self.seekable:
            self.f.seek((self._open.left if self._open else 0) + self._pad, os.SEEK_CUR)
            self._open, self._pad = None, 0
            return
        if self._open is not None:
            while self._open.left:
                if not self._open.read(min(self._open.left, 1 << 20)):
                    raise FormatError(f"{self.archive}: truncated: the stream ends inside a member")
            self._open = None
        if self._pad:
            self._read(self._pad)
            self._pad = 0

    def next(self) -> tarfile.TarInfo | None:
        self._finish()
        pax: dict[str, str] = {}
        while True:
            block = self._read(BLOCK)
            if block.count(0) == BLOCK:
                return None  # the end-of-archive marker
            try:
                ti = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.TarError as exc:
                if self._first and block[257:262] != b"ustar":  # no tar magic either
                    raise FormatError(f"{self.archive}: not a tar archive (it looks like "
                                      f"{looks_like(block)})") from None
                raise FormatError(f"{self.archive}: damaged tar header ({exc})") from None
            self._first = False
            if ti.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
                records = self._read(ti.size + (-ti.size % BLOCK))[: ti.size]
                if ti.type == tarfile.XHDTYPE:
                    pax.update(_pax_records(records, self.archive))
                continue
            if ti.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                raise FormatError(f"{self.archive}: GNU long-name headers are not used in bundles")
            if any(k.startswith("GNU.sparse") for k in pax):
                raise FormatError(f"{self.archive}: member {ti.name!r} is a sparse file")
            if "path" in pax:
                ti.name = pax["path"]
            if "linkpath" in pax:
                ti.linkname = pax["linkpath"]
            if "size" in pax:
                try:
                    ti.size = int(pax["size"])
                except ValueError:
                    raise FormatError(f"{self.archive}: bad PAX size for {ti.name!r}") from None
            if ti.size:
                self._open = _Bounded(self.f, ti.size)
                self._pad = -ti.size % BLOCK
            return ti

    def data(self) -> _Bounded:
        """The bytes of the member ``next()`` returned last."""
        assert self._open is not None, "no member open"
        return self._open


def _pax_records(data: bytes, archive: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise FormatError(f"{archive}: damaged PAX header") from None
        record = data[space + 1: pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        if length <= 0:
            raise FormatError(f"{archive}: damaged PAX header")
        pos += length
    return out
