"""The queue board: the pure state machine driven over a store, with waiting and holders.

It is what answers queue operations at a hub (for sealed items it cannot read) and in a
daemon without a fleet (see :mod:`github_p2p.nodes.hub.queues` and :mod:`.local`). It adds to
the pure core what needs time and tasks: claims that wait while others hold leases, status
requests that wait for the queue to drain, lapsing leases when they run out, and *bindings*:
the leases taken or renewed over one connection, all handed back when that connection drops.

Times are wall-clock seconds from ``clock`` (stored, so they survive a restart); waiting uses
trio's clock, so tests run on a ``MockClock`` with ``clock=trio.current_time``.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from github_p2p.core import queue as core
from github_p2p.core.queue import (
    CompletionOutcome,
    ItemRecord,
    QueueCounts,
    QueueKey,
    QueueLimits,
    QueueMeta,
    QueuePolicy,
)
from github_p2p.errors import (
    QueueConflictError,
    QueueLimitError,
    QueueNotFoundError,
    StaleLeaseError,
)
from github_p2p.workqueue.store import QueueStore

__all__ = ["BoardStats", "Claimed", "ListConflict", "QueueBoard", "Snapshot", "Submitted"]

log = logging.getLogger(__name__)


class ListConflict(QueueConflictError):
    """Another list is stored under the key: the first differing ``index``, the stored
    queue's ``total`` and its item at ``index`` (sealed; empty past its end)."""

    def __init__(self, message: str, *, index: int, total: int, envelope: bytes) -> None:
        super().__init__(message)
        self.index = index
        self.total = total
        self.envelope = envelope


@dataclass(frozen=True)
class Submitted:
    """A submission was taken: ``created`` the queue, or matched the identical one there."""

    created: bool
    total: int
    carried: int


@dataclass(frozen=True)
class Claimed:
    """An item was leased (``item.token``) for ``lease_ttl`` seconds."""

    item: ItemRecord
    lease_ttl: float


@dataclass(frozen=True)
class Snapshot:
    """A queue's counts and its current leases as ``(holder, index, expires_in)``."""

    counts: QueueCounts
    holders: tuple[tuple[str, int, float], ...] = ()
    #: Seconds until the first current lease lapses (``None`` when nothing is leased).
    next_lapse: float | None = None

    @property
    def drained(self) -> bool:
        """Every item is done or failed."""
        return self.counts.drained


@dataclass
class BoardStats:
    """Counters of the board since it started."""

    queues_created: int = 0
    submissions: int = 0
    conflicts: int = 0
    claims: int = 0
    completions: int = 0
    lapses: int = 0
    releases: int = 0
    refusals: int = 0


class _Bindings:
    """Leases by the connection they were last taken or renewed over (one each)."""

    def __init__(self) -> None:
        self._held: dict[str, set[tuple[QueueKey, int, str]]] = {}
        self._binding: dict[tuple[QueueKey, int, str], str] = {}

    def add(self, binding: str | None, key: QueueKey, index: int, token: str | None) -> None:
        if binding is None or token is None:
            return
        lease = (key, index, token)
        self.discard(key, index, token)
        self._held.setdefault(binding, set()).add(lease)
        self._binding[lease] = binding

    def discard(self, key: QueueKey, index: int, token: str | None) -> None:
        if token is None:
            return
        binding = self._binding.pop((key, index, token), None)
        if binding is not None:
            held = self._held[binding]
            held.discard((key, index, token))
            if not held:
                del self._held[binding]

    def pop(self, binding: str) -> set[tuple[QueueKey, int, str]]:
        held = self._held.pop(binding, set())
        for lease in held:
            del self._binding[lease]
        return held

    def __len__(self) -> int:
        return len(self._binding)


class QueueBoard:
    """Queue operations over a :class:`~github_p2p.workqueue.store.QueueStore`."""

    def __init__(self, store: QueueStore, *, limits: QueueLimits | None = None,
                 clock: Callable[[], float] = time.time,
                 token: Callable[[], str] = lambda: secrets.token_hex(16),
                 poll_interval: float = 5.0) -> None:
        self.store = store
        self.limits = limits or QueueLimits()
        self.stats = BoardStats()
        self._clock = clock
        self._token = token
        #: Waiters re-check at least this often (another process may share the store).
        self._poll = poll_interval
        self._changed: dict[QueueKey, trio.Event] = {}
        self._bindings = _Bindings()

    def now(self) -> float:
        """The board's (wall) clock."""
        return self._clock()

    @property
    def bound_leases(self) -> int:
        """Leases tied to a live connection."""
        return len(self._bindings)

    # -- helpers -----------------------------------------------------------------------------

    def _notify(self, key: QueueKey) -> None:
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()

    def _watch(self, key: QueueKey) -> trio.Event:
        """The event the next change of ``key`` sets. Take it *before* looking at the queue: a
        change between the look and the wait (a store round trip) then still wakes the waiter."""
        return self._changed.setdefault(key, trio.Event())

    @staticmethod
    async def _wait_change(changed: trio.Event, timeout: float) -> None:
        with trio.move_on_after(max(0.0, timeout)):
            await changed.wait()

    def _pause(self, snapshot: Snapshot, left: float) -> float:
        """How long to wait for a change: wake in time to see the first lease lapse."""
        lapse = snapshot.next_lapse if snapshot.next_lapse is not None else self._poll
        return min(left, lapse + 0.01, self._poll)

    async def _meta(self, key: QueueKey) -> QueueMeta:
        meta = await self.store.meta(key)
        if meta is None:
            raise QueueNotFoundError("no such queue for this run and attempt: submit it first")
        return meta

    async def _sweep(self, key: QueueKey, policy: QueuePolicy, now: float) -> None:
        """End the leases that ran out."""
        for item in await self.store.leased(key):
            if core.lapsed(item, now):
                await self.store.update(key, item.index,
                                        functools.partial(core.lapse, now=now, policy=policy))
                self.stats.lapses += 1
                self._notify(key)

    async def _snapshot(self, key: QueueKey, now: float) -> Snapshot:
        counts = await self.store.counts(key)
        leased = await self.store.leased(key)
        holders = tuple((item.holder, item.index, round(max(0.0, item.expires_at - now), 3))
                        for item in leased[: self.limits.max_holders])
        expiry = core.next_expiry(leased)
        return Snapshot(counts, holders, None if expiry is None else max(0.0, expiry - now))

    # -- operations --------------------------------------------------------------------------

    async def submit(self, key: QueueKey, sealed: Sequence[tuple[bytes, bytes]],
                     policy: QueuePolicy, owner: str) -> Submitted:
        """Create the queue, or confirm the identical one. Raises :class:`ListConflict` when
        another list is stored under ``key``, :class:`QueueLimitError` past a limit."""
        limits = self.limits
        self.stats.submissions += 1
        if len(sealed) > limits.max_items:
            raise QueueLimitError(f"{len(sealed)} items; a queue holds at most "
                                  f"{limits.max_items}")
        if any(len(envelope) > limits.max_envelope_bytes for _, envelope in sealed):
            raise QueueLimitError(f"an item is larger than {limits.max_item_bytes} bytes")
        meta = await self.store.meta(key)
        if meta is None:
            now = self._clock()
            await self.store.prune(now - limits.retention)
            if await self.store.queue_count() >= limits.max_queues:
                raise QueueLimitError(f"this hub holds {limits.max_queues} queues already")
            if await self.store.owned_by(owner) >= limits.max_queues_per_peer:
                raise QueueLimitError(f"a peer may create at most {limits.max_queues_per_peer} "
                                      "queues")
            done = (await self.store.done_digests(key.queue_id, key.attempt)
                    if key.attempt > 1 else frozenset())
            items = core.new_items(sealed, done_before=done, now=now)
            created = QueueMeta(key, policy, len(items), owner, now, now)
            meta = await self.store.create(created, items)
            if meta == created:
                self.stats.queues_created += 1
                self._notify(key)
                return Submitted(True, len(items), sum(item.carried for item in items))
        existing = await self.store.digests(key)
        index = core.first_difference(existing, [digest for digest, _ in sealed])
        if index is None:
            return Submitted(False, meta.total, (await self.store.counts(key)).carried)
        self.stats.conflicts += 1
        there = await self.store.item(key, index)
        raise ListConflict(f"another list of {len(existing)} items is stored under this key; "
                           f"this one has {len(sealed)}, and they differ from item {index}",
                           index=index, total=len(existing),
                           envelope=there.envelope if there is not None else b"")

    async def claim(self, key: QueueKey, holder: str, wait: float = 0.0,
                    binding: str | None = None) -> Claimed | Snapshot:
        """Lease the next ready item to ``holder``; while none is ready but some are leased,
        wait up to ``wait`` s for one to come back. A :class:`Snapshot` when nothing was
        claimed (``drained`` tells whether anything is left)."""
        deadline = trio.current_time() + min(max(0.0, wait), self.limits.max_wait)
        while True:
            changed = self._watch(key)
            meta = await self._meta(key)
            policy = meta.policy
            now = self._clock()
            await self._sweep(key, policy, now)
            item = await self.store.claim_first(key, functools.partial(
                core.claim, holder=holder, token=self._token(), now=now, policy=policy))
            if item is not None:
                self.stats.claims += 1
                self._bindings.add(binding, key, item.index, item.token)
                self._notify(key)
                return Claimed(item, policy.lease_ttl)
            snapshot = await self._snapshot(key, now)
            left = deadline - trio.current_time()
            if snapshot.drained or left <= 0:
                return snapshot
            await self._wait_change(changed, self._pause(snapshot, left))

    async def heartbeat(self, key: QueueKey, index: int, token: str,
                        binding: str | None = None) -> ItemRecord:
        """Renew the lease ``token`` on item ``index`` (StaleLeaseError if it is not ours)."""
        meta = await self._meta(key)
        now = self._clock()
        try:
            item = await self.store.update(key, index, lambda rec: core.renew(
                rec, token, now, meta.policy))
        except StaleLeaseError:
            self.stats.refusals += 1
            raise
        if item is None:
            raise QueueNotFoundError(f"the queue has no item {index}")
        self._bindings.add(binding, key, index, token)
        return item

    async def complete(self, key: QueueKey, index: int, token: str, ok: bool,
                       binding: str | None = None) -> tuple[ItemRecord, CompletionOutcome]:
        """Report the result of lease ``token`` on item ``index``; a repeat is a no-op."""
        meta = await self._meta(key)
        now = self._clock()
        outcome: list[CompletionOutcome] = []

        def change(rec: ItemRecord) -> ItemRecord:
            after, result = core.complete(rec, token, ok, now, meta.policy)
            outcome.append(result)
            return after

        try:
            item = await self.store.update(key, index, change)
        except StaleLeaseError:
            self.stats.refusals += 1
            raise
        if item is None:
            raise QueueNotFoundError(f"the queue has no item {index}")
        if outcome[-1] != "repeat":
            self.stats.completions += 1
            self._notify(key)
        self._bindings.discard(key, index, token)
        return item, outcome[-1]

    async def status(self, key: QueueKey, wait: float = 0.0) -> Snapshot:
        """Counts and holders; with ``wait`` > 0, once drained or when the wait ends."""
        deadline = trio.current_time() + min(max(0.0, wait), self.limits.max_wait)
        while True:
            changed = self._watch(key)
            meta = await self._meta(key)
            now = self._clock()
            await self._sweep(key, meta.policy, now)
            snapshot = await self._snapshot(key, now)
            left = deadline - trio.current_time()
            if snapshot.drained or left <= 0:
                return snapshot
            await self._wait_change(changed, self._pause(snapshot, left))

    async def release_binding(self, binding: str) -> int:
        """The connection ``binding`` dropped: its leases end now (items go back)."""
        released = 0
        for key, index, token in sorted(self._bindings.pop(binding), key=repr):
            meta = await self.store.meta(key)
            if meta is None:
                continue
            now = self._clock()
            policy = meta.policy
            before = await self.store.item(key, index)
            after = await self.store.update(key, index, functools.partial(
                core.release, token=token, now=now, policy=policy))
            if before is not None and after is not None and after != before:
                released += 1
                self.stats.releases += 1
                self._notify(key)
        return released
