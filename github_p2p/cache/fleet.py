"""The fleet as a runner sees it: a transport of opaque envelopes, and the sealing on top.

A :class:`FleetTransport` moves envelopes by 32-byte id: the libp2p router talks to hubs
(:class:`~github_p2p.p2p.router.FleetRouter`), the in-memory fake of
:mod:`github_p2p.testing.fakes` keeps them in this process, and a hub answering its own MCP
tools uses its own state. :class:`SealedFleet` carries out the flow's fleet effects over any of
them: it turns cache keys into HMAC ids and entries into sealed envelopes, so nothing readable
ever leaves the runner, and it turns every transport failure into a value the flow counts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from github_p2p.core.cachekey import CacheKey
from github_p2p.core.effects import FleetReply, ShareResult
from github_p2p.core.entry import CacheEntry
from github_p2p.core.lease import Lease, LeaseAnswer
from github_p2p.core.sealing import FleetSeal
from github_p2p.errors import FleetError, IntegrityError

__all__ = ["FleetTransport", "SealedFleet"]

log = logging.getLogger(__name__)


class FleetTransport(Protocol):
    """Opaque envelopes to and from the fleet. Every method raises ``FleetError`` on failure."""

    async def lease(self, entry_id: bytes, wait: float) -> LeaseAnswer[bytes]:
        """A fresh envelope, or the right to fill it, waiting up to ``wait`` for a fill."""

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float,
                  keep_ttl: float, lease: Lease | None, tag: bytes | None) -> None:
        """Store an envelope (filling ``lease`` if given)."""

    async def release(self, entry_id: bytes, lease: Lease) -> None:
        """Give a lease back without filling it."""

    async def invalidate(self, ids: Sequence[bytes]) -> None:
        """Delete entries by id, and every entry tagged with one of ``ids``."""

    async def note_limit(self, resource: str, until: float) -> None:
        """Tell the fleet that GitHub limits ``resource`` until ``until`` (epoch seconds)."""

    def limits(self) -> Mapping[str, float]:
        """The rate limits the fleet last reported (resource → until)."""


class SealedFleet:
    """Carries out the flow's fleet effects over a transport; never raises for the fleet."""

    def __init__(self, transport: FleetTransport, seal: FleetSeal) -> None:
        self.transport = transport
        self.seal = seal

    async def ask(self, key: CacheKey, wait: float) -> FleetReply:
        """Lease ``key``; an entry that fails to open is dropped and counted as refused."""
        try:
            sealed = await self.transport.lease(self.seal.id_of(key), wait)
        except FleetError as exc:
            log.warning("fleet unavailable, asking GitHub directly: %s", exc)
            return FleetReply(None)
        answer, error = self.seal.open(key, sealed)
        if error is not None:
            log.warning("refused a fleet entry: %s", error)
        return FleetReply(answer, refused=int(error is not None))

    async def share(self, key: CacheKey, entry: CacheEntry, fresh_ttl: float, keep_ttl: float,
                    lease: Lease | None) -> ShareResult:
        """Seal and put ``entry``, filling ``lease``."""
        ident = self.seal.id_of(key)
        try:
            envelope = self.seal.seal(key, entry)
            await self.transport.put(ident, envelope, fresh_ttl=fresh_ttl, keep_ttl=keep_ttl,
                                     lease=lease, tag=self.seal.tag_of(key.resource))
        except (FleetError, IntegrityError) as exc:
            log.warning("could not share an entry with the fleet: %s", exc)
            return ShareResult.FAILED
        return ShareResult.SHARED

    async def release(self, key: CacheKey, lease: Lease) -> bool:
        """Give ``lease`` back; ``False`` when the fleet could not be told."""
        try:
            await self.transport.release(self.seal.id_of(key), lease)
        except FleetError as exc:
            log.warning("could not release a fleet lease: %s", exc)
            return False
        return True

    async def invalidate(self, resources: Sequence[str]) -> bool:
        """Drop every shared variant of ``resources``; ``False`` when the fleet failed."""
        try:
            await self.transport.invalidate([self.seal.tag_of(r) for r in resources])
        except FleetError as exc:
            log.warning("fleet invalidation failed: %s", exc)
            return False
        return True

    async def note_limit(self, resource: str, until: float) -> bool:
        """Share a rate limit with the fleet; ``False`` when the fleet could not be told."""
        try:
            await self.transport.note_limit(resource, until)
        except FleetError as exc:
            log.warning("could not share a rate limit with the fleet: %s", exc)
            return False
        return True

    def limits(self) -> Mapping[str, float]:
        """The rate limits the fleet last reported."""
        return self.transport.limits()
