"""``airgap --version``: the version, the commit it was built from, the Python it runs on."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

from .. import __version__


def build_commit() -> str:
    """The commit recorded when the binary was built, else the checkout's, else unknown."""
    try:
        from .. import _buildinfo  # type: ignore[attr-defined]  # written by build-binary.sh
        return str(_buildinfo.COMMIT)
    except ImportError:
        pass
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                 capture_output=True, text=True, timeout=5)
            if out.returncode == 0:
                dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                       capture_output=True, text=True, timeout=5).stdout.strip()
                return out.stdout.strip() + ("-dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    return "unknown"


def version_text() -> str:
    frozen = " (one-file binary)" if getattr(sys, "frozen", False) else ""
    return (f"airgap {__version__}\n"
            f"commit {build_commit()}\n"
            f"Python {platform.python_version()} ({platform.python_implementation()}){frozen}\n"
            f"platform {platform.system().lower()}/{platform.machine()} {platform.libc_ver()[0]} "
            f"{platform.libc_ver()[1]}".rstrip())
