"""Reference parsing against the cases of Docker's distribution/reference tests."""

import pytest

from airgap.errors import InvalidReference
from airgap.reference import parse_reference

D = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"


@pytest.mark.parametrize("text,full,familiar", [
    ("nginx", "docker.io/library/nginx", "nginx"),
    ("nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25"),
    ("library/debian", "docker.io/library/debian", "debian"),
    ("docker/docker", "docker.io/docker/docker", "docker/docker"),
    ("docker.io/debian", "docker.io/library/debian", "debian"),
    ("index.docker.io/library/debian", "docker.io/library/debian", "debian"),
    ("index.docker.io/fooo/bar", "docker.io/fooo/bar", "fooo/bar"),
    ("docker.io/library/foo/bar", "docker.io/library/foo/bar", "library/foo/bar"),
    ("other/library", "docker.io/other/library", "other/library"),
    ("store/foo/bar", "docker.io/store/foo/bar", "store/foo/bar"),
    ("127.0.0.1:5000/docker/docker", "127.0.0.1:5000/docker/docker", "127.0.0.1:5000/docker/docker"),
    ("127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase"),
    ("example.com:8000/private/moonbase", "example.com:8000/private/moonbase", "example.com:8000/private/moonbase"),
    ("localhost/app", "localhost/app", "localhost/app"),
    ("localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app:v1"),
    ("test_com/foo", "docker.io/test_com/foo", "test_com/foo"),
    ("test-com:8080/foo", "test-com:8080/foo", "test-com:8080/foo"),
    ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo"),
    ("192.168.0.1", "docker.io/library/192.168.0.1", "192.168.0.1"),
    ("192.168.0.1:80", "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
    ("192.168.0.1:8/debian", "192.168.0.1:8/debian", "192.168.0.1:8/debian"),
    ("[fc00::1]:5000/docker", "[fc00::1]:5000/docker", "[fc00::1]:5000/docker"),
    ("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
     "[fc00:1:2:3:4:5:6:7]:5000/library/debian"),
    ("Foo/bar", "Foo/bar", "Foo/bar"),
    # a first component that is no host but reads as a path component (the domain is optional
    # in distribution's grammar) is kept as the domain
    ("dock_er.io/app", "dock_er.io/app", "dock_er.io/app"),
    ("DOCKER/docker", "DOCKER/docker", "DOCKER/docker"),
    ("docker---rules/docker", "docker.io/docker---rules/docker", "docker---rules/docker"),
    ("dock__er/docker", "docker.io/dock__er/docker", "dock__er/docker"),
    ("d/docker", "docker.io/d/docker", "d/docker"),
    ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
     "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
     "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"),
    ("docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
     "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
     "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"),
    (f"redis@{D}", f"docker.io/library/redis@{D}", f"redis@{D}"),
    (f"busybox:latest@{D}", f"docker.io/library/busybox:latest@{D}", f"busybox:latest@{D}"),
    (f"registry.example.com:8080/team/app:v2@{D}", f"registry.example.com:8080/team/app:v2@{D}",
     f"registry.example.com:8080/team/app:v2@{D}"),
])
def test_valid(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize("text", [
    "", "https://github.com/docker/docker", "docker/Docker", "-docker", "-docker/docker",
    "-docker.io/docker/docker", "docker///docker", "docker.io/docker/Docker",
    "docker.io/docker///docker", "[fc00::1]", "[fc00::1]:5000", "fc00::1:5000/debian",
    "[fe80::1%eth0]:5000/debian", "[2001:db8:3:4::192.0.2.33]:5000/debian",
    "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    "docker-/docker", "-docker-/docker", "____/____", "_docker/_docker", "dock..er/docker",
    "dock_.er/docker", "dock-.er/docker", "docker/", "Uppercase:tag", "nginx:-tag",
    "nginx:" + "a" * 129, "nginx@sha256:abc", "nginx@sha256:" + "A" * 64, "nginx@md5:" + "a" * 32,
    "x" * 120 + "/" + "y" * 140, "test image:1", ":", "private@registry:5000/test",
    "private.registry:5000/namespace/test:image:1", "dock_er.io:5000/app",
    # the repository 'sha256' reads as an image ID: Docker refuses to store such a name
    "sha256:" + "a" * 64, "sha256", "library/sha256:1", "docker.io/library/sha256@" + D,
])
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidReference) as exc:
        parse_reference(text)
    assert exc.value.exit_code == 2


def test_default_tag_and_official() -> None:
    ref = parse_reference("nginx").with_default_tag()
    assert str(ref) == "docker.io/library/nginx:latest"
    assert ref.is_official
    assert not parse_reference("user/app").is_official
    assert parse_reference(f"nginx@{D}").with_default_tag().tag is None


def test_lowercase_message() -> None:
    with pytest.raises(InvalidReference, match="must be lowercase"):
        parse_reference("docker/Docker")
