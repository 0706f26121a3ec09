"""A parser for the subset of Go's ``text/template`` that ``gh api --template`` users write
(pure).

Supported: text, ``{{pipeline}}``, ``{{- trim -}}``, comments, ``if``/``else if``/``else``,
``range`` (with ``$i, $e :=``), ``with``, ``break``/``continue``, variables (``$x :=``,
``$x =``, ``$``), field chains (``.a.b``, ``$x.a``, ``(pipe).a``), pipelines with ``|``,
string (interpreted and raw), number, ``true``/``false``/``nil`` literals. Not supported:
``define``/``template``/``block`` and character constants; those raise
:class:`TemplateUnsupported`, so a caller can hand the template to the real gh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Action", "Command", "Literal", "Node", "Pipe", "TemplateSyntaxError",
    "TemplateUnsupported", "parse_template",
]


class TemplateSyntaxError(Exception):
    """The template does not parse (gh would refuse it too)."""


class TemplateUnsupported(Exception):
    """Valid Go template syntax outside the supported subset."""


@dataclass(frozen=True)
class Literal:
    """A constant: string, int, float, bool or ``None`` (nil)."""

    value: Any


@dataclass(frozen=True)
class Field:
    """``.a.b`` (``names`` empty for ``.``)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Variable:
    """``$x.a.b`` (``name`` is ``$`` for the root)."""

    name: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Identifier:
    """A function name."""

    name: str


@dataclass(frozen=True)
class Chain:
    """``(pipeline).a.b``."""

    node: Pipe
    names: tuple[str, ...]


Operand = Literal | Field | Variable | Identifier | Chain


@dataclass(frozen=True)
class Command:
    """One stage of a pipeline: operands, the first possibly a function."""

    args: tuple[Operand | Pipe, ...]


@dataclass(frozen=True)
class Pipe:
    """``$a, $b := cmd | cmd``; ``assign`` is True for ``=``."""

    decl: tuple[str, ...]
    assign: bool
    commands: tuple[Command, ...]


@dataclass
class Action:
    """A node of the template tree: ``kind`` is text, print, if, range, with, break or
    continue."""

    kind: str
    text: str = ""
    pipe: Pipe | None = None
    body: list[Action] = field(default_factory=list)
    orelse: list[Action] = field(default_factory=list)


Node = Action

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<declare>:=)
  | (?P<punct>[|(),=])
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?))
  | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)
_ESCAPE = re.compile(
    r"""\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\'"])""")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\", "'": "'", '"': '"'}
_KEYWORDS = frozenset({"if", "else", "end", "range", "with", "break", "continue", "define",
                       "template", "block"})


def _unquote(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        body = match.group()[1:]
        if body[0] in _SIMPLE:
            return _SIMPLE[body[0]]
        if body[0] in "xuU":
            return chr(int(body[1:], 16))
        return chr(int(body, 8))

    inner = text[1:-1]
    if "\\" in _ESCAPE.sub("", inner):
        raise TemplateSyntaxError(f"invalid escape in {text}")
    return _ESCAPE.sub(one, inner)


def _number(text: str) -> Literal:
    cleaned = text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", cleaned):
            return Literal(int(cleaned, 16))
        if re.fullmatch(r"[+-]?\d+", cleaned):
            return Literal(int(cleaned))
        return Literal(float(cleaned))
    except ValueError as exc:
        raise TemplateSyntaxError(f"bad number syntax: {text!r}") from exc


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise TemplateSyntaxError(f"unexpected {source[pos]!r} in command")
        kind = match.lastgroup or ""
        pos = match.end()
        if kind == "field" and out and out[-1] == ("punct", ")"):
            kind = "chainfield"  # (pipe).a.b
        if kind != "space":
            out.append((kind, match.group()))
    return out


class _ActionParser:
    """Parses the tokens of one action into a pipeline."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def pipe(self, *, closing: bool = False) -> Pipe:
        decl: list[str] = []
        assign = False
        start = self.pos
        while (token := self.peek()) is not None and token[0] == "variable" and "." not in token[1]:
            decl.append(self.take()[1])
            nxt = self.peek()
            if nxt == ("punct", ","):
                self.take()
                continue
            if nxt in (("declare", ":="), ("punct", "=")):
                assign = self.take()[1] == "="
                break
            decl, self.pos = [], start
            break
        commands = [self.command(closing)]
        while self.peek() == ("punct", "|"):
            self.take()
            commands.append(self.command(closing))
        return Pipe(tuple(decl), assign, tuple(commands))

    def command(self, closing: bool) -> Command:
        args: list[Operand | Pipe] = []
        while (token := self.peek()) is not None and token != ("punct", "|"):
            if token == ("punct", ")"):
                if closing:
                    break
                raise TemplateSyntaxError("unexpected right paren")
            args.append(self.operand())
        if not args:
            raise TemplateSyntaxError("missing value for command")
        return Command(tuple(args))

    def operand(self) -> Operand | Pipe:
        kind, text = self.take()
        if kind == "string":
            return Literal(_unquote(text))
        if kind == "raw":
            return Literal(text[1:-1])
        if kind == "number":
            return _number(text)
        if kind == "char":
            raise TemplateUnsupported("character constants")
        if kind == "variable":
            name, *names = text.split(".")
            return Variable(name, tuple(names))
        if kind == "field":
            return Field(tuple(n for n in text.split(".") if n))
        if kind == "word":
            if text in ("true", "false"):
                return Literal(text == "true")
            if text == "nil":
                return Literal(None)
            if text in _KEYWORDS:
                raise TemplateSyntaxError(f"unexpected {text} in command")
            return Identifier(text)
        if (kind, text) == ("punct", "("):
            inner = self.pipe(closing=True)
            if self.peek() != ("punct", ")"):
                raise TemplateSyntaxError("unclosed left paren")
            self.take()
            nxt = self.peek()
            if nxt is not None and nxt[0] == "chainfield":
                self.take()
                return Chain(inner, tuple(n for n in nxt[1].split(".") if n))
            return inner
        raise TemplateSyntaxError(f"unexpected {text!r} in operand")


def _split(source: str) -> list[tuple[str, str]]:
    """Text and action pieces, with ``{{-``/``-}}`` trimming applied."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    while True:
        start = source.find("{{", pos)
        text = source[pos:] if start < 0 else source[pos:start]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if start < 0:
            if text:
                pieces.append(("text", text))
            return pieces
        inner_start = start + 2
        if source.startswith("- ", inner_start) or source.startswith("-\t", inner_start) or (
                source.startswith("-\n", inner_start)):
            text = text.rstrip(" \t\r\n")
            inner_start += 1
        if text:
            pieces.append(("text", text))
        end = source.find("}}", inner_start)
        if end < 0:
            raise TemplateSyntaxError("unclosed action")
        inner_end = end
        trim_next = False
        if end - 1 >= inner_start and source[end - 1] == "-" and source[end - 2:end - 1].isspace():
            inner_end = end - 1
            trim_next = True
        inner = source[inner_start:inner_end].strip()
        if inner.startswith("/*"):
            if not inner.endswith("*/"):
                raise TemplateSyntaxError("unclosed comment")
        else:
            pieces.append(("action", inner))
        pos = end + 2


def parse_template(source: str) -> list[Action]:
    """The template's tree; :class:`TemplateSyntaxError` or :class:`TemplateUnsupported`."""
    pieces = _split(source)
    index = 0

    def block(stop: frozenset[str]) -> tuple[list[Action], str]:
        nonlocal index
        nodes: list[Action] = []
        while index < len(pieces):
            kind, text = pieces[index]
            index += 1
            if kind == "text":
                nodes.append(Action("text", text=text))
                continue
            words = text.split(None, 1)
            keyword = words[0] if words else ""
            if keyword in ("end", "else") and keyword in stop:
                return nodes, text
            if keyword in ("end", "else"):
                raise TemplateSyntaxError(f"unexpected {{{{{keyword}}}}}")
            if keyword in ("define", "template", "block"):
                raise TemplateUnsupported(f"{{{{{keyword}}}}}")
            if keyword in ("break", "continue") and len(words) == 1:
                nodes.append(Action(keyword))
                continue
            if keyword in ("if", "range", "with"):
                nodes.append(control(keyword, words[1] if len(words) > 1 else ""))
                continue
            nodes.append(Action("print", pipe=pipeline(text)))
        if stop:
            raise TemplateSyntaxError("unexpected EOF")
        return nodes, ""

    def control(keyword: str, rest: str) -> Action:
        node = Action(keyword, pipe=pipeline(rest))
        node.body, closing = block(frozenset({"end", "else"}))
        if closing.startswith("else"):
            tail = closing[4:].strip()
            if tail.startswith(("if ", "with ")):
                word, _, inner = tail.partition(" ")
                node.orelse = [control(word, inner)]
            elif tail:
                raise TemplateSyntaxError(f"unexpected {tail!r} after else")
            else:
                node.orelse, closing = block(frozenset({"end"}))
        return node

    def pipeline(text: str) -> Pipe:
        if not text:
            raise TemplateSyntaxError("missing value for command")
        parser = _ActionParser(_tokens(text))
        pipe = parser.pipe()
        if parser.peek() is not None:
            raise TemplateSyntaxError(f"unexpected {parser.peek()!r} in command")
        return pipe

    nodes, _ = block(frozenset())
    return nodes
