"""The hub's disk layer: sealed envelopes by id, on diskcache, bounded, with TTL (blocking).

The hub reaches it only through :class:`~github_p2p.nodes.hub.envelopes.DiskEnvelopeStore`,
which runs it in worker threads. It cannot read URLs or bodies: ids and tags are HMACs and
envelopes are ciphertext.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path

from github_p2p.cache.diskstore import DiskStore
from github_p2p.nodes.hub.envelopes import StoredEnvelope

__all__ = ["BlindStore"]

# fresh until, stored at, tag (all zeros: none)
_HEAD = struct.Struct(">dd32s")
_NO_TAG = bytes(32)


class BlindStore(DiskStore):
    """Envelopes by 32-byte id; evicts least recently stored past ``size_limit`` bytes."""

    def __init__(self, directory: str | Path, *, size_limit: int = 1024 * 1024 * 1024,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(directory, size_limit=size_limit, what="hub store")
        self._clock = clock

    def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """The stored envelope, or ``None`` (also when the disk fails: a miss, not a crash)."""
        value = self._read(entry_id.hex())
        if not isinstance(value, bytes) or len(value) <= _HEAD.size:
            return None
        fresh_until, stored_at, tag = _HEAD.unpack_from(value)
        return StoredEnvelope(value[_HEAD.size:], fresh_until, stored_at,
                              None if tag == _NO_TAG else tag)

    def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float, keep_ttl: float,
            tag: bytes | None) -> bool:
        """Keep ``envelope`` for ``keep_ttl`` seconds, fresh for ``fresh_ttl``."""
        now = self._clock()
        value = _HEAD.pack(now + fresh_ttl, now, tag or _NO_TAG) + envelope
        return self._write(entry_id.hex(), value, expire=max(keep_ttl, fresh_ttl),
                           tag=tag.hex() if tag else None)

    def delete(self, ident: bytes) -> int:
        """Delete the entry ``ident`` and every entry tagged ``ident``; returns the count."""
        return self._evict(ident.hex()) + int(self._delete(ident.hex()))
