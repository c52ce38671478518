"""Split bundles for removable media: ``FILE.001``, ``FILE.002``, … and ``FILE.sha256``.

The parts are plain byte ranges of the one tar, so ``cat FILE.0* | docker load`` works.
``FILE.sha256`` is in ``sha256sum`` format, so ``sha256sum -c FILE.sha256`` works too.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import stat
from pathlib import Path

from ..digest import Hasher, copy_verified, hashes_to
from ..errors import AirgapError, FormatError, IntegrityError, NotFound, UsageError
from ..words import is_number, plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

FAT32_MAX = 4 * 1024 ** 3 - 1
MAX_PARTS = 999
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
_SUM_LINE = r"(?P<hex>[0-9A-Fa-f]{64}) [ *](?P<name>.+)"


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
    """Writes consecutive parts; ``commit`` renames them into place and writes
    ``FILE.sha256``.

    Resumable: each part, once whole, is fsynced and kept as ``.FILE.NNN.part`` with its
    sha256 in ``.FILE.resume`` (keyed by the bundle: its ``bundle.json`` and signature).
    A save interrupted after some parts were whole leaves them; the same save run again
    (a bundle's bytes are reproducible) checks each kept part on disk against the
    journal, skips writing it, and checks that the bytes it would have written hash the
    same. ``abort`` removes only the part that was being written.

    One split save at a time writes in a directory (an ``flock`` on the directory, held
    from here to ``commit`` or ``abort``): two saves of one name would share the hidden
    part names and write over each other's parts.
    """

    def __init__(self, base: Path, part_size: int) -> None:
        self._lock = _lock_directory(base.parent)
        self.base, self.part_size = base, part_size
        self.journal = base.with_name(f".{base.name}.resume")
        self.key = ""                    # the bundle these parts belong to
        self.done: dict[int, str] = {}   # part number -> sha256 hex of the whole part
        self.kept: dict[int, str] = {}   # parts an interrupted save left, checked on disk
        self.count = 0                   # parts begun
        self._f: Any = None
        self._h: Any = None
        self._left = 0

    def _hidden(self, n: int, suffix: str) -> Path:
        return self.base.with_name(f".{part_name(self.base, n).name}.{suffix}")

    def resume(self, key: str) -> int:
        """Take the whole parts an interrupted save of the same bundle left; their count."""
        self.key = key
        try:
            with open(self.journal, "rb") as f:
                doc = json.loads(f.read(1 << 20))
            ok = (isinstance(doc, dict) and doc.get("key") == key and doc.get("partSize") == self.part_size
                  and isinstance(doc.get("parts"), dict))
        except (OSError, ValueError):
            ok = False
        if not ok:
            self._forget()
            return 0
        for text, want in sorted(doc["parts"].items()):
            if not (isinstance(text, str) and is_number(text) and isinstance(want, str)):
                continue
            n = int(text)
            path = self._hidden(n, "part")
            if 0 < n <= MAX_PARTS and _whole(path, self.part_size, want):
                self.kept[n] = self.done[n] = want
            else:
                path.unlink(missing_ok=True)
        return len(self.kept)

    def _forget(self) -> None:
        """Parts of another bundle (or of none): not ours to keep."""
        for n in range(1, MAX_PARTS + 1):
            path = self._hidden(n, "part")
            if not path.exists():
                break
            path.unlink()
        self.journal.unlink(missing_ok=True)

    def _rotate(self) -> None:
        self._finish_part()
        self.count += 1
        if self.count > MAX_PARTS:  # save checks the estimate first; never write FILE.1000
            raise AirgapError(f"{self.base}: the bundle needs more than {MAX_PARTS} parts of "
                              f"{self.part_size} bytes; use larger parts")
        self._h = Hasher()
        self._left = self.part_size
        if self.count not in self.kept:
            from ..newfile import create  # the writer's modules: a load of a bundle never needs them
            from ..writeback import WritebackFile
            self._f = WritebackFile(open(create(self._hidden(self.count, "tmp")), "wb"))

    def _finish_part(self) -> None:
        if self._h is None:
            return
        n, got = self.count, self._h.digest()[7:]
        self._h = None
        if n in self.kept:
            if got != self.kept[n]:
                raise AirgapError(f"{self.base}: part {n} kept from an interrupted save is not what this "
                                  f"save writes; delete the kept parts (.{self.base.name}.NNN.part) and save again")
            return
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._f = None
        os.replace(self._hidden(n, "tmp"), self._hidden(n, "part"))
        self.done[n] = got
        if self._left == 0:  # a whole part: kept even if the save is interrupted later
            self._write_journal()

    def _write_journal(self) -> None:
        """Only whole parts are done before commit."""
        doc = {"key": self.key, "partSize": self.part_size, "parts": {str(n): h for n, h in self.done.items()}}
        from ..newfile import replace
        replace(self.journal, json.dumps(doc).encode(), self.journal.with_name(self.journal.name + ".tmp"))

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            if self._h is None or self._left == 0:
                self._rotate()
            n = min(self._left, len(view))
            if self._f is not None:
                self._f.write(view[:n])
            self._h.update(view[:n])
            self._left -= n
            view = view[n:]
        return len(data)

    def commit(self) -> list[Path]:
        self._finish_part()
        finals = [part_name(self.base, n) for n in range(1, self.count + 1)]
        for n, final in enumerate(finals, 1):
            os.replace(self._hidden(n, "part"), final)
        n = self.count + 1
        while part_name(self.base, n).exists():  # parts of an older, longer bundle
            part_name(self.base, n).unlink()
            n += 1
        sums = "".join(f"{self.done[i]}  {final.name}\n" for i, final in enumerate(finals, 1))
        from ..newfile import replace
        replace(self.base.with_name(self.base.name + ".sha256"), sums.encode(),
                self._hidden(0, "tmp"))  # .FILE.000.tmp: no part has number 0
        self.journal.unlink(missing_ok=True)
        self._unlock()
        return finals

    def abort(self) -> None:
        """Remove the part being written; whole parts stay for the next run."""
        try:
            if self._f is not None:
                self._f.close()
                self._f = None
            self._hidden(self.count, "tmp").unlink(missing_ok=True)
            if not self.done and not self.kept:
                self.journal.unlink(missing_ok=True)
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1


def _lock_directory(directory: Path) -> int:
    """An exclusive ``flock`` on ``directory`` (its descriptor), or -1 where the filesystem
    has none; another split save holding it is said at once, not waited for."""
    import fcntl
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:  # a directory one may write but not read (a drop box): unlocked; a missing
        return -1    # one is said where the parts are written
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AirgapError(f"{directory}: another airgap save is writing split parts in this directory; "
                          "wait for it to end, or save elsewhere") from None
    except OSError:  # no flock here (some network filesystems): as before, unlocked
        os.close(fd)
        return -1
    return fd


def _whole(path: Path, size: int, want: str) -> bool:
    """Whether a kept part is on disk, of its size, with the sha256 the journal recorded."""
    return hashes_to(path, f"sha256:{want}", size)


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
    from .named import open_named
    return open_named(fd, str(path))


def open_split(base: Path) -> tuple[JoinedFile, str]:
    """Open every part and join them. Parts listed in ``FILE.sha256`` are checked against
    it as they are read (``JoinedFile``): one read of every volume, not two."""
    sums_file = base.with_name(base.name + ".sha256")
    listed: list[tuple[str, str]] = []
    named: set[str] = set()
    if sums_file.exists() or sums_file.is_symlink():  # a dangling link is refused, not skipped
        with _open_part(sums_file, base, 0, 1) as f:
            text = f.read(1 << 20).decode("utf-8", "replace")
        for i, line in enumerate(text.splitlines()[:MAX_PARTS + 1], 1):
            if not line.strip():
                continue
            m = re.fullmatch(_SUM_LINE, line.rstrip("\r"))  # "HEX  NAME", or "HEX *NAME" (sha256sum -b)
            if m is None:
                raise FormatError(f"{sums_file}: line {i} is not a sha256sum line (HEX  NAME): "
                                  f"{line[:80]!r}")
            name = _part_name(m.group("name"), sums_file)
            if name in named:  # the same bytes twice: not a bundle's parts
                raise FormatError(f"{sums_file}: names {name!r} twice (line {i}); each part is listed once")
            named.add(name)
            listed.append((m.group("hex").lower(), name))
        parts = [base.with_name(name) for _, name in listed]
    else:
        parts = []
        while part_name(base, len(parts) + 1).exists() and len(parts) <= MAX_PARTS:
            parts.append(part_name(base, len(parts) + 1))
    if not parts:
        raise NotFound(f"{base}: no parts found ({part_name(base, 1).name} …)")
    if len(parts) > MAX_PARTS:
        raise FormatError(f"{base}: more than {MAX_PARTS} parts")
    if listed and part_name(base, len(parts) + 1).exists():
        raise FormatError(f"{base}: {part_name(base, len(parts) + 1).name} is not listed in {sums_file.name}")
    files = []
    try:
        for i, part in enumerate(parts):
            files.append(_open_part(part, base, i, len(parts)))
    except BaseException:
        for f in files:
            f.close()
        raise
    check = [(h, part.name, sums_file.name) for (h, _), part in zip(listed, parts)] if listed else None
    return JoinedFile(files, check, str(base)), f"{base} ({plural(len(parts), 'part')})"


class _PartCheck:
    """A part's sha256, computed from the bytes as they are read, in order."""

    def __init__(self, want: str, name: str, sums: str, size: int) -> None:
        self.want, self.name, self.sums, self.size = want, name, sums, size
        self.hasher: Hasher | None = Hasher()  # None: a seek skipped some of its bytes
        self.done = 0  # bytes hashed from the part's start

    def feed(self, offset: int, data: memoryview) -> bool:
        """Take the bytes read at ``offset``; True when the part is then complete."""
        if self.hasher is None:
            return False
        if offset > self.done:  # a seek jumped over bytes: this part cannot be checked
            self.hasher = None
            return False
        new = data[self.done - offset:]
        if new:
            self.hasher.update(new)
            self.done += len(new)
        return self.done == self.size

    def damaged(self) -> bool:
        return self.hasher is not None and self.hasher.digest()[7:] != self.want


class JoinedFile(io.RawIOBase):
    """Read-only, seekable concatenation of files.

    With ``check`` (each part's sha256 from ``FILE.sha256``) every part read through from
    its start to its end is checked as its last byte is read, and a damaged one is refused
    by name (a foreign archive, spooled in one read). A part whose bytes a seek skipped is
    left unchecked. A part that shrinks while it is read is refused by name. ``lazy()`` stops that: a signed bundle checks every byte that matters
    against its own digests, so the parts are hashed only when something fails, to name
    the damaged one (``damaged_part``): one sha256 per byte, not two, on the way."""

    def __init__(self, files: list[BinaryIO], check: list[tuple[str, str, str]] | None = None,
                 name: str = "") -> None:
        self._files = files
        self._name = name
        self._starts: list[int] = []
        total = 0
        sizes = []
        for f in self._files:
            self._starts.append(total)
            sizes.append(os.fstat(f.fileno()).st_size)
            total += sizes[-1]
        self._size = total
        self._pos = 0
        self._checks = [_PartCheck(want, part, sums, size)
                        for (want, part, sums), size in zip(check, sizes)] if check else []
        self._eager = True

    def lazy(self) -> None:
        """Hash parts only to name a damaged one, after an error (``damaged_part``)."""
        self._eager = False

    @property
    def size(self) -> int:
        return self._size

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

    def _part_at(self, pos: int) -> int:
        from bisect import bisect_right  # volumes only: a file's load never needs it
        return bisect_right(self._starts, pos) - 1

    def readinto(self, b: Any) -> int:
        if self._pos >= self._size:
            return 0
        i = self._part_at(self._pos)
        f = self._files[i]
        offset = self._pos - self._starts[i]
        f.seek(offset)
        end = self._starts[i + 1] if i + 1 < len(self._starts) else self._size
        want = min(len(b), end - self._pos)
        view = memoryview(b)[:want]
        n = f.readinto(view) or 0  # type: ignore[attr-defined]
        if n == 0 and want:
            raise FormatError(f"{self._name}: part {self._part_name(i)} shrank while it was read")
        self._pos += n
        if self._eager and self._checks and self._checks[i].feed(offset, view[:n]) and self._checks[i].damaged():
            raise self._damaged(i)
        return n

    def _part_name(self, i: int) -> str:
        return self._checks[i].name if self._checks else f"#{i + 1}"

    def _damaged(self, i: int) -> FormatError:
        c = self._checks[i]
        return FormatError(f"{self._name}: part {c.name} is damaged (its sha256 is not the one in {c.sums})")

    def damaged_part(self, since: int = 0) -> FormatError | None:
        """The error naming a damaged part among those holding bytes ``since`` .. the
        last byte read (the member being read when an error came), else None. Each is
        read again whole to tell: an error path, bounded by the member's size."""
        if not self._checks or self._pos == 0:
            return None
        first, last = self._part_at(min(since, self._pos - 1)), self._part_at(self._pos - 1)
        for i in range(first, last + 1):
            c = self._checks[i]
            f = self._files[i]
            f.seek(0)
            try:
                copy_verified(f, None, expected=f"sha256:{c.want}", size=c.size, what=c.name)
            except IntegrityError:  # another sha256, or the part is shorter now
                return self._damaged(i)
        return None

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()
