"""Store management without Docker: rmi, prune, df, check, search, templates, concurrency."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typing import Any

from airgap.cli.template import Template
from airgap.errors import UsageError

from ..conftest import Airgap, write_tree


def _blobs(airgap: Airgap) -> set[str]:
    return {p.name for p in (airgap.store / "blobs" / "sha256").iterdir()}


def test_shared_layers_survive_rmi_and_show_in_df(airgap: Airgap, three_images: list[str]) -> None:
    base_layer = json.loads(airgap("inspect", "example/base:1").out)[0]["RootFS"]["Layers"][0][7:]
    df = airgap("system", "df", "-v").out
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in df.splitlines() if line.startswith("example/")}
    # SIZE, SHARED SIZE, UNIQUE SIZE: the apps share the base layer (40 kB of random bytes)
    assert rows["example/app-a"][5] == rows["example/base"][5] != "0B"
    assert rows["example/base"][6] == "0B"
    res = airgap("rmi", "example/app-a:1")
    assert res.out.startswith("Untagged: example/app-a:1\nDeleted: sha256:")
    assert base_layer in _blobs(airgap)
    airgap("rmi", "example/base:1")
    assert base_layer in _blobs(airgap)  # app-b and app-c still use it
    for name in three_images[1:]:
        airgap("rmi", name)
    assert _blobs(airgap) == set()
    assert json.loads((airgap.store / "index.json").read_text())["manifests"] == []


def test_rmi_outputs(airgap: Airgap, three_images: list[str]) -> None:
    a_id = airgap.image_id("example/app-a:1")
    airgap("tag", "example/app-a:1", "other/app:7")
    res = airgap("rmi", a_id[7:19], ok=False)
    assert res.code == 1 and "must be forced" in res.err and "multiple repositories" in res.err
    res = airgap("rmi", "-f", a_id[7:12])
    lines = res.out.splitlines()
    assert lines[:3] == ["Untagged: example/app-a:1", "Untagged: other/app:7", f"Deleted: {a_id}"]
    assert len(lines) == 4  # and its own top layer; the base layer is shared
    res = airgap("rmi", "ghost", "example/app-b:1", ok=False)
    assert res.code == 1 and "Error: No such image: ghost" in res.err
    assert "Untagged: example/app-b:1" in res.out


def test_rmi_of_many_is_rmi_of_each_in_turn(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """One `rmi` of several images (one reading and one writing of the index) says and
    leaves what one `rmi` per image, in the same order, says and leaves: an image named
    again later in the list, a conflict, an unknown name, IDs, shared layers."""
    import shutil
    from ..conftest import snapshot
    airgap("tag", "example/app-a:1", "other/app:7")
    airgap("tag", "example/app-a:1", "example/app-a:2")
    airgap("tag", "example/app-b:1", "example/app-b:2")
    ids = {n: airgap.image_id(n)[7:19] for n in ("example/app-a:1", "example/app-b:1", "example/app-c:1")}
    args = ["example/app-a:2", "ghost:1", ids["example/app-a:1"], "example/app-b:1", ids["example/app-b:1"],
            "other/app:7", "example/app-a:1", "example/base:1", ids["example/app-c:1"], "example/app-c:1",
            "example/app-a:1"]
    one, each = Airgap(tmp_path / "one", airgap.capsys), Airgap(tmp_path / "each", airgap.capsys)
    shutil.copytree(airgap.store, one.store)
    shutil.copytree(airgap.store, each.store)
    batch = one("rmi", *args, ok=False)
    runs = [each("rmi", a, ok=False) for a in args]
    assert batch.out == "".join(r.out for r in runs) and "Deleted: " in batch.out
    assert batch.err == "".join(r.err for r in runs) and "must be forced" in batch.err and "ghost" in batch.err
    assert batch.code == max(r.code for r in runs) == 1
    assert snapshot(one.store) == snapshot(each.store)
    assert one("images", "-aq").out == "" and "No such image: example/app-a:1" in runs[-1].err


def test_prune_dangling_and_all(airgap: Airgap, three_images: list[str], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    old = airgap.image_id("example/app-c:1")
    src = write_tree(tmp_path / "c2", {"c2.txt": "new c"})
    airgap("import", str(src), "example/app-c:1", "--base", "example/base:1")
    assert "<none>" in airgap("images").out
    assert airgap("images", "-q", "-f", "dangling=true").out.split() == [old[7:19]]
    res = airgap("image", "prune")  # stdin is not a terminal and says nothing: no
    assert "Are you sure" in res.out and res.out.rstrip().endswith("Total reclaimed space: 0B")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    res = airgap("image", "prune")
    assert f"Deleted Images:\ndeleted: {old}\n" in res.out
    assert "Total reclaimed space: " in res.out and "0B" not in res.out.splitlines()[-1]
    assert "<none>" not in airgap("images").out
    res = airgap("image", "prune", "-f")
    assert res.out == "Total reclaimed space: 0B\n"
    # -a: every image without a tag; tagged ones stay
    assert airgap("image", "prune", "-a", "-f").out == "Total reclaimed space: 0B\n"
    assert len(airgap("images", "-q").out.split()) == 4


def test_system_prune_removes_orphans_and_temp(airgap: Airgap, three_images: list[str]) -> None:
    import hashlib
    data = b"x" * 5000
    orphan = airgap.store / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()
    orphan.write_bytes(data)
    res = airgap("store", "check")
    assert res.out.startswith("OK:") and "1 blob (5kB) is referenced by no image" in res.err
    (airgap.store / ".tmp" / "12345-stale").write_bytes(b"y" * 3000)
    res = airgap("system", "prune", "-f")
    assert res.out == "Total reclaimed space: 8kB\n"
    assert not orphan.exists() and list((airgap.store / ".tmp").iterdir()) == []
    airgap("store", "check")


def test_df_summary(airgap: Airgap, three_images: list[str]) -> None:
    lines = airgap("system", "df").out.splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert lines[1].split()[:3] == ["Images", "4", "4"]


def test_store_check_finds_damage(airgap: Airgap, three_images: list[str]) -> None:
    assert airgap("store", "check").out.startswith("OK: 4 images, 12 blobs")
    layer = json.loads(airgap("inspect", "example/app-b:1").out)[0]["RootFS"]["Layers"][-1][7:]
    path = airgap.store / "blobs" / "sha256" / layer
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    res = airgap("store", "check", ok=False)
    assert res.code == 3 and layer in res.out and "problem" in res.err
    path.unlink()
    res = airgap("store", "check", ok=False)
    assert res.code == 3 and f"layer sha256:{layer} is missing" in res.out and "example/app-b:1" in res.out


def test_search(airgap: Airgap, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "s", {"a": "a"})
    long = "A web server with a very long description that goes on and on\nand on"
    airgap("import", str(src), "nginx:1.25", "--label", f"org.opencontainers.image.description={long}")
    airgap("import", str(src), "acme/nginx-exporter:2")
    airgap("import", str(src), "registry.local:5000/ops/redis:7")
    out = airgap("search", "nginx").out.splitlines()
    assert out[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert out[1].startswith("acme/nginx-exporter ")
    assert out[2].startswith("nginx ") and out[2].rstrip().endswith("[OK]")
    assert "A web server with a very long description th…" in out[2]
    assert long.replace("\n", " ") in airgap("search", "--no-trunc", "nginx").out
    assert airgap("search", "-f", "is-official=true", "--format", "{{.Name}}", "nginx").out == "nginx\n"
    assert airgap("search", "--limit", "1", "--format", "{{.Name}}", "nginx").out == "acme/nginx-exporter\n"
    assert airgap("search", "--format", "{{.Name}} {{.IsOfficial}}", "redis").out == "registry.local:5000/ops/redis \n"
    assert airgap("search", "--limit", "0", "x", ok=False).code == 2
    res = airgap("search", "--limit", "\uff13", "nginx", ok=False)  # a fullwidth 3: int() read it
    assert res.code == 2 and "invalid number" in res.err and res.out == "", res.err
    assert airgap("search", "-f", "bogus=1", "x", ok=False).code == 2
    # an empty term lists every repository (README), in the order of the others
    assert airgap("search", "--format", "{{.Name}}", "").out.split() == \
        ["acme/nginx-exporter", "nginx", "registry.local:5000/ops/redis"]


def test_bad_filters_and_templates(airgap: Airgap, three_images: list[str]) -> None:
    assert airgap("images", "-f", "color=red", ok=False).code == 2
    assert airgap("images", "-f", "dangling=maybe", ok=False).code == 2
    assert airgap("images", "-f", "before=nope:1", ok=False).code == 1
    res = airgap("images", "--format", "{{.ID}} {{.Nope", ok=False)
    assert res.code == 2 and "unclosed action" in res.err and res.out == ""
    assert airgap("images", "--format", "{{if .ID}}x", ok=False).code == 2
    assert airgap("images", "--format", "{{nosuchfunc .ID}}", ok=False).code == 2
    # a row is a struct in Docker: a field it does not have is an error, before any output
    for tmpl in ("{{.Nope}}", "table {{.ID}}\t{{.Created}}", "{{if .Tag}}{{.Tag}}{{else}}{{.Bad}}{{end}}",
                 "{{range .Nope}}{{end}}", "{{.ID | printf}}{{.Repo}}"):
        res = airgap("images", "--format", tmpl, ok=False)
        assert res.code == 2 and "can't evaluate field" in res.err and res.out == "", (tmpl, res)
    res = airgap("search", "--format", "{{.Name}} {{.Stars}}", "app", ok=False)
    assert res.code == 2 and "can't evaluate field Stars" in res.err
    assert airgap("images", "--format", "{{.Repository}}:{{.Tag}} {{json .Size}}").out.count("example/") == 4
    # the inspected image is Docker's struct: a field it lacks is an error, in Docker's words
    # (its -f falls back to the JSON with missingkey=error); a map's missing key is <no value>
    res = airgap("inspect", "-f", "{{.Nope}}", three_images[0], ok=False)
    assert res.code == 2 and 'map has no entry for key "Nope"' in res.err and res.out == "", res
    assert airgap("inspect", "-f", "{{.Config.Labels.nope}}|{{index .Config.Labels \"nope\"}}|{{.Config.Env}}|"
                  "{{json .Config.Env}}|{{.Config.Healthcheck}}|{{.Metadata}}", three_images[0]).out == \
        "<no value>||[]|null|<nil>|{0001-01-01 00:00:00 +0000 UTC}\n"


@pytest.mark.parametrize("tmpl,dot,out", [
    ("{{.A}}-{{.B.C}}", {"A": 1, "B": {"C": "x"}}, "1-x"),
    ("{{json .}}", {"b": "<a&b>", "a": [1, None]}, '{"b":"\\u003ca\\u0026b\\u003e","a":[1,null]}'),
    ("{{range .L}}[{{.}}]{{end}}", {"L": ["a", "b"]}, "[a][b]"),
    ("{{.L}} {{.M}}", {"L": ["a", "b"], "M": {"z": 1, "a": True}}, "[a b] map[a:true z:1]"),
    ("{{if .X}}yes{{else}}no{{end}}", {"X": ""}, "no"),
    ('{{index .M "k.1"}} {{join .L ","}} {{upper .S}} {{len .L}}', {"M": {"k.1": "v"}, "L": ["a", "b"], "S": "q"}, "v a,b Q 2"),
    ("{{.S | json}}", {"S": "x"}, '"x"'),
    ("  {{- .S -}}  !", {"S": "x"}, "x!"),
    ("{{.Missing}}", {}, "<no value>"),
])
def test_template(tmpl: str, dot: dict[str, object], out: str) -> None:
    assert Template(tmpl).render(dot) == out


INSPECTED = {"Id": "sha256:abc", "RepoTags": ["a:1", "b:2"], "Os": "linux", "Size": 1234, "F": 1.5,
             "Config": {"Labels": {"k.1": "v1", "z": "zz"}, "Env": ["A=1"]}, "Empty": [], "N": None}


@pytest.mark.parametrize("tmpl,out", [
    # what Docker's documentation and users' scripts write, with the output Go gives
    ('{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}', "0=a:1;1=b:2;"),
    ('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{"\n"}}{{end}}', "k.1=v1\nz=zz\n"),
    ('{{if eq .Os "linux"}}L{{else}}O{{end}}', "L"),
    ('{{if ne .Os "linux"}}L{{else if eq .Os "linux"}}EL{{else}}O{{end}}', "EL"),
    ('{{with .Config}}{{.Env}}{{end}} {{with .Empty}}x{{else}}none{{end}}', "[A=1] none"),
    ('{{printf "%-6s|%5d|%05.1f|%q|%x|%v" .Os .Size .F .Os 255 .RepoTags}}', 'linux | 1234|001.5|"linux"|ff|[a:1 b:2]'),
    ('{{printf "%d" .Os}} {{printf "%s %s" .Os}} {{printf "%s" .Os 1}}',
     "%!d(string=linux) linux %!s(MISSING) linux%!(EXTRA int=1)"),
    ('{{printf "%t %c %X %o %b %e %g" true 65 255 8 5 1234.5 0.5}}', "true A FF 10 101 1.234500e+03 0.5"),
    ('{{print .Os 1 2 "x" 3}} {{.Id | printf "%.10s"}} {{.Size | printf "%08d"}}', "linux1 2x3 sha256:abc 00001234"),
    ('{{(index .Config.Labels "k.1")}} {{$.Os}} {{$x := .Os}}{{$x}}{{$x = "w"}}{{$x}}', "v1 linux linuxw"),
    ('{{and .Os .Size}} {{or .Empty .Os}} {{not .Empty}} {{and .Empty .Nope}}', "1234 linux true []"),
    ('{{lt 1 2}} {{ge "b" "a"}} {{gt .Size 2000}} {{eq .N nil}} {{eq .Os "a" "linux"}}', "true true false true true"),
    (r'{{- /* a comment */ -}} x {{"}}"}} {{`raw\n`}} {{-3}}', r"x }} raw\n -3"),
    ('{{range .RepoTags}}{{if eq . "b:2"}}{{break}}{{end}}{{.}}{{end}}', "a:1"),
    ('{{range .RepoTags}}{{if eq . "a:1"}}{{continue}}{{end}}{{.}}{{end}} {{range .Empty}}x{{else}}empty{{end}}',
     "b:2 empty"),
    ('{{if "0"}}t{{end}} {{range 3}}{{.}}{{end}}', "t 012"),  # Go's truth: a non-empty string
    ('{{slice .Os 1 3}} {{title "hello wORLD"}} {{pad .Os 1 2}}| {{truncate .Os 3}} {{split "a,b" ","}}',
     "in Hello WORLD  linux  | lin [a b]"),
])
def test_template_as_go_runs_it(tmpl: str, out: str) -> None:
    assert Template(tmpl).render(INSPECTED) == out


@pytest.mark.parametrize("tmpl,why", [
    ('{{eq .Os 1}}', "incompatible types"), ('{{index .RepoTags 5}}', "index out of range"),
    ('{{break}}', "outside {{range}}"), ('{{range .RepoTags}}{{else}}{{break}}{{end}}', "outside {{range}}"),
    ('{{define "x"}}{{end}}', "not supported"), ('{{template "x"}}', "not supported"),
    ('{{.Os .Os}}', "non-function"), ('{{"x" | .Os}}', "non-function"), ('{{if}}{{end}}', "missing value"),
    ('{{if .A}}{{else}}{{else}}{{end}}', "unexpected {{else}}"), ('{{$x}}', "undefined variable"),
    ('{{/* x}}', "unclosed comment"), ('{{len .Size}}', "len of type int"),
    ('{{range .Os}}{{end}}', "can't iterate"), ('{{"\\q"}}', "invalid escape"),
    ('{{printf "%9999999d" 1}}', "width or precision over"), ('{{pad .Os 99999999 0}}', "pad takes"),
    ('{{range 99999999}}{{end}}', "more than"),
    ('{{' + '(' * 150 + '.Os' + ')' * 150 + '}}', "nested more than 100"),
    ('{{if 1}}' * 150 + '{{end}}' * 150, "nested more than 100"),
])
def test_templates_go_refuses_are_refused(tmpl: str, why: str) -> None:
    """Each an error (exit 2 from the CLI), never a traceback, and bounded: nesting,
    printf widths, pad and range counts have caps."""
    with pytest.raises(UsageError, match=re.escape(why)):
        Template(tmpl).render(INSPECTED)



def _dangling_and_named(airgap: Airgap, tmp_path: Path) -> None:
    """x:1 made twice: the first becomes dangling, with a layer of its own."""
    for i in (1, 2):
        airgap("import", str(write_tree(tmp_path / f"c{i}", {"f": os.urandom(5000)})), "example/x:1")
    assert len(airgap("images", "-aq").out.split()) == 2


def _prune_in_another_process(store: Path, wait: float | None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "airgap", "--store", str(store), "image", "prune", "-f"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        pass  # it waits for a lock: the caller's
    return proc


def test_a_listing_reads_again_what_a_prune_removed_under_it(airgap: Airgap, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`images`, `inspect` and `system df` read the store without its lock. A prune in another
    process between their reading of index.json and of the blobs it names removed a manifest
    they were about to read: "blob ... is missing from the store", exit 3, on a sound store.
    They read it again (index.json changed under them)."""
    from airgap.store import Store
    real = Store.entries
    for argv in (["images", "-a"], ["system", "df", "-v"], ["search", "example"]):
        airgap("rmi", "-f", "example/x:1", ok=False)
        airgap("image", "prune", "-f")
        _dangling_and_named(airgap, tmp_path)
        raced: list[bool] = []

        def racing(self: Store, raced: list[bool] = raced) -> list[Any]:
            out = real(self)
            if not raced:
                raced.append(True)
                assert _prune_in_another_process(self.root, None).returncode == 0
            return out
        monkeypatch.setattr(Store, "entries", racing)
        res = airgap(*argv, ok=False)
        monkeypatch.setattr(Store, "entries", real)
        assert raced and res.code == 0, (argv, res.err)
        assert len(airgap("images", "-aq").out.split()) == 1
    # inspect, the image found, then removed (rmi and prune) before its config is read: it
    # is gone, as Docker would say (exit 1), not damage (exit 3)
    from airgap.cli import images
    real_doc = images.inspect_doc

    def removed_first(info: Any, attached: Any) -> dict[str, Any]:
        if not raced_doc:
            raced_doc.append(True)
            subprocess.run([sys.executable, "-m", "airgap", "--store", str(info.store.root), "rmi", "example/x:1"],
                           check=True, capture_output=True)
        return real_doc(info, attached)
    raced_doc: list[bool] = []
    monkeypatch.setattr(images, "inspect_doc", removed_first)
    res = airgap("inspect", "nope:1", "example/x:1", ok=False)  # each said once, read again or not
    assert raced_doc and res.code == 1, res.err
    assert res.err == "Error: No such object: nope:1\nError: No such object: example/x:1\n", res.err


def test_store_check_holds_off_a_prune(airgap: Airgap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`store check` re-hashes every blob it lists: a prune that removed one of them meanwhile
    was reported as damage (exit 3). It takes the shared lock, as save does: the prune waits."""
    from airgap.store import Store
    _dangling_and_named(airgap, tmp_path)
    real = Store.all_blobs
    pruners: list[subprocess.Popen[bytes]] = []

    def racing(self: Store) -> Any:
        out = list(real(self))
        if not pruners:
            pruners.append(_prune_in_another_process(self.root, 3))
        return iter(out)
    monkeypatch.setattr(Store, "all_blobs", racing)
    res = airgap("store", "check", ok=False)
    monkeypatch.setattr(Store, "all_blobs", real)
    assert pruners and res.code == 0 and res.out.startswith("OK: 2 images"), (res.out, res.err)
    assert pruners[0].wait(30) == 0  # then it ran
    assert len(airgap("images", "-aq").out.split()) == 1

def test_concurrent_load_and_remove(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """A loader, a remover and a pruner working on one store at once; a checker that takes
    the writer lock must find it consistent every time, and `store check` at the end."""
    import threading

    from airgap.cli.main import main
    from airgap.store import Store
    from airgap.store.gc import referenced

    bundle = tmp_path / "b.tar"
    airgap("save", "-o", str(bundle), *three_images)
    target = str(tmp_path / "shared")
    base = ["--store", target, "--progress", "none"]
    assert main([*base, "load", "-q", "-i", str(bundle)]) == 0
    stop = time.monotonic() + 5
    problems: list[str] = []
    counts = {"load": 0, "rmi": 0, "prune": 0, "check": 0}

    def loop(kind: str, argv: list[str]) -> None:
        while time.monotonic() < stop:
            main([*base, *argv])
            counts[kind] += 1

    def checker() -> None:
        store = Store(target)
        while time.monotonic() < stop:
            with store.lock():
                missing = referenced(store) - set(store.all_blobs())
                if missing:
                    problems.append(f"index references missing blobs {sorted(missing)}")
            counts["check"] += 1
            time.sleep(0.001)

    threads = [threading.Thread(target=loop, args=("load", ["load", "-q", "-i", str(bundle)])),
               threading.Thread(target=loop, args=("rmi", ["rmi", *three_images])),
               threading.Thread(target=loop, args=("prune", ["system", "prune", "-f"])),
               threading.Thread(target=checker)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems, problems[:3]
    assert min(counts.values()) >= 20, counts
    check = subprocess.run([sys.executable, "-m", "airgap", *base, "store", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert main([*base, "load", "-q", "-i", str(bundle)]) == 0
    assert main([*base, "store", "check"]) == 0


def test_each_verb_builds_only_its_parser() -> None:
    """main.VERBS names the module that registers each verb: every verb the full parser
    knows is there, and a verb's parser built alone is the same as in the full one (and
    nothing else is built)."""
    import argparse
    from airgap.cli.main import VERBS, build_parser, verb_of

    def verbs(parser: argparse.ArgumentParser) -> dict[str, str]:
        """Each verb's help, its sub-verbs' included (``image ls``)."""
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {name: p.format_help() for name, p in sub.choices.items()}

    full = verbs(build_parser())
    assert set(full) == set(VERBS)
    assert list(full).index("images") < list(full).index("image")  # as help has always listed them
    for verb in VERBS:
        assert verbs(build_parser([verb])) == {verb: full[verb]}
    image = build_parser(["image"])
    for words in (["image", "ls", "-q"], ["image", "rm", "x"], ["image", "prune", "-a"], ["image", "inspect", "x"]):
        assert image.parse_args(words).func is build_parser().parse_args(words).func
    assert verb_of(["--store", "load", "images"]) == "images"  # a store named "load"
    assert verb_of(["--progress", "none", "--debug", "save", "-o", "x"]) == "save"
    assert verb_of(["--help"]) is None and verb_of([]) is None
    assert verb_of(["--stor", "images", "load"]) == "load"  # argparse's abbreviations
    assert verb_of(["--s", "images", "load"]) == "load"
    assert verb_of(["--store=images", "--prog", "none", "load"]) == "load"


def test_image_save_and_the_like_are_the_verbs(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """Docker's management-command spelling: ``image save`` is ``save``, and so on."""
    from airgap.cli.main import IMAGE_ALIASES, unalias
    assert unalias(["--store", "image", "image", "save", "-o", "x"]) == ["--store", "image", "save", "-o", "x"]
    assert unalias(["image", "ls"]) == ["image", "ls"] and unalias(["save", "image"]) == ["save", "image"]
    assert set(IMAGE_ALIASES) == {"save", "load", "pull", "push", "import"}
    out = tmp_path / "b.tar"
    airgap("image", "save", "-o", str(out), three_images[0])
    airgap("rmi", three_images[0])
    assert "Loaded image: " + three_images[0] in airgap("image", "load", "-i", str(out)).out


def test_help_and_unknown_verbs_still_list_everything(airgap: Airgap) -> None:
    res = airgap("nosuchverb", ok=False)
    assert res.code == 2 and "invalid choice: 'nosuchverb'" in res.err and "mirror-config" in res.err


@pytest.mark.parametrize("columns", [50, 200])
def test_help_is_as_wide_as_columns_says(columns: int) -> None:
    """Help wraps at $COLUMNS (then the terminal's width, then 80), as argparse's own
    formatter found it through shutil, which airgap's does not import."""
    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run([sys.executable, "-m", "airgap", "load", "--help"], env=env, capture_output=True,
                         text=True, check=True).stdout
    widest = max(len(line) for line in out.splitlines())
    assert columns - 20 <= widest <= columns, out


def test_push_jobs_is_bounded(airgap: Airgap, three_images: list[str]) -> None:
    """Each image pushed at once holds its upload buffers: --jobs is 1 to 64, not 0 read
    as 1 or 100000 threads."""
    for jobs in ("0", "-3", "65", "100000", "x"):
        res = airgap("push", "--jobs", jobs, "--all", "127.0.0.1:9", ok=False)
        assert res.code == 2 and "argument --jobs" in res.err, (jobs, res.err)


def test_a_docker_config_of_the_wrong_shape_is_refused(airgap: Airgap, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """~/.docker/config.json that is not an object, or whose "auths" is not one, stops
    login/logout/pull with its name (Docker's CLI refuses to load it too), and is never
    rewritten: it was read as empty, and a login would have replaced it."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for text in ("[]", '{"auths": []}', '"x"'):
        (tmp_path / "config.json").write_text(text)
        res = airgap("logout", "registry.example:5000", ok=False)
        assert res.code == 1 and str(tmp_path / "config.json") in res.err, (text, res.err)
        assert (tmp_path / "config.json").read_text() == text


@pytest.mark.parametrize("kind", ["fifo", "huge", "deep"])
def test_a_docker_config_that_cannot_be_a_logins_file_is_refused(airgap: Airgap, tmp_path: Path, kind: str) -> None:
    """config.json is read as any document is: a FIFO (which blocked the command for ever),
    a file past 4 MiB, or JSON nested past the reader's stack (an internal error) stops the
    command with the file's name, exit 1, at once."""
    config = tmp_path / "config.json"
    if kind == "fifo":
        os.mkfifo(config)
    else:
        config.write_bytes(b'{"auths": {}, "x": "' + b"a" * (5 << 20) + b'"}' if kind == "huge"
                           else b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    res = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "logout",
                          "registry.example:5000"], capture_output=True, text=True, timeout=20,
                         env={**os.environ, "DOCKER_CONFIG": str(tmp_path)})
    assert res.returncode == 1 and str(config) in res.stderr and "internal error" not in res.stderr, res.stderr


def test_logout_keeps_a_linked_docker_config_linked(airgap: Airgap, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """config.json as a symbolic link (a dotfiles checkout): the file it points at is
    rewritten, the link stays, as Docker's CLI does."""
    import base64
    import json
    real = tmp_path / "dotfiles" / "docker.json"
    real.parent.mkdir()
    token = base64.b64encode(b"u:p").decode()
    real.write_text(json.dumps({"auths": {"a.example": {"auth": token}, "b.example": {"auth": token}}}))
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").symlink_to(real)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    airgap("logout", "a.example")
    assert (tmp_path / "docker" / "config.json").is_symlink()
    assert json.loads(real.read_text()) == {"auths": {"b.example": {"auth": token}}}


def test_serve_refuses_a_bad_address_or_certificate_at_once(airgap: Airgap, tmp_path: Path) -> None:
    """In a child with a timeout: were one taken, serve would serve."""
    not_a_cert = tmp_path / "k.pem"
    not_a_cert.write_text("not a certificate\n")
    cases = [(["--addr", "127.0.0.1:99999"], 2, "a port from 0 to 65535"),
             (["--addr", "127.0.0.1:\u0663"], 2, "a port from 0 to 65535"),  # a digit, but not ASCII
             (["--addr", "127.0.0.1:0", "--tls-cert", str(not_a_cert), "--tls-key", str(not_a_cert)], 1,
              f"--tls-cert {not_a_cert} and --tls-key {not_a_cert}: cannot load a certificate"),
             (["--addr", "127.0.0.1:0", "--tls-cert", str(tmp_path / "no.crt"), "--tls-key", str(not_a_cert)], 1,
              "No such file or directory")]
    for args, code, needle in cases:
        res = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "serve", *args],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == code and needle in res.stderr and "internal error" not in res.stderr, \
            (args, res.returncode, res.stderr)


@pytest.mark.parametrize("dest,needle", [("host:abc", "invalid reference format"), ("host:99999", "port 99999"),
                                         ("host:5000/a//b", "invalid reference format"), ("ho st", "DEST must be"),
                                         ("http://host:5000", "invalid reference format")])
def test_a_registry_dest_must_be_a_host_and_port(airgap: Airgap, dest: str, needle: str) -> None:
    """mirror-config --registry and push --all DEST: a port that is no port was written
    into node configuration (http://host:abc) or pushed to."""
    for verb in (["mirror-config", "containerd", "--insecure", "--registry", dest], ["push", "--all", dest]):
        res = airgap(*verb, ok=False)
        assert res.code == 2 and needle in res.err and res.out == "", (verb, res.err)
    assert airgap("mirror-config", "containerd", "--insecure", "--registry", "[::1]:5000/p").code == 0


@pytest.mark.parametrize("upstream", ["../..", "ghcr.io/team", 'ghcr.io"\n[host."evil"]', "ghcr.io:99999"])
def test_mirror_config_upstreams_are_registry_hosts(airgap: Airgap, tmp_path: Path, upstream: str) -> None:
    """An --upstream is a file name under -o DIR and a quoted word inside it: ``../..``
    wrote hosts.toml two levels above DIR, a quote wrote TOML of its own."""
    out = tmp_path / "o" / "certs.d"
    res = airgap("mirror-config", "containerd", "--registry", "site.lan:5000", "--upstream", upstream,
                 "-o", str(out), ok=False)
    assert res.code == 2 and not (tmp_path / "o").exists(), res.err
    assert not list(tmp_path.rglob("hosts.toml"))


def test_mirror_config_quotes_the_ca_path(airgap: Airgap, tmp_path: Path) -> None:
    """A CA file whose name has a quote or a backslash is written escaped (it ended the TOML
    and YAML string early); one with a newline is refused."""
    import tomllib
    from ..registry_peer import make_ca
    ca = tmp_path / 'site "ca"\\.pem'
    ca.write_bytes(make_ca(tmp_path / "made")[0].read_bytes())
    toml = airgap("mirror-config", "containerd", "--registry", "site.lan:5000", "--ca-cert", str(ca),
                  "--upstream", "ghcr.io").out
    assert tomllib.loads(toml.partition("\n")[2])["host"]["https://site.lan:5000"]["ca"] == str(ca)
    k3s = airgap("mirror-config", "k3s", "--registry", "site.lan:5000", "--ca-cert", str(ca)).out
    assert json.loads(k3s.split("ca_file: ", 1)[1].splitlines()[0]) == str(ca)  # YAML's "..." reads JSON's
    bad = tmp_path / "a\nb.pem"
    bad.write_text("x")
    res = airgap("mirror-config", "k3s", "--registry", "site.lan:5000", "--ca-cert", str(bad), ok=False)
    assert res.code == 2 and "control characters" in res.err and res.out == "", res.err


@pytest.mark.parametrize("content", [None, b"", b"-----BEGIN CERTIFICATE-----\nnot base64\n", b"x" * 100])
def test_mirror_config_refuses_a_ca_file_without_a_certificate(airgap: Airgap, tmp_path: Path,
                                                               content: bytes | None) -> None:
    """Nodes told to trust a CA file that is missing or holds no certificate would fail at
    their first pull: refused, naming the file, and nothing is written."""
    ca = tmp_path / "ca.crt"
    if content is not None:
        ca.write_bytes(content)
    res = airgap("mirror-config", "containerd", "--registry", "site.lan:5000", "--ca-cert", str(ca),
                 "-o", str(tmp_path / "o"), ok=False)
    assert res.code == 1 and f"--ca-cert {ca}: cannot read a CA certificate" in res.err, res.err
    assert not (tmp_path / "o").exists()


def test_a_credential_helper_that_answers_garbage_is_said(airgap: Airgap, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper's answer that is not a JSON object names the helper (it was an internal error)."""
    from airgap.errors import AirgapError
    from airgap.registry import auth
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, answer in (("garbage", "not json"), ("list", "[1, 2]")):
        helper = bindir / f"docker-credential-{name}"
        helper.write_text(f"#!/bin/sh\ncat > /dev/null\necho '{answer}'\n")
        helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for name in ("garbage", "list"):
        (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"reg.example": name}}))
        with pytest.raises(AirgapError, match=f"docker-credential-{name} get reg.example: its answer is not a JSON"):
            auth.lookup("reg.example")


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_a_ca_cert_that_cannot_be_read_is_named(airgap: Airgap, tmp_path: Path, content: str | None) -> None:
    """`--ca-cert F` missing said "No such file or directory", one without a certificate
    "[X509: NO_CERTIFICATE_OR_CRL_FOUND]": neither named F. Said before connecting."""
    ca = tmp_path / "site-ca.pem"
    if content is not None:
        ca.write_text(content)
    for verb in (["pull", "127.0.0.1:9/x:1"], ["search", "--registry", "127.0.0.1:9", "x"]):
        res = airgap(*verb, "--ca-cert", str(ca), ok=False)
        assert res.code == 1 and f"--ca-cert {ca}: cannot read a CA certificate" in res.err, res.err
        assert "connect" not in res.err


def test_a_users_default_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """Not root: $XDG_DATA_HOME/airgap, a relative $XDG_DATA_HOME ignored (the XDG spec), else
    ~/.local/share/airgap; with no home directory at all, a usage error, never a directory
    named `~` made in the current one."""
    import pwd
    from airgap.cli.main import main
    from airgap.store import default_store_path
    monkeypatch.delenv("AIRGAP_STORE", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert default_store_path() == Path("/srv/data/airgap")
    for relative in ("data", ""):
        monkeypatch.setenv("XDG_DATA_HOME", relative)
        assert default_store_path() == Path("/home/u/.local/share/airgap")
    monkeypatch.delenv("HOME")

    def no_user(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)
    monkeypatch.setattr(pwd, "getpwuid", no_user)
    monkeypatch.chdir(tmp_path)
    assert main(["images"]) == 2
    assert "no home directory" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    # the registry logins (~/.docker/config.json) likewise, unless $DOCKER_CONFIG names them
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    assert main(["logout", "127.0.0.1:1"]) == 2
    assert "set $DOCKER_CONFIG" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_templates_over_go_structs() -> None:
    """Docker's inspect types as templates see them: a struct has every field and no other
    (a missing one is Docker's error), is neither counted nor ranged over, prints as {…};
    a nil pointer prints <nil>, and a field of it is an error; a time prints as Go's."""
    from airgap.cli.govalues import GoNil, GoNilList, GoStruct, GoText
    dot = GoStruct({"A": "a", "L": GoNilList(), "P": GoNil("*x.Y"),
                    "T": GoText("0001-01-01T00:00:00Z", "0001-01-01 00:00:00 +0000 UTC"),
                    "S": GoStruct({"B": 1, "C": ""}, frozenset({"C"}))})
    assert Template('{{.S}} {{.L}} {{.P}} {{printf "%s|%v|%q" .T .P .P}} {{json .}}').render(dot) == \
        '{1 } [] <nil> 0001-01-01 00:00:00 +0000 UTC|<nil>|%!q(*x.Y=<nil>) ' \
        '{"A":"a","L":null,"P":null,"T":"0001-01-01T00:00:00Z","S":{"B":1}}'
    for tmpl, why in (("{{.Nope}}", 'map has no entry for key "Nope"'), ("{{.P.Q}}", "nil pointer evaluating *x.Y.Q"),
                      ("{{len .S}}", "len of type"), ("{{range .S}}{{end}}", "can't iterate over a struct")):
        with pytest.raises(UsageError, match=re.escape(why)):
            Template(tmpl).render(dot)


def test_history(airgap: Airgap, three_images: list[str]) -> None:
    """docker history's columns and rules (compared with Docker in tests/interop)."""
    out = airgap("history", three_images[0]).out.splitlines()
    assert out[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(out) > 1 and out[1].startswith(airgap.image_id(three_images[0])[7:19])
    assert all(line.startswith("<missing>") for line in out[2:])
    assert airgap("history", "-q", "--no-trunc", three_images[0]).out.splitlines()[0] == airgap.image_id(three_images[0])
    assert airgap("image", "history", "-q", three_images[0]).out == airgap("history", "-q", three_images[0]).out
    assert airgap("history", "nope:1", ok=False).code == 1
    res = airgap("history", "-H=maybe", three_images[0], ok=False)
    assert res.code == 2 and "expected true or false" in res.err


def test_history_of_a_config_claiming_more_layers_than_it_has() -> None:
    """load refuses such a config; a store written otherwise gets the daemon's error, not a guess."""
    from types import SimpleNamespace
    from airgap.cli.images import history_rows
    from airgap.errors import AirgapError
    info = SimpleNamespace(config={"history": [{"created_by": "one"}, {"created_by": "two"}]}, id="sha256:" + "a" * 64,
                           manifest=SimpleNamespace(layers=[SimpleNamespace(size=512)]))
    with pytest.raises(AirgapError, match="too many non-empty layers in History section"):
        history_rows(info, True, True)  # type: ignore[arg-type]
    info.config["history"][1]["empty_layer"] = True
    assert [r["Size"] for r in history_rows(info, True, True)] == ["0B", "512B"]  # type: ignore[arg-type]


@pytest.mark.parametrize("ns,text", [(0, "0s"), (1, "1ns"), (1500, "1.5\u00b5s"), (1_500_000, "1.5ms"),
                                     (999_999_999, "999.999999ms"), (30 * 10**9, "30s"), (90 * 10**9, "1m30s"),
                                     (3600 * 10**9, "1h0m0s"), (3661 * 10**9 + 5 * 10**8, "1h1m1.5s"), (-2 * 10**9, "-2s")])
def test_durations_print_as_go_prints_them(ns: int, text: str) -> None:
    from airgap.cli.govalues import GoDuration
    assert Template('{{.D}} {{printf "%s|%d" .D .D}} {{json .D}}').render({"D": GoDuration(ns)}) == f"{text} {text}|{ns} {ns}"


def test_the_console_script_collects_garbage_only_once_the_verb_runs(tmp_path: Path) -> None:
    """airgap.cli.run: no garbage collection during start-up (imports, the parser); the verb
    runs with it on, what start-up made frozen out of it (a long load still collects)."""
    script = f"""
import atexit, gc, sys
from airgap.cli import main as m
seen = []
real = m.Context
m.Context = lambda args: (seen.append(gc.isenabled()), real(args))[1]
atexit.register(lambda: print(seen, gc.isenabled(), gc.get_freeze_count() > 1000))
sys.argv = ['airgap', '--store', {str(tmp_path / 'store')!r}, 'images', '-q']
from airgap.cli import run
run()
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (res.returncode, res.stdout, res.stderr) == (0, "[False] True True\n", "")


def test_leaving_without_teardown_still_does_what_an_exit_does(tmp_path: Path) -> None:
    """The console script leaves without the interpreter's teardown (main.leave); what an
    exit does that matters is still done: exit handlers run, buffered output is written (a
    failed write fails the command), and a thread still running is waited for."""
    script = f"""
import atexit, sys, threading, time
from airgap.cli.main import leave
atexit.register(lambda: open({str(tmp_path / 'atexit')!r}, 'w').close())
def late():
    time.sleep(0.3)
    open({str(tmp_path / 'thread')!r}, 'w').close()
if sys.argv[1] == 'thread':
    threading.Thread(target=late).start()
sys.stdout.write('buffered, no newline')
leave(int(sys.argv[2]))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered
    for mode, code in (("plain", 0), ("plain", 3), ("thread", 0)):
        for f in tmp_path.iterdir():
            f.unlink()
        res = subprocess.run([sys.executable, "-c", script, mode, str(code)], capture_output=True, text=True,
                             env=env)
        assert (res.returncode, res.stdout, res.stderr) == (code, "buffered, no newline", "")
        assert (tmp_path / "atexit").exists()
        assert (tmp_path / "thread").exists() == (mode == "thread")
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-c", script, "plain", "0"], stdout=full, stderr=subprocess.PIPE,
                             env=env, text=True)
    assert res.returncode == 1 and res.stderr == "airgap: error: writing standard output: No space left on device\n"


def test_a_small_file_is_read_in_reads_of_its_size(airgap: Airgap, three_images: list[str], tmp_path: Path) -> None:
    """The store index is read under a 256 MiB cap, and a read asks for its whole length in
    memory at once: every verb needed 256 MiB of address space for an index of a few KiB
    (an internal error under ``ulimit -v 200000``). Reads are no larger than the file."""
    import resource
    limit = 128 << 20

    def capped() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out = tmp_path / "b.tar"
    for args in (["images"], ["save", "-o", str(out), three_images[0]], ["load", "-i", str(out)]):
        res = subprocess.run([sys.executable, "-m", "airgap", "--store", str(airgap.store), "--progress", "none",
                              *args], capture_output=True, text=True, preexec_fn=capped, timeout=120)
        assert res.returncode == 0, f"{args[0]}: {res.stderr}"
        assert args[0] != "images" or "example/app-a" in res.stdout
    from airgap.errors import FormatError
    from airgap.smallfile import read_small
    big = tmp_path / "big"
    big.write_bytes(os.urandom(3 << 20))  # several reads of CHUNK, and one past the cap refused
    assert read_small(big, 3 << 20, "list") == big.read_bytes()
    with pytest.raises(FormatError, match="more than"):
        read_small(big, (3 << 20) - 1, "list")
    fifo = tmp_path / "fifo"  # a list from a pipe: no size to go by, read a CHUNK at a time
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat {big} > {fifo}"])
    assert read_small(fifo, 4 << 20, "list") == big.read_bytes()
    assert writer.wait(timeout=60) == 0
    endless = subprocess.Popen(["sh", "-c", f"exec yes > {fifo}"])  # and a pipe that never ends: the cap ends it
    try:
        code = f"from airgap.smallfile import read_small\nread_small({str(fifo)!r}, 2 << 20, 'list')"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "FormatError" in res.stderr and "more than 2048 KiB" in res.stderr
    finally:
        endless.kill()
        endless.wait()


def test_a_stored_document_is_read_whole_up_to_its_cap(airgap: Airgap, three_images: list[str]) -> None:
    """Manifests and configs come out of the store read in reads of their own size, checked
    against their digest, and one larger than the cap is damage."""
    from airgap.errors import StoreCorrupt
    from airgap.store import Store
    store = Store(airgap.store)
    digest = json.loads(airgap("inspect", three_images[0]).out)[0]["Id"]  # the config
    data = (airgap.store / "blobs" / "sha256" / digest[7:]).read_bytes()
    assert store.read_blob(digest, limit=len(data)) == data
    with pytest.raises(StoreCorrupt, match=f"blob {digest} is larger than {len(data) - 1} bytes"):
        store.read_blob(digest, limit=len(data) - 1)
