"""Each MCP surface put together: a runner daemon's ``/_p2p/mcp``, a bootstrap node's ``/mcp``,
and ``github-p2p mcp`` over stdio.

A surface is a list of tool groups over a node's view and reader. Adding a group (the work
queue's tools, for example) to a surface is one more entry in its list.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import trio

from github_p2p.cache.client import EndpointBackend, EngineBackend, GitHubClient
from github_p2p.cache.fleet import SealedFleet
from github_p2p.cache.localstore import LocalStore
from github_p2p.cache.trio_engine import TrioCacheEngine
from github_p2p.cache.upstream import Upstream
from github_p2p.config import ClientSettings
from github_p2p.core.flow import FlowSettings
from github_p2p.core.keys import FleetKeys
from github_p2p.core.policy import load_policy
from github_p2p.core.sealing import FleetSeal
from github_p2p.core.stats import Stats
from github_p2p.errors import ConfigError
from github_p2p.mcp.adapters import (
    EndpointReader,
    EndpointView,
    EngineReader,
    EngineView,
    TrioEngineReader,
    ViewAdapter,
)
from github_p2p.mcp.auth import BearerAuth
from github_p2p.mcp.interface import FleetView, GitHubReader
from github_p2p.mcp.queue_tools import QueueTools, RunDefaults, stdio_queue
from github_p2p.mcp.server import build_server, http_app
from github_p2p.mcp.tools import NodeTools, ToolGroup
from github_p2p.nodes.hub.transport import HubStateTransport
from github_p2p.nodes.mcpmount import HubMcpSettings, McpHttpApp

if TYPE_CHECKING:
    from github_p2p.nodes.hub.service import HubService
    from github_p2p.nodes.peer import PeerDaemon

__all__ = ["daemon_http", "hub_http", "run_stdio", "stdio_groups"]


def daemon_http(daemon: PeerDaemon, path: str) -> McpHttpApp:
    """A runner daemon's MCP: its own engine (local store, fleet, GitHub) and token."""
    if daemon.engine is None:
        raise ConfigError("the daemon's cache engine is not running yet")
    reader = TrioEngineReader(daemon.engine, daemon.settings.client.token)
    groups: list[ToolGroup] = [NodeTools(ViewAdapter(daemon), reader)]
    if daemon.queues is not None:  # the run's queues: the daemon's environment names the run
        groups.append(QueueTools(daemon.queues, RunDefaults.from_env(os.environ)))
    return http_app(build_server(groups), path)


def hub_http(hub: HubService, settings: HubMcpSettings, path: str, *, resource_url: str
             ) -> McpHttpApp:
    """A bootstrap node's MCP: its fleet view; ``github_get`` too when ``settings.reader`` is
    set (the hub holds the full secret and a GitHub token).

    The reader is an engine whose fleet is the hub's own state: it reads the entries runners
    shared, shares what it fetches, and coalesces with them like one more runner.
    """
    # No queue tools: a blind hub cannot open a queue's items, and no hub is a leg of a run.
    reader: GitHubReader | None = None
    on_close: Callable[[], None] | None = None
    if settings.reader is not None and settings.keys is not None:
        engine = hub_engine(hub, settings.reader, settings.keys)
        reader = TrioEngineReader(engine, settings.reader.token)
        on_close = engine.store.close
    auth = BearerAuth(settings.token, resource_url) if settings.token is not None else None
    groups: list[ToolGroup] = [NodeTools(ViewAdapter(hub), reader)]
    return http_app(build_server(groups, auth=auth), path, on_close=on_close)


def hub_engine(hub: HubService, client: ClientSettings, keys: FleetKeys) -> TrioCacheEngine:
    """The hub's own cache engine: a local store, and the hub's state as its fleet."""
    if client.cache_dir is None:
        raise ConfigError("the hub's MCP reader needs a cache directory")
    stats = Stats()
    return TrioCacheEngine(
        settings=FlowSettings(api_url=client.api_url, scope=client.scope,
                              policy=load_policy(client.policy_file), fleet=True,
                              fleet_wait=client.fleet_wait, retry=client.retry),
        upstream=Upstream(stats, retry=client.retry, timeout=client.timeout,
                          user_agent=client.user_agent),
        stats=stats, store=LocalStore(client.cache_dir),
        fleet=SealedFleet(HubStateTransport(hub.state, "hub-mcp", space=_space(hub, client)),
                          FleetSeal(keys)))


def _space(hub: HubService, client: ClientSettings
           ) -> tuple[Callable[[bytes], bytes], str] | None:
    """On an OIDC hub, the hub's own reads live in its repository's space, as an admitted
    runner's of that repository do; elsewhere there is one space."""
    if not hub.admission.required:
        return None
    return hub.admission.mapper(client.scope), hub.admission.limit_prefix(client.scope)


def stdio_groups(env: Mapping[str, str]) -> tuple[list[ToolGroup], Callable[[], None]]:
    """The tool groups of ``github-p2p mcp`` and what to close after: through the daemon at
    ``GITHUB_P2P_ENDPOINT`` when set, else an in-process cache and queue (no fleet)."""
    queue, close_queue = stdio_queue(env)
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
            close_queue()
    else:
        assert isinstance(backend, EngineBackend)
        view = EngineView(backend.engine)
        reader = EngineReader(backend.engine, ClientSettings.from_env(env).token)

        def close() -> None:
            client.close()
            close_queue()
    return [NodeTools(view, reader), QueueTools(queue, RunDefaults.from_env(env))], close


def run_stdio(env: Mapping[str, str]) -> int:
    """Serve MCP on stdin/stdout until the client closes it (``github-p2p mcp``)."""
    groups, close = stdio_groups(env)
    try:
        trio.run(build_server(groups).run_stdio_async)
    finally:
        close()
    return 0
