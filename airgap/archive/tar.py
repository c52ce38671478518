"""Safe tar reading by index, and deterministic tar writing.

The reader walks the headers once (seeking past the data), refuses what a malicious
archive could use against the loader (absolute or ``..`` names, links leaving the
archive, device members, duplicate names, data past the end of the file) and then hands
out bounded readers for single members. The writer emits PAX headers with mtime 0 and
uid/gid 0, so the same content gives the same bytes.
"""

from __future__ import annotations

import _thread
import io
import os
import posixpath

from ..errors import FormatError
from ..records import NamedTuple
from .input import looks_like

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

BLOCK = 512
MAX_LINK_DEPTH = 16
MAX_PAX = 1 << 20          # a PAX extended header, as Go's archive/tar caps it
MAX_MEMBERS = 200_000      # headers in one archive (a 16,000-layer image has ~16,000)
MAX_MEMBER_SIZE = 1 << 42  # 4 TiB: any larger size field is damage, not a layer
MAX_NAME = 4096            # PATH_MAX: Docker could not create a longer name either
MAX_NAME_BYTES = 32 << 20  # names held to tell duplicates (a 16,000-layer archive: ~5 MiB)
_NUMERIC_FIELDS = (("mode", 100, 108), ("uid", 108, 116), ("gid", 116, 124), ("size", 124, 136),
                   ("mtime", 136, 148))
_DEVICE_FIELDS = (("devmajor", 329, 337), ("devminor", 337, 345))  # read by Go in ustar headers
# type flags (POSIX ustar, PAX, GNU)
REGTYPE, AREGTYPE, LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE = (
    b"0", b"\0", b"1", b"2", b"3", b"4", b"5", b"6")
XHDTYPE, XGLTYPE, GNU_LONGNAME, GNU_LONGLINK = b"x", b"g", b"L", b"K"
_GNU_TYPES = (GNU_LONGNAME, GNU_LONGLINK, b"S")  # their name field is not joined to a ustar prefix
_KINDS = {DIRTYPE: "directory", CHRTYPE: "character device", BLKTYPE: "block device", FIFOTYPE: "fifo"}
_HEADER_ONLY = (LNKTYPE, SYMTYPE, *_KINDS)  # no data follows these headers
_HIGH = bytes(range(0x80, 0x100))
_REFUSED_TYPES = {b"S": "an old GNU sparse file", b"V": "a GNU volume header",
                  b"M": "a GNU multi-volume continuation", b"N": "an old GNU long-name member",
                  b"D": "a GNU directory dump", b"7": "a contiguous file (type 7)"}


class Member(NamedTuple):
    name: str
    offset: int
    size: int


class Header(NamedTuple):
    """One tar header, as ``TarStream.next`` gives it (PAX records applied)."""

    name: str
    type: bytes
    size: int
    linkname: str

    def isreg(self) -> bool:
        return self.type in (REGTYPE, AREGTYPE)  # contiguous (7) and sparse (S) are refused

    def isdir(self) -> bool:
        return self.type == DIRTYPE

    def issym(self) -> bool:
        return self.type == SYMTYPE

    def islnk(self) -> bool:
        return self.type == LNKTYPE


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
    """A bounded, read-only view of ``size`` bytes at ``offset`` of a seekable file.
    Readers of one file share its ``lock``: a seek and the read after it are one step, or
    two threads (the engine reads several blobs at once) would read each other's bytes."""

    def __init__(self, f: BinaryIO, offset: int, size: int, lock: _thread.LockType) -> None:
        self._f, self._start, self._size, self._pos, self._lock = f, offset, size, 0, lock

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(b), self._size - self._pos)
        if want <= 0:
            return 0
        with self._lock:
            self._f.seek(self._start + self._pos)
            n = self._f.readinto(memoryview(b)[:want])  # type: ignore[attr-defined]
        self._pos += n or 0
        return n or 0


class TarIndex:
    """The regular-file members of a tar on a seekable file, links resolved."""

    def __init__(self, f: BinaryIO, archive: str) -> None:
        self.f, self.archive = f, archive
        self._lock = _thread.allocate_lock()  # for the SectionReaders of f
        self.files: dict[str, Member] = {}
        self._links: dict[str, tuple[str, bool]] = {}  # name -> (target, is_symlink)
        self._walk()

    def _walk(self) -> None:
        f = self.f
        f.seek(0, os.SEEK_END)
        end = f.tell()
        f.seek(0)
        headers = TarStream(f, self.archive, seekable=True, end=end)
        while (m := headers.next()) is not None:
            self._add(m, f.tell(), end)
        for name in self._links:
            self.lookup(name)  # every link must resolve inside the archive

    def _add(self, m: Header, offset: int, end: int) -> None:
        archive, name = self.archive, m.name  # a clean name, given once (TarStream)
        if m.isdir():
            return
        if m.isreg():
            if offset + m.size > end:
                raise FormatError(f"{archive}: truncated: member {name!r} needs {m.size} bytes "
                                  f"at offset {offset}, the file has {end}")
            self.files[name] = Member(name, offset, m.size)
        elif m.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname))
            if m.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise FormatError(f"{archive}: link {name!r} points outside the archive ({m.linkname!r})")
            self._links[name] = (target, True)
        elif m.islnk():  # names a member before it, as tar (and Docker's untar) reads one
            target = clean_name(m.linkname, archive)
            if target not in self.files and target not in self._links:
                raise FormatError(f"{archive}: hard link {name!r} names {target!r}, which is not a member "
                                  "before it in the archive")
            self._links[name] = (target, False)
        else:
            kind = _KINDS.get(m.type, f"type {m.type!r}")
            raise FormatError(f"{archive}: member {name!r} is a {kind}, not allowed in an image archive")

    def lookup(self, name: str) -> Member | None:
        """The regular file behind ``name``, following links inside the archive."""
        start = name
        for _ in range(MAX_LINK_DEPTH + 1):  # the name, then up to MAX_LINK_DEPTH links on
            if name in self.files:
                return self.files[name]
            link = self._links.get(name)
            if link is None:
                return None
            name = link[0]
        raise FormatError(f"{self.archive}: link {start!r} goes round in a loop or through more than "
                          f"{MAX_LINK_DEPTH} links")

    def names(self) -> list[str]:
        return sorted([*self.files, *self._links])

    def open(self, member: Member) -> SectionReader:
        return SectionReader(self.f, member.offset, member.size, self._lock)

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
    import tarfile  # writing only: the reader parses headers itself (a reload need not import it)
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mtime = size, kind, 0
    ti.mode = 0o755 if kind == DIRTYPE else 0o644
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
        self._w(_header(name.rstrip("/") + "/", 0, DIRTYPE))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._w(_header(name, len(data), REGTYPE))
        self._w(data)
        self._pad(len(data))

    def begin_file(self, name: str, size: int) -> None:
        """Write a header; the caller then writes exactly ``size`` bytes and calls ``end_file``."""
        self._w(_header(name, size, REGTYPE))

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
    past; with ``seekable`` it is seeked past (a header walk). Every header is checked as
    Go's ``archive/tar`` checks it (ASCII octal or base-256 numbers in range, PAX numbers
    in decimal ASCII, PAX headers at most 1 MiB, sizes >= 0 and within the file when its
    end is known), every step moves forward, and the archive must end with a zero block
    (a second one, or the end of the input, may follow: nothing else). Handles ustar and
    PAX (``path``, ``size``, ``linkpath``); refuses sparse files, GNU long names and volumes.

    With ``layer``, the tar is a layer's content (``import``) and is only walked, to know it
    whole: names are content there (a name given twice replaces the first, as Docker
    unpacks it), so they are neither checked nor held, nor are headers counted (nothing is
    kept per member), and GNU long names, which GNU tar writes, are read past.
    """

    def __init__(self, f: BinaryIO, archive: str, seekable: bool = False, end: int | None = None,
                 layer: bool = False) -> None:
        self.f, self.archive, self.seekable, self.end, self.layer = f, archive, seekable, end, layer
        self._open: _Bounded | None = None
        self._pad = 0
        self._first = True  # the first header tells a tar from something else
        self._headers = 0
        self._pos = 0  # bytes consumed so far (headers, data, padding)
        self._kinds: dict[str, bool] = {}  # every name placed so far, and its parents: is a directory
        self._name_bytes = 0

    @property
    def consumed(self) -> int:
        """Bytes of the archive behind the reader: where the next header starts."""
        return self._pos + self._pad

    def _read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            if self._first and (not data or looks_like(data) != "binary data"):
                raise FormatError(f"{self.archive}: not a tar archive (it looks like {looks_like(data)})")
            if self._first:
                raise FormatError(f"{self.archive}: truncated, or not a tar archive: it ends after "
                                  f"{len(data)} bytes, inside the first tar header (it looks like "
                                  f"{looks_like(data)})")
            if n == BLOCK and data.count(0) == len(data):
                raise FormatError(f"{self.archive}: truncated: the archive ends "
                                  + ("inside its end-of-archive marker" if data else
                                     "without its end-of-archive marker (two zero blocks)"))
            raise FormatError(f"{self.archive}: truncated: the stream ends inside a tar header")
        self._pos += n
        return data

    def _finish(self) -> None:
        """Skip what the caller did not read of the last member, and its padding."""
        left = self._open.left if self._open else 0
        if self.seekable:
            if left + self._pad:
                self.f.seek(left + self._pad, os.SEEK_CUR)
            self._pos += self._pad
            self._open, self._pad = None, 0
            return
        if self._open is not None:
            view = memoryview(bytearray(min(self._open.left, 1 << 20)))  # one buffer, read into
            while self._open.left:
                if not self._open.readinto(view[:self._open.left]):
                    raise FormatError(f"{self.archive}: truncated: the stream ends inside a member")
            self._open = None
        if self._pad:
            self._read(self._pad)
            self._pad = 0

    def _trailer(self) -> None:
        """After the first zero block: a second one, or the end of the input."""
        rest = self.f.read(BLOCK)
        if rest and (len(rest) < BLOCK or rest.count(0) != BLOCK):
            raise FormatError(f"{self.archive}: truncated or damaged: the archive ends inside its "
                              "end-of-archive marker (two zero blocks)")

    def next(self) -> Header | None:
        self._finish()
        pax: dict[str, str] = {}
        while True:
            start = self._pos
            block = self._read(BLOCK)
            if block.count(0) == BLOCK:
                self._trailer()
                return None  # the end-of-archive marker
            self._headers += 1
            if self._headers > MAX_MEMBERS and not self.layer:
                raise FormatError(f"{self.archive}: more than {MAX_MEMBERS} tar headers; "
                                  "no image archive has that many")
            h = self._header(block)
            self._first = False
            size = h.size
            special = self.layer and h.type in (GNU_LONGNAME, GNU_LONGLINK)
            if h.type in (XHDTYPE, XGLTYPE) or special:
                if size > MAX_PAX:
                    raise FormatError(f"{self.archive}: a {'GNU long name' if special else 'PAX extended header'} "
                                      f"of {size} bytes at offset {start}; at most {MAX_PAX} are allowed")
                records = self._read(size + (-size % BLOCK))[:size]
                if h.type == XHDTYPE:
                    pax.update(_pax_records(records, self.archive))
                elif h.type == XGLTYPE:
                    _pax_records(records, self.archive)
                continue
            if h.type in (GNU_LONGNAME, GNU_LONGLINK):
                raise FormatError(f"{self.archive}: GNU long-name headers are not used in bundles")
            kind = _REFUSED_TYPES.get(h.type)
            if kind is not None or any(k.startswith("GNU.sparse") for k in pax):
                raise FormatError(f"{self.archive}: member {h.name!r} is {kind or 'a sparse file'}; "
                                  "airgap refuses it (tar readers disagree on its bytes)")
            if pax:
                name = pax.get("path", h.name)
                size = _pax_number(pax["size"], "size", name, self.archive) if "size" in pax else size
                h = h._replace(name=name, linkname=pax.get("linkpath", h.linkname), size=size)
            if h.type == AREGTYPE and h.name.endswith("/"):  # a directory, as old tars wrote one (Go: by the
                h = h._replace(type=DIRTYPE)                 # name its PAX records give, tarfile: the name field)
            if h.size and h.type in _HEADER_ONLY:  # Go and tarfile read no data after it, a naive reader would
                raise FormatError(f"{self.archive}: member {h.name!r} is a {_KINDS.get(h.type, 'link')} with a "
                                  f"size of {h.size} bytes; tar readers disagree on what follows it")
            self._check_size(h)
            if h.size:
                self._open = _Bounded(self.f, h.size)
                self._pad = -h.size % BLOCK
                self._pos += h.size  # counted as read: the caller reads it, or _finish skips it
            if self._pos <= start:  # cannot happen with the checks above; never loop on input
                raise FormatError(f"{self.archive}: damaged tar header at offset {start}")
            if not self.layer:
                h = h._replace(name=self._place(h))
            return h

    def _place(self, ti: Header) -> str:
        """The member's clean name, once it is known to name one thing: a name given twice
        (directories aside), a name that is a file and a directory, or a member under a
        file or link is refused. Docker's untar lets the later member replace the earlier
        one, so what it loads would not be what airgap checked."""
        name = clean_name(ti.name, self.archive)
        is_dir = ti.isdir()
        if not name:
            if is_dir:
                return name  # the archive's root, "./"
            raise FormatError(f"{self.archive}: member {ti.name!r} has no name")
        if len(name) > MAX_NAME:
            raise FormatError(f"{self.archive}: member name of {len(name)} bytes ({name[:60]!r}…); "
                              f"at most {MAX_NAME} are allowed")
        known = self._kinds.get(name)
        if known is not None and not (known and is_dir):
            raise FormatError(f"{self.archive}: duplicate member {name!r}"
                              + ("" if known == is_dir else " (a directory and a file)"))
        parent = name
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            kind = self._kinds.get(parent)
            if kind:
                break  # its own parents were placed with it
            if kind is not None:
                raise FormatError(f"{self.archive}: member {name!r} lies under {parent!r}, which is not "
                                  "a directory")
            self._place_name(parent, True)
        self._place_name(name, is_dir)
        return name

    def _place_name(self, name: str, is_dir: bool) -> None:
        self._name_bytes += len(name)
        if self._name_bytes > MAX_NAME_BYTES:
            raise FormatError(f"{self.archive}: more than {MAX_NAME_BYTES >> 20} MiB of member names; "
                              "no image archive has that many")
        self._kinds[name] = is_dir

    def _check_size(self, ti: Header) -> None:
        if ti.size < 0 or ti.size > MAX_MEMBER_SIZE:
            raise FormatError(f"{self.archive}: member {ti.name!r} has an impossible size {ti.size}")
        if self.end is not None and self._pos + ti.size > self.end:
            raise FormatError(f"{self.archive}: truncated: member {ti.name!r} needs {ti.size} bytes "
                              f"at offset {self._pos}, the file has {self.end}")

    def _header(self, block: bytes) -> Header:
        """A header block as Go's ``archive/tar`` reads it: every number field valid, the
        checksum right (signed or unsigned, as old tars summed), a ustar name prefix joined."""
        magic = block[257:262] == b"ustar"
        numbers: dict[str, int] = {}
        for field, lo, hi in (*_NUMERIC_FIELDS, *(_DEVICE_FIELDS if magic else ()), ("checksum", 148, 156)):
            value = _numeric(block[lo:hi])
            if value is None:
                problem = f"the {field} field is not a valid number"
                break
            numbers[field] = value
        else:
            rest = block[:148] + block[156:]
            unsigned = 256 + sum(rest)  # the checksum field itself counts as eight spaces
            signed = unsigned - 256 * (len(rest) - len(rest.translate(None, _HIGH)))
            if numbers["checksum"] in (unsigned, signed):
                return self._fields(block, numbers["size"])
            problem = "bad checksum"
        if self._first and not magic:  # no tar magic either
            raise FormatError(f"{self.archive}: not a tar archive (it looks like {looks_like(block)})")
        raise FormatError(f"{self.archive}: damaged tar header at offset {self._pos - BLOCK}: {problem}")

    @staticmethod
    def _fields(block: bytes, size: int) -> Header:
        name = block[:100].split(b"\0", 1)[0]
        kind = block[156:157]
        if kind not in _GNU_TYPES:  # the name prefix as Go reads it
            prefix = block[345:476 if block[508:512] == b"tar\0" else 500]  # star keeps times after 131
            prefix = prefix.split(b"\0", 1)[0] if block[257:263] == b"ustar\0" else b""  # GNU, V7: none
            name = prefix + b"/" + name if prefix else name
        return Header(name.decode("utf-8", "surrogateescape"), kind, size,
                      block[157:257].split(b"\0", 1)[0].decode("utf-8", "surrogateescape"))

    def data(self) -> _Bounded:
        """The bytes of the member ``next()`` returned last."""
        assert self._open is not None, "no member open"
        return self._open


def _numeric(field: bytes) -> int | None:
    """A numeric header field as Go reads it, or None when it is not a number."""
    if field and field[0] & 0x80:  # base-256 (GNU): 0x80 positive, 0xff negative
        if field[0] not in (0x80, 0xFF):
            return None
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        return value - (1 << (8 * len(field) - 1)) if field[0] == 0xFF else value
    digits = field.strip(b" \x00")
    if digits.strip(b"01234567"):
        return None
    return int(digits, 8) if digits else 0


def _pax_number(value: str, key: str, name: str, archive: str) -> int:
    raw = value.encode("utf-8", "surrogateescape")
    if not raw.isdigit() or len(raw) > 19:  # bytes.isdigit: ASCII digits, at least one
        raise FormatError(f"{archive}: member {name!r}: PAX {key} {value!r} is not a decimal number")
    return int(raw)


def _pax_records(data: bytes, archive: str) -> dict[str, str]:
    """``LEN KEY=VALUE\\n`` records, strictly: LEN in decimal ASCII and exactly the record."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding after the last record, and nothing else
            if data.count(0, pos) != len(data) - pos:
                raise FormatError(f"{archive}: damaged PAX header (data after its padding)")
            break
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit():
            raise FormatError(f"{archive}: damaged PAX header (bad record length)")
        length = int(digits)
        end = pos + length
        if length < len(digits) + 4 or end > len(data) or data[end - 1:end] != b"\n":
            raise FormatError(f"{archive}: damaged PAX header (a record of {length} bytes does not fit)")
        key, eq, value = data[space + 1:end - 1].partition(b"=")
        if not eq or not key:
            raise FormatError(f"{archive}: damaged PAX header (a record without key=value)")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos = end
    return out
