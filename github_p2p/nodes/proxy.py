"""The runner's read-through proxy: ``GET {endpoint}/repos/o/r`` as ``GET {API}/repos/o/r``.

A raw ASGI handler (no router, no request objects): it is the hot path of every tool that uses
the endpoint as its GitHub base URL. ``/api/v3/...`` is the same as ``/...`` (a GHES-style base,
as GitHub's own MCP server uses it), ``/api/graphql`` is ``/graphql``, and ``/raw/...`` passes
through to the raw-content host. Absolute API URLs in answers are rewritten to the base the
client called, so clients that follow them (PyGithub, octokit) stay on the endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Protocol
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from github_p2p.cache.driver import CACHE_HEADER, UPSTREAM_CALLS_HEADER, CachedResponse
from github_p2p.core.paths import api_path
from github_p2p.core.rewrite import KEEP_URLS_HEADER, UrlRewriter
from github_p2p.errors import UpstreamUnavailableError

__all__ = ["MAX_BODY", "Proxy", "ProxyEngine"]

#: Largest request body the proxy forwards (GitHub's own limits are far lower for JSON).
MAX_BODY = 10 * 1024 * 1024
_FORWARDED = frozenset({"accept", "x-github-api-version", "content-type", "if-none-match",
                        "if-modified-since", "user-agent",
                        # GraphQL: schema features and id formats change the answer.
                        "graphql-features", "x-github-next-global-id"})
_GHES_PREFIX = "/api/v3"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


class ProxyEngine(Protocol):
    """What the proxy needs of the daemon's cache engine."""

    @property
    def api_url(self) -> str:
        """The upstream API base URL."""

    async def handle(self, method: str, path: str, query: list[tuple[str, str]],
                     headers: Mapping[str, str], body: bytes | None, token: str | None
                     ) -> CachedResponse:
        """Answer one request."""


class Proxy:
    """The ASGI app of the read-through proxy."""

    def __init__(self, engine: ProxyEngine, default_token: Callable[[], str | None]) -> None:
        self.engine = engine
        self.default_token = default_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in _METHODS:
            await _json(send, 405, {"message": f"{scope['method']} is not forwarded"})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        own_base = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        decoded: str = scope["path"]  # decoded by the server, tabs and all
        if decoded == _GHES_PREFIX or decoded.startswith(_GHES_PREFIX + "/"):
            decoded = decoded[len(_GHES_PREFIX):] or "/"
            own_base += _GHES_PREFIX
        elif decoded == "/api/graphql":
            decoded = "/graphql"
        path = api_path(decoded)
        if path is None:
            await _json(send, 400, {"message": "refused request path: dot segments, "
                                    "backslashes, encoded separators and control characters "
                                    "are not forwarded"})
            return
        body = await _bounded_body(receive)
        if body is None:
            await _json(send, 413, {"message": "request body too large"})
            return
        token = _bearer(headers.get("authorization")) or self.default_token()
        forward = {k: v for k, v in headers.items() if k in _FORWARDED}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                          keep_blank_values=True)
        try:
            answer = await self.engine.handle(scope["method"], path, query, forward,
                                              body or None, token)
        except UpstreamUnavailableError as exc:
            await _json(send, 502, {"message": str(exc)},
                        {CACHE_HEADER: "miss", UPSTREAM_CALLS_HEADER: str(exc.calls)})
            return
        keep = KEEP_URLS_HEADER.lower() in headers
        rewriter = UrlRewriter(self.engine.api_url, self.engine.api_url if keep else own_base)
        out: list[tuple[bytes, bytes]] = []
        content_type = None
        for name, value in answer.response_headers().items():
            lowered = name.lower()
            if lowered.startswith("access-control-"):
                continue  # no page may read what the daemon answers (see the guard)
            if lowered in ("link", "location"):
                value = rewriter.header(value)
            elif lowered == "content-type":
                content_type = value
            out.append((lowered.encode("latin-1"), value.encode("latin-1")))
        payload = rewriter.body(answer.body, content_type)
        if scope["method"] == "HEAD":
            payload = b""
        out.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": out})
        await send({"type": "http.response.body", "body": payload})


async def _json(send: Send, status: int, document: object,
                extra: Mapping[str, str] | None = None) -> None:
    payload = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _bounded_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and credential.strip():
        return credential.strip()
    return None
