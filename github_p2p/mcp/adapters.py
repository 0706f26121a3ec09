"""Implementations of :mod:`.interface` for each kind of node.

* a runner daemon or a hub: :class:`ViewAdapter` over the node itself; a daemon reads through
  its trio engine (:class:`TrioEngineReader`), a hub holding the full secret through an
  in-process :class:`CacheEngine` (:class:`EngineReader`);
* ``github-p2p mcp`` with ``GITHUB_P2P_ENDPOINT``: :class:`EndpointReader` and
  :class:`EndpointView`, talking to the daemon over its loopback endpoint;
* ``github-p2p mcp`` alone: :class:`EngineReader` and :class:`EngineView` over an in-process
  engine (local store, no fleet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests
import trio

from github_p2p.cache.client import EndpointBackend
from github_p2p.cache.engine import CachedResponse, CacheEngine
from github_p2p.cache.trio_engine import TrioCacheEngine
from github_p2p.errors import FleetUnavailableError
from github_p2p.mcp.interface import NodeView

__all__ = [
    "EndpointReader",
    "EndpointView",
    "EngineReader",
    "EngineView",
    "TrioEngineReader",
    "ViewAdapter",
]


class ViewAdapter:
    """A daemon's or hub's own status methods, as a :class:`~.interface.FleetView`."""

    def __init__(self, node: NodeView) -> None:
        self._node = node

    async def health(self) -> dict[str, Any]:
        """The node's health document."""
        return self._node.health()

    async def stats(self) -> dict[str, Any]:
        """The node's ``/_p2p/stats``."""
        return self._node.stats()

    async def peers(self) -> list[dict[str, Any]]:
        """The node's ``/_p2p/peers``."""
        return self._node.peers()


class TrioEngineReader:
    """Reads through a daemon's trio engine with the node's own token (never a caller's)."""

    def __init__(self, engine: TrioCacheEngine, token: str | None) -> None:
        self._engine = engine
        self._token = token
        self.base_url = engine.api_url

    async def get(self, path: str, query: Sequence[tuple[str, str]]) -> CachedResponse:
        """GET through the memory front, the local store, the fleet, then GitHub."""
        return await self._engine.handle("GET", path, list(query), {}, None, self._token)

    async def invalidate(self, path: str) -> None:
        """Forget ``path`` here and fleet-wide."""
        await self._engine.invalidate(path)


async def _engine_get(engine: CacheEngine, path: str, query: Sequence[tuple[str, str]],
                      token: str | None) -> CachedResponse:
    # The synchronous engine blocks (requests, diskcache): a worker thread carries the call.
    return await trio.to_thread.run_sync(engine.handle, "GET", path, list(query), {}, None, token)


class EngineReader:
    """Reads through an in-process :class:`CacheEngine` with the node's own token."""

    def __init__(self, engine: CacheEngine, token: str | None) -> None:
        self._engine = engine
        self._token = token
        self.base_url = engine.api_url

    async def get(self, path: str, query: Sequence[tuple[str, str]]) -> CachedResponse:
        """GET through the local store, the fleet, then GitHub."""
        return await _engine_get(self._engine, path, query, self._token)

    async def invalidate(self, path: str) -> None:
        """Forget ``path`` here and fleet-wide."""
        await trio.to_thread.run_sync(self._engine.invalidate, path)


class EngineView:
    """Status of an in-process engine (``github-p2p mcp`` without a daemon): no fleet."""

    role = "mcp"

    def __init__(self, engine: CacheEngine) -> None:
        self._engine = engine

    async def health(self) -> dict[str, Any]:
        """Always ``local-only``: this process has no fleet link."""
        return {"status": "local-only", "role": self.role, "peer_id": None,
                "connected_peers": 0}

    async def stats(self) -> dict[str, Any]:
        """The engine's counters with the store figures, named as ``/_p2p/stats`` names them."""
        out: dict[str, Any] = dict(self._engine.stats.snapshot())
        store = self._engine.store
        out.update(status="local-only", role=self.role, connected_peers=0,
                   total_entries=len(store) if store is not None else 0,
                   bytes_stored=store.volume() if store is not None else 0)
        return out

    async def peers(self) -> list[dict[str, Any]]:
        """No peers."""
        return []


class EndpointReader:
    """Reads through a runner daemon's endpoint (which shares the fleet cache)."""

    def __init__(self, backend: EndpointBackend) -> None:
        self._backend = backend
        self.base_url = backend.base_url

    async def get(self, path: str, query: Sequence[tuple[str, str]]) -> CachedResponse:
        """GET through the daemon."""
        return await trio.to_thread.run_sync(self._backend.send, "GET", path, list(query), {},
                                             None)

    async def invalidate(self, path: str) -> None:
        """Ask the daemon to forget ``path`` fleet-wide."""
        await trio.to_thread.run_sync(self._backend.invalidate, path)


class EndpointView:
    """A runner daemon's status, read from its ``/_p2p/health|stats|peers``."""

    def __init__(self, endpoint: str, *, timeout: float = 10.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # loopback: proxies and netrc never apply

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def _read(self, route: str) -> Any:
        try:
            resp = self._session.get(self.endpoint + route, timeout=self._timeout)
            resp.raise_for_status()
            return resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise FleetUnavailableError(
                f"the github-p2p daemon at {self.endpoint} did not answer {route}: "
                f"{type(exc).__name__}") from exc

    async def _get(self, route: str) -> Any:
        return await trio.to_thread.run_sync(self._read, route)

    async def health(self) -> dict[str, Any]:
        """The daemon's health document."""
        return dict(await self._get("/_p2p/health"))

    async def stats(self) -> dict[str, Any]:
        """The daemon's ``/_p2p/stats``."""
        return dict(await self._get("/_p2p/stats"))

    async def peers(self) -> list[dict[str, Any]]:
        """The daemon's ``/_p2p/peers``."""
        return list((await self._get("/_p2p/peers")).get("peers", []))
