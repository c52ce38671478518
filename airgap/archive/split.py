"""Split bundles for removable media: ``FILE.001``, ``FILE.002``, … and ``FILE.sha256``.

The parts are plain byte ranges of the one tar, so ``cat FILE.0* | docker load`` works.
``FILE.sha256`` is in ``sha256sum`` format, so ``sha256sum -c FILE.sha256`` works too.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

from ..digest import CHUNK, Hasher
from ..errors import FormatError, NotFound, UsageError
from ..words import plural

FAT32_MAX = 4 * 1024 ** 3 - 1
MAX_PARTS = 999
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
_PART = re.compile(r"^(?P<base>.+)\.(?P<n>[0-9]{3})$")


def parse_size(text: str) -> int:
    """``4G``, ``700M``, ``123456`` (bytes; K/M/G/T are powers of 1024) or ``fat32``."""
    if text.lower() == "fat32":
        return FAT32_MAX
    m = re.fullmatch(r"([0-9]+)([KMGT]?)(i?B)?", text.strip(), re.I)
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"invalid --split size {text!r}: use e.g. 4G, 700M or fat32")
    size = int(m.group(1)) * _UNITS[m.group(2).upper()]
    if size < 1024 * 1024:
        raise UsageError(f"--split {text}: parts must be at least 1M")
    return size


def part_name(base: Path, n: int) -> Path:
    return base.with_name(f"{base.name}.{n:03d}")


class SplitWriter:
    """Writes consecutive parts as temp files; ``commit`` renames them into place and writes
    ``FILE.sha256``; ``abort`` removes them."""

    def __init__(self, base: Path, part_size: int) -> None:
        self.base, self.part_size = base, part_size
        self.parts: list[tuple[Path, Path, str]] = []  # (temp, final, sha256 hex)
        self._f: Any = None
        self._h: Any = None
        self._left = 0

    def _rotate(self) -> None:
        self._finish_part()
        final = part_name(self.base, len(self.parts) + 1)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        self._f = open(tmp, "wb")
        self._h = Hasher()
        self._left = self.part_size
        self.parts.append((tmp, final, ""))

    def _finish_part(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            tmp, final, _ = self.parts[-1]
            self.parts[-1] = (tmp, final, self._h.digest()[7:])
            self._f = None

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            if self._f is None or self._left == 0:
                self._rotate()
            n = min(self._left, len(view))
            self._f.write(view[:n])
            self._h.update(view[:n])
            self._left -= n
            view = view[n:]
        return len(data)

    def commit(self) -> list[Path]:
        self._finish_part()
        for tmp, final, _ in self.parts:
            os.replace(tmp, final)
        n = len(self.parts) + 1
        while part_name(self.base, n).exists():  # parts of an older, longer bundle
            part_name(self.base, n).unlink()
            n += 1
        sums = "".join(f"{h}  {final.name}\n" for _, final, h in self.parts)
        (self.base.with_name(self.base.name + ".sha256")).write_text(sums)
        return [final for _, final, _ in self.parts]

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        for tmp, _, _ in self.parts:
            tmp.unlink(missing_ok=True)


def split_base(path: str) -> Path | None:
    """The base name when ``path`` is a part (``FILE.001``) or a split bundle's name."""
    p = Path(path)
    m = _PART.match(p.name)
    if m and p.exists():
        return p.with_name(m.group("base"))
    if not p.exists() and part_name(p, 1).exists():
        return p
    return None


def _part_name(name: str, sums_file: Path) -> str:
    """A part as ``FILE.sha256`` names it: a plain file name beside it, nothing else."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise FormatError(f"{sums_file}: names {name!r}, which is not a file beside it; "
                          "a split bundle's parts sit in one directory")
    return name


def _open_part(path: Path, base: Path, i: int, n: int) -> BinaryIO:
    """Open a part without following links or blocking on a FIFO; it must be a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FormatError(f"{base}: part {path.name} is missing ({i + 1} of {n})") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FormatError(f"{base}: part {path.name} is a symbolic link; parts must be regular "
                              "files") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FormatError(f"{base}: part {path.name} is not a regular file (a device, FIFO or "
                          "directory); parts must be regular files")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def open_split(base: Path) -> tuple[io.RawIOBase, str]:
    """Check every part (against ``FILE.sha256`` when it is there) and join them."""
    sums_file = base.with_name(base.name + ".sha256")
    listed: list[tuple[str, str]] = []
    if sums_file.exists():
        with _open_part(sums_file, base, 0, 1) as f:
            text = f.read(1 << 20).decode("utf-8", "replace")
        for line in text.splitlines()[:MAX_PARTS + 1]:
            hexd, _, name = line.strip().partition("  ")
            if line.strip():
                listed.append((hexd.lower(), _part_name(name.lstrip("*"), sums_file)))
        parts = [base.with_name(name) for _, name in listed]
    else:
        parts = []
        while part_name(base, len(parts) + 1).exists() and len(parts) <= MAX_PARTS:
            parts.append(part_name(base, len(parts) + 1))
    if not parts:
        raise NotFound(f"{base}: no parts found ({part_name(base, 1).name} …)")
    if len(parts) > MAX_PARTS:
        raise FormatError(f"{base}: more than {MAX_PARTS} parts")
    files = []
    try:
        for i, part in enumerate(parts):
            files.append(_open_part(part, base, i, len(parts)))
        for i, (f, part) in enumerate(zip(files, parts)):
            if listed:
                h = Hasher()
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                if h.digest()[7:] != listed[i][0]:
                    raise FormatError(f"{base}: part {part.name} is damaged (its sha256 is not the one "
                                      f"in {sums_file.name})")
    except BaseException:
        for f in files:
            f.close()
        raise
    if listed and part_name(base, len(parts) + 1).exists():
        for f in files:
            f.close()
        raise FormatError(f"{base}: {part_name(base, len(parts) + 1).name} is not listed in {sums_file.name}")
    return JoinedFile(files), f"{base} ({plural(len(parts), 'part')})"


class JoinedFile(io.RawIOBase):
    """Read-only, seekable concatenation of files."""

    def __init__(self, files: list[BinaryIO]) -> None:
        self._files = files
        self._starts: list[int] = []
        total = 0
        for f in self._files:
            self._starts.append(total)
            total += os.fstat(f.fileno()).st_size
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        if self._pos >= self._size:
            return 0
        i = max(k for k, s in enumerate(self._starts) if s <= self._pos)
        while i + 1 < len(self._starts) and self._starts[i + 1] <= self._pos:
            i += 1
        f = self._files[i]
        f.seek(self._pos - self._starts[i])
        end = self._starts[i + 1] if i + 1 < len(self._starts) else self._size
        want = min(len(b), end - self._pos)
        n = f.readinto(memoryview(b)[:want]) or 0  # type: ignore[attr-defined]
        self._pos += n
        return n

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()
