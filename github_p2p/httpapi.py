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
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .engine import CACHE_HEADER, UPSTREAM_CALLS_HEADER, CacheEngine
from .errors import UpstreamUnavailableError

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


class _StatsCollector(Collector):
    """Reads the node's counters at scrape time, so /metrics always equals /_p2p/stats."""

    def __init__(self, node: NodeView) -> None:
        self._node = node

    def collect(self) -> Iterator[Metric]:
        stats = self._node.stats()
        yield from _counters(stats, "github_p2p", "")
        errors = CounterMetricFamily("github_p2p_errors", "Errors by kind", labels=["kind"])
        for kind in ("errors", "integrity_failures", "fleet_errors", "protocol_errors",
                     "stream_errors"):
            errors.add_metric([kind], float(stats.get(kind) or 0))
        yield errors
        if "fleet_requests" in stats:  # a hub: what its runners reported, and its own work
            yield from _counters(stats, "github_p2p_fleet", "fleet_")
            yield from _hub_metrics(stats)
        yield GaugeMetricFamily("github_p2p_bytes_stored", "Bytes in the cache store",
                                value=float(stats.get("bytes_stored") or 0))
        yield GaugeMetricFamily("github_p2p_entries", "Entries in the cache store",
                                value=float(stats.get("total_entries") or 0))
        yield GaugeMetricFamily("github_p2p_connected_peers", "Connected peers",
                                value=float(stats.get("connected_peers") or 0))
        remaining = stats.get("rate_limit_remaining")
        if isinstance(remaining, int):
            yield GaugeMetricFamily("github_p2p_rate_limit_remaining",
                                    "Last x-ratelimit-remaining seen", value=float(remaining))


_OUTCOMES = (("hit-local", "local_hits"), ("hit-peer", "peer_hits"), ("miss", "misses"),
             ("revalidated", "revalidations_304"), ("stale", "stale_served"),
             ("bypass", "bypassed"))


def _counters(stats: Mapping[str, Any], prefix: str, key: str) -> Iterator[Metric]:
    """Requests by outcome, upstream calls, calls saved, coalesced waits (keys ``key+name``)."""
    requests = CounterMetricFamily(f"{prefix}_requests", "Requests by cache outcome",
                                   labels=["outcome"])
    for outcome, name in _OUTCOMES:
        requests.add_metric([outcome], float(stats.get(key + name) or 0))
    yield requests
    for metric, name, text in (
        ("upstream_calls", "api_calls_made", "Requests sent to GitHub"),
        ("api_calls_saved", "api_calls_saved", "Requests answered with no call"),
        ("coalesced_waits", "coalesced_waits", "Waits for another runner's fill"),
    ):
        yield CounterMetricFamily(f"{prefix}_{metric}", text,
                                  value=float(stats.get(key + name) or 0))


def _hub_metrics(stats: Mapping[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily("github_p2p_fleet_reporting_peers", "Runners that sent counters",
                            value=float(stats.get("fleet_reporting_peers") or 0))
    yield CounterMetricFamily("github_p2p_hub_messages", "Protocol requests handled",
                              value=float(stats.get("requests") or 0))
    traffic = CounterMetricFamily("github_p2p_hub_bytes", "Sealed entry bytes moved",
                                  labels=["direction"])
    for direction in ("in", "out"):
        traffic.add_metric([direction], float(stats.get(f"bytes_{direction}") or 0))
    yield traffic
    leases = CounterMetricFamily("github_p2p_leases", "Fill lease events", labels=["event"])
    for event, name in (("granted", "leases_granted"), ("timeout", "lease_timeouts"),
                        ("takeover", "lease_takeovers")):
        leases.add_metric([event], float(stats.get(name) or 0))
    yield leases
    yield GaugeMetricFamily("github_p2p_fills_in_flight", "Fill leases held right now",
                            value=float(stats.get("fills_in_flight") or 0))
    yield GaugeMetricFamily("github_p2p_lease_waiters", "Runners waiting for a fill",
                            value=float(stats.get("waiters") or 0))


#: Fields of ``/api/mcp/cache/stats`` that a hub takes from its runners' reported totals.
_FLEET_VIEW = ("requests", "local_hits", "peer_hits", "misses", "api_calls_made",
               "api_calls_saved", "coalesced_waits", "hit_rate")


def _mcp_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The MCP dashboard's cache view: the node's own counters, or the fleet's on a hub.

    A hub makes no GitHub calls itself, so its cache figures are what the runners reported
    (its own counters stay in ``/_p2p/stats``); entries and size are its store's.
    """
    out = dict(stats)
    if "fleet_requests" in stats:
        out.update({name: stats.get(f"fleet_{name}", 0) for name in _FLEET_VIEW})
    for name in ("total_entries", *_FLEET_VIEW):
        out.setdefault(name, 0)
    out["total_size_mb"] = round(float(stats.get("bytes_stored") or 0) / (1024 * 1024), 3)
    return out


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
) -> ASGIApp:
    """The ASGI app of a node; ``engine`` enables the read-through proxy (runner peers)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatsCollector(node))

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

    async def mcp_stats(_: Request) -> Response:
        return JSONResponse(_mcp_stats(node.stats()))

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry),
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
        page = resources.files("github_p2p").joinpath("static/dashboard.html")
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
        Route("/api/mcp/cache/stats", mcp_stats),
        Route("/metrics", metrics),
    ]
    if engine is not None:
        routes.append(Route("/_p2p/invalidate", invalidate, methods=["POST"]))
        routes.append(Route("/_p2p/dashboard", dashboard))
        routes.append(Route("/{path:path}", proxy,
                            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]))
    else:
        routes.append(Route("/", dashboard))

    app = Starlette(routes=routes)

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

