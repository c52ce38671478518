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
    '{{printf "%-30s|%.6s" .Repository .ID}} {{if eq .Tag "<none>"}}dangling{{else}}{{.Tag | upper}}{{end}}',
    'table {{.Repository}}\\t{{with .Tag}}{{.}}{{end}}\\t{{len .ID}} {{slice .ID 0 4}} {{$.Repository | title}}',
    '{{range $i, $p := split .Repository "/"}}{{if $i}}>{{end}}{{$p}}{{end}} {{pad .Tag 1 1}}|{{truncate .ID 5}}',
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
        for key in ("Id", "RepoTags", "RepoDigests", "Parent", "RootFS", "Architecture", "Os", "Created", "Comment",
                    "DockerVersion", "Author", "Config", "Metadata"):
            assert got[key] == want[key], key
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


@pytest.mark.parametrize("fmt", [
    '{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}',
    '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{"\\n"}}{{end}}',
    '{{if eq .Os "linux"}}L{{else if eq .Os "windows"}}W{{else}}O{{end}} {{if ne .Os "linux"}}x{{end}}',
    '{{with .Config.Labels}}{{.tier}}{{else}}none{{end}} {{with .Comment}}{{.}}{{else}}no comment{{end}}',
    '{{printf "%-20.19s|%q|%v|%x|%5d|%-3d|" .Id .Os .RepoTags .Architecture (len .RootFS.Layers) 7}}',
    '{{len .RootFS.Layers}} {{index .RootFS.Layers 0}} {{index .Config.Labels "tier" | printf "%q"}}',
    '{{slice .Id 7 19}} {{slice .Os 1}}',  # (Docker 20.10 runs a template using slice over the JSON instead)
    '{{and .Os .Architecture}} {{or .Comment .Os}} {{not .Comment}} {{lt (len .RootFS.Layers) 3}} {{ge (len .RepoTags) 1}}',
    '{{$x := .Os}}{{$x}}{{$x = .Architecture}}{{$x}} {{$.Id}} {{/* a comment */}}{{- .Os -}} {{ .Architecture }}',
    '{{range .RepoTags}}{{if eq . "example/app-a:2"}}{{break}}{{end}}{{.}} {{end}}|'
    '{{range .RepoTags}}{{if eq . "example/app-a:1"}}{{continue}}{{end}}{{.}} {{end}}',
    '{{print .Os 1 2 .Architecture}} {{println .Os .Architecture}}{{printf "%v %s %t %d" .RepoTags .Os true 3}}',
    '{{upper .Os}} {{title .Os}} {{lower "ABC"}} {{split .Id ":"}} [{{pad .Os 1 1}}] {{truncate .Id 10}}',
    '{{printf "%v|%s|%q" (index .Config.Labels "nope") (index .Config.Labels "nope") .Config.Healthcheck}}',
    '{{json .RootFS}} {{json .Config.Labels}} {{range $i, $e := .RootFS.Layers}}{{if $i}},{{end}}{{slice $e 7 12}}{{end}}',
    '{{printf "%s %d %v" .Os}} {{printf "%d" .Os}} {{printf "%s" .Os 5}}',
    # Docker's structs: every field there, nil slices, maps and pointers printed as Go prints them
    '{{.Config.Entrypoint}}|{{.Config.Cmd}}|{{.Config.Env}}|{{.Config.Volumes}}|{{.Config.ExposedPorts}}|'
    '{{.Config.Healthcheck}}|{{.Config.User}}|{{.Config.WorkingDir}}|{{.Config.OnBuild}}|{{.Variant}}|'
    '{{.Config.Tty}}|{{.Config.StopSignal}}|{{.Config.Shell}}|{{.OsVersion}}',
    '{{.Config}} {{.Metadata}} {{.RootFS}} {{.Metadata.LastTagTime}}',
    '{{json .Config}} {{json .Metadata}} {{json .RootFS}} {{json .Config.Env}} {{json .Config.Labels}}',
    '{{index .Config.Labels "nope"}}|{{.Config.Labels.nope}}|{{len .Config.Env}}|{{range .Config.Env}}x{{end}}|'
    '{{if .Config.Cmd}}c{{end}}|{{printf "%v %s %q" .Config.Env .Config.User .Config.Healthcheck}}',
])
def test_inspect_templates_print_what_dockers_cli_prints(both: tuple[Docker, Airgap], fmt: str) -> None:
    """The same template over the same image, through Docker's CLI (Go's text/template) and
    airgap's: the same output."""
    d, a = both
    for name in ("example/app-a:1", "web:1"):
        want = d("inspect", "-f", fmt, name).stdout
        assert a("inspect", "-f", fmt, name).out == want, (name, want)


def test_inspect_of_a_dockerfile_image_matches(docker: Docker, airgap: Airgap, tmp_path: Path) -> None:
    """An image whose config sets every field a Dockerfile can: the same Config in both
    inspects, and the same template output over it."""
    ctx = write_tree(tmp_path / "ctx", {"f.txt": "f\n"})
    docker.build(ctx, "airgap-test/every:1", "FROM scratch\nCOPY f.txt /f.txt\nENV A=1 B=\"two words\"\n"
                 "EXPOSE 80/tcp 53/udp\nVOLUME /data /cache\nWORKDIR /app\nUSER nobody\nENTRYPOINT [\"/bin/app\"]\n"
                 "CMD [\"--help\"]\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=30s CMD [\"/bin/check\"]\n"
                 "SHELL [\"/bin/sh\", \"-c\"]\nONBUILD RUN echo hi\nLABEL a=b\n")
    archive = tmp_path / "every.tar"
    docker("save", "-o", str(archive), "airgap-test/every:1")
    docker("rmi", "airgap-test/every:1")  # and its build's intermediate images: loaded, it has no parent
    docker("load", "-i", str(archive))
    airgap("load", "-i", str(archive))
    want = json.loads(docker("inspect", "airgap-test/every:1").stdout)[0]
    got = json.loads(airgap("inspect", "airgap-test/every:1").out)[0]
    assert got["Config"] == want["Config"]
    for fmt in ('{{.Config.Env}}|{{.Config.ExposedPorts}}|{{.Config.Volumes}}|{{.Config.WorkingDir}}|{{.Config.User}}|'
                '{{.Config.Entrypoint}}|{{.Config.Cmd}}|{{.Config.StopSignal}}|{{.Config.Shell}}|{{.Config.OnBuild}}',
                '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}{{json .Config.Volumes}} {{index .Config.Labels "a"}}',
                '{{range .Config.Env}}{{println .}}{{end}}{{json .Config.Healthcheck}}',
                '{{.Config.Healthcheck}}|{{.Config.Healthcheck.Interval}}|{{.Config.Healthcheck.Test}}|'
                '{{printf "%s %d %v %v" .Config.Healthcheck.Interval .Config.Healthcheck.Timeout '
                '.Config.Healthcheck.Retries .Config.Healthcheck.StartPeriod}}'):
        assert airgap("inspect", "-f", fmt, "airgap-test/every:1").out == \
            docker("inspect", "-f", fmt, "airgap-test/every:1").stdout, fmt
    # history: the same steps, IDs, dates, commands and comments (SIZE: the README's choice)
    for args in (["--format", "{{.ID}}|{{.CreatedAt}}|{{.CreatedBy}}|{{.Comment}}"],
                 ["--no-trunc", "--format", "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}"], ["-q"], ["-q", "--no-trunc"],
                 ["-H=false", "--format", "{{.CreatedSince}} {{.CreatedBy}}"]):
        assert airgap("history", *args, "airgap-test/every:1").out == \
            docker("history", *args, "airgap-test/every:1").stdout, args


def test_history_matches(both: tuple[Docker, Airgap]) -> None:
    d, a = both
    for name in ("example/base:1", "example/app-a:2", "web:1"):
        for args in ([], ["--no-trunc"], ["-q"]):
            want = d("history", *args, name).stdout
            got = a("history", *args, name).out
            if not args or args == ["--no-trunc"]:  # all but SIZE, which the README explains
                want, got = (re.sub(r" {3,}\S+B {3,}", " | ", x) for x in (want, got))
            assert got == want, (name, args)


def test_image_prune_matches(both: tuple[Docker, Airgap]) -> None:
    """The dangling image and its own layer go, said in Docker's words and order (the
    reclaimed size is the README's SIZE choice). ``-a`` is the README's choice too: Docker
    removes every image not used by a container, which here is all of them."""
    d, a = both
    want = d("image", "prune", "-f").stdout
    got = a("image", "prune", "-f").out
    assert re.sub(r"space: \S+", "space: X", got) == re.sub(r"space: \S+", "space: X", want)
    assert "deleted: sha256:" in got
    def left(text: str) -> list[list[str]]:  # REPOSITORY TAG IMAGE ID of what is left
        return sorted(r.split()[:3] for r in text.splitlines())
    assert left(a("images", "-a").out) == left(d("images", "-a").stdout)
    assert "<none>" not in a("images", "-a").out
