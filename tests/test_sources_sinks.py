"""One contract for every transport: whatever a Source offers, copied into any Sink and
read back, gives the same images (manifest digests and image IDs), and a store that
`store check` passes. Each transport is a parameter, not a copy of these tests."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from airgap.copy import copy
from airgap.reference import parse_reference
from airgap.registry.client import RegistryClient
from airgap.registry.server import make_server
from airgap.store import Store
from airgap.store.check import check_store
from airgap.store.query import all_images, find_image
from airgap.transports.archive import ArchiveSource, BundleSink
from airgap.transports.base import SourceImage
from airgap.transports.registry import RegistrySink, RegistrySource
from airgap.transports.store import NullSink, StoreSink, StoreSource

from .conftest import Airgap


def expected(store: Store, names: list[str]) -> dict[str, tuple[str, str]]:
    """name -> (manifest digest, image ID)"""
    out = {}
    for n in names:
        info = find_image(store, n)[0]
        out[str(parse_reference(n).with_default_tag())] = (info.digest, info.id)
    return out


@contextmanager
def served(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = make_server(store, "127.0.0.1", 0)
    host = f"127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AIRGAP_INSECURE_REGISTRIES", host)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()


def sources(kind: str, store: Store, names: list[str], tmp: Path, stack: ExitStack,
            monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Sources offering ``names`` from ``store``, by way of the transport ``kind``."""
    if kind == "store":
        images = []
        for n in names:
            info, ref = find_image(store, n)
            images.append(SourceImage(info.image.descriptor, [ref] if ref else []))
        return [StoreSource(store, images)]
    if kind == "bundle":
        path = tmp / "contract.tar"
        with open(path, "wb") as f:
            copy(sources("store", store, names, tmp, stack, monkeypatch)[0], BundleSink(f, "2024-01-01T00:00:00Z"))
        return [ArchiveSource(stack.enter_context(open(path, "rb")), str(path))]
    if kind == "registry":
        host = stack.enter_context(served(store, monkeypatch))
        out = []
        for n in names:
            ref = parse_reference(n).with_default_tag()
            client = RegistryClient(host)
            stack.callback(client.close)
            src = RegistrySource(client, parse_reference(f"{host}/{ref.path}:{ref.tag}"))
            src.image.names = [ref]  # keep the original name, so results compare
            out.append(src)
        return out
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["store", "bundle", "registry"])
def test_source_into_store(kind: str, airgap: Airgap, three_images: list[str], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    src_store = Store(airgap.store)
    want = expected(src_store, three_images)
    target = Store(tmp_path / "target")
    with ExitStack() as stack:
        for source in sources(kind, src_store, three_images, tmp_path, stack, monkeypatch):
            with target.begin() as txn:
                copy(source, StoreSink(txn))
    got = {str(n): (i.digest, i.id) for i in all_images(target) for n in i.names if not n.digest}
    assert got == want
    assert check_store(target).problems == []


@pytest.mark.parametrize("kind", ["store", "bundle", "registry", "null"])
def test_store_into_sink(kind: str, airgap: Airgap, three_images: list[str], tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Copy out of the store into each sink, then read what the sink made back."""
    src_store = Store(airgap.store)
    want = expected(src_store, three_images)
    with ExitStack() as stack:
        [source] = sources("store", src_store, three_images, tmp_path, stack, monkeypatch)
        if kind == "null":
            result = copy(source, NullSink())
            assert sorted(result.added) == sorted(result.plan.blobs)
            return
        if kind == "store":
            back = Store(tmp_path / "out")
            with back.begin() as txn:
                copy(source, StoreSink(txn))
        elif kind == "bundle":
            path = tmp_path / "out.tar"
            with open(path, "wb") as f:
                copy(source, BundleSink(f, "2024-01-01T00:00:00Z"))
            back = Store(tmp_path / "out")
            with open(path, "rb") as f, back.begin() as txn:
                copy(ArchiveSource(f, str(path)), StoreSink(txn))
        else:  # push into a read-write registry: airgap's own serve is read-only, so a peer
            from .conftest import need
            from .registry_peer import start_registry
            reg = start_registry(need("docker-registry"), tmp_path / "reg", "plain")
            stack.callback(reg.stop)
            monkeypatch.setenv("AIRGAP_INSECURE_REGISTRIES", reg.host)
            back = Store(tmp_path / "out")
            for n in three_images:
                ref = parse_reference(n).with_default_tag()
                dest = parse_reference(f"{reg.host}/{ref.path}:{ref.tag}")
                info = find_image(src_store, n)[0]
                client = RegistryClient(reg.host)
                stack.callback(client.close)
                copy(StoreSource(src_store, [SourceImage(info.image.descriptor, [dest])]),
                     RegistrySink(client, dest, [], lambda d: src_store.open_blob(d.digest)))
                pulled = RegistrySource(client, dest)
                pulled.image.names = [ref]
                with back.begin() as txn:
                    copy(pulled, StoreSink(txn))
    got = {str(n): (i.digest, i.id) for i in all_images(back) for n in i.names if not n.digest}
    assert got == want
    assert check_store(back).problems == []


def test_null_sink_refuses_a_corrupt_stream(airgap: Airgap, three_images: list[str]) -> None:
    """The sink of `verify` checks every byte: a blob whose bytes changed is refused."""
    from airgap.errors import DigestMismatch, FormatError

    src_store = Store(airgap.store)
    info = find_image(src_store, three_images[0])[0]
    layer = info.manifest.layers[-1]
    with src_store.open_blob(layer.digest) as f:
        data = f.read()
    sink = NullSink()
    with pytest.raises(DigestMismatch):
        sink.put_blob(io.BytesIO(data[:-1] + bytes([data[-1] ^ 1])), layer, "layer")
    with pytest.raises(FormatError, match="truncated"):
        sink.put_blob(io.BytesIO(data[:-1]), layer, "layer")
    with pytest.raises(DigestMismatch):
        sink.put_bytes(data[:-1] + b"x", layer, "layer")
    assert sink.put_blob(io.BytesIO(data), layer, "layer").value == "added"
