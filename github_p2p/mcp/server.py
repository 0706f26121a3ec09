"""Building the SDK server from tool groups, and its Streamable HTTP app for a node's endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from github_p2p import __version__
from github_p2p.mcp.auth import BearerAuth
from github_p2p.mcp.tools import ToolGroup
from github_p2p.nodes.mcpmount import McpHttpApp

__all__ = ["INSTRUCTIONS", "LOOPBACK_ONLY", "build_server", "http_app"]

INSTRUCTIONS = (
    "github-p2p shares GitHub REST API answers across a fleet of machines, so each unique "
    "resource costs the fleet's rate limit once. Prefer github_get over other ways of reading "
    "the GitHub REST API: it answers from the cache when it can and tells how (cache) and what "
    "it cost (upstream_calls). After changing something on GitHub outside github-p2p, call "
    "github_invalidate on its path. fleet_status, fleet_peers and cache_stats describe the "
    "fleet and its savings. Where offered, the queue_* tools split a run's work between agents "
    "on several runners: each submits the same list (queue_submit), then claims items "
    "(queue_claim), heartbeats while working and completes each, until a claim says drained."
)

#: The endpoint serves loopback clients only; these settings make the SDK check the same, and
#: refuse every request that carries an ``Origin`` (MCP clients send none; browsers do).
LOOPBACK_ONLY = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
    allowed_origins=[],
)


def build_server(groups: Sequence[ToolGroup], *, auth: BearerAuth | None = None
                 ) -> MCPServer[Any]:
    """An MCP server offering ``groups``' tools, requiring ``auth``'s token when given."""
    server: MCPServer[Any] = MCPServer(
        "github-p2p", version=__version__, instructions=INSTRUCTIONS,
        # The SDK configures logging only when nothing else has (the CLI always has); WARNING
        # keeps an embedding program's log quiet.
        log_level="WARNING",
        token_verifier=auth.verifier() if auth is not None else None,
        auth=auth.settings() if auth is not None else None,
    )
    for group in groups:
        group.register(server)
    return server


def http_app(server: MCPServer[Any], path: str, *,
             on_close: Callable[[], None] | None = None) -> McpHttpApp:
    """``server`` over Streamable HTTP at ``path`` (and, with auth, its protected-resource
    metadata), for a node's endpoint to route to; ``on_close`` runs when it stops."""
    # Stateless, with plain JSON answers: the tools never send the client anything unasked,
    # so the node keeps no per-client session, nothing stays open between calls (a stream held
    # open by a client that went away would hold up the node's stop for the HTTP server's
    # whole graceful timeout), and a reverse proxy needs no streaming set-up.
    app = server.streamable_http_app(streamable_http_path=path, transport_security=LOOPBACK_ONLY,
                                     json_response=True, stateless_http=True)
    manager = server.session_manager

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        try:
            async with manager.run():
                yield
        finally:
            if on_close is not None:
                on_close()

    return McpHttpApp(app, running)
