"""Property tests (Hypothesis): the tar reader and the reference parser, on anything."""

from __future__ import annotations

import io
import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from airgap.archive.tar import TarIndex, TarStream, TarWriter
from airgap.errors import AirgapError, FormatError
from airgap.reference import parse_reference

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=40).filter(
    lambda s: s not in (".", "..") and not s.startswith("."))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(NAMES, st.binary(max_size=2000), min_size=1, max_size=8))
def test_tar_round_trip(files: dict[str, bytes]) -> None:
    """What TarWriter writes, both readers read back exactly, and so does tarfile."""
    out = io.BytesIO()
    w = TarWriter(out)
    for name, data in sorted(files.items()):
        w.add_bytes(f"blobs/{name}", data)
    w.close()
    raw = out.getvalue()
    idx = TarIndex(io.BytesIO(raw), "t.tar")
    assert {n: idx.read(n, 1 << 20) for n in idx.names()} == {f"blobs/{k}": v for k, v in files.items()}
    ts = TarStream(io.BufferedReader(io.BytesIO(raw)), "t.tar")
    got = {}
    while (m := ts.next()) is not None:
        got[m.name] = ts.data().read() if m.size else b""
    assert got == {f"blobs/{k}": v for k, v in files.items()}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        assert sorted(tf.getnames()) == sorted(got)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_tar_readers_on_arbitrary_bytes(data: bytes) -> None:
    """Any bytes: a result or the project's own error, never another exception or a hang."""
    try:
        TarIndex(io.BytesIO(data), "x.tar")
    except FormatError:
        pass
    ts = TarStream(io.BufferedReader(io.BytesIO(data)), "x.tar")
    try:
        for _ in range(len(data) // 512 + 2):  # every step reads a header: it must end
            m = ts.next()
            if m is None:
                break
            if m.size:
                ts.data().read()
    except FormatError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=2047), st.integers(min_value=0, max_value=255))
def test_tar_reader_on_damaged_archives(payload: bytes, at: int, value: int) -> None:
    """A real archive with one byte changed: read, or refused with FormatError."""
    out = io.BytesIO()
    w = TarWriter(out)
    w.add_bytes("blobs/a", payload)
    w.close()
    raw = bytearray(out.getvalue())
    raw[at % len(raw)] = value
    try:
        TarIndex(io.BytesIO(bytes(raw)), "x.tar")
    except FormatError:
        pass


COMPONENT = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)?", fullmatch=True)
TAG = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(COMPONENT, min_size=1, max_size=3), st.none() | TAG,
       st.none() | st.from_regex(r"[a-f0-9]{64}", fullmatch=True),
       st.sampled_from(["", "registry.site.lan/", "localhost:5000/", "docker.io/"]))
def test_reference_round_trip(path: list[str], tag: str | None, hexd: str | None, domain: str) -> None:
    text = domain + "/".join(path) + (f":{tag}" if tag else "") + (f"@sha256:{hexd}" if hexd else "")
    ref = parse_reference(text)
    assert ref.tag == tag and ref.digest == (f"sha256:{hexd}" if hexd else None)
    assert parse_reference(str(ref)) == ref
    if "." not in path[0] and path[0] != "localhost":  # else Docker's short form reads as a host too
        assert parse_reference(ref.familiar()) == ref


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_reference_parser_on_any_text(text: str) -> None:
    """Any text parses or raises the project's own error; what parses prints back the same."""
    try:
        ref = parse_reference(text)
    except AirgapError:
        return
    assert parse_reference(str(ref)) == ref
    assert str(ref).isascii() and "\n" not in str(ref)
