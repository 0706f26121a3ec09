"""In-memory fakes of the fleet, public for tests (ours and users').

:class:`MemoryFleet` is a :class:`~github_p2p.cache.fleet.FleetTransport` whose "hub" is a real
:class:`~github_p2p.nodes.hub.state.LocalHubState` over a memory store, in this process: the
coalescing logic is the hub's own, only the network is missing. Several engines given the same
:class:`MemoryHub` behave like runners linked to one hub. Faults are switches: ``down`` makes
every call fail as an unreachable hub does, and ``tamper`` rewrites envelopes on their way out.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from github_p2p.core.lease import Lease, LeaseAnswer
from github_p2p.errors import FleetUnavailableError
from github_p2p.nodes.hub.envelopes import MemoryEnvelopeStore
from github_p2p.nodes.hub.state import HubState, LocalHubState

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


class MemoryFleet:
    """One runner's view of a :class:`MemoryHub` (a :class:`FleetTransport`)."""

    def __init__(self, hub: MemoryHub | None = None, *, name: str | None = None) -> None:
        self.hub = hub or MemoryHub()
        self.holder = name or f"runner-{next(_names)}"
        #: Applied to every envelope the hub hands out (tests of forged or broken entries).
        self.tamper: Callable[[bytes], bytes] | None = None
        self._limits: dict[str, float] = {}

    async def lease(self, entry_id: bytes, wait: float) -> LeaseAnswer[bytes]:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("lease")
        answer = await self.hub.state.lease(entry_id, self.holder, wait)
        self._limits = await self.hub.state.limits(time.time())
        envelope = answer.payload.envelope if answer.payload is not None else None
        if envelope is not None and self.tamper is not None:
            envelope = self.tamper(envelope)
        return LeaseAnswer(answer.outcome, envelope, answer.fresh, answer.lease)

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
                  lease: Lease | None, tag: bytes | None) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("put")
        await self.hub.state.put(entry_id, envelope, fresh_ttl=fresh_ttl, keep_ttl=keep_ttl,
                                 tag=tag, lease_token=lease.token if lease else None)

    async def release(self, entry_id: bytes, lease: Lease) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("release")
        await self.hub.state.release(entry_id, lease.token)

    async def invalidate(self, ids: Sequence[bytes]) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("invalidate")
        for ident in ids:
            await self.hub.state.delete(ident)

    async def note_limit(self, resource: str, until: float) -> None:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        self.hub.count("note_limit")
        await self.hub.state.note_limit(resource, until)

    def limits(self) -> Mapping[str, float]:
        """See :class:`~github_p2p.cache.fleet.FleetTransport`."""
        return self._limits

    async def disconnect(self) -> None:
        """What the hub does when this runner's connection drops: its leases are handed on."""
        await self.hub.state.release_holder(self.holder)
