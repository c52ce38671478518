"""Entry point: parse, dispatch, and map errors to exit codes (the only place that does)."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
from collections.abc import Callable, Collection, Sequence

from ..errors import AirgapError
from ..words import printable
from .context import Context, store_arg

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

# argparse looks each of its own words up in gettext's default domain ("messages"), twice or
# more for every parser it makes, and each lookup reads the locale variables and imports
# `locale`: 4.6 M instructions, 3% of a load of present images. It finds no catalog (Python
# ships none), or one that another program installed under that generic name. airgap's
# messages are English, and so are argparse's words in them.
argparse._ = str  # type: ignore[attr-defined]

# Which module registers each verb: a command builds only its own parser (and imports only
# its module), so that start-up stays short; help and unknown verbs build them all.
# tests/cli/test_manage.py checks this table against what the modules register.
MODULES = ("transfer", "images", "keys", "search", "remote", "mirror", "system")
VERBS = {"load": "transfer", "save": "transfer", "verify": "transfer", "inventory": "transfer",
         "import": "transfer", "images": "images", "image": "images", "inspect": "images", "history": "images",
         "rmi": "images", "tag": "images", "key": "keys", "search": "search", "login": "remote",
         "logout": "remote", "pull": "remote", "push": "remote", "serve": "remote",
         "mirror-config": "mirror", "system": "system", "store": "system"}
_VALUED = ("--store", "--progress")  # global options that take a value


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` finds it ($COLUMNS, then the
    terminal on stdout, else 80), without importing shutil (and, through it, bz2 and lzma):
    argparse makes a formatter, and asks for the width, for every argument a parser adds,
    so shutil's import was 2 ms of every command."""
    with contextlib.suppress(KeyError, ValueError):
        if (columns := int(os.environ["COLUMNS"])) > 0:
            return columns
    try:
        return os.get_terminal_size(1).columns or 80  # stdout's descriptor
    except (ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"airgap: error: {message}\n")
        raise SystemExit(2)


def build_parser(verbs: Collection[str] = VERBS) -> argparse.ArgumentParser:
    """The parser of these verbs (of all: for help, or a verb airgap does not know)."""
    import importlib
    p = _Parser(prog="airgap", description="Carry container images across an air gap.")
    p.add_argument("--version", action="store_true", help="show the version, commit and platform")
    _add_globals(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in MODULES:
        if any(VERBS[v] == name for v in verbs):
            importlib.import_module(f"{__package__}.{name}").register(sub, verbs)
    _spread_globals(sub)
    return p


def verb_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (after the global options), or None."""
    i = _verb_index(argv)
    return argv[i] if i is not None else None


def _verb_index(argv: Sequence[str]) -> int | None:
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg.startswith("--") and len(arg) > 2 and any(v.startswith(arg) for v in _VALUED):
            skip = True  # argparse takes abbreviations too: --stor DIR
        elif arg in ("-h", "--help", "--version"):
            return None
        elif not arg.startswith("-"):
            return i
    return None


# ``docker image save`` and the like: the same verbs as ``docker save``…
IMAGE_ALIASES = ("save", "load", "pull", "push", "import")


def unalias(argv: list[str]) -> list[str]:
    """``image save …`` is ``save …`` (Docker's management-command spelling)."""
    i = _verb_index(argv)
    if i is not None and argv[i] == "image" and i + 1 < len(argv) and argv[i + 1] in IMAGE_ALIASES:
        return argv[:i] + argv[i + 1:]
    return argv


def _add_globals(p: argparse.ArgumentParser, top: bool) -> None:
    """The global options; on sub-commands too, so that `airgap load --store S` works."""
    default = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    p.add_argument("--store", type=store_arg, default=default(None),
                   help="store directory (default: $AIRGAP_STORE, /var/lib/airgap for root, "
                        "~/.local/share/airgap otherwise)")
    p.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks")
    p.add_argument("--progress", choices=("auto", "plain", "none"), default=default("auto"),
                   help="progress on stderr: bars on a terminal (auto), lines, or nothing")


def _spread_globals(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    seen: set[int] = set()
    for parser in sub.choices.values():
        if id(parser) in seen:
            continue
        seen.add(id(parser))
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            for n in nested:
                _spread_globals(n)
        else:
            _add_globals(parser, top=False)


def _standard_fds() -> None:
    """Descriptors 0-2 closed at start (``airgap load <&-``): /dev/null is opened on them,
    as Go's runtime does for docker, so that no file airgap opens becomes "standard
    output", and ``sys.stdin``/``stdout``/``stderr`` are never None (an internal error)."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
            setattr(sys, name, open(fd, mode, closefd=False))


def main(argv: Sequence[str] | None = None, started: Callable[[], None] = lambda: None) -> int:
    """Run one command; its exit code. ``started`` is called once start-up is over, just
    before the verb runs (``airgap.cli.run`` resumes garbage collection there)."""
    _standard_fds()
    words = unalias(list(sys.argv[1:] if argv is None else argv))
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:  # a lone surrogate from a hostile document prints as "?", not a crash
        reconfigure(errors="replace")
    verb = verb_of(words)
    parser = build_parser([verb] if verb in VERBS else () if words == ["--version"] else VERBS)
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.version:
        from .version import version_text
        print(version_text())
        return 0
    if not args.command:
        parser.print_usage(sys.stderr)
        sys.stderr.write("airgap: error: a command is required (see airgap --help)\n")
        return 2
    ctx = Context(args)
    started()
    try:
        return int(args.func(ctx, args) or 0)
    except AirgapError as exc:
        if args.debug:
            raise
        sys.stdout.flush()
        sys.stderr.write(printable(f"airgap: error: {exc}") + "\n")
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
        sys.stderr.write(printable(f"airgap: error: {exc.strerror or exc}{where}") + "\n")
        return 1
    except Exception as exc:  # a bug: say so in one line, the traceback is for --debug
        if args.debug:
            raise
        sys.stderr.write(printable(f"airgap: error: internal error: {type(exc).__name__}: {exc} "
                                   "(run with --debug for the traceback, and please report it)") + "\n")
        return 1


def leave(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, which frees every module and object one by
    one: a tenth of a short command's time (a reload of present images). What teardown
    does that matters is done first: the exit handlers run and the standard streams are
    flushed (output that cannot be written is a failure, exit 1, where Python says 120). With
    a thread other than daemons still running, the ordinary exit, which waits for it."""
    threading = sys.modules.get("threading")  # not imported: no thread was started
    if threading is not None and any(t.is_alive() and not t.daemon for t in threading.enumerate()
                                     if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader is gone (`airgap images | head -1`): as in main
        code = code or 1
    except (OSError, ValueError) as exc:
        code = code or 1
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"airgap: error: writing standard output: {getattr(exc, 'strerror', None) or exc}\n")
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)
