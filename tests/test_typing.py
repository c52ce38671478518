"""mypy --strict over airgap/ is part of the suite: a type error fails CI."""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def test_mypy_strict() -> None:
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-m", "mypy"], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_typing_is_imported_for_the_type_checker_only() -> None:
    """No module of airgap imports typing at run time: it costs ~12 M instructions, 8% of a
    load of present images (mostly start-up). typing's names come in under
    ``if TYPE_CHECKING:`` (``TYPE_CHECKING = False``, mypy takes it as true), NamedTuple from
    airgap.records, and the tests of the reload check what it imports."""
    root = Path(__file__).resolve().parent.parent / "airgap"

    def runtime_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
        for node in body:
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                yield from runtime_imports(node.orelse)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    yield from runtime_imports(getattr(node, field, []))

    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in runtime_imports(ast.parse(path.read_text()).body):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if "typing" in names:
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
