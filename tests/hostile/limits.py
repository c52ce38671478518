"""Run airgap in a child process with a clock and a memory meter: hostile input must be
refused in bounded time and memory, never hang or grow."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MEMORY_LIMIT_MB = 100


@dataclass
class Run:
    code: int
    err: str
    out: str
    seconds: float
    max_rss_mb: float


def run_airgap(store: Path, *args: str, stdin: IO[bytes] | int | None = None, timeout: float = 60,
               env: dict[str, str] | None = None) -> Run:
    """``python -m airgap --store STORE ARGS`` with its peak RSS (from wait4) and wall time."""
    cmd = [sys.executable, "-m", "airgap", "--store", str(store), "--progress", "none", *args]
    return run_measured(cmd, stdin=stdin, timeout=timeout, env=env)


# A child's peak RSS counts the pages it shared with its parent before exec: launched from
# a large pytest process it would read high. A small launcher forks and execs the command
# and reports its child's peak from wait4.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(cmd: list[str], stdin: IO[bytes] | int | None = None, timeout: float = 60,
                 env: dict[str, str] | None = None) -> Run:
    import tempfile
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        run = _run([sys.executable, "-c", _LAUNCHER, rss.name, *cmd], stdin, timeout, env)
        text = Path(rss.name).read_text().strip()
    run.max_rss_mb = int(text) / 1024 if text else float("nan")
    return run


def _run(cmd: list[str], stdin: IO[bytes] | int | None, timeout: float, env: dict[str, str] | None) -> Run:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                            start_new_session=True)
    got: dict[str, bytes] = {}

    def drain(name: str, f: Any) -> None:
        got[name] = f.read()
        f.close()
    readers = [threading.Thread(target=drain, args=(n, f)) for n, f in (("out", proc.stdout), ("err", proc.stderr))]
    for t in readers:
        t.start()
    deadline = start + timeout
    while True:
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, 9)
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            for t in readers:
                t.join()
            raise AssertionError(f"{' '.join(cmd[3:])} still running after {timeout} s")
        time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    return Run(proc.returncode, got.get("err", b"").decode(errors="replace"),
               got.get("out", b"").decode(errors="replace"), time.monotonic() - start, 0.0)


def refused(run: Run, *needles: str, seconds: float = 20, code: int = 3) -> None:
    """Refused with ``code``, a message holding each needle, in bounded time and memory."""
    assert run.code == code, (run.code, run.err)
    assert "Traceback" not in run.err and "internal error" not in run.err, run.err
    for n in needles:
        assert n in run.err, run.err
    assert run.seconds < seconds, f"took {run.seconds:.1f} s"
    assert run.max_rss_mb < MEMORY_LIMIT_MB, f"peak RSS {run.max_rss_mb:.0f} MB"


def pipe_of(data: bytes) -> int:
    """The read end of a real pipe carrying ``data`` (a file given as stdin can seek, and
    airgap reads it as a file)."""
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as out:
            try:
                out.write(data)
            except BrokenPipeError:
                pass
    threading.Thread(target=feed, daemon=True).start()
    return r


def load_from_file_and_pipe(store: Path, path: Path, *args: str, timeout: float = 60) -> list[tuple[str, Run]]:
    """``load -i PATH`` and ``load`` with PATH's bytes on a pipe, each with its name for
    messages (the path, then ``stdin``)."""
    return [(str(path), run_airgap(store, "load", "-i", str(path), *args, timeout=timeout)),
            ("stdin", run_airgap(store, "load", *args, stdin=pipe_of(path.read_bytes()), timeout=timeout))]
