"""The AirgapError tree. Each class carries the exit code the CLI maps it to."""

from __future__ import annotations


class AirgapError(Exception):
    """Root of every error airgap raises on purpose."""

    exit_code = 1


class UsageError(AirgapError):
    """The user asked for something malformed (bad flag value, bad argument)."""

    exit_code = 2


class InvalidReference(UsageError):
    """An image reference that does not follow Docker's grammar."""


class AmbiguousReference(InvalidReference):
    """A name in the repository ``sha256``: refused as a name (it reads as an image ID), but
    to a lookup simply no image, as Docker answers it."""


class NotFound(AirgapError):
    """An image, blob or file that is not there."""


class Conflict(AirgapError):
    """The operation would break something the user did not ask to break."""


class IntegrityError(AirgapError):
    """Content that does not match what it claims to be: exit code 3."""

    exit_code = 3


class DigestMismatch(IntegrityError):
    """Bytes whose sha256 or size differs from the expected descriptor."""

    def __init__(self, what: str, expected: str, got: str, size: int | None = None,
                 got_size: int | None = None) -> None:
        self.what, self.expected, self.got = what, expected, got
        self.size, self.got_size = size, got_size
        if size is not None and got_size is not None and size != got_size:
            detail = f"size {got_size}, expected {size}"
        else:
            detail = f"digest {got}, expected {expected}"
        super().__init__(f"{what}: content does not match: {detail}")


class FormatError(IntegrityError):
    """A corrupt, truncated, malicious or otherwise unreadable archive or document."""


class SignatureError(IntegrityError):
    """A missing, bad or untrusted signature."""


class StoreCorrupt(IntegrityError):
    """The store itself is damaged (missing or altered blob, broken index)."""


class RegistryError(AirgapError):
    """An error answered by a registry, with the distribution error code."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        self.status, self.code = status, code
        super().__init__(message)
