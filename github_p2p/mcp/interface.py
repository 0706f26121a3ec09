"""What the MCP tools need from a node: two small async interfaces.

:class:`FleetView` is what every node can tell (health, counters, peers); :class:`GitHubReader`
is what a node that can read GitHub offers (a GET through its layered cache, an invalidation).
A blind bootstrap node has a view and no reader, so it lists no ``github_get``. Implementations
live in :mod:`.adapters`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from github_p2p.cache.engine import CachedResponse

__all__ = ["FleetView", "GitHubReader", "NodeView"]


class NodeView(Protocol):
    """The synchronous status methods runner daemons and hubs already have (the endpoint's
    ``NodeView``); cheap, in memory, safe to call on the event loop."""

    def health(self) -> dict[str, Any]:
        """Liveness and status."""

    def stats(self) -> dict[str, Any]:
        """Counters, as ``/_p2p/stats`` serves them."""

    def peers(self) -> list[dict[str, Any]]:
        """Known peers."""


class FleetView(Protocol):
    """A node's status, as the fleet tools and resources report it."""

    async def health(self) -> dict[str, Any]:
        """Liveness and status (``status``, ``role``, ``peer_id``, ...)."""

    async def stats(self) -> dict[str, Any]:
        """The same counters as ``/_p2p/stats``."""

    async def peers(self) -> list[dict[str, Any]]:
        """The peers the node knows."""


class GitHubReader(Protocol):
    """GitHub reads through a node's layered cache, with the node's own token."""

    #: The API base URL the answers' ``Link`` headers are relative to.
    base_url: str

    async def get(self, path: str, query: Sequence[tuple[str, str]]) -> CachedResponse:
        """GET ``path`` (already validated) through the cache and the fleet."""

    async def invalidate(self, path: str) -> None:
        """Forget ``path`` (and its ancestors) here and fleet-wide."""
