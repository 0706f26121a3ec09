"""Each MCP surface put together: a runner daemon's ``/_p2p/mcp``, a bootstrap node's ``/mcp``,
and ``github-p2p mcp`` over stdio.

A surface is a list of tool groups over a node's view and reader. Adding a group (the work
queue's tools, for example) to a surface is one more entry in its list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import trio

from github_p2p.cache.client import EndpointBackend, EngineBackend, GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.errors import ConfigError
from github_p2p.mcp.adapters import (
    EndpointReader,
    EndpointView,
    EngineReader,
    EngineView,
    ViewAdapter,
)
from github_p2p.mcp.auth import BearerAuth
from github_p2p.mcp.interface import FleetView, GitHubReader
from github_p2p.mcp.server import build_server, http_app
from github_p2p.mcp.tools import NodeTools, ToolGroup
from github_p2p.nodes.mcpmount import HubMcpSettings, McpHttpApp

if TYPE_CHECKING:
    from github_p2p.nodes.hub.service import HubService
    from github_p2p.nodes.peer import PeerDaemon

__all__ = ["daemon_http", "hub_http", "run_stdio", "stdio_groups"]


def daemon_http(daemon: PeerDaemon, path: str) -> McpHttpApp:
    """A runner daemon's MCP: its own engine (local store, fleet, GitHub) and token."""
    if daemon.engine is None:
        raise ConfigError("the daemon's cache engine is not running yet")
    reader = EngineReader(daemon.engine, daemon.settings.client.token)
    groups: list[ToolGroup] = [NodeTools(ViewAdapter(daemon), reader)]
    return http_app(build_server(groups), path)


def hub_http(hub: HubService, settings: HubMcpSettings, path: str, *, resource_url: str
             ) -> McpHttpApp:
    """A bootstrap node's MCP: its fleet view; ``github_get`` too when ``settings.reader`` is
    set (the hub holds the full secret and a GitHub token).

    The reader is a minimal one: an engine over a local store of the hub's own, with no fleet
    layer. Connecting it to the hub's shared store is the hub's business, not this module's.
    """
    reader: GitHubReader | None = None
    on_close: Callable[[], None] | None = None
    if settings.reader is not None:
        client = GitHubClient.in_process(settings.reader)
        backend = client.backend
        assert isinstance(backend, EngineBackend)
        reader = EngineReader(backend.engine, settings.reader.token)
        on_close = client.close
    auth = BearerAuth(settings.token, resource_url) if settings.token is not None else None
    groups: list[ToolGroup] = [NodeTools(ViewAdapter(hub), reader)]
    return http_app(build_server(groups, auth=auth), path, on_close=on_close)


def stdio_groups(env: Mapping[str, str]) -> tuple[list[ToolGroup], Callable[[], None]]:
    """The tool groups of ``github-p2p mcp`` and what to close after: through the daemon at
    ``GITHUB_P2P_ENDPOINT`` when set, else an in-process cache (local store, no fleet)."""
    client = GitHubClient.from_env(env)
    backend = client.backend
    view: FleetView
    reader: GitHubReader
    if isinstance(backend, EndpointBackend):
        endpoint_view = EndpointView(backend.base_url)
        view, reader = endpoint_view, EndpointReader(backend)

        def close() -> None:
            endpoint_view.close()
            client.close()
    else:
        assert isinstance(backend, EngineBackend)
        view = EngineView(backend.engine)
        reader = EngineReader(backend.engine, ClientSettings.from_env(env).token)
        close = client.close
    return [NodeTools(view, reader)], close


def run_stdio(env: Mapping[str, str]) -> int:
    """Serve MCP on stdin/stdout until the client closes it (``github-p2p mcp``)."""
    groups, close = stdio_groups(env)
    try:
        trio.run(build_server(groups).run_stdio_async)
    finally:
        close()
    return 0
