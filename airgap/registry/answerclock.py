"""A registry's answer, its status line and headers, must come whole within ANSWER_TIME of
the first read that waits for it. Every read has the client's read timeout, and a registry
that sends a byte a minute passed them all: h11 takes up to 16 KiB of headers, eleven days
a request. (The body is read after, under bounds of its own: ``client.DOCUMENT_TIME`` and
the blob rate.) A TLS handshake, one call with a timeout per socket read, must end within
ANSWER_TIME too: a watchdog shuts the socket down under a dripped certificate chain (the
same ``Watchdog`` closes an upload's connections under a registry that reads it a byte at
a time)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar

import httpcore
import httpx

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ANSWER_TIME = 60.0

# per thread (a request's reads happen in the thread that sends it): when the first read
# waited, or [] before it; None outside a send
_started: ContextVar[list[float] | None] = ContextVar("answer_started", default=None)


@contextlib.contextmanager
def answer_within() -> Iterator[None]:
    """Around a send (its redirects included): the reads until it returns share one clock."""
    token = _started.set([])
    try:
        yield
    finally:
        _started.reset(token)


def install(transport: httpx.HTTPTransport) -> httpx.HTTPTransport:
    """Put the clock under ``transport``'s connections: httpcore's network backend, which
    httpx offers no public way to (a test fails if this stops reaching it)."""
    pool = transport._pool
    pool._network_backend = _Backend(pool._network_backend)
    return transport


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        started = _started.get()
        if started is None:
            return self._inner.read(max_bytes, timeout)
        now = time.monotonic()
        if not started:
            started.append(now)
        left = started[0] + ANSWER_TIME - now
        try:
            if left <= 0:
                raise httpcore.ReadTimeout("timed out")
            return self._inner.read(max_bytes, left if timeout is None else min(timeout, left))
        except httpcore.ReadTimeout:
            if timeout is not None and timeout < left:
                raise  # the read timeout's own
            raise httpcore.ReadTimeout(f"no whole answer (status and headers) in {ANSWER_TIME:g} s; "
                                       "stalled") from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        raw: socket.socket = self._inner.get_extra_info("socket")
        # a descriptor of our own for the same socket: wrapping detaches ``raw``'s, and a
        # closed one could be another connection's by the time the watchdog fires
        twin = socket.socket(fileno=os.dup(raw.fileno()))

        def cut() -> None:
            with contextlib.suppress(OSError):
                twin.shutdown(socket.SHUT_RDWR)  # the handshake's blocked read returns

        try:
            with Watchdog(ANSWER_TIME, cut) as dog:
                try:
                    return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))
                except httpcore.ConnectError:
                    if dog.fired:
                        raise httpcore.ConnectTimeout(f"the TLS handshake took more than {ANSWER_TIME:g} s; "
                                                      "stalled") from None
                    raise
        finally:
            twin.close()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class Watchdog:
    """Calls ``fire`` once, on a thread of its own, when ``window`` seconds pass without
    ``moved()`` inside the ``with`` block: for what one call cannot bound itself (a
    handshake, a send that some bytes move on now and then). ``fired`` says whether it
    did; leaving the block stops it, a firing under way first finished."""

    def __init__(self, window: float, fire: Callable[[], object]) -> None:
        self.window, self._fire, self.fired = window, fire, False
        self._last = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def moved(self) -> None:
        self._last = time.monotonic()

    def __enter__(self) -> Watchdog:
        self._last = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self.window / 4)):
            if time.monotonic() - self._last > self.window:
                self.fired = True
                self._fire()
                return
