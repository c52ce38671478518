"""``airgap serve``: a read-only OCI distribution API over the store.

Repositories are the stored names' paths (``library/nginx``, ``team/app``); an official
image is also served without ``library/`` (``nginx``), and every repository also under
its full name (``docker.io/library/nginx``). Manifests are served with the bytes, media
type and digest they were stored with; blobs with ``Range`` support, hashed as they are
sent: a blob whose bytes on disk no longer match its digest is cut short before its last
byte, so no client ever completes a download of wrong bytes. Every request gets an HTTP
answer and one log line.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..errors import AirgapError
from ..oci import INDEX_TYPES, MANIFEST_TYPES, load_json
from ..store.gc import reachable
from ..store.layout import Store
from ..words import is_number, printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

_ROUTES = [
    ("base", r"^/v2/?$"),
    ("catalog", r"^/v2/_catalog$"),
    ("tags", r"^/v2/(?P<name>.+)/tags/list$"),
    ("manifest", r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$"),
    ("blob", r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$"),
    ("referrers", r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$"),
]
_DIGEST = r"sha256:[a-f0-9]{64}"
# what the distribution registry routes as a digest (go-digest's DigestRegexp): a blob path
# of that shape that is not a digest airgap can hold is a 400 DIGEST_INVALID there, and here
_DIGEST_SHAPED = r"(?a)[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
REQUEST_TIMEOUT = 15.0   # seconds for a request to arrive (idle keep-alive, slow headers)
MAX_CONNECTIONS = 256    # open at once; each has a thread
MAX_LOG_PENDING = 4 << 20  # characters of log lines waiting for a log that takes nothing more
CATALOG_PAGE = 1000      # repositories in a _catalog page without `n`, as distribution's default


class _Repo:
    def __init__(self) -> None:
        self.tags: dict[str, tuple[str, str]] = {}   # tag -> (digest, media type)
        self.roots: set[str] = set()
        self.reach: set[str] = set()
        self.referrers: dict[str, list[str]] = {}    # subject digest -> manifests that refer to it


class _View:
    """What the store serves, rebuilt when ``index.json`` changes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._stamp: tuple[int, int] | None = (-1, -1)  # never a stamp: the first call builds
        self._repos: dict[str, _Repo] = {}
        self._primary: list[str] = []
        self._lock = threading.Lock()

    def repos(self) -> tuple[dict[str, _Repo], list[str]]:
        stamp = self.store.index_stamp()
        with self._lock:
            if stamp != self._stamp:
                self._repos, self._primary = self._build()
                self._stamp = stamp
            return self._repos, self._primary

    def _build(self) -> tuple[dict[str, _Repo], list[str]]:
        repos: dict[str, _Repo] = {}
        primary: list[str] = []
        images = sorted(self.store.images(), key=lambda i: [str(n) for n in i.names])
        for img in images:
            for n in img.names:
                aliases = [n.path, n.name]
                if n.path.startswith("library/"):
                    aliases.append(n.path[len("library/"):])
                for k, alias in enumerate(aliases):
                    repo = repos.get(alias)
                    if repo is None:
                        repo = repos[alias] = _Repo()
                        if k == 0:
                            primary.append(alias)
                    repo.roots.add(img.digest)
                    if n.tag and not n.digest:
                        repo.tags.setdefault(n.tag, (img.digest, img.descriptor.media_type))
        for repo in repos.values():
            repo.reach = reachable(self.store, repo.roots, strict=False)
            repo.reach |= {n.digest for img in images for n in img.names if n.digest and img.digest in repo.roots}
        referrers = [img for img in images if img.subject is not None and not img.names]
        for repo in repos.values():  # what refers to an image (OCI 1.1) is served beside it
            for img in referrers:
                if img.subject in repo.reach:
                    repo.referrers.setdefault(img.subject, []).append(img.digest)
                    repo.roots.add(img.digest)
                    repo.reach |= reachable(self.store, [img.digest], strict=False)
        return repos, sorted(primary)


def _referrers_index(store: Store, digests: list[str], artifact_type: str) -> bytes:
    """OCI 1.1's referrers answer: an index of the manifests that name the subject."""
    out = []
    for digest in sorted(set(digests)):
        if not store.has_blob(digest):
            continue
        doc = load_json(store.read_blob(digest), f"manifest {digest}")
        if not isinstance(doc, dict):
            continue
        config = doc.get("config")
        kind = doc.get("artifactType") or (config.get("mediaType") if isinstance(config, dict) else "") or ""
        if artifact_type and kind != artifact_type:
            continue
        entry = {"mediaType": str(doc.get("mediaType") or "application/vnd.oci.image.manifest.v1+json"),
                 "digest": digest, "size": store.blob_size(digest), "artifactType": str(kind)}
        if isinstance(doc.get("annotations"), dict):
            entry["annotations"] = doc["annotations"]
        out.append(entry)
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": out}).encode()


def _error(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # no HTTP/0.9: a request line it cannot read gets a whole answer
    server_version = "airgap"
    # headers and a small body go out in two writes: with Nagle's algorithm the second
    # waited for the client's delayed ACK, 40 ms a request (Go's net/http sets TCP_NODELAY too)
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        """The Server header: airgap, not the Python version it runs on."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        self.server.say(f"{self.address_string()} - [{self.log_date_time_string()}] {format % args}")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        line = getattr(self, "requestline", "") or "-"
        self.log_message('"%s" %s %s', _printable(line), code, size)

    def log_error(self, format: str, *args: Any) -> None:
        self.log_message("error: %s", _printable(format % args))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              head: bool = False) -> None:
        self._sent = True
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if "Content-Length" not in hdrs else hdrs["Content-Length"]))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a request line it cannot read, a line too long, an unknown
        method) in the registry's JSON, not its HTML page; the connection is closed after."""
        self.close_connection = True
        self.log_error("code %d, message %s", code, message)
        body = _error("UNSUPPORTED" if code == 501 else "UNKNOWN", message or explain or str(code))
        self._send(code, body, {"Connection": "close"}, head=self.command == "HEAD")

    def _not_found(self, code: str, message: str, head: bool) -> None:
        self._send(404, _error(code, message), head=head)

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def setup(self) -> None:
        super().setup()
        self.deadline = time.monotonic() + REQUEST_TIMEOUT
        self.rfile = io.BufferedReader(_DeadlineReader(self), 64 << 10)

    def handle_one_request(self) -> None:
        """A request (line, headers, any body) must arrive within REQUEST_TIMEOUT of the
        previous answer: idle and slow (one byte a second) clients are cut off."""
        self.deadline = time.monotonic() + REQUEST_TIMEOUT
        try:
            super().handle_one_request()
        except TimeoutError:
            self.close_connection = True

    def _unsupported(self) -> None:
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not is_number(raw) or len(raw) > 12:
            self.close_connection = True
            self._send(400, _error("UNSUPPORTED", f"invalid Content-Length {raw[:40]!r}"))
            return
        length = int(raw)
        if 0 < length <= 1 << 20:
            self.rfile.read(length)
        elif length:
            self.close_connection = True
        self._send(405, _error("UNSUPPORTED", "The operation is unsupported: this registry is read-only"))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_CONNECT = _unsupported

    def _route(self, head: bool) -> None:
        """Every request gets an HTTP answer; a failure is a 500 and one log line."""
        self._sent = False
        try:
            url = urlsplit(self.path)
            for kind, pattern in _ROUTES:
                m = re.match(pattern, url.path)
                if m:
                    getattr(self, f"_{kind}")(head=head, query=parse_qs(url.query), **m.groupdict())
                    return
            self._not_found("NOT_FOUND", "no such endpoint", head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except _Cut as exc:  # the body was under way: the only honest thing left is to stop
            self.log_error("%s", exc)
            self.close_connection = True
        except Exception as exc:
            self.log_error("%s: %s", type(exc).__name__, exc)
            if self._sent:
                self.close_connection = True
            else:
                self._send(500, _error("UNKNOWN", str(exc) if isinstance(exc, AirgapError)
                                       else "internal error (see the server log)"), head=head)

    def _base(self, head: bool, query: dict[str, list[str]]) -> None:
        self._send(200, b"{}", head=head)

    def _page(self, items: list[str], query: dict[str, list[str]]) -> tuple[list[str], str] | None:
        """Distribution's paging (``n``, ``last``); None after answering 400 to a bad ``n``."""
        last = query.get("last", [""])[0]
        items = [i for i in items if i > last] if last else items
        n = query.get("n", [""])[0]
        if n and (not is_number(n) or len(n) > 9):
            self._send(400, _error("PAGINATION_NUMBER_INVALID", f"invalid number of results requested: {n[:40]!r}"))
            return None
        if n and int(n) < len(items):
            items = items[: int(n)]
            if not items:
                return items, ""
            return items, f'<{urlsplit(self.path).path}?n={n}&last={items[-1]}>; rel="next"'
        return items, ""

    def _catalog(self, head: bool, query: dict[str, list[str]]) -> None:
        _, primary = self.server.view.repos()
        query.setdefault("n", [str(CATALOG_PAGE)])  # pages, as distribution's catalog (maxentries)
        page = self._page(primary, query)
        if page is None:
            return
        items, link = page
        self._send(200, json.dumps({"repositories": items}).encode(), {"Link": link} if link else None, head)

    def _tags(self, head: bool, query: dict[str, list[str]], name: str) -> None:
        repos, _ = self.server.view.repos()
        repo = repos.get(name)
        if repo is None:
            return self._not_found("NAME_UNKNOWN", f"repository name not known to registry: {name}", head)
        page = self._page(sorted(repo.tags), query)
        if page is None:
            return
        items, link = page
        self._send(200, json.dumps({"name": name, "tags": items}).encode(), {"Link": link} if link else None, head)

    def _manifest(self, head: bool, query: dict[str, list[str]], name: str, ref: str) -> None:
        repos, _ = self.server.view.repos()
        repo = repos.get(name)
        if repo is None:
            return self._not_found("NAME_UNKNOWN", f"repository name not known to registry: {name}", head)
        if re.fullmatch(_DIGEST, ref):
            digest = ref if ref in repo.reach else ""
        else:
            digest = repo.tags.get(ref, ("", ""))[0]
        store = self.server.view.store
        if not digest or not store.has_blob(digest):
            return self._not_found("MANIFEST_UNKNOWN", f"manifest unknown: {name}:{ref}", head)
        data = store.read_blob(digest)
        doc = load_json(data, f"manifest {digest}")
        media_type = str(doc.get("mediaType") or "") if isinstance(doc, dict) else ""
        if media_type not in (*MANIFEST_TYPES, *INDEX_TYPES):
            media_type = "application/vnd.oci.image.index.v1+json" if "manifests" in doc \
                else "application/vnd.oci.image.manifest.v1+json"
        self._send(200, data, {"Content-Type": media_type, "Docker-Content-Digest": digest,
                               "ETag": f'"{digest}"'}, head)

    def _referrers(self, head: bool, query: dict[str, list[str]], name: str, digest: str) -> None:
        repos, _ = self.server.view.repos()
        repo = repos.get(name)
        if repo is None:
            return self._not_found("NAME_UNKNOWN", f"repository name not known to registry: {name}", head)
        if not re.fullmatch(_DIGEST, digest):
            return self._send(400, _error("DIGEST_INVALID", f"invalid digest {digest[:80]!r}"), head=head)
        wanted = query.get("artifactType", [""])[0]
        body = _referrers_index(self.server.view.store, repo.referrers.get(digest, []), wanted)
        headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
        if wanted:
            headers["OCI-Filters-Applied"] = "artifactType"
        self._send(200, body, headers, head)

    def _blob(self, head: bool, query: dict[str, list[str]], name: str, digest: str) -> None:
        if not re.fullmatch(_DIGEST, digest) and re.fullmatch(_DIGEST_SHAPED, digest):
            return self._send(400, _error("DIGEST_INVALID", f"invalid digest {digest[:80]!r}"), head=head)
        repos, _ = self.server.view.repos()
        repo = repos.get(name)
        store = self.server.view.store
        if repo is None:
            return self._not_found("NAME_UNKNOWN", f"repository name not known to registry: {name}", head)
        if not re.fullmatch(_DIGEST, digest) or digest not in repo.reach or not store.has_blob(digest):
            return self._not_found("BLOB_UNKNOWN", f"blob unknown to registry: {digest}", head)
        with store.open_blob(digest) as f:
            size = os.fstat(f.fileno()).st_size
            start, end = 0, size - 1
            status = 200
            rng = self.headers.get("Range", "")
            ranges = _ranges(rng, size) if rng else []
            if ranges is None:  # as Go's ServeContent: 416
                return self._send(416, _error("RANGE_INVALID", f"invalid range {rng[:60]!r}"),
                                  {"Content-Range": f"bytes */{size}"}, head)
            if rng and not ranges:
                return self._send(416, b"", {"Content-Range": f"bytes */{size}"}, head)
            if len(ranges) == 1:
                (start, end), status = ranges[0], 206
            # several ranges: the whole blob (a server may ignore Range; Go's sends multipart)
            headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                       "Accept-Ranges": "bytes", "Content-Length": str(end - start + 1),
                       "ETag": f'"{digest}"'}
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self._send(status, b"", headers, head)
            if not head:
                self.wfile.flush()
                _send_verified(f, self.connection, digest, size, start, end + 1)


def _ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges a ``Range`` header asks for that overlap the blob, as Go's
    ``http.ServeContent`` parses them (spaces around each range, empty ones skipped);
    None when it cannot be read."""
    unit, eq, specs = header.strip().partition("=")
    if unit != "bytes" or not eq:
        return None
    out: list[tuple[int, int]] = []
    pieces = specs.split(",")
    if len(pieces) > 100:
        return None
    for piece in pieces:
        first, dash, last = piece.strip().partition("-")
        first, last = first.strip(), last.strip()
        if not piece.strip():
            continue
        if not dash or not (first or last) or any(x and not re.fullmatch(r"[0-9]{1,19}", x) for x in (first, last)):
            return None
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            if last and int(last) < start:
                return None
        else:
            start, end = max(size - int(last), 0), size - 1
        if start < size and start <= end:
            out.append((start, end))
    return out


class _Cut(Exception):
    """A blob whose bytes on disk no longer match its digest, found while sending it."""


def _send_verified(f: Any, sock: socket.socket, digest: str, size: int, start: int, stop: int) -> None:
    """Send bytes ``start``..``stop`` of a blob, hashing all of it; the last piece goes out
    only once the whole blob has matched its digest, so a client never receives every
    byte it asked for unless they are right (on a mismatch the response is cut short)."""
    from ..digest import CHUNK, Hasher
    h = Hasher()
    pos, held = 0, b""
    while pos < size:
        data = os.pread(f.fileno(), min(CHUNK, size - pos), pos)
        if not data:
            raise _Cut(f"blob {digest}: the file ends at byte {pos} of {size}; response cut")
        h.update(data)
        lo, hi = max(start - pos, 0), min(stop - pos, len(data))
        if lo < hi:
            if held:
                sock.sendall(held)
            held = data[lo:hi]
        pos += len(data)
    if h.digest() != digest:
        raise _Cut(f"blob {digest} is damaged on disk (its bytes hash to {h.digest()}); "
                   "response cut before its end. Run `airgap store check`")
    if held:
        sock.sendall(held)


def _printable(text: str) -> str:
    """A log field without raw bytes (a TLS hello sent to plain HTTP), short."""
    return printable(text[:200].replace("\\", "\\x5c"), keep="") + ("..." if len(text) > 200 else "")


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class _Log:
    """The server's log, written by a thread of its own: a log that takes nothing more (a
    pipe nobody reads, a terminal on pause) never stalls a request or the accept loop.
    At most MAX_LOG_PENDING characters of lines wait; beyond them lines are dropped, and how
    many is said once the log takes lines again. A log that fails (closed, broken) loses lines, never
    the server."""

    def __init__(self, out: TextIO | _Discard) -> None:
        self._out = out
        self._lines: list[str] = []
        self._pending = 0  # characters said and not yet written
        self._dropped = 0
        self._cond = threading.Condition()
        threading.Thread(target=self._write, name="airgap-serve-log", daemon=True).start()

    def say(self, line: str) -> None:
        with self._cond:
            if self._pending + len(line) > MAX_LOG_PENDING:
                self._dropped += 1
                return
            self._lines.append(line)
            self._pending += len(line)
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every line said is written, at most ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def _write(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._lines))
                lines, self._lines = self._lines, []
                dropped, self._dropped = self._dropped, 0
            text = "".join(f"{line}\n" for line in lines)
            if dropped:
                text += f"log: {dropped} lines dropped while the log took nothing more\n"
            try:
                self._out.write(text)
                self._out.flush()
            except (OSError, ValueError):
                pass
            with self._cond:
                self._pending -= sum(len(line) for line in lines)
                self._cond.notify_all()


class _DeadlineReader(io.RawIOBase):
    """The socket, read with a timeout that is whatever is left of the request's deadline."""

    def __init__(self, handler: _Handler) -> None:
        self._h = handler

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        left = self._h.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not received in time")
        self._h.connection.settimeout(min(left, REQUEST_TIMEOUT))
        try:
            return int(self._h.connection.recv_into(b))
        except TimeoutError:
            raise TimeoutError("request not received in time") from None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    view: _View
    log: _Log

    def server_activate(self) -> None:
        super().server_activate()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        """At most MAX_CONNECTIONS at once; one more is told so and closed at once."""
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(1)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\nRetry-After: 1\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            self.say(f"{client_address[0]} - busy: {MAX_CONNECTIONS} connections already open")
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def say(self, line: str) -> None:
        self.log.say(line)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, never a traceback (a client that sends TLS to plain HTTP, a reset)."""
        import sys
        exc = sys.exc_info()[1]
        self.say(f"{client_address[0]} - error: {type(exc).__name__}: {_printable(str(exc))}")


def make_server(store: Store, host: str, port: int, cert: str | None = None, key: str | None = None,
                log: TextIO | None = None) -> _Server:
    ctx = None
    if cert and key:  # before the socket: a bad pair is said as such, and nothing is bound
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(cert, key)
        except OSError as exc:  # ssl.SSLError too
            raise AirgapError(f"--tls-cert {cert} and --tls-key {key}: cannot load a certificate and "
                              f"its private key from them ({exc.strerror or exc})") from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    cls = type("_BoundServer", (_Server,), {"address_family": family})
    server: _Server = cls((host, port), _Handler)
    server.view = _View(store)
    server.log = _Log(log or _Discard())
    if ctx is not None:
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


def serve(store: Store, host: str, port: int, cert: str | None, key: str | None, log: TextIO) -> None:
    """Serve until SIGINT or SIGTERM; then finish the requests under way and return."""
    try:
        server = make_server(store, host, port, cert, key, log)
    except OSError as exc:
        raise AirgapError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    scheme = "https" if cert else "http"
    server.say(f"serving {store.root} read-only on {scheme}://{host}:{server.server_address[1]}")

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        server.server_close()
        server.say("stopped")
        server.log.flush(timeout=2)  # a log that takes nothing more does not keep the server up
