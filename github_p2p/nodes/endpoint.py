"""The local HTTP endpoint of a node (starlette app, served by hypercorn's trio worker).

Both node kinds serve status (``/_p2p/health|stats|peers``, the MCP dashboard aliases,
``/metrics``). A runner peer also serves the read-through proxy at the root: ``GET /repos/o/r``
behaves like ``GET {GITHUB_API_URL}/repos/o/r`` with the caller's ``Authorization``; the hub
serves its dashboard at ``/``. Only loopback clients with a loopback ``Host`` are served, which
also defeats DNS-rebinding pages in a browser on the same machine.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from github_p2p.cache.engine import CACHE_HEADER, UPSTREAM_CALLS_HEADER, CacheEngine
from github_p2p.errors import UpstreamUnavailableError
from github_p2p.nodes.mcpmount import McpMount
from github_p2p.nodes.metrics import mcp_stats, metrics_registry, render_metrics

__all__ = ["MAX_BODY", "NodeView", "build_app"]

log = logging.getLogger(__name__)

#: Largest request body the proxy forwards (GitHub's own limits are far lower for JSON).
MAX_BODY = 10 * 1024 * 1024
_FORWARDED = frozenset({"accept", "x-github-api-version", "content-type", "if-none-match",
                        "if-modified-since", "user-agent"})


class NodeView(Protocol):
    """What the HTTP layer needs to know about the node behind it."""

    role: str

    def health(self) -> dict[str, Any]:
        """Liveness and status (``active``, ``degraded``, ``local-only``)."""

    def stats(self) -> dict[str, Any]:
        """Counters as named in DESIGN."""

    def peers(self) -> list[dict[str, Any]]:
        """Connected peers with ``peer_id``, ``role``, ``last_seen`` and more."""

    def request_shutdown(self) -> None:
        """Stop the node cleanly."""


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _host_ok(request: Request) -> bool:
    try:
        name = urlsplit("//" + request.headers.get("host", "")).hostname
    except ValueError:  # an unbalanced "[" and the like: not a Host we serve
        return False
    return _loopback(name)


# The page is self-contained (inline CSS and JS, no CDN): it may only talk to its own node.
_DASHBOARD_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def build_app(
    node: NodeView,
    *,
    engine: CacheEngine | None = None,
    default_token: Callable[[], str | None] = lambda: None,
    mcp: McpMount | None = None,
) -> ASGIApp:
    """The ASGI app of a node; ``engine`` enables the read-through proxy (runner peers),
    ``mcp`` serves MCP at its paths (the SDK's session manager runs in the app's lifespan)."""
    registry = metrics_registry(node)

    async def health(_: Request) -> Response:
        return JSONResponse(node.health())

    async def stats(_: Request) -> Response:
        return JSONResponse(node.stats())

    async def peers(_: Request) -> Response:
        return JSONResponse({"peers": node.peers()})

    async def mcp_peers(_: Request) -> Response:
        listed = node.peers()
        health_doc = node.health()
        return JSONResponse({
            "enabled": health_doc.get("status") != "local-only",
            "active": health_doc.get("status") == "active",
            "status": health_doc.get("status"),
            "peer_id": health_doc.get("peer_id"),
            "peer_count": len(listed),
            "peers": listed,
        })

    async def mcp_cache_stats(_: Request) -> Response:
        return JSONResponse(mcp_stats(node.stats()))

    async def metrics(_: Request) -> Response:
        return Response(render_metrics(registry),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def shutdown(_: Request) -> Response:
        node.request_shutdown()
        return JSONResponse({"stopping": True})

    async def invalidate(request: Request) -> Response:
        # For writes that did not pass through this proxy (the real gh talks to GitHub itself).
        assert engine is not None
        try:
            path = (await request.json())["path"]
        except (ValueError, KeyError, TypeError):
            path = None
        if not isinstance(path, str) or not path.startswith("/") or len(path) > 2048:
            return JSONResponse({"message": 'expected {"path": "/repos/..."}'}, status_code=400)
        await trio.to_thread.run_sync(engine.invalidate, path.split("?", 1)[0])
        return JSONResponse({"invalidated": path})

    async def dashboard(_: Request) -> Response:
        page = resources.files("github_p2p.nodes").joinpath("static/dashboard.html")
        return HTMLResponse(page.read_text(encoding="utf-8"), headers=_DASHBOARD_HEADERS)

    async def proxy(request: Request) -> Response:
        assert engine is not None
        body = await _bounded_body(request)
        if body is None:
            return JSONResponse({"message": "request body too large"}, status_code=413)
        token = _bearer(request.headers.get("authorization")) or default_token()
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        query = list(request.query_params.multi_items())
        path = _upstream_path(request.scope["path"])  # decoded by the server, tabs and all
        if path is None:
            return JSONResponse({"message": "refused request path: dot segments, backslashes, "
                                            "encoded separators and control characters are not "
                                            "forwarded"}, status_code=400)
        try:
            answer = await trio.to_thread.run_sync(
                engine.handle, request.method, path, query, headers, body or None, token
            )
        except UpstreamUnavailableError as exc:
            return JSONResponse({"message": str(exc)}, status_code=502,
                                headers={CACHE_HEADER: "miss",
                                         UPSTREAM_CALLS_HEADER: str(exc.calls)})
        out = answer.response_headers()
        own_base = f"{request.url.scheme}://{request.headers.get('host', '')}"
        for name in list(out):
            if name.lower() == "link":
                # Pagination must come back through the proxy, not straight to GitHub.
                out[name] = out[name].replace(engine.api_url, own_base)
        return Response(answer.body, status_code=answer.status, headers=out)

    routes = [
        Route("/_p2p/health", health),
        Route("/_p2p/stats", stats),
        Route("/_p2p/peers", peers),
        Route("/_p2p/shutdown", shutdown, methods=["POST"]),
        Route("/api/mcp/peers", mcp_peers),
        Route("/api/mcp/cache/stats", mcp_cache_stats),
        Route("/metrics", metrics),
    ]
    if engine is not None:
        routes.append(Route("/_p2p/invalidate", invalidate, methods=["POST"]))
        routes.append(Route("/_p2p/dashboard", dashboard))
        routes.append(Route("/{path:path}", proxy,
                            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]))
    else:
        routes.append(Route("/", dashboard))

    if mcp is not None:
        routes[:0] = [Route(path, mcp) for path in mcp.paths]
    app = Starlette(routes=routes, lifespan=mcp.lifespan if mcp is not None else None)

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            request = Request(scope)
            if not _loopback(client[0] if client else None) or not _host_ok(request):
                response = PlainTextResponse("github-p2p serves loopback clients only",
                                             status_code=403)
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded


async def _bounded_body(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _upstream_path(decoded: str) -> str | None:
    """The path to append to the API base URL, re-encoded; ``None`` when it must be refused.

    ``..`` would be resolved by the HTTP client and climb out of the base URL's path (GHES serves
    the API under ``/api/v3``), taking the caller's token elsewhere on the host; an encoded dot,
    slash or backslash left after the server's decoding may be decoded again upstream. Re-encoding
    keeps a decoded ``?``, ``#`` or ``%`` part of the path instead of cutting it short.
    """
    if not decoded.startswith("/") or "\\" in decoded:
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in decoded):
        return None
    if any(segment in (".", "..") for segment in decoded.split("/")):
        return None
    lowered = decoded.lower()
    if any(escape in lowered for escape in ("%2e", "%2f", "%5c")):
        return None
    return quote(decoded, safe="/:@!$&'()*+,;=~")


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and credential.strip():
        return credential.strip()
    return None

