"""The same images in the real Docker engine and in airgap: the management verbs print
the same thing (apart from SIZE, which the README explains)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ..conftest import Airgap, Docker, write_tree

pytestmark = pytest.mark.interop

EPOCH_2024 = 1704067200  # 2024-01-01T00:00:00Z


@pytest.fixture
def both(docker: Docker, airgap: Airgap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Docker, Airgap]:
    """Images made by airgap at distinct times, loaded into Docker and into a fresh store."""
    maker = Airgap(tmp_path / "maker", airgap.capsys)

    def make(ref: str, days: int, base: str | None = None, **labels: str) -> str:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH_2024 + days * 86400))
        d = write_tree(tmp_path / f"src-{days}", {f"f{days}.txt": f"{ref} {days}\n"})
        args = ["import", str(d), ref, *(["--base", base] if base else [])]
        args += [a for k, v in labels.items() for a in ("--label", f"{k.replace('_', '.')}={v}")]
        return maker(*args).out.strip()

    make("example/base:1", 0, tier="base", org_opencontainers_image_description="the base")
    make("example/app-a:1", 31, "example/base:1", tier="app", team="a")
    maker("tag", "example/app-a:1", "example/app-a:2")
    old_b = make("example/app-b:1", 60, "example/base:1", tier="app", team="b")
    make("localhost:5000/team/tool:latest", 91, tier="tool")
    make("web:1", 121, org_opencontainers_image_description="a web server")
    make("example/app-b:1", 152, "example/base:1", tier="app", team="b")  # old_b is now dangling
    bundle = tmp_path / "all.tar"
    maker("save", "-o", str(bundle), "example/base:1", "example/app-a", "example/app-b:1",
          "localhost:5000/team/tool:latest", "web:1", old_b)
    docker("load", "-i", str(bundle))
    airgap("load", "-i", str(bundle))
    return docker, airgap


def _grouped(out: str) -> list[str]:
    """Docker orders the rows of one image with several repositories at random (a Go map):
    keep the order of images, sort rows within each image."""
    lines = out.rstrip("\n").splitlines()
    head, body = lines[:1], lines[1:]
    groups: list[list[str]] = []
    last = None
    for line in body:
        key = re.findall(r"[0-9a-f]{12}", line)[:1]
        if groups and key == last:
            groups[-1].append(line)
        else:
            groups.append([line])
        last = key
    return head + [line for g in groups for line in sorted(g)]


def _no_size(out: str) -> str:
    return "\n".join(re.sub(r"\s+\S+$", "", line) for line in out.splitlines())


def _compare(d: Docker, a: Airgap, *args: str, size_column: bool = False) -> str:
    want = d("images", *args).stdout
    got = a("images", *args).out
    if "-q" in args:  # Docker 20.10 repeats an ID per tag; airgap lists each once (README)
        want = "".join(dict.fromkeys(want.splitlines(keepends=True)))
    if size_column:
        want, got = _no_size(want), _no_size(got)
    assert _grouped(got) == _grouped(want), f"images {' '.join(args)}\n--- docker\n{want}\n--- airgap\n{got}"
    return got


def test_images_listings(both: tuple[Docker, Airgap]) -> None:
    d, a = both
    out = _compare(d, a, size_column=True)
    assert re.search(r"<none> +<none>", out)
    _compare(d, a, "--digests", size_column=True)
    _compare(d, a, "-a", size_column=True)
    _compare(d, a, "-q")
    _compare(d, a, "--no-trunc", "-q")
    _compare(d, a, "--no-trunc", size_column=True)
    _compare(d, a, "example/app-a", size_column=True)
    _compare(d, a, "example/app-a:2", size_column=True)
    _compare(d, a, "localhost:5000/team/tool", size_column=True)
    _compare(d, a, "nothing-here", size_column=True)
    # the argument is a reference filter, glob and all, never checked as a name (Docker 20.10)
    for pattern in ("example/*", "example/app-?:1", "*/team/*", "example/app-a:*", "UPPER", "bad::x",
                    "docker.io/example/base"):
        _compare(d, a, pattern, size_column=True)


@pytest.mark.parametrize("filters", [
    ["dangling=true"], ["dangling=false"], ["before=example/app-b:1"], ["since=example/base:1"],
    ["reference=example/*"], ["reference=*/team/*"], ["reference=example/app-?:1"],
    ["reference=web"], ["label=tier=app"], ["label=team"], ["label=tier"],
    ["label=tier=app", "since=example/app-a:1"], ["reference=example/*", "dangling=false"],
    ["reference=web", "reference=example/base"], ["label=tier=app", "label=team=b"],
    ["before=web:1", "since=example/app-a:2"],
])
def test_images_filters(both: tuple[Docker, Airgap], filters: list[str]) -> None:
    d, a = both
    args = [x for f in filters for x in ("-f", f)]
    _compare(d, a, *args, size_column=True)
    _compare(d, a, "-q", *args)


@pytest.mark.parametrize("fmt", [
    "{{.Repository}}:{{.Tag}}", "table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}",
    "{{.ID}} {{.CreatedAt}} {{.CreatedSince}} {{.Containers}}", "table {{.Repository}}\\t{{.Digest}}",
    "{{.Repository}}\\t{{.Tag}}\\t{{.ID}}",
])
def test_images_formats(both: tuple[Docker, Airgap], fmt: str) -> None:
    d, a = both
    _compare(d, a, "--format", fmt.replace("\\t", "\t"))


def test_images_json_format(both: tuple[Docker, Airgap]) -> None:
    d, a = both

    def rows(text: str) -> list[dict[str, str]]:
        out = [json.loads(line) for line in text.splitlines()]
        for r in out:
            for k in ("Size", "VirtualSize"):
                assert r.pop(k)
        return sorted(out, key=lambda r: (r["ID"], r["Repository"], r["Tag"]))
    want = d("images", "--format", "{{json .}}").stdout
    got = a("images", "--format", "{{json .}}").out
    assert rows(got) == rows(want)
    assert "\\u003cnone\\u003e" in got  # escaped as Go escapes it
    assert rows(a("images", "--format", "json").out) == rows(want)


def test_inspect_matches(both: tuple[Docker, Airgap]) -> None:
    d, a = both
    for name in ("example/base:1", "example/app-a:2", "web:1", "localhost:5000/team/tool"):
        want = json.loads(d("inspect", name).stdout)[0]
        got = json.loads(a("inspect", name).out)[0]
        for key in ("Id", "RepoTags", "RootFS", "Architecture", "Os", "Created", "Comment"):
            assert got[key] == want[key], key
        assert got["Config"]["Labels"] == want["Config"]["Labels"]
    fmt = "{{.Id}} {{json .RepoTags}} {{index .Config.Labels \"tier\"}} {{range .RootFS.Layers}}[{{.}}]{{end}}"
    assert a("inspect", "-f", fmt, "example/app-a:1").out == d("inspect", "-f", fmt, "example/app-a:1").stdout


def test_the_repository_sha256_is_no_image_to_a_lookup(both: tuple[Docker, Airgap]) -> None:
    """`sha256` (or `sha256:x`) reads as an image ID: Docker refuses it as a new name, and
    to inspect or rmi it is simply no image (exit 1). airgap refused it as an invalid
    reference (exit 2) for lookups too."""
    d, a = both
    for verb in (["inspect"], ["image", "inspect"], ["rmi"]):
        for name in ("sha256", "library/sha256:x"):
            want = d(*verb, name, check=False)
            got = a(*verb, name, ok=False)
            assert (got.code, got.out.strip()) == (want.returncode, want.stdout.strip()), (verb, name, got)
            assert "No such" in got.err and "No such" in want.stderr, (got.err, want.stderr)
    assert d("tag", "web:1", "sha256:x", check=False).returncode != 0
    assert a("tag", "web:1", "sha256:x", ok=False).code == 2


def _rmi(d: Docker, a: Airgap, *args: str) -> None:
    want = d("rmi", *args, check=False)
    got = a("rmi", *args, ok=False)
    assert got.code == want.returncode
    assert got.out == want.stdout
    # the same words, without Docker's "from daemon" (airgap has no daemon)
    assert got.err == want.stderr.replace("Error response from daemon: ", "Error: ")


def test_retag_leaves_dangling_and_rmi(both: tuple[Docker, Airgap]) -> None:
    d, a = both
    # web:1 moves to the base image: its old image becomes <none>:<none> on both sides
    d("tag", "example/base:1", "web:1")
    a("tag", "example/base:1", "web:1")
    _compare(d, a, size_column=True)
    _compare(d, a, "-f", "dangling=true", size_column=True)
    base_id = a.image_id("example/base:1")[7:19]
    # by ID, named in two repositories: refused without -f, with Docker's message
    _rmi(d, a, base_id)
    _compare(d, a, size_column=True)
    # by ID, two tags of one repository: Docker refuses that too without -f
    _rmi(d, a, a.image_id("example/app-a:1")[7:19])
    # by name: untag only, the image stays under its other name
    _rmi(d, a, "example/app-a:2")
    _rmi(d, a, "web:1")
    _compare(d, a, size_column=True)
    # now a single name: by ID untags and deletes, with the layers no one else uses
    _rmi(d, a, "example/app-a")
    _rmi(d, a, "-f", base_id)
    _compare(d, a, size_column=True)
    # unknown images are reported and the others still processed
    _rmi(d, a, "nope:1", "example/app-b:1", "sha256:" + "f" * 64)
    _compare(d, a, size_column=True)
