"""airgap.records.NamedTuple makes the same classes as typing.NamedTuple, without typing."""

import subprocess
import sys
import typing

import pytest

from airgap.records import NamedTuple


class Point(NamedTuple):
    """A point."""

    x: int
    y: int = 0
    label: str = ""

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    @property
    def origin(self) -> bool:
        return self.x == self.y == 0


class TypingPoint(typing.NamedTuple):
    """A point."""

    x: int
    y: int = 0
    label: str = ""

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    @property
    def origin(self) -> bool:
        return self.x == self.y == 0


def test_a_record_is_what_typing_makes() -> None:
    for cls in (Point, TypingPoint):
        p = cls(3, -4)
        assert isinstance(p, tuple) and tuple(p) == (3, -4, "") and p == (3, -4, "")
        assert p.norm1() == 7 and not p.origin and cls(0).origin
        assert cls._fields == ("x", "y", "label") and cls._field_defaults == {"y": 0, "label": ""}
        assert p._replace(label="a") == cls(3, -4, "a") and p._asdict() == {"x": 3, "y": -4, "label": ""}
        assert cls.__doc__ == "A point." and cls.__module__ == __name__
        assert list(cls.__annotations__) == ["x", "y", "label"]
        assert repr(p) == f"{cls.__name__}(x=3, y=-4, label='')"
        assert hash(p) == hash((3, -4, "")) and vars(cls)["__slots__"] == ()
        with pytest.raises(AttributeError):
            p.x = 1  # type: ignore[misc]
        with pytest.raises(TypeError):
            cls()  # type: ignore[call-arg]


def test_what_typing_refuses_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):
        class _Order(NamedTuple):
            a: int = 0
            b: int  # type: ignore[misc]
    with pytest.raises(AttributeError, match="_make"):
        class _Made(NamedTuple):
            a: int

            def _make(self) -> None:  # type: ignore[misc]
                pass
    with pytest.raises(AttributeError, match="__classcell__"):  # its methods would not find their class
        class _Super(NamedTuple):
            a: int

            def __repr__(self) -> str:
                return super().__repr__()
    with pytest.raises(TypeError, match="no other base"):
        class _Mixed(NamedTuple, Exception):  # type: ignore[misc]
            a: int


def test_records_import_no_typing() -> None:
    code = "import sys; import airgap.records, airgap.oci, airgap.store.layout; print('typing' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split() == ["False"]
