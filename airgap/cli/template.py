"""A subset of Go's text/template, enough for Docker's ``--format`` and ``inspect -f``.

Actions: ``{{.Field.Sub}}``, ``{{.}}``, ``{{json .X}}``, ``{{index .X "k"}}``,
``{{join .X ", "}}``, ``{{upper .X}}``, ``{{lower .X}}``, ``{{len .X}}``,
``{{truncate .X 5}}``, ``{{println .X}}``, pipelines ``{{.X | json}}``,
``{{range .X}}…{{end}}``, ``{{if .X}}…{{else}}…{{end}}``, and ``{{-``/``-}}`` trimming.
Values print as Go's ``%v`` does: ``[a b]`` for lists, ``map[k:v]`` for maps.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Callable

from ..errors import UsageError
from ..words import is_number

_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


class _Node:
    __slots__ = ("kind", "value", "body", "orelse")

    def __init__(self, kind: str, value: str = "") -> None:
        self.kind = kind          # text, expr, range, if
        self.value = value
        self.body: list[_Node] = []
        self.orelse: list[_Node] = []


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
        if isinstance(x, dict):
            opening, items = "map[", [(f"{k}:", x[k]) for k in sorted(x)]
        elif isinstance(x, list):
            opening, items = "[", [("", item) for item in x]
        else:
            out.append(_scalar(x))
            continue
        seq: list[tuple[bool, Any]] = [(True, opening)]
        for i, (prefix, item) in enumerate(items):
            seq += [(True, (" " if i else "") + prefix), (False, item)]
        todo += reversed([*seq, (True, "]")])
    return "".join(out)


def _scalar(v: Any) -> str:
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _truthy(v: Any) -> bool:
    return bool(v) and v != "0"


class Template:
    """``fields``: the names a row has (Docker's formatter contexts are structs): a template
    that asks a row for another is refused before any output, as Docker refuses it ("can't
    evaluate field"), not printed as ``<no value>`` (which is what a map, as in ``inspect
    -f``, gives)."""

    def __init__(self, text: str, fields: frozenset[str] | None = None) -> None:
        self.text = text
        self._parsed: dict[str, list[list[str]]] = {}
        self.nodes = self._parse(self._tokens(text))
        if fields is not None:
            self._check_fields(self.nodes, fields)

    def _check_fields(self, nodes: list[_Node], fields: frozenset[str]) -> None:
        for n in nodes:
            if n.kind == "text":
                continue
            for words in self._pipeline(n.value):
                for word in words:
                    name = word[1:].split(".", 1)[0] if word.startswith(".") else ""
                    if name and name not in fields:
                        raise UsageError(f"template: can't evaluate field {name} in {self.text!r} "
                                         f"(the fields are {', '.join(sorted(fields))})")
            if n.kind == "if":  # a range's body has another dot
                self._check_fields(n.body, fields)
                self._check_fields(n.orelse, fields)

    def _tokens(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        pos = 0
        trim_next = False
        for m in _ACTION.finditer(text):
            chunk = text[pos:m.start()]
            if trim_next:
                chunk = chunk.lstrip()
            if m.group(1):
                chunk = chunk.rstrip()
            if chunk:
                out.append(("text", chunk))
            out.append(("action", m.group(2)))
            trim_next = bool(m.group(3))
            pos = m.end()
        rest = text[pos:]
        if trim_next:
            rest = rest.lstrip()
        if rest:
            out.append(("text", rest))
        if any(kind == "text" and "{{" in chunk for kind, chunk in out):  # Go: a parse error
            raise UsageError(f"template: unclosed action in {text!r}")
        return out

    def _parse(self, tokens: list[tuple[str, str]]) -> list[_Node]:
        root: list[_Node] = []
        stack: list[tuple[_Node, list[_Node]]] = []
        current = root
        for kind, value in tokens:
            if kind == "text":
                current.append(_Node("text", value))
                continue
            word = value.split(None, 1)
            head = word[0] if word else ""
            if head in ("range", "if"):
                node = _Node(head, word[1] if len(word) > 1 else "")
                current.append(node)
                stack.append((node, current))
                current = node.body
            elif head == "else":
                if not stack or stack[-1][0].kind != "if":
                    raise UsageError(f"template: unexpected {{{{else}}}} in {self.text!r}")
                current = stack[-1][0].orelse
            elif head == "end":
                if not stack:
                    raise UsageError(f"template: unexpected {{{{end}}}} in {self.text!r}")
                current = stack.pop()[1]
            else:
                current.append(_Node("expr", value))
        if stack:
            raise UsageError(f"template: unclosed {{{{{stack[-1][0].kind}}}}} in {self.text!r}")
        return root

    def render(self, dot: Any) -> str:
        return "".join(self._run(self.nodes, dot))

    def _run(self, nodes: list[_Node], dot: Any) -> list[str]:
        out: list[str] = []
        for n in nodes:
            if n.kind == "text":
                out.append(n.value)
            elif n.kind == "expr":
                out.append(go_value(self._eval(n.value, dot)))
            elif n.kind == "range":
                seq = self._eval(n.value, dot)
                items = seq.values() if isinstance(seq, dict) else (seq or [])
                for item in items:
                    out.extend(self._run(n.body, item))
            elif n.kind == "if":
                branch = n.body if _truthy(self._eval(n.value, dot)) else n.orelse
                out.extend(self._run(branch, dot))
        return out

    def _pipeline(self, expr: str) -> list[list[str]]:
        """The words of each stage of an action, split once per template."""
        cached = self._parsed.get(expr)
        if cached is None:
            try:
                cached = [shlex.split(stage.strip(), posix=True) for stage in expr.split("|")]
            except ValueError as exc:
                raise UsageError(f"template: {exc} in {expr!r}") from None
            self._parsed[expr] = cached
        return cached

    def _eval(self, expr: str, dot: Any) -> Any:
        value: Any = _MISSING
        for words in self._pipeline(expr):
            if not words:
                raise UsageError(f"template: empty command in {self.text!r}")
            args = [self._arg(w, dot) for w in words[1:]]
            if value is not _MISSING:
                args.append(value)
            head = words[0]
            if head in _FUNCS:
                try:
                    value = _FUNCS[head](*args)
                except (TypeError, IndexError, KeyError, ValueError) as exc:
                    raise UsageError(f"template: error calling {head}: {exc}") from None
            elif not args:
                value = self._arg(head, dot)
            else:
                raise UsageError(f'template: function "{head}" not defined')
        return value

    def _arg(self, word: str, dot: Any) -> Any:
        if word == ".":
            return dot
        if word.startswith("."):
            v = dot
            for part in word[1:].split("."):
                if isinstance(v, dict):
                    if part not in v:
                        return None
                    v = v[part]
                else:
                    raise UsageError(f"template: can't evaluate field {part} in {go_value(v)!r}")
            return v
        if is_number(word.lstrip("-")):
            return int(word)
        if word in ("true", "false"):
            return word == "true"
        return word


_MISSING = object()


def go_json(v: Any) -> str:
    """``json.Marshal``: compact, with ``<``, ``>`` and ``&`` escaped as Go escapes them."""
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        v = v[k] if not isinstance(v, dict) else v.get(k)
    return v


_FUNCS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "index": _index,
    "join": lambda v, sep: sep.join(go_value(x) for x in (v or [])),
    "upper": lambda v: go_value(v).upper(),
    "lower": lambda v: go_value(v).lower(),
    "title": lambda v: go_value(v).title(),
    "len": lambda v: len(v or []),
    "truncate": lambda v, n: go_value(v)[:n],
    "println": lambda *v: " ".join(go_value(x) for x in v) + "\n",
    "split": lambda v, sep: go_value(v).split(sep),
}


def expand_escapes(fmt: str) -> str:
    """Docker's CLI turns ``\\t`` and ``\\n`` typed on the command line into tabs and newlines."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")
