"""The command line: thin verbs around the store and the copy engine."""

from __future__ import annotations

import gc

TYPE_CHECKING = False  # not typing's: that import is start-up too (see run)
if TYPE_CHECKING:
    from typing import NoReturn


def run() -> NoReturn:
    """The console script's (and the one-file binary's) entry point.

    Start-up (the imports, the parser) makes tens of thousands of objects that live as
    long as the process; the cyclic collector walking them again and again finds nothing:
    2% of a short command such as a reload. So it is off until the verb starts,
    and then what start-up made is frozen out of every later collection.
    """
    gc.disable()
    from .main import leave, main
    leave(main(started=_collect))


def _collect() -> None:
    gc.freeze()
    gc.enable()
