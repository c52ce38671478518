"""Image references with Docker's normalization rules.

``nginx`` is ``docker.io/library/nginx:latest``; ``user/app:1`` is ``docker.io/user/app:1``;
a first component containing ``.`` or ``:``, or equal to ``localhost``, or holding an
uppercase letter, is a registry host. The grammar is that of distribution/reference.
"""

from __future__ import annotations

import re

from .errors import AmbiguousReference, InvalidReference
from .records import NamedTuple
from .words import is_hex

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"(?a){_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
# distribution's grammar, name := [domain '/'] path-component ('/' path-component)*, matched
# in parts (domain, path, ":tag@digest"): compiling all of it took 0.4 ms of every start
# that parses a name, and docker.io, the usual domain, needs no pattern
_PATH = rf"(?a){_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_SUFFIX = rf"(?a)(?::({_TAG}))?(?:@({_DIGEST}))?"
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class Reference(NamedTuple):
    """A normalized reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, ``docker.io/library/nginx``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Docker's short repository name, ``nginx`` or ``user/app`` or ``host:5000/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX):]:
            return path[len(OFFICIAL_PREFIX):]
        return path

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        """The reference as Docker prints it: ``nginx:1.25``."""
        return self.familiar_name + self._suffix()

    def with_default_tag(self) -> Reference:
        """Add ``latest`` when the reference has neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    @property
    def is_official(self) -> bool:
        return self.domain == DEFAULT_DOMAIN and self.path.startswith(OFFICIAL_PREFIX)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def _check_digest(digest: str, text: str) -> None:
    algorithm, _, hexpart = digest.partition(":")
    want = _DIGEST_LENGTHS.get(algorithm)
    if want is None:
        raise InvalidReference(f"invalid reference format: unsupported digest algorithm in {text!r}")
    if len(hexpart) != want or hexpart != hexpart.lower():
        raise InvalidReference(f"invalid reference format: invalid digest in {text!r}")


def _grammatical(domain: str, remainder: str, suffix: str) -> re.Match[str] | None:
    """``domain/remainder`` + ``suffix`` in the reference grammar: the match of the suffix
    (its tag and digest), or None. A domain may also read as a path component (the
    grammar's domain is optional), as in distribution's one pattern."""
    if not re.fullmatch(_PATH, remainder) or not (
            domain == DEFAULT_DOMAIN or re.fullmatch(_DOMAIN, domain) or re.fullmatch(_PATH, domain)):
        return None
    return re.fullmatch(_SUFFIX, suffix)


def parse_reference(text: str) -> Reference:
    """Parse and normalize like Docker's ``ParseNormalizedNamed``; raise InvalidReference."""
    if not text:
        raise InvalidReference("invalid reference format: repository name must have at least one component")
    if is_hex(text, 64):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    name_part = text
    at = name_part.find("@")
    if at != -1:
        name_part = name_part[:at]
    colon = name_part.rfind(":")
    if colon > name_part.rfind("/"):
        name_part = name_part[:colon]
    domain, remainder = _split_domain(name_part)
    if remainder.lower() != remainder:
        raise InvalidReference(
            f"invalid reference format: repository name ({remainder}) must be lowercase")
    suffix = text[len(name_part):]
    match = _grammatical(domain, remainder, suffix)
    if not match:
        if _grammatical(domain.lower(), remainder.lower(), suffix.lower()):
            raise InvalidReference(f"invalid reference format: repository name must be lowercase: {text!r}")
        raise InvalidReference(f"invalid reference format: {text!r}")
    name = f"{domain}/{remainder}"
    tag, digest = match.group(1), match.group(2)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"invalid reference format: repository name must not be more than "
            f"{NAME_TOTAL_LENGTH_MAX} characters: {text!r}")
    if digest:
        _check_digest(digest, text)
    domain, _, path = name.partition("/")
    if domain == DEFAULT_DOMAIN and path == OFFICIAL_PREFIX + "sha256":
        raise AmbiguousReference(f"invalid reference: {text[:300]!r} names the repository 'sha256', "
                               "which reads as an image ID (Docker refuses it as ambiguous)")
    return Reference(domain, path, tag, digest)
