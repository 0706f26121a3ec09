"""In-memory fakes of the fleet, public for tests (ours and users').

:class:`MemoryFleet` is a :class:`~github_p2p.cache.fleet.FleetTransport` whose "hub" is a real
:class:`~github_p2p.nodes.hub.state.LocalHubState` over a memory store, in this process: the
coalescing logic is the hub's own, only the network is missing. Several engines given the same
:class:`MemoryHub` behave like runners linked to one hub. Faults are switches: ``down`` makes
every call fail as an unreachable hub does, and ``tamper`` rewrites envelopes on their way out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from github_p2p.core.lease import Lease, LeaseAnswer
from github_p2p.errors import FleetUnavailableError
from github_p2p.nodes.hub.envelopes import MemoryEnvelopeStore
from github_p2p.nodes.hub.state import HubState, LocalHubState
from github_p2p.nodes.hub.transport import HubStateTransport

__all__ = ["MemoryFleet", "MemoryHub"]


@dataclass
class MemoryHub:
    """A hub's state in memory, with counters of what it was asked."""

    state: HubState = field(default_factory=lambda: LocalHubState(MemoryEnvelopeStore()))
    calls: dict[str, int] = field(default_factory=dict)
    down: bool = False

    def count(self, op: str) -> None:
        """Count one call of ``op`` (and fail it when the hub is down)."""
        self.calls[op] = self.calls.get(op, 0) + 1
        if self.down:
            raise FleetUnavailableError("the in-memory hub is down")


_names = itertools.count(1)


class MemoryFleet(HubStateTransport):
    """One runner's view of a :class:`MemoryHub`, with fault switches."""

    def __init__(self, hub: MemoryHub | None = None, *, name: str | None = None) -> None:
        self.hub = hub or MemoryHub()
        super().__init__(self.hub.state, name or f"runner-{next(_names)}")
        #: Applied to every envelope the hub hands out (tests of forged or broken entries).
        self.tamper: Callable[[bytes], bytes] | None = None

    async def lease(self, entry_id: bytes, wait: float) -> LeaseAnswer[bytes]:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("lease")
        answer = await super().lease(entry_id, wait)
        if answer.payload is None or self.tamper is None:
            return answer
        return LeaseAnswer(answer.outcome, self.tamper(answer.payload), answer.fresh,
                           answer.lease)

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
                  lease: Lease | None, tag: bytes | None) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("put")
        await super().put(entry_id, envelope, fresh_ttl=fresh_ttl, keep_ttl=keep_ttl,
                          lease=lease, tag=tag)

    async def release(self, entry_id: bytes, lease: Lease) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("release")
        await super().release(entry_id, lease)

    async def invalidate(self, ids: Sequence[bytes]) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("invalidate")
        await super().invalidate(ids)

    async def note_limit(self, resource: str, until: float) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("note_limit")
        await super().note_limit(resource, until)
