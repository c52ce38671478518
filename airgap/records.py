"""Named tuples without ``typing`` at run time.

``class Blob(NamedTuple): digest: str; size: int = 0`` with ``NamedTuple`` from here is
``typing.NamedTuple`` to the type checker. At run time the class statement is made into
``collections.namedtuple`` as typing makes it (fields in order, defaults, methods and
docstring kept), without importing typing, ~12 M instructions: a twelfth of a load of
present images, which is mostly start-up. The annotations are not evaluated (typing
compiles each that is a string), so the modules that make records keep
``from __future__ import annotations``.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    # what typing.NamedTuple makes itself, and what a record may not redefine
    _MADE = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                       "_make", "_replace", "_asdict", "_source"})
    _SKIPPED = frozenset({"__module__", "__annotations__"})

    class _RecordType(type):
        def __new__(mcls, name, bases, namespace):
            if bases != (NamedTuple,):
                raise TypeError(f"record {name}: a NamedTuple has no other base")
            fields = tuple(namespace.get("__annotations__", {}))
            defaults = [namespace[field] for field in fields if field in namespace]
            if fields[len(fields) - len(defaults):] != tuple(field for field in fields if field in namespace):
                raise TypeError(f"record {name}: a field without a default follows one with a default")
            made = collections.namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            for key, value in namespace.items():
                if key in _MADE or key == "__classcell__":
                    raise AttributeError(f"record {name}: cannot define {key}")
                if key not in fields and key not in _SKIPPED:
                    setattr(made, key, value)
            made.__annotations__ = namespace.get("__annotations__", {})
            return made

    NamedTuple = type.__new__(_RecordType, "NamedTuple", (), {})
