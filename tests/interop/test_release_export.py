"""scripts/release-export.sh against a local registry and a local store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Airgap, need, write_tree
from ..registry_peer import start_registry
from .test_registry import skopeo_push

pytestmark = pytest.mark.interop
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "release-export.sh"


def test_release_export(tmp_path: Path, airgap: Airgap, make_airgap: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = start_registry(need("docker-registry"), tmp_path / "reg", "plain")
    try:
        src = make_airgap("src")
        d = write_tree(tmp_path / "r", {"remote.bin": os.urandom(50000)})
        src("import", str(d), "example/remote:1")
        skopeo_push(reg, src.store, "docker.io/example/remote:1", "team/remote:1")
        local = write_tree(tmp_path / "l", {"local.txt": "local"})
        airgap("import", str(local), "example/local:2")
        monkeypatch.chdir(tmp_path)
        airgap("key", "generate", "release")
        listing = tmp_path / "images.txt"
        listing.write_text(f"# release 1\n\nexample/local:2\n{reg.host}/team/remote:1   # from the registry\n")
        env = {**os.environ, "AIRGAP": str(Path(sys.executable).parent / "airgap"),
               "AIRGAP_STORE": str(airgap.store), "AIRGAP_INSECURE_REGISTRIES": reg.host}
        out = tmp_path / "out"
        res = subprocess.run(["bash", str(SCRIPT), "-i", str(listing), "-k", "release.key", "-o", str(out), "-n", "rel1", "--split", "1M"],
                             env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert sorted(os.listdir(out)) == ["SHA256SUMS", "rel1.tar.001", "rel1.tar.sha256", "summary.json", "summary.md"]
        subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, check=True, capture_output=True)
        summary = json.loads((out / "summary.json").read_text())
        assert [i["references"] for i in summary["images"]] == [["docker.io/example/local:2"], [f"{reg.host}/team/remote:1"]]
        assert [s["origin"] for s in summary["sources"]] == ["store", "pulled"]
        assert summary["bundleDigest"] in (out / "summary.md").read_text()
        site = make_airgap("site")
        res2 = site("verify", "--trust", str(tmp_path / "release.pub"), str(out / "rel1.tar.001"))
        assert "trusted key" in res2.out
        # the first failure stops it, with a non-zero code and no bundle
        listing.write_text("example/local:2\nexample/missing:1\n")
        bad = tmp_path / "bad"
        res = subprocess.run(["bash", str(SCRIPT), "-i", str(listing), "-k", "release.key", "-o", str(bad)],
                             env=env, capture_output=True, text=True)
        assert res.returncode != 0 and "missing" in res.stderr
        assert not (bad / "images.tar").exists()
    finally:
        reg.stop()


def test_release_export_all_platforms_pins_the_index(tmp_path: Path, airgap: Airgap, make_airgap: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """--all-platforms keeps a multi-platform image whole; the summary pins the index digest,
    which push --all keeps at the site."""
    from airgap.digest import sha256_digest

    from .test_registry import _index_layout
    from ..conftest import run_tool
    reg = start_registry(need("docker-registry"), tmp_path / "reg", "plain")
    try:
        layout, _ = _index_layout(make_airgap("plat"), tmp_path)
        run_tool("skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false", f"oci:{layout}:multi",
                 f"docker://{reg.host}/team/multi:1")
        raw = run_tool("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/team/multi:1")
        index = sha256_digest(raw.encode())
        monkeypatch.chdir(tmp_path)
        airgap("key", "generate", "release")
        listing = tmp_path / "images.txt"
        listing.write_text(f"{reg.host}/team/multi:1\n")
        env = {**os.environ, "AIRGAP": str(Path(sys.executable).parent / "airgap"),
               "AIRGAP_STORE": str(airgap.store), "AIRGAP_INSECURE_REGISTRIES": reg.host}
        out = tmp_path / "out"
        res = subprocess.run(["bash", str(SCRIPT), "-i", str(listing), "-k", "release.key", "-o", str(out),
                              "--all-platforms"], env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["pins"] == {f"{reg.host}/team/multi:1": index}
        assert sorted(summary["images"][0]["platforms"]) == ["linux/amd64", "linux/arm64"]
    finally:
        reg.stop()
