"""Fill leases: how N runners that miss the same id at once cost GitHub one call.

The first runner to miss an id is *granted* a lease: it fetches from GitHub and puts the entry.
Runners asking while the lease is held *wait* (bounded) and receive the fill. If the holder dies
(its connection drops) or its lease runs out, or it gives the lease back because GitHub failed,
the next waiter takes the lease over. All waiting uses trio's clock, so tests run on a
``MockClock``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from github_p2p.nodes.hub.blindstore import BlindStore, StoredEnvelope
from github_p2p.p2p.messages import LeaseOutcome

__all__ = ["LeaseBoard", "LeaseDecision", "LeaseStats"]


@dataclass
class _Lease:
    token: str
    holder: str
    expires_at: float
    done: trio.Event = field(default_factory=trio.Event)
    waiters: int = 0


@dataclass(frozen=True)
class LeaseDecision:
    """The answer to one lease request."""

    outcome: LeaseOutcome
    stored: StoredEnvelope | None
    token: str | None = field(default=None, repr=False)
    lease_ttl: float = 0.0


@dataclass
class LeaseStats:
    """Counters of the coalescing machinery."""

    granted: int = 0
    filled: int = 0
    timeouts: int = 0
    takeovers: int = 0
    expired: int = 0


class LeaseBoard:
    """Coordinates fills over a :class:`BlindStore`."""

    def __init__(self, store: BlindStore, *, lease_ttl: float = 30.0,
                 wall_clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.lease_ttl = lease_ttl
        self.stats = LeaseStats()
        self._leases: dict[bytes, _Lease] = {}
        self._wall_clock = wall_clock

    @property
    def in_flight(self) -> int:
        """Leases currently held."""
        return len(self._leases)

    @property
    def waiting(self) -> int:
        """Runners currently waiting for a fill."""
        return sum(lease.waiters for lease in self._leases.values())

    def _now_wall(self) -> float:
        return self._wall_clock() if self._wall_clock else time.time()

    def _fresh(self, entry_id: bytes) -> tuple[StoredEnvelope | None, bool]:
        stored = self.store.get(entry_id)
        return stored, stored is not None and stored.is_fresh(self._now_wall())

    def _grant(self, entry_id: bytes, holder: str, stored: StoredEnvelope | None
               ) -> LeaseDecision:
        lease = _Lease(secrets.token_hex(16), holder, trio.current_time() + self.lease_ttl)
        self._leases[entry_id] = lease
        self.stats.granted += 1
        return LeaseDecision("granted", stored, lease.token, self.lease_ttl)

    async def lease(self, entry_id: bytes, holder: str, wait: float) -> LeaseDecision:
        """Answer a runner (``holder`` names its connection) that wants ``entry_id``."""
        deadline = trio.current_time() + max(0.0, wait)
        waited = False
        while True:
            stored, fresh = self._fresh(entry_id)
            if fresh:
                if waited:
                    self.stats.filled += 1
                return LeaseDecision("filled" if waited else "hit", stored)
            lease = self._leases.get(entry_id)
            now = trio.current_time()
            if lease is not None and now >= lease.expires_at:
                # The holder went quiet for a whole lease: hand it to whoever asks next.
                self.stats.expired += 1
                self._finish(entry_id, lease)
                lease = None
            if lease is None:
                if waited:
                    self.stats.takeovers += 1
                return self._grant(entry_id, holder, stored)
            if now >= deadline:
                self.stats.timeouts += 1
                return LeaseDecision("timeout", stored)
            waited = True
            lease.waiters += 1
            try:
                with trio.move_on_at(min(deadline, lease.expires_at)):
                    await lease.done.wait()
            finally:
                lease.waiters -= 1

    def fill(self, entry_id: bytes, token: str | None) -> None:
        """An entry for ``entry_id`` was just stored: wake its waiters, end its lease."""
        lease = self._leases.get(entry_id)
        if lease is not None and (token is None or token == lease.token):
            self._finish(entry_id, lease)
        elif lease is not None:
            # A put from a runner that did not hold the lease is still a fill for waiters.
            lease.done.set()
            lease.done = trio.Event()

    def release(self, entry_id: bytes, token: str) -> bool:
        """The holder gives up without a fill (GitHub failed): the next waiter takes over."""
        lease = self._leases.get(entry_id)
        if lease is None or lease.token != token:
            return False
        self._finish(entry_id, lease)
        return True

    def release_holder(self, holder: str) -> int:
        """A runner disconnected: every lease it held is handed on at once."""
        dropped = [(eid, lease) for eid, lease in self._leases.items() if lease.holder == holder]
        for entry_id, lease in dropped:
            self._finish(entry_id, lease)
        return len(dropped)

    def _finish(self, entry_id: bytes, lease: _Lease) -> None:
        if self._leases.get(entry_id) is lease:
            del self._leases[entry_id]
        lease.done.set()
