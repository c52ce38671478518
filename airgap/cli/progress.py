"""Progress on stderr: tqdm bars on a terminal, plain periodic lines, or nothing."""

from __future__ import annotations

import sys
import time

from ..copy import Progress
from ..digest import short_id
from ..oci import Descriptor
from ..transports.base import ProgressFn
from .format import human_size
from ..words import plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class BarProgress(Progress):
    """An overall byte bar and one bar for the blob being copied."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.total: Any = None

    def begin(self, total_bytes: int, blobs: int) -> None:
        from tqdm import tqdm
        self.total = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"{self.verb} {plural(blobs, 'blob')}", file=sys.stderr, position=0,
                          leave=True, dynamic_ncols=True)

    def blob(self, desc: Descriptor, label: str) -> ProgressFn | None:
        from tqdm import tqdm
        bar = tqdm(total=desc.size, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=short_id(desc.digest), file=sys.stderr, leave=False,
                   dynamic_ncols=True)
        total = self.total

        def update(n: int) -> None:
            bar.update(n)
            total.update(n)
            if bar.n >= desc.size:
                bar.close()
        return update

    def end(self) -> None:
        if self.total is not None:
            self.total.close()


class PlainProgress(Progress):
    """A line per blob and, for long copies, a line every few seconds."""

    INTERVAL = 2.0

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.done = 0
        self.total_bytes = 0
        self.last = 0.0

    def begin(self, total_bytes: int, blobs: int) -> None:
        self.total_bytes = total_bytes
        sys.stderr.write(f"{self.verb}: {plural(blobs, 'blob')}, {human_size(total_bytes)}\n")

    def skipped(self, desc: Descriptor, label: str) -> None:
        sys.stderr.write(f"{short_id(desc.digest)}: already present\n")

    def blob(self, desc: Descriptor, label: str) -> ProgressFn | None:
        seen = 0

        def update(n: int) -> None:
            nonlocal seen
            seen += n
            self.done += n
            now = time.monotonic()
            if seen >= desc.size or now - self.last >= self.INTERVAL:
                self.last = now
                pct = 100 * self.done // self.total_bytes if self.total_bytes else 100
                state = "done" if seen >= desc.size else f"{human_size(seen)}/{human_size(desc.size)}"
                sys.stderr.write(f"{short_id(desc.digest)}: {state} (total {pct}%)\n")
        return update


def make_progress(mode: str, verb: str) -> Progress:
    if mode == "auto":
        return BarProgress(verb)
    if mode == "plain":
        return PlainProgress(verb)
    return Progress()


class ReadProgress:
    """Bytes read from a pipe so far, and the rate: the size of a pipe is not known."""

    INTERVAL = 2.0

    def __init__(self, mode: str, verb: str) -> None:
        self.mode, self.verb = mode, verb
        self.done = 0
        self.start = self.last = time.monotonic()
        self.bar: Any = None

    def update(self, n: int) -> None:
        self.done += n
        if self.mode == "auto":
            if self.bar is None:
                from tqdm import tqdm
                self.bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc=f"{self.verb} stdin",
                                file=sys.stderr, leave=False, dynamic_ncols=True)
            self.bar.update(n)
        elif self.mode == "plain":
            now = time.monotonic()
            if now - self.last >= self.INTERVAL:
                self.last = now
                sys.stderr.write(f"{self.verb} stdin: {human_size(self.done)} so far "
                                 f"({self._rate(now)})\n")

    def _rate(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-6)
        return f"{human_size(self.done / elapsed)}/s"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.mode == "plain" and self.done:
            now = time.monotonic()
            sys.stderr.write(f"{self.verb} stdin: {human_size(self.done)} read so far ({self._rate(now)})\n")


def make_read_progress(mode: str, verb: str) -> ReadProgress:
    return ReadProgress(mode, verb)
