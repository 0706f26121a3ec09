"""Fill leases: how N runners that miss the same id at once cost GitHub one call.

The first runner to miss an id is *granted* a lease: it fetches from GitHub and puts the entry.
Runners asking while the lease is held *wait* (bounded) and receive the fill. If the holder dies
(its connection drops) or its lease runs out, or it gives the lease back because GitHub failed,
the next waiter takes the lease over. All waiting uses trio's clock, so tests run on a
``MockClock``; the store's own times use the wall clock.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from github_p2p.core.lease import Lease, LeaseAnswer, LeaseOutcome
from github_p2p.nodes.hub.envelopes import EnvelopeStore, StoredEnvelope

__all__ = ["LeaseBoard", "LeaseStats"]


@dataclass
class _Held:
    """A lease as the hub keeps it while someone holds it."""

    lease: Lease
    holder: str
    expires_at: float
    done: trio.Event = field(default_factory=trio.Event)
    waiters: int = 0


@dataclass
class LeaseStats:
    """Counters of the coalescing machinery."""

    granted: int = 0
    filled: int = 0
    timeouts: int = 0
    takeovers: int = 0
    expired: int = 0


class LeaseBoard:
    """Coordinates fills over an :class:`EnvelopeStore`."""

    def __init__(self, store: EnvelopeStore, *, lease_ttl: float = 30.0,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.lease_ttl = lease_ttl
        self.stats = LeaseStats()
        self._held: dict[bytes, _Held] = {}
        self._wall_clock = wall_clock
        #: Fills so far: a store read that raced with a fill must not be believed.
        self._fills = 0

    @property
    def in_flight(self) -> int:
        """Leases currently held."""
        return len(self._held)

    @property
    def waiting(self) -> int:
        """Runners currently waiting for a fill."""
        return sum(held.waiters for held in self._held.values())

    def _grant(self, entry_id: bytes, holder: str, stored: StoredEnvelope | None
               ) -> LeaseAnswer[StoredEnvelope]:
        lease = Lease(secrets.token_hex(16), self.lease_ttl)
        self._held[entry_id] = _Held(lease, holder, trio.current_time() + self.lease_ttl)
        self.stats.granted += 1
        return LeaseAnswer(LeaseOutcome.GRANTED, stored, False, lease)

    async def lease(self, entry_id: bytes, holder: str, wait: float
                    ) -> LeaseAnswer[StoredEnvelope]:
        """Answer a runner (``holder`` names its connection) that wants ``entry_id``."""
        deadline = trio.current_time() + max(0.0, wait)
        waited = False
        while True:
            fills = self._fills
            stored = await self.store.get(entry_id)
            if fills != self._fills and (stored is None or not stored.is_fresh(
                    self._wall_clock())):
                # A fill landed while the store was read (in a worker thread): the miss may
                # predate it, and granting now would make a second runner fetch. Read again.
                continue
            if stored is not None and stored.is_fresh(self._wall_clock()):
                if waited:
                    self.stats.filled += 1
                return LeaseAnswer(LeaseOutcome.FILLED if waited else LeaseOutcome.HIT,
                                   stored, True)
            held = self._held.get(entry_id)
            now = trio.current_time()
            if held is not None and now >= held.expires_at:
                # The holder went quiet for a whole lease: hand it to whoever asks next.
                self.stats.expired += 1
                self._finish(entry_id, held)
                held = None
            if held is None:
                if waited:
                    self.stats.takeovers += 1
                return self._grant(entry_id, holder, stored)
            if now >= deadline:
                self.stats.timeouts += 1
                return LeaseAnswer(LeaseOutcome.TIMEOUT, stored, False)
            waited = True
            held.waiters += 1
            try:
                with trio.move_on_at(min(deadline, held.expires_at)):
                    await held.done.wait()
            finally:
                held.waiters -= 1

    def fill(self, entry_id: bytes, token: str | None) -> None:
        """An entry for ``entry_id`` was just stored: wake its waiters, end its lease."""
        self._fills += 1
        held = self._held.get(entry_id)
        if held is not None and (token is None or token == held.lease.token):
            self._finish(entry_id, held)
        elif held is not None:
            # A put from a runner that did not hold the lease is still a fill for waiters.
            held.done.set()
            held.done = trio.Event()

    def release(self, entry_id: bytes, token: str) -> bool:
        """The holder gives up without a fill (GitHub failed): the next waiter takes over."""
        held = self._held.get(entry_id)
        if held is None or held.lease.token != token:
            return False
        self._finish(entry_id, held)
        return True

    def release_holder(self, holder: str) -> int:
        """A runner disconnected: every lease it held is handed on at once."""
        dropped = [(eid, held) for eid, held in self._held.items() if held.holder == holder]
        for entry_id, held in dropped:
            self._finish(entry_id, held)
        return len(dropped)

    def _finish(self, entry_id: bytes, held: _Held) -> None:
        if self._held.get(entry_id) is held:
            del self._held[entry_id]
        held.done.set()
