"""The Source and Sink contracts that every transport implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Protocol

from ..oci import Descriptor
from ..reference import Reference

ProgressFn = Callable[[int], None]


@dataclass
class SourceImage:
    """A top-level manifest or index a source offers, and the names to give it."""

    descriptor: Descriptor
    names: list[Reference] = field(default_factory=list)
    label: str = ""  # how errors name the image when it has no name

    def display(self) -> str:
        if self.names:
            return ", ".join(n.familiar() for n in self.names)
        return self.label or self.descriptor.digest


class Source(Protocol):
    name: str

    def images(self) -> list[SourceImage]: ...

    def has_blob(self, digest: str) -> bool: ...

    def read_document(self, desc: Descriptor, what: str) -> bytes:
        """A manifest, index or config whole, checked against ``desc``."""
        ...

    def open_blob(self, desc: Descriptor) -> BinaryIO: ...

    def check_plan(self, plan: Any) -> None:
        """Source-specific checks of a finished plan (a bundle: everything is listed)."""
        ...

    def uncompressed_size(self, desc: Descriptor) -> int:
        """The size of a layer's tar once decompressed."""
        ...

    def where(self, desc: Descriptor) -> str:
        """Where a blob comes from, for error messages (an archive member, a URL...)."""
        ...

    def close(self) -> None: ...


class Sink(Protocol):
    def has_blob(self, digest: str) -> bool: ...

    def begin(self, plan: Any) -> None: ...

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: ProgressFn | None = None) -> bool: ...

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> bool: ...

    def put_image(self, desc: Descriptor, names: list[Reference]) -> None: ...

    def commit(self) -> None: ...
