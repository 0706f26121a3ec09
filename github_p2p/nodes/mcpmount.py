"""Where a node's endpoint serves MCP: a route that builds the MCP server on first use.

The MCP SDK costs about 0.6 s of CPU and 25 MB to import, more than half of what a runner
daemon spends starting. Most jobs never talk MCP, so the daemon and the hub only load it when
the first MCP request arrives. The endpoint's lifespan holds a nursery; the first request
imports :mod:`github_p2p.mcp` (in a thread, so the event loop keeps serving), builds the
server, and starts the SDK's session manager in that nursery for the rest of the app's life.

This module never imports the SDK itself: a node without the ``github-p2p[mcp]`` extra
answers its MCP paths with 501 and a message naming the extra.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from github_p2p.config import ClientSettings
from github_p2p.core.keys import FleetKeys
from github_p2p.errors import GitHubP2PError

if TYPE_CHECKING:
    from github_p2p.nodes.hub.service import HubService
    from github_p2p.nodes.peer import PeerDaemon

__all__ = [
    "DAEMON_MCP_PATH",
    "HUB_MCP_PATH",
    "HubMcpSettings",
    "McpHttpApp",
    "McpMount",
    "daemon_mount",
    "hub_mount",
    "metadata_path",
]

log = logging.getLogger(__name__)

#: Where a runner daemon serves MCP (``$GITHUB_P2P_ENDPOINT/_p2p/mcp``).
DAEMON_MCP_PATH = "/_p2p/mcp"
#: Where a bootstrap node serves MCP.
HUB_MCP_PATH = "/mcp"
_WELL_KNOWN = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True)
class McpHttpApp:
    """A built MCP surface: its ASGI app, and the context that must be entered around its use
    (the SDK's session manager, plus whatever the surface must close when it ends)."""

    app: ASGIApp
    running: Callable[[], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class HubMcpSettings:
    """How a bootstrap node serves ``/mcp``.

    ``token`` (from ``--mcp-token-file``) is then required as a bearer token; ``public_url``
    is the URL clients use behind a TLS reverse proxy (the token's resource, and where the
    protected-resource metadata points); ``reader`` and ``keys`` are set when the hub holds the full
    fleet secret and a GitHub token, and so can answer ``github_get`` itself, through the
    fleet's own entries.
    """

    token: str | None = field(default=None, repr=False)
    public_url: str | None = None
    reader: ClientSettings | None = None
    #: The sealing keys of ``reader.scope`` (derived once, at start, from the fleet secret).
    keys: FleetKeys | None = field(default=None, repr=False)


def metadata_path(resource_url: str) -> str:
    """The RFC 9728 protected-resource metadata path of ``resource_url``'s resource."""
    path = urlsplit(resource_url).path.rstrip("/")
    return _WELL_KNOWN + path


class McpMount:
    """An ASGI app for a node's MCP paths that builds the real one on first use."""

    def __init__(self, paths: tuple[str, ...], build: Callable[[], McpHttpApp]) -> None:
        self.paths = paths
        self._build = build
        self._app: ASGIApp | None = None
        self._failure: str | None = None
        self._lock = trio.Lock()
        self._nursery: trio.Nursery | None = None

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """The endpoint app's lifespan: the nursery the SDK's session manager runs in."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Browsers never get here: the endpoint's guard refuses them for every path.
        app = await self._ready()
        if app is None:
            status = 503 if self._failure is None else 501
            message = self._failure or "the MCP server is not running (the app has no lifespan)"
            await JSONResponse({"message": message}, status_code=status)(scope, receive, send)
            return
        await app(scope, receive, send)

    async def _ready(self) -> ASGIApp | None:
        if self._app is not None or self._failure is not None:
            return self._app
        async with self._lock:
            nursery = self._nursery
            if self._app is not None or self._failure is not None or nursery is None:
                return self._app
            try:
                # The import is the slow part; a thread keeps the endpoint answering meanwhile.
                await trio.to_thread.run_sync(importlib.import_module, "github_p2p.mcp.surfaces")
                built = self._build()
            except (GitHubP2PError, ImportError) as exc:
                self._failure = str(exc)
                log.warning("MCP is unavailable: %s", exc)
                return None
            await nursery.start(self._serve, built.running)
            self._app = built.app
            log.info("MCP server started at %s", ", ".join(self.paths))
            return self._app

    async def _serve(self, running: Callable[[], AbstractAsyncContextManager[None]],
                     task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with running():
            task_status.started()
            await trio.sleep_forever()


def daemon_mount(daemon: PeerDaemon) -> McpMount:
    """The runner daemon's ``/_p2p/mcp``: its own engine and token, its fleet view."""

    def build() -> McpHttpApp:
        from github_p2p.mcp.surfaces import daemon_http

        return daemon_http(daemon, DAEMON_MCP_PATH)

    return McpMount((DAEMON_MCP_PATH,), build)


def hub_mount(hub: HubService, settings: HubMcpSettings,
              endpoint: Callable[[], str | None]) -> McpMount:
    """The bootstrap node's ``/mcp``; ``endpoint`` gives its HTTP URL once it is listening
    (the default resource URL of a token-protected ``/mcp``)."""
    paths: tuple[str, ...] = (HUB_MCP_PATH,)
    if settings.token is not None:
        paths += (metadata_path(settings.public_url or HUB_MCP_PATH),)

    def build() -> McpHttpApp:
        from github_p2p.mcp.surfaces import hub_http

        base = endpoint() or "http://127.0.0.1"
        return hub_http(hub, settings, HUB_MCP_PATH,
                        resource_url=settings.public_url or base + HUB_MCP_PATH)

    return McpMount(paths, build)
