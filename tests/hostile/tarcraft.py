"""Tar headers written by hand, fields and all: what tarfile would never produce."""

from __future__ import annotations

from collections.abc import Iterator


def header(name: bytes, *, size: bytes | None = None, typeflag: bytes = b"0", size_int: int = 0,
           linkname: bytes = b"", magic: bytes = b"ustar\x0000", chksum: bytes | None = None,
           prefix: bytes = b"", tail: bytes = b"", devmajor: bytes = b"") -> bytes:
    """One 512-byte header; ``size`` is the raw 12-byte field (octal, base-256, junk);
    ``prefix`` at 345 (ustar's name prefix, GNU's atime and ctime), ``tail`` at 508,
    ``devmajor`` the raw field at 329."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\x00"
    h[108:116] = b"0000000\x00"
    h[116:124] = b"0000000\x00"
    h[124:136] = size if size is not None else f"{size_int:011o}\x00".encode()
    h[136:148] = b"00000000000\x00"
    h[156:157] = typeflag
    h[157:157 + len(linkname)] = linkname
    h[257:265] = magic
    h[329:329 + len(devmajor)] = devmajor
    h[345:345 + len(prefix)] = prefix
    h[508:508 + len(tail)] = tail
    h[148:156] = b"        "
    h[148:156] = chksum if chksum is not None else f"{sum(h):06o}\x00 ".encode()
    return bytes(h)


def base256(value: int) -> bytes:
    """A 12-byte base-256 (GNU) number; negative values in two's complement."""
    raw = (value % (1 << 95)).to_bytes(12, "big")
    return bytes([0x80 | raw[0] | (0x7F if value < 0 else 0)]) + raw[1:] if value < 0 \
        else bytes([0x80]) + value.to_bytes(11, "big")


def member(name: bytes, data: bytes, typeflag: bytes = b"0") -> bytes:
    return header(name, size_int=len(data), typeflag=typeflag) + data + b"\0" * (-len(data) % 512)


def pax(records: dict[bytes, bytes], typeflag: bytes = b"x") -> bytes:
    body = b""
    for k, v in records.items():
        rec = b" " + k + b"=" + v + b"\n"
        n = len(rec) + 1
        while len(str(n).encode()) + len(rec) != n:
            n = len(str(n).encode()) + len(rec)
        body += str(n).encode() + rec
    return header(b"PaxHeader", size_int=len(body), typeflag=typeflag) + body + b"\0" * (-len(body) % 512)


END = b"\0" * 1024


def tiny_members(n: int) -> Iterator[bytes]:
    """``n`` empty regular members with distinct names, fast (a template and its checksum)."""
    template = bytearray(header(b"", size_int=0))
    template[148:156] = b"        "
    base = sum(template)
    for i in range(n):
        name = f"m/{i:09d}".encode()
        h = bytearray(template)
        h[0:len(name)] = name
        h[148:156] = f"{base + sum(name):06o}\x00 ".encode()
        yield bytes(h)
