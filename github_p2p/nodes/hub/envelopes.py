"""Where a hub keeps sealed envelopes: an async store interface and its implementations.

A hub never holds a sealing key: it stores what runners put, by the HMAC id they chose, with
the freshness they declared and an optional resource tag (also an HMAC) for invalidation. The
interface is async so no implementation blocks the hub's event loop: the disk store runs
diskcache (SQLite) in worker threads behind an in-memory front for hot entries, the memory
store serves tests and the in-memory fleet fake, and a Redis store can share state between hubs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import trio

from github_p2p.cache.hotstore import HotFront

__all__ = ["DiskEnvelopeStore", "EnvelopeStore", "MemoryEnvelopeStore", "StoredEnvelope"]


@dataclass(frozen=True)
class StoredEnvelope:
    """An envelope as a hub keeps it."""

    envelope: bytes = field(repr=False)
    fresh_until: float
    stored_at: float
    #: The resource tag it was put with (deleting the tag deletes it).
    tag: bytes | None = None

    def is_fresh(self, now: float) -> bool:
        """True while the putter said it may be served without asking GitHub."""
        return now < self.fresh_until


class EnvelopeStore(Protocol):
    """Envelopes by 32-byte id, bounded, expiring. Failures are misses, never errors."""

    async def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """The stored envelope, or ``None``."""

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
                  tag: bytes | None) -> bool:
        """Keep ``envelope`` for ``keep_ttl`` seconds, fresh for ``fresh_ttl``."""

    async def delete(self, ident: bytes) -> int:
        """Delete the entry ``ident`` and every entry tagged ``ident``; returns the count."""

    def __len__(self) -> int:
        """Entries held (for status pages)."""

    def volume(self) -> int:
        """Bytes held (for status pages)."""

    def close(self) -> None:
        """Release resources."""


class MemoryEnvelopeStore:
    """Envelopes in a dictionary, least recently used evicted past ``size_limit`` bytes."""

    def __init__(self, *, size_limit: int = 256 * 1024 * 1024,
                 clock: Callable[[], float] = time.time) -> None:
        self._front: HotFront[StoredEnvelope] = HotFront(size_limit,
                                                         lambda s: len(s.envelope) + 64)
        self._clock = clock

    async def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """See :class:`EnvelopeStore`."""
        return self._front.get(entry_id.hex(), self._clock())

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
                  tag: bytes | None) -> bool:
        """See :class:`EnvelopeStore`."""
        now = self._clock()
        self._front.put(entry_id.hex(), StoredEnvelope(envelope, now + fresh_ttl, now, tag),
                        keep_until=now + max(keep_ttl, fresh_ttl),
                        tag=tag.hex() if tag else None)
        return True

    async def delete(self, ident: bytes) -> int:
        """See :class:`EnvelopeStore`."""
        count = self._front.discard_tag(ident.hex())
        if self._front.get(ident.hex(), self._clock()) is not None:
            self._front.discard(ident.hex())
            count += 1
        return count

    def __len__(self) -> int:
        return len(self._front)

    def volume(self) -> int:
        """See :class:`EnvelopeStore`."""
        return self._front.volume

    def close(self) -> None:
        """Nothing to release."""


class DiskEnvelopeStore:
    """Envelopes on disk (diskcache in worker threads) behind a bounded memory front."""

    def __init__(self, directory: str | Path, *, size_limit: int = 1024 * 1024 * 1024,
                 hot_bytes: int = 64 * 1024 * 1024, clock: Callable[[], float] = time.time
                 ) -> None:
        # Imported here: the blind store is diskcache, which only this implementation needs.
        from github_p2p.nodes.hub.blindstore import BlindStore

        self.disk = BlindStore(directory, size_limit=size_limit, clock=clock)
        self._front: HotFront[StoredEnvelope] = HotFront(hot_bytes,
                                                         lambda s: len(s.envelope) + 64)
        self._clock = clock

    async def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """See :class:`EnvelopeStore`."""
        key = entry_id.hex()
        hot = self._front.get(key, self._clock())
        if hot is not None:
            return hot
        stored = await trio.to_thread.run_sync(self.disk.get, entry_id)
        if stored is not None:
            # Its keep time is not stored; hold it in memory only while it is fresh.
            self._front.put(key, stored, keep_until=stored.fresh_until,
                            tag=stored.tag.hex() if stored.tag else None)
        return stored

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
                  tag: bytes | None) -> bool:
        """See :class:`EnvelopeStore`."""
        now = self._clock()
        self._front.put(entry_id.hex(), StoredEnvelope(envelope, now + fresh_ttl, now, tag),
                        keep_until=now + max(keep_ttl, fresh_ttl),
                        tag=tag.hex() if tag else None)
        return await trio.to_thread.run_sync(
            lambda: self.disk.put(entry_id, envelope, fresh_ttl=fresh_ttl, keep_ttl=keep_ttl,
                                  tag=tag))

    async def delete(self, ident: bytes) -> int:
        """See :class:`EnvelopeStore`."""
        self._front.discard_tag(ident.hex())
        self._front.discard(ident.hex())
        return await trio.to_thread.run_sync(self.disk.delete, ident)

    def __len__(self) -> int:
        return len(self.disk)

    def volume(self) -> int:
        """See :class:`EnvelopeStore`."""
        return self.disk.volume()

    def close(self) -> None:
        """Close the database."""
        self.disk.close()
