"""Spreading entry ids over several hubs, with failover.

:class:`FleetRouter` sends each id to its rendezvous-preferred connected hub and falls over to
the next when that hub fails. It is the libp2p :class:`~github_p2p.cache.fleet.FleetTransport`:
the daemon's trio engine awaits it directly, on the loop where the links live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import trio

from github_p2p.core.lease import Lease, LeaseAnswer, LeaseOutcome
from github_p2p.errors import FleetUnavailableError
from github_p2p.p2p.link import HubLink
from github_p2p.p2p.messages import (
    Delete,
    LeaseReply,
    LimitNote,
    Put,
    Release,
    Request,
    Response,
)
from github_p2p.p2p.messages import Lease as LeaseRequest
from github_p2p.p2p.rendezvous import rank_hubs

__all__ = ["FleetRouter"]

log = logging.getLogger(__name__)


class FleetRouter:
    """Routes fleet operations to hubs (async, runs in the daemon's trio loop)."""

    def __init__(self, links: Sequence[HubLink], request_timeout: float = 10.0) -> None:
        self.links = list(links)
        self.request_timeout = request_timeout
        self._limits: dict[str, float] = {}

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

    async def lease(self, entry_id: bytes, wait: float) -> LeaseAnswer[bytes]:
        """Lease ``entry_id`` at its hub."""
        reply = await self._call(entry_id, lambda rid: LeaseRequest(rid, entry_id, wait),
                                 wait + self.request_timeout)
        if not isinstance(reply, LeaseReply):
            raise FleetUnavailableError(f"unexpected reply to a lease: {type(reply).__name__}")
        if reply.limits:
            self._limits = {k: float(v) for k, v in reply.limits.items()
                            if isinstance(v, int | float)}
        granted = reply.lease_token is not None and reply.outcome == "granted"
        try:
            return LeaseAnswer(LeaseOutcome(reply.outcome), reply.envelope or None, reply.fresh,
                               Lease(reply.lease_token or "", reply.lease_ttl)
                               if granted else None)
        except ValueError as exc:
            raise FleetUnavailableError(f"the hub answered an inconsistent lease: {exc}") from exc

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
                  lease: Lease | None, tag: bytes | None) -> None:
        """Store an envelope at its hub."""
        token = lease.token if lease is not None else None
        await self._call(entry_id, lambda rid: Put(rid, entry_id, envelope, fresh_ttl,
                                                   keep_ttl, token, tag),
                         self.request_timeout)

    async def release(self, entry_id: bytes, lease: Lease) -> None:
        """Give a lease back."""
        await self._call(entry_id, lambda rid: Release(rid, entry_id, lease.token),
                         self.request_timeout)

    def limits(self) -> Mapping[str, float]:
        """The rate limits the hubs last relayed."""
        return self._limits

    async def note_limit(self, resource: str, until: float) -> None:
        """Tell every connected hub (leases go to several) about a rate limit."""
        links = self.connected()
        if not links:
            raise FleetUnavailableError("no hub is connected")
        async with trio.open_nursery() as nursery:
            for link in links:
                nursery.start_soon(self._note_one, link, resource, until)

    async def _note_one(self, link: HubLink, resource: str, until: float) -> None:
        try:
            await link.call(lambda rid: LimitNote(rid, resource, until), self.request_timeout)
        except FleetUnavailableError as exc:
            log.info("hub %s did not take a rate-limit note: %s", link.hub_id, exc)

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
