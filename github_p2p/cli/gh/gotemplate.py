"""Executing ``gh api --template`` templates like gh 2.23 (Go ``text/template`` plus go-gh's
functions) over decoded JSON (pure: the clock is passed in).

Values follow Go's decoding: numbers are floats, a missing key is "no value"
(printed ``<no value>``), ``null`` is nil. Functions: Go's ``and``, ``or``, ``not``, ``len``,
``index``, ``print``, ``printf`` (common verbs), ``println``, ``eq``/``ne``/``lt``/``le``/``gt``/
``ge``, ``html``, ``urlquery``; go-gh's ``autocolor``, ``color``, ``hyperlink``, ``join``,
``pluck``, ``tablerow``, ``tablerender``, ``timeago``, ``timefmt``, ``truncate``. Anything else
raises :class:`TemplateUnsupported`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from github_p2p.cli.gh.gofmt import go_sprint, go_value, json_scalar
from github_p2p.cli.gh.gotemplate_parse import (
    Action,
    Chain,
    Command,
    Field,
    Identifier,
    Literal,
    Pipe,
    TemplateSyntaxError,
    TemplateUnsupported,
    Variable,
    parse_template,
)
from github_p2p.cli.gh.gotext import (
    TablePrinter,
    ansi_color,
    time_ago,
    time_format,
    truncate,
)

__all__ = ["GoTemplate", "TemplateError", "TemplateSyntaxError", "TemplateUnsupported"]


class TemplateError(Exception):
    """Executing the template failed (gh fails the same way, in its own words)."""


class _Missing:
    """Go's invalid value: a key that is not there."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _truth(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, dict)):
        return bool(value)
    return True


def _print_value(value: Any) -> str:
    return "<no value>" if value is MISSING or value is None else go_sprint(value)


def _scalar(value: Any) -> str:
    text = json_scalar(None if value is MISSING else value)
    if text is None:
        raise TemplateError(f"cannot convert type to string: {go_sprint(value)}")
    return text


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise TemplateError("invalid type for comparison")


def _compare(name: str, left: Any, right: Any) -> bool:
    if _kind(left) != _kind(right):
        raise TemplateError(f"error calling {name}: incompatible types for comparison")
    if name == "eq":
        return bool(left == right)
    if name == "ne":
        return bool(left != right)
    if _kind(left) == "bool":
        raise TemplateError(f"error calling {name}: invalid type for comparison")
    results = {"lt": left < right, "le": left <= right, "gt": left > right,
               "ge": left >= right}
    return bool(results[name])


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    queue = list(args)

    def one(match: re.Match[str]) -> str:
        flags, width, precision, verb = match.groups()
        if verb == "%":
            return "%"
        if not queue:
            return f"%!{verb}(MISSING)"
        value = queue.pop(0)
        value = None if value is MISSING else value
        if verb in "sv":
            text = value if isinstance(value, str) else go_sprint(value)
            if verb == "s" and not isinstance(value, str):
                text = f"%!s({type(value).__name__}={go_sprint(value)})" if isinstance(
                    value, float) else text
        elif verb == "d" and isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        elif verb == "d" and isinstance(value, float):
            text = f"%!d(float64={go_value(value)})"
        elif verb == "q" and isinstance(value, str):
            text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        elif verb == "t" and isinstance(value, bool):
            text = "true" if value else "false"
        elif verb in "fF" and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = f"{float(value):.{int(precision) if precision else 6}f}"
        elif verb in "xX" and isinstance(value, int) and not isinstance(value, bool):
            text = format(value, verb)
        else:
            raise TemplateUnsupported(f"printf verb %{verb} with this argument")
        if width:
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width))
        return text

    out = _VERB.sub(one, fmt)
    if queue:
        out += "%!(EXTRA " + ", ".join(go_sprint(v) for v in queue) + ")"
    return out


def _sprint(*args: Any) -> str:
    out = ""
    for i, value in enumerate(args):
        value = None if value is MISSING else value
        if i > 0 and not isinstance(value, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_sprint(value)
    return out


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise TemplateError("error calling index: value has type int; should be string")
            item = item.get(key, MISSING)
        elif isinstance(item, (list, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise TemplateError(f"error calling index: cannot index slice/array with type "
                                    f"{'float64' if isinstance(key, float) else 'string'}")
            if not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key] if isinstance(item, list) else float(item.encode()[key])
        else:
            raise TemplateError("error calling index: index of untyped nil")
    return item


def _length(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (list, dict)):
        return len(value)
    raise TemplateError(f"error calling len: len of type {type(value).__name__}")


def _list(name: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TemplateError(f"wrong type for value in {name}; expected []interface {{}}")
    return value


def _pluck(field_name: str, items: Any) -> list[Any]:
    out = []
    for item in _list("pluck", items):
        if not isinstance(item, dict):
            raise TemplateError("pluck: item is not an object")
        out.append(item.get(field_name))
    return out


@dataclass
class GoTemplate:
    """A parsed template and the state that outlives one page (the table printer)."""

    source: str
    now: float
    color: bool = False
    width: int = 80
    table: TablePrinter = field(default_factory=TablePrinter)

    def __post_init__(self) -> None:
        self._nodes = parse_template(self.source)
        self.table = TablePrinter(self.width)
        self._funcs: dict[str, Callable[..., Any]] = {
            "and": lambda *a: next((v for v in a if not _truth(v)), a[-1]),
            "or": lambda *a: next((v for v in a if _truth(v)), a[-1]),
            "not": lambda v: not _truth(v),
            "len": _length, "index": _index, "print": _sprint,
            "println": lambda *a: " ".join(_sprint(v) for v in a) + "\n",
            "printf": _printf,
            "html": lambda *a: html.escape(_sprint(*a)).replace("&#x27;", "&#39;").replace(
                "&quot;", "&#34;"),
            "urlquery": lambda *a: quote_plus(_sprint(*a), safe=""),
            "autocolor": (lambda style, v: ansi_color(_scalar(v), style)) if self.color
            else (lambda style, v: _scalar(v)),
            "color": lambda style, v: ansi_color(_scalar(v), style),
            "hyperlink": lambda link, text: f"\x1b]8;;{link}\x1b\\{text or link}\x1b]8;;\x1b\\",
            "join": lambda sep, items: sep.join(_scalar(v) for v in _list("join", items)),
            "pluck": _pluck,
            "tablerow": self._tablerow,
            "tablerender": self.table.render,
            "timeago": lambda text: time_ago(self.now, text),
            "timefmt": time_format,
            "truncate": self._truncate,
        }
        for name in ("eq", "ne", "lt", "le", "gt", "ge"):
            self._funcs[name] = self._comparison(name)

    @staticmethod
    def _comparison(name: str) -> Callable[..., bool]:
        def compare(left: Any, *rights: Any) -> bool:
            if name == "eq" and rights:
                return any(_compare("eq", left, right) for right in rights)
            if len(rights) != 1:
                raise TemplateError(f"wrong number of args for {name}")
            return _compare(name, left, rights[0])
        return compare

    def _tablerow(self, *cells: Any) -> str:
        self.table.add_row([_scalar(c) for c in cells])
        return ""

    @staticmethod
    def _truncate(width: Any, value: Any) -> str:
        if not isinstance(width, int) or isinstance(width, bool):
            raise TemplateError("wrong type for value; expected int")
        if value is None or value is MISSING:
            return ""
        if not isinstance(value, str):
            raise TemplateError(f"invalid value; expected string, got {type(value).__name__}")
        return truncate(width, value)

    def execute(self, data: Any) -> str:
        """Render one decoded JSON document (one page)."""
        out: list[str] = []
        scope: list[tuple[str, Any]] = [("$", data)]
        try:
            self._walk(self._nodes, data, scope, out)
        except (_Break, _Continue) as exc:
            raise TemplateError("break or continue outside range") from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateError(str(exc)) from exc
        return "".join(out)

    def flush(self) -> str:
        """Rows added with ``tablerow`` and not rendered yet."""
        return self.table.render()

    # -- evaluation ------------------------------------------------------------------------

    def _walk(self, nodes: list[Action], dot: Any, scope: list[tuple[str, Any]],
              out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "print":
                assert node.pipe is not None
                value = self._pipe(node.pipe, dot, scope)
                if not node.pipe.decl:
                    out.append(_print_value(value))
            elif node.kind == "break":
                raise _Break
            elif node.kind == "continue":
                raise _Continue
            else:
                self._control(node, dot, scope, out)

    def _control(self, node: Action, dot: Any, scope: list[tuple[str, Any]],
                 out: list[str]) -> None:
        assert node.pipe is not None
        mark = len(scope)
        if node.kind == "range":
            self._range(node, dot, scope, out)
        else:
            value = self._pipe(node.pipe, dot, scope)
            if _truth(value):
                self._walk(node.body, value if node.kind == "with" else dot, scope, out)
            else:
                self._walk(node.orelse, dot, scope, out)
        del scope[mark:]

    def _range(self, node: Action, dot: Any, scope: list[tuple[str, Any]],
               out: list[str]) -> None:
        assert node.pipe is not None
        pipe = Pipe((), False, node.pipe.commands)
        value = self._pipe(pipe, dot, scope)
        if isinstance(value, list):
            items: list[tuple[Any, Any]] = list(enumerate(value))
        elif isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif value is MISSING or value is None:
            items = []
        else:
            raise TemplateError(f"range can't iterate over {go_sprint(value)}")
        if not items:
            self._walk(node.orelse, dot, scope, out)
            return
        names = node.pipe.decl
        for key, item in items:
            mark = len(scope)
            if len(names) == 1:
                scope.append((names[0], item))
            elif len(names) == 2:
                scope.extend([(names[0], key), (names[1], item)])
            try:
                self._walk(node.body, item, scope, out)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                del scope[mark:]

    def _pipe(self, pipe: Pipe, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        value: Any = MISSING
        for i, command in enumerate(pipe.commands):
            value = self._command(command, dot, scope, value if i else None, i > 0)
        for name in pipe.decl:
            if pipe.assign:
                for j in range(len(scope) - 1, -1, -1):
                    if scope[j][0] == name:
                        scope[j] = (name, value)
                        break
                else:
                    raise TemplateError(f"undefined variable: {name}")
            else:
                scope.append((name, value))
        return value

    def _command(self, command: Command, dot: Any, scope: list[tuple[str, Any]],
                 final: Any, piped: bool) -> Any:
        first, rest = command.args[0], command.args[1:]
        if isinstance(first, Identifier):
            func = self._funcs.get(first.name)
            if func is None:
                raise TemplateUnsupported(f'function "{first.name}"')
            args = [self._arg(a, dot, scope) for a in rest]
            if piped:
                args.append(final)
            try:
                return func(*args)
            except TypeError as exc:
                raise TemplateError(f"wrong number of args for {first.name}") from exc
        if rest or piped:
            raise TemplateError("can't give argument to non-function")
        return self._arg(first, dot, scope)

    def _arg(self, node: Any, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Field):
            return self._fields(dot, node.names)
        if isinstance(node, Variable):
            for name, value in reversed(scope):
                if name == node.name:
                    return self._fields(value, node.names)
            raise TemplateError(f"undefined variable: {node.name}")
        if isinstance(node, Pipe):
            return self._pipe(node, dot, scope)
        if isinstance(node, Chain):
            return self._fields(self._pipe(node.node, dot, scope), node.names)
        if isinstance(node, Identifier):
            return self._command(Command((node,)), dot, scope, None, False)
        raise TemplateUnsupported(repr(node))

    @staticmethod
    def _fields(value: Any, names: tuple[str, ...]) -> Any:
        for name in names:
            if value is MISSING:
                return MISSING
            if value is None:
                raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
            if not isinstance(value, dict):
                raise TemplateError(f"can't evaluate field {name} in type interface {{}}")
            value = value.get(name, MISSING)
        return value
