"""A hub's shared state (envelopes and fill leases) behind one interface.

The hub's protocol service talks only to a :class:`HubState`. :class:`LocalHubState` keeps the
state in this process (an envelope store plus a :class:`LeaseBoard`); a state shared by several
hubs (Redis) implements the same interface, so the service, the tests and the in-memory fleet
fake of :mod:`github_p2p.testing.fakes` do not care which one runs.
"""

from __future__ import annotations

import time
from typing import Protocol

from github_p2p.cache.gate import RateGate
from github_p2p.core.lease import LeaseAnswer
from github_p2p.nodes.hub.envelopes import EnvelopeStore, StoredEnvelope
from github_p2p.nodes.hub.leases import LeaseBoard

__all__ = ["HubState", "LocalHubState"]

Figure = int | float | str


class HubState(Protocol):
    """Envelopes by id with fill leases. ``holder`` names a runner's connection."""

    async def lease(self, entry_id: bytes, holder: str, wait: float
                    ) -> LeaseAnswer[StoredEnvelope]:
        """A fresh envelope, or the right to fill it, waiting up to ``wait`` for a fill."""

    async def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """The stored envelope, fresh or not."""

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float,
                  keep_ttl: float, tag: bytes | None, lease_token: str | None) -> None:
        """Store an envelope and wake whoever waits for it."""

    async def release(self, entry_id: bytes, token: str) -> bool:
        """Give a lease back unfilled; ``False`` when it was not (or no longer) held."""

    async def release_holder(self, holder: str) -> int:
        """Hand on every lease ``holder`` held (it disconnected)."""

    async def delete(self, ident: bytes) -> int:
        """Delete the entry ``ident`` and every entry tagged with it."""

    async def note_limit(self, resource: str, until: float) -> None:
        """A runner met a rate limit of ``resource`` that holds until ``until``."""

    async def limits(self, now: float) -> dict[str, float]:
        """The reported rate limits that still hold at ``now``."""

    def figures(self) -> dict[str, Figure]:
        """Counters for the status pages (``leases_granted``, ``total_entries``, ...)."""

    def close(self) -> None:
        """Release resources."""


class LocalHubState:
    """The state of one hub, in its own process."""

    def __init__(self, store: EnvelopeStore, *, lease_ttl: float = 30.0) -> None:
        self.store = store
        self.board = LeaseBoard(store, lease_ttl=lease_ttl)
        self.gate = RateGate()

    async def lease(self, entry_id: bytes, holder: str, wait: float
                    ) -> LeaseAnswer[StoredEnvelope]:
        """See :class:`HubState`."""
        return await self.board.lease(entry_id, holder, wait)

    async def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """See :class:`HubState`."""
        return await self.store.get(entry_id)

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float,
                  keep_ttl: float, tag: bytes | None, lease_token: str | None) -> None:
        """See :class:`HubState`."""
        await self.store.put(entry_id, envelope, fresh_ttl=fresh_ttl, keep_ttl=keep_ttl,
                             tag=tag)
        self.board.fill(entry_id, lease_token)

    async def release(self, entry_id: bytes, token: str) -> bool:
        """See :class:`HubState`."""
        return self.board.release(entry_id, token)

    async def release_holder(self, holder: str) -> int:
        """See :class:`HubState`."""
        return self.board.release_holder(holder)

    async def delete(self, ident: bytes) -> int:
        """See :class:`HubState`."""
        return await self.store.delete(ident)

    async def note_limit(self, resource: str, until: float) -> None:
        """See :class:`HubState`."""
        self.gate.note(resource, until, time.time())

    async def limits(self, now: float) -> dict[str, float]:
        """See :class:`HubState`."""
        return self.gate.live(now)

    def figures(self) -> dict[str, Figure]:
        """See :class:`HubState`."""
        stats = self.board.stats
        return {
            "coalesced_waits": stats.filled,
            "leases_granted": stats.granted,
            "lease_timeouts": stats.timeouts,
            "lease_takeovers": stats.takeovers,
            "fills_in_flight": self.board.in_flight,
            "waiters": self.board.waiting,
            "total_entries": len(self.store),
            "bytes_stored": self.store.volume(),
        }

    def close(self) -> None:
        """See :class:`HubState`."""
        self.store.close()
