"""A client for the OCI distribution API on httpx: auth, TLS, retries, resumable blobs."""

from __future__ import annotations

import io
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from ..digest import CHUNK, validate_digest
from ..errors import AirgapError, DigestMismatch, NotFound, RegistryError, UsageError
from ..words import is_number
from ..oci import DOCKER_LIST, DOCKER_MANIFEST, MAX_DOCUMENT, OCI_INDEX, OCI_MANIFEST, Descriptor
from . import auth
from .answerclock import Watchdog, answer_within, install
from .tls import load_ca

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
INSECURE_ENV = "AIRGAP_INSECURE_REGISTRIES"
CERTS_DIR = Path("/etc/airgap/certs.d")
RETRY_STATUSES = {429, 500, 502, 503, 504}
_NETWORK_ERRORS = (httpx.TransportError,)
MAX_RETRY_WAIT_ENV = "AIRGAP_MAX_RETRY_WAIT"
MAX_RETRY_WAIT = 60.0   # seconds a Retry-After may ask for; more is a failure, not a nap
MAX_BODY = 1 << 20      # error bodies, tokens: small documents
MAX_LISTING = 8 << 20   # a _catalog page
MAX_CATALOG = 100_000   # repositories in all the pages of one _catalog
MAX_CATALOG_PAGES = 10_000
MAX_LINK = 8192          # characters of one next-page link
MAX_REDIRECTS = 5
READ_TIMEOUT = 60.0      # seconds without a byte: the connection is dead
DOCUMENT_TIME = 60.0     # seconds a whole small body (manifest, config, token, page) may take:
                         # a byte a minute passes the read timeout and would take years for 8 MiB
SLOW_WINDOW = 60.0       # a blob download that sends less than SLOW_RATE bytes a second over
SLOW_RATE = 16 << 10     # this long is broken off (and resumed, as a broken connection is)
UPLOAD_CHUNK = 16 << 20  # bytes a PATCH carries: what a broken upload may have to send again
UPLOAD_PIECE = 1 << 20   # bytes handed to the socket at a time: up to 4 images x 3 blobs
                         # are pushed at once, and each holds one piece


def max_retry_wait() -> float:
    """``$AIRGAP_MAX_RETRY_WAIT``: seconds in ASCII digits, a fraction allowed. Anything else
    is a usage error, not the default: ``float()`` takes ``nan`` (no wait is longer than
    that, so every Retry-After would be slept) and ``٣``."""
    raw = os.environ.get(MAX_RETRY_WAIT_ENV, "").strip()
    if not raw:
        return MAX_RETRY_WAIT
    whole, dot, fraction = raw.partition(".")
    if len(raw) <= 12 and is_number(whole) and (not dot or is_number(fraction)):
        return float(raw)
    raise UsageError(f"${MAX_RETRY_WAIT_ENV}={raw[:40]!r}: not a number of seconds")


def raw_body(resp: httpx.Response, what: str) -> Iterator[bytes]:
    """A response body as it came over the wire. airgap asks for no content coding
    (``Accept-Encoding: identity``) and decodes none: a few KiB of zstd or gzip would
    inflate to gigabytes in one step, before any size limit could look at them."""
    coding = resp.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):
        resp.close()
        raise RegistryError(f"{what}: the registry sent a {coding[:40]!r}-encoded response although "
                            "airgap asked for none (Accept-Encoding: identity); refused")
    return resp.iter_raw()


def read_limited(resp: httpx.Response, limit: int, what: str, too_long: str = "") -> bytes:
    """A response body, refusing one longer than ``limit`` (an endless chunked body) or
    slower than ``DOCUMENT_TIME`` in all (a drip-fed one)."""
    data = bytearray()
    deadline = time.monotonic() + DOCUMENT_TIME
    try:
        for chunk in raw_body(resp, what):
            data += chunk
            if len(data) > limit:
                raise RegistryError(too_long or f"{what}: the registry sent more than {limit} bytes; refused")
            if time.monotonic() > deadline:
                raise RegistryError(f"{what}: the registry took more than {DOCUMENT_TIME:.0f} s to send "
                                    f"{len(data)} bytes of it; refused as stalled")
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise RegistryError(f"{what}: {_describe(exc)}") from None
    finally:
        resp.close()
    return bytes(data)


def json_body(resp: httpx.Response, limit: int, what: str) -> Any:
    from ..errors import FormatError
    from ..oci import load_json
    try:
        return load_json(read_limited(resp, limit, what), what)
    except FormatError as exc:
        raise RegistryError(f"{what}: {exc}") from None


def endpoint_host(host: str) -> str:
    """The host to talk to for a reference's domain (Docker Hub's API lives elsewhere)."""
    return "registry-1.docker.io" if host == "docker.io" else host


def insecure_hosts() -> set[str]:
    return {h.strip() for h in os.environ.get(INSECURE_ENV, "").split(",") if h.strip()}


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1 (with or without a port): insecure by default, as
    Docker treats them."""
    import ipaddress
    name = host
    if name.startswith("["):
        name = name[1:name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_host(name: str) -> bool:
    """A DNS name or an IP address (what a URL's host must be before it is looked up: httpx
    takes ``http://[bad/`` as the host ``%5bbad``)."""
    import ipaddress

    def label(x: str) -> bool:  # letters, digits, "-" inside; "_" too, as some site DNS has
        return 0 < len(x) < 64 and x.isascii() and x.replace("-", "").replace("_", "").isalnum() \
            and not x.startswith("-") and not x.endswith("-")
    if len(name) < 254 and all(label(x) for x in name.split(".")):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _error_message(resp: httpx.Response) -> tuple[str, str]:
    """The first distribution error code and message of a response body, if any."""
    try:
        errors = json_body(resp, MAX_BODY, "error body").get("errors") or []
        first = errors[0]
        return str(first.get("code", ""))[:100], str(first.get("message", ""))[:500]
    except (AirgapError, ValueError, AttributeError, IndexError, TypeError, KeyError):
        return "", resp.reason_phrase


class RegistryClient:
    """One registry host. Thread-safe: blobs may be fetched by several threads at once."""

    def __init__(self, host: str, *, ca_cert: str | None = None,
                 credentials: auth.Credentials | None = None, retries: int = 5,
                 backoff: float = 0.5) -> None:
        self.host = host
        self.api_host = endpoint_host(host)
        self.insecure = (host in insecure_hosts() or self.api_host in insecure_hosts()
                         or is_loopback(self.api_host))
        self.retries, self.backoff = retries, backoff
        self.max_wait = max_retry_wait()
        self._creds = credentials
        self._creds_loaded = credentials is not None
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._scheme: str | None = None
        self._verify: ssl.SSLContext | bool = self._ssl_context(ca_cert)
        self._http = self._client(self._verify)

    @staticmethod
    def _client(verify: ssl.SSLContext | bool) -> httpx.Client:
        http = httpx.Client(verify=verify, timeout=httpx.Timeout(READ_TIMEOUT, connect=15.0),
                            follow_redirects=True, max_redirects=MAX_REDIRECTS,
                            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
                            headers={"User-Agent": "airgap", "Accept-Encoding": "identity"})
        # the clock under every transport httpx made: its own, and one per proxy that
        # $HTTPS_PROXY and the like name (a transport given to it would turn those off)
        for transport in (http._transport, *http._mounts.values()):
            if isinstance(transport, httpx.HTTPTransport):
                install(transport)
        return http

    def _ssl_context(self, ca_cert: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        site = CERTS_DIR / self.api_host / "ca.crt"
        for path, given in [(ca_cert, "--ca-cert"), (str(site) if site.is_file() else None, "the site CA")]:
            if path is None:
                continue
            load_ca(ctx, path, given)
        return ctx

    def close(self) -> None:
        self._http.close()

    # -- plumbing --------------------------------------------------------------
    @property
    def credentials(self) -> auth.Credentials | None:
        if not self._creds_loaded:
            self._creds = auth.lookup(self.host)
            self._creds_loaded = True
        return self._creds

    def _base(self) -> str:
        with self._probe_lock:  # several threads may start at once; one probes
            if self._scheme is None:
                self._scheme = self._probe()
        return f"{self._scheme}://{self.api_host}"

    def _probe(self) -> str:
        """HTTPS; for an insecure host (listed, or on loopback) HTTPS without verification
        if the certificate is not trusted, then plain HTTP, as Docker does."""
        last: Exception | None = None
        for scheme, verify in [("https", True), ("https", False), ("http", False)][:3 if self.insecure else 1]:
            if not verify and scheme == "https":
                self._http.close()
                self._verify = False
                self._http = self._client(False)
            try:
                with answer_within():
                    self._http.get(f"{scheme}://{self.api_host}/v2/")
                return scheme
            except httpx.TransportError as exc:
                last = exc
        raise RegistryError(f"{self.host}: cannot connect: {_describe(last)}"
                            + (f" (if it serves plain HTTP or an untrusted certificate, add it to "
                               f"${INSECURE_ENV} or pass --ca-cert)" if not self.insecure else ""))

    def request(self, method: str, path: str, *, scope: str, what: str,
                headers: dict[str, str] | None = None, content: Callable[[], Any] | None = None,
                stream: bool = False, ok: tuple[int, ...] = (200,), retry: bool = True,
                http: httpx.Client | None = None) -> httpx.Response:
        """Send with auth and retries; raise RegistryError unless the status is in ``ok``.

        ``content`` is a factory, so that a body can be sent again on a retry; ``http`` is
        a connection pool of the request's own (an upload's, which a watchdog may close).
        """
        url = path if path.startswith("http") else self._base() + path
        try:
            ours = self._same_origin(url)  # an upload's Location may name another host: no credentials there
        except httpx.InvalidURL as exc:
            raise RegistryError(f"{what}: {self.host}: no URL: {url[:200]!r} ({_describe(exc)})") from None
        attempt = auth_tries = 0
        while True:
            hdrs = dict(headers or {})
            token = self._authorization(scope) if ours else ""
            if token:
                hdrs["Authorization"] = token
            try:
                pool = http or self._http
                req = pool.build_request(method, url, headers=hdrs, content=content() if content else None)
                with answer_within():
                    resp = pool.send(req, stream=True)
            except httpx.TooManyRedirects:
                raise RegistryError(f"{what}: {self.host}: more than {MAX_REDIRECTS} redirects "
                                    "(a redirect loop?)") from None
            except httpx.UnsupportedProtocol as exc:
                raise RegistryError(f"{what}: {self.host}: redirected to an address that is not "
                                    f"HTTP(S) ({_describe(exc)}); refused") from None
            except httpx.InvalidURL as exc:  # a Location or redirect that is no URL
                raise RegistryError(f"{what}: {self.host}: sent to an address that is no URL "
                                    f"({_describe(exc)}); refused") from None
            except httpx.StreamConsumed:  # a redirect of a request whose body is streamed
                raise RegistryError(f"{what}: {self.host}: redirected an upload (its bytes are "
                                    "streamed, not sent twice); refused") from None
            except _NETWORK_ERRORS as exc:
                if not retry or attempt >= self.retries:
                    raise RegistryError(f"{what}: {self.host}: {_describe(exc)}") from None
                attempt += 1
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            if resp.status_code == 401 and ours and auth_tries < 2 and self._authenticate(resp, scope, what, hdrs):
                auth_tries += 1
                resp.close()
                continue
            if resp.status_code in RETRY_STATUSES and attempt < self.retries:
                resp.close()
                attempt += 1
                delay = resp.headers.get("Retry-After", "").strip()
                wait = float(delay) if is_number(delay) and len(delay) < 10 else self.backoff * 2 ** (attempt - 1)
                if wait > self.max_wait:
                    raise RegistryError(f"{what}: {self.host} answered {resp.status_code} and asks to "
                                        f"retry after {delay} s, longer than airgap waits "
                                        f"({self.max_wait:g} s, ${MAX_RETRY_WAIT_ENV}); try again later",
                                        resp.status_code)
                time.sleep(wait)
                continue
            if resp.status_code not in ok:
                if resp.status_code < 300:  # a success, but not the one this request ends in
                    resp.close()
                    raise RegistryError(f"{what}: the registry answered {resp.status_code} "
                                        f"{resp.reason_phrase[:40]}, not {' or '.join(map(str, ok))}",
                                        resp.status_code)
                raise self._error(resp, what)
            if not stream:
                read_limited(resp, MAX_BODY, what)  # headers are the answer; the body is drained
            return resp

    def _same_origin(self, url: str) -> bool:
        """Whether ``url`` is on the registry's own scheme, host and port (as Docker, which
        sends credentials only where it authenticated)."""
        a, b = httpx.URL(url), httpx.URL(self._base())
        ports = {"http": 80, "https": 443}
        return (a.scheme, a.host, a.port or ports.get(a.scheme)) == (b.scheme, b.host, b.port or ports.get(b.scheme))

    def _authorization(self, scope: str) -> str:
        with self._lock:
            token = self._tokens.get(scope) or self._tokens.get("*")
        if token:
            return token
        creds = self.credentials
        if self._basic and creds:
            import base64
            raw = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            return f"Basic {raw}"
        return ""

    def _authenticate(self, resp: httpx.Response, scope: str, what: str, sent: dict[str, str]) -> bool:
        """Answer a 401 challenge; False when there is nothing new to try.

        A token that was refused (it expired, as Docker Hub's do after minutes) is dropped
        and a new one fetched once; a second refusal is final."""
        challenge = auth.parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        creds = self.credentials
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            # refused although basic credentials were sent: final. (Another thread may have
            # switched to basic after this request left without them: then try again.)
            if creds is None or sent.get("Authorization", "").startswith("Basic "):
                return False
            self._basic = True
            return True
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            return False
        with self._lock:
            refused = sent.get("Authorization", "")
            for key, token in list(self._tokens.items()):
                if token == refused:
                    del self._tokens[key]
        realm = challenge.params["realm"]
        realm_url = httpx.URL(realm)
        if realm_url.scheme not in ("http", "https"):
            raise RegistryError(f"{what}: the token realm {realm!r} is not an HTTP(S) address")
        if creds and realm_url.scheme == "http" and realm_url.host != self.api_host.split(":")[0] \
                and not is_loopback(realm_url.host) and realm_url.host not in insecure_hosts() \
                and f"{realm_url.host}:{realm_url.port}" not in insecure_hosts():
            raise RegistryError(f"{what}: the token realm {realm} is plain HTTP on another host; "
                                f"refusing to send the password for {self.host} there (list that "
                                f"host in ${INSECURE_ENV} if it is meant)")
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        for s in scope.split(" "):
            if s and s != "*":
                params.append(("scope", s))
        try:
            req = self._http.build_request("GET", realm, params=params)
            if creds:
                import base64
                pair = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
                req.headers["Authorization"] = f"Basic {pair}"
            with answer_within():
                r = self._http.send(req, stream=True)
        except httpx.HTTPError as exc:
            raise RegistryError(f"{what}: token server {realm}: {_describe(exc)}") from None
        if r.status_code != 200:
            r.close()
            hint = "wrong credentials?" if creds else f"run airgap login {self.host}"
            raise RegistryError(f"{what}: UNAUTHORIZED: the token server {realm} "
                                f"refused ({r.status_code}; {hint})", r.status_code, "UNAUTHORIZED")
        body = json_body(r, MAX_BODY, f"{what}: token server {realm}")
        if not isinstance(body, dict):
            raise RegistryError(f"{what}: the token server sent no token")
        found = body.get("token") or body.get("access_token")
        token = found if isinstance(found, str) else ""
        if not token:
            raise RegistryError(f"{what}: {self.host}: the token server sent no token")
        with self._lock:
            self._tokens[scope] = f"Bearer {token}"
        return True

    def _error(self, resp: httpx.Response, what: str) -> AirgapError:
        code, message = _error_message(resp)
        status = resp.status_code
        if status == 401:
            hint = "wrong credentials" if self.credentials else f"run airgap login {self.host}"
            return RegistryError(f"{what}: UNAUTHORIZED: {message or 'authentication required'} ({hint})",
                                 status, code or "UNAUTHORIZED")
        if status == 404 or code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"):
            return NotFound(f"{what}: {code or 'NOT_FOUND'}: {message or 'not found'}")
        return RegistryError(f"{what}: {code or status}: {message or resp.reason_phrase}", status, code)

    # -- the API -----------------------------------------------------------------
    @staticmethod
    def scope(repo: str, actions: str = "pull") -> str:
        return f"repository:{repo}:{actions}"

    def ping(self) -> None:
        self.request("GET", "/v2/", scope="*", what=f"login to {self.host}")

    def get_manifest(self, repo: str, ref: str, what: str) -> tuple[bytes, str, str]:
        """The manifest bytes as served, their media type, and the digest header."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scope=self.scope(repo), what=what,
                            headers={"Accept": MANIFEST_ACCEPT}, stream=True)
        data = read_limited(resp, MAX_DOCUMENT, what, f"{what}: manifest larger than {MAX_DOCUMENT} bytes")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return data, media_type, resp.headers.get("Docker-Content-Digest", "")

    def get_blob_bytes(self, repo: str, desc: Descriptor, what: str) -> bytes:
        if desc.size > MAX_DOCUMENT:
            raise RegistryError(f"{what}: {desc.size} bytes, more than {MAX_DOCUMENT}")
        with self.open_blob(repo, desc, what) as f:
            return f.read(desc.size + 1)  # one byte more shows a registry that sends too much

    def open_blob(self, repo: str, desc: Descriptor, what: str) -> BinaryIO:
        return io.BufferedReader(_BlobStream(self, repo, desc, what), CHUNK)

    def has_blob(self, repo: str, digest: str, actions: str = "pull") -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=self.scope(repo, actions),
                            what=f"{self.host}/{repo}@{digest}", ok=(200, 404))
        return resp.status_code == 200

    def mount_blob(self, repo: str, digest: str, source: str) -> str | None:
        """Cross-repository mount; returns an upload URL when the registry would not mount."""
        scope = f"{self.scope(repo, 'pull,push')} {self.scope(source)}"
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source}",
                            scope=scope, what=f"{self.host}/{repo}: mount {digest} from {source}",
                            ok=(201, 202))
        return None if resp.status_code == 201 else self._location(resp)

    def _location(self, resp: httpx.Response) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(f"{self.host}: upload started without a Location")
        try:
            url = resp.url.join(loc)
        except httpx.InvalidURL:
            url = None
        if url is None or url.scheme not in ("http", "https") or not _is_host(url.host):
            raise RegistryError(f"{self.host}: the upload's Location is no HTTP(S) URL: {loc[:200]!r}; refused")
        return str(url)

    def upload_blob(self, repo: str, desc: Descriptor, opener: Callable[[], Any],
                    location: str | None = None) -> None:
        """A chunked upload that resumes: POST, then PATCH chunks of UPLOAD_CHUNK bytes;
        when a PATCH breaks, ask the registry how much it has (GET of the upload's status)
        and go on from there, not from zero (a registry that gave the session up gets a
        new one, from zero); then PUT with the digest. The source is read through a
        hashing reader, so the bytes sent are the bytes checked."""
        what = f"{self.host}/{repo}: upload {desc.digest}"
        scope = self.scope(repo, "pull,push")
        if location is None:
            resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, what=what, ok=(202,))
            location = self._location(resp)
        offset, failures = 0, 0
        f = opener()
        http = self._client(self._verify)  # its own pool: the watchdog closes it, no one else's
        try:
            while offset < desc.size:
                n = min(UPLOAD_CHUNK, desc.size - offset)
                # a registry that reads a byte a minute passes every write timeout (each send
                # moves a byte), and the body below is not resumed while a piece is stuck:
                # the watchdog closes the pool under it, and the stuck send fails
                watch = Watchdog(SLOW_WINDOW, http.close)

                def body(f: Any = f, n: int = n, watch: Watchdog = watch) -> Iterator[bytes]:  # streamed
                    left = n
                    while left:
                        piece = f.read(min(UPLOAD_PIECE, left))
                        if not piece:
                            raise RegistryError(f"{what}: the source ended early")
                        left -= len(piece)
                        watch.moved()
                        yield piece
                    watch.moved()  # all sent: the answer has a window of its own
                try:
                    with watch:
                        resp = self.request("PATCH", location, scope=scope, what=what, retry=False,
                                            headers={"Content-Type": "application/octet-stream",
                                                     "Content-Range": f"{offset}-{offset + n - 1}",
                                                     "Content-Length": str(n)},
                                            content=body, ok=(202, 204), http=http)
                    location = self._location(resp)
                    offset += n
                    continue
                except (RegistryError, RuntimeError) as exc:  # RuntimeError: the pool closed under it
                    if isinstance(exc, RuntimeError) and not watch.fired:
                        raise
                    why = str(exc)
                    if watch.fired:
                        http = self._client(self._verify)
                        why = f"slower than {UPLOAD_PIECE >> 10} KiB in {SLOW_WINDOW:.0f} s"
                    failures += 1
                    if failures > self.retries:
                        raise RegistryError(f"{what}: the upload broke at byte {offset} and did not "
                                            f"resume: {why}") from None
                    time.sleep(self.backoff * 2 ** (failures - 1))
                try:
                    location, offset = self._upload_status(location, scope, what)
                except (RegistryError, NotFound):
                    # the registry gave the session up (distribution does when a PATCH broke
                    # mid-way: its state no longer matches): a new session, from zero
                    resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, what=what,
                                        ok=(202,))
                    location, offset = self._location(resp), 0
                f.close()
                f = opener()  # hashed again from the start; sent from where the registry is
                skip = offset
                while skip:
                    got = f.read(min(CHUNK, skip))
                    if not got:
                        break
                    skip -= len(got)
            f.read(1)  # the end: the hashing reader checks digest and size here
        finally:
            f.close()
            http.close()
        sep = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{sep}digest={desc.digest}", scope=scope, what=what,
                     headers={"Content-Length": "0"}, content=lambda: b"", ok=(201,))

    def _upload_status(self, location: str, scope: str, what: str) -> tuple[str, int]:
        """Where an upload stands: its location, and the offset the registry has."""
        resp = self.request("GET", location, scope=scope, what=f"{what}: status", ok=(204,),
                            retry=False)  # the upload's own loop retries: not twice over
        rng = resp.headers.get("Range", "")
        _, _, end = rng.partition("-")
        offset = int(end) + 1 if is_number(end) and len(end) < 19 else 0
        return self._location(resp) if resp.headers.get("Location") else location, offset

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str, what: str) -> str:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", scope=self.scope(repo, "pull,push"),
                            what=what, headers={"Content-Type": media_type}, content=lambda: data,
                            ok=(201, 200))
        return str(resp.headers.get("Docker-Content-Digest", ""))

    def referrers(self, repo: str, digest: str, what: str) -> list[Descriptor] | None:
        """What the referrers API lists for ``digest`` (OCI 1.1), or None when the registry
        has no such API (then the fallback tag ``sha256-<hex>`` is the place to look)."""
        from ..oci import load_json
        resp = self.request("GET", f"/v2/{repo}/referrers/{digest}", scope=self.scope(repo), what=what,
                            headers={"Accept": OCI_INDEX}, stream=True, ok=(200, 400, 404, 405))
        if resp.status_code != 200:
            read_limited(resp, MAX_BODY, what)
            return None
        data = read_limited(resp, MAX_DOCUMENT, what)
        doc = load_json(data, what)
        items = doc.get("manifests") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return None
        return [Descriptor.from_json(d, what) for d in items[:1000]]

    def catalog(self) -> list[str]:
        """Every repository the registry lists, following its ``Link`` pages; a registry whose
        links go round in circles, or that lists more than MAX_CATALOG names or pages, is
        refused."""
        out: list[str] = []
        path = "/v2/_catalog?n=1000"
        what = f"{self.host}: catalog"
        seen: set[str] = set()
        while path:
            if len(seen) == MAX_CATALOG_PAGES:
                raise RegistryError(f"{what}: more than {MAX_CATALOG_PAGES} pages")
            if path in seen:
                raise RegistryError(f"{what}: the page {path!r} is linked to twice (the registry's "
                                    "pages go round in circles)")
            seen.add(path)
            resp = self.request("GET", path, scope="registry:catalog:*", what=what, stream=True)
            link = resp.headers.get("Link", "")
            doc = json_body(resp, MAX_LISTING, what)
            repos = doc.get("repositories") if isinstance(doc, dict) else None
            out += [r for r in repos or [] if isinstance(r, str)]
            if len(out) > MAX_CATALOG:
                raise RegistryError(f"{what}: more than {MAX_CATALOG} repositories")
            path = link[link.find("<") + 1:link.find(">")] if link.startswith("<") else ""
            if len(path) > MAX_LINK:
                raise RegistryError(f"{what}: a next-page link of more than {MAX_LINK} characters")
        return out


def _describe(exc: BaseException | None) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else "connection failed"


class _BlobStream(io.RawIOBase):
    """A blob download that resumes with ``Range`` where it broke off."""

    def __init__(self, client: RegistryClient, repo: str, desc: Descriptor, what: str) -> None:
        validate_digest(desc.digest, what)
        self.client, self.repo, self.desc, self.what = client, repo, desc, what
        self.pos = 0
        self.failures = 0
        self._resp: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""
        self._window = (time.monotonic(), 0)  # since when, and bytes since then

    def readable(self) -> bool:
        return True

    def _open(self) -> None:
        headers = {"Range": f"bytes={self.pos}-"} if self.pos else {}
        resp = self.client.request("GET", f"/v2/{self.repo}/blobs/{self.desc.digest}",
                                   scope=self.client.scope(self.repo), what=self.what,
                                   headers=headers, stream=True, ok=(200, 206))
        self._resp = resp
        chunks = raw_body(resp, self.what)
        length = resp.headers.get("Content-Length", "")
        start = self.pos if resp.status_code == 206 else 0
        if is_number(length) and start + int(length) != self.desc.size:  # a size that lies: say so now
            self._close_resp()
            raise DigestMismatch(f"{self.what}: the registry's Content-Length", self.desc.digest, "",
                                 self.desc.size, start + int(length))
        self._chunks = chunks  # as it arrives, so a break loses little
        if self.pos and resp.status_code == 200:
            self._skip(self.pos)  # no Range support: read past what we have

    def _skip(self, n: int) -> None:
        assert self._chunks is not None
        while n > 0:
            chunk = next(self._chunks, b"")
            if not chunk:
                raise RegistryError(f"{self.what}: the registry sent fewer bytes than before")
            if len(chunk) > n:
                self._pending = chunk[n:]
            n -= len(chunk)

    def readinto(self, b: Any) -> int:
        while True:
            if self._pending:
                n = min(len(b), len(self._pending))
                b[:n] = self._pending[:n]
                self._pending = self._pending[n:]
                self.pos += n
                return n
            if self.pos >= self.desc.size and self._chunks is None:
                return 0
            try:
                if self._chunks is None:
                    self._open()
                assert self._chunks is not None
                chunk = next(self._chunks, b"")
            except (httpx.TransportError, httpx.StreamError) as exc:
                self._retry(exc)
                continue
            if not chunk:
                self._close_resp()
                if self.pos < self.desc.size:
                    self._retry(None)
                    continue
                return 0
            self._pending = chunk
            if self._too_slow(len(chunk)):
                self._retry(None, f"slower than {SLOW_RATE >> 10} KiB/s for {SLOW_WINDOW:.0f} s")

    def _too_slow(self, n: int) -> bool:
        """Whether the last ``SLOW_WINDOW`` seconds brought less than ``SLOW_RATE`` a second."""
        since, got = self._window
        now = time.monotonic()
        if now - since < SLOW_WINDOW:
            self._window = (since, got + n)
            return False
        self._window = (now, 0)
        return got + n < SLOW_RATE * (now - since)

    def _retry(self, exc: BaseException | None, why: str = "connection closed") -> None:
        self._close_resp()
        self.failures += 1
        if self.failures > self.client.retries:
            raise RegistryError(f"{self.what}: download failed at byte {self.pos} of "
                                f"{self.desc.size}: {_describe(exc) if exc else why}")
        time.sleep(self.client.backoff * 2 ** (self.failures - 1))
        self._window = (time.monotonic(), 0)

    def _close_resp(self) -> None:
        if self._resp is not None:
            self._resp.close()
        self._resp = None
        self._chunks = None

    def close(self) -> None:
        self._close_resp()
        super().close()


def check_manifest_digest(data: bytes, expected: str | None, header: str, what: str) -> str:
    """The digest of manifest bytes; it must match a pinned digest and the server's header."""
    from ..digest import sha256_digest
    got = sha256_digest(data)
    if expected and got != expected:
        raise DigestMismatch(f"{what}: manifest", expected, got)
    if header and header.startswith("sha256:") and header != got:
        raise DigestMismatch(f"{what}: manifest (Docker-Content-Digest header)", header, got)
    return got
