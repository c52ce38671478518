"""The CNCF distribution registry (Debian's docker-registry) in four set-ups, a token
server for it, a TLS authority, and a proxy that breaks a connection mid-blob."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

USER, PASSWORD = "airgap", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(store: Path, stderr: Any) -> tuple[subprocess.Popen[bytes], int]:
    """`airgap serve` of ``store`` on a free port of 127.0.0.1, once it accepts connections."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "airgap", "--store", str(store), "serve", "--addr",
                             f"127.0.0.1:{port}"], stderr=stderr)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                proc.wait(timeout=30)
                raise RuntimeError(f"airgap serve did not start on 127.0.0.1:{port}") from None
            time.sleep(0.1)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1/localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("airgap test CA")).issuer_name(_name("airgap test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "ca").mkdir(parents=True, exist_ok=True)
    paths = directory / "ca" / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class TokenServer:
    """Issues ES256 JWTs for the registry's token auth, to USER/PASSWORD only."""

    def __init__(self, directory: Path, service: str) -> None:
        self.service, self.issuer = service, "airgap-test-issuer"
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name("token signer")).issuer_name(_name("token signer"))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
                     .sign(self.key, hashes.SHA256()))
        self.bundle = directory / "token-root.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                q = parse_qs(urlsplit(self.path).query)
                want = f"Basic {base64.b64encode(f'{USER}:{PASSWORD}'.encode()).decode()}"
                if self.headers.get("Authorization") != want:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": outer.token(q.get("scope", []))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, scopes: list[str]) -> str:
        access = []
        for scope in " ".join(scopes).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": USER, "aud": self.service, "exp": now + 600, "nbf": now - 60,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"alg": "ES256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Registry:
    mode: str
    host: str
    ca: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    token: TokenServer | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def skopeo_creds(self) -> list[str]:
        return ["--creds", f"{USER}:{PASSWORD}"] if self.mode in ("basic", "token") else []

    def skopeo_tls(self, side: str) -> list[str]:
        """skopeo's TLS flags; side is "src", "dest" or "" (inspect)."""
        pre = f"--{side}-" if side else "--"
        if self.mode == "tls":
            return [f"{pre}cert-dir", str(self.ca.parent)] if self.ca else []
        return [f"{pre}tls-verify=false"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.token is not None:
            self.token.close()


def start_registry(binary: str, run: Path, mode: str) -> Registry:
    """docker-registry on 127.0.0.1: mode is plain, basic (htpasswd), tls or token."""
    import bcrypt
    port = free_port()
    run.mkdir(parents=True, exist_ok=True)
    cfg = [
        "version: 0.1",
        "log:\n  level: warn",
        f"storage:\n  filesystem:\n    rootdirectory: {run / 'data'}\n  delete:\n    enabled: true",
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(16)}",
    ]
    reg = Registry(mode, f"127.0.0.1:{port}")
    if mode == "tls":
        ca, cert, key = make_ca(run / "certs")
        reg.ca = ca  # alone in its directory: skopeo's --cert-dir reads every *.crt there as a CA
        cfg[-1] += f"\n  tls:\n    certificate: {cert}\n    key: {key}"
    if mode == "basic":
        htpasswd = run / "htpasswd"
        htpasswd.write_bytes(USER.encode() + b":" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(prefix=b"2a")) + b"\n")
        cfg.append(f"auth:\n  htpasswd:\n    realm: airgap-test\n    path: {htpasswd}")
    if mode == "token":
        reg.token = TokenServer(run, "airgap-test-registry")
        cfg.append(f"auth:\n  token:\n    realm: {reg.token.realm}\n    service: {reg.token.service}\n"
                   f"    issuer: {reg.token.issuer}\n    rootcertbundle: {reg.token.bundle}")
    (run / "config.yml").write_text("\n".join(cfg) + "\n")
    log = (run / "registry.log").open("wb")
    reg.proc = subprocess.Popen([binary, "serve", str(run / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return reg
        except OSError:
            if reg.proc.poll() is not None:
                break
            time.sleep(0.1)
    reg.stop()
    raise RuntimeError(f"docker-registry ({mode}) did not start:\n{(run / 'registry.log').read_text()[-2000:]}")


class BreakingProxy:
    """A TCP proxy that cuts the first connection carrying more than ``limit`` bytes back to
    the client, and records the requests it saw (to show that a Range request followed)."""

    def __init__(self, upstream: str, limit: int, upward: bool = False) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.limit = limit
        self.upward = upward  # cut a connection that carries more than limit bytes *to* the server
        self.sent_up = 0
        self.cuts = 0
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upward:
                    self.requests.append(data)
                    self.sent_up += len(data)
                    sent += len(data)
                    if self.upward and self.cuts == 0 and sent > self.limit:
                        self.cuts += 1
                        dst.sendall(data[: len(data) // 2])
                        break
                else:
                    sent += len(data)
                    if not self.upward and self.cuts == 0 and sent > self.limit:
                        self.cuts += 1
                        dst.sendall(data[: len(data) // 2])
                        break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


__all__ = ["Registry", "start_registry", "BreakingProxy", "USER", "PASSWORD", "free_port", "make_ca",
           "os"]
