"""Where queues are kept: the :class:`QueueStore` interface and its in-memory implementation.

A store holds queue metadata and :class:`~github_p2p.core.queue.ItemRecord` values and applies
the pure transitions of :mod:`github_p2p.core.queue` *atomically*; its methods are coroutines so
that a networked store (Redis) fits the same interface: :meth:`QueueStore.update`
and :meth:`QueueStore.claim_first` take a function from the current record to the next one
and write its result as one step. Decisions stay in the pure core; each store only has to be
atomic its own way (a dict in one trio thread, a SQLite transaction, a Redis script).

One contract suite (``tests/test_queue_store_contract.py``) runs against every implementation.
:class:`MemoryQueueStore` is public for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from github_p2p.core.queue import (
    ItemRecord,
    QueueCounts,
    QueueKey,
    QueueMeta,
    count,
)

__all__ = ["Change", "MemoryQueueStore", "QueueStore"]

#: A transition of one item: current record in, next record out (it may raise to abort).
Change = Callable[[ItemRecord], ItemRecord]


class QueueStore(Protocol):
    """Durable (or not) home of queues; every method is one atomic step."""

    async def create(self, meta: QueueMeta, items: Sequence[ItemRecord]) -> QueueMeta:
        """Store a new queue, unless one exists under ``meta.key``.

        Returns the stored metadata: ``meta`` itself when it was created, else the existing
        queue's (the caller compares the lists).
        """

    async def meta(self, key: QueueKey) -> QueueMeta | None:
        """The queue's metadata, or ``None`` when there is no such queue."""

    async def digests(self, key: QueueKey) -> list[bytes]:
        """The item digests in queue order (empty for an unknown queue)."""

    async def item(self, key: QueueKey, index: int) -> ItemRecord | None:
        """One item, or ``None``."""

    async def done_digests(self, queue_id: bytes, before_attempt: int) -> frozenset[bytes]:
        """Digests of the items done in attempts ``< before_attempt`` of the same run."""

    async def update(self, key: QueueKey, index: int, change: Change) -> ItemRecord | None:
        """Replace item ``index`` by ``change(item)`` atomically; the new record, or ``None``
        when there is no such item. If ``change`` raises, nothing is written."""

    async def claim_first(self, key: QueueKey, change: Change) -> ItemRecord | None:
        """Apply ``change`` to the ready item with the lowest index, atomically; the new
        record, or ``None`` when no item is ready."""

    async def leased(self, key: QueueKey) -> list[ItemRecord]:
        """The items currently leased, by index."""

    async def counts(self, key: QueueKey) -> QueueCounts:
        """Items by state."""

    async def items(self, key: QueueKey) -> list[ItemRecord]:
        """Every item of the queue in order (for inspection and tests)."""

    async def owned_by(self, owner: str) -> int:
        """How many stored queues ``owner`` created."""

    async def queue_count(self) -> int:
        """How many queues are stored."""

    async def prune(self, idle_before: float) -> int:
        """Forget queues not touched since ``idle_before``; how many were dropped."""

    def close(self) -> None:
        """Release the store's resources."""


class MemoryQueueStore:
    """A :class:`QueueStore` in a dict: for tests, and for a daemon that needs no durability.

    Atomic because trio switches tasks only at checkpoints, and no method has one.
    """

    def __init__(self) -> None:
        self._queues: dict[QueueKey, tuple[QueueMeta, list[ItemRecord]]] = {}

    async def create(self, meta: QueueMeta, items: Sequence[ItemRecord]) -> QueueMeta:
        """See :class:`QueueStore`."""
        existing = self._queues.get(meta.key)
        if existing is not None:
            return existing[0]
        self._queues[meta.key] = (meta, list(items))
        return meta

    async def meta(self, key: QueueKey) -> QueueMeta | None:
        """See :class:`QueueStore`."""
        found = self._queues.get(key)
        return found[0] if found else None

    async def digests(self, key: QueueKey) -> list[bytes]:
        """See :class:`QueueStore`."""
        return [item.digest for item in self._items(key)]

    async def item(self, key: QueueKey, index: int) -> ItemRecord | None:
        """See :class:`QueueStore`."""
        items = self._items(key)
        return items[index] if 0 <= index < len(items) else None

    async def done_digests(self, queue_id: bytes, before_attempt: int) -> frozenset[bytes]:
        """See :class:`QueueStore`."""
        return frozenset(item.digest for key, (_, items) in self._queues.items()
                         if key.queue_id == queue_id and key.attempt < before_attempt
                         for item in items if item.state == "done")

    def _write(self, key: QueueKey, index: int, change: Change) -> ItemRecord:
        meta, items = self._queues[key]
        after = change(items[index])
        if after != items[index]:
            items[index] = after
            self._queues[key] = (replace(meta, updated_at=max(meta.updated_at,
                                                              after.updated_at)), items)
        return after

    async def update(self, key: QueueKey, index: int, change: Change) -> ItemRecord | None:
        """See :class:`QueueStore`."""
        if not 0 <= index < len(self._items(key)):
            return None
        return self._write(key, index, change)

    async def claim_first(self, key: QueueKey, change: Change) -> ItemRecord | None:
        """See :class:`QueueStore`."""
        for item in self._items(key):
            if item.state == "ready":
                return self._write(key, item.index, change)
        return None

    async def leased(self, key: QueueKey) -> list[ItemRecord]:
        """See :class:`QueueStore`."""
        return [item for item in self._items(key) if item.state == "leased"]

    async def counts(self, key: QueueKey) -> QueueCounts:
        """See :class:`QueueStore`."""
        return count(self._items(key))

    async def items(self, key: QueueKey) -> list[ItemRecord]:
        """See :class:`QueueStore`."""
        return self._items(key)

    def _items(self, key: QueueKey) -> list[ItemRecord]:
        found = self._queues.get(key)
        return list(found[1]) if found else []

    async def owned_by(self, owner: str) -> int:
        """See :class:`QueueStore`."""
        return sum(meta.owner == owner for meta, _ in self._queues.values())

    async def queue_count(self) -> int:
        """See :class:`QueueStore`."""
        return len(self._queues)

    async def prune(self, idle_before: float) -> int:
        """See :class:`QueueStore`."""
        old = [key for key, (meta, _) in self._queues.items() if meta.updated_at < idle_before]
        for key in old:
            del self._queues[key]
        return len(old)

    def close(self) -> None:
        """See :class:`QueueStore`."""
        self._queues.clear()
