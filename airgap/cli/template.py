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
Nesting (blocks, parentheses) is capped at ``MAX_DEPTH``, ``range N`` at ``MAX_RANGE``;
values, printing and the functions (printf widths capped) are in ``govalues.py``.
"""

from __future__ import annotations

import re

from ..errors import UsageError
from .govalues import FUNCS, GoNil, GoStruct, go_value, truth
from ..records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 100
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
            if value not in FUNCS:
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
                taken = truth(self._pipe(n.pipe, dot, scope))
                self._run(n.body if taken else n.orelse, dot, scope, out)
                del scope[inner:]
            elif n.kind == "with":
                assert n.pipe is not None
                inner = len(scope)
                value = self._pipe(n.pipe, dot, scope)
                if truth(value):
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
                if truth(value) != (name == "and"):
                    return value
            return value
        args = [self._operand(op, dot, scope) for op in cmd[1:]]
        if piped is not _MISSING:
            args.append(piped)
        try:
            return FUNCS[name](*args)
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


def expand_escapes(fmt: str) -> str:
    """Docker's CLI turns ``\\t`` and ``\\n`` typed on the command line into tabs and newlines."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")
