"""The C library calls os lacks, found through one lookup (airgap.libc)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest


def test_an_anonymous_file_is_linked_by_linkat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """linkat(AT_EMPTY_PATH), the way where /proc/self/fd cannot link (here: EXDEV), gives
    the anonymous file its name, and never replaces a name that exists."""
    from airgap.store import layout
    assert layout._tmpfile_works(tmp_path) in ("proc", "empty")  # the probe found a way
    monkeypatch.setattr(layout, "_FLINK", "empty")
    fd = os.open(tmp_path, os.O_TMPFILE | os.O_RDWR, 0o600)
    try:
        os.write(fd, b"verified bytes")
        layout._flink(fd, tmp_path / "blob")
        with pytest.raises(OSError) as taken:
            layout._flink(fd, tmp_path / "blob")
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == b"verified bytes"
    assert taken.value.errno == errno.EEXIST and str(tmp_path / "blob") in str(taken.value)


def test_writeback_and_memory_trim_find_their_calls() -> None:
    """glibc (Debian) has both: the writeback of a load is started, the compressor's
    arenas given back. Elsewhere each is skipped, never an error."""
    from airgap import compress, writeback
    from airgap.libc import libc
    assert libc() is not None and writeback._sync_file_range() is not None
    compress._give_back_memory()
