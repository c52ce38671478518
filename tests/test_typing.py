"""mypy --strict over airgap/ is part of the suite: a type error fails CI."""

import subprocess
import sys
from pathlib import Path


def test_mypy_strict() -> None:
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-m", "mypy"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_modules_that_make_named_tuples_evaluate_their_annotations() -> None:
    """typing compiles each NamedTuple field's annotation that is a string, and the first
    compile() of a process builds the parser's AST types: ~8 M instructions, 5% of a
    reload. So a module that makes NamedTuples (or TypedDicts) does not use
    ``from __future__ import annotations``; its forward references are quoted instead."""
    root = Path(__file__).resolve().parent.parent / "airgap"
    offenders = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))
                 if any(kind in (text := p.read_text()) for kind in ("(NamedTuple)", "TypedDict"))
                 and "from __future__ import annotations" in text]
    assert offenders == []
