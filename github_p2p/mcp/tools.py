"""The MCP tools and resources of a node, registered in groups.

A server is built from :class:`ToolGroup` objects, each adding its tools to it. Every node
has :class:`NodeTools` (``fleet_status``, ``fleet_peers``, ``cache_stats``, ``rate_limit``,
the ``fleet://`` resources, and ``github_get``/``github_invalidate`` where the node can read
GitHub). Another group, such as the work queue's ``queue_*`` tools (:mod:`.queue_tools`), is
a class with a ``register(server)`` method added to a surface's list of groups (see
:mod:`.surfaces`).

Anticipated failures become MCP tool errors (:class:`ToolError`) with a message for the model;
nothing a caller sends can crash the node.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations

from github_p2p.cache.client import parse_json
from github_p2p.cache.engine import CachedResponse
from github_p2p.core.pagination import next_page, page_items
from github_p2p.core.paths import api_path as forwarded_path
from github_p2p.errors import GitHubP2PError
from github_p2p.mcp.interface import FleetView, GitHubReader

__all__ = ["MAX_PAGES", "NodeTools", "ToolGroup", "api_request"]

#: Most pages one ``github_get`` follows.
MAX_PAGES = 50
_MAX_PATH = 2048
_STATUS_KEYS = ("status", "role", "peer_id", "endpoint", "multiaddrs", "uptime",
                "connected_peers")

_LOCAL_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_GITHUB_READ = ToolAnnotations(read_only_hint=True, open_world_hint=True)
_INVALIDATE = ToolAnnotations(read_only_hint=False, destructive_hint=False,
                              idempotent_hint=True, open_world_hint=False)

QueryArg = dict[str, str | int | bool]
_T = TypeVar("_T")


class ToolGroup(Protocol):
    """Tools (and resources) that a surface offers together."""

    def register(self, server: MCPServer[Any]) -> None:
        """Add this group's tools and resources to ``server``."""


def api_request(path: str, query: Mapping[str, str | int | bool] | None, base_url: str
                ) -> tuple[str, list[tuple[str, str]]]:
    """The API path and query a tool argument names; raises :class:`ToolError` when refused.

    Accepts ``/repos/o/r``, ``repos/o/r``, ``/repos/o/r?per_page=5`` and absolute URLs under the
    node's API base (``url`` fields of GitHub's own answers). Dot segments, backslashes,
    encoded separators and control characters are refused: the node's token must not be
    taken anywhere else on the API host.
    """
    text = path.strip()
    if text.startswith(("http://", "https://")):
        if not text.startswith(base_url.rstrip("/") + "/"):
            raise ToolError(f"only paths of this node's API ({base_url}) can be read; "
                            "give a path such as /repos/OWNER/REPO")
        text = text[len(base_url.rstrip("/")):]
    if not text.startswith("/"):
        text = "/" + text
    raw_path, _, inline = text.partition("?")
    forwarded = forwarded_path(raw_path, decoded=False) if len(raw_path) <= _MAX_PATH else None
    if forwarded is None or any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise ToolError(f"refused path {path[:200]!r}: dot segments, backslashes, encoded "
                        "separators and control characters are not allowed")
    params = parse_qsl(inline, keep_blank_values=True)
    for name, value in (query or {}).items():
        params.append((str(name), str(value).lower() if isinstance(value, bool) else str(value)))
    return forwarded, params


def _json_body(answer: CachedResponse, path: str) -> Any:
    try:
        return parse_json(answer, path)
    except GitHubP2PError as exc:
        raise ToolError(str(exc)) from exc


class NodeTools:
    """The tools every node offers; ``reader`` (a node that can read GitHub) adds
    ``github_get`` and ``github_invalidate``."""

    def __init__(self, view: FleetView, reader: GitHubReader | None = None) -> None:
        self.view = view
        self.reader = reader

    def register(self, server: MCPServer[Any]) -> None:
        """Add the node's tools and the ``fleet://status`` and ``fleet://peers`` resources."""
        if self.reader is not None:
            server.add_tool(self.github_get, name="github_get", annotations=_GITHUB_READ)
            server.add_tool(self.github_invalidate, name="github_invalidate",
                            annotations=_INVALIDATE)
        server.add_tool(self.rate_limit, name="rate_limit", annotations=_LOCAL_READ)
        server.add_tool(self.fleet_status, name="fleet_status", annotations=_LOCAL_READ)
        server.add_tool(self.fleet_peers, name="fleet_peers", annotations=_LOCAL_READ)
        server.add_tool(self.cache_stats, name="cache_stats", annotations=_LOCAL_READ)
        server.resource("fleet://status", name="fleet-status", mime_type="application/json",
                        description="This node's status in the github-p2p fleet (the same "
                        "as the fleet_status tool).")(self._status_resource)
        server.resource("fleet://peers", name="fleet-peers", mime_type="application/json",
                        description="The peers this node knows (the same as the fleet_peers "
                        "tool).")(self._peers_resource)

    # -- GitHub --------------------------------------------------------------------------------

    async def github_get(self, path: str, query: QueryArg | None = None,
                         paginate: bool = False, max_pages: int = 10) -> dict[str, Any]:
        """GET a GitHub REST API path through the github-p2p fleet cache, with the node's own
        token. Returns the JSON answer as `data`, how it was answered as `cache` (hit-local,
        hit-peer, miss, revalidated, stale or bypass; one per page when paginating), the
        calls it cost GitHub (`upstream_calls`) and the node's remaining rate limit.

        path: an API path such as /repos/OWNER/REPO/pulls (a query string is allowed).
        query: query parameters, such as {"state": "open"}.
        paginate: follow the Link rel="next" pages and return every item as one list.
        max_pages: the most pages to follow when paginating (1 to 50); `truncated` says
        whether more remained.
        """
        reader = self._reader()
        if not 1 <= max_pages <= MAX_PAGES:
            raise ToolError(f"max_pages must be between 1 and {MAX_PAGES}")
        api_path, params = api_request(path, query, reader.base_url)
        if not paginate:
            answer = await self._get(reader, api_path, params)
            data = _json_body(answer, api_path)
            return {"path": api_path, "status": answer.status, "data": data,
                    "cache": answer.outcome.value, "upstream_calls": answer.upstream_calls,
                    "rate_limit_remaining": await self._remaining()}
        if not any(name == "per_page" for name, _ in params):
            params.append(("per_page", "100"))
        items: list[Any] = []
        outcomes: list[str] = []
        calls = 0
        status = 200
        following: tuple[str, list[tuple[str, str]]] | None = (api_path, params)
        while following is not None and len(outcomes) < max_pages:
            answer = await self._get(reader, *following)
            items.extend(page_items(_json_body(answer, following[0])))
            outcomes.append(answer.outcome.value)
            calls += answer.upstream_calls
            status = answer.status
            following = next_page(reader.base_url, answer.headers)
        return {"path": api_path, "status": status, "data": items, "cache": outcomes,
                "pages": len(outcomes), "truncated": following is not None,
                "upstream_calls": calls, "rate_limit_remaining": await self._remaining()}

    async def github_invalidate(self, path: str) -> dict[str, Any]:
        """Forget a cached GitHub resource (and the lists above it) on this node and across the
        fleet, after a change made outside github-p2p. path: an API path such as
        /repos/OWNER/REPO/issues/7.
        """
        reader = self._reader()
        api_path, _ = api_request(path, None, reader.base_url)
        try:
            await reader.invalidate(api_path)
        except GitHubP2PError as exc:
            raise ToolError(str(exc)) from exc
        return {"invalidated": api_path}

    async def rate_limit(self) -> dict[str, Any]:
        """The GitHub rate limit left to this node's token. A node that reads GitHub asks
        GitHub's /rate_limit (which costs no rate limit); a blind bootstrap node, which never
        calls GitHub, reports what it knows.
        """
        last_seen = await self._remaining()
        if self.reader is None:
            return {"source": "none", "remaining": last_seen,
                    "message": "this bootstrap node is blind: it makes no GitHub calls; "
                               "ask a runner's rate_limit tool"}
        try:
            answer = await self.reader.get("/rate_limit", [])
            body = parse_json(answer, "/rate_limit")
        except GitHubP2PError as exc:
            return {"source": "last-seen", "remaining": last_seen,
                    "message": f"GitHub's /rate_limit did not answer: {exc}"}
        core = body.get("resources", {}).get("core", {}) if isinstance(body, dict) else {}
        return {"source": "github", "remaining": core.get("remaining"),
                "limit": core.get("limit"), "used": core.get("used"),
                "reset": core.get("reset"),
                "resources": body.get("resources", {}) if isinstance(body, dict) else {}}

    # -- fleet ---------------------------------------------------------------------------------

    async def fleet_status(self) -> dict[str, Any]:
        """This node's place in the github-p2p fleet: its status (active, degraded or
        local-only), role, peer id, connected peers and, on a bootstrap node, the fleet's
        totals (fleet_requests, fleet_api_calls_made, fleet_api_calls_saved, ...).
        """
        health = await self._call(self.view.health())
        stats = await self._call(self.view.stats())
        out = {key: health[key] for key in _STATUS_KEYS if key in health}
        out.update({key: value for key, value in stats.items() if key.startswith("fleet_")})
        out["peer_count"] = len(await self._call(self.view.peers()))
        return out

    async def fleet_peers(self) -> dict[str, Any]:
        """The peers this node knows: for a runner, its bootstrap nodes; for a bootstrap node,
        the connected runners with the counters each last reported.
        """
        peers = await self._call(self.view.peers())
        return {"peer_count": len(peers), "peers": peers}

    async def cache_stats(self) -> dict[str, Any]:
        """This node's cache statistics, the same numbers as its /_p2p/stats: requests,
        local_hits, peer_hits, misses, api_calls_made, api_calls_saved, hit_rate, ...
        """
        return await self._call(self.view.stats())

    async def _status_resource(self) -> str:
        return json.dumps(await self._resource(self.fleet_status()))

    async def _peers_resource(self) -> str:
        return json.dumps(await self._resource(self.fleet_peers()))

    # -- helpers -------------------------------------------------------------------------------

    def _reader(self) -> GitHubReader:
        if self.reader is None:  # only reachable by calling the method directly
            raise ToolError("this node cannot read GitHub")
        return self.reader

    @staticmethod
    async def _get(reader: GitHubReader, path: str, query: list[tuple[str, str]]
                   ) -> CachedResponse:
        try:
            return await reader.get(path, query)
        except GitHubP2PError as exc:
            raise ToolError(str(exc)) from exc

    async def _remaining(self) -> int | None:
        try:
            value = (await self.view.stats()).get("rate_limit_remaining")
        except GitHubP2PError:
            return None
        return value if isinstance(value, int) else None

    @staticmethod
    async def _call(pending: Awaitable[_T]) -> _T:
        try:
            return await pending
        except GitHubP2PError as exc:
            raise ToolError(str(exc)) from exc

    @staticmethod
    async def _resource(pending: Awaitable[_T]) -> _T:
        try:
            return await pending
        except ToolError as exc:
            raise ResourceError(str(exc)) from exc
