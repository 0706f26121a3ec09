"""The hub's store: sealed envelopes by id, on diskcache, bounded, with TTL.

The hub never holds a sealing key: it stores what runners put, by the HMAC id they chose, with
the freshness they declared, and an optional resource tag (also an HMAC) for invalidation. It
cannot read URLs or bodies.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from github_p2p.cache.diskstore import DiskStore

__all__ = ["BlindStore", "StoredEnvelope"]

_TIME = struct.Struct(">dd")  # fresh until, stored at


@dataclass(frozen=True)
class StoredEnvelope:
    """An envelope as the hub keeps it."""

    envelope: bytes
    fresh_until: float
    stored_at: float

    def is_fresh(self, now: float) -> bool:
        """True while the putter said it may be served without asking GitHub."""
        return now < self.fresh_until


class BlindStore(DiskStore):
    """Envelopes by 32-byte id; evicts least recently stored past ``size_limit`` bytes."""

    def __init__(self, directory: str | Path, *, size_limit: int = 1024 * 1024 * 1024,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(directory, size_limit=size_limit, what="hub store")
        self._clock = clock

    def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """The stored envelope, or ``None`` (also when the disk fails: a miss, not a crash)."""
        value = self._read(entry_id.hex())
        if not isinstance(value, bytes) or len(value) <= _TIME.size:
            return None
        fresh_until, stored_at = _TIME.unpack_from(value)
        return StoredEnvelope(value[_TIME.size:], fresh_until, stored_at)

    def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
            tag: bytes | None) -> bool:
        """Keep ``envelope`` for ``keep_ttl`` seconds, fresh for ``fresh_ttl``."""
        now = self._clock()
        value = _TIME.pack(now + fresh_ttl, now) + envelope
        return self._write(entry_id.hex(), value, expire=max(keep_ttl, fresh_ttl),
                           tag=tag.hex() if tag else None)

    def delete(self, ident: bytes) -> int:
        """Delete the entry ``ident`` and every entry tagged ``ident``; returns the count."""
        return self._evict(ident.hex()) + int(self._delete(ident.hex()))
