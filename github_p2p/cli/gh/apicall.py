"""The HTTP requests ``gh api`` makes for a command line, and how it pages (pure).

Follows gh 2.23's ``pkg/cmd/api``: fields make a POST unless ``-X`` says otherwise; a GET
carries them in the query string (keys sorted, ``+`` for spaces, as Go's ``url.Values``); a
GraphQL call sends ``query`` and ``operationName`` at the top level and every other field under
``variables``; ``--paginate`` adds ``per_page=100`` to REST calls and follows ``Link``, or
re-sends a GraphQL query with ``endCursor`` taken from the first ``pageInfo`` of the answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from github_p2p.cli.gh.apiargs import ApiArgs, ApiUsageError

__all__ = ["HttpCall", "add_per_page", "add_query", "find_end_cursor", "first_call",
           "next_graphql_call"]


@dataclass(frozen=True)
class HttpCall:
    """One request: ``target`` is ``graphql``, a path, or an absolute URL (query included)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None = None
    #: The parameters (GraphQL pagination re-sends them with ``endCursor``).
    params: Mapping[str, Any] | None = None

    def split(self) -> tuple[str, list[tuple[str, str]]]:
        """``target`` as a path and its query pairs."""
        path, _, query = self.target.partition("?")
        return path, parse_qsl(query, keep_blank_values=True)


def _query_value(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    raise ApiUsageError(f"field {key!r}: gh cannot put nested values in a query string")


def add_query(path: str, params: Mapping[str, Any]) -> str:
    """gh's ``addQuery``: ``url.Values.Encode`` appended with ``?`` or ``&``."""
    if not params:
        return path
    encoded = "&".join(f"{quote_plus(k, safe='-_.~')}="
                       f"{quote_plus(_query_value(k, params[k]), safe='-_.~')}"
                       for k in sorted(params))
    return path + ("&" if "?" in path else "?") + encoded


def add_per_page(path: str, per_page: int, params: Mapping[str, Any]) -> str:
    """gh's ``addPerPage``: unless ``per_page`` is already a field or in the query."""
    if "per_page" in params:
        return path
    _, question, query = path.partition("?")
    if question and any(k == "per_page" and v for k, v in parse_qsl(query,
                                                                    keep_blank_values=True)):
        return path
    return f"{path}{'&' if question else '?'}per_page={per_page}"


def _go_json(value: Any) -> bytes:
    # json.Marshal: sorted keys, compact, HTML characters escaped.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text.encode()


def _graphql_body(params: Mapping[str, Any]) -> dict[str, Any]:
    top = {k: v for k, v in params.items() if k in ("query", "operationName")}
    variables = {k: v for k, v in params.items() if k not in ("query", "operationName")}
    if variables:
        top["variables"] = variables
    return top


def _headers(args: ApiArgs) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for raw in args.headers:
        name, colon, value = raw.partition(":")
        if not colon:
            raise ApiUsageError(f"header {raw!r} requires a value separated by ':'")
        if name.lower() != "content-length":
            headers.append((name, value.strip()))
    if args.previews:
        kinds = [f"application/vnd.github.{args.previews[0]}-preview+json"]
        kinds += [f"application/vnd.github.{p}-preview" for p in args.previews[1:]]
        headers.append(("Accept", ", ".join(kinds)))
    return headers


def first_call(args: ApiArgs, path: str, params: Mapping[str, Any],
               input_body: bytes | None = None) -> HttpCall:
    """The first request of a ``gh api`` run; ``path`` has its placeholders filled."""
    method = args.method.upper()
    if not args.method_given and (params or args.input_file):
        method = "POST"
    if args.paginate and not args.is_graphql:
        path = add_per_page(path, 100, params)
    headers = _headers(args)
    if args.input_file is not None:
        return HttpCall(method, add_query(path, params), tuple(headers), input_body)
    return _with_params(HttpCall(method, path, tuple(headers)), args, params)


def _with_params(call: HttpCall, args: ApiArgs, params: Mapping[str, Any]) -> HttpCall:
    if not params:
        return call
    if call.method == "GET":
        return replace(call, target=add_query(call.target, params), params=params)
    payload = _graphql_body(params) if args.is_graphql else dict(params)
    headers = list(call.headers)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json; charset=utf-8"))
    return replace(call, headers=tuple(headers), body=_go_json(payload), params=params)


def next_graphql_call(first: HttpCall, args: ApiArgs, end_cursor: str) -> HttpCall:
    """The next page of a paginated GraphQL query."""
    params = {**(first.params or {}), "endCursor": end_cursor}
    return _with_params(replace(first, body=None, params=None), args, params)


def _events(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        yield "open", None
        for key, item in value.items():
            yield "key", key
            yield from _events(item)
        yield "close", None
    elif isinstance(value, list):
        yield "open", None
        for item in value:
            yield from _events(item)
        yield "close", None
    else:
        yield "value", value


def find_end_cursor(body: bytes) -> str:
    """gh's ``findEndCursor``: the first ``pageInfo``'s ``endCursor`` when it ``hasNextPage``.

    It follows gh's token scan exactly, quirks included (a key's context is forgotten once a
    nested object closes).
    """
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    last_key = context = ""
    end_cursor: str | None = None
    has_next: bool | None = None
    for kind, value in _events(document):
        if kind == "open":
            context = last_key
        elif kind == "close":
            context = ""
        elif kind == "key":
            last_key = value
        elif context == "pageInfo" and isinstance(value, str) and last_key == "endCursor":
            end_cursor = value
        elif context == "pageInfo" and isinstance(value, bool) and last_key == "hasNextPage":
            has_next = value
        if end_cursor is not None and has_next is not None:
            break
    return end_cursor or "" if has_next else ""
