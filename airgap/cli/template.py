"""Go's text/template, the part Docker's ``--format`` and ``inspect -f`` users write.

Actions: fields (``.A.B``, ``.``, ``$``, ``$x.A``), literals (``"s"`` with Go's escapes,
`` `raw` ``, numbers, ``true``/``false``/``nil``), pipelines (``.X | json``), parentheses
(``(index .M "k").Sub``), variables (``{{$x := .A}}``, ``{{$x = .B}}``), ``if`` / ``else
if`` / ``else``, ``range`` (``$i, $e :=``, ``else``, ``break``, ``continue``), ``with`` /
``else with`` / ``else``, comments ``{{/* */}}`` and ``{{-``/``-}}`` trimming. Functions:
Go's ``and or not eq ne lt le gt ge len index slice print printf println`` and Docker's
``json split join title lower upper pad truncate``. Not here: ``define``, ``template``,
``block``, ``call``, ``html``, ``js``, ``urlquery`` (an error, before any output).
Values print as Go's ``%v`` does: ``[a b]`` for lists, ``map[k:v]`` for maps.
Nesting (blocks, parentheses) is capped at ``MAX_DEPTH``, printf widths at ``MAX_WIDTH``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, NamedTuple

from ..errors import UsageError

MAX_DEPTH = 100
MAX_WIDTH = 10_000
MAX_RANGE = 1 << 20

_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|"
                     r"(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELDS = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'"}
_KEYWORDS = ("if", "else", "end", "range", "with", "break", "continue", "define", "template", "block")


def _fail(message: str) -> UsageError:
    return UsageError(f"template: {message}")


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


def _truth(v: Any) -> bool:
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


# -- the pieces of a template -----------------------------------------------------------

class _Operand(NamedTuple):
    kind: str            # lit, dot, field, var, fn, pipe
    value: Any = None    # the literal; the variable's or function's name; a _Pipe
    fields: tuple[str, ...] = ()  # a field chain after it (.A.B)


class _Pipe(NamedTuple):
    decl: tuple[str, ...]        # variables it declares or assigns
    assign: bool                 # ``=`` (assign) rather than ``:=`` (declare)
    cmds: tuple[tuple[_Operand, ...], ...]


class _Node:
    __slots__ = ("kind", "pipe", "text", "body", "orelse")

    def __init__(self, kind: str, pipe: _Pipe | None = None, text: str = "") -> None:
        self.kind = kind     # text, action, if, range, with, break, continue
        self.pipe = pipe
        self.text = text
        self.body: list[_Node] = []
        self.orelse: list[_Node] = []


def _actions(text: str) -> list[tuple[str, str]]:
    """Text and the insides of actions, trimmed as ``{{- `` and `` -}}`` ask, comments dropped.
    An action ends at the first ``}}`` outside a quoted string."""
    out: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    while True:
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if start >= 0 and text[start + 2:start + 3] == "-" and text[start + 3:start + 4] in (" ", "\t", "\r", "\n"):
            chunk, inner_from = chunk.rstrip(" \t\r\n"), start + 4
        else:
            inner_from = start + 2
        if trim_next:
            chunk = chunk.lstrip(" \t\r\n")
        if chunk:
            out.append(("text", chunk))
        if start < 0:
            return out
        end = _action_end(text, inner_from)
        inner = text[inner_from:end]
        trim_next = inner.endswith("-") and inner[-2:-1] in (" ", "\t", "\r", "\n")
        if trim_next:
            inner = inner[:-2]
        inner = inner.strip(" \t\r\n")
        if inner.startswith("/*"):
            if not inner.endswith("*/") or len(inner) < 4:
                raise _fail(f"unclosed comment in {text!r}")
        else:
            out.append(("action", inner))
        pos = end + 2


def _action_end(text: str, i: int) -> int:
    quote = ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"`'":
            quote = c
        elif text.startswith("}}", i):
            return i
        i += 1
    raise _fail(f"unclosed action in {text!r}")


def _unquote(body: str, where: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(nxt)
        digits = body[i + 2:i + 2 + width] if width else body[i + 1:i + 4]
        base = 16 if width else 8
        try:
            if len(digits) != (width or 3):
                raise ValueError
            code = int(digits, base)
            out.append(chr(code))
        except ValueError:
            raise _fail(f"invalid escape in string {where!r}") from None
        i += 2 + width if width else 4
    return "".join(out)


def _tokens(src: str) -> list[tuple[str, Any, bool]]:
    """(kind, value, spaced: whitespace before it) for the inside of one action."""
    out: list[tuple[str, Any, bool]] = []
    i, spaced = 0, True
    while i < len(src):
        c = src[i]
        if c in " \t\r\n":
            i, spaced = i + 1, True
            continue
        if src.startswith(":=", i):
            out.append((":=", ":=", spaced))
            i += 2
        elif c in "|(),=":
            out.append((c, c, spaced))
            i += 1
        elif c in "\"`":
            j = i + 1
            while j < len(src) and src[j] != c:
                j += 2 if c == '"' and src[j] == "\\" else 1
            if j >= len(src):
                raise _fail(f"unterminated quoted string in {src!r}")
            body = src[i + 1:j]
            out.append(("lit", body if c == "`" else _unquote(body, src), spaced))
            i = j + 1
        elif c == "'":
            j = src.find("'", i + 2 if src[i + 1:i + 2] != "\\" else i + 3)
            if j < 0:
                raise _fail(f"unterminated character constant in {src!r}")
            ch = _unquote(src[i + 1:j], src)
            if len(ch) != 1:
                raise _fail(f"invalid character constant in {src!r}")
            out.append(("lit", ord(ch), spaced))
            i = j + 1
        elif c == "$":
            m = _IDENT.match(src, i + 1)
            name = "$" + (m.group() if m else "")
            i = m.end() if m else i + 1
            out.append(("var", name, spaced))
        elif c == "." and (m := _FIELDS.match(src, i)):
            out.append(("field", tuple(m.group()[1:].split(".")), spaced))
            i = m.end()
        elif c == ".":
            if not src[i + 1:i + 2].isdigit():
                out.append(("dot", None, spaced))
                i += 1
                continue
            m = _NUMBER.match(src, i)
            assert m is not None
            out.append(("lit", _number(m.group(), src), spaced))
            i = m.end()
        elif c.isdigit() or (c in "+-" and src[i + 1:i + 2].isdigit()):
            m = _NUMBER.match(src, i)
            assert m is not None
            out.append(("lit", _number(m.group(), src), spaced))
            i = m.end()
        elif m := _IDENT.match(src, i):
            word = m.group()
            out.append(("lit", word == "true", spaced) if word in ("true", "false") else
                       ("lit", None, spaced) if word == "nil" else ("ident", word, spaced))
            i = m.end()
        else:
            raise _fail(f"unexpected {c!r} in {src!r}")
        spaced = False
    return out


def _number(text: str, src: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise _fail(f"bad number syntax {text!r} in {src!r}") from None


class _Parser:
    """A pipeline from an action's tokens."""

    def __init__(self, tokens: list[tuple[str, Any, bool]], src: str) -> None:
        self.toks, self.i, self.src, self.depth = tokens, 0, src, 0

    def peek(self) -> str:
        return self.toks[self.i][0] if self.i < len(self.toks) else ""

    def declaration(self) -> tuple[tuple[str, ...], bool]:
        """``$x :=``, ``$i, $e :=`` or ``$x =`` at the start of a pipeline, if there."""
        names: list[str] = []
        j = self.i
        while j < len(self.toks) and self.toks[j][0] == "var" and len(names) < 2:
            names.append(self.toks[j][1])
            nxt = self.toks[j + 1][0] if j + 1 < len(self.toks) else ""
            if nxt in (":=", "="):
                self.i = j + 2
                return tuple(names), nxt == "="
            if nxt != ",":
                break
            j += 2
        return (), False

    def pipe(self, close: str = "") -> _Pipe:
        decl, assign = self.declaration() if not close else ((), False)
        cmds: list[tuple[_Operand, ...]] = []
        while True:
            cmd: list[_Operand] = []
            while self.peek() not in ("", "|", close or "\0"):
                if self.peek() == ")":
                    raise _fail(f"unexpected ) in {self.src!r}")
                cmd.append(self.operand())
            if not cmd:
                raise _fail(f"missing command in {self.src!r}")
            cmds.append(tuple(cmd))
            if self.peek() != "|":
                break
            self.i += 1
        return _Pipe(tuple(decl), assign, tuple(cmds))

    def operand(self) -> _Operand:
        kind, value, _ = self.toks[self.i]
        self.i += 1
        if kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _fail(f"parentheses nested more than {MAX_DEPTH} deep")
            inner = self.pipe(close=")")
            if self.peek() != ")":
                raise _fail(f"unclosed ( in {self.src!r}")
            self.i += 1
            self.depth -= 1
            op = _Operand("pipe", inner)
        elif kind == "field":
            return _Operand("field", None, value)
        elif kind in ("lit", "dot", "var"):
            op = _Operand(kind, value)
        elif kind == "ident":
            if value in _KEYWORDS:
                raise _fail(f"unexpected {value} in {self.src!r}")
            if value not in _FUNCS:
                raise _fail(f'function "{value}" not defined')
            return _Operand("fn", value)
        else:
            raise _fail(f"unexpected {value!r} in {self.src!r}")
        if self.peek() == "field" and not self.toks[self.i][2]:  # (x).A, $x.A: a chain
            op = op._replace(fields=self.toks[self.i][1])
            self.i += 1
        if op.kind == "lit" and op.fields:
            raise _fail(f"can't evaluate field of a literal in {self.src!r}")
        return op


def _parse_pipe(src: str) -> _Pipe:
    p = _Parser(_tokens(src), src)
    pipe = p.pipe()
    if p.i != len(p.toks):
        raise _fail(f"unexpected {p.toks[p.i][1]!r} in {src!r}")
    return pipe


class _Frame:
    __slots__ = ("node", "siblings", "chained", "in_else")

    def __init__(self, node: _Node, siblings: list[_Node], chained: bool) -> None:
        self.node, self.siblings, self.chained, self.in_else = node, siblings, chained, False


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """``fields``: the names a row has (Docker's formatter contexts are structs): a template
    that asks a row for another is refused before any output, as Docker refuses it ("can't
    evaluate field"), not printed as ``<no value>`` (which is what a map, as in ``inspect
    -f``, gives)."""

    def __init__(self, text: str, fields: frozenset[str] | None = None) -> None:
        self.text = text
        self.nodes = self._parse(_actions(text))
        if fields is not None:
            self._check_fields(self.nodes, fields, True)

    # -- parsing ---------------------------------------------------------------------
    def _parse(self, pieces: list[tuple[str, str]]) -> list[_Node]:
        root: list[_Node] = []
        # each open block: its node, where its siblings go, whether it is an ``else if``
        # (closed by its first's end), and whether its else part is being read
        stack: list[_Frame] = []
        current = root
        for kind, value in pieces:
            if kind == "text":
                current.append(_Node("text", text=value))
                continue
            words = value.split(None, 1)
            head = words[0] if words and _IDENT.fullmatch(words[0]) else ""
            rest = words[1].strip() if head and len(words) > 1 else ""
            if head in ("if", "range", "with"):
                if len(stack) >= MAX_DEPTH:
                    raise _fail(f"blocks nested more than {MAX_DEPTH} deep")
                node = _Node(head, self._block_pipe(head, rest))
                current.append(node)
                stack.append(_Frame(node, current, False))
                current = node.body
            elif head == "else":
                if not stack or stack[-1].in_else:
                    raise _fail(f"unexpected {{{{else}}}} in {self.text!r}")
                top = stack[-1]
                top.in_else = True
                sub = rest.split(None, 1)
                if sub and sub[0] in ("if", "with") and top.node.kind == sub[0]:
                    if len(stack) >= MAX_DEPTH:
                        raise _fail(f"blocks nested more than {MAX_DEPTH} deep")
                    node = _Node(sub[0], self._block_pipe(sub[0], sub[1] if len(sub) > 1 else ""))
                    top.node.orelse.append(node)
                    stack.append(_Frame(node, top.node.orelse, True))
                    current = node.body
                elif rest:
                    raise _fail(f"unexpected {rest!r} after else in {self.text!r}")
                else:
                    current = top.node.orelse
            elif head == "end":
                if not stack or rest:
                    raise _fail(f"unexpected {{{{end}}}} in {self.text!r}")
                while True:
                    frame = stack.pop()
                    current = frame.siblings
                    if not frame.chained:
                        break
            elif head in ("break", "continue"):
                if rest or not any(f.node.kind == "range" and not f.in_else for f in stack):
                    raise _fail(f"{{{{{head}}}}} outside {{{{range}}}} in {self.text!r}")
                current.append(_Node(head))
            elif head in ("define", "template", "block"):
                raise _fail(f"{{{{{head}}}}} is not supported (in {self.text!r})")
            else:
                current.append(_Node("action", _parse_pipe(value)))
        if stack:
            raise _fail(f"unclosed {{{{{stack[-1].node.kind}}}}} in {self.text!r}")
        return root

    def _block_pipe(self, head: str, rest: str) -> _Pipe:
        if not rest:
            raise _fail(f"missing value for {head} in {self.text!r}")
        pipe = _parse_pipe(rest)
        if pipe.decl and (head != "range" and len(pipe.decl) > 1 or pipe.assign and head == "range"):
            raise _fail(f"bad declaration in {{{{{head} {rest}}}}}")
        return pipe

    def _check_fields(self, nodes: list[_Node], fields: frozenset[str], root_dot: bool) -> None:
        for n in nodes:
            if n.pipe is not None:
                self._check_pipe(n.pipe, fields, root_dot)
            # a range's or with's body has another dot; every else has the outer one
            self._check_fields(n.body, fields, root_dot and n.kind == "if")
            self._check_fields(n.orelse, fields, root_dot)

    def _check_pipe(self, pipe: _Pipe, fields: frozenset[str], root_dot: bool) -> None:
        for cmd in pipe.cmds:
            for op in cmd:
                if op.kind == "pipe":
                    self._check_pipe(op.value, fields, root_dot)
                    continue
                on_row = (op.kind == "field" and root_dot) or (op.kind == "var" and op.value == "$")
                if on_row and op.fields and op.fields[0] not in fields:
                    raise _fail(f"can't evaluate field {op.fields[0]} in {self.text!r} "
                                f"(the fields are {', '.join(sorted(fields))})")

    # -- running ---------------------------------------------------------------------
    def render(self, dot: Any) -> str:
        out: list[str] = []
        self._run(self.nodes, dot, [("$", dot)], out)
        return "".join(out)

    def _run(self, nodes: list[_Node], dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        mark = len(scope)
        for n in nodes:
            if n.kind == "text":
                out.append(n.text)
            elif n.kind == "action":
                assert n.pipe is not None
                value = self._pipe(n.pipe, dot, scope)
                if not n.pipe.decl:
                    out.append(go_value(value))
            elif n.kind == "if":
                assert n.pipe is not None
                inner = len(scope)
                taken = _truth(self._pipe(n.pipe, dot, scope))
                self._run(n.body if taken else n.orelse, dot, scope, out)
                del scope[inner:]
            elif n.kind == "with":
                assert n.pipe is not None
                inner = len(scope)
                value = self._pipe(n.pipe, dot, scope)
                if _truth(value):
                    self._run(n.body, value, scope, out)
                else:
                    self._run(n.orelse, dot, scope, out)
                del scope[inner:]
            elif n.kind == "range":
                self._range(n, dot, scope, out)
            elif n.kind == "break":
                raise _Break
            else:
                raise _Continue
        del scope[mark:]

    def _range(self, n: _Node, dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        assert n.pipe is not None
        inner = len(scope)
        seq = self._pipe(n.pipe._replace(decl=()), dot, scope)
        if isinstance(seq, GoStruct):
            raise _fail(f"range can't iterate over a struct ({go_value(seq)[:60]})")
        if isinstance(seq, dict):
            items: list[tuple[Any, Any]] = [(k, seq[k]) for k in sorted(seq)]
        elif isinstance(seq, list):
            items = list(enumerate(seq))
        elif isinstance(seq, int) and not isinstance(seq, bool):  # Go 1.22: 0 .. n-1
            if seq > MAX_RANGE:
                raise _fail(f"range over {seq}: more than {MAX_RANGE}")
            items = [(i, i) for i in range(seq)]
        elif seq is None:
            items = []
        else:
            raise _fail(f"range can't iterate over {go_value(seq)}")
        for key, item in items:
            names = n.pipe.decl
            if len(names) == 2:
                scope += [(names[0], key), (names[1], item)]
            elif names:
                scope.append((names[0], item))
            try:
                self._run(n.body, item, scope, out)
            except _Continue:
                pass
            except _Break:
                del scope[inner:]
                break
            del scope[inner:]
        if not items:
            self._run(n.orelse, dot, scope, out)

    def _pipe(self, pipe: _Pipe, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self._command(cmd, dot, scope, value)
        for name in pipe.decl:
            if pipe.assign:
                for k in range(len(scope) - 1, -1, -1):
                    if scope[k][0] == name:
                        scope[k] = (name, value)
                        break
                else:
                    raise _fail(f"undefined variable: {name}")
            else:
                scope.append((name, value))
        return value

    def _command(self, cmd: tuple[_Operand, ...], dot: Any, scope: list[tuple[str, Any]], piped: Any) -> Any:
        first = cmd[0]
        if first.kind != "fn":
            if len(cmd) > 1 or piped is not _MISSING:
                raise _fail(f"can't give argument to non-function {self._show(first)}")
            return self._operand(first, dot, scope)
        name = first.value
        if name in ("and", "or"):  # Go evaluates these lazily, left to right
            ops = cmd[1:]
            if not ops and piped is _MISSING:
                raise _fail(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for k in range(len(ops) + (piped is not _MISSING)):
                value = self._operand(ops[k], dot, scope) if k < len(ops) else piped
                if _truth(value) != (name == "and"):
                    return value
            return value
        args = [self._operand(op, dot, scope) for op in cmd[1:]]
        if piped is not _MISSING:
            args.append(piped)
        try:
            return _FUNCS[name](*args)
        except UsageError:
            raise
        except (TypeError, IndexError, KeyError, ValueError, AttributeError) as exc:
            raise _fail(f"error calling {name}: {exc}") from None

    def _operand(self, op: _Operand, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        if op.kind == "lit":
            return op.value
        if op.kind == "dot":
            value = dot
        elif op.kind == "field":
            value = dot
        elif op.kind == "var":
            for name, v in reversed(scope):
                if name == op.value:
                    value = v
                    break
            else:
                raise _fail(f"undefined variable: {op.value}")
        elif op.kind == "pipe":
            value = self._pipe(op.value, dot, scope)
        else:
            raise _fail(f"can't use function {op.value} as a value without calling it")
        for part in op.fields:
            if isinstance(value, GoStruct):  # as Docker's inspect -f says it (its fallback's words)
                if part not in value:
                    raise _fail(f'map has no entry for key "{part}"')
                value = value[part]
            elif isinstance(value, dict):
                if part not in value:
                    return None
                value = value[part]
            elif isinstance(value, GoNil):
                raise _fail(f"nil pointer evaluating {value.type}.{part}")
            else:
                raise _fail(f"can't evaluate field {part} in {go_value(value)!r}")
        return value

    @staticmethod
    def _show(op: _Operand) -> str:
        if op.kind == "lit":
            return go_value(op.value)
        return "." + ".".join(op.fields) if op.kind == "field" else str(op.value)


_MISSING = object()


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


_VERB = re.compile(r"%([-+# 0]*)(\*|[0-9]+)?(?:\.(\*|[0-9]*))?([a-zA-Z%])")


def _printf(fmt: Any, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use: v s q d x X o b c f F e E g G t T and %%."""
    if not isinstance(fmt, str):
        raise ValueError(f"printf: format is {_go_type(fmt)}, not a string")
    out: list[str] = []
    pos, n = 0, 0
    for m in _VERB.finditer(fmt):
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


_FUNCS: dict[str, Callable[..., Any]] = {
    # Go's text/template
    "and": lambda *a: a[-1], "or": lambda *a: a[-1],  # both run lazily in Template._command
    "not": lambda v: not _truth(v),
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


def expand_escapes(fmt: str) -> str:
    """Docker's CLI turns ``\\t`` and ``\\n`` typed on the command line into tabs and newlines."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")
