"""The value types of oci.py."""

from __future__ import annotations

import pytest

from airgap.oci import Descriptor, Platform

DIGEST = "sha256:" + "ab" * 32


def test_a_descriptor_is_its_media_type_digest_and_size() -> None:
    """Equal and hashed alike whatever annotations, platform or other JSON fields it came
    with (the blob is the same), unequal when any of the three differs."""
    plain = Descriptor("application/vnd.oci.image.layer.v1.tar", DIGEST, 10)
    dressed = Descriptor("application/vnd.oci.image.layer.v1.tar", DIGEST, 10, {"a": "b"},
                         Platform("linux", "amd64"), {"urls": ["x"]})
    assert plain == dressed and hash(plain) == hash(dressed) and len({plain, dressed}) == 1
    for other in (Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", DIGEST, 10),
                  Descriptor(plain.media_type, "sha256:" + "cd" * 32, 10),
                  Descriptor(plain.media_type, DIGEST, 11)):
        assert plain != other
    assert plain != (plain.media_type, DIGEST, 10)  # not a tuple of its fields
    assert plain.annotations == {} and plain.raw == {}
    with pytest.raises(TypeError):  # the empty ones are shared, and so read-only: no descriptor can change another
        plain.annotations["a"] = "b"  # type: ignore[index]
    with pytest.raises(TypeError):
        Descriptor.from_json({"mediaType": "x", "digest": DIGEST, "size": 1}, "test").raw["a"] = "b"  # type: ignore[index]


def test_a_platform_is_read_as_containerd_normalizes_it() -> None:
    from airgap.oci import parse_platform
    assert parse_platform("Linux/x86_64") == Platform("linux", "amd64")
    assert parse_platform("linux/AARCH64/v8") == Platform("linux", "arm64", "v8")
    assert parse_platform("linux/s390x") == Platform("linux", "s390x")


def test_a_platform_of_one_part_is_read_as_containerd_reads_it() -> None:
    from airgap.errors import UsageError
    from airgap.oci import host_platform, parse_platform
    host = host_platform()
    assert parse_platform("linux") == Platform("linux", host.architecture, host.variant)
    assert parse_platform("windows") == Platform("windows", host.architecture)
    assert parse_platform("aarch64") == Platform("linux", "arm64", "v8")
    assert parse_platform("AMD64") == Platform("linux", "amd64")
    for bad in ("", "plan10", "linux/", "/amd64", "linux/amd64/v8/x", "linux/\x1b[31m", "linux/amd 64"):
        with pytest.raises(UsageError, match="invalid platform"):
            parse_platform(bad)
