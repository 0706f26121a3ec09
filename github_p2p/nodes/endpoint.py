"""The local HTTP endpoint of a node (starlette app, served by hypercorn's trio worker).

Both node kinds serve status (``/_p2p/health|stats|peers``, the MCP dashboard aliases,
``/metrics``). A runner peer also serves the read-through proxy at the root
(:mod:`github_p2p.nodes.proxy`); the hub serves its dashboard at ``/``.

Who may call it (see docs/security.md): only loopback clients with a loopback ``Host``, which
also defeats DNS-rebinding pages; and never a web page. A browser marks every cross-origin
request with ``Origin`` (and ``Sec-Fetch-Site``), so any request carrying ``Origin`` or a
cross-site/same-site ``Sec-Fetch-Site`` is refused before it reaches GitHub or a control route.
``POST /_p2p/*`` (MCP's JSON-RPC aside) also requires :data:`CONTROL_HEADER`, which a page
cannot send without a preflight that is itself refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from github_p2p.cache.driver import CONTROL_HEADER
from github_p2p.cache.trio_engine import TrioCacheEngine
from github_p2p.core.loopback import is_loopback_host
from github_p2p.nodes.mcpmount import McpMount
from github_p2p.nodes.metrics import mcp_stats, metrics_registry, render_metrics
from github_p2p.nodes.outputs import CommandOutputs, output_routes
from github_p2p.nodes.proxy import Proxy

__all__ = ["CONTROL_HEADER", "NodeView", "build_app", "refusal"]

log = logging.getLogger(__name__)

_SITES_REFUSED = frozenset({"cross-site", "same-site"})
# MCP clients post JSON-RPC without our control header; browsers are refused there by Origin.
_MCP_PATH = "/_p2p/mcp"


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


def _host_ok(host_header: str) -> bool:
    try:
        name = urlsplit("//" + host_header).hostname
    except ValueError:  # an unbalanced "[" and the like: not a Host we serve
        return False
    return is_loopback_host(name)


def refusal(scope: Scope) -> str | None:
    """Why a request must be refused (``None``: it may be served). Pure: reads ``scope``."""
    client = scope.get("client")
    headers = {k.lower(): v for k, v in scope.get("headers", ())}
    if not is_loopback_host(client[0] if client else None) or not _host_ok(
            headers.get(b"host", b"").decode("latin-1")):
        return "github-p2p serves loopback clients only"
    if b"origin" in headers:
        return "github-p2p does not serve web pages (a request with an Origin header)"
    if headers.get(b"sec-fetch-site", b"").decode("latin-1").lower() in _SITES_REFUSED:
        return "github-p2p does not serve web pages (a cross-site request)"
    path = scope.get("path", "")
    if (scope.get("method") == "POST" and path.startswith("/_p2p/")
            and not path.startswith(_MCP_PATH) and CONTROL_HEADER.lower().encode() not in headers):
        return f"control requests need the {CONTROL_HEADER} header"
    return None


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
    engine: TrioCacheEngine | None = None,
    default_token: Callable[[], str | None] = lambda: None,
    mcp: McpMount | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> ASGIApp:
    """The ASGI app of a node; ``engine`` enables the read-through proxy (runner peers),
    ``mcp`` serves MCP at its paths (the SDK's session manager runs in the app's lifespan).
    ``extra_routes`` (the work queue's ``/_p2p/queue/*``) are the node's own, like the rest."""
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
        await engine.invalidate(path.split("?", 1)[0])
        return JSONResponse({"invalidated": path})

    async def dashboard(_: Request) -> Response:
        page = resources.files("github_p2p.nodes").joinpath("static/dashboard.html")
        return HTMLResponse(page.read_text(encoding="utf-8"), headers=_DASHBOARD_HEADERS)

    routes = [
        Route("/_p2p/health", health),
        Route("/_p2p/stats", stats),
        Route("/_p2p/peers", peers),
        Route("/_p2p/shutdown", shutdown, methods=["POST"]),
        Route("/api/mcp/peers", mcp_peers),
        Route("/api/mcp/cache/stats", mcp_cache_stats),
        Route("/metrics", metrics),
        *extra_routes,
    ]
    if engine is not None:
        routes.append(Route("/_p2p/invalidate", invalidate, methods=["POST"]))
        # The gh wrapper shares --json command outputs through these (nodes/outputs.py).
        routes.extend(output_routes(CommandOutputs(engine)))
        routes.append(Route("/_p2p/dashboard", dashboard))
    else:
        routes.append(Route("/", dashboard))

    if mcp is not None:
        routes[:0] = [Route(path, mcp) for path in mcp.paths]
    app = Starlette(routes=routes, lifespan=mcp.lifespan if mcp is not None else None)
    proxy = Proxy(engine, default_token) if engine is not None else None

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            why = refusal(scope)
            if why is not None:
                await PlainTextResponse(why, status_code=403)(scope, receive, send)
                return
            if proxy is not None and not _own_route(scope["path"]):
                await proxy(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded


def _own_route(path: str) -> bool:
    """Paths the node answers itself; everything else is GitHub's, through the proxy."""
    return path.startswith(("/_p2p/", "/api/mcp/")) or path == "/metrics"
