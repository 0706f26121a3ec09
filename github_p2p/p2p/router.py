"""Spreading entry ids over several hubs, with failover, and the bridge to synchronous code.

:class:`FleetRouter` sends each id to its rendezvous-preferred connected hub and falls over to
the next when that hub fails. :class:`TrioFleetCache` exposes it to the (threaded, synchronous)
:class:`~github_p2p.cache.engine.CacheEngine` as a :class:`~github_p2p.cache.fleet.FleetCache`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import trio

from github_p2p.cache.fleet import LeaseOutcome, LeaseResult
from github_p2p.errors import FleetUnavailableError
from github_p2p.p2p.link import HubLink
from github_p2p.p2p.messages import Delete, Lease, LeaseReply, Put, Release, Request, Response
from github_p2p.p2p.rendezvous import rank_hubs

__all__ = ["FleetRouter", "TrioFleetCache"]

log = logging.getLogger(__name__)


class FleetRouter:
    """Routes fleet operations to hubs (async, runs in the daemon's trio loop)."""

    def __init__(self, links: Sequence[HubLink], request_timeout: float = 10.0) -> None:
        self.links = list(links)
        self.request_timeout = request_timeout

    def connected(self) -> list[HubLink]:
        """Links that are up now."""
        return [link for link in self.links if link.connected]

    def _ranked(self, entry_id: bytes) -> list[HubLink]:
        up = {link.hub_id: link for link in self.connected()}
        return [up[hub] for hub in rank_hubs(list(up), entry_id)]

    async def _call(self, entry_id: bytes, make: Callable[[int], Request], timeout: float
                    ) -> Response:
        ranked = self._ranked(entry_id)
        if not ranked:
            raise FleetUnavailableError("no hub is connected")
        last: FleetUnavailableError | None = None
        for link in ranked:
            try:
                return await link.call(make, timeout)
            except FleetUnavailableError as exc:
                log.info("hub %s failed, trying the next: %s", link.hub_id, exc)
                last = exc
        assert last is not None
        raise last

    async def lease(self, entry_id: bytes, wait: float) -> LeaseResult:
        """Lease ``entry_id`` at its hub."""
        reply = await self._call(entry_id, lambda rid: Lease(rid, entry_id, wait),
                                 wait + self.request_timeout)
        if not isinstance(reply, LeaseReply):
            raise FleetUnavailableError(f"unexpected reply to a lease: {type(reply).__name__}")
        return LeaseResult(LeaseOutcome(reply.outcome), reply.envelope, reply.fresh,
                           reply.lease_token)

    async def put(self, entry_id: bytes, envelope: bytes, fresh_ttl: float, keep_ttl: float,
                  lease_token: str | None, tag: bytes | None) -> None:
        """Store an envelope at its hub."""
        await self._call(entry_id, lambda rid: Put(rid, entry_id, envelope, fresh_ttl,
                                                   keep_ttl, lease_token, tag),
                         self.request_timeout)

    async def release(self, entry_id: bytes, lease_token: str) -> None:
        """Give a lease back."""
        await self._call(entry_id, lambda rid: Release(rid, entry_id, lease_token),
                         self.request_timeout)

    async def invalidate(self, ids: Sequence[bytes]) -> None:
        """Delete ``ids`` (and what they tag) on every connected hub: variants of a resource
        may live on different hubs."""
        links = self.connected()
        if not links:
            raise FleetUnavailableError("no hub is connected")
        failures = 0
        async with trio.open_nursery() as nursery:
            async def one(link: HubLink, ident: bytes) -> None:
                nonlocal failures
                try:
                    await link.call(lambda rid: Delete(rid, ident), self.request_timeout)
                except FleetUnavailableError:
                    failures += 1
            for link in links:
                for ident in ids:
                    nursery.start_soon(one, link, ident)
        if failures:
            raise FleetUnavailableError(f"{failures} invalidations failed")


class TrioFleetCache:
    """A :class:`~github_p2p.cache.fleet.FleetCache` for worker threads of a trio program."""

    def __init__(self, router: FleetRouter, trio_token: trio.lowlevel.TrioToken) -> None:
        self.router = router
        self._token = trio_token

    def lease(self, entry_id: bytes, wait: float) -> LeaseResult:
        """See :class:`~github_p2p.cache.fleet.FleetCache`."""
        return trio.from_thread.run(self.router.lease, entry_id, wait, trio_token=self._token)

    def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
            lease_token: str | None, tag: bytes | None) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetCache`."""
        trio.from_thread.run(self.router.put, entry_id, envelope, fresh_ttl, keep_ttl,
                             lease_token, tag, trio_token=self._token)

    def release(self, entry_id: bytes, lease_token: str) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetCache`."""
        trio.from_thread.run(self.router.release, entry_id, lease_token,
                             trio_token=self._token)

    def invalidate(self, ids: Sequence[bytes]) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetCache`."""
        trio.from_thread.run(self.router.invalidate, list(ids), trio_token=self._token)
