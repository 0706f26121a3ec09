"""``gh api`` command lines, read the way gh 2.23 reads them (pure).

:func:`parse_api_args` gives an :class:`ApiArgs` (or ``None`` for a command line the strict
flag parser does not understand, which the wrapper hands to the real gh); :func:`build_params`
turns ``-f``/``-F`` fields into gh's parameter tree (``key[sub]=v``, ``key[]=v``, typed ``-F``
values: integers, ``true``/``false``/``null``, ``@file``, ``{owner}`` placeholders).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from github_p2p.cli.gh.flags import Flag, parse_flags
from github_p2p.errors import ConfigError

__all__ = ["API_FLAGS", "ApiArgs", "ApiUsageError", "build_params", "fill_placeholders",
           "parse_api_args"]

API_FLAGS = (
    Flag("method", "X"), Flag("raw-field", "f"), Flag("field", "F"), Flag("header", "H"),
    Flag("preview", "p"), Flag("include", "i", False), Flag("paginate", None, False),
    Flag("input"), Flag("silent", None, False), Flag("template", "t"), Flag("jq", "q"),
    Flag("cache"), Flag("hostname"),
)
_INT = re.compile(r"[+-]?[0-9]+")
_PLACEHOLDER = re.compile(r"(:(owner|repo|branch)\b|\{[a-z]+\})")


class ApiUsageError(ConfigError):
    """The command line is one gh refuses (gh exits 1 with the same complaint)."""


@dataclass(frozen=True)
class ApiArgs:
    """A ``gh api`` command line."""

    endpoint: str
    method: str
    method_given: bool
    raw_fields: tuple[str, ...] = ()
    typed_fields: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    previews: tuple[str, ...] = ()
    include: bool = False
    paginate: bool = False
    input_file: str | None = None
    silent: bool = False
    template: str | None = None
    jq: str | None = None
    hostname: str | None = None

    @property
    def is_graphql(self) -> bool:
        """gh treats exactly ``graphql`` as the GraphQL endpoint."""
        return self.endpoint == "graphql"


def parse_api_args(argv: Sequence[str]) -> ApiArgs | None:
    """Read the arguments after ``api``; ``None`` when a flag is not understood.

    Raises :class:`ApiUsageError` for what gh itself refuses.
    """
    parsed = parse_flags(argv, API_FLAGS)
    if parsed is None:
        return None
    if len(parsed.positionals) != 1:
        raise ApiUsageError(f"accepts 1 arg(s), received {len(parsed.positionals)}")
    previews: list[str] = []
    for value in parsed.values("preview"):
        previews.extend(p for p in value.split(",") if p)
    args = ApiArgs(
        endpoint=parsed.positionals[0],
        method=parsed.last("method") or "GET",
        method_given=parsed.has("method"),
        raw_fields=tuple(parsed.values("raw-field")),
        typed_fields=tuple(parsed.values("field")),
        headers=tuple(parsed.values("header")),
        previews=tuple(previews),
        include=parsed.has("include"),
        paginate=parsed.has("paginate"),
        input_file=parsed.last("input"),
        silent=parsed.has("silent"),
        template=parsed.last("template"),
        jq=parsed.last("jq"),
        hostname=parsed.last("hostname"),
    )
    if args.paginate and args.method.upper() != "GET" and not args.is_graphql:
        raise ApiUsageError("the `--paginate` option is not supported for non-GET requests")
    if args.paginate and args.input_file:
        raise ApiUsageError("the `--paginate` option is not supported with `--input`")
    if sum((args.silent, bool(args.jq), bool(args.template))) > 1:
        raise ApiUsageError("only one of `--template`, `--jq`, or `--silent` may be used")
    return args


Resolver = Callable[[str], str | None]


def fill_placeholders(value: str, resolve: Resolver) -> str:
    """Replace ``{owner}``, ``{repo}``, ``{branch}`` (and ``:owner``...) as gh does.

    ``resolve(name)`` gives the value or ``None``; an unresolved known placeholder raises
    :class:`ConfigError` (gh fails too).
    """
    def one(match: re.Match[str]) -> str:
        text = match.group()
        name = text[1:] if text.startswith(":") else text[1:-1]
        if name not in ("owner", "repo", "branch"):
            return text
        found = resolve(name)
        if found is None:
            raise ConfigError(f"cannot fill {text}: the repository (or branch) is not known")
        return found
    return _PLACEHOLDER.sub(one, value)


def _typed(value: str, resolve: Resolver, read_file: Callable[[str], bytes]) -> Any:
    if value.startswith("@"):
        return read_file(value[1:]).decode("utf-8", "replace")
    if _INT.fullmatch(value) and -(2**63) <= int(value) < 2**63:
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    if value == "null":
        return None
    return fill_placeholders(value, resolve)


def _insert(params: dict[str, Any], spec: str, value: Any, has_value: bool) -> None:
    keys: list[str] = []
    key_start = 0
    for i, char in enumerate(spec):
        if char == "[":
            if key_start == 0:
                keys.append(spec[:i])
            key_start = i + 1
        elif char == "]":
            keys.append(spec[key_start:i])
    if not keys:
        keys = [spec]
    if not has_value and keys[-1] != "":
        raise ApiUsageError(f"field {spec!r} requires a value separated by an '=' sign")
    dest: dict[str, Any] = params
    is_array = False
    subkey = ""
    for key in keys:
        if key == "":
            is_array = True
            continue
        if subkey:
            existing = dest.get(subkey)
            if is_array:
                if existing is None:
                    existing = dest[subkey] = []
                if not isinstance(existing, list):
                    raise ApiUsageError(f"expected array type under {subkey!r}")
                last = existing[-1] if existing else None
                if isinstance(last, dict) and key not in last:
                    dest = last
                else:
                    fresh: dict[str, Any] = {}
                    existing.append(fresh)
                    dest = fresh
                is_array = False
            else:
                if existing is None:
                    existing = dest[subkey] = {}
                if not isinstance(existing, dict):
                    raise ApiUsageError(f"expected map type under {subkey!r}")
                dest = existing
        subkey = key
    if is_array:
        current = dest.get(subkey)
        if not has_value:
            dest[subkey] = []
        elif current is None:
            dest[subkey] = [value]
        elif isinstance(current, list):
            current.append(value)
        else:
            raise ApiUsageError(f"expected array type under {subkey!r}")
    else:
        dest[subkey] = value


def build_params(args: ApiArgs, resolve: Resolver,
                 read_file: Callable[[str], bytes]) -> dict[str, Any]:
    """gh's ``parseFields``: raw fields first, then typed ones, into one tree."""
    params: dict[str, Any] = {}
    for spec, typed in [(f, False) for f in args.raw_fields] + [
            (f, True) for f in args.typed_fields]:
        key, eq, raw = spec.partition("=")
        if not eq and "[" not in key:
            raise ApiUsageError(f"invalid key: {spec!r}")
        value: Any = None
        if eq:
            value = _typed(raw, resolve, read_file) if typed else raw
        _insert(params, key, value, bool(eq))
    return params
