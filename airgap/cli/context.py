"""What every verb needs: the store, the output streams and the progress mode."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from functools import cached_property, wraps

from ..words import is_number, printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..store import Store


def path_arg(text: str) -> str:
    """The argparse type of every argument that names a file or a directory: an empty name
    (``--store "$STORE"`` with the variable unset) is a usage error, never the current
    directory, which is what ``Path("")`` would make of it."""
    return _given(text, "file name")


def name_arg(text: str) -> str:
    """The argparse type of push's SRC and DEST: an empty DEST is a usage error, not "no
    DEST" (which pushes to SRC's own registry: Docker Hub for ``nginx``)."""
    return _given(text, "name")


def _given(text: str, what: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError(f"an empty {what} (is a shell variable unset?)")
    return text


MAX_JOBS = 64


def int_arg(text: str) -> int:
    """The argparse type of a whole number: ASCII digits with an optional ``-``, as Go's
    flag package reads one (``int()`` takes ``３`` and `` 4 ``)."""
    if not is_number(text.removeprefix("-")) or len(text) > 20:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}")
    return int(text)


def jobs_arg(text: str) -> int:
    """The type of ``push --jobs``: 1 to 64 images at once (each holds its upload buffers)."""
    if not is_number(text) or not 1 <= int(text) <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"{text!r}: from 1 to {MAX_JOBS} images at once")
    return int(text)


def store_arg(text: str) -> Path:
    """The type of ``--store``: ``path_arg``, as a Path."""
    return Path(path_arg(text))


class Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = sys.stdout
        self.err = sys.stderr

    @property
    def store_path(self) -> Path:
        from ..store import default_store_path
        return Path(self.args.store or default_store_path())

    def refuse_inside_store(self, path: str, flag: str) -> None:
        """A file airgap is asked to write (``save -o``, ``inventory -o``) must not be in the
        store's directory: a bundle renamed onto ``index.json`` or a blob would destroy the
        store (links are followed: a link into the store is refused too)."""
        import os
        root = os.path.realpath(self.store_path)
        target = os.path.realpath(path)
        if target == root or target.startswith(root.rstrip("/") + "/"):
            from ..errors import UsageError
            raise UsageError(f"{flag} {path} is inside the store ({root}), which only airgap "
                             "writes; write it elsewhere")

    @cached_property
    def store(self) -> Store:
        from ..store import Store
        return Store(self.store_path, on_wait=self.info)

    @property
    def progress_mode(self) -> str:
        if getattr(self.args, "quiet", False):
            return "none"
        mode: str = self.args.progress
        if mode == "auto" and not self.err.isatty():
            return "none"
        return mode

    def print(self, *parts: object) -> None:
        print(*parts, file=self.out)

    def info(self, *parts: object) -> None:
        """A message on stderr; names from an archive in it cannot reach the terminal as
        control sequences."""
        self.err.write(printable(" ".join(str(p) for p in parts)) + "\n")


READ_ATTEMPTS = 3


def stable_read(verb: Callable[[Context, argparse.Namespace], int]) -> Callable[[Context, argparse.Namespace], int]:
    """A verb that reads the store without its lock (images, inspect, system df, search:
    a load holds the lock for minutes, and Docker lists images during one) and prints only
    when it has read everything. An rmi or prune that removes what it read (it rewrites
    ``index.json`` first, then removes blobs) makes it read the store again, up to
    READ_ATTEMPTS times, instead of reporting damage; an error with the index unchanged is
    the store's own."""
    @wraps(verb)
    def run(ctx: Context, args: argparse.Namespace) -> int:
        from ..errors import AirgapError
        for attempt in range(1, READ_ATTEMPTS + 1):
            stamp = ctx.store.index_stamp()
            try:
                return verb(ctx, args)
            except AirgapError:
                if attempt == READ_ATTEMPTS or ctx.store.index_stamp() == stamp:
                    raise
        raise AssertionError("unreachable")
    return run
