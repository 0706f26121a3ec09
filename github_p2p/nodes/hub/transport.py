"""The fleet as seen from inside a hub: a :class:`~github_p2p.cache.fleet.FleetTransport` over
the hub's own :class:`~github_p2p.nodes.hub.state.HubState`, with no network in between.

A hub that holds the full secret answers its MCP ``github_get`` through an engine over this
transport, so it shares the fleet's entries and coalesces with the runners like one of them.
The in-memory fleet fake for tests is this transport over a memory state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from github_p2p.core.lease import Lease, LeaseAnswer
from github_p2p.core.ratelimit import limits_under
from github_p2p.nodes.hub.state import HubState

__all__ = ["HubStateTransport"]


class HubStateTransport:
    """One holder's view of a hub state (``holder`` names it, as a connection does).

    ``space`` puts the holder in one repository's space of an OIDC hub, as the hub does for an
    admitted runner's stream: its ids are mapped and its rate limits kept under its prefix.
    """

    def __init__(self, state: HubState, holder: str, *,
                 space: tuple[Callable[[bytes], bytes], str] | None = None) -> None:
        self.state = state
        self.holder = holder
        self._limits: dict[str, float] = {}
        self._map, self._prefix = space if space is not None else (_same, "")

    async def lease(self, entry_id: bytes, wait: float) -> LeaseAnswer[bytes]:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        answer = await self.state.lease(self._map(entry_id), self.holder, wait)
        self._limits = limits_under(self._prefix, await self.state.limits(time.time()))
        envelope = answer.payload.envelope if answer.payload is not None else None
        return LeaseAnswer(answer.outcome, envelope, answer.fresh, answer.lease)

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
                  lease: Lease | None, tag: bytes | None) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        await self.state.put(self._map(entry_id), envelope, fresh_ttl=fresh_ttl,
                             keep_ttl=keep_ttl, tag=self._map(tag) if tag else None,
                             lease_token=lease.token if lease else None)

    async def release(self, entry_id: bytes, lease: Lease) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        await self.state.release(self._map(entry_id), lease.token)

    async def invalidate(self, ids: Sequence[bytes]) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        for ident in ids:
            await self.state.delete(self._map(ident))

    async def note_limit(self, resource: str, until: float) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        await self.state.note_limit(self._prefix + resource, until)

    def limits(self) -> Mapping[str, float]:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        return self._limits

    async def disconnect(self) -> None:
        """What the hub does when the holder's connection drops: its leases are handed on."""
        await self.state.release_holder(self.holder)


def _same(ident: bytes) -> bytes:
    return ident
