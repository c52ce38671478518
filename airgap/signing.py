"""Ed25519 keys, the bundle signature, and the trust policy that decides what loads.

The signature file ``airgap/bundle.json.sig`` is JSON: the algorithm, the signer's public
key (raw, base64) and its fingerprint (sha256 of the raw key bytes), and the signature
over the exact bytes of ``airgap/bundle.json``. The public key inside only lets a loader
without trusted keys check that the bundle is intact; trust comes from the keys the
loader's host holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # cryptography (and base64) are imported where a key is used: loading an
    # unsigned bundle with no trust configured never needs them, and they cost a fifth of start-up
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import AirgapError, NotFound, SignatureError, UsageError
from .records import NamedTuple

PASSPHRASE_ENV = "AIRGAP_KEY_PASSPHRASE"
TRUST_ENV = "AIRGAP_TRUST"
SYSTEM_TRUST_DIR = Path("/etc/airgap/trust.d")
REQUIRE_ENV = "AIRGAP_REQUIRE_SIGNATURE"
REQUIRE_FILE = Path("/etc/airgap/require-signature")
SIG_MEDIA_TYPE = "application/vnd.airgap.signature.v1+json"


def fingerprint(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _passphrase(prompt: str, confirm: bool = False) -> bytes | None:
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env.encode() or None
    if not sys.stdin.isatty():
        return None
    import getpass
    first = getpass.getpass(prompt)
    if confirm and first and getpass.getpass("Repeat the passphrase: ") != first:
        raise UsageError("the passphrases do not match")
    return first.encode() or None


def generate_key(name: str) -> tuple[Path, Path, str, bool]:
    """Write NAME.key (PKCS#8 PEM, 0600, encrypted with a passphrase) and NAME.pub."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key_path, pub_path = Path(f"{name}.key"), Path(f"{name}.pub")
    for p in (key_path, pub_path):
        if p.exists() or p.is_symlink():  # a dangling link too: it would be written through
            raise AirgapError(f"{p} already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    secret = _passphrase("Passphrase for the new key (empty for none): ", confirm=True)
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.public_key()
    fd = os.open(pub_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_path, pub_path, fingerprint(pub), secret is not None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from .smallfile import KEY_LIMIT, read_small
    try:
        data = read_small(path, KEY_LIMIT, "signing key", regular_only=True)
    except FileNotFoundError:
        raise NotFound(f"signing key {path}: no such file") from None
    secret = None
    if b"ENCRYPTED" in data:
        secret = _passphrase(f"Passphrase for {path}: ")
        if secret is None:
            raise SignatureError(f"signing key {path} is encrypted: set {PASSPHRASE_ENV} "
                                 "or run on a terminal")
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError) as exc:
        reason = "wrong passphrase" if secret else str(exc)
        raise SignatureError(f"cannot read signing key {path}: {reason}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM (SubjectPublicKeyInfo) file, ``.pub`` or ``.pem``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    expected = "expected an Ed25519 public key in PEM (as `airgap key generate` writes NAME.pub)"
    from .smallfile import KEY_LIMIT, read_small
    try:
        data = read_small(path, KEY_LIMIT, "trusted key", regular_only=True)
    except FileNotFoundError:
        raise SignatureError(f"trusted key {path}: no such file ({expected})") from None
    except OSError as exc:
        raise SignatureError(f"trusted key {path}: cannot read it ({exc.strerror}; {expected})") from None
    if b"PRIVATE KEY" in data:
        raise SignatureError(f"trusted key {path} holds a private key; {expected}, and keep "
                             "private keys off the loading host")
    if data.count(b"-----BEGIN ") > 1:  # PEM readers take the first and ignore the rest
        raise SignatureError(f"trusted key {path} holds more than one PEM block; {expected}, one "
                             "key per file (trust a directory of them for several)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise SignatureError(f"trusted key {path} is not a public key: {expected}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"trusted key {path} is not an Ed25519 key: {expected}")
    return key


def _keys_in(path: Path, origin: str) -> list[tuple[Ed25519PublicKey, str]]:
    """The keys a trust entry yields (a key file, or a directory of *.pub / *.pem); an
    entry that yields none is an error: a policy that names keys must find them."""
    what = "a public key file (.pub, .pem) or a directory of them"
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as exc:
        raise SignatureError(f"trust entry {path} (from {origin}): cannot read it ({exc}); "
                             f"expected {what}") from None
    if not exists:
        raise SignatureError(f"trust entry {path} (from {origin}) does not exist; expected {what}; "
                             "refusing to load with a trust setting that finds no key")
    if not is_dir:
        return [(load_public_key(path), str(path))]
    try:
        files = sorted(p for p in path.iterdir() if p.suffix in (".pub", ".pem"))
    except OSError as exc:
        raise SignatureError(f"trust directory {path} (from {origin}): cannot list it "
                             f"({exc.strerror})") from None
    if not files:
        raise SignatureError(f"trust directory {path} (from {origin}) holds no public key "
                             "(*.pub or *.pem); refusing to load with a trust setting that finds no key")
    return [(load_public_key(p), str(p)) for p in files]


def sign(data: bytes, key: Ed25519PrivateKey) -> bytes:
    import base64
    from cryptography.hazmat.primitives import serialization
    pub = key.public_key()
    doc = {
        "schemaVersion": 1,
        "mediaType": SIG_MEDIA_TYPE,
        "algorithm": "ed25519",
        "keyFingerprint": fingerprint(pub),
        "publicKey": base64.b64encode(pub.public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw)).decode(),
        "signature": base64.b64encode(key.sign(data)).decode(),
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"


def signature_required() -> str:
    """Why this host refuses unsigned input ("" when it does not). A value of
    ``$AIRGAP_REQUIRE_SIGNATURE`` that is neither yes nor no is refused, not read as no."""
    value = os.environ.get(REQUIRE_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return f"${REQUIRE_ENV}"
    if value not in ("", "0", "false", "no", "off"):
        raise UsageError(f"${REQUIRE_ENV}={value[:40]!r}: expected 1 (require a trusted signature) or 0; "
                         "refusing to guess")
    if REQUIRE_FILE.exists() or REQUIRE_FILE.is_symlink():  # a dangling link still says "required"
        return str(REQUIRE_FILE)
    return ""


class TrustPolicy:
    """Trusted public keys by fingerprint, with where each came from; ``required`` names
    what demands a trusted signature even when no key is configured."""

    __slots__ = ("keys", "required")

    def __init__(self, keys: dict[str, tuple[Ed25519PublicKey, str]] | None = None, required: str = "") -> None:
        self.keys: dict[str, tuple[Ed25519PublicKey, str]] = {} if keys is None else keys
        self.required = required

    @classmethod
    def load(cls, trust: list[str], require: bool = False) -> TrustPolicy:
        """Keys from ``--trust`` entries, ``$AIRGAP_TRUST`` (``:``-separated) and
        /etc/airgap/trust.d. Each entry given must yield a key (fail closed)."""
        policy = cls(required="--require-signature" if require else signature_required())
        entries = [(Path(p), "--trust") for p in trust]
        env = os.environ.get(TRUST_ENV)
        if env is not None:
            named = [(Path(p), f"${TRUST_ENV}") for p in env.split(":") if p]
            if not named:  # set, but to nothing: a trust setting that names no key
                raise SignatureError(f"${TRUST_ENV} is set but names no key file or directory "
                                     f"({env[:40]!r}); refusing to load with a trust setting that "
                                     f"finds no key (unset it to load without it)")
            entries += named
        if SYSTEM_TRUST_DIR.exists() or SYSTEM_TRUST_DIR.is_symlink():
            entries.append((SYSTEM_TRUST_DIR, "the system trust directory"))
        for path, origin in entries:
            for key, where in _keys_in(path, origin):
                policy.keys.setdefault(fingerprint(key), (key, where))
        return policy

    @property
    def in_force(self) -> bool:
        return bool(self.keys or self.required)


class TrustResult(NamedTuple):
    status: str          # "verified", "unverified" (intact, signer unknown), "unsigned", "skipped"
    signer: str = ""     # fingerprint
    source: str = ""     # the trusted key file

    def describe(self) -> str:
        if self.status == "verified":
            return f"signed by {self.signer} (trusted key {self.source})"
        if self.status == "unverified":
            return f"signed by {self.signer}, signer NOT verified (no trusted keys configured)"
        if self.status == "skipped":
            return "signature NOT checked (--insecure-skip-signature)"
        return "unsigned"


def check(policy: TrustPolicy, archive: str, bundle: bytes | None, sig: bytes | None,
          insecure: bool = False) -> TrustResult:
    """Apply the trust policy to a bundle's signature; raise SignatureError to refuse."""
    if insecure:
        if policy.required:
            raise SignatureError(f"{archive}: --insecure-skip-signature is not allowed: a trusted "
                                 f"signature is required here ({policy.required})")
        return TrustResult("skipped")
    hint = "" if policy.required else "; pass --insecure-skip-signature to load it anyway"
    why = f"a trusted signature is required ({policy.required})" if policy.required \
        else "a trust policy is in force"
    if bundle is None:
        if policy.in_force:
            raise SignatureError(f"{archive}: not an airgap bundle (no airgap/bundle.json at its start, "
                                 f"where a bundle has it), so not signed, and {why}{hint}")
        return TrustResult("unsigned")
    if sig is None:
        if policy.in_force:
            raise SignatureError(f"{archive}: the bundle is not signed (no airgap/bundle.json.sig) "
                                 f"and {why}{hint}")
        return TrustResult("unsigned")
    from cryptography.exceptions import InvalidSignature
    claimed, pub, signature = _parse_sig(sig, archive)
    if fingerprint(pub) != claimed:
        raise SignatureError(f"{archive}: airgap/bundle.json.sig: its public key does not match "
                             f"its fingerprint {claimed}")
    try:
        pub.verify(signature, bundle)
    except InvalidSignature:
        raise SignatureError(f"{archive}: airgap/bundle.json.sig: the signature does not match "
                             "airgap/bundle.json (the bundle or the signature was altered)") from None
    if not policy.keys:
        if policy.required:
            raise SignatureError(f"{archive}: signed by key {claimed}, but no trusted key is "
                                 f"configured and {why} (add the packager's public key with "
                                 "--trust or to /etc/airgap/trust.d)")
        return TrustResult("unverified", claimed)
    trusted = policy.keys.get(claimed)
    if trusted is None:
        raise SignatureError(f"{archive}: signed by key {claimed}, which is not trusted here "
                             f"(trusted: {', '.join(sorted(policy.keys))})")
    return TrustResult("verified", claimed, trusted[1])


def _parse_sig(sig: bytes, archive: str) -> tuple[str, Ed25519PublicKey, bytes]:
    import base64
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    where = f"{archive}: airgap/bundle.json.sig"
    from .errors import FormatError
    from .oci import load_json
    try:
        doc = load_json(sig, where, max_containers=16)
        if not isinstance(doc, dict):
            raise SignatureError(f"{where}: damaged signature file (not a JSON object)")
        if doc.get("algorithm") != "ed25519":
            raise SignatureError(f"{where}: unsupported algorithm {doc.get('algorithm')!r}")
        claimed = str(doc["keyFingerprint"])
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(doc["publicKey"], validate=True))
        signature = base64.b64decode(doc["signature"], validate=True)
    except SignatureError:
        raise
    except FormatError as exc:
        raise SignatureError(f"damaged signature file: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SignatureError(f"{where}: damaged signature file ({exc})") from None
    return claimed, pub, signature
