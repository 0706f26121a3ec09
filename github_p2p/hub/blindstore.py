"""The hub's store: sealed envelopes by id, on diskcache, bounded, with TTL.

The hub never holds a sealing key: it stores what runners put, by the HMAC id they chose, with
the freshness they declared, and an optional resource tag (also an HMAC) for invalidation. It
cannot read URLs or bodies.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import diskcache

__all__ = ["BlindStore", "StoredEnvelope"]

log = logging.getLogger(__name__)

_FRESH = struct.Struct(">d")


@dataclass(frozen=True)
class StoredEnvelope:
    """An envelope as the hub keeps it."""

    envelope: bytes
    fresh_until: float
    stored_at: float

    def is_fresh(self, now: float) -> bool:
        """True while the putter said it may be served without asking GitHub."""
        return now < self.fresh_until


class BlindStore:
    """Envelopes by 32-byte id; evicts least recently stored past ``size_limit`` bytes."""

    def __init__(self, directory: str | Path, *, size_limit: int = 1024 * 1024 * 1024,
                 clock: Callable[[], float] = time.time) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(directory), size_limit=size_limit,
                                      eviction_policy="least-recently-stored", tag_index=True,
                                      timeout=10)
        self._clock = clock

    def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """The stored envelope, or ``None`` (also when the disk fails: a miss, not a crash)."""
        try:
            value = self._cache.get(entry_id.hex())
        except (sqlite3.DatabaseError, OSError) as exc:
            log.warning("hub store read failed: %s", exc)
            return None
        if not isinstance(value, bytes) or len(value) <= 2 * _FRESH.size:
            return None
        (fresh_until,) = _FRESH.unpack_from(value)
        (stored_at,) = _FRESH.unpack_from(value, _FRESH.size)
        return StoredEnvelope(value[2 * _FRESH.size:], fresh_until, stored_at)

    def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
            tag: bytes | None) -> bool:
        """Keep ``envelope`` for ``keep_ttl`` seconds, fresh for ``fresh_ttl``."""
        now = self._clock()
        value = _FRESH.pack(now + fresh_ttl) + _FRESH.pack(now) + envelope
        try:
            return bool(self._cache.set(entry_id.hex(), value, expire=max(keep_ttl, fresh_ttl),
                                        tag=tag.hex() if tag else None))
        except (sqlite3.DatabaseError, OSError) as exc:
            log.warning("hub store write failed: %s", exc)
            return False

    def delete(self, ident: bytes) -> int:
        """Delete the entry ``ident`` and every entry tagged ``ident``; returns the count."""
        try:
            removed = int(self._cache.evict(ident.hex()))
            removed += int(bool(self._cache.delete(ident.hex())))
            return removed
        except (sqlite3.DatabaseError, OSError) as exc:
            log.warning("hub store delete failed: %s", exc)
            return 0

    def __len__(self) -> int:
        return len(self._cache)

    def volume(self) -> int:
        """Bytes on disk."""
        return int(self._cache.volume())

    def close(self) -> None:
        """Release the database."""
        self._cache.close()
