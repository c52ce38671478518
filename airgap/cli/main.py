"""Entry point: parse, dispatch, and map errors to exit codes (the only place that does)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..errors import AirgapError
from . import images, keys, remote, search, system, transfer
from .context import Context


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"airgap: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="airgap", description="Carry container images across an air gap.")
    p.add_argument("--version", action="version", version=f"airgap {__version__}")
    p.add_argument("--store", type=Path, help="store directory (default: $AIRGAP_STORE, "
                   "/var/lib/airgap for root, ~/.local/share/airgap otherwise)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--progress", choices=("auto", "plain", "none"), default="auto",
                   help="progress on stderr: bars on a terminal (auto), lines, or nothing")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    transfer.register(sub)
    images.register(sub)
    keys.register(sub)
    search.register(sub)
    remote.register(sub)
    system.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    ctx = Context(args)
    try:
        return int(args.func(ctx, args) or 0)
    except AirgapError as exc:
        if args.debug:
            raise
        sys.stdout.flush()
        sys.stderr.write(f"airgap: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        sys.stderr.write("airgap: interrupted\n")
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        if args.debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"airgap: error: {exc.strerror or exc}{where}\n")
        return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
