"""Go's values as Docker's templates see and print them, and the template functions.

Documents from JSON are maps, lists and scalars; Docker runs ``inspect -f`` over Go
structs, which print and behave otherwise (``GoStruct``, the nil kinds, ``GoText``,
``GoDuration``). ``go_value`` is Go's ``%v``, ``go_json`` its ``json.Marshal``, ``printf``
its ``fmt.Sprintf`` for the verbs templates use; ``FUNCS`` are Go's template functions and
Docker's. The engine that runs them is ``template.py``.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

MAX_WIDTH = 10_000  # printf widths and precisions, pad's spaces


# -- values ---------------------------------------------------------------------------
# Documents from JSON are maps, lists and scalars. Docker runs ``inspect -f`` over Go
# structs, which differ from maps in what a template sees: a struct has every field (a
# missing one is an error, not ``<no value>``), prints as ``{v1 v2 ...}``, and its nil
# slices, maps and pointers print ``[]``, ``map[]`` and ``<nil>`` (JSON: null).

class GoStruct(dict):  # type: ignore[type-arg]
    """A Go struct: its fields in order. ``omit``: the ``omitempty`` fields, left out of its
    JSON when empty but there for a template."""

    __slots__ = ("omit",)

    def __init__(self, fields: dict[str, Any], omit: frozenset[str] = frozenset()) -> None:
        super().__init__(fields)
        self.omit = omit


class GoNilList(list):  # type: ignore[type-arg]
    """A nil slice: ``[]`` in a template, null in JSON."""

    __slots__ = ()


class GoNilMap(dict):  # type: ignore[type-arg]
    """A nil map: ``map[]`` in a template, null in JSON."""

    __slots__ = ()


class GoStringMap(dict):  # type: ignore[type-arg]
    """A ``map[string]string``: ``index`` of a missing key gives ``""`` (the zero string)."""

    __slots__ = ()


class GoNil:
    """A nil pointer of a Go type (``*container.Config``): ``<nil>`` in a template (a field of
    it is an error, printf's other verbs name the type), null in JSON."""

    __slots__ = ("type",)

    def __init__(self, go_type: str) -> None:
        self.type = go_type

    def __bool__(self) -> bool:
        return False


class GoText(str):
    """A value Go prints (``%v``) otherwise than its JSON says: a ``time.Time``."""

    __slots__ = ("go",)
    go: str

    def __new__(cls, json_text: str, go: str) -> GoText:
        obj = super().__new__(cls, json_text)
        obj.go = go
        return obj


class GoDuration(int):
    """A ``time.Duration``: nanoseconds in JSON, ``1m30s`` when Go prints it."""

    __slots__ = ()

    @property
    def go(self) -> str:
        ns = int(self)
        if ns == 0:
            return "0s"
        sign, u = ("-" if ns < 0 else ""), abs(ns)
        if u < 1_000_000_000:  # ns, µs or ms, with the fraction Go keeps
            for unit, size in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
                if u >= size:
                    whole, frac = divmod(u, size)
                    digits = len(str(size)) - 1
                    tail = f".{frac:0{digits}d}".rstrip("0") if frac else ""
                    return f"{sign}{whole}{tail}{unit}"
        seconds, frac = divmod(u, 1_000_000_000)
        h, m, sec = seconds // 3600, seconds // 60 % 60, seconds % 60
        tail = f".{frac:09d}".rstrip("0") if frac else ""
        return sign + (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{sec}{tail}s"


def go_plain(v: Any) -> Any:
    """The JSON form of a document with Go-typed values in it (structs lose their empty
    ``omitempty`` fields; nil slices, maps and pointers become null)."""
    if isinstance(v, (GoNil, GoNilList, GoNilMap)):
        return None
    if isinstance(v, GoStruct):
        return {k: go_plain(x) for k, x in v.items() if not (k in v.omit and _empty(x))}
    if isinstance(v, dict):
        return {k: go_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [go_plain(x) for x in v]
    if isinstance(v, GoText):
        return str(v)
    return v


def _empty(v: Any) -> bool:
    return v is None or isinstance(v, GoNil) or v is False or v == 0 and not isinstance(v, bool) or v in ("", [], {})


def go_value(v: Any) -> str:
    """Go's ``%v`` formatting of a JSON-like value. A stack of its own, not recursion: a
    config from an archive may nest hundreds deep (Python's JSON reader takes ~1,000)."""
    out: list[str] = []
    todo: list[tuple[bool, Any]] = [(False, v)]  # (is text to emit, value), next one last
    while todo:
        text, x = todo.pop()
        if text:
            out.append(x)
            continue
        if isinstance(x, GoStruct):
            opening, closing, items = "{", "}", [("", item) for item in x.values()]
        elif isinstance(x, dict):
            opening, closing, items = "map[", "]", [(f"{k}:", x[k]) for k in sorted(x)]
        elif isinstance(x, list):
            opening, closing, items = "[", "]", [("", item) for item in x]
        else:
            out.append(_scalar(x))
            continue
        seq: list[tuple[bool, Any]] = [(True, opening)]
        for i, (prefix, item) in enumerate(items):
            seq += [(True, (" " if i else "") + prefix), (False, item)]
        todo += reversed([*seq, (True, closing)])
    return "".join(out)


def _scalar(v: Any) -> str:
    if v is None:
        return "<no value>"
    if isinstance(v, GoNil):
        return "<nil>"
    if isinstance(v, (GoText, GoDuration)):
        return v.go
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    return str(v)


def truth(v: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    return bool(v) if v is not None else False


def go_json(v: Any) -> str:
    """``json.Marshal``: compact, with ``<``, ``>`` and ``&`` escaped as Go escapes them."""
    text = json.dumps(go_plain(v), separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_GO_TYPES = ((bool, "bool"), (int, "int"), (float, "float64"), (str, "string"), (list, "[]interface {}"),
             (dict, "map[string]interface {}"))  # bool before int: True is an int in Python


def _go_type(v: Any) -> str:
    """The Go type printf names in ``%!d(string=x)``, for values from JSON."""
    return next((name for kind, name in _GO_TYPES if isinstance(v, kind)), "<nil>")


# -- functions ------------------------------------------------------------------------

def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, "" if isinstance(v, GoStringMap) else None) if isinstance(k, str) else _bad_index(k, v)
        elif isinstance(v, (list, str)) and isinstance(k, int) and not isinstance(k, bool):
            if not 0 <= k < len(v):
                raise IndexError(f"index out of range: {k}")
            v = v[k] if isinstance(v, list) else ord(v[k])
        elif v is None:
            raise ValueError("index of untyped nil")
        else:
            _bad_index(k, v)
    return v


def _bad_index(k: Any, v: Any) -> Any:
    raise ValueError(f"cannot index {_go_type(v)} with {_go_type(k)}")


def _slice(v: Any, *bounds: Any) -> Any:
    if not isinstance(v, (str, list)) or len(bounds) > 2:
        raise ValueError(f"can't slice item of type {_go_type(v)}")
    if any(not isinstance(b, int) or isinstance(b, bool) for b in bounds):
        raise ValueError("slice indexes must be integers")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(v)
    if not 0 <= lo <= hi <= len(v):
        raise IndexError(f"slice bounds out of range [{lo}:{hi}]")
    return v[lo:hi]


def _len(v: Any) -> int:
    if isinstance(v, (str, list, dict)) and not isinstance(v, GoStruct):
        return len(v)
    raise ValueError(f"len of type {_go_type(v)}")


def _kind(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise ValueError("missing argument for comparison")
    for b in others:
        ka, kb = _kind(a), _kind(b)
        if "nil" in (ka, kb):
            if ka == kb:
                return True
            continue
        if ka != kb or ka == "other":
            raise ValueError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka not in ("number", "string"):
        raise ValueError("incompatible types for comparison")
    return a, b


def _fmt_value(v: Any) -> str:
    """fmt's ``%v``: as the template prints a value, but nil is ``<nil>``."""
    return "<nil>" if v is None or isinstance(v, GoNil) else go_value(v)


def _print(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_fmt_value(a))
    return "".join(out)


_VERB = r"%([-+# 0]*)(\*|[0-9]+)?(?:\.(\*|[0-9]*))?([a-zA-Z%])"


def _printf(fmt: Any, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use: v s q d x X o b c f F e E g G t T and %%."""
    if not isinstance(fmt, str):
        raise ValueError(f"printf: format is {_go_type(fmt)}, not a string")
    out: list[str] = []
    pos, n = 0, 0
    for m in re.finditer(_VERB, fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width_s, prec_s, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        numbers: list[int | None] = []
        for spec in (width_s, prec_s):
            if spec == "*":
                if n >= len(args) or not isinstance(args[n], int) or isinstance(args[n], bool):
                    out.append("%!(BADWIDTH)")
                    numbers.append(None)
                else:
                    numbers.append(args[n])
                n += 1
            else:
                numbers.append(int(spec) if spec else (0 if spec == "" else None))
        width, prec = numbers
        if any(x is not None and abs(x) > MAX_WIDTH for x in (width, prec)):
            raise ValueError(f"printf: width or precision over {MAX_WIDTH}")
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[n]
        n += 1
        out.append(_pad(_format(verb, flags, prec, arg), width, flags, verb))
    out.append(fmt[pos:])
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join("<nil>" if a is None else f"{_go_type(a)}={go_value(a)}"
                                           for a in args[n:]) + ")")
    return "".join(out)


def _format(verb: str, flags: str, prec: int | None, arg: Any) -> str:
    if isinstance(arg, GoText) or isinstance(arg, GoDuration) and verb in "vsq":  # a Stringer
        arg = arg.go
    if arg is None or isinstance(arg, GoNil):  # fmt's nil: "<nil>" for %v, "%!s(<nil>)" else
        typed = f"{arg.type}=" if isinstance(arg, GoNil) else ""
        return "<nil>" if verb == "v" else f"%!{verb}({typed}<nil>)"
    bad = f"%!{verb}({_go_type(arg)}={go_value(arg)})"
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    if verb == "v":
        return go_value(arg)
    if verb == "T":
        return _go_type(arg)
    if verb == "t":
        return go_value(arg) if isinstance(arg, bool) else bad
    if verb in "sq":
        if isinstance(arg, (list, dict)):
            return go_value(arg)
        if not isinstance(arg, str):
            return bad
        text = arg[:prec] if prec is not None else arg
        return text if verb == "s" else json.dumps(text, ensure_ascii=False)
    if verb in "dboxXc":
        if verb in "xX" and isinstance(arg, str):
            text = arg.encode().hex()
            return text.upper() if verb == "X" else text
        if not is_int:
            return bad
        if verb == "c":
            return chr(arg) if 0 <= arg <= 0x10FFFF else "\ufffd"
        body = format(abs(arg), {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb])
        if "#" in flags and verb in "boxX":
            body = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}[verb] + body
        return ("-" if arg < 0 else "+" if "+" in flags else " " if " " in flags else "") + body
    if verb in "fFeEgG":
        if not isinstance(arg, (int, float)) or isinstance(arg, bool) or is_int:
            return bad
        spec = ("+" if "+" in flags else " " if " " in flags else "") + (
            f".{prec}" if prec is not None else ("" if verb in "gG" else ".6")) + verb.lower()
        text = format(arg, spec)
        if verb in "eEgG":  # Go writes exponents with at least two digits, as Python does
            text = text.upper() if verb in "EG" else text
        return text
    return f"%!{verb}({_go_type(arg)}={go_value(arg)})"


def _pad(text: str, width: int | None, flags: str, verb: str) -> str:
    if width is None or len(text) >= abs(width):
        return text
    if "-" in flags or width < 0:
        return text.ljust(abs(width))
    if "0" in flags and verb not in "sqvtT" and text[:1] in "+- " and text[1:2].isdigit():
        return text[0] + text[1:].rjust(width - 1, "0")
    if "0" in flags and verb not in "vtT":
        return text.rjust(width, "0")
    return text.rjust(width)


def _title(v: Any) -> str:
    """strings.Title: the first letter of each word upper-cased, the rest left as they are."""
    s, out, prev = go_value(v), [], " "
    for c in s:
        out.append(c.upper() if not (prev.isalnum() or prev == "_") else c)
        prev = c
    return "".join(out)


def _pad_with_space(v: Any, before: int, after: int) -> str:
    """Docker's ``pad``: spaces before and after, none around an empty string."""
    if not 0 <= before <= MAX_WIDTH or not 0 <= after <= MAX_WIDTH:
        raise ValueError(f"pad takes 0 to {MAX_WIDTH} spaces")
    text = go_value(v)
    return " " * before + text + " " * after if text else text


def _truncate(v: Any, n: int) -> str:
    if n < 0:
        raise ValueError("truncate to a negative length")
    return go_value(v)[:n]


FUNCS: dict[str, Callable[..., Any]] = {
    # Go's text/template
    "and": lambda *a: a[-1], "or": lambda *a: a[-1],  # both run lazily in Template._command
    "not": lambda v: not truth(v),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": lambda a, b: (lambda x, y: x < y)(*_ordered(a, b)),
    "le": lambda a, b: (lambda x, y: x <= y)(*_ordered(a, b)),
    "gt": lambda a, b: (lambda x, y: x > y)(*_ordered(a, b)),
    "ge": lambda a, b: (lambda x, y: x >= y)(*_ordered(a, b)),
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _print,
    "printf": _printf,
    "println": lambda *v: " ".join(_fmt_value(x) for x in v) + "\n",
    # Docker's (cli/templates)
    "json": go_json,
    "split": lambda v, sep: go_value(v).split(sep) if sep else list(go_value(v)),
    "join": lambda v, sep: sep.join(go_value(x) for x in (v or [])),
    "title": _title,
    "lower": lambda v: go_value(v).lower(),
    "upper": lambda v: go_value(v).upper(),
    "pad": _pad_with_space,
    "truncate": _truncate,
}
