"""Carrying out one ``gh api`` command line through a github-p2p transport, with gh's output.

This is the one ``gh api`` implementation: ``github-p2p api`` and the gh wrapper's ``gh api``
both run :func:`run_api`. Everything it reads from outside (files, placeholders, the clock,
``jq``) and the transport are handed in; it returns what to print and the exit code, so a
caller that cannot use the result (the wrapper, on :class:`Fallback`) prints nothing of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from github_p2p.cache.engine import CachedResponse
from github_p2p.cli.gh.apiargs import ApiArgs, build_params, fill_placeholders
from github_p2p.cli.gh.apicall import HttpCall, find_end_cursor, first_call, next_graphql_call
from github_p2p.cli.gh.gotemplate import (
    GoTemplate,
    TemplateError,
    TemplateSyntaxError,
    TemplateUnsupported,
)
from github_p2p.cli.gh.output import (
    JqError,
    color_json,
    error_message,
    format_headers,
    is_json,
    join_pages,
    jq_output,
    run_jq,
    sanitize_ascii,
)
from github_p2p.core.graphql_cache import graphql_url
from github_p2p.core.pagination import next_page
from github_p2p.core.rewrite import KEEP_URLS_HEADER
from github_p2p.errors import UpstreamError

__all__ = ["ApiEnvironment", "ApiResult", "Fallback", "Transport", "UpstreamUrls", "graphql_url",
           "run_api"]

_MAX_PAGES = 1000


class Fallback(Exception):
    """Only the real gh can do exactly this (the wrapper runs it; ``github-p2p api`` fails)."""


class Transport(Protocol):
    """Sends requests (a :class:`~github_p2p.cache.client.Backend`)."""

    base_url: str

    def send(self, method: str, path: str, query: list[tuple[str, str]],
             headers: dict[str, str], body: bytes | None) -> CachedResponse:
        """Answer one request."""


class UpstreamUrls:
    """A daemon transport that asks for GitHub's own absolute URLs, unrewritten: gh prints
    ``https://api.github.com/...``, not the daemon's address."""

    def __init__(self, backend: Transport) -> None:
        self.backend = backend
        self.base_url = backend.base_url

    def send(self, method: str, path: str, query: list[tuple[str, str]],
             headers: dict[str, str], body: bytes | None) -> CachedResponse:
        """Send through the daemon with the keep-URLs header."""
        return self.backend.send(method, path, query, {**headers, KEEP_URLS_HEADER: "1"}, body)


@dataclass(frozen=True)
class ApiEnvironment:
    """What a run reads from outside.

    ``api_url`` is the REST base gh would use (absolute URLs under it are accepted);
    ``resolve`` fills ``{owner}``/``{repo}``/``{branch}`` (``None``: unknown); ``read_file``
    reads ``@file`` and ``--input`` (``-`` is standard input).
    """

    api_url: str
    resolve: Callable[[str], str | None]
    read_file: Callable[[str], bytes]
    now: Callable[[], float]
    jq: str | None = None
    gh_version: tuple[int, int, int] | None = None
    color: bool = False
    width: int = 80


@dataclass(frozen=True)
class ApiResult:
    """What gh would have printed, and its exit code."""

    code: int
    stdout: bytes
    stderr: str = ""


def _path(target: str, env: ApiEnvironment, graphql: bool) -> str:
    if graphql:
        return "/graphql"
    if "://" not in target:
        return "/" + target.lstrip("/")
    path = target.split("?", 1)[0]
    base = env.api_url.rstrip("/")
    if path == graphql_url(base):
        return "/graphql"
    if path.lower().startswith(base.lower() + "/"):
        return path[len(base):]
    raise Fallback(f"{urlsplit(target).netloc} is not the API github-p2p serves")


@dataclass
class _Page:
    output: bytes
    body: bytes
    error: str = ""
    cursor: str = ""


def _process(args: ApiArgs, resp: CachedResponse, env: ApiEnvironment,
             template: GoTemplate | None) -> _Page:
    out = format_headers(resp.status, resp.headers) if args.include else b""
    if resp.status == 204:
        return _Page(out, b"")
    json_body = is_json(resp.headers)
    body = sanitize_ascii(resp.body) if json_body else resp.body
    error = error_message(body, resp.status) if json_body and (
        args.is_graphql or resp.status >= 400) else ""
    if args.jq and not error:
        if env.jq is None:
            raise Fallback("--jq needs the jq program")
        try:
            shown = jq_output(run_jq(env.jq, args.jq, body))
        except JqError as exc:
            return _Page(out + (b"" if args.silent else exc.partial), body, f"jq: {exc.message}")
    elif template is not None and not error:
        try:
            shown = template.execute(json.loads(body, parse_int=float)).encode()
        except ValueError as exc:
            return _Page(out, body, f"template: {exc}")
    elif json_body and env.color:
        shown = color_json(body)
    else:
        shown = body
    if not error and resp.status > 299:
        error = f"HTTP {resp.status}"
    cursor = ""
    if json_body and resp.status == 200 and args.paginate and args.is_graphql:
        cursor = find_end_cursor(body)
    return _Page(out + (b"" if args.silent else shown), body, error, cursor)


def _template(args: ApiArgs, env: ApiEnvironment) -> GoTemplate | None:
    if not args.template:
        return None
    try:
        return GoTemplate(args.template, env.now(), color=env.color, width=env.width)
    except TemplateUnsupported as exc:
        raise Fallback(f"the template uses {exc}, which github-p2p does not emulate") from exc


def run_api(args: ApiArgs, transport: Transport, env: ApiEnvironment) -> ApiResult:
    """Run ``gh api ARGS`` through ``transport``.

    Raises :class:`Fallback` when only gh can answer exactly,
    :class:`~github_p2p.errors.ConfigError` for a command line gh refuses, and
    :class:`~github_p2p.errors.UpstreamError` when nothing could be fetched.
    """
    try:
        template = _template(args, env)
    except TemplateSyntaxError as exc:
        return ApiResult(1, b"", f"template: {exc}\n")
    params = build_params(args, env.resolve, env.read_file)
    path = fill_placeholders(args.endpoint, env.resolve)
    body = env.read_file(args.input_file) if args.input_file is not None else None
    call: HttpCall | None = first_call(args, path, params, body)
    pages: list[_Page] = []
    while call is not None and len(pages) < _MAX_PAGES:
        path, query = call.split()
        resp = transport.send(call.method, _path(path, env, args.is_graphql), query,
                              dict(call.headers), call.body)
        try:
            page = _process(args, resp, env, template)
        except TemplateError as exc:
            page = _Page(b"", b"", f"template: {exc}")
        except TemplateUnsupported as exc:
            raise Fallback(f"the template uses {exc}") from exc
        pages.append(page)
        if page.error or not args.paginate:
            break
        call = _next(args, call, resp, page, transport)
        if call is not None and args.include:
            pages.append(_Page(b"\n", b""))
    if call is not None and args.paginate and len(pages) >= _MAX_PAGES:
        raise UpstreamError(f"pagination of {args.endpoint} did not end")
    return _result(args, pages, env, template)


def _next(args: ApiArgs, call: HttpCall, resp: CachedResponse, page: _Page,
          transport: Transport) -> HttpCall | None:
    if args.is_graphql:
        return next_graphql_call(call, args, page.cursor) if page.cursor else None
    following = next_page(transport.base_url, resp.headers)
    if following is None:
        return None
    path, query = following
    # The next link carries the whole query; gh does not send its fields again.
    return HttpCall(call.method, path + ("?" + urlencode(query) if query else ""),
                    call.headers)


def _result(args: ApiArgs, pages: list[_Page], env: ApiEnvironment,
            template: GoTemplate | None) -> ApiResult:
    failed = next((p for p in pages if p.error), None)
    plain = (args.paginate and not args.is_graphql and not args.jq and template is None
             and not args.include and not args.silent and not env.color)
    if plain and failed is None:
        stdout = join_pages([p.output for p in pages], env.gh_version)
    else:
        stdout = b"".join(p.output for p in pages)
    if failed is not None:
        return ApiResult(1, stdout, f"gh: {failed.error}\n" if not failed.error.startswith(
            ("jq:", "template:")) else failed.error.split(": ", 1)[1] + "\n")
    if template is not None and not args.silent:
        stdout += template.flush().encode()
    return ApiResult(0, stdout)

