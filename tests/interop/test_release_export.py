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
