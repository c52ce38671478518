"""Credentials as Docker keeps them (``~/.docker/config.json``, credential helpers) and
the ``WWW-Authenticate`` challenges of the distribution API."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

from ..errors import AirgapError, FormatError
from ..records import NamedTuple

DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
CONFIG_LIMIT = 4 << 20  # ~/.docker/config.json: logins for thousands of registries
_CHALLENGE = r'(\w+)="([^"]*)"'


class Credentials(NamedTuple):
    username: str
    password: str


class Challenge(NamedTuple):
    scheme: str          # "bearer" or "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    return Challenge(scheme.lower(), dict(re.findall(_CHALLENGE, rest)))


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    if not base:
        from ..userdirs import home
        base = os.path.join(home("set $DOCKER_CONFIG to the directory of the registry logins (config.json)"),
                            ".docker")
    return Path(base) / "config.json"


def _auth_key(host: str) -> str:
    return DOCKER_HUB_AUTH_KEY if host in ("docker.io", "registry-1.docker.io", "index.docker.io") else host


def _load_config() -> dict[str, object]:
    """The logins file, read as any document is: with a cap (a FIFO there would block every
    pull, a huge file fill memory), and bounded in nesting (Python's reader hit its
    recursion limit: an internal error)."""
    from ..oci import load_json
    from ..smallfile import read_small
    path = config_path()
    try:
        doc = load_json(read_small(path, CONFIG_LIMIT, "registry logins", regular_only=True), str(path))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AirgapError(f"cannot read {path}: {exc.strerror or exc}") from None
    except FormatError as exc:  # the user's own file: a failure (1), not hostile input (3)
        raise AirgapError(f"cannot read {exc}" if str(exc).startswith(str(path)) else str(exc)) from None
    if not isinstance(doc, dict):  # as Docker's CLI: an error, not an empty file to overwrite
        raise AirgapError(f"cannot read {path}: not a JSON object")
    return doc


def _helper_for(cfg: dict[str, object], host: str, key: str) -> str:
    """The credential helper Docker asks for ``host``: its credHelpers entry, else
    credsStore; "" for none (``auths`` in the file)."""
    helpers = cfg.get("credHelpers")
    helpers = helpers if isinstance(helpers, dict) else {}
    helper = helpers.get(host) or helpers.get(key) or cfg.get("credsStore")
    return helper if isinstance(helper, str) else ""


def _auths(cfg: dict[str, object]) -> dict[str, object]:
    auths = cfg.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise AirgapError(f"cannot read {config_path()}: its \"auths\" is not an object")
    return auths


def _helper(name: str, action: str, payload: str) -> str:
    try:
        res = subprocess.run([f"docker-credential-{name}", action], input=payload,
                             capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise AirgapError(f"credential helper docker-credential-{name} is not installed") from None
    if res.returncode != 0:
        msg = (res.stdout + res.stderr).strip()
        if action == "get" and "credentials not found" in msg.lower():
            return ""
        raise AirgapError(f"docker-credential-{name} {action} failed: {msg}")
    return res.stdout


def lookup(host: str) -> Credentials | None:
    """Credentials for a registry host: credHelpers, credsStore, then ``auths``."""
    cfg = _load_config()
    key = _auth_key(host)
    helper = _helper_for(cfg, host, key)
    if helper:
        out = _helper(helper, "get", key)
        if out:
            try:
                doc = json.loads(out)
            except ValueError:
                doc = None
            if not isinstance(doc, dict):
                raise AirgapError(f"docker-credential-{helper} get {key}: its answer is not a JSON object")
            return Credentials(str(doc.get("Username", "")), str(doc.get("Secret", "")))
    auths = _auths(cfg)
    entry = auths.get(key) or auths.get(f"https://{host}")
    if isinstance(entry, dict) and entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise AirgapError(f"{config_path()}: bad auth entry for {key}") from None
        return Credentials(user, password)
    return None


def _save_config(cfg: dict[str, object]) -> None:
    path = config_path()
    if path.is_symlink():  # a linked config (dotfiles): replace what it points at, as Docker's CLI
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..newfile import replace
    replace(path, json.dumps(cfg, indent="\t").encode(), path.with_name(f".{path.name}.{os.getpid()}"), 0o600)


def store(host: str, creds: Credentials) -> str:
    """Save credentials as ``docker login`` does; return where they went."""
    cfg = _load_config()
    key = _auth_key(host)
    helper = _helper_for(cfg, host, key)
    if helper:  # never in the file when a helper keeps this registry's secrets
        _helper(helper, "store", json.dumps({"ServerURL": key, "Username": creds.username,
                                              "Secret": creds.password}))
        return f"docker-credential-{helper}"
    auths = _auths(cfg)
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths[key] = {"auth": token}
    _save_config(cfg)
    return str(config_path())


def erase(host: str) -> bool:
    cfg = _load_config()
    key = _auth_key(host)
    helper = _helper_for(cfg, host, key)
    if helper:
        _helper(helper, "erase", key)
        return True
    auths = _auths(cfg)
    if key in auths:
        del auths[key]
        _save_config(cfg)
        return True
    return False
