"""mypy --strict over airgap/ is part of the suite: a type error fails CI."""

import subprocess
import sys
from pathlib import Path


def test_mypy_strict() -> None:
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-m", "mypy"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
